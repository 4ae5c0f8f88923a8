"""Feature snapshots as of T: features, segment memberships and (once matured) labels."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from journey_ml.config import JourneyConfig
from journey_ml.features import (
    build_features,
    declare_feature_set,
    discover_attributes,
    labels,
    store_snapshot,
)
from journey_ml.features.boundary import label_matured, label_window
from journey_ml.segments import assign_segments, store_memberships


@dataclass
class SnapshotResult:
    task: str
    as_of: datetime
    entities: int
    features: int
    feature_set_version: str
    segments: dict[str, dict[str, int]] = field(default_factory=dict)  # segmentation -> segment -> n
    labelled: bool = False
    positive_rate: float | None = None
    # when the label window [as_of, as_of + horizon) closes: labels are attached from then on
    labels_mature_at: datetime | None = None
    data_end: datetime | None = None  # the newest event the labels could look at

    @property
    def not_labelled_because(self) -> str:
        """Why there are no labels yet ("" when labelled)."""
        if self.labelled:
            return ""
        if self.labels_mature_at is None:
            return "no labels"
        end = f" (data end {self.data_end:%Y-%m-%d})" if self.data_end is not None else ""
        return f"horizon not closed: labels mature on {self.labels_mature_at:%Y-%m-%d}{end}"

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("as_of", "labels_mature_at", "data_end"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


def build_and_store(engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime, *,
                    data_end: datetime | None = None, created_at: datetime | None = None,
                    seed: int | None = None, build=build_features) -> SnapshotResult:
    """Build features of ``task_name`` as of ``as_of``, assign every configured segmentation,
    store memberships and the snapshot; attach labels when ``as_of + horizon <= data_end``.
    """
    task = config.task(task_name)
    fs = declare_feature_set(config, task, discover_attributes(engine, config, task_name))
    ff = build(engine, config, task_name, as_of, feature_set=fs)
    result = SnapshotResult(task_name, as_of, len(ff.frame), len(fs.features), fs.version,
                            labels_mature_at=label_window(as_of, task.horizon_days)[1], data_end=data_end)
    task_segments = None
    for name, seg_cfg in config.segments.items():
        if len(ff.frame) < (seg_cfg.k if seg_cfg.kind == "clusters" else 1):
            continue
        seg = assign_segments(ff.frame, seg_cfg, random_state=seed if seed is not None else config.training.seed)
        store_memberships(engine, name, as_of, seg, task.entity)
        result.segments[name] = seg.value_counts().to_dict()
        if name == task.segment_by:
            task_segments = seg
    y = None
    if data_end is not None and label_matured(as_of, task.horizon_days, data_end):
        y = labels(engine, config, task_name, as_of, ff.frame.index)
        result.labelled = True
        result.positive_rate = float(y.mean()) if len(y) else None
    store_snapshot(engine, ff, labels=y, segments=task_segments, created_at=created_at or as_of)
    return result
