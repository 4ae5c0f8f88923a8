"""The baseline gate and the segment-vs-global check, through `train_segment` with a real
SQLite MLflow store and warehouse (#12 What to build 4).

The data are small and made by hand, so what must happen is known: the label depends on
recency and visits; ``noise_*`` carry nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from journey_ml.config import load_config
from journey_ml.db import make_engine, upgrade
from journey_ml.features.declaration import FeatureSet, FeatureSpec
from journey_ml.models.linear import LogisticScorer
from journey_ml.models.xgb import Column
from journey_ml.training import GLOBAL, TrainingData, train_segment

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

NAMES = ["days_since_last_event", "visits_30d", "noise_a", "noise_b"]
DATES = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=30 * i) for i in range(3)]


def _feature_set() -> FeatureSet:
    return FeatureSet("test-1", "contact", tuple(FeatureSpec(n, "numeric", n.replace("_", " "), "test")
                                                 for n in NAMES))


def _rows(n: int, split: str, segment: str, rng: np.random.Generator) -> pd.DataFrame:
    days = rng.exponential(20, n)
    visits = rng.poisson(1.5, n).astype(float)
    logit = -1.0 - 0.9 * np.log1p(days) + 0.9 * visits
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    as_of = DATES[("train", "valid", "test").index(split)]
    return pd.DataFrame({"entity_id": [f"{segment}{split}{i}" for i in range(n)], "as_of": as_of,
                         "days_since_last_event": days, "visits_30d": visits,
                         "noise_a": rng.normal(size=n), "noise_b": rng.normal(size=n),
                         "label": y, "segment": segment, "split": split})


def _data(sizes: dict[str, tuple[int, int, int]], seed: int = 3) -> TrainingData:
    rng = np.random.default_rng(seed)
    parts = [_rows(n, split, seg, rng) for seg, ns in sizes.items()
             for split, n in zip(("train", "valid", "test"), ns, strict=True)]
    frame = pd.concat(parts, ignore_index=True)
    return TrainingData("conversion", DATES[-1] + timedelta(days=90), DATES, _feature_set(), frame,
                        "tier" if len(sizes) > 1 else None)


def _config(**training):
    cfg, _ = load_config(None)
    t = cfg.training.model_copy(update={"min_segment_rows": 50, "min_segment_positives": 5, **training})
    return cfg.model_copy(update={"training": t, "rules": {}})


@pytest.fixture
def world(tmp_path):
    from journey_ml.registry import Registry

    engine = make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    upgrade(engine)
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", engine, experiment="gate",
                        artifact_location=str(tmp_path / "artifacts"))
    return engine, registry


def test_a_weak_candidate_on_small_data_is_refused_naming_the_baseline(world):
    engine, registry = world
    data = _data({GLOBAL: (300, 200, 300)})
    # a deliberately weak candidate: XGBoost only, one stump
    cfg = _config(candidates=["xgboost"])
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={
        "xgboost": cfg.training.xgboost.model_copy(update={"n_estimators": 1, "max_depth": 1})})})
    r = train_segment(data, GLOBAL, cfg, registry, engine)
    assert r.model_kind == "xgboost" and r.version is not None
    assert set(r.baselines) == {"recency", "logistic"}
    best = max(r.baselines, key=lambda b: r.baselines[b]["roc_auc"])
    assert r.metrics["roc_auc"] < r.baselines[best]["roc_auc"]
    assert r.status == "staged" and r.gate_passed is False
    assert r.reason.startswith(f"not promoted: below the best baseline, {best} (roc_auc "
                               f"{r.metrics['roc_auc']:.4f} vs {best} {r.baselines[best]['roc_auc']:.4f}")
    # no production model, and there was none before: production was no obstacle
    assert registry.production("conversion", GLOBAL) is None
    v = registry.version("conversion", GLOBAL, r.version)
    assert v.tags["journey.gate"] == r.reason
    assert v.tags[f"journey.baseline.{best}.roc_auc"] == f"{r.baselines[best]['roc_auc']:.4f}"
    assert v.tags["journey.model_kind"] == "xgboost"


def test_selection_takes_the_best_candidate_and_records_why(world):
    engine, registry = world
    data = _data({GLOBAL: (300, 200, 300)})
    r = train_segment(data, GLOBAL, _config(), registry, engine)
    assert set(r.validation) == {"xgboost", "logistic"}
    assert r.validation[r.model_kind] == max(r.validation.values())
    assert r.selection.startswith(f"{r.model_kind} won on validation roc_auc")
    assert any("positives" in n for n in r.selection_notes)  # parameters fitted to the size
    v = registry.version("conversion", GLOBAL, r.version)
    assert v.kind == r.model_kind and v.tags["journey.selection"] == r.selection
    loaded = registry.load("conversion", GLOBAL, version=r.version)
    assert loaded.scorer.kind == r.model_kind


def test_a_segment_model_that_does_not_beat_global_on_its_rows_hands_the_segment_to_global(world):
    from journey_ml.scoring.ladder import GLOBAL_MODEL, ModelCache, _RegistryReader, score_segment

    engine, registry = world
    data = _data({"big": (600, 300, 400), "small": (200, 150, 200)})
    cfg = _config(candidates=["logistic"])
    cfg = cfg.model_copy(update={"registry": cfg.registry.model_copy(update={"promotion_margin": 0.05})})
    # an older segment model is production for "small"
    rows = data.rows("small")
    old = LogisticScorer([Column(n, "numeric") for n in NAMES]).fit(rows[rows["split"] == "train"],
                                                                     rows.loc[rows["split"] == "train", "label"])
    info = registry.log_model(old, task="conversion", segment="small")
    registry.promote("conversion", "small", info.version, reason="an earlier run")
    g = train_segment(data, GLOBAL, cfg, registry, engine)
    assert g.status == "promoted", g.reason
    r = train_segment(data, "small", cfg, registry, engine)
    assert r.global_serves and r.status == "staged"
    assert r.global_metrics is not None
    assert r.reason.startswith(f"not promoted: the global model serves this segment (segment model roc_auc "
                               f"{r.metrics['roc_auc']:.4f} vs global model {r.global_metrics['roc_auc']:.4f} "
                               "on this segment's holdout rows")
    assert r.reason.endswith(f"production v{info.version} retired, the global model serves small")
    # the segment has no production model now; the ledger says why
    assert registry.production("conversion", "small") is None
    move = registry.history("conversion", "small")[0]
    assert move.action == "retire" and move.from_version == info.version and move.to_version is None
    assert "global model serves the segment" in move.reason
    # and the scoring ladder serves the segment with the global model
    test = rows[rows["split"] == "test"].set_index("entity_id")
    got = score_segment(_RegistryReader(registry), cfg, "conversion", "small", test.index,
                        lambda fs, key=None: (test, {}), ModelCache(), None, 2)
    assert got.mode == GLOBAL_MODEL and got.model_version == g.version, got
    np.testing.assert_allclose(got.probability, registry.load("conversion", GLOBAL).scorer.predict_proba(test[NAMES]))
