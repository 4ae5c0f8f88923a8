"""`journey-ml status`: production models, scoring modes, monitoring, deployments, stack health."""

from __future__ import annotations

from dataclasses import asdict

from journey_ml.cli import render
from journey_ml.cli._common import ConfigOpt, JsonOpt, TasksOpt, emit_json, guarded, out, runtime


@guarded
def status(config: ConfigOpt = None, task: TasksOpt = None, as_json: JsonOpt = False) -> None:
    """Per task and segment: the production version and since when, the scoring mode of the
    newest scores, the last monitoring run and its decisions; the last and next run of each
    deployment when PREFECT_API_URL is set; and whether warehouse, registry and Prefect answer.
    Exits 1 when a component is unhealthy."""
    import typer

    from journey_ml.jobs.status import run_status

    rt = runtime(config)
    result = run_status(rt, tuple(task or ()))
    if as_json:
        data = asdict(result)
        for s, seg in zip(data["segments"], result.segments, strict=True):
            s["scoring_mode"] = seg.scoring_mode
        data["healthy"] = result.healthy
        emit_json(data)
    else:
        if result.segments:
            out.print(render.status_segments_table(result.segments))
        if result.deployments is not None:
            out.print(render.status_deployments_table(result.deployments))
        else:
            out.print("deployments: no Prefect API configured (set PREFECT_API_URL)")
        out.print(render.status_health_table(result.health))
    if not result.healthy:
        raise typer.Exit(1)


__all__ = ["status"]
