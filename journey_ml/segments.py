"""Dynamic segments: firmographic rules, an attribute column, or behavioural clusters.

Segments are assigned from the feature frame as of T, so an entity can move between
segments over time; memberships are stored per as-of date (table segment_memberships).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine, bindparam, delete, text

from journey_ml.config import SegmentationConfig
from journey_ml.db.models import SegmentMembership, UTCDateTime

GLOBAL = "global"  # the pooled segment: its model scores entities of segments without one


def candidate_segments(config, task_name: str) -> list[str]:
    """``global`` and every segment the task's segmentation can assign (rules and their
    default), in order. Raises ConfigError for an unknown task."""
    task = config.task(task_name)
    out = [GLOBAL]
    if task.segment_by:
        seg = config.segments[task.segment_by]
        out += [r.name for r in seg.rules] + ([seg.default] if seg.kind == "rules" else [])
    return list(dict.fromkeys(out))


# behavioural features clustered by default (present in every feature set)
DEFAULT_CLUSTER_FEATURES = [
    "events_30d", "active_days_30d", "ch_web_30d", "ch_email_30d", "ch_webinar_90d",
    "ch_sales_90d", "stage_consideration_90d", "stage_decision_90d", "pricing_page_view_30d",
    "comparison_page_view_30d", "content_download_90d", "demo_request_90d", "days_since_first_event",
]


def _column(frame: pd.DataFrame, column: str) -> pd.Series:
    name = column
    if column.startswith("attributes."):
        name = "attr_" + re.sub(r"[^a-z0-9_]", "_", column.split(".", 1)[1].lower())
    if name not in frame.columns:
        raise ValueError(f"segment column {column!r} is not a feature (looked for {name!r})")
    return frame[name]


def _slug(v: object) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", str(v).strip().lower()).strip("_")
    return s or "unknown"


@dataclass
class ClusterSegmenter:
    """k-means on standardised log-counts, with names from what distinguishes each cluster."""

    features: list[str]
    k: int = 3
    random_state: int = 7
    fit_rows: int = 100_000  # fitted on a seeded sample of at most this many rows
    names_: list[str] = field(default_factory=list)

    def fit(self, frame: pd.DataFrame) -> ClusterSegmenter:
        from sklearn.cluster import KMeans

        X = self._prepare(frame)
        if len(X) < self.k:
            raise ValueError(f"cannot cluster {len(X)} entities into {self.k} segments")
        if len(X) > self.fit_rows:
            rng = np.random.default_rng(self.random_state)
            X = X[np.sort(rng.choice(len(X), self.fit_rows, replace=False))]
        self.mean_ = X.mean(axis=0)
        self.std_ = X.std(axis=0) + 1e-9
        Z = (X - self.mean_) / self.std_
        self.kmeans_ = KMeans(n_clusters=self.k, n_init=10, random_state=self.random_state).fit(Z)
        self.names_ = self._names(self.kmeans_.cluster_centers_)
        return self

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        Z = (self._prepare(frame) - self.mean_) / self.std_
        labels = self.kmeans_.predict(Z)
        return pd.Series([self.names_[i] for i in labels], index=frame.index, name="segment")

    def _prepare(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(f"cluster features missing from the frame: {missing}")
        X = frame[self.features].apply(pd.to_numeric, errors="coerce").fillna(0).clip(lower=0)
        return np.log1p(X.to_numpy(dtype=float))

    def _names(self, centers: np.ndarray) -> list[str]:
        """Each cluster is named after its most distinctive feature (highest centre z-score)."""
        names: list[str] = []
        for c in centers:
            order = np.argsort(-c)
            top = self.features[order[0]]
            if c[order[0]] <= 0.25:
                base = "low_engagement"
            else:
                base = re.sub(r"_(\d+)d$", "", top).replace("days_since_first_event", "long_tenure")
                base = f"{base}_heavy"
            name, i = base, 2
            while name in names:
                name, i = f"{base}_{i}", i + 1
            names.append(name)
        return names


def assign_segments(frame: pd.DataFrame, cfg: SegmentationConfig, *, random_state: int = 7,
                    segmenter: ClusterSegmenter | None = None) -> pd.Series:
    """Segment of every row of a feature frame (index preserved).

    rules: the first rule whose [min, max] holds the column's value (inclusive), else
    ``cfg.default``; column: the column's value, slugged; clusters: a ClusterSegmenter
    (fitted here unless one is given). Raises ValueError for a column that is not a feature.
    """
    if frame.empty:
        return pd.Series([], dtype=object, name="segment")
    if cfg.kind == "rules":
        # numpy, not Series ops: the API assigns one row per request and pays per operation
        v = pd.to_numeric(_column(frame, cfg.column or ""), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        out = np.full(len(v), cfg.default, dtype=object)
        assigned = np.isnan(v)  # missing values keep the default
        for r in cfg.rules:
            m = ~assigned
            if r.min is not None:
                m &= v >= r.min
            if r.max is not None:
                m &= v <= r.max
            out[m] = r.name
            assigned |= m
        return pd.Series(out, index=frame.index, name="segment", dtype=object)
    if cfg.kind == "column":
        s = _column(frame, cfg.column or "")
        return s.map(lambda x: cfg.default if x is None or x != x else _slug(x)).rename("segment")
    seg = segmenter or ClusterSegmenter(cfg.features or DEFAULT_CLUSTER_FEATURES, cfg.k, random_state,
                                          cfg.fit_rows).fit(frame)
    return seg.predict(frame)


def task_segments(frame: pd.DataFrame, config, task_name: str) -> pd.Series:
    """Each entity's segment for a task, as scoring and monitoring assign it (``global``
    when the task is unsegmented or a row gets none). Raises what `assign_segments` raises."""
    task = config.task(task_name)
    if not task.segment_by or frame.empty:
        return pd.Series(GLOBAL, index=frame.index, dtype=object)
    seg = assign_segments(frame, config.segments[task.segment_by], random_state=config.training.seed)
    return seg.reindex(frame.index).fillna(GLOBAL).astype(str)


def store_memberships(engine: Engine, segmentation: str, as_of: datetime, segments: pd.Series,
                      entity_kind: str) -> int:
    """Replace the memberships of ``segmentation`` as of ``as_of``; returns rows written.

    PostgreSQL: the (entity, segment) pairs by COPY into a temporary table, then one
    INSERT ... SELECT (a million rows in seconds); other backends: executemany."""
    ids = [str(e) for e in segments.index]
    segs = [str(s) for s in segments.to_numpy(dtype=object)]
    with engine.begin() as conn:
        conn.execute(delete(SegmentMembership).where(SegmentMembership.segmentation == segmentation,
                                                     SegmentMembership.as_of == as_of))
        if not ids:
            return 0
        if engine.dialect.name == "postgresql":
            import pyarrow as pa

            from journey_ml.db.copy import copy_arrow

            stage = "_journey_membership_stage"
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} (entity_id text, segment text) ON COMMIT DROP")
            copy_arrow(conn.connection.driver_connection, stage,
                       pa.table({"entity_id": pa.array(ids, pa.string()), "segment": pa.array(segs, pa.string())}))
            conn.execute(text(f"INSERT INTO {SegmentMembership.__tablename__} (segmentation, as_of, entity_id, "
                              f"entity_kind, segment) SELECT :segmentation, :as_of, entity_id, :kind, segment "
                              f"FROM {stage}").bindparams(bindparam("as_of", type_=UTCDateTime)),
                         {"segmentation": segmentation, "as_of": as_of, "kind": entity_kind})
        else:
            conn.execute(SegmentMembership.__table__.insert(),
                         [{"segmentation": segmentation, "as_of": as_of, "entity_id": e, "entity_kind": entity_kind,
                           "segment": s} for e, s in zip(ids, segs, strict=True)])
    return len(ids)
