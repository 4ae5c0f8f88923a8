"""The features job: point-in-time snapshots (and segment memberships) of each task as of T."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from journey_ml.features import build_features
from journey_ml.jobs._common import require_schema, resolve_as_of, resolve_tasks
from journey_ml.runtime import Runtime
from journey_ml.snapshots import SnapshotResult, build_and_store


@dataclass(frozen=True)
class FeaturesParams:
    """``tasks``: default every configured task; ``as_of``: default the newest event;
    ``created_at``: when the snapshot was taken (default: ``as_of``)."""

    tasks: tuple[str, ...] = ()
    as_of: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class FeaturesJobResult:
    as_of: datetime
    data_end: datetime
    snapshots: tuple[SnapshotResult, ...]


def run_features(rt: Runtime, params: FeaturesParams, *, build=build_features) -> FeaturesJobResult:
    """Build and store each task's feature snapshot as of T (labels attached once matured).

    Raises ConfigError for an unknown task, SchemaNotCurrent, TrainingError on an empty
    warehouse. ``build``: the feature builder (the cycle's `FeatureMemo`)."""
    require_schema(rt.engine)
    names = resolve_tasks(rt.config, params.tasks)
    as_of, end = resolve_as_of(rt.engine, params.as_of)
    snaps = tuple(build_and_store(rt.engine, rt.config, n, as_of, data_end=end, created_at=params.created_at,
                                  build=build)
                  for n in names)
    return FeaturesJobResult(as_of, end, snaps)
