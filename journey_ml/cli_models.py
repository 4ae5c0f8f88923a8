"""`journey-ml models`: the model registry from the command line.

List registered models, read the alias ledger, promote a version, roll production back.
Every command prints a table (or ``--json``) and fails with one red line and exit code 1
on a user error (unknown model or version, corrupt artifact, nothing to roll back).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from journey_ml.config import ConfigError

models_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Model registry: versions, aliases, promotions, rollbacks.")

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration file "
                      "(default: JOURNEY_CONFIG_PATH, else the packaged default).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
TaskOpt = Annotated[str, typer.Option("--task", "-t", help="Task name (e.g. conversion).")]
SegmentOpt = Annotated[str, typer.Option("--segment", "-s", help="Segment name ('global' for the "
                       "pooled model).")]
ActorOpt = Annotated[str, typer.Option(help="Who did it (kept in the ledger).")]


def _fail(msg: str) -> None:
    console.print(f"[bold red]error:[/] {msg}", highlight=False, markup=True)
    raise typer.Exit(1)


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _user_errors() -> tuple[type[BaseException], ...]:
    from journey_ml.registry import RegistryError

    return (RegistryError, ConfigError, ValueError)


def _registry(config: Path | None, actor: str = "cli"):
    """The registry adapter of the configured tracking store and warehouse."""
    # command output is ours: no download progress bars, no MLflow INFO chatter (set before
    # MLflow is first imported; an explicit environment setting wins)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from journey_ml.db import upgrade
    from journey_ml.registry import Registry
    from journey_ml.runtime import Runtime

    rt = Runtime.load(config_path=config)
    rt.settings.ensure_home()
    upgrade(rt.engine)
    return Registry(rt.settings.tracking_uri, rt.engine, experiment=rt.config.registry.experiment,
                    actor=actor)


def _run(fn, user_errors: tuple[type[BaseException], ...] | None = None):
    """Run a command body; user errors (default: registry, config and value errors) become
    one red line and exit code 1."""
    errors = user_errors or _user_errors()
    try:
        return fn()
    except typer.Exit:
        raise
    except errors as e:
        _fail(str(e))


def parse_utc(value: str, what: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC. ValueError naming ``what`` otherwise."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: not an ISO 8601 time: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else ""  # UTC


def _v(v: int | None) -> str:
    return f"v{v}" if v is not None else "-"


def models_table(summaries) -> Table:
    t = Table(title="registered models (times UTC)", title_justify="left")
    t.add_column("model", no_wrap=True, overflow="fold")
    for col in ("production", "since", "staging", "versions", "kind"):
        t.add_column(col, justify="right" if col == "versions" else "left")
    for s in summaries:
        kinds = ", ".join(sorted(set(s.kinds.values()))) or "-"
        prod = _v(s.production_version) + (f" ({s.production_kind})" if s.production_kind else "")
        t.add_row(s.name, prod, _when(s.production_since), _v(s.staging_version),
                  str(len(s.versions)), kinds)
    return t


def history_table(moves) -> Table:
    t = Table(title="alias ledger (newest first, times UTC)", title_justify="left")
    for col in ("at", "model", "alias", "move", "action", "reason", "actor"):
        t.add_column(col, no_wrap=col in ("at", "move"), overflow="fold")
    for m in moves:
        t.add_row(_when(m.at), m.model_name, m.alias, f"{_v(m.from_version)} -> {_v(m.to_version)}",
                  m.action, m.reason, m.actor)
    return t


def timeline_tables(entries, limit: int | None = None) -> list[Table]:
    """One table per task/segment: alias moves, monitoring runs and decisions, newest first."""
    groups: dict[tuple, list] = {}
    for e in entries:
        groups.setdefault((e.task, e.segment), []).append(e)
    tables = []
    style = {"ledger": "bold cyan", "decision": "magenta", "monitor": ""}
    for (task, segment), rows in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        t = Table(title=f"{task}/{segment}: timeline (newest first, times UTC)", title_justify="left")
        for col in ("at", "source", "event", "version", "detail"):
            t.add_column(col, no_wrap=col in ("at", "version"), overflow="fold")
        for e in rows[:limit]:
            s = style[e.source]
            t.add_row(_when(e.at), e.source, f"[{s}]{e.event}[/]" if s else e.event, e.version, e.detail)
        tables.append(t)
    return tables


def _print_move(m) -> None:
    out.print(f"[bold]{m.model_name}@{m.alias}[/]: {_v(m.from_version)} -> {_v(m.to_version)} "
              f"({m.action}: {m.reason})", highlight=False)


@models_app.command("list")
def list_models(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every registered journey-* model: production version and since when, staging, versions."""

    def body():
        summaries = _registry(config).list_models()
        if as_json:
            _emit_json({"models": [s.to_dict() for s in summaries]})
        elif not summaries:
            out.print("no registered models yet")
        else:
            out.print(models_table(summaries))

    _run(body)


@models_app.command("history")
def history(
    config: ConfigOpt = None,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task's models.")] = None,
    segment: Annotated[str | None, typer.Option("--segment", "-s", help="Only this segment's models.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many moves.", min=1)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Alias moves (promotions, rollbacks, fallbacks, restores) with monitoring runs and their
    decisions (drift, alerts, retraining) on one timeline per segment, newest first."""

    def body():
        from journey_ml.monitoring.store import timeline

        reg = _registry(config)
        moves = reg.history(task, segment)
        entries = [e for e in timeline(reg.engine, task, segment) if e.source != "ledger"]
        if limit is not None:
            moves = moves[:limit]
        if as_json:
            _emit_json({"moves": [m.to_dict() for m in moves]}
                       | ({"timeline": [e.to_dict() for e in timeline(reg.engine, task, segment)[:limit]]}
                          if entries else {}))
        elif not moves and not entries:
            out.print("no alias moves recorded")
        elif not entries:
            out.print(history_table(moves))
        else:
            for t in timeline_tables(timeline(reg.engine, task, segment), limit):
                out.print(t)

    _run(body)


@models_app.command("promote")
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

    def body():
        move = _registry(config, actor).promote(task, segment, version, reason=reason)
        if as_json:
            _emit_json(move.to_dict())
        else:
            _print_move(move)

    _run(body)


@models_app.command("rollback")
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

    def body():
        move = _registry(config, actor).rollback(task, segment, to_version=to_version, reason=reason)
        if as_json:
            _emit_json(move.to_dict())
        else:
            _print_move(move)

    _run(body)


__all__ = ["models_app"]
