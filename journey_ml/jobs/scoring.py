"""The scoring job: each task's population as of T into the warehouse's ``scores`` table."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from journey_ml.execution import scoring_partitions
from journey_ml.features import FeatureFrame, build_features
from journey_ml.jobs._common import (
    Each,
    require_schema,
    resolve_as_of,
    resolve_tasks,
    serial,
    utc,
    width_of,
)
from journey_ml.registry.consistency import RegistryOutage, missing_production
from journey_ml.runtime import Runtime
from journey_ml.scoring import ScoreRunResult, open_registry, score_task
from journey_ml.scoring.batch import (
    ScoreBatch,
    add_next_steps,
    merge_batches,
    partition_features,
    population_features,
    score_features,
    store_batch,
)


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


@dataclass(frozen=True)
class ScorePartition:
    """One partition of a task's population (by entity hash): what a fan-out ships to
    where it is scored."""

    number: int
    of: int
    features: FeatureFrame

    def __str__(self) -> str:
        return f"{self.features.task} {self.number + 1}/{self.of}"


def _score_partition(rt: Runtime, run_id: str, scored_at: datetime, notes: list[str],
                     part: ScorePartition) -> ScoreBatch:
    registry = open_registry(lambda: rt.registry)
    return score_features(rt.engine, registry, rt.config, part.features, run_id=run_id, scored_at=scored_at,
                          notes=notes).slim()


def _score(rt: Runtime, registry, name: str, as_of: datetime, run_id: str, scored_at: datetime,
           each: Each, *, build, one_piece: bool = False) -> ScoreRunResult:
    """One task: in one piece, or (``execution.scoring_partitions`` > 1) its population's
    features built once, the partitions scored through ``each`` and written together in
    one transaction, as the one-piece path writes them. ``build``: the feature builder (a
    snapshot task's is scored in one piece: ``one_piece``)."""
    n = 1 if one_piece else scoring_partitions(rt.config, width_of(each))
    if n == 1:
        return score_task(rt.engine, registry, rt.config, name, as_of, run_id=run_id, scored_at=scored_at,
                          build=build)
    t0 = time.perf_counter()
    ff, notes = population_features(rt.engine, registry, rt.config, name, as_of, build=build)
    built = time.perf_counter() - t0
    parts = [ScorePartition(i, n, f) for i, f in enumerate(partition_features(ff, n))]
    batch = merge_batches(each(partial(_score_partition, rt, run_id, scored_at, notes), parts))
    batch.phases["features"] = built
    return store_batch(rt.engine, add_next_steps(rt.engine, rt.config, batch), started=t0)


def run_scoring(rt: Runtime, params: ScoringParams, *, each: Each = serial,
                build: Callable[..., FeatureFrame] = build_features) -> ScoringJobResult:
    """Score every requested task as of T (one run id for all); an unreachable registry
    degrades to built-in rules, and every score says which mode produced it. ``each`` runs
    a task's partitions (see `_score`); ``build`` builds an event-based task's features
    (the cycle's `FeatureMemo`). Raises ConfigError for an unknown task and
    SchemaNotCurrent."""
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
    runs = tuple(_score(rt, registry, n, when[n], run_id, scored_at, each,
                        build=build_snapshot if n in snapshots else build, one_piece=n in snapshots)
                 for n in names)
    first = as_of if as_of is not None else when[names[0]]
    return ScoringJobResult(first, run_id, runs, end if end is not None else first)
