"""`journey-ml models`: the model registry from the command line.

List registered models, read the alias ledger, promote a version, roll production back.
Every command prints a table (or ``--json``) and fails with one red line and exit code 1
on a user error (unknown model or version, corrupt artifact, nothing to roll back).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from journey_ml.cli import render
from journey_ml.cli._common import ConfigOpt, JsonOpt, emit_json, guarded, out, runtime

models_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                         help="Model registry: versions, aliases, promotions, rollbacks.")

TaskOpt = Annotated[str, typer.Option("--task", "-t", help="Task name (e.g. conversion).")]
SegmentOpt = Annotated[str, typer.Option("--segment", "-s", help="Segment name ('global' for the "
                       "pooled model).")]
ActorOpt = Annotated[str, typer.Option(help="Who did it (kept in the ledger).")]


def _registry(config: Path | None, actor: str = "cli"):
    """The registry adapter of the configured tracking store and warehouse."""
    from journey_ml.jobs import require_schema
    from journey_ml.registry import Registry

    rt = runtime(config)
    require_schema(rt.engine)
    return Registry(rt.settings.tracking_uri, rt.engine, experiment=rt.config.registry.experiment,
                    actor=actor)


@models_app.command("list")
@guarded
def list_models(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every registered journey-* model: production version and since when, staging, versions."""
    summaries = _registry(config).list_models()
    if as_json:
        emit_json({"models": [s.to_dict() for s in summaries]})
    elif not summaries:
        out.print("no registered models yet")
    else:
        out.print(render.models_table(summaries))


@models_app.command("history")
@guarded
def history(
    config: ConfigOpt = None,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task's models.")] = None,
    segment: Annotated[str | None, typer.Option("--segment", "-s", help="Only this segment's models.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many moves.", min=1)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Alias moves (promotions, rollbacks, fallbacks, restores) with monitoring runs and their
    decisions (drift, alerts, retraining) on one timeline per segment, newest first."""
    from journey_ml.monitoring.store import timeline

    reg = _registry(config)
    moves = reg.history(task, segment)
    entries = timeline(reg.engine, task, segment)
    monitored = any(e.source != "ledger" for e in entries)
    if limit is not None:
        moves = moves[:limit]
    if as_json:
        emit_json({"moves": [m.to_dict() for m in moves]}
                  | ({"timeline": [e.to_dict() for e in entries[:limit]]} if monitored else {}))
    elif not moves and not monitored:
        out.print("no alias moves recorded")
    elif not monitored:
        out.print(render.history_table(moves))
    else:
        for t in render.timeline_tables(entries, limit):
            out.print(t)


@models_app.command("promote")
@guarded
def promote(
    task: TaskOpt,
    segment: SegmentOpt,
    version: Annotated[int, typer.Option("--version", "-v", help="Version to make production.", min=1)],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the ledger).")],
    config: ConfigOpt = None,
    actor: ActorOpt = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Point @production at a version (its artifacts are verified first)."""
    from journey_ml.registry import NoChange

    try:
        move = _registry(config, actor).promote(task, segment, version, reason=reason)
    except NoChange as e:  # idempotent: nothing to do is not an error
        if as_json:
            emit_json({"changed": False, "model_name": e.name, "alias": e.alias, "version": e.version})
        else:
            out.print(str(e), highlight=False)
        return
    if as_json:
        emit_json(move.to_dict())
    else:
        out.print(render.move_line(move), highlight=False)


@models_app.command("rollback")
@guarded
def rollback(
    task: TaskOpt,
    segment: SegmentOpt,
    to_version: Annotated[int | None, typer.Option("--to-version", help="Version to go back to "
                          "(default: the one production replaced).", min=1)] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the ledger).")] = "manual rollback",
    config: ConfigOpt = None,
    actor: ActorOpt = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Put @production back on the version it replaced (or on --to-version)."""
    move = _registry(config, actor).rollback(task, segment, to_version=to_version, reason=reason)
    if as_json:
        emit_json(move.to_dict())
    else:
        out.print(render.move_line(move), highlight=False)


__all__ = ["models_app"]
