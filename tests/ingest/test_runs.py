"""Case 10 of issue #9: a killed ingest's run row is marked abandoned by the next run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from journey_ml.db.models import IngestRun
from tests.conftest import count, make_config
from tests.ingest.test_pipeline import HEADER, WEB, good_row, run, write

ROOT = Path(__file__).resolve().parents[2]
N = 6000

# an ingest that stops for good after its first batch is applied (then it is killed)
_INGEST_THEN_HANG = """
import sys, time
from pathlib import Path
from journey_ml.db import make_engine
from journey_ml.ingest import ingest_source
from tests.conftest import RECEIVED_AT, SALT, make_config
from tests.ingest.test_pipeline import WEB

def progress(p):
    print("applied", flush=True)
    time.sleep(3600)

ingest_source(make_engine(sys.argv[1]), make_config(WEB), "web", loaders=1, data_dir=Path(sys.argv[2]),
              salt=SALT, received_at=RECEIVED_AT, batch_rows=10, progress=progress)
"""


def _start_hanging_ingest(engine, tmp_path) -> subprocess.Popen:
    # CSV batches are read in blocks of at least 64 KiB: several thousand rows make several
    write(tmp_path / "web" / "a.csv", HEADER + "".join(good_row(i) for i in range(N)))
    url = engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen([sys.executable, "-c", _INGEST_THEN_HANG, url, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "applied", proc.stderr.read() if proc.poll() is not None else line
    return proc


def _kill(engine, proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    if engine.dialect.name == "postgresql":
        # the server ends the dead client's session (and its locks) a moment later
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar_one() == 0:
                    return
            time.sleep(0.05)


def _runs(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(IngestRun.__table__)).mappings().all()
    return {r["run_id"]: dict(r) for r in rows}


def _balanced(r: dict) -> bool:
    return r["rows_read"] == r["rows_loaded"] + r["rows_duplicate"] + r["rows_rejected"] + r["rows_suppressed"]


def test_case10_killed_ingest_is_marked_abandoned_by_the_next_run(engine, tmp_path):
    proc = _start_hanging_ingest(engine, tmp_path)
    [killed] = _runs(engine)
    assert _runs(engine)[killed]["status"] == "running"
    _kill(engine, proc)

    res = run(engine, make_config(WEB), tmp_path, batch_rows=10)
    # the user sees it in the run result ...
    [gone] = res.abandoned
    assert gone.run_id == killed and gone.source == "web"
    assert "abandoned" in gone.reason and "no longer" in gone.reason, gone.reason
    # ... and in the ledger: the row says why, and its counts are those of the batches it applied
    row = _runs(engine)[killed]
    assert row["status"] == "abandoned" and row["error"] == gone.reason
    with engine.connect() as conn:
        applied = conn.execute(sa.text("SELECT count(*), sum(rows_read) FROM ingest_batches "
                                       "WHERE run_id = :r"), {"r": killed}).one()
    assert applied[0] == 1 and 0 < applied[1] < N
    assert row["rows_read"] == row["rows_loaded"] == applied[1] and _balanced(row)
    assert row["finished_at"] is not None
    # the new run resumed where the killed one stopped: every row accounted for, once
    assert (res.rows_loaded, res.batches_skipped, res.rows_duplicate) == (N - applied[1], 1, applied[1])
    assert res.balanced and count(engine, "events") == N
    assert all(_balanced(r) for r in _runs(engine).values())
    with engine.connect() as conn:
        per_batch = conn.execute(sa.text(
            "SELECT count(*) FROM ingest_batches WHERE rows_read <> rows_loaded + rows_duplicate "
            "+ rows_rejected + rows_suppressed")).scalar_one()
    assert per_batch == 0
    # a second later run finds nothing left to abandon
    assert run(engine, make_config(WEB), tmp_path, batch_rows=10).abandoned == []


def test_case10_a_live_run_is_not_abandoned(engine, tmp_path):
    proc = _start_hanging_ingest(engine, tmp_path)
    try:
        [alive] = _runs(engine)
        res = run(engine, make_config(WEB), tmp_path, batch_rows=10)
        assert res.abandoned == []
        assert _runs(engine)[alive]["status"] == "running"
    finally:
        _kill(engine, proc)
    assert [a.run_id for a in run(engine, make_config(WEB), tmp_path, batch_rows=10).abandoned] == [alive]


def test_case10_rows_without_a_live_holder_are_stale(engine, tmp_path):
    """Rows left by old code (no holder), or by a process on another host (heartbeat)."""
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    pid_gone = _dead_pid()
    rows = {
        "legacy": dict(holder=None, heartbeat_at=None),
        "dead-pid": dict(holder=f"{socket.gethostname()}:{pid_gone}", heartbeat_at=now),
        "other-host-fresh": dict(holder="elsewhere:123", heartbeat_at=now - timedelta(minutes=1)),
        "other-host-silent": dict(holder="elsewhere:124", heartbeat_at=now - timedelta(hours=1)),
    }
    with engine.begin() as conn:
        conn.execute(IngestRun.__table__.insert(), [
            {"run_id": run_id, "source": "web", "kind": "events", "status": "running",
             "started_at": now - timedelta(hours=2), "files": 0, "rows_read": 0, "rows_loaded": 0,
             "rows_duplicate": 0, "rows_rejected": 0, "rows_suppressed": 0, **extra}
            for run_id, extra in rows.items()])
    write(tmp_path / "web" / "a.csv", HEADER + good_row(1))
    res = run(engine, make_config(WEB), tmp_path, clock=lambda: now)
    reasons = {a.run_id: a.reason for a in res.abandoned}
    if engine.dialect.name == "postgresql":
        # the holder is a session lock: nobody holds these, whatever their heartbeat says
        assert set(reasons) == set(rows)
    else:
        assert set(reasons) == {"legacy", "dead-pid", "other-host-silent"}
        assert f"process {pid_gone} on this host is no longer running" in reasons["dead-pid"]
        assert "no heartbeat since" in reasons["other-host-silent"]
        assert _runs(engine)["other-host-fresh"]["status"] == "running"
    assert "no holder recorded" in reasons["legacy"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    try:
        os.kill(p.pid, 0)
    except ProcessLookupError:
        return p.pid
    raise AssertionError("pid reused immediately")  # pragma: no cover


def test_case10_a_run_proves_it_is_alive_while_it_works(engine):
    """The holder itself: a heartbeat that moves (SQLite), a lock the server sees (PostgreSQL)."""
    from itertools import count as ticks

    from journey_ml.ingest.runs import RunLease

    start = datetime(2026, 7, 1, tzinfo=UTC)
    tick = ticks()
    lease = RunLease(engine, "r-1", clock=lambda: start + timedelta(seconds=next(tick)), interval=0.02)
    lease.acquire()
    with engine.begin() as conn:
        conn.execute(IngestRun.__table__.insert().values(
            run_id="r-1", source="web", kind="events", status="running", started_at=start, files=0,
            rows_read=0, rows_loaded=0, rows_duplicate=0, rows_rejected=0, rows_suppressed=0,
            holder="h:1", heartbeat_at=start))
    lease.start_heartbeat()
    try:
        deadline = time.monotonic() + 20
        if engine.dialect.name == "postgresql":
            held = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
            with engine.connect() as conn:
                assert conn.execute(sa.text(held)).scalar_one() == 1
        else:
            while _runs(engine)["r-1"]["heartbeat_at"] < start + timedelta(seconds=2):
                assert time.monotonic() < deadline, "the heartbeat never moved"
                time.sleep(0.02)
    finally:
        lease.release()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            assert conn.execute(sa.text(held)).scalar_one() == 0
    else:  # stopped: no beat after release
        last = _runs(engine)["r-1"]["heartbeat_at"]
        time.sleep(0.1)
        assert _runs(engine)["r-1"]["heartbeat_at"] == last
