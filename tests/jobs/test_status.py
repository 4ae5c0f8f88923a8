"""`run_status` and `journey-ml status` (#10.6) on the trained small world, with and without Prefect."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from journey_ml.jobs import ScoringParams, run_scoring
from journey_ml.jobs.status import run_status
from journey_ml.monitoring import store
from journey_ml.runtime import Runtime
from journey_ml.settings import Settings
from tests.conftest import count
from tests.scoring.conftest import world  # noqa: F401 - the shared trained world fixture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

SCORED_AT = datetime(2026, 7, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def status_world(world, tmp_path_factory):  # noqa: F811
    """A copy of the world's warehouse, scored, with one stored monitoring run for global
    (built once for the module; the environment points at it while the module runs)."""
    tmp_path = tmp_path_factory.mktemp("status")
    shutil.copy(world.root / "warehouse.db", tmp_path / "warehouse.db")
    import yaml

    cfg = world.config.model_dump(mode="json")
    cfg["data_dir"] = str(world.root / "exports")
    (tmp_path / "journey.yaml").write_text(yaml.safe_dump(cfg))
    env = {"JOURNEY_DATABASE_URL": f"sqlite:///{tmp_path / 'warehouse.db'}",
           "JOURNEY_MLFLOW_TRACKING_URI": world.registry.tracking_uri, "JOURNEY_HOME": str(tmp_path / "home"),
           "JOURNEY_CONFIG_PATH": str(tmp_path / "journey.yaml")}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("PREFECT_API_URL", raising=False)
        yield from _scored(world)


def _scored(world):  # noqa: F811
    rt = Runtime.load()
    scored = run_scoring(rt, ScoringParams(scored_at=SCORED_AT, as_of=world.as_of))
    run_id = store.save_run(rt.engine, run_key="k", task="conversion", segment="global", as_of=world.as_of,
                            model_name="journey-conversion-global", model_version=world.outcomes["global"].version,
                            model_kind="xgboost", status="ok", drift_detected=True, matured_as_of=None,
                            contract=None, drift=None, performance=None, reports=None, error=None,
                            created_at=SCORED_AT)
    for kind in ("alert", "retrain"):
        store.save_decision(rt.engine, monitor_run_id=run_id, task="conversion", segment="global", as_of=world.as_of,
                            kind=kind, reasons=[f"{kind} because"], figures={}, decided_at=SCORED_AT)
    yield rt, scored
    rt.engine.dispose()


def test_status_without_prefect(world, status_world):  # noqa: F811
    rt, scored = status_world
    result = run_status(rt, prefect_api_url="")
    assert result.deployments is None and result.healthy
    assert [h.component for h in result.health] == ["warehouse", "registry"]
    by = {(s.task, s.segment): s for s in result.segments}
    g = by[("conversion", "global")]
    prod = world.registry.production("conversion", "global")
    assert g.production_version == prod.version == world.outcomes["global"].version
    # since: the ledger's move of @production onto that version
    move = [m for m in world.registry.history("conversion", "global")
            if m.alias == "production" and m.to_version == prod.version][0]
    assert g.production_since == move.at.astimezone(UTC)
    assert g.monitored_as_of == world.as_of and g.drift_detected and g.decisions == ("alert", "retrain")
    # every stored score is counted once, under its segment and mode
    assert sum(sum(s.scoring_modes.values()) for s in result.segments) == scored.rows_written \
        == count(rt.engine, "scores")
    for s in result.segments:
        if s.scoring_modes:
            assert s.scoring_as_of == world.as_of
            n = count(rt.engine, "scores", f"WHERE segment = '{s.segment}' AND mode = '{s.scoring_mode}'")
            assert s.scoring_modes[s.scoring_mode] == n
    # a segment with its own production model is scored by it
    own = [s for s in result.segments if s.segment != "global" and s.production_version and s.scoring_modes]
    assert all(s.scoring_mode == "segment_model" for s in own), own


def test_status_reports_an_unreachable_registry_and_prefect(status_world):
    rt, _ = status_world
    rt = Runtime.load(Settings(database_url=rt.settings.database_url, home=rt.settings.home,
                               mlflow_tracking_uri="http://127.0.0.1:9"), rt.settings.config_path)
    result = run_status(rt, prefect_api_url="http://127.0.0.1:9/api")
    health = {h.component: h for h in result.health}
    assert health["warehouse"].ok and not health["registry"].ok and not health["prefect"].ok
    assert "127.0.0.1:9" in health["prefect"].detail and not result.healthy
    # the rest is still reported from the warehouse
    assert any(s.scoring_modes for s in result.segments)
    assert all(s.production_version is None for s in result.segments)


def test_status_cli_table_and_json(world, status_world):  # noqa: F811
    from journey_ml.cli.app import app

    r = CliRunner().invoke(app, ["status"], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "conversion/global" in r.output and f"v{world.outcomes['global'].version}" in r.output
    assert "no Prefect API configured" in r.output and "alert, retrain" in r.output
    r = CliRunner().invoke(app, ["status", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    g = next(s for s in data["segments"] if s["segment"] == "global")
    assert g["production_version"] == world.outcomes["global"].version and g["decisions"] == ["alert", "retrain"]
    assert data["healthy"] is True and data["deployments"] is None


@pytest.mark.slow
def test_status_with_prefect_deployments(prefect_harness, status_world):
    """Deployments registered on the Prefect test server: schedule, last run and its state,
    next scheduled run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Completed, Running, Scheduled

    from flows.serve import deployments
    from journey_ml.config import parse_config

    cfg = parse_config({"schedules": {"flows": {"cycle": {"cron": "0 5 * * *"}}}}, "status-test")
    deps = {d.name: d for d in deployments(cfg)}
    ids = {n: deps[n].apply() for n in ("journey-cycle", "journey-score")}
    later = datetime.now(UTC) + timedelta(hours=3)
    with get_client(sync_client=True) as client:
        done = client.create_flow_run_from_deployment(ids["journey-score"])
        client.set_flow_run_state(done.id, Running(), force=True)
        client.set_flow_run_state(done.id, Completed(), force=True)
        client.create_flow_run_from_deployment(ids["journey-score"], state=Scheduled(scheduled_time=later))
    rt, _ = status_world
    result = run_status(rt, prefect_api_url=PREFECT_API_URL.value())
    by = {d.name: d for d in result.deployments}
    assert {"journey-cycle", "journey-score"} <= set(by)
    assert by["journey-cycle"].schedule == "cron 0 5 * * * UTC"
    assert by["journey-score"].schedule is None
    assert by["journey-score"].last_run_state == StateType.COMPLETED.value and by["journey-score"].last_run_at
    assert abs((by["journey-score"].next_run_at - later).total_seconds()) < 1
    assert next(h for h in result.health if h.component == "prefect").ok
