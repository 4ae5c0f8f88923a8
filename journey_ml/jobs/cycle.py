"""The daily cycle: ingest (incremental) -> features -> score -> monitor, one typed result.

The order of the steps is written here once. Each step is handed to ``step(name, keys, fn)``
so a caller can wrap it: the CLI and the benchmark run it as it is (`direct`), the
``journey-cycle`` flow runs each step as a Prefect task with retries and holds one
concurrency slot per key (the sources or tasks the step writes), so two runs of the same
step for the same task never overlap.

Every step is idempotent, so a retried step or a re-run cycle leaves the same stores:
ingest skips batches already in its ledger, a feature snapshot and the scores of a
(task, as_of) are replaced, and a task already monitored as of T is not monitored again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from journey_ml.features.memo import FeatureMemo
from journey_ml.jobs._common import (
    JobFailed,
    require_schema,
    resolve_as_of,
    resolve_sources,
    resolve_tasks,
    utc,
)
from journey_ml.jobs.features import FeaturesJobResult, FeaturesParams, run_features
from journey_ml.jobs.ingest import IngestJobResult, IngestParams, run_ingest
from journey_ml.jobs.monitoring import (
    MonitoringJobResult,
    MonitoringParams,
    RetrainMode,
    run_monitoring,
)
from journey_ml.jobs.scoring import ScoringJobResult, ScoringParams, run_scoring
from journey_ml.runtime import Runtime

R = TypeVar("R")

STEPS = ("ingest", "features", "score", "monitor")

# ``step(name, keys, fn)`` returns ``fn()``; ``keys`` name what the step writes (sources
# for ingest, tasks for the others), for a caller that serialises per key.
Step = Callable[[str, Sequence[str], Callable[[], R]], R]


def direct(name: str, keys: Sequence[str], fn: Callable[[], R]) -> R:
    """Run the step in this process, as it is."""
    return fn()


@dataclass(frozen=True)
class CycleParams:
    """``now``: the wall-clock time of the cycle (ingestion time, ``scored_at``, monitoring's
    decision time); ``as_of``: default the newest event after ingestion; ``tasks`` /
    ``sources``: default all; ``retrain``: monitoring's retrain mode."""

    now: datetime
    tasks: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    as_of: datetime | None = None
    retrain: RetrainMode = "inline"


@dataclass(frozen=True)
class CycleJobResult:
    """What each step did, its wall time, and the tasks monitoring skipped (already done)."""

    as_of: datetime
    ingest: IngestJobResult
    features: FeaturesJobResult
    scoring: ScoringJobResult
    monitoring: MonitoringJobResult
    seconds: dict[str, float] = field(default_factory=dict)
    already_monitored: tuple[str, ...] = ()

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def summary(self) -> str:
        """One line: rows loaded, scores written, tasks monitored, each step's wall time."""
        skipped = f" ({', '.join(self.already_monitored)} already monitored)" if self.already_monitored else ""
        return (f"cycle as of {self.as_of:%Y-%m-%d %H:%M} UTC: {self.ingest.total('rows_loaded'):,} rows loaded, "
                f"{self.scoring.rows_written:,} scores, {len(self.monitoring.runs)} task(s) monitored{skipped} "
                f"({sum(len(r.segments) for r in self.monitoring.runs)} segment(s)); "
                + ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items()))


def monitored_tasks(rt: Runtime, tasks: Sequence[str], as_of: datetime) -> list[str]:
    """The tasks with a stored monitoring run as of exactly ``as_of``."""
    from journey_ml.monitoring import store

    done = []
    for t in tasks:
        last = store.runs(rt.engine, t, limit=1)
        if last and utc(last[0].as_of, "as_of") == as_of:
            done.append(t)
    return done


def run_cycle(rt: Runtime, params: CycleParams, *, step: Step = direct) -> CycleJobResult:
    """Run the daily cycle; each step through ``step``.

    Raises JobFailed (with the ingest result) when a source fails, so nothing downstream
    runs on partial data; ConfigError for an unknown task; SchemaNotCurrent."""
    require_schema(rt.engine)
    tasks = tuple(resolve_tasks(rt.config, params.tasks))
    sources = tuple(resolve_sources(rt.config, params.sources))
    now = utc(params.now, "now")
    seconds: dict[str, float] = {}

    def timed(name: str, keys: Sequence[str], fn: Callable[[], R]) -> R:
        t0 = time.perf_counter()
        out = step(name, keys, fn)
        seconds[name] = time.perf_counter() - t0
        return out

    def ingest() -> IngestJobResult:
        res = run_ingest(rt, IngestParams(received_at=now, sources=sources, incremental=True))
        if not res.ok:
            raise JobFailed(res.error or "ingestion failed", res)
        return res

    ing = timed("ingest", sources, ingest)
    as_of, _ = resolve_as_of(rt.engine, params.as_of)
    # after ingestion, the steps read the same data: a task's features as of T with a given
    # feature set are built once (features, scoring and monitoring share them)
    memo = FeatureMemo()
    feats = timed("features", tasks, lambda: run_features(rt, FeaturesParams(tasks=tasks, as_of=as_of), build=memo))
    scores = timed("score", tasks, lambda: run_scoring(rt, ScoringParams(scored_at=now, tasks=tasks, as_of=as_of),
                                                       build=memo))
    done: list[str] = []

    def monitor() -> MonitoringJobResult:
        # checked inside the step, so a retried step does not monitor a task twice either
        done[:] = monitored_tasks(rt, tasks, as_of)
        todo = tuple(t for t in tasks if t not in done)
        if not todo:
            return MonitoringJobResult(as_of, ())
        return run_monitoring(rt, MonitoringParams(now=now, tasks=todo, as_of=as_of, retrain=params.retrain),
                              build=memo)

    mon = timed("monitor", tasks, monitor)
    return CycleJobResult(as_of, ing, feats, scores, mon, seconds, tuple(done))
