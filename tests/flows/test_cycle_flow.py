"""The daily cycle (#10.3) on the trained small world: one flow, four steps, idempotent.

Runs on a copy of the shared world's warehouse (so the other tests' world is untouched)
with the Prefect test server: the flow's result, the stores it wrote, the concurrency
limits it held, and a second run that leaves the stores exactly as the first did; the
job called without Prefect writes the same scores.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import yaml

from journey_ml.db import make_engine
from tests.scoring.conftest import world  # noqa: F401 - the shared trained world fixture

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]

TABLES = ("events", "ingest_batches", "feature_snapshots", "segment_memberships", "scores", "monitor_runs",
          "monitor_decisions", "alias_ledger")


def stores(engine: sa.Engine) -> dict:
    """Row counts of the cycle's tables and a checksum of every stored score."""
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        rows = conn.execute(sa.text("SELECT task, entity_id, as_of, probability, band, segment, model_name, "
                                    "model_version, mode, reasons, action FROM scores "
                                    "ORDER BY task, entity_id, as_of")).all()
    digest = hashlib.sha256(json.dumps([[str(v) for v in r] for r in rows]).encode()).hexdigest()
    return {"counts": counts, "scores_sha256": digest}


@pytest.fixture
def cycle_env(world, tmp_path, monkeypatch):  # noqa: F811
    """A copy of the world's warehouse and a config whose monitoring only requests retraining."""
    shutil.copy(world.root / "warehouse.db", tmp_path / "warehouse.db")
    cfg = world.config.model_dump(mode="json")
    cfg["data_dir"] = str(world.root / "exports")
    cfg["monitoring"].update({"retrain": "event", "alerts": [f"file://{tmp_path / 'alerts.jsonl'}"],
                              "reports_dir": str(tmp_path / "reports")})
    path = tmp_path / "journey.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("JOURNEY_DATABASE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    monkeypatch.setenv("JOURNEY_MLFLOW_TRACKING_URI", world.registry.tracking_uri)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    engine = make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    yield path, engine
    engine.dispose()


def test_cycle_flow_writes_every_store_and_a_rerun_changes_nothing(prefect_harness, world, cycle_env):  # noqa: F811
    from flows.cycle import cycle_flow

    path, engine = cycle_env
    before = stores(engine)
    first = cycle_flow(config_path=str(path))
    assert list(first.seconds) == ["ingest", "features", "score", "monitor"]
    assert first.as_of == world.as_of  # the newest event: the exports were ingested already
    assert first.ingest.total("rows_loaded") == 0 and first.ingest.total("rows_read") > 0
    [snap] = first.features.snapshots
    [scored] = first.scoring.runs
    assert scored.task == "conversion" and scored.rows_written == snap.entities > 0
    [mon] = first.monitoring.runs
    assert mon.task == "conversion" and mon.segments and not first.already_monitored
    after = stores(engine)
    grew = {t for t in TABLES if after["counts"][t] > before["counts"][t]}
    assert {"scores", "monitor_runs", "monitor_decisions", "feature_snapshots"} <= grew
    assert after["counts"]["events"] == before["counts"]["events"]

    # the steps held one slot per task (limits of one, created on first use, released)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for name in ("journey-score-conversion", "journey-features-conversion", "journey-monitor-conversion"):
            lim = client.read_global_concurrency_limit_by_name(name)
            assert lim.limit == 1 and lim.active_slots == 0, (name, lim)

    # a re-run of the same day: every store exactly as the first run left it
    second = cycle_flow(config_path=str(path))
    assert second.as_of == first.as_of and second.already_monitored == ("conversion",)
    assert second.monitoring.runs == ()
    assert stores(engine) == after

    # the same job without Prefect writes the same scores
    from journey_ml.jobs import CycleParams, run_cycle
    from journey_ml.runtime import Runtime

    direct = run_cycle(Runtime.load(config_path=path), CycleParams(now=datetime.now(UTC)))
    assert direct.as_of == first.as_of and direct.already_monitored == ("conversion",)
    assert stores(engine) == after
