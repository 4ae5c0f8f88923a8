"""Snapshot tasks: an entity table with a label column and no timestamps becomes a task.

One row per entity (contact or account) from the latest export; the features are the
entity's attributes as declared for the task, without the label column; the label is that
column, 0/1. When the warehouse holds events, the task's other features (events,
firmographics) as of the snapshot are joined too (entities without events get no
activity: counts 0, recency missing).

`build_snapshot` has the signature of `build_features`, so batch scoring scores a snapshot
task through the same path.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from journey_ml.config import ConfigError, JourneyConfig
from journey_ml.features import (
    FeatureFrame,
    FeatureSet,
    build_features,
    declare_feature_set,
    discover_attributes,
)

SNAPSHOT_GROUPS = ("attribute",)  # the features a snapshot has without any event


def is_snapshot(config: JourneyConfig, task_name: str) -> bool:
    """Whether ``task_name`` is a snapshot task (raises ConfigError for an unknown task)."""
    return config.task(task_name).snapshot is not None


def label_key(config: JourneyConfig, task_name: str) -> str:
    """The attribute holding a snapshot task's label."""
    t = config.task(task_name)
    if t.snapshot is None:
        raise ConfigError(f"task {task_name!r} is not a snapshot task")
    return t.snapshot.label or t.outcome


def _table(entity: str) -> tuple[sa.Table, sa.Column]:
    from journey_ml.db.models import Account, Contact

    return (Contact.__table__, Contact.__table__.c.contact_id) if entity == "contact" else \
        (Account.__table__, Account.__table__.c.account_id)


def _has_events(engine: Engine) -> bool:
    from journey_ml.db.models import Event

    with engine.connect() as conn:
        return conn.execute(sa.select(Event.__table__.c.event_id).limit(1)).first() is not None


def snapshot_as_of(engine: Engine, config: JourneyConfig, task_name: str) -> datetime:
    """The time of the snapshot: the newest update of the task's entity table (UTC).

    Raises ValueError when the table is empty (nothing was ingested)."""
    table, _ = _table(config.task(task_name).entity)
    with engine.connect() as conn:
        latest = conn.execute(sa.select(sa.func.max(table.c.updated_at))).scalar_one_or_none()
    if latest is None:
        raise ValueError(f"task {task_name!r}: the warehouse has no {config.task(task_name).entity}s yet: "
                         "run `journey-ml ingest` with the entity export first")
    if isinstance(latest, str):  # SQLite aggregates bypass the column type
        latest = datetime.fromisoformat(latest)
    return latest if latest.tzinfo else latest.replace(tzinfo=UTC)


def snapshot_feature_set(engine: Engine, config: JourneyConfig, task_name: str) -> FeatureSet:
    """The task's declared feature set without the label column; only the attribute
    features unless the warehouse holds events."""
    task = config.task(task_name)
    key = label_key(config, task_name)
    attrs = {k: v for k, v in discover_attributes(engine, config, task_name).items() if k != key}
    fs = declare_feature_set(config, task, attrs)
    events = _has_events(engine)
    keep = tuple(f for f in fs.features if f.source != key and (events or f.group in SNAPSHOT_GROUPS))
    return FeatureSet(fs.version + ("-snapshot" if not events else "-snapshot-events"), fs.entity, keep)


def _entities(engine: Engine, entity: str) -> tuple[pd.Index, list[dict]]:
    table, key = _table(entity)
    cols = [key, table.c.attributes]
    where = table.c.opted_out.is_not(sa.true()) if entity == "contact" else sa.true()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*cols).where(where).order_by(key)).all()
    return pd.Index([str(r[0]) for r in rows], name="entity_id", dtype=object), \
        [r[1] if isinstance(r[1], dict) else {} for r in rows]


def build_snapshot(engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime,
                   feature_set: FeatureSet | None = None) -> FeatureFrame:
    """Features of every entity of a snapshot task (one row each, index entity_id).

    Attribute features come from the entity's latest attributes; other features (events,
    firmographics) from `build_features` as of ``as_of``, joined on the entity id. Raises
    ConfigError for an unknown or non-snapshot task.
    """
    fs = feature_set or snapshot_feature_set(engine, config, task_name)
    entity = config.task(task_name).entity
    ids, recs = _entities(engine, entity)
    attr = pd.DataFrame.from_records(recs, index=ids) if recs else pd.DataFrame(index=ids)
    out: dict[str, np.ndarray] = {}
    others = [f for f in fs.features if f.group != "attribute"]
    if others:
        try:
            built = build_features(engine, config, task_name, as_of,
                                   feature_set=FeatureSet(fs.version, fs.entity, tuple(others))).frame
        except Exception:  # noqa: BLE001 - no population (no events): the entities have no activity
            built = pd.DataFrame(index=pd.Index([], name="entity_id"), columns=[f.name for f in others])
        built = built.reindex(ids)
    for f in fs.features:
        if f.group == "attribute":
            col = attr[f.source] if f.source in attr.columns else pd.Series(None, index=ids, dtype=object)
            if f.kind == "numeric":
                out[f.name] = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")
            else:
                known = set(f.categories)
                out[f.name] = np.array([None if _missing(v) else (str(v) if str(v) in known else "other")
                                        for v in col], dtype=object)
        else:
            v = built[f.name]
            if f.kind == "numeric":
                v = pd.to_numeric(v, errors="coerce")
                if not f.name.startswith("days_"):  # counts and sums: no event means 0
                    v = v.fillna(0.0)
                out[f.name] = v.to_numpy(dtype="float64")
            else:
                out[f.name] = v.to_numpy(dtype=object)
    frame = pd.DataFrame(out, index=ids, columns=[f.name for f in fs.features])
    t = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    return FeatureFrame(task=task_name, as_of=t, feature_set=fs, frame=frame)


def snapshot_labels(engine: Engine, config: JourneyConfig, task_name: str, entity_ids: pd.Index) -> pd.Series:
    """The 0/1 label of each entity, from its label attribute (missing -> NaN).

    A number is 1 when > 0; text is 1 when it is one of the task's ``positive`` values
    (case-insensitive), else 0."""
    task = config.task(task_name)
    key = label_key(config, task_name)
    positive = {p.lower() for p in task.snapshot.positive}
    ids, recs = _entities(engine, task.entity)
    raw = pd.Series([r.get(key) for r in recs], index=ids, dtype=object).reindex(entity_ids)

    def one(v) -> float:
        if _missing(v):
            return math.nan
        if isinstance(v, bool):
            return float(v)
        if isinstance(v, int | float):
            return float(v > 0)
        return 1.0 if str(v).strip().lower() in positive else 0.0

    return pd.Series([one(v) for v in raw], index=raw.index, name="label", dtype="float64")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


__all__ = ["is_snapshot", "label_key", "snapshot_as_of", "snapshot_feature_set", "build_snapshot",
           "snapshot_labels", "SNAPSHOT_GROUPS"]
