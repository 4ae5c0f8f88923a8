"""The scoring job: each task's population as of T into the warehouse's ``scores`` table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from journey_ml.jobs._common import require_schema, resolve_as_of, resolve_tasks, utc
from journey_ml.registry.consistency import RegistryOutage, missing_production
from journey_ml.runtime import Runtime
from journey_ml.scoring import ScoreRunResult, open_registry, score_task


@dataclass(frozen=True)
class ScoringParams:
    """``tasks``: default every task; ``as_of``: default the newest event; ``scored_at``:
    the wall-clock time recorded on the rows."""

    scored_at: datetime
    tasks: tuple[str, ...] = ()
    as_of: datetime | None = None


@dataclass(frozen=True)
class ScoringJobResult:
    as_of: datetime
    run_id: str
    runs: tuple[ScoreRunResult, ...]
    data_end: datetime | None = None

    def empty_tasks(self) -> list[str]:
        """Tasks whose population was empty (nothing scored)."""
        return [r.task for r in self.runs if r.entities == 0]

    @property
    def rows_written(self) -> int:
        return sum(r.rows_written for r in self.runs)


def _refuse_on_outage(rt: Runtime, registry, tasks: list[str]) -> None:
    """An empty or replaced tracking store is an outage, not a reason to fall back: refuse
    before overwriting the stored scores. (An unreachable registry is the ladder's case.)"""
    missing = []
    for t in tasks:
        try:
            missing += missing_production(rt.engine, registry, t)
        except Exception:  # noqa: BLE001 - unreachable: the fallback ladder handles and reports it
            return
    if missing:
        raise RegistryOutage(missing)


def run_scoring(rt: Runtime, params: ScoringParams) -> ScoringJobResult:
    """Score every requested task as of T (one run id for all); an unreachable registry
    degrades to built-in rules, and every score says which mode produced it. Raises
    ConfigError for an unknown task and SchemaNotCurrent."""
    from journey_ml.features.snapshot import build_snapshot, snapshot_as_of

    require_schema(rt.engine)
    names = resolve_tasks(rt.config, params.tasks)
    snapshots = {n for n in names if rt.config.task(n).snapshot is not None}
    # the newest event is the default as-of of event-based tasks; a snapshot task is scored
    # as of its snapshot (the newest update of its entity table)
    as_of, end = resolve_as_of(rt.engine, params.as_of) if len(snapshots) < len(names) else (None, None)
    when = {n: (params.as_of and utc(params.as_of, "as_of")) or snapshot_as_of(rt.engine, rt.config, n)
            if n in snapshots else as_of for n in names}
    registry = open_registry(lambda: rt.registry)
    _refuse_on_outage(rt, registry, names)
    run_id = str(uuid.uuid4())
    scored_at = utc(params.scored_at, "scored_at")
    runs = tuple(score_task(rt.engine, registry, rt.config, n, when[n], run_id=run_id, scored_at=scored_at,
                            **({"build": build_snapshot} if n in snapshots else {}))
                 for n in names)
    first = as_of if as_of is not None else when[names[0]]
    return ScoringJobResult(first, run_id, runs, end if end is not None else first)
