"""`journey-ml cycle`: the daily cycle from the command line.

Runs the same job as the ``journey-cycle`` flow (`journey_ml.jobs.run_cycle`: ingest the
new files, features, scores, monitoring), each step in this process with a progress line,
then prints what every step did, as `ingest`, `features build`, `score` and `monitor` do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from journey_ml.cli import render
from journey_ml.cli._common import (
    AsOfOpt,
    ConfigOpt,
    JsonOpt,
    TasksOpt,
    as_of_option,
    fail,
    guarded,
    now,
    out,
    progress,
    runtime,
)


def _cycle_json(result) -> dict[str, Any]:
    return {"as_of": result.as_of, "seconds": result.seconds,
            "ingest": {"runs": [r.to_dict() for r in result.ingest.runs], "error": result.ingest.error},
            "features": [s.to_dict() for s in result.features.snapshots],
            "scoring": [r.to_dict() for r in result.scoring.runs],
            "monitoring": {"runs": [r.to_dict() for r in result.monitoring.runs],
                           "already_monitored": list(result.already_monitored)}}


@guarded
def cycle(
    config: ConfigOpt = None,
    task: TasksOpt = None,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Source to ingest "
                      "(repeatable; default: all configured sources, in order).")] = None,
    as_of: AsOfOpt = None,
    no_retrain: Annotated[bool, typer.Option("--no-retrain", help="Record monitoring's retraining requests "
                          "without retraining.")] = False,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Exit 0 even when a task's population "
                           "is empty (nothing to score).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The daily cycle, as the journey-cycle flow runs it: ingest new files, features, scores, monitoring."""
    from journey_ml.jobs import CycleParams, JobFailed, empty_population, run_cycle
    from journey_ml.jobs.cycle import STEPS

    rt = runtime(config)
    params = CycleParams(now=now(), tasks=tuple(task or ()), sources=tuple(source or ()),
                         as_of=as_of_option(as_of), retrain="request" if no_retrain else "inline")
    with progress() as prog:
        bar = prog.add_task("cycle", total=len(STEPS))

        def step(name: str, keys: Sequence[str], fn: Callable[[], Any]) -> Any:
            prog.update(bar, description=f"cycle: {name} [dim]{', '.join(keys)}[/]")
            result = fn()
            prog.advance(bar)
            return result

        try:
            result = run_cycle(rt, params, step=step)
        except JobFailed as e:  # a source failed: show what each source did, then the one line
            if not as_json and getattr(e.result, "runs", None):
                out.print(render.ingest_table(e.result.runs))
            raise
    if as_json:
        typer.echo(json.dumps(_cycle_json(result), indent=2, default=str))
    else:
        out.print(render.ingest_table(result.ingest.runs))
        out.print(render.features_table(result.features))
        for r in result.scoring.runs:
            out.print(render.score_summary_table(r))
        for r in result.monitoring.runs:
            out.print(render.monitor_table(r))
            for line in render.decision_lines(r):
                out.print(line, highlight=False)
            if not r.segments:
                out.print(f"{r.task}: no segment has a production version yet (train first)")
        out.print(result.summary(), highlight=False)
    empty = result.scoring.empty_tasks()
    if empty and not allow_empty:
        fail("; ".join(empty_population(rt.engine, rt.config, t, result.as_of, result.features.data_end)
                       for t in empty) + " -- nothing scored for it (pass --allow-empty to accept)")


__all__ = ["cycle"]
