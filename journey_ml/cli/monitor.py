"""`journey-ml monitor` and `journey-ml reports`: the monitoring loop from the command line.

``monitor`` runs the monitoring job (the flow runs the same job and emits its events) and
prints one row per segment and each decision with its reasons. ``reports list`` lists
stored monitoring runs with their report files; ``reports open`` opens one in the browser
(or prints its path).
"""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from journey_ml.cli import render
from journey_ml.cli._common import (
    AsOfOpt,
    ConfigOpt,
    JsonOpt,
    TasksOpt,
    as_of_option,
    guarded,
    now,
    out,
    runtime,
)

reports_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                          help="Monitoring reports: list them, open one.")


def _checked_runtime(config: Path | None):
    from journey_ml.jobs import require_schema

    rt = runtime(config)
    require_schema(rt.engine)
    return rt


@guarded
def monitor(
    config: ConfigOpt = None,
    task: TasksOpt = None,
    as_of: AsOfOpt = None,
    no_retrain: Annotated[bool, typer.Option("--no-retrain", help="Record retraining requests without "
                          "retraining.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Drift and performance per segment, then the policy: ok, alert, retrain, fall back, roll back, restore."""
    from journey_ml.jobs import MonitoringParams, run_monitoring

    rt = runtime(config)
    result = run_monitoring(rt, MonitoringParams(now=now(), tasks=tuple(task or ()), as_of=as_of_option(as_of),
                                                 retrain="request" if no_retrain else "inline"))
    if as_json:
        typer.echo(json.dumps({"runs": [r.to_dict() for r in result.runs]}, indent=2, default=str))
        return
    for r in result.runs:
        out.print(render.monitor_table(r))
        for line in render.decision_lines(r):
            out.print(line, highlight=False)
        if not r.segments:
            out.print(f"{r.task}: no segment has a production version yet (train first)")


@reports_app.command("list")
@guarded
def reports_list(
    config: ConfigOpt = None,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task.")] = None,
    segment: Annotated[str | None, typer.Option("--segment", "-s", help="Only this segment.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.", min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Monitoring runs, newest first: id, segment, model, decisions, report files; then the
    journey maps (`journey-ml journeys map`) found under the reports folder."""
    from journey_ml.journeys.report import list_maps
    from journey_ml.monitoring import store

    rt = _checked_runtime(config)
    rows = store.runs(rt.engine, task, segment, limit=limit)
    maps = [f for f in list_maps(rt.config.monitoring.resolve_dir(rt.settings.home))
            if (task is None or f.task == task) and (segment is None or f.segment == segment)][:limit]
    if as_json:
        typer.echo(json.dumps({"runs": [store.jsonable({**r.__dict__, "decisions": [d.__dict__ for d in r.decisions]})
                                        for r in rows],
                               "journey_maps": [{"task": f.task, "segment": f.segment, "as_of": f.as_of,
                                                 "html": str(f.html)} for f in maps]}, indent=2, default=str))
        return
    if not rows:
        out.print("no monitoring runs yet (journey-ml monitor)")
    else:
        out.print(render.monitoring_runs_table(rows))
    if maps:
        out.print(render.journey_maps_files_table(maps))


@reports_app.command("open")
@guarded
def reports_open(
    run_id: Annotated[int, typer.Argument(help="Monitoring run id (see `reports list`).")],
    kind: Annotated[str, typer.Option("--kind", "-k", help="drift or performance.")] = "drift",
    config: ConfigOpt = None,
    print_only: Annotated[bool, typer.Option("--print", help="Print the path instead of opening it.")] = False,
) -> None:
    """Open a monitoring run's HTML report in the browser (or print its path)."""
    from journey_ml.monitoring import store

    match = [r for r in store.runs(_checked_runtime(config).engine) if r.id == run_id]
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


__all__ = ["monitor", "reports_app"]
