"""The monitoring flow on the trained small world: Prefect test server, events, markdown artifact."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import yaml

from journey_ml.monitoring.alerts import read_file_alerts
from tests.scoring.conftest import world  # noqa: F401 - the shared trained world fixture

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]


def test_monitor_flow_emits_events_and_an_artifact(prefect_harness, world, tmp_path, monkeypatch):  # noqa: F811
    cfg = world.config.model_dump(mode="json")
    alerts = tmp_path / "alerts.jsonl"
    # a hair-trigger policy so this one run requests retraining; "event": the flow only emits
    # journey.retrain.requested (a server is configured), it does not retrain the shared world
    cfg["monitoring"].update({"retrain": "event", "alerts": [f"file://{alerts}"],
                              "reports_dir": str(tmp_path / "reports")})
    cfg["monitoring"]["defaults"].update({"drift_share": 0.01, "drift_persistence_runs": 1, "cooldown_days": 0})
    path = tmp_path / "journey.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("JOURNEY_DATABASE_URL", f"sqlite:///{world.root / 'warehouse.db'}")
    monkeypatch.setenv("JOURNEY_MLFLOW_TRACKING_URI", world.registry.tracking_uri)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    before = {m.id for m in world.registry.history("conversion")}
    from flows.monitor import monitor_flow

    [run] = monitor_flow(config_path=str(path), as_of=world.as_of).runs
    from journey_ml.monitoring.runner import summary_markdown

    assert run.task == "conversion" and run.segments
    assert {s.segment for s in run.segments} <= {"global", "smb", "mid_market", "enterprise", "other"}
    kinds = {d.kind for s in run.segments for d in s.decisions}
    assert "retrain" in kinds, summary_markdown(run)
    retrains = [d for s in run.segments for d in s.decisions if d.kind == "retrain"]
    assert all(not d.executed and "event emitted" in d.outcome for d in retrains)
    # nothing moved: retraining was only requested
    assert {m.id for m in world.registry.history("conversion")} == before
    for s in run.segments:  # pages for every segment that decided something (monitoring.evidently_reports)
        if set(s.kinds) != {"ok"}:
            assert s.reports["drift_html"].endswith("drift.html"), (s.segment, s.kinds, s.reports)
    names = {e["event"] for e in run.events}
    assert {"journey.drift.detected", "journey.retrain.requested"} <= names
    assert all(e["resource"]["prefect.resource.id"].startswith("journey.segment.conversion.") for e in run.events)

    # what the Prefect server received: the events and the markdown artifact
    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    artifact = Artifact.get("journey-monitor-conversion")
    assert artifact is not None and "Monitoring `conversion`" in artifact.data and "retrain" in artifact.data
    got: set[str] = set()
    import time

    for _ in range(60):  # the server ingests events asynchronously
        with get_client(sync_client=True) as client:
            page = client.read_events(EventFilter(event=EventNameFilter(prefix=["journey."])), limit=50)
        got = {e.event for e in page.events}
        if names <= got:
            break
        time.sleep(0.5)
    assert names <= got

    # stored decisions and the alert file
    with world.engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM monitor_decisions WHERE kind = 'retrain'")).scalar_one()
    assert n == len(retrains)
    sent = read_file_alerts(alerts)
    assert {a["decision"] for a in sent} >= {"retrain"} and all(a["report"] for a in sent)
