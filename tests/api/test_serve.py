"""The real `journey-ml serve` process: starts, answers its probes, stops; refuses to start
without a token unless told --no-auth."""

from __future__ import annotations

import json
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
        _oversized_heads_get_431_and_bounded_memory(port, proc.pid)
        _a_large_body_in_one_write_is_not_a_large_head(port)
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200  # still serving
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


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _send_head(port: int, header_bytes: int) -> bytes:
    """Send a GET /healthz whose one header has ``header_bytes`` bytes; return the response
    (empty when the server closed the connection before we could read it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk = b"a" * (1 << 20)
            sent = 0
            while sent < header_bytes:
                n = min(len(chunk), header_bytes - sent)
                s.sendall(chunk[:n])
                sent += n
            s.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what we want
        try:
            return s.recv(4096)
        except (ConnectionResetError, TimeoutError):
            return b""


def _oversized_heads_get_431_and_bounded_memory(port: int, pid: int) -> None:
    """Issue #9 case 7: eight concurrent 50 MB headers got 200 and grew the process by ~85 MB
    before auth was checked. A head over JOURNEY_API_MAX_HEADER_BYTES gets 431."""
    from concurrent.futures import ThreadPoolExecutor

    resp = _send_head(port, 64 * 1024)
    assert resp.startswith(b"HTTP/1.1 431 "), resp[:200]
    assert b"JOURNEY_API_MAX_HEADER_BYTES" in resp
    before = _rss_kb(pid)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _send_head(port, 50 * 1024 * 1024), range(8)))
    assert all(a == b"" or a.startswith(b"HTTP/1.1 431 ") for a in answers), [a[:80] for a in answers]
    grown_mb = (_rss_kb(pid) - before) / 1024
    assert grown_mb < 20, f"the server grew by {grown_mb:.0f} MB reading oversized heads"


def _a_large_body_in_one_write_is_not_a_large_head(port: int) -> None:
    """A POST whose small head and 40 KiB body arrive in one write reaches the app (here: 401,
    no token), not 431: only the request line and headers count against the head limit."""
    body = json.dumps({"task": "conversion", "entity_id": "a", "events": [], "pad": "x" * 40_000}).encode()
    head = (f"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head + body)
        resp = s.recv(4096)
    assert resp.startswith(b"HTTP/1.1 401 "), resp[:200]


def test_serve_refuses_without_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("JOURNEY_API_TOKEN", raising=False)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert "JOURNEY_API_TOKEN is not set" in result.output and "--no-auth" in result.output


def test_serve_keeps_every_worker(tmp_path):
    """`--workers 2` serves on two processes: both start and none is replaced. uvicorn's
    default health check (5 s) killed a worker still starting on a busy 2-core machine, again
    and again, and one process served everything (JOURNEY_API_WORKER_START_SECONDS)."""
    port = free_port()
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path), "JOURNEY_API_TOKEN": "serve-token",
           "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("JOURNEY_DATABASE_URL", None)
    env.pop("JOURNEY_MLFLOW_TRACKING_URI", None)
    upgrade(make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}"))
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "2", "--log-level", "info"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 120
        while log.read_text().count("Application startup complete") < 2 and time.monotonic() < end:
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
        time.sleep(15)  # several health-check rounds of the supervisor
        text = log.read_text()
        assert text.count("Application startup complete") == 2, text[-3000:]
        assert "died" not in text, text[-3000:]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            proc.kill()
            raise
