"""Recency weighting of training dates (#11.4, ``training.recency_half_life_days``).

The weights halve every half-life before the newest training date; and on data whose
behaviour changed (the signal moves from one column to another), a segment trained with
weighting scores the recent period better than the same segment trained without it, through
`train_segment` with a real MLflow store and warehouse.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from journey_ml.config import load_config
from journey_ml.db import make_engine, upgrade
from journey_ml.features.spec import FeatureSet, FeatureSpec
from journey_ml.training import GLOBAL, TrainingData, recency_weights, train_segment

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("ages", "half_life", "expected"), [
    ([0, 30, 60, 90], 30.0, [1.0, 0.5, 0.25, 0.125]),
    ([0, 45, 90], 90.0, [1.0, 2 ** -0.5, 0.5]),
    ([10, 10], 5.0, [1.0, 1.0]),  # one date: all newest
    ([0, 30], None, None),  # off
])
def test_weights_halve_every_half_life_before_the_newest_date(ages, half_life, expected):
    dates = pd.Series([T0 + timedelta(days=100 - a) for a in ages])
    w = recency_weights(dates, half_life)
    if expected is None:
        assert w is None
    else:
        assert w == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("bad", [0, -3.0, float("nan"), "30"])
def test_a_bad_half_life_is_named(bad):
    with pytest.raises(ValueError, match="training.recency_half_life_days must be a number of days > 0"):
        recency_weights(pd.Series([T0]), bad)


def test_config_key_defaults_off_and_rejects_zero():
    from journey_ml.config import ConfigError, parse_config

    cfg, _ = load_config(None)
    assert cfg.training.recency_half_life_days is None
    with pytest.raises(ConfigError, match="recency_half_life_days"):
        parse_config({**cfg.model_dump(mode="json"), "training": {"recency_half_life_days": 0}}, "x.yaml")


def _changed_world() -> TrainingData:
    """12 monthly dates of 400 rows; the label follows ``a`` until date 7 and ``b`` from then
    on. Train: dates 0-9, validation 10, test 11 (after the change)."""
    rng = np.random.default_rng(11)
    dates = [T0 + timedelta(days=30 * i) for i in range(12)]
    parts = []
    for i, d in enumerate(dates):
        n = 400
        a, b = rng.normal(size=n), rng.normal(size=n)
        signal = a if i < 7 else b
        y = (rng.random(n) < 1 / (1 + np.exp(-(3.0 * signal - 1.5)))).astype(int)
        parts.append(pd.DataFrame({"entity_id": [f"e{i}-{k}" for k in range(n)], "as_of": pd.Timestamp(d),
                                   "a": a, "b": b, "label": y}))
    frame = pd.concat(parts, ignore_index=True)
    idx = frame["as_of"].map({pd.Timestamp(d): i for i, d in enumerate(dates)})
    frame["split"] = np.where(idx == 11, "test", np.where(idx == 10, "valid", "train"))
    frame["segment"] = GLOBAL
    fs = FeatureSet("test", "account", (FeatureSpec("a", "numeric", "a", "g"), FeatureSpec("b", "numeric", "b", "g")))
    return TrainingData("conversion", dates[-1] + timedelta(days=91), dates, fs, frame, None)


def test_weighting_scores_the_period_after_a_change_better(tmp_path):
    from journey_ml.registry import Registry

    base, _ = load_config(None)
    data = _changed_world()
    aucs, notes = {}, {}
    for name, half_life in (("plain", None), ("weighted", 30.0)):
        cfg = base.model_copy(update={"training": base.training.model_copy(update={
            "recency_half_life_days": half_life, "min_segment_rows": 100, "min_segment_positives": 10,
            "xgboost": base.training.xgboost.model_copy(update={"n_estimators": 80})})})
        root = tmp_path / name
        root.mkdir()
        engine = make_engine(f"sqlite:///{root / 'warehouse.db'}")
        upgrade(engine)
        registry = Registry(f"sqlite:///{root / 'mlflow.db'}", engine, experiment="recency",
                            artifact_location=str(root / "artifacts"))
        out = train_segment(data, GLOBAL, cfg, registry, engine)
        engine.dispose()
        assert out.status == "promoted", out.reason
        aucs[name], notes[name] = out.metrics["roc_auc"], out.selection_notes
    # the test date is after the change; the plain model spreads itself over both regimes
    assert aucs["weighted"] > aucs["plain"] + 0.03, aucs
    assert any(n.startswith("recency weighting: half-life 30 days, weights 0.") for n in notes["weighted"])
    assert not any(n.startswith("recency weighting") for n in notes["plain"])
