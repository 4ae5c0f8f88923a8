"""Retraining exactly the segment that asked (#10.4), on real servers.

A `prefect server` and an `mlflow server` (both on PostgreSQL, free loopback ports), a
PostgreSQL warehouse trained as of an earlier day, and `python -m flows.serve`. A
``journey.retrain.requested`` event for one segment (the resource monitoring emits) must
start one `journey-retrain` run with that task and segment as parameters; only that
segment's model gets a new version; the same event again inside the cooldown starts no
second run.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml

from flows.serve import RETRAIN_TRIGGER
from journey_ml.db import make_engine, upgrade
from journey_ml.simulate import SimulationParams, simulate
from tests.e2e.servers import create_database, database_url, drop_database, group_alive
from tests.e2e.test_schedules_fire import flow_runs, serve_process
from tests.scoring.conftest import small_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200),
              pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]

TASK = "conversion"


def emit(api_url: str, event: str, resource: dict, payload: dict | None = None) -> None:
    with httpx.Client(base_url=api_url, timeout=30) as c:
        r = c.post("/events", json=[{"id": str(uuid.uuid4()), "occurred": datetime.now(UTC).isoformat(),
                                     "event": event, "resource": resource, "payload": payload or {}}])
        r.raise_for_status()


def automations(api_url: str) -> list[dict]:
    with httpx.Client(base_url=api_url, timeout=30) as c:
        r = c.post("/automations/filter", json={})
        r.raise_for_status()
        return r.json()


def wait_for(what: str, check, proc, timeout: float = 480, every: float = 3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.alive(), proc.tail()
        try:
            got = check()
        except httpx.HTTPError:
            got = None
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}:\n{proc.tail()}")


def test_event_retrains_only_its_segment_once_per_cooldown(prefect_api, mlflow_api, tmp_path):
    from journey_ml.jobs import TrainingParams, run_training
    from journey_ml.monitoring.runner import EVENTS, segment_resource
    from journey_ml.runtime import Runtime
    from journey_ml.settings import Settings
    from journey_ml.training import data_end

    simulate(SimulationParams(accounts=600, seed=5), tmp_path / "exports")
    db = create_database("jml_ops_wh")
    try:
        url = database_url(db)
        engine = make_engine(url)
        upgrade(engine)
        cfg = small_config().model_dump(mode="json", exclude_none=True)
        cfg["data_dir"] = str(tmp_path / "exports")
        cfg["registry"]["experiment"] = "retrain-e2e"
        cfg["schedules"] = {"timezone": "UTC", "flows": {}}  # nothing scheduled: only the trigger runs
        config = tmp_path / "journey.yaml"
        config.write_text(yaml.safe_dump(cfg))
        journey_env = {"JOURNEY_DATABASE_URL": url, "JOURNEY_MLFLOW_TRACKING_URI": mlflow_api.tracking_uri}
        rt = Runtime.load(Settings(home=tmp_path / "home", database_url=url, pii_salt="e2e-test-salt",
                                   mlflow_tracking_uri=mlflow_api.tracking_uri), config)
        from journey_ml.jobs import IngestParams, run_ingest

        assert run_ingest(rt, IngestParams(received_at=datetime.now(UTC))).ok
        # trained as of five weeks before the data ends: a retrain now sees other data
        trained = run_training(rt, TrainingParams(tasks=(TASK,), as_of=data_end(engine) - timedelta(days=35)))
        own = [o.segment for o in trained.outcomes if o.version is not None]
        target = next(s for s in own if s != "global")
        versions = {s: [v.version for v in rt.registry.versions(TASK, s)] for s in own}

        serve = serve_process(tmp_path, config, prefect_api.client_env(), journey_env)
        try:
            wait_for("the retrain trigger", lambda: [a for a in automations(prefect_api.api_url)
                                                      if a["name"] == RETRAIN_TRIGGER], serve)
            resource = segment_resource(TASK, target, f"journey-{TASK}-{target}", versions[target][-1])
            emit(prefect_api.api_url, EVENTS["retrain"], resource, {"task": TASK, "segment": target})
            [run] = wait_for("a journey-retrain run", lambda: flow_runs(prefect_api.api_url, "journey-retrain"), serve)
            assert run["parameters"]["task"] == TASK and run["parameters"]["segment"] == target

            def finished():
                runs = flow_runs(prefect_api.api_url, "journey-retrain")
                return runs if all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for r in runs) else None

            [run] = wait_for("the retrain run to finish", finished, serve, timeout=600)
            assert run["state_type"] == "COMPLETED", serve.tail(120)

            # the same request again, inside the cooldown: absorbed, no second run
            emit(prefect_api.api_url, EVENTS["retrain"], resource, {"task": TASK, "segment": target})
            time.sleep(30)
            assert len(flow_runs(prefect_api.api_url, "journey-retrain")) == 1
        finally:
            serve.stop()
        assert not group_alive(serve.popen.pid)

        after = {s: [v.version for v in rt.registry.versions(TASK, s)] for s in own}
        assert len(after[target]) == len(versions[target]) + 1, (versions, after)
        assert {s: v for s, v in after.items() if s != target} == {s: v for s, v in versions.items() if s != target}
        engine.dispose()
    finally:
        drop_database(db)
