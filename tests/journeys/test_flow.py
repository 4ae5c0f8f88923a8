"""The journeys flow end to end on the simulated world (Prefect test server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]


def test_journeys_flow(prefect_harness, sim_world, tmp_path, monkeypatch):
    root, cfg, engine = sim_world
    doc = cfg.model_dump(mode="json")
    doc["journeys"]["bootstrap"] = 5
    path = tmp_path / "journey.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("JOURNEY_DATABASE_URL", str(engine.url))
    monkeypatch.setenv("JOURNEY_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    from flows.journeys import journeys_flow

    result = journeys_flow(config_path=str(path), tasks=["conversion"], segments=["all"])
    [m] = result.maps
    assert m.task == "conversion" and m.journeys > 100 and m.run_id
    assert Path(m.report_html).is_relative_to(tmp_path / "home" / "reports" / "journeys")
