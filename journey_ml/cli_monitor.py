"""`journey-ml monitor` and `journey-ml reports`: the monitoring loop from the command line.

``monitor`` runs the same function as ``flows/monitor.py`` (without Prefect events) and prints
one row per segment and each decision with its reasons. ``reports list`` lists stored
monitoring runs with their report files; ``reports open`` opens one in the browser (or
prints its path).
"""

from __future__ import annotations

import json
import webbrowser
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

# one console, option types, time parsing and error line for every sub-app
from journey_ml.cli_models import ConfigOpt, JsonOpt, out, parse_utc
from journey_ml.cli_models import _run as run_guarded
from journey_ml.config import ConfigError

reports_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="Monitoring reports: list them, open one.")


def _runtime(config: Path | None):
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from journey_ml.db import upgrade
    from journey_ml.runtime import Runtime

    rt = Runtime.load(config_path=config)
    rt.settings.ensure_home()
    upgrade(rt.engine)
    return rt


def _user_errors() -> tuple[type[BaseException], ...]:
    from journey_ml.monitoring.runner import MonitorError
    from journey_ml.registry import RegistryError

    return (ConfigError, ValueError, RegistryError, MonitorError, FileNotFoundError)


def _run(fn):
    return run_guarded(fn, _user_errors())


def segments_table(result) -> Table:
    t = Table(title=f"monitoring {result.task} as of {result.as_of:%Y-%m-%d %H:%M} UTC "
                    f"({result.seconds:.1f}s)", title_justify="left")
    for col in ("segment", "model", "drift", "performance", "decisions"):
        t.add_column(col, overflow="fold")
    for s in result.segments:
        d = s.drift or {}
        drift = "-" if not d else (f"{len(d.get('drifted_columns') or [])}/{d.get('tested_columns', '?')} cols"
                                   + (" [bold red]drift[/]" if d.get("detected") else ""))
        p = (s.performance or {}).get("production") or {}
        perf = "-" if p.get("roc_auc") is None else \
            f"AUC {p['roc_auc']:.3f}, acc {p.get('accuracy') or 0:.3f} on {p['n']} ({(s.performance or {}).get('source')})"
        t.add_row(s.segment, f"{s.model_name} v{s.model_version} ({s.model_kind})", drift, perf, ", ".join(s.kinds))
    return t


def print_decisions(result) -> None:
    for s in result.segments:
        for d in s.decisions:
            style = {"ok": "green", "alert": "yellow", "error": "red"}.get(d.kind, "bold magenta")
            out.print(f"[{style}]{s.segment}: {d.kind}[/] " + "; ".join(d.reasons)
                      + (f" [dim]-> {d.outcome}[/]" if d.outcome and d.kind != "ok" else ""), highlight=False)
        for k, v in s.reports.items():
            if k.endswith("_html"):
                out.print(f"  [dim]{k.split('_')[0]} report: {v}[/]", highlight=False)


def monitor(
    config: ConfigOpt = None,
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="Task (repeatable; default all).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="As-of time, ISO 8601 (UTC if no offset); "
                     "default: the newest event in the warehouse.")] = None,
    no_retrain: Annotated[bool, typer.Option("--no-retrain", help="Record retraining requests without "
                          "retraining.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Drift and performance per segment, then the policy: ok, alert, retrain, fall back, roll back, restore."""

    def body():
        from journey_ml.monitoring.runner import monitor_task
        from journey_ml.training import data_end

        rt = _runtime(config)
        t = parse_utc(as_of, "--as-of") if as_of else data_end(rt.engine)
        home = rt.settings.home
        results = []
        for name in task or list(rt.config.tasks):
            kwargs: dict[str, Any] = {"retrain": None} if no_retrain else {}
            results.append(monitor_task(rt.engine, rt.registry, rt.config, name, t,
                                        reports_dir=rt.config.monitoring.resolve_dir(home),
                                        now=datetime.now(UTC), alert_urls=rt.config.monitoring.alert_urls(home),
                                        **kwargs))
        if as_json:
            typer.echo(json.dumps({"runs": [r.to_dict() for r in results]}, indent=2, default=str))
            return
        for r in results:
            out.print(segments_table(r))
            print_decisions(r)
            if not r.segments:
                out.print(f"{r.task}: no segment has a production version yet (train first)")

    _run(body)


def _report_rows(config: Path | None, task: str | None, segment: str | None, limit: int | None):
    from journey_ml.monitoring import store

    rt = _runtime(config)
    return store.runs(rt.engine, task, segment, limit=limit)


@reports_app.command("list")
def reports_list(
    config: ConfigOpt = None,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task.")] = None,
    segment: Annotated[str | None, typer.Option("--segment", "-s", help="Only this segment.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.", min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Monitoring runs, newest first: id, segment, model, decisions, report files."""

    def body():
        rows = _report_rows(config, task, segment, limit)
        if as_json:
            from journey_ml.monitoring.store import jsonable

            typer.echo(json.dumps({"runs": [jsonable({**r.__dict__, "decisions": [d.__dict__ for d in r.decisions]})
                                            for r in rows]}, indent=2, default=str))
            return
        if not rows:
            out.print("no monitoring runs yet (journey-ml monitor)")
            return
        t = Table(title="monitoring runs (newest first)", title_justify="left")
        for col in ("id", "as of", "segment", "model", "drift", "decisions", "reports"):
            t.add_column(col, overflow="fold")
        for r in rows:
            files = "\n".join(v for k, v in (r.reports or {}).items() if k.endswith("_html"))
            t.add_row(str(r.id), f"{r.as_of:%Y-%m-%d}", f"{r.task}/{r.segment}", f"{r.model_name} v{r.model_version}",
                      "yes" if r.drift_detected else "no", ", ".join(d.kind for d in r.decisions), files or "-")
        out.print(t)

    _run(body)


@reports_app.command("open")
def reports_open(
    run_id: Annotated[int, typer.Argument(help="Monitoring run id (see `reports list`).")],
    kind: Annotated[str, typer.Option("--kind", "-k", help="drift or performance.")] = "drift",
    config: ConfigOpt = None,
    print_only: Annotated[bool, typer.Option("--print", help="Print the path instead of opening it.")] = False,
) -> None:
    """Open a monitoring run's HTML report in the browser (or print its path)."""

    def body():
        from journey_ml.monitoring import store

        rt = _runtime(config)
        match = [r for r in store.runs(rt.engine) if r.id == run_id]
        if not match:
            raise ValueError(f"no monitoring run with id {run_id} (see `journey-ml reports list`)")
        reports = match[0].reports or {}
        path = reports.get(f"{kind}_html")
        if not path:
            have = ", ".join(k[:-5] for k in reports if k.endswith("_html")) or "none"
            raise ValueError(f"run {run_id} has no {kind} report (it has: {have})")
        if not Path(path).exists():
            raise FileNotFoundError(f"report file {path} no longer exists")
        if print_only or not webbrowser.open(Path(path).resolve().as_uri()):
            typer.echo(path)

    _run(body)


def register(app: typer.Typer) -> None:
    """Mount `monitor` and `reports` on the main app."""
    app.command("monitor")(monitor)
    app.add_typer(reports_app, name="reports", help="Monitoring reports: list, open.")


__all__ = ["register", "monitor", "reports_app", "segments_table", "print_decisions"]
