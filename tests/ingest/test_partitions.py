"""Issue #14.3: batches split by key hash across loader connections (PostgreSQL).

The warehouse after a two-loader run is the one-loader warehouse, row for row (checksum per
source); a run killed with one partition committed and another half-copied resumes to the
same warehouse; every count balances.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import checksums, count, make_config
from tests.ingest.test_pipeline import CONTACTS, HEADER, WEB, good_row, run, write
from tests.ingest.test_runs import ROOT, _balanced, _runs

BATCH_ROWS = 10  # CSV blocks are read 64 KiB at a time: about 900 rows per batch here


def _dataset(data_dir: Path) -> int:
    """Three overlapping web exports with bad rows and in-file duplicates, plus contacts."""
    rows = 0
    for f, (lo, hi) in {"a.csv": (0, 2500), "b.csv": (2000, 4500), "c.csv": (4500, 6000)}.items():
        body = [good_row(i, action="page_view" if i % 5 else "demo_request") for i in range(lo, hi)]
        body[7] = body[7].replace("2026-01-05T10:00:00Z", "not-a-date")  # rejected
        body[100] = body[100].replace(",,", ",abc,", 1)  # rejected: value is not a number
        body += body[200:260]  # duplicates inside the file
        write(data_dir / "web" / f, HEADER + "".join(body))
        rows += len(body)
    contacts = "ContactId,AccountId,Email,FullName,BuyingRole,OptedOut,Tier\n" + "".join(
        f"c{i},a{i % 40},p{i}@x.com,Person {i},end_user,{'yes' if i % 9 == 0 else 'false'},t{i % 3}\n"
        for i in range(1500)) + "c5,a5,p5@x.com,Again,economic_buyer,false,gold\nc9,a1,bad,X,end_user,maybe,\n"
    write(data_dir / "contacts.csv", contacts)
    return rows + 1502


def _ingest(engine, data_dir: Path, loaders: int) -> list:
    cfg = make_config(WEB, CONTACTS, ingest={"loaders": loaders})
    return [run(engine, cfg, data_dir, source=s, batch_rows=BATCH_ROWS, loaders=loaders)
            for s in ("web", "crm_contacts")]


def _truncate(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE events, contacts, quarantine, ingest_batches, ingest_runs"))


def test_two_loaders_give_the_one_loader_warehouse(pg_engine, tmp_path):
    rows = _dataset(tmp_path)
    one = _ingest(pg_engine, tmp_path, loaders=1)
    expected = checksums(pg_engine)
    _truncate(pg_engine)
    two = _ingest(pg_engine, tmp_path, loaders=2)
    assert checksums(pg_engine) == expected
    assert {k[1] for k in expected} == {"web", "crm_contacts"} and expected[("quarantine", "web")][0] == 6
    for a, b in zip(one, two, strict=True):
        assert b.balanced and a.balanced
        assert (a.rows_read, a.rows_loaded, a.rows_duplicate, a.rows_rejected) == \
               (b.rows_read, b.rows_loaded, b.rows_duplicate, b.rows_rejected)
        assert a.batches_applied == b.batches_applied > 1
    assert sum(r.rows_read for r in two) == rows
    with pg_engine.connect() as conn:
        ledger = conn.execute(sa.text(
            "SELECT partitions, count(*) AS parts, count(DISTINCT batch_key) AS batches, "
            "sum(rows_read) AS rows FROM ingest_batches GROUP BY partitions")).one()
        unbalanced = conn.execute(sa.text(
            "SELECT count(*) FROM ingest_batches WHERE rows_read <> rows_loaded + rows_duplicate "
            "+ rows_rejected + rows_suppressed")).scalar_one()
    # every batch in two partitions, each with its own ledger row; each row balances alone
    assert ledger.partitions == 2 and ledger.parts == 2 * ledger.batches and ledger.rows == rows
    assert unbalanced == 0


# an ingest with two loaders; the test makes one of them stall inside its COPY, then kills it
_INGEST = """
import sys
from pathlib import Path
from journey_ml.db import make_engine
from tests.ingest.test_partitions import _ingest
_ingest(make_engine(sys.argv[1]), Path(sys.argv[2]), loaders=2)
"""
_STALL = ("CREATE FUNCTION stall() RETURNS trigger AS $$ BEGIN "
          "IF NEW.event_id = 'e3000' THEN PERFORM pg_sleep(600); END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
_STALLED = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()")


@pytest.mark.parametrize("rerun_loaders", [2, 1])
def test_a_loader_killed_mid_batch_resumes_to_the_same_warehouse(pg_engine, tmp_path, rerun_loaders):
    _dataset(tmp_path)
    _ingest(pg_engine, tmp_path, loaders=1)
    expected = checksums(pg_engine)
    _truncate(pg_engine)

    with pg_engine.begin() as conn:
        conn.execute(sa.text(_STALL))
        conn.execute(sa.text("CREATE TRIGGER stall BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION stall()"))
    url = pg_engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen([sys.executable, "-c", _INGEST, url, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # one loader is inside its COPY of the partition holding e3000, its transaction open;
        # the other has committed partitions, among them its part of that very batch
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the loader never stalled"
            with pg_engine.connect() as conn:
                stalled = conn.execute(sa.text(_STALLED)).scalars().all()
                half_applied = conn.execute(sa.text(
                    "SELECT count(*) FROM (SELECT batch_key FROM ingest_batches GROUP BY batch_key "
                    "HAVING count(*) < max(partitions)) b")).scalar_one()
            if stalled and half_applied:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
        with pg_engine.begin() as conn:
            # the server ends the dead client's sessions once it notices; here, at once
            conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM ({_STALLED}) s"))
            conn.execute(sa.text("DROP TRIGGER stall ON events"))
            conn.execute(sa.text("DROP FUNCTION stall()"))
    deadline = time.monotonic() + 20
    while count(pg_engine, "pg_locks", "WHERE locktype = 'advisory'") and time.monotonic() < deadline:
        time.sleep(0.05)

    with pg_engine.connect() as conn:
        applied = conn.execute(sa.text("SELECT count(*), coalesce(sum(rows_read), 0) FROM ingest_batches")).one()
        # the half-copied partition left nothing behind
        assert conn.execute(sa.text("SELECT count(*) FROM events WHERE event_id = 'e3000'")).scalar_one() == 0
    assert applied[0] >= 1
    assert count(pg_engine, "ingest_runs", "WHERE status = 'running'") == 1
    web, contacts = _ingest(pg_engine, tmp_path, loaders=rerun_loaders)
    assert checksums(pg_engine) == expected
    [killed] = web.abandoned
    assert _runs(pg_engine)[killed.run_id]["status"] == "abandoned"
    assert all(_balanced(r) for r in _runs(pg_engine).values())
    # the resumed run applied exactly what the killed one had not: its rows count as duplicates
    with pg_engine.connect() as conn:
        loaded_before = conn.execute(sa.text(
            "SELECT coalesce(sum(rows_loaded), 0) FROM ingest_batches WHERE run_id = :r"),
            {"r": killed.run_id}).scalar_one()
        batches = conn.execute(sa.text(
            "SELECT batch_key, min(partitions) AS lo, max(partitions) AS hi, count(*) AS parts, "
            "bool_or(run_id = :killed) AS begun, bool_or(run_id = :resumed) AS finished "
            "FROM ingest_batches WHERE source = 'web' GROUP BY batch_key"),
            {"killed": killed.run_id, "resumed": web.run_id}).all()
    assert web.balanced and contacts.balanced
    assert web.rows_loaded + loaded_before == expected[("events", "web")][0]
    # a batch the killed run began keeps its two partitions even when resumed with one loader;
    # (how many batches the killed run had reached depends on timing, so each kind is checked alone)
    assert all(b.parts == b.lo == b.hi for b in batches)
    assert all(b.hi == 2 for b in batches if b.begun)
    assert all(b.hi == rerun_loaders for b in batches if not b.begun)
    assert any(b.begun and b.finished for b in batches), "the half-applied batch was not resumed"


def test_split_batch_partitions_by_key_and_adds_up(tmp_path):
    """The split itself: disjoint keys, every row in one part, the same split every time,
    the batch-wide counts (rejects, duplicates) on partition 0, each part balanced."""
    from datetime import timedelta

    from journey_ml.ingest.load import split_batch
    from journey_ml.ingest.readers import read_batches
    from journey_ml.ingest.validate import ValidationContext, prepare_batch
    from tests.conftest import RECEIVED_AT, SALT

    _dataset(tmp_path)
    cfg = make_config(WEB)
    ctx = ValidationContext(source=cfg.source("web"), taxonomy=cfg.taxonomy, salt=SALT,
                            received_at=RECEIVED_AT, max_future_skew=timedelta(hours=1))
    [batch] = list(read_batches(tmp_path / "web" / "a.csv", "csv", 100_000, cfg.source("web").null_values))
    prepared = prepare_batch(batch, ctx)
    assert prepared.rejected == 2 and prepared.duplicates == 60
    for partitions in (1, 2, 3):
        parts = split_batch(prepared, cfg.source("web").kind, partitions)
        again = split_batch(prepared, cfg.source("web").kind, partitions)
        ids = [set(p.rows["event_id"]) for p in parts]
        assert [set(p.rows["event_id"]) for p in again] == ids
        assert sum(len(i) for i in ids) == len(set().union(*ids)) == len(prepared.rows)
        assert all(len(p.rows) > 0.2 * len(prepared.rows) / partitions for p in parts)
        assert sum(p.rows_read for p in parts) == prepared.rows_read == 2560
        assert [p.rejected for p in parts] == [2] + [0] * (partitions - 1)
        assert [p.duplicates for p in parts] == [60] + [0] * (partitions - 1)
        assert all(p.rows_read == len(p.rows) + p.duplicates + p.rejected + p.suppressed for p in parts)
