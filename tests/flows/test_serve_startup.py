"""`python -m flows.serve` checks what it needs before serving (#10): one line per missing
piece, exit 1, nothing served. Real subprocesses; the warehouses are real (SQLite files,
the test PostgreSQL) and the unreachable servers are closed loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from journey_ml.db import make_engine, upgrade

ROOT = Path(__file__).resolve().parents[2]
SALT = "startup-test-salt-value"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOURNEY_", "PREFECT_API_", "MLFLOW_TRACKING"))}
    return {**env, "JOURNEY_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT), **extra}


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    # a worker that passes its checks serves until stopped: returning at all means it refused
    return subprocess.run([sys.executable, "-m", "flows.serve", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def _refused(r: subprocess.CompletedProcess) -> list[str]:
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert lines[0] == "python -m flows.serve: cannot start, nothing served:"
    return [x.strip() for x in lines[1:]]


def test_an_invalid_configuration_names_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schedules:\n  flows:\n    nightly: {cron: '0 1 * * *'}\nsurprise: 1\n")
    [line] = _refused(_serve(_env(tmp_path), "--config", str(bad)))
    assert line.startswith("configuration: ") and f"{bad}: surprise: unknown key" in line


def test_an_unknown_scheduled_flow_is_refused(tmp_path):
    cfg = tmp_path / "j.yaml"
    cfg.write_text("schedules:\n  flows:\n    nightly: {cron: '0 1 * * *'}\n")
    [line] = _refused(_serve(_env(tmp_path), "--config", str(cfg)))
    assert "schedules.flows: unknown flow(s) nightly" in line


def test_postgresql_without_a_pii_salt_is_refused(tmp_path, pg_url):
    lines = _refused(_serve(_env(tmp_path, JOURNEY_DATABASE_URL=pg_url)))
    salt = [x for x in lines if x.startswith("pii salt: ")]
    assert salt and "JOURNEY_PII_SALT is not set" in salt[0]


def test_a_warehouse_without_its_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    lines = _refused(_serve(_env(tmp_path, JOURNEY_DATABASE_URL=url)))
    assert lines == [f"warehouse: the warehouse at {url} has no schema yet: run `journey-ml db upgrade`"]


def test_unreachable_tracking_server_and_prefect_api_are_named_without_credentials(tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    mlflow_port, prefect_port = _closed_port(), _closed_port()
    env = _env(tmp_path, JOURNEY_DATABASE_URL=url, JOURNEY_PII_SALT=SALT,
               JOURNEY_MLFLOW_TRACKING_URI=f"http://bob:hunter2@127.0.0.1:{mlflow_port}",
               PREFECT_API_URL=f"http://127.0.0.1:{prefect_port}/api", PREFECT_API_AUTH_STRING="admin:sesame")
    r = _serve(env)
    lines = _refused(r)
    assert [x.split(":", 1)[0] for x in lines] == ["registry", "prefect"]
    assert lines[0].startswith(f"registry: http://bob:***@127.0.0.1:{mlflow_port}: ConnectError")
    assert lines[1].startswith(f"prefect: http://127.0.0.1:{prefect_port}/api: ConnectError")
    for secret in ("hunter2", "sesame", SALT):
        assert secret not in r.stderr + r.stdout


def test_a_ready_worker_has_no_problem(tmp_path, monkeypatch):
    from flows.serve import flows, startup_problems

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    for k in list(os.environ):
        if k.startswith(("JOURNEY_", "PREFECT_API_", "MLFLOW_TRACKING")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("JOURNEY_DATABASE_URL", url)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    problems, deps = startup_problems(None)
    assert problems == []
    assert sorted(d.name for d in deps) == sorted(f"journey-{n}" for n in flows())
