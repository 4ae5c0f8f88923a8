"""The training job: for each task, one prepared frame, the global model, then each segment.

This is the one place the task x segment loop is written; the CLI runs it as it is, the
flow passes an ``each`` that runs the segments as Prefect tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial

import pandas as pd

from journey_ml.execution import dask_client, threads_here, with_model_threads
from journey_ml.jobs._common import (
    Each,
    require_schema,
    resolve_as_of,
    resolve_tasks,
    serial,
    slots_of,
)
from journey_ml.models.xgb import distributed_fit
from journey_ml.runtime import Runtime
from journey_ml.segments import GLOBAL
from journey_ml.training import (
    SegmentOutcome,
    TrainingData,
    TrainingError,
    prepare_snapshot_training,
    prepare_training,
    train_segment,
)


@dataclass(frozen=True)
class TrainingParams:
    """``tasks``: default every task; ``segments``: default the global model and every
    segment found in the data; ``as_of``: default the newest event (training dates end
    where their labels have matured); ``now``: the time the ledger records for promotions
    (default the wall clock; a replay over history, like the demo's, passes its own clock)."""

    tasks: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    as_of: datetime | None = None
    actor: str = "journey-ml"
    now: datetime | None = None


@dataclass(frozen=True)
class TaskFailure:
    """A task that could not be trained at all (no data, one class ...)."""

    task: str
    reason: str


@dataclass(frozen=True)
class TrainingJobResult:
    as_of: datetime
    outcomes: tuple[SegmentOutcome, ...]
    failures: tuple[TaskFailure, ...] = field(default_factory=tuple)
    holdout_dates: dict[str, tuple[datetime, ...]] = field(default_factory=dict)
    # snapshot tasks: how their holdout was drawn (e.g. "stratified random 20%, seed 7")
    holdout_notes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and all(o.status != "failed" for o in self.outcomes)

    def by_status(self, status: str) -> list[SegmentOutcome]:
        return [o for o in self.outcomes if o.status == status]

    def problems(self) -> list[str]:
        """One line per failed task or segment."""
        return ([f"{f.task}: {f.reason}" for f in self.failures]
                + [f"{o.task}/{o.segment}: {o.reason}" for o in self.outcomes if o.status == "failed"])


def segments_to_train(data: TrainingData, requested: tuple[str, ...] = ()) -> list[str]:
    """The requested segments, else the global model and every segment in the data; each
    once (a task without ``segment_by`` has only the global model), global first."""
    wanted = list(requested) if requested else [GLOBAL, *data.segments()]
    seen: list[str] = []
    for s in wanted:
        if s not in seen:
            seen.append(s)
    return sorted(seen, key=lambda s: s != GLOBAL)


@dataclass(frozen=True)
class SegmentData:
    """One segment to train and its task's training data cut to that segment's rows: what
    a fan-out ships to where the segment trains (a Dask worker gets its rows, not the task's)."""

    segment: str
    data: TrainingData

    def __str__(self) -> str:
        return self.segment


def _train_one(rt: Runtime, actor: str, concurrent: int, work: SegmentData, *,
               at: datetime | None = None) -> SegmentOutcome:
    # XGBoost threads: the model's share of the cores where it trains (`model_threads`)
    threads = threads_here(rt.config.training.xgboost.n_jobs, concurrent)
    config = with_model_threads(rt.config, threads)
    big = rt.config.execution.distributed_training_rows
    rows = work.data.rows(work.segment)
    if big is not None and int((rows["split"] == "train").sum()) >= big:
        # too large for one worker: the booster trains with xgboost.dask across the cluster
        with dask_client() as client, distributed_fit(client):
            return train_segment(work.data, work.segment, config, rt.registry, rt.engine, actor=actor, at=at)
    return train_segment(work.data, work.segment, config, rt.registry, rt.engine, actor=actor, at=at)


def run_training(rt: Runtime, params: TrainingParams, *, each: Each = serial) -> TrainingJobResult:
    """Train, log, register and gate every requested segment of every requested task.

    The global model is trained first, then the other segments through ``each`` (they are
    independent). A task whose frame cannot be built is a `TaskFailure`; a segment-level
    problem is that segment's outcome. Raises ConfigError for an unknown task and
    SchemaNotCurrent."""
    require_schema(rt.engine)
    names = resolve_tasks(rt.config, params.tasks)
    as_of = None  # the newest event: resolved when an event-based task needs it
    outcomes: list[SegmentOutcome] = []
    failures: list[TaskFailure] = []
    holdouts: dict[str, tuple[datetime, ...]] = {}
    notes: dict[str, str] = {}
    for name in names:
        snap = rt.config.task(name).snapshot
        try:
            if snap is not None:
                data = prepare_snapshot_training(rt.engine, rt.config, name, params.as_of)
                n = int((data.frame["split"] == "test").sum())
                notes[name] = (f"{name}: stratified random {snap.holdout_fraction:.0%} of {len(data.frame):,} "
                               f"rows ({n:,}), seed {rt.config.training.seed}")
            else:
                if as_of is None:
                    as_of, _ = resolve_as_of(rt.engine, params.as_of, past_end_ok=False)
                data = prepare_training(rt.engine, rt.config, name, as_of)
        except TrainingError as e:
            failures.append(TaskFailure(name, str(e)))
            continue
        if snap is None:
            test = data.frame.loc[data.frame["split"] == "test", "as_of"]
            holdouts[name] = tuple(sorted({pd.Timestamp(t).to_pydatetime() for t in test.unique()}))
        segs = segments_to_train(data, params.segments)
        if segs and segs[0] == GLOBAL:  # first, on its own (all the cores): the segments fall back to it
            outcomes.extend(each(partial(_train_one, rt, params.actor, 1, at=params.now), [SegmentData(GLOBAL, data)]))
            segs = segs[1:]
        if segs:
            work = [SegmentData(s, replace(data, frame=data.rows(s))) for s in segs]
            outcomes.extend(each(partial(_train_one, rt, params.actor, slots_of(each), at=params.now), work))
    if as_of is None:
        as_of = params.as_of or (data.as_of if outcomes else None) or _snapshot_time(rt, names)
    return TrainingJobResult(as_of, tuple(outcomes), tuple(failures), holdouts, notes)


def _snapshot_time(rt: Runtime, names: list[str]) -> datetime:
    """The run's as-of when only snapshot tasks ran (and none produced data)."""
    from journey_ml.features.snapshot import snapshot_as_of

    for n in names:
        try:
            return snapshot_as_of(rt.engine, rt.config, n)
        except ValueError:
            continue
    from datetime import UTC

    return datetime.min.replace(tzinfo=UTC)
