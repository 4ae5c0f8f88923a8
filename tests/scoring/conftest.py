"""A small trained world shared by the scoring tests (built once per session)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from journey_ml.config import JourneyConfig, load_config
from journey_ml.db import make_engine, upgrade
from journey_ml.ingest import ingest_all
from journey_ml.simulate import SimulationParams, simulate
from journey_ml.training import GLOBAL, data_end, prepare_training, train_segment

RECEIVED_AT = datetime(2026, 7, 1, tzinfo=UTC)
SCORED_AT = datetime(2026, 7, 2, tzinfo=UTC)


@dataclass
class World:
    root: Path
    config: JourneyConfig
    engine: sa.Engine
    registry: object
    as_of: datetime
    outcomes: dict  # segment -> SegmentOutcome


def small_config() -> JourneyConfig:
    cfg, _ = load_config(None)
    # a small world: low bar for a segment of its own; one task keeps it quick
    return cfg.model_copy(update={
        "tasks": {"conversion": cfg.tasks["conversion"].model_copy(update={"training_as_of_count": 5})},
        "rules": {"conversion": cfg.rules["conversion"]},
        "scoring": cfg.scoring.model_copy(update={
            "playbook": [p for p in cfg.scoring.playbook if p.task == "conversion"],
            "default_actions": {"conversion": cfg.scoring.default_actions["conversion"]}}),
        "training": cfg.training.model_copy(update={
            "min_segment_rows": 150, "min_segment_positives": 8, "candidates": ["xgboost"],
            "xgboost": cfg.training.xgboost.model_copy(update={"n_estimators": 60})})})


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    """600 simulated accounts in a SQLite warehouse, conversion trained (global + segments)."""
    root = tmp_path_factory.mktemp("scoring_world")
    simulate(SimulationParams(accounts=600, seed=5), root / "exports")
    cfg = small_config()
    engine = make_engine(f"sqlite:///{root / 'warehouse.db'}")
    upgrade(engine)
    ingest_all(engine, cfg, data_dir=root / "exports", salt="t", received_at=RECEIVED_AT)
    from journey_ml.registry import Registry

    registry = Registry(f"sqlite:///{root / 'mlflow.db'}", engine, experiment="scoring-test",
                        artifact_location=str(root / "artifacts"))
    as_of = data_end(engine)
    data = prepare_training(engine, cfg, "conversion", as_of)
    outcomes = {s: train_segment(data, s, cfg, registry, engine) for s in [GLOBAL, *data.segments()]}
    # these tests are about scoring with segment models: every trained version serves, whether
    # or not the promotion gate (tests/test_training_gate.py) would have let it beat the global
    # model or the baselines on this small world - promoted by hand, as `models promote` does
    for seg, o in outcomes.items():
        if o.version is not None and o.status != "promoted":
            registry.promote("conversion", seg, o.version, reason="scoring test world: promoted by hand")
            o.status = "promoted"
    return World(root, cfg, engine, registry, as_of, outcomes)


@pytest.fixture(scope="session")
def pg_world(world) -> Iterator[World]:
    """The same exports ingested into a fresh PostgreSQL warehouse (its own database, so
    other tests' truncations cannot touch it); models from the SQLite world's registry."""
    import psycopg
    from sqlalchemy.engine import make_url

    from tests.conftest import PG_ADMIN_URL, _admin_conninfo

    name = f"journey_scoring_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        ingest_all(engine, world.config, data_dir=world.root / "exports", salt="t", received_at=RECEIVED_AT)
        yield World(world.root, world.config, engine, world.registry, data_end(engine), world.outcomes)
    finally:
        engine.dispose()
        with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
