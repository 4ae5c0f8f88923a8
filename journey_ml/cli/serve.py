"""`journey-ml serve`: the scoring HTTP API under uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from journey_ml.cli._common import console, fail, quiet_mlflow
from journey_ml.config import ConfigError


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (one per core is a good start).", min=1)] = 1,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve /v1/* WITHOUT a token "
                                          "(only when JOURNEY_API_TOKEN cannot be set, e.g. a local demo).")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration file "
                      "(default: JOURNEY_CONFIG_PATH, else the packaged default).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve the scoring API: POST /v1/score, stored scores, committees, probes, /metrics."""
    from journey_ml.runtime import Runtime

    for k, v in (("DO_NOT_TRACK", "1"), ("MLFLOW_DISABLE_TELEMETRY", "true")):
        os.environ.setdefault(k, v)
    quiet_mlflow()  # the API's log is ours: no download bars or MLflow INFO lines (--verbose shows them)
    if config is not None:
        os.environ["JOURNEY_CONFIG_PATH"] = str(config.resolve())
    try:
        rt = Runtime.load(config_path=config)
        rt.salt  # noqa: B018  (start-up check: a PostgreSQL warehouse needs JOURNEY_PII_SALT)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        fail(str(e))
    if no_auth:
        os.environ["JOURNEY_API_NO_AUTH"] = "1"
        console.print("[bold red]WARNING: authentication is OFF (--no-auth): anyone who can reach "
                      f"{host}:{port} can read and compute scores.[/]", highlight=False)
    elif rt.settings.api_token is None:
        fail("JOURNEY_API_TOKEN is not set: set it (clients send 'Authorization: Bearer <token>'), "
              "or pass --no-auth to serve without authentication")
    import uvicorn

    from journey_ml.api.server import BoundedHeadH11Protocol

    # h11 with a bounded request head (431 above the limit), not httptools (unbounded)
    uvicorn.run("journey_ml.api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, access_log=access_log, http=BoundedHeadH11Protocol,
                h11_max_incomplete_event_size=rt.settings.api_max_header_bytes,
                # uvicorn's default (5 s) killed the second worker while it was still starting
                # on a busy 2-core machine, again and again: one worker served everything
                timeout_worker_healthcheck=rt.settings.api_worker_start_seconds)


__all__ = ["serve"]
