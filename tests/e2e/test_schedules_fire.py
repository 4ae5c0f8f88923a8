"""Schedules that fire (#10.2): a real `prefect server` (PostgreSQL) and `python -m flows.serve`.

The guard against the next incompatible pin: Prefect 3.8.8's scheduler with SQLAlchemy 2.1
created deployments but never a scheduled run. Here the scheduler must create runs of the
ingest deployment from an interval schedule in the config, the serve process must execute
them to COMPLETED, and the warehouse must hold what they ingested.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from journey_ml.db import make_engine, upgrade
from journey_ml.simulate import SimulationParams, simulate
from tests.conftest import count
from tests.e2e.servers import (
    create_database,
    database_url,
    drop_database,
    environ,
    group_alive,
    start,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]


def scheduled_config(tmp: Path, flows: dict) -> Path:
    from journey_ml.config import load_config

    cfg, _ = load_config(None)
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["data_dir"] = str(tmp / "exports")
    data["schedules"] = {"timezone": "UTC", "flows": flows}
    path = tmp / "journey.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def direct_ingest(tmp: Path, config: Path) -> dict[str, int]:
    """Row counts of one ingest of the same exports into a SQLite warehouse, without Prefect."""
    from datetime import UTC, datetime

    from journey_ml.jobs import IngestParams, run_ingest
    from journey_ml.runtime import Runtime
    from journey_ml.settings import Settings

    rt = Runtime.load(Settings(home=tmp / "direct", database_url=f"sqlite:///{tmp / 'direct.db'}"), config)
    upgrade(rt.engine)
    assert run_ingest(rt, IngestParams(received_at=datetime.now(UTC))).ok
    return {t: count(rt.engine, t) for t in ("events", "accounts", "contacts", "outcomes", "quarantine")}


def flow_runs(api_url: str, deployment: str, auth: str | None = None) -> list[dict]:
    """Flow runs of deployment ``journey-<x>`` (REST, so no client settings leak into the session)."""
    import httpx

    with httpx.Client(base_url=api_url, timeout=30, auth=tuple(auth.split(":", 1)) if auth else None) as c:
        dep = c.get(f"/deployments/name/{deployment}/{deployment}")
        dep.raise_for_status()
        r = c.post("/flow_runs/filter", json={"deployments": {"id": {"any_": [dep.json()["id"]]}},
                                              "sort": "EXPECTED_START_TIME_ASC", "limit": 200})
        r.raise_for_status()
        return r.json()


def serve_process(tmp: Path, config: Path, prefect_env: dict[str, str], journey_env: dict[str, str]):
    env = {**environ(), **prefect_env, "JOURNEY_PII_SALT": "e2e-test-salt", **journey_env,
           "JOURNEY_HOME": str(tmp / "home"), "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PYTHONPATH": str(ROOT)}
    return start("flows-serve", [str(Path(__import__("sys").executable)), "-m", "flows.serve",
                                 "--config", str(config), "--limit", "1"], env, tmp / "logs")


def test_interval_schedule_fires_and_ingests(prefect_api, tmp_path):
    sim = simulate(SimulationParams(accounts=40, seed=3), tmp_path / "exports")
    db = create_database("jml_ops_wh")
    try:
        url = database_url(db)
        engine = make_engine(url)
        upgrade(engine)
        config = scheduled_config(tmp_path, {"ingest": {"interval_seconds": 15,
                                                        "parameters": {"incremental": True}}})
        serve = serve_process(tmp_path, config, prefect_api.client_env(), {"JOURNEY_DATABASE_URL": url})
        try:
            completed: list[dict] = []
            runs: list[dict] = []
            deadline = time.monotonic() + 480  # a loaded 2-core machine starts runs slowly
            while time.monotonic() < deadline and len(completed) < 2:
                assert serve.alive(), serve.tail()
                time.sleep(3)
                try:
                    runs = flow_runs(prefect_api.api_url, "journey-ingest")
                except Exception:  # noqa: BLE001 - the deployment is not registered yet
                    continue
                completed = [r for r in runs if r["state_type"] == "COMPLETED"]
            assert len(completed) >= 2, ([(r["name"], r["state_type"]) for r in runs], serve.tail())
            # created by the scheduler, not by hand
            assert all(r["auto_scheduled"] for r in completed)
            assert not [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")], serve.tail()
        finally:
            serve.stop()
        assert not group_alive(serve.popen.pid)
        # the first run loaded the exports, the later incremental ones found nothing new:
        # the same tables as one direct ingest of the same files
        expected = direct_ingest(tmp_path, config)
        assert sim.events > 0 and expected["events"] > 0
        assert {t: count(engine, t) for t in expected} == expected
        assert count(engine, "ingest_runs") >= 2
        engine.dispose()
    finally:
        drop_database(db)
