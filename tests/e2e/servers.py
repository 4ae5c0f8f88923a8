"""Real servers for end-to-end tests: `prefect server start` and `mlflow server`, each on a
free loopback port with a PostgreSQL database of its own (created here, dropped at stop).

Every process starts in its own session (process group) and `stop()` ends the whole group
(SIGTERM, then SIGKILL), so no server, uvicorn worker or `flows.serve` child outlives a test.
``auth`` (``"user:password"``) is passed to servers and clients that support basic auth:
Prefect's ``PREFECT_SERVER_API_AUTH_STRING`` / ``PREFECT_API_AUTH_STRING``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL, _admin_conninfo

BIN = Path(sys.executable).parent
QUIET = {"DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_database(prefix: str) -> str:
    """A new PostgreSQL database named ``<prefix>_<random>``; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str, driver: str = "psycopg") -> str:
    return make_url(PG_ADMIN_URL).set(drivername=f"postgresql+{driver}", database=name) \
        .render_as_string(hide_password=False)


@dataclass
class Process:
    """A child process in its own process group, output to a log file."""

    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        """End the process group: SIGTERM, wait, then SIGKILL whatever is left."""
        pgid = self.popen.pid
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; make sure no child of the group survives it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            return


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


def environ(*, without: tuple[str, ...] = ("PREFECT_API_", "PREFECT_PROFILE")) -> dict[str, str]:
    """This process's environment without the variables that would point a child at
    another Prefect API (a user's profile, the stack's)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(without)}


def start(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> Process:
    """Start ``argv`` with exactly ``env`` (plus telemetry off) in a new session."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    fh = log.open("ab")
    popen = subprocess.Popen(argv, env={**env, **QUIET}, stdout=fh, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    fh.close()
    return Process(name, popen, log)


def wait_http(url: str, proc: Process, timeout: float = 180, headers: Mapping[str, str] | None = None) -> None:
    """Wait until ``url`` answers 2xx; fail with the server's log tail if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=dict(headers or {})), timeout=5) as r:
                if 200 <= r.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{proc.name} not healthy at {url} after {timeout:.0f}s:\n{proc.tail()}")


def _basic(auth: str | None) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}


@dataclass
class PrefectServer:
    """A running `prefect server start`; ``client_env()`` points a client at it."""

    api_url: str
    database: str
    process: Process
    home: Path
    auth: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def client_env(self) -> dict[str, str]:
        env = {"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.home / "client")}
        if self.auth:
            env["PREFECT_API_AUTH_STRING"] = self.auth
        return env

    def stop(self) -> None:
        self.process.stop()
        drop_database(self.database)


def start_prefect(tmp: Path, *, auth: str | None = None, scheduler_loop_seconds: float = 5,
                  env: Mapping[str, str] | None = None) -> PrefectServer:
    """`prefect server start` on a free loopback port, PostgreSQL-backed (asyncpg); the
    scheduler loops every ``scheduler_loop_seconds`` (default 60 upstream) so tests wait less."""
    db = create_database("jml_ops_prefect")
    port = free_port()
    home = tmp / "prefect-home"
    server_env = {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url(db, "asyncpg"),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": str(scheduler_loop_seconds),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        **(env or {}),
    }
    if auth:
        server_env["PREFECT_SERVER_API_AUTH_STRING"] = auth
    proc = start("prefect-server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                    "--port", str(port)], {**environ(), **server_env}, tmp / "logs")
    server = PrefectServer(f"http://127.0.0.1:{port}/api", db, proc, home, auth)
    try:
        wait_http(f"{server.api_url}/health", proc, headers=_basic(auth))
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class MlflowServer:
    """A running `mlflow server` (PostgreSQL backend, artifacts proxied from a local folder)."""

    tracking_uri: str
    database: str
    process: Process
    artifacts: Path
    auth: str | None = None

    def client_env(self) -> dict[str, str]:
        env = {"MLFLOW_TRACKING_URI": self.tracking_uri, "JOURNEY_MLFLOW_TRACKING_URI": self.tracking_uri}
        if self.auth:
            user, _, password = self.auth.partition(":")
            env.update({"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password})
        return env

    def stop(self) -> None:
        self.process.stop()
        drop_database(self.database)


def start_mlflow(tmp: Path, *, auth: str | None = None, app_name: str | None = None,
                 env: Mapping[str, str] | None = None) -> MlflowServer:
    """`mlflow server` on a free loopback port, PostgreSQL-backed; ``app_name`` (e.g.
    ``basic-auth``) selects an MLflow app, ``auth`` is what clients send."""
    db = create_database("jml_ops_mlflow")
    port = free_port()
    artifacts = tmp / "mlflow-artifacts"
    argv = [str(BIN / "mlflow"), "server", "--backend-store-uri", database_url(db), "--serve-artifacts",
            "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1"]
    if app_name:
        argv += ["--app-name", app_name]
    proc = start("mlflow-server", argv, {**environ(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})},
                 tmp / "logs")
    server = MlflowServer(f"http://127.0.0.1:{port}", db, proc, artifacts, auth)
    try:
        wait_http(f"{server.tracking_uri}/health", proc, headers=_basic(auth))
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def prefect_server(tmp: Path, **kw) -> Iterator[PrefectServer]:
    server = start_prefect(tmp, **kw)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def mlflow_server(tmp: Path, **kw) -> Iterator[MlflowServer]:
    server = start_mlflow(tmp, **kw)
    try:
        yield server
    finally:
        server.stop()
