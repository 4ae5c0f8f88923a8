"""The real `journey-ml serve` process: starts, answers its probes, stops; refuses to start
without a token unless told --no-auth."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from journey_ml.cli import app
from journey_ml.db import make_engine, upgrade

BIN = Path(sys.executable).parent / "journey-ml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, deadline_s: float = 120.0) -> httpx.Response:
    """Poll /healthz until it answers (a generous deadline: the machine is shared)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            return httpx.get(f"{url}/healthz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("serve did not answer /healthz")


def test_serve_process_starts_answers_and_stops(tmp_path):
    port = free_port()
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path), "JOURNEY_API_TOKEN": "serve-token",
           "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("JOURNEY_DATABASE_URL", None)
    env.pop("JOURNEY_MLFLOW_TRACKING_URI", None)
    upgrade(make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}"))
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--log-level", "warning"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        r = wait_healthy(url, proc)
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = httpx.post(f"{url}/v1/score", json={"task": "conversion", "entity_id": "a"}, timeout=30)
        assert r.status_code == 401 and "Authorization" in r.json()["detail"]
        r = httpx.post(f"{url}/v1/score", json={"task": "conversion", "entity_id": "a"}, timeout=30,
                       headers={"Authorization": "Bearer serve-token"})
        assert r.status_code == 422 and "'a'" in r.json()["detail"]
        assert "journey_api_requests_total" in httpx.get(f"{url}/metrics", timeout=30).text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            proc.kill()
            raise
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -15)
    err = proc.stderr.read()
    assert proc.returncode in (0, -signal.SIGTERM), err[-2000:]
    assert "Traceback" not in err, err[-2000:]


def test_serve_refuses_without_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("JOURNEY_API_TOKEN", raising=False)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert "JOURNEY_API_TOKEN is not set" in result.output and "--no-auth" in result.output
