"""Issue #9, data path: each bad input gets a test named after its case (run on both warehouses)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from journey_ml.db.models import Event
from journey_ml.ingest.pii import keyed_hash
from tests.conftest import count, make_config, snapshot, table_rows
from tests.ingest.test_pipeline import CONTACTS, HEADER, WEB, run, write

BOM = "\ufeff"


def _doc(v):
    return v if isinstance(v, dict | None) else json.loads(v)


def _events(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Event.event_id, Event.contact_id, Event.account_id,
                                      Event.occurred_at, Event.properties)).all()
    return {r[0]: {"contact_id": r[1], "account_id": r[2], "occurred_at": r[3],
                   "properties": _doc(r[4])} for r in rows}


def _contacts(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT contact_id, email_hash, attributes FROM contacts")).all()
    return {r[0]: (r[1], _doc(r[2])) for r in rows}


def _quarantine(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT row_number, line_number, reason, raw, contact_id, account_id FROM quarantine "
            "ORDER BY row_number")).mappings().all()
    return [dict(r) for r in rows]


# --- case 1: a UTF-8 BOM defeats PII hashing -----------------------------------------------

JSONL_WEB = {"name": "web", "kind": "events", "path": "web", "format": "jsonl",
             "columns": {"event_id": "id", "occurred_at": "ts", "contact_id": "who",
                         "event_type": "action"},
             "pii": {"hash": ["Email"]}}
JSONL_CONTACTS = {**CONTACTS, "path": "contacts.jsonl", "format": "jsonl"}


def _bom_files(tmp_path: Path, fmt: str) -> None:
    if fmt == "csv":
        write(tmp_path / "web" / "a.csv", BOM + HEADER
              + "e1,2026-01-05T10:00:00Z,c1,a1,page_view,,x@example.com,\n")
        write(tmp_path / "contacts.csv", BOM + "Email,ContactId,AccountId,BuyingRole,OptedOut\n"
              "Ann@Example.com,c1,a1,end_user,false\n")
    else:
        write(tmp_path / "web" / "a.jsonl", BOM + json.dumps(
            {"id": "e1", "ts": "2026-01-05T10:00:00Z", "who": "c1", "action": "page_view",
             "Email": "x@example.com"}) + "\n")
        write(tmp_path / "contacts.jsonl", BOM + json.dumps(
            {"Email": "Ann@Example.com", "ContactId": "c1", "AccountId": "a1"}) + "\n")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_case01_utf8_bom_before_an_id_and_a_pii_column(engine, tmp_path, fmt):
    _bom_files(tmp_path, fmt)
    web, contacts = (WEB, CONTACTS) if fmt == "csv" else (JSONL_WEB, JSONL_CONTACTS)
    cfg = make_config(contacts, web)
    c = run(engine, cfg, tmp_path, source="crm_contacts")
    w = run(engine, cfg, tmp_path, source="web")
    assert (c.rows_loaded, c.rows_rejected, w.rows_loaded, w.rows_rejected) == (1, 0, 1, 0)
    # the BOM before the id column no longer replaces the real id with a derived one
    events = _events(engine)
    assert list(events) == ["e1"]
    assert events["e1"]["properties"] == {"Email": keyed_hash("x@example.com", "test-salt")}
    # the BOM before the email column no longer leaves the address in clear
    [(email_hash, attributes)] = _contacts(engine).values()
    assert email_hash == keyed_hash("ann@example.com", "test-salt")
    assert attributes is None
    assert "example.com" not in json.dumps(snapshot(engine), default=str).lower()


def test_case01_bom_and_spaces_in_parquet_names_and_config(engine, tmp_path):
    df = pd.DataFrame({BOM + "id": ["e1"], " ts ": pd.to_datetime(["2026-01-05T10:00:00Z"]),
                       "who": ["c1"], "action": ["page_view"], " Email": ["x@example.com"]})
    (tmp_path / "p").mkdir()
    df.to_parquet(tmp_path / "p" / "a.parquet")
    src = {"name": "web", "kind": "events", "path": "p",
           "columns": {"event_id": "id", "occurred_at": " ts", "contact_id": "who",
                       "event_type": "action"},
           "pii": {"hash": ["Email "]}}
    res = run(engine, make_config(src), tmp_path)
    assert res.rows_loaded == 1
    assert _events(engine)["e1"]["properties"] == {"Email": keyed_hash("x@example.com", "test-salt")}


# --- case 2: integer ids above 2^53 are merged --------------------------------------------

BIG = 9007199254740993  # 2^53 + 1: float64 rounds it to 2^53


def test_case02_big_integer_ids_in_parquet_with_a_null(engine, tmp_path):
    (tmp_path / "p").mkdir()
    # written by a tool other than pandas (Spark, DuckDB...): plain int64 with nulls
    pq.write_table(pa.table({
        "event_id": pa.array([BIG, BIG - 1, None], pa.int64()),
        "user_id": pa.array([BIG, BIG - 1, None], pa.int64()),
        "account_id": ["a1", "a1", "a1"],
        "ts": pa.array([datetime(2026, 1, 1, 10, tzinfo=UTC)] * 3, pa.timestamp("us", "UTC")),
        "event": ["page_view"] * 3,
    }), tmp_path / "p" / "a.parquet")
    src = {"name": "product", "kind": "events", "path": "p",
           "columns": {"occurred_at": "ts", "contact_id": "user_id", "event_type": "event"}}
    res = run(engine, make_config(src), tmp_path, source="product")
    assert (res.rows_loaded, res.rows_duplicate) == (3, 0)
    events = _events(engine)
    assert {str(BIG), str(BIG - 1)} <= set(events)
    assert events[str(BIG)]["contact_id"] == str(BIG)
    assert events[str(BIG - 1)]["contact_id"] == str(BIG - 1)


def test_case02_big_integer_ids_in_jsonl_with_a_missing_key(engine, tmp_path):
    lines = [{"id": BIG, "ts": "2026-01-01T10:00:00Z", "who": BIG, "action": "page_view"},
             {"id": BIG - 1, "ts": "2026-01-01T10:00:00Z", "who": BIG - 1, "action": "page_view"},
             {"id": 7, "ts": "2026-01-01T10:00:00Z", "action": "page_view", "account_id": "a1"}]
    write(tmp_path / "web" / "a.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    res = run(engine, make_config(JSONL_WEB), tmp_path)
    assert (res.rows_loaded, res.rows_duplicate, res.rows_rejected) == (3, 0, 0)
    events = _events(engine)
    assert set(events) == {str(BIG), str(BIG - 1), "7"}
    assert events[str(BIG)]["contact_id"] == str(BIG) and events["7"]["contact_id"] is None


def test_case02_float_ids_that_lost_their_value_are_rejected(engine, tmp_path):
    (tmp_path / "p").mkdir()
    pd.DataFrame({"user_id": [float(BIG), 12.0, None], "account_id": ["a1"] * 3,
                  "ts": pd.to_datetime(["2026-01-01T10:00:00Z"] * 3), "event": ["page_view"] * 3,
                  }).to_parquet(tmp_path / "p" / "a.parquet")
    src = {"name": "product", "kind": "events", "path": "p",
           "columns": {"occurred_at": "ts", "contact_id": "user_id", "event_type": "event"}}
    res = run(engine, make_config(src), tmp_path, source="product")
    assert (res.rows_loaded, res.rows_rejected) == (2, 1)
    [q] = _quarantine(engine)
    assert "contact_id (column 'user_id')" in q["reason"]
    assert "floating-point number above 2^53" in q["reason"], q["reason"]


# --- case 14: quarantine stores '<NA>' instead of NULL -------------------------------------

def test_case14_quarantine_stores_null_ids_not_na_text(engine, tmp_path):
    write(tmp_path / "web" / "a.csv", HEADER
          + "e1,2026-01-05T10:00:00Z,,,page_view,,,\n"       # no ids at all
          + "e2,not-a-date,,a1,page_view,,,\n"               # account only
          + "e3,2026-01-05T10:00:00Z,c3,,page_view,,,,x,y\n")  # malformed, contact only
    res = run(engine, make_config(WEB), tmp_path)
    assert res.rows_rejected == 3
    got = {q["row_number"]: (q["contact_id"], q["account_id"]) for q in _quarantine(engine)}
    assert got == {1: (None, None), 2: (None, "a1"), 3: ("c3", None)}
    assert count(engine, "quarantine", "WHERE contact_id = '<NA>' OR account_id = '<NA>'") == 0


# --- case 15: quarantine row numbers wrong after a malformed row ---------------------------

def test_case15_true_line_numbers_and_scrubbed_raw_after_a_malformed_row(engine, tmp_path):
    lines = [
        HEADER.rstrip("\n"),                                                   # line 1
        "e1,2026-01-05T10:00:00Z,c1,a1,page_view,,one@x.com,n1",               # line 2
        "e2,2026-01-05T10:00:00Z,c2,a1,page_view,,two@x.com,n2,EXTRA",         # line 3 malformed
        "e3,not-a-date,c3,a1,page_view,,three@x.com,n3",                       # line 4 rejected
        "",                                                                    # line 5 blank
        'e4,2026-01-05T10:00:00Z,c4,a1,page_view,,four@x.com,"two',            # line 6 ...
        'lines"',                                                              # line 7
        "e5,2026-01-05T10:00:00Z,c5,a1,page_view,abc,five@x.com,n5",           # line 8 rejected
        "e6,2026-01-05T10:00:00Z,c6,a1",                                       # line 9 malformed
        "e7,2026-01-05T10:00:00Z,c7,a1,page_view,,seven@x.com,n7",             # line 10
    ]
    write(tmp_path / "web" / "a.csv", "\n".join(lines) + "\n")
    res = run(engine, make_config(WEB), tmp_path)
    assert (res.rows_read, res.rows_loaded, res.rows_rejected) == (7, 3, 4) and res.balanced
    q = _quarantine(engine)
    assert [(r["row_number"], r["line_number"]) for r in q] == [(2, 3), (3, 4), (5, 8), (6, 9)]
    assert "expected 8 columns, got 9" in q[0]["reason"]
    assert "'not-a-date' is not a valid timestamp" in q[1]["reason"]
    assert "'abc' is not a finite number" in q[2]["reason"]
    assert "expected 8 columns, got 4" in q[3]["reason"]
    # the malformed rows keep their text, with the personal-data columns (and any field that
    # may have shifted into them) removed; ids are kept so erasure can find them
    assert q[0]["contact_id"] == "c2" and q[3]["contact_id"] == "c6"
    assert json.loads(q[0]["raw"])[:4] == ["e2", "2026-01-05T10:00:00Z", "c2", "a1"]
    # too few fields: any of the last ones may have shifted out of a personal-data column
    assert json.loads(q[3]["raw"]) == ["e6", "2026-01-05T10:00:00Z", "<removed>", "<removed>"]
    dump = json.dumps(table_rows(engine, "quarantine"), default=str)
    assert "@x.com" not in dump and "n2" not in dump and "withheld" not in dump


def test_case15_jsonl_line_numbers_count_blank_lines(engine, tmp_path):
    text = ("\n"
            + json.dumps({"id": "w1", "ts": "2026-01-05T10:00:00Z", "who": "c1", "action": "page_view"}) + "\n"
            + '{"id": "w2", broken\n'
            + "\n"
            + json.dumps({"id": "w3", "ts": "yesterday", "who": "c1", "action": "page_view"}) + "\n")
    write(tmp_path / "web" / "a.jsonl", text)
    res = run(engine, make_config(JSONL_WEB), tmp_path)
    assert (res.rows_read, res.rows_loaded, res.rows_rejected) == (3, 1, 2)
    assert [(r["row_number"], r["line_number"]) for r in _quarantine(engine)] == [(2, 3), (3, 5)]


# --- case 16: JSON-lines nested objects double-encoded; non-scalar ids accepted ------------

def test_case16_nested_json_kept_as_json_and_non_scalar_ids_rejected(engine, tmp_path):
    lines = [
        {"id": "w1", "ts": "2026-01-05T10:00:00Z", "who": "c1", "action": "page_view",
         "props": {"utm": {"source": "ads", "terms": ["a", "b"]}}, "tags": ["x", 1]},
        {"id": "w2", "ts": "2026-01-05T10:00:00Z", "who": {"id": "c2"}, "action": "page_view"},
        {"id": ["w3"], "ts": "2026-01-05T10:00:00Z", "who": "c3", "action": "page_view"},
    ]
    write(tmp_path / "web" / "a.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    res = run(engine, make_config(JSONL_WEB), tmp_path)
    assert (res.rows_loaded, res.rows_rejected) == (1, 2)
    assert _events(engine)["w1"]["properties"] == {
        "props": {"utm": {"source": "ads", "terms": ["a", "b"]}}, "tags": ["x", 1]}
    reasons = [q["reason"] for q in _quarantine(engine)]
    assert "contact_id (column 'who') is a JSON object, not a single value" in reasons[0]
    assert "event_id (column 'id') is a JSON array, not a single value" in reasons[1]


# --- case 17: exact repeated rows of a source without an id column ------------------------

PURCHASES = {"name": "purchases", "kind": "events", "path": "purchases.csv",
             "columns": {"occurred_at": "day", "event_type": "what"}}


@pytest.mark.parametrize(("identical_rows", "loaded", "duplicate"), [("merge", 2, 2), ("keep", 4, 0)])
def test_case17_identical_rows_merge_or_keep(engine, tmp_path, identical_rows, loaded, duplicate):
    body = ("contact_id,day,what,value\n"
            "c1,2026-01-05,closed_won,10\n"
            "c1,2026-01-05,closed_won,10\n"
            "c1,2026-01-05,closed_won,10\n"
            "c2,2026-01-05,closed_won,10\n")
    write(tmp_path / "purchases.csv", body)
    src = {**PURCHASES, **({} if identical_rows == "merge" else {"identical_rows": "keep"})}
    cfg = make_config(src)
    res = run(engine, cfg, tmp_path, source="purchases")
    assert (res.rows_loaded, res.rows_duplicate) == (loaded, duplicate)
    # re-reading the same export (as a new file version) loads nothing twice
    write(tmp_path / "purchases.csv", body + "\n")
    again = run(engine, cfg, tmp_path, source="purchases")
    assert (again.rows_loaded, again.rows_duplicate) == (0, 4)
    assert count(engine, "events") == loaded


# --- case 4 (end to end): date-only values take the source timezone ------------------------

def test_case04_date_only_values_are_local_midnight_in_the_warehouse(engine, tmp_path):
    write(tmp_path / "web" / "a.csv", HEADER + "e1,2026-01-05,c1,a1,page_view,,,\n"
          + "e2,2026,c1,a1,page_view,,,\n")
    res = run(engine, make_config({**WEB, "timezone": "America/New_York"}), tmp_path)
    assert (res.rows_loaded, res.rows_rejected) == (1, 1)
    assert _events(engine)["e1"]["occurred_at"].isoformat() == "2026-01-05T05:00:00+00:00"
    [q] = _quarantine(engine)
    assert "'2026' is a year without a month and day" in q["reason"]
