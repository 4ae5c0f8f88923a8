"""Ingestion end to end on both warehouses: bad inputs, idempotency, atomicity, PII."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from journey_ml.ingest import IngestError, ingest_source
from tests.conftest import RECEIVED_AT, SALT, count, make_config, snapshot, table_rows

HEADER = "id,ts,who,acct,action,amount,Email,notes\n"
WEB = {
    "name": "web", "kind": "events", "path": "web",
    "columns": {"event_id": "id", "occurred_at": "ts", "contact_id": "who", "account_id": "acct",
                "event_type": "action", "value": "amount"},
    "pii": {"hash": ["Email"], "drop": ["notes"]},
}


def run(engine, cfg, data_dir: Path, source: str = "web", **kw):
    return ingest_source(engine, cfg, source, data_dir=data_dir, salt=SALT,
                         received_at=RECEIVED_AT, **kw)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def good_row(i: int, ts: str = "2026-01-05T10:00:00Z", action: str = "page_view") -> str:
    return f"e{i},{ts},c{i % 7},a{i % 3},{action},,c{i}@example.com,note {i}\n"


# (case, rows after the header, expected quarantine reason fragment)
ROW_CASES = [
    ("wrong type", "e1,2026-01-05T10:00:00Z,c1,a1,page_view,abc,,\n", "value (column 'amount') 'abc' is not a finite number"),
    ("infinite number", "e1,2026-01-05T10:00:00Z,c1,a1,page_view,inf,,\n", "is not a finite number"),
    ("unparsable date", "e1,31/02/2025,c1,a1,page_view,,,\n", "occurred_at (column 'ts') '31/02/2025' is not a valid timestamp"),
    ("future date", "e1,2031-01-01T00:00:00Z,c1,a1,page_view,,,\n", "occurred_at (column 'ts') is in the future"),
    ("missing timestamp", "e1,,c1,a1,page_view,,,\n", "missing occurred_at (column 'ts')"),
    ("missing event type", "e1,2026-01-05T10:00:00Z,c1,a1,,,,\n", "missing event_type (column 'action')"),
    ("no contact nor account", "e1,2026-01-05T10:00:00Z,,,page_view,,,\n", "missing contact_id and account_id"),
    ("too many fields", "e1,2026-01-05T10:00:00Z,c1,a1,page_view,,,,x,y\n", "expected 8 columns, got 10"),
    ("id too long", f"{'x' * 200},2026-01-05T10:00:00Z,c1,a1,page_view,,,\n", "event_id (column 'id') longer than 128 characters"),
]


@pytest.mark.parametrize(("case", "rows", "reason"), ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_bad_rows_are_quarantined_with_a_reason(engine, tmp_path, case, rows, reason):
    write(tmp_path / "web" / "a.csv", HEADER + good_row(100) + rows + good_row(101))
    res = run(engine, make_config(WEB), tmp_path)
    assert res.balanced
    assert (res.rows_read, res.rows_loaded, res.rows_rejected) == (3, 2, 1)
    [q] = table_rows(engine, "quarantine")
    assert reason in q[5], q[5]
    assert count(engine, "events") == 2


def test_non_utf8_bytes_reject_only_that_row(engine, tmp_path):
    data = (HEADER + good_row(1)).encode() + b"e2,2026-01-05T10:00:00Z,c2,a1,page_view,,,caf\xe9\n" \
        + good_row(3).encode()
    write(tmp_path / "web" / "latin1.csv", data)
    res = run(engine, make_config(WEB), tmp_path)
    assert (res.rows_read, res.rows_loaded, res.rows_rejected) == (3, 2, 1)
    [q] = table_rows(engine, "quarantine")
    assert "invalid UTF-8 in column 'notes'" in q[5]
    # the dropped PII column is not kept in quarantine either
    assert "notes" not in json.loads(q[6])


def test_missing_column_fails_before_anything_is_loaded(engine, tmp_path):
    write(tmp_path / "web" / "a.csv", HEADER + good_row(1))
    write(tmp_path / "web" / "b.csv", "id,who,acct,action\ne9,c1,a1,page_view\n")
    before = snapshot(engine)
    with pytest.raises(IngestError, match=r"b\.csv: missing required column\(s\) occurred_at \(column 'ts'\)"):
        run(engine, make_config(WEB), tmp_path)
    assert snapshot(engine) == before
    with engine.connect() as conn:
        status, error = conn.execute(sa.text("SELECT status, error FROM ingest_runs")).one()
    assert status == "failed" and "missing required column" in error


def test_empty_file_is_a_clear_error(engine, tmp_path):
    write(tmp_path / "web" / "empty.csv", "")
    with pytest.raises(IngestError, match="empty.csv: empty file"):
        run(engine, make_config(WEB), tmp_path)


def test_header_only_file_reads_nothing(engine, tmp_path):
    write(tmp_path / "web" / "a.csv", HEADER)
    res = run(engine, make_config(WEB), tmp_path)
    assert res.rows_read == 0 and res.balanced and res.status == "succeeded"


def test_duplicates_inside_a_file_and_across_files(engine, tmp_path):
    write(tmp_path / "web" / "a.csv", HEADER + good_row(1) + good_row(1) + good_row(2))
    write(tmp_path / "web" / "b.csv", HEADER + good_row(2) + good_row(3))
    res = run(engine, make_config(WEB), tmp_path)
    assert (res.rows_read, res.rows_loaded, res.rows_duplicate) == (5, 3, 2)
    assert res.balanced
    assert count(engine, "events") == 3


def test_unknown_event_names_kept_and_reported_or_rejected(engine, tmp_path):
    write(tmp_path / "web" / "a.csv", HEADER + good_row(1, action="chat_started") + good_row(2)
          + good_row(3, action="chat_started"))
    res = run(engine, make_config(WEB), tmp_path)
    assert res.unknown_event_types == {"chat_started": 2}
    assert res.rows_loaded == 3
    with engine.connect() as conn:
        stages = conn.execute(sa.text("SELECT event_type, stage FROM events ORDER BY event_id")).all()
    assert [tuple(s) for s in stages] == [("chat_started", None), ("page_view", "awareness"),
                                          ("chat_started", None)]

    strict = make_config({**WEB, "name": "web2"}, ingest={"unknown_event_types": "reject"})
    res2 = run(engine, strict, tmp_path, source="web2")
    assert (res2.rows_loaded, res2.rows_rejected) == (1, 2)
    assert count(engine, "quarantine", "WHERE reason LIKE '%is not in the taxonomy%'") == 2


def test_one_bad_row_in_100k(engine, tmp_path):
    n = 100_000
    df = pd.DataFrame({
        "id": [f"e{i}" for i in range(n)],
        "ts": pd.date_range("2025-01-01", periods=n, freq="min", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "who": [f"c{i % 5000}" for i in range(n)],
        "acct": [f"a{i % 900}" for i in range(n)],
        "action": ["page_view", "pricing_page_view"] * (n // 2),
        "amount": [""] * n, "Email": [""] * n, "notes": [""] * n,
    })
    df.loc[54_321, "ts"] = "not-a-date"
    write(tmp_path / "web" / "big.csv", "")
    df.to_csv(tmp_path / "web" / "big.csv", index=False)
    res = run(engine, make_config(WEB), tmp_path, batch_rows=30_000)
    assert (res.rows_read, res.rows_loaded, res.rows_rejected) == (n, n - 1, 1)
    assert res.batches_applied >= 3
    [q] = table_rows(engine, "quarantine")
    assert q[4] == 54_322 and "'not-a-date' is not a valid timestamp" in q[5]


def test_timestamps_are_normalised_to_utc(engine, tmp_path):
    rows = ("e1,2026-01-05T12:00:00+02:00,c1,a1,page_view,,,\n"
            "e2,2026-01-05 12:00:00,c1,a1,page_view,,,\n")
    write(tmp_path / "web" / "a.csv", HEADER + rows)
    cfg = make_config({**WEB, "timezone": "America/New_York"})
    run(engine, cfg, tmp_path)
    with engine.connect() as conn:
        got = dict(conn.execute(sa.text("SELECT event_id, occurred_at FROM events")).all())
    from journey_ml.db.models import Event

    with engine.connect() as conn:
        typed = dict(conn.execute(sa.select(Event.event_id, Event.occurred_at)).all())
    assert typed["e1"].isoformat() == "2026-01-05T10:00:00+00:00"
    assert typed["e2"].isoformat() == "2026-01-05T17:00:00+00:00"  # EST is UTC-5
    assert set(got) == {"e1", "e2"}


def test_reingest_and_overlapping_exports_change_nothing(engine, tmp_path):
    write(tmp_path / "web" / "jan.csv", HEADER + "".join(good_row(i) for i in range(50)))
    cfg = make_config(WEB)
    first = run(engine, cfg, tmp_path)
    before = snapshot(engine)
    again = run(engine, cfg, tmp_path)
    assert again.rows_loaded == 0 and again.rows_duplicate == 50 and again.batches_skipped == 1
    assert snapshot(engine) == before
    # a later export that repeats part of the earlier one
    write(tmp_path / "web" / "jan-feb.csv", HEADER + "".join(good_row(i) for i in range(40, 70)))
    third = run(engine, cfg, tmp_path)
    assert (third.rows_loaded, third.rows_duplicate) == (20, 50 + 10)
    assert count(engine, "events") == 70
    assert first.rows_loaded == 50


def test_missing_event_ids_are_derived_deterministically(engine, tmp_path):
    src = {"name": "webinars", "kind": "events", "path": "w.csv",
           "columns": {"occurred_at": "event_time", "event_type": "status"}}
    body = ("contact_id,webinar,status,event_time\n"
            "c1,intro,page_view,2026-01-01T10:00:00Z\n"
            "c1,intro,page_view,2026-01-01T10:00:00Z\n"
            "c2,intro,page_view,2026-01-01T10:00:00Z\n")
    write(tmp_path / "w.csv", body)
    cfg = make_config(src)
    res = run(engine, cfg, tmp_path, source="webinars")
    assert (res.rows_loaded, res.rows_duplicate) == (2, 1)
    ids = sorted(r[1] for r in table_rows(engine, "events"))
    # the same content, exported again with another row order, maps to the same ids
    write(tmp_path / "w.csv", body.splitlines()[0] + "\n" + "\n".join(reversed(body.splitlines()[1:])) + "\n")
    res2 = run(engine, cfg, tmp_path, source="webinars")
    assert res2.rows_loaded == 0 and res2.rows_duplicate == 3
    assert sorted(r[1] for r in table_rows(engine, "events")) == ids


@pytest.mark.parametrize("loaders", [1, 2])
def test_failure_mid_batch_leaves_the_warehouse_as_before(engine, tmp_path, loaders):
    """Each partition of a batch is atomic: with one loader the batch is one partition; with
    two (PostgreSQL) the partition without the failing row may be applied, never half of one."""
    cfg = make_config(WEB, ingest={"loaders": loaders})
    write(tmp_path / "web" / "a.csv", HEADER + "".join(good_row(i) for i in range(10)))
    run(engine, cfg, tmp_path)
    # a second export whose batch fails inside the database, half-way through the insert
    write(tmp_path / "web" / "b.csv", HEADER + "".join(good_row(i) for i in range(10, 30))
          + "bad-row,2026-01-06T00:00:00Z,c1,a1,page_view,9,,\n")
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(
                "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                "IF NEW.event_id = 'bad-row' THEN RAISE EXCEPTION 'injected failure'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"))
            conn.execute(sa.text("CREATE TRIGGER boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION boom()"))
        else:
            conn.execute(sa.text("CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.event_id = 'bad-row' "
                                 "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"))
    before = snapshot(engine)
    partitioned = loaders > 1 and engine.dialect.name == "postgresql"
    try:
        with pytest.raises(IngestError, match="injected failure"):
            run(engine, cfg, tmp_path)
        if partitioned:
            after = snapshot(engine)
            with engine.connect() as conn:
                b_parts = conn.execute(sa.text(
                    "SELECT partitions, rows_loaded FROM ingest_batches WHERE file LIKE '%b.csv'")).all()
            # what was applied is whole partitions, each with its ledger row, and never the
            # partition of the failing row
            assert len(b_parts) <= 1 and all(r.partitions == 2 for r in b_parts)
            done = sum(r.rows_loaded for r in b_parts)
            assert len(after["events"]) == 10 + done
            assert {r[1] for r in after["events"]} >= {r[1] for r in before["events"]}
            assert "bad-row" not in {r[1] for r in after["events"]}
            assert after["quarantine"] == before["quarantine"]
        else:
            assert snapshot(engine) == before
            done = 0
        assert count(engine, "ingest_runs", "WHERE status = 'failed'") == 1
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER boom" + (" ON events" if engine.dialect.name == "postgresql" else "")))
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("DROP FUNCTION boom()"))
    # the next run applies the failed batch (or its missing partition) exactly once
    res = run(engine, cfg, tmp_path)
    assert (res.rows_loaded, res.rows_duplicate) == (21 - done, 10 + done)
    assert res.batches_skipped == 1 and res.balanced
    assert count(engine, "events") == 31
    with engine.connect() as conn:
        parts = conn.execute(sa.text("SELECT DISTINCT partitions FROM ingest_batches")).scalars().all()
    assert parts == [2 if partitioned else 1]


def test_pii_is_hashed_or_dropped_before_storage(engine, tmp_path):
    write(tmp_path / "web" / "a.csv", HEADER + "e1,2026-01-05T10:00:00Z,c1,a1,page_view,,Jane.Doe@Example.com,secret note\n"
          + "e2,not-a-date,c1,a1,page_view,,jane.doe@example.com,another secret\n")
    run(engine, make_config(WEB), tmp_path)
    dump = json.dumps(snapshot(engine), default=str).lower()
    assert "jane.doe" not in dump and "secret" not in dump
    props = table_rows(engine, "events")[0][9]
    props = props if isinstance(props, dict) else json.loads(props)
    from journey_ml.ingest.pii import keyed_hash

    assert props == {"Email": keyed_hash("jane.doe@example.com", SALT)}


def test_jsonl_source_with_bad_lines(engine, tmp_path):
    src = {"name": "web", "kind": "events", "path": "web", "format": "jsonl",
           "columns": {"event_id": "id", "occurred_at": "timestamp", "contact_id": "visitor_id",
                       "event_type": "event", "value": "duration_s"},
           "pii": {"drop": ["ip"]}}
    lines = [
        {"id": "w1", "timestamp": "2026-01-01T10:00:00Z", "visitor_id": "c1", "event": "page_view", "ip": "10.1.2.3", "duration_s": 12},
        '{"id": "w2", "timestamp": "2026-01-01T10:00:00Z", "ip": "10.9.9.9", broken',
        {"id": "w3", "visitor_id": "c1", "event": "page_view"},
        [1, 2],
        {"id": "w4", "timestamp": "2026-01-02T10:00:00-05:00", "visitor_id": 42, "event": "demo_request", "url": {"path": "/demo"}},
    ]
    write(tmp_path / "web" / "a.jsonl", "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    res = run(engine, make_config(src), tmp_path)
    assert (res.rows_read, res.rows_loaded, res.rows_rejected) == (5, 2, 3) and res.balanced
    reasons = sorted(q[5] for q in table_rows(engine, "quarantine"))
    assert any(r.startswith("invalid JSON") for r in reasons)
    assert any("missing occurred_at (column 'timestamp')" in r for r in reasons)
    assert any("expected a JSON object" in r for r in reasons)
    assert "10.9.9.9" not in json.dumps(table_rows(engine, "quarantine"), default=str)
    with engine.connect() as conn:
        contact = conn.execute(sa.text("SELECT contact_id FROM events WHERE event_id = 'w4'")).scalar_one()
    assert contact == "42"


def test_parquet_source(engine, tmp_path):
    df = pd.DataFrame({
        "account_id": ["a1", "a2", None],
        "user_id": ["c1", "c2", "c3"],
        "ts": pd.to_datetime(["2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", "2026-01-03T10:00:00Z"]),
        "event": ["page_view", "page_view", "page_view"],
    })
    (tmp_path / "p").mkdir()
    df.to_parquet(tmp_path / "p" / "usage.parquet")
    src = {"name": "product", "kind": "events", "path": "p", "columns": {"occurred_at": "ts", "contact_id": "user_id", "event_type": "event"},
           "defaults": {"channel": "product"}}
    res = run(engine, make_config(src), tmp_path, source="product")
    assert res.rows_loaded == 3
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(DISTINCT channel) FROM events")).scalar_one() == 1


CONTACTS = {"name": "crm_contacts", "kind": "contacts", "path": "contacts.csv",
            "columns": {"contact_id": "ContactId", "account_id": "AccountId", "email": "Email",
                        "role": "BuyingRole", "opted_out": "OptedOut"},
            "pii": {"drop": ["FullName"]}}


def test_contacts_upsert_counts_changes_and_flags_opt_outs(engine, tmp_path):
    write(tmp_path / "contacts.csv", "ContactId,AccountId,Email,FullName,BuyingRole,OptedOut,Tier\n"
          "c1,a1,one@x.com,One Person,economic_buyer,false,gold\n"
          "c2,a1,two@x.com,Two Person,end_user,yes,silver\n"
          "c3,a1,three@x.com,Three,end_user,maybe,\n")
    cfg = make_config(CONTACTS)
    res = run(engine, cfg, tmp_path, source="crm_contacts")
    assert (res.rows_loaded, res.rows_rejected) == (2, 1)
    q = table_rows(engine, "quarantine")[0]
    assert "opted_out (column 'OptedOut') 'maybe' is not true/false" in q[5]
    write(tmp_path / "contacts.csv", "ContactId,AccountId,Email,FullName,BuyingRole,OptedOut,Tier\n"
          "c1,a1,one@x.com,One Person,economic_buyer,false,platinum\n"
          "c2,a1,two@x.com,Two Person,end_user,yes,silver\n")
    res2 = run(engine, cfg, tmp_path, source="crm_contacts")
    assert (res2.rows_loaded, res2.rows_duplicate) == (1, 1)
    with engine.connect() as conn:
        rows = {r[0]: r[1:] for r in conn.execute(sa.text(
            "SELECT contact_id, opted_out, attributes, email_hash FROM contacts"))}
    assert bool(rows["c2"][0]) is True and bool(rows["c1"][0]) is False
    attrs = rows["c1"][1] if isinstance(rows["c1"][1], dict) else json.loads(rows["c1"][1])
    assert attrs == {"Tier": "platinum"}
    assert len(rows["c1"][2]) == 64 and "one@x.com" not in json.dumps(snapshot(engine), default=str)
