"""Features and training flows end to end: Prefect test server, PostgreSQL warehouse, MLflow on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL, count

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]


@pytest.fixture
def mlflow_pg():
    name = f"journey_mlflow_{uuid.uuid4().hex[:8]}"
    u = make_url(PG_ADMIN_URL)
    info = f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"
    with psycopg.connect(info, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield u.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(info, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_features_and_train_flows(prefect_harness, pg_engine, pg_url, mlflow_pg, tmp_path, monkeypatch):
    from journey_ml.simulate import SimulationParams, simulate

    simulate(SimulationParams(accounts=500, seed=3), tmp_path / "exports")
    with open(__import__("journey_ml").__path__[0] + "/default_config.yaml") as f:
        cfg = yaml.safe_load(f)
    cfg["data_dir"] = str(tmp_path / "exports")
    cfg["training"].update({"min_segment_rows": 150, "min_segment_positives": 8})
    cfg["training"]["xgboost"]["n_estimators"] = 80
    cfg["tasks"] = {"conversion": cfg["tasks"]["conversion"]}
    cfg["rules"] = {"conversion": cfg["rules"]["conversion"]}
    cfg["scoring"]["playbook"] = [r for r in cfg["scoring"]["playbook"] if r["task"] == "conversion"]
    path = tmp_path / "journey.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("JOURNEY_DATABASE_URL", pg_url)
    monkeypatch.setenv("JOURNEY_MLFLOW_TRACKING_URI", mlflow_pg)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JOURNEY_PII_SALT", "test-salt")  # required on PostgreSQL (#9 case 13)

    from flows.features import features_flow
    from flows.ingest import ingest_flow
    from flows.train import train_flow

    ingest_flow(config_path=str(path), received_at=datetime(2026, 7, 1, tzinfo=UTC))
    [snap] = features_flow(config_path=str(path)).snapshots
    assert snap.task == "conversion" and snap.entities > 0
    assert count(pg_engine, "feature_snapshots") == snap.entities
    assert count(pg_engine, "segment_memberships", "WHERE segmentation = 'firmographic'") == snap.entities

    results = train_flow(config_path=str(path)).outcomes
    by_seg = {r.segment: r for r in results}
    assert by_seg["global"].status == "promoted", by_seg["global"].reason
    assert set(by_seg) == {"global", "smb", "mid_market", "enterprise"}
    # every promotion is in the ledger, and MLflow's alias agrees with it
    from journey_ml.runtime import Runtime

    rt = Runtime.load(config_path=str(path))
    for r in results:
        if r.status == "promoted":
            assert rt.registry.production("conversion", r.segment).version == r.version
    with pg_engine.connect() as conn:
        moves = conn.execute(sa.text("SELECT count(*) FROM alias_ledger WHERE alias = 'production'")).scalar_one()
    assert moves == sum(r.status == "promoted" for r in results)

    # retraining on the same data (#10.4): nothing trained, nothing registered, nothing moved
    versions = {s: [v.version for v in rt.registry.versions("conversion", s)] for s in by_seg}
    again = {r.segment: r for r in train_flow(config_path=str(path)).outcomes}
    for seg, r in by_seg.items():
        if r.version is not None:
            assert again[seg].status == "unchanged" and again[seg].version == r.version, again[seg].reason
    assert {s: [v.version for v in rt.registry.versions("conversion", s)] for s in by_seg} == versions
    with pg_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alias_ledger WHERE alias = 'production'")).scalar_one() \
            == moves
    # each segment's training held its own concurrency slot (created on first use, released)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for seg in by_seg:
            lim = client.read_global_concurrency_limit_by_name(f"journey-train-conversion-{seg}")
            assert lim.limit == 1 and lim.active_slots == 0
