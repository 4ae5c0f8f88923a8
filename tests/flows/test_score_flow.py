"""The scoring flow end to end on the trained small world (Prefect test server)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import count
from tests.scoring.conftest import world  # noqa: F401 - the shared trained world fixture

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]


def test_score_flow(prefect_harness, world, tmp_path, monkeypatch):  # noqa: F811
    path = tmp_path / "journey.yaml"
    path.write_text(yaml.safe_dump(world.config.model_dump(mode="json")))
    monkeypatch.setenv("JOURNEY_DATABASE_URL", f"sqlite:///{world.root / 'warehouse.db'}")
    monkeypatch.setenv("JOURNEY_MLFLOW_TRACKING_URI", world.registry.tracking_uri)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    from flows.score import score_flow

    result = score_flow(config_path=str(path), as_of=world.as_of)
    assert [r.task for r in result.runs] == ["conversion"]
    r = result.runs[0]
    assert r.rows_written == r.entities > 0
    assert set(r.modes) <= {"segment_model", "global_model"}
    with world.engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT DISTINCT run_id FROM scores WHERE task = 'conversion'")).all()
    assert [x[0] for x in runs] == [r.run_id] == [result.run_id]
    assert count(world.engine, "scores", "WHERE task = 'conversion'") == r.entities
