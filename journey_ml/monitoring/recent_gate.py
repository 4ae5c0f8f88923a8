"""After a drift decision: candidate vs production on the most recent matured data (#11.4).

The training gate compares a retrained candidate with production on the training holdout,
whose newest date is ``as_of - horizon``: after a recent drift that holdout is mostly
pre-drift (its 30/90-day windows reach back before the onset), so a candidate that learned
the new behaviour cannot show it there. This gate judges both on the newest dates whose
labels have matured by ``as_of`` (``dates`` dates, ``every_days`` apart, newest first), so it
uses post-drift data wherever there is any. Same metric (ROC AUC) and the registry's margin,
which is > 0: a tie is never promoted.

Kept apart from `journey_ml.training` on purpose: it only chooses the rows of the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from journey_ml.config import JourneyConfig
from journey_ml.features import FeatureSet, build_features, labels
from journey_ml.segments import GLOBAL, task_segments


@dataclass(frozen=True)
class RecentGate:
    """Both models on the same recent matured rows, and whether the candidate wins."""

    dates: list[datetime]
    rows: int
    positives: int
    candidate_roc_auc: float | None
    production_roc_auc: float | None
    promote: bool
    reason: str


def comparison_dates(config: JourneyConfig, task: str, as_of: datetime, *, dates: int = 3,
                     every_days: int = 14) -> list[datetime]:
    """The newest ``dates`` as-of dates whose horizon closed by ``as_of``, newest first."""
    newest = (as_of - timedelta(days=config.task(task).horizon_days)).replace(hour=0, minute=0, second=0,
                                                                              microsecond=0)
    return [newest - timedelta(days=i * every_days) for i in range(dates)]


def recent_rows(engine: Engine, config: JourneyConfig, task: str, segment: str, when: list[datetime],
                fs: FeatureSet) -> tuple[pd.DataFrame, np.ndarray]:
    """The segment's features and matured labels at each date of ``when``, stacked."""
    frames, ys = [], []
    for t in when:
        frame = build_features(engine, config, task, t, feature_set=fs).frame
        if segment != GLOBAL and len(frame):
            frame = frame[task_segments(frame, config, task).to_numpy() == segment]
        if len(frame):
            frames.append(frame)
            ys.append(labels(engine, config, task, t, frame.index).to_numpy())
    if not frames:
        return pd.DataFrame(columns=fs.names()), np.array([], dtype=int)
    return pd.concat(frames), np.concatenate(ys)


def recent_gate(engine: Engine, config: JourneyConfig, task: str, segment: str, candidate, production,
                as_of: datetime, *, dates: int = 3, every_days: int = 14, min_positives: int = 10) -> RecentGate:
    """Compare two loaded models (``.scorer``, ``.feature_set``) on recent matured rows.

    ``candidate`` wins when its ROC AUC beats production's by at least the registry's
    promotion margin (> 0). Too few rows or positives: no promotion, the reason says why.
    """
    from journey_ml.monitoring.performance import _auc
    from journey_ml.registry._gate import evaluate_gate

    when = comparison_dates(config, task, as_of, dates=dates, every_days=every_days)
    fs = FeatureSet.from_dict(candidate.feature_set)
    x, y = recent_rows(engine, config, task, segment, when, fs)
    pos = int(y.sum())
    span = f"{min(when):%Y-%m-%d}..{max(when):%Y-%m-%d}"
    if pos < min_positives or len(y) - pos < min_positives:
        return RecentGate(when, len(y), pos, None, None, False,
                          f"recent matured data {span}: {len(y)} rows, {pos} positive: too few to compare")
    pfs = FeatureSet.from_dict(production.feature_set) if production.feature_set else fs
    px = x if pfs.to_dict() == fs.to_dict() else recent_rows(engine, config, task, segment, when, pfs)[0]
    cand = _auc(np.asarray(candidate.scorer.predict_proba(x[candidate.scorer.feature_names]), dtype=float), y)
    prod = _auc(np.asarray(production.scorer.predict_proba(px[production.scorer.feature_names]), dtype=float), y)
    gate = evaluate_gate(cand, prod, "roc_auc", config.registry.promotion_margin)
    return RecentGate(when, len(y), pos, cand, prod, gate.promote,
                      f"on recent matured data {span} ({len(y)} rows, {pos} positive): {gate.reason}")


__all__ = ["RecentGate", "recent_gate", "comparison_dates", "recent_rows"]
