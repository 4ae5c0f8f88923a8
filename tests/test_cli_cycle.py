"""`journey-ml cycle` (#10): the daily cycle from the console script, on the small trained world.

A new day of web events arrives in a copy of the world's exports; the command (a real
subprocess) loads exactly those events, scores and monitors as of the newest one, and
leaves the same stores as the job (`run_cycle`) called directly on a second copy; a
second run of the command loads nothing, monitors nothing again and changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from journey_ml.db import make_engine
from journey_ml.db.models import Score
from tests.flows.test_cycle_flow import stores
from tests.scoring.conftest import world  # noqa: F401 - the shared trained world fixture

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]

ROOT = Path(__file__).resolve().parents[1]
NEW_EVENTS = 3


def _new_day(exports: Path, after: datetime) -> datetime:
    """Write NEW_EVENTS web events (copies of the newest valid ones, new ids) an hour apart
    after ``after``; return the newest one's time."""
    newest = sorted((exports / "web").glob("*.jsonl"))[-1]
    rows = []
    for line in reversed(newest.read_text().splitlines()):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("visitor_id") and row.get("event") == "page_view":
            rows.append(row)
        if len(rows) == NEW_EVENTS:
            break
    times = [after.replace(microsecond=0) + timedelta(hours=i + 1) for i in range(NEW_EVENTS)]
    lines = [json.dumps({**r, "id": f"new-day-{i}", "timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ")})
             for i, (r, t) in enumerate(zip(rows, times, strict=True))]
    (exports / "web" / "web-new-day.jsonl").write_text("\n".join(lines) + "\n")
    return times[-1]


def _copy(world, tmp_path: Path, name: str) -> tuple[dict, sa.Engine]:  # noqa: F811
    """A copy of the world's warehouse and registry (aliases may move), its environment."""
    d = tmp_path / name
    d.mkdir()
    shutil.copy(world.root / "warehouse.db", d / "warehouse.db")
    shutil.copy(Path(world.registry.tracking_uri.removeprefix("sqlite:///")), d / "mlflow.db")
    env = {"JOURNEY_DATABASE_URL": f"sqlite:///{d / 'warehouse.db'}",
           "JOURNEY_MLFLOW_TRACKING_URI": f"sqlite:///{d / 'mlflow.db'}", "JOURNEY_HOME": str(d / "home")}
    return env, make_engine(env["JOURNEY_DATABASE_URL"])


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "journey_ml", *args], capture_output=True, text=True,
                          env={**os.environ, "JOURNEY_PROGRESS": "", "COLUMNS": "200", **env}, cwd=ROOT,
                          timeout=900)


def test_cycle_command_runs_the_cycle_job_and_a_rerun_changes_nothing(world, tmp_path, monkeypatch):  # noqa: F811
    exports = tmp_path / "exports"
    shutil.copytree(world.root / "exports", exports)
    newest = _new_day(exports, world.as_of)
    cfg = world.config.model_dump(mode="json")
    cfg["data_dir"] = str(exports)
    cfg["monitoring"].update({"alerts": [f"file://{tmp_path / 'alerts.jsonl'}"],
                              "reports_dir": str(tmp_path / "reports")})
    config = tmp_path / "journey.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env_a, engine_a = _copy(world, tmp_path, "cli")
    env_b, engine_b = _copy(world, tmp_path, "job")
    before = stores(engine_a)

    r = _cli("cycle", "--config", str(config), "--no-retrain", "--json", env=env_a)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sum(run["rows_loaded"] for run in out["ingest"]["runs"]) == NEW_EVENTS
    assert datetime.fromisoformat(out["as_of"]) == newest, (out["as_of"], newest)
    assert list(out["seconds"]) == ["ingest", "features", "score", "monitor"]
    [snap], [scored], [mon] = out["features"], out["scoring"], out["monitoring"]["runs"]
    assert scored["rows_written"] == snap["entities"] > 0
    assert mon["task"] == "conversion" and mon["segments"]  # it monitored production models
    after = stores(engine_a)
    assert after["counts"]["events"] == before["counts"]["events"] + NEW_EVENTS
    with engine_a.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(Score)
                         .where(Score.as_of == newest)).scalar_one() == scored["rows_written"]
        assert c.execute(sa.text("SELECT count(*) FROM monitor_runs")).scalar_one() \
            == before["counts"]["monitor_runs"] + len(mon["segments"])

    # the job called directly, on the other copy: the same stores
    from journey_ml.jobs import CycleParams, run_cycle
    from journey_ml.runtime import Runtime

    for k, v in env_b.items():
        monkeypatch.setenv(k, v)
    direct = run_cycle(Runtime.load(config_path=config), CycleParams(now=datetime.now(UTC), retrain="request"))
    assert direct.as_of == newest
    assert stores(engine_b) == after

    # a re-run of the same day (table output): nothing new, nothing monitored twice, same stores
    r = _cli("cycle", "--config", str(config), "--no-retrain", env=env_a)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert f"cycle as of {newest:%Y-%m-%d %H:%M} UTC: 0 rows loaded" in r.stdout
    assert "0 task(s) monitored (conversion already monitored)" in r.stdout
    assert stores(engine_a) == after
    engine_a.dispose()
    engine_b.dispose()
