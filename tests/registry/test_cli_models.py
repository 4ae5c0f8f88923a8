"""`journey-ml models ...` through typer's CliRunner (both backends) and one real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.registry.conftest import unique

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*")

ROOT = Path(__file__).resolve().parents[2]
SEG = "global"


@pytest.fixture
def cli(env, monkeypatch, tmp_path):
    """Run models_app against the test's tracking store and warehouse."""
    from journey_ml.cli.models import models_app

    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JOURNEY_MLFLOW_TRACKING_URI", env.tracking_uri)
    monkeypatch.setenv("JOURNEY_DATABASE_URL", env.engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("JOURNEY_CONFIG_PATH", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: room for whole model names
    cfg = tmp_path / "journey.yaml"
    cfg.write_text("version: 1\nregistry: {experiment: cli-test, promotion_metric: roc_auc}\n")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(models_app, [*args, "--config", str(cfg)])

    return run


def test_list_history_promote_rollback(env, cli, good_rules):
    reg = env.registry()
    task = unique()
    reg.log_model(good_rules, task=task, segment=SEG)
    reg.log_model(good_rules, task=task, segment=SEG)
    reg.promote(task, SEG, 1, reason="first")

    r = cli("list", "--json")
    assert r.exit_code == 0, r.output
    [m] = [m for m in json.loads(r.stdout)["models"] if m["task"] == task]
    assert (m["production_version"], m["staging_version"], m["versions"]) == (1, 2, [1, 2])
    assert m["kinds"] == {"1": "rules", "2": "rules"} and m["production_since"]

    r = cli("promote", "--task", task, "--segment", SEG, "--version", "2", "--reason", "better", "--json")
    assert r.exit_code == 0, r.output
    move = json.loads(r.stdout)
    assert (move["from_version"], move["to_version"], move["action"], move["actor"]) == (1, 2, "promote", "cli")

    r = cli("rollback", "--task", task, "--segment", SEG, "--reason", "oops")
    assert r.exit_code == 0, r.output
    assert f"journey-{task}-global@production: v2 -> v1 (rollback: oops)" in r.stdout

    r = cli("history", "--task", task, "--json")
    assert r.exit_code == 0, r.output
    moves = json.loads(r.stdout)["moves"]
    assert [(x["alias"], x["action"], x["from_version"], x["to_version"]) for x in moves] == [
        ("production", "rollback", 2, 1), ("production", "promote", 1, 2),
        ("production", "promote", None, 1), ("staging", "stage", 1, 2), ("staging", "stage", None, 1)]
    assert moves[0]["reason"] == "oops" and moves[0]["actor"] == "cli"

    r = cli("list")
    assert r.exit_code == 0 and f"journey-{task}-global" in r.stdout and "v1 (rules)" in r.stdout
    r = cli("history", "--task", task, "--segment", SEG, "--limit", "1")
    assert r.exit_code == 0 and "rollback" in r.stdout and "promote" not in r.stdout


def test_user_errors_are_one_red_line(env, cli, good_rules):
    task = unique()
    r = cli("promote", "--task", task, "--segment", SEG, "--version", "3", "--reason", "x")
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [f"error: model journey-{task}-global has no version 3"]
    env.registry().log_model(good_rules, task=task, segment=SEG)
    r = cli("rollback", "--task", task, "--segment", SEG, "--json")
    assert r.exit_code == 1 and "nothing to roll back" in r.stderr and r.stdout == ""
    r = cli("history", "--task", "nope", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"moves": []}


def test_console_script_subprocess(tmp_path):
    """The sub-app as a process on a fresh home: exactly one error line, exit code 1."""
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path / "home")}
    for k in ("JOURNEY_MLFLOW_TRACKING_URI", "JOURNEY_DATABASE_URL", "JOURNEY_CONFIG_PATH"):
        env.pop(k, None)
    code = "from journey_ml.cli.models import models_app; models_app()"

    def run(*args):
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120)

    r = run("rollback", "--task", "conversion", "--segment", "global", "--json")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"error: the warehouse at sqlite:///{tmp_path / 'home' / 'warehouse.db'} has no schema yet: "
        "run `journey-ml db upgrade`"]
    up = subprocess.run([sys.executable, "-m", "journey_ml", "db", "upgrade"], capture_output=True, text=True,
                        env=env, cwd=tmp_path, timeout=120)
    assert up.returncode == 0, up.stderr
    r = run("rollback", "--task", "conversion", "--segment", "global", "--json")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "error: journey-conversion-global has no production version: nothing to roll back"]
    assert (tmp_path / "home" / "mlflow.db").is_file() and (tmp_path / "home" / "warehouse.db").is_file()
    assert not (tmp_path / "mlruns").exists()  # nothing written to the working directory


def test_no_op_promote_writes_nothing_and_rollback_still_works(env, cli, good_rules):
    """Issue #9 case 9: `models promote -v 2` while v2 is production wrote a v2 -> v2 ledger row,
    after which `rollback` said there was nothing to roll back to."""
    reg = env.registry()
    task = unique()
    reg.log_model(good_rules, task=task, segment=SEG)
    reg.log_model(good_rules, task=task, segment=SEG)
    reg.promote(task, SEG, 1, reason="first")
    reg.promote(task, SEG, 2, reason="second")
    before = [m.id for m in reg.history(task, SEG)]

    r = cli("promote", "--task", task, "--segment", SEG, "--version", "2", "--reason", "again")
    assert r.exit_code == 0, r.output
    assert f"journey-{task}-global@production is already v2: nothing changed (no ledger row written)" in r.stdout
    r = cli("promote", "--task", task, "--segment", SEG, "--version", "2", "--reason", "again", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["changed"] is False
    assert [m.id for m in reg.history(task, SEG)] == before

    r = cli("rollback", "--task", task, "--segment", SEG, "--reason", "back")
    assert r.exit_code == 0, r.output
    assert f"journey-{task}-global@production: v2 -> v1 (rollback: back)" in r.stdout
    assert reg.production(task, SEG).version == 1
