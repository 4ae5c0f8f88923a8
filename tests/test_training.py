"""Training end to end on a small simulated world: time splits, pooling, gate, ledger."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from journey_ml.config import load_config
from journey_ml.db import make_engine, upgrade
from journey_ml.ingest import ingest_all
from journey_ml.simulate import SimulationParams, simulate
from journey_ml.training import (
    FINGERPRINT_TAG,
    GLOBAL,
    TrainingError,
    data_end,
    prepare_training,
    train_segment,
)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """600 simulated accounts ingested into a SQLite warehouse, with a SQLite MLflow store."""
    root = tmp_path_factory.mktemp("world")
    simulate(SimulationParams(accounts=600, seed=5), root / "exports")
    cfg, _ = load_config(None)
    # a small world: lower the bar for a segment of its own so the gate is exercised
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={
        "min_segment_rows": 150, "min_segment_positives": 8,
        "xgboost": cfg.training.xgboost.model_copy(update={"n_estimators": 120})})})
    engine = make_engine(f"sqlite:///{root / 'warehouse.db'}")
    upgrade(engine)
    ingest_all(engine, cfg, data_dir=root / "exports", salt="t", received_at=datetime(2026, 7, 1, tzinfo=UTC))
    from journey_ml.registry import Registry

    registry = Registry(f"sqlite:///{root / 'mlflow.db'}", engine, experiment="test",
                        artifact_location=str(root / "artifacts"))
    return cfg, engine, registry


@pytest.fixture(scope="module")
def data(world):
    cfg, engine, _ = world
    return prepare_training(engine, cfg, "conversion", data_end(engine))


def test_time_split_holds_out_the_newest_dates(data):
    f = data.frame
    train, valid, test = (f[f["split"] == s]["as_of"] for s in ("train", "valid", "test"))
    assert train.max() < valid.min() and valid.max() < test.min()
    assert test.nunique() == 1 and test.iloc[0] == data.dates[-1]
    # labels look at most horizon days ahead, so the newest date's window has matured
    assert data.dates[-1] + timedelta(days=90) <= data.as_of
    assert set(f["label"].unique()) == {0, 1}


def test_global_and_segments_train_small_ones_are_pooled(world, data):
    cfg, engine, registry = world
    results = {s: train_segment(data, s, cfg, registry, engine) for s in [GLOBAL, *data.segments()]}
    g = results[GLOBAL]
    assert g.status == "promoted", g.reason
    assert 0.5 < g.metrics["roc_auc"] <= 1.0 and 0 <= g.metrics["brier"] < 0.25
    assert registry.production("conversion", GLOBAL).version == g.version
    statuses = {s: r.status for s, r in results.items()}
    assert "pooled" in statuses.values() or all(v == "promoted" for v in statuses.values())
    for r in results.values():
        if r.status == "pooled":
            assert "uses the global model" in r.reason and r.version is None
    # the drift reference sample is in the warehouse, not in an artifact
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM reference_samples WHERE model_name = :m AND version = :v"),
                         {"m": g.model_name, "v": g.version}).scalar_one()
    assert 0 < n <= cfg.training.reference_sample_rows
    # the ledger has the move to production with the gate's reason
    history = registry.history("conversion", GLOBAL)
    assert any(h.to_version == g.version and h.action == "promote" for h in history)


def test_worse_candidate_stays_staging(world, data):
    cfg, engine, registry = world
    before = registry.production("conversion", GLOBAL)
    assert before is not None
    # a crippled candidate: almost no trees, no useful depth
    weak = cfg.model_copy(update={"training": cfg.training.model_copy(update={
        "xgboost": cfg.training.xgboost.model_copy(update={"n_estimators": 1, "max_depth": 1})}),
        "registry": cfg.registry.model_copy(update={"promotion_margin": 0.01})})
    r = train_segment(data, GLOBAL, weak, registry, engine)
    assert r.status == "staged", r.reason
    assert "production" in r.reason or "not better" in r.reason or "margin" in r.reason
    assert registry.production("conversion", GLOBAL).version == before.version
    assert r.production_version == before.version and r.production_metrics is not None


def test_retraining_on_unchanged_data_registers_nothing(world, data):
    """#10.4: the same frame and settings again is 'unchanged' (no version, no ledger move);
    a frame that changed trains and registers a new version."""
    cfg, engine, registry = world
    first = train_segment(data, GLOBAL, cfg, registry, engine)
    assert first.status in ("promoted", "staged", "unchanged"), first.reason
    versions = [v.version for v in registry.versions("conversion", GLOBAL)]
    moves = len(registry.history("conversion", GLOBAL))
    again = train_segment(data, GLOBAL, cfg, registry, engine)
    assert again.status == "unchanged", again.reason
    assert "unchanged" in again.reason and again.version == (first.version or again.version)
    assert [v.version for v in registry.versions("conversion", GLOBAL)] == versions
    assert len(registry.history("conversion", GLOBAL)) == moves
    # one row fewer is other data: a new version is trained and registered
    frame = data.frame.drop(index=data.frame.index[data.frame["split"] == "train"][:1])
    changed = dataclasses.replace(data, frame=frame)
    out = train_segment(changed, GLOBAL, cfg, registry, engine)
    assert out.status in ("promoted", "staged"), out.reason
    assert out.version not in versions and len(registry.versions("conversion", GLOBAL)) == len(versions) + 1
    assert registry.version("conversion", GLOBAL, out.version).tags[FINGERPRINT_TAG] != \
        registry.version("conversion", GLOBAL, again.version).tags[FINGERPRINT_TAG]


def test_rules_model_is_a_version_of_the_same_registered_model(world, data):
    _, _, registry = world
    v = registry.find_version("conversion", GLOBAL, {"journey.rules_hash": None})
    assert v is not None and v.kind == "rules"


def test_no_data_is_a_clear_error(tmp_path):
    cfg, _ = load_config(None)
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(engine)
    with pytest.raises(TrainingError, match="the warehouse has no events yet"):
        data_end(engine)
    with pytest.raises(Exception, match="unknown task 'nope'"):
        prepare_training(engine, cfg, "nope", datetime(2026, 1, 1, tzinfo=UTC))
