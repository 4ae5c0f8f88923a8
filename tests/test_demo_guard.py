"""`make demo` next to a stack (#10.5): it refuses, with one line, while a stack of the same
checkout runs or when pointed at a stack's home or servers, and never wipes .journey/stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from journey_ml.cli.demo import _refusal, _wipe
from journey_ml.settings import Settings


def _settings(home: Path, **kw) -> Settings:
    return Settings(home=home, _env_file=None, **kw)


@pytest.fixture(autouse=True)
def _no_journey_env(monkeypatch):
    for k in list(os.environ):
        if k.startswith("JOURNEY_"):
            monkeypatch.delenv(k)


def test_refuses_while_a_stack_of_this_checkout_runs(tmp_path: Path):
    home = tmp_path / ".journey"
    (home / "stack").mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (home / "stack" / "mlflow.pid").write_text(str(sleeper.pid))
        msg = _refusal(_settings(home))
        assert msg and "make down" in msg and "mlflow" in msg and "\n" not in msg
    finally:
        sleeper.kill()
        sleeper.wait()
    # a stale pid file (the stack is down) does not block the demo
    assert _refusal(_settings(home)) is None


def test_refuses_inside_a_stack_or_on_its_servers(tmp_path: Path):
    stack = tmp_path / "stack"
    (stack / "journey-home").mkdir(parents=True)
    (stack / ".journey-stack").write_text("")
    assert "inside the stack" in _refusal(_settings(stack / "journey-home"))
    other = tmp_path / "elsewhere"
    assert "points at a server" in _refusal(_settings(other, database_url="postgresql+psycopg://u@h/db"))
    assert "points at a server" in _refusal(_settings(other, mlflow_tracking_uri="http://127.0.0.1:5000"))
    assert _refusal(_settings(other)) is None


def test_fresh_demo_keeps_the_stack_directory(tmp_path: Path):
    home = tmp_path / ".journey"
    (home / "stack").mkdir(parents=True)
    (home / "stack" / "secrets.env").write_text("X=1\n")
    (home / "exports").mkdir()
    (home / "exports" / "a.csv").write_text("x\n")
    (home / "warehouse.db").write_text("")
    _wipe(home)
    assert sorted(p.name for p in home.iterdir()) == ["stack"]
    assert (home / "stack" / "secrets.env").read_text() == "X=1\n"


def test_demo_command_refuses_in_one_line(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from journey_ml.cli.app import app

    home = tmp_path / ".journey"
    (home / "stack").mkdir(parents=True)
    (home / "stack" / "worker.pid").write_text(str(os.getpid()))  # a live process
    monkeypatch.setenv("JOURNEY_HOME", str(home))
    r = CliRunner().invoke(app, ["demo"])
    assert r.exit_code == 1
    assert r.output.strip().startswith("error: a stack started by `make up` is running")
    assert r.output.strip().count("\n") == 0
    assert (home / "stack" / "worker.pid").exists()
