"""Erasure: a forgotten person leaves no row anywhere, and stays forgotten."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from journey_ml.db.models import Base
from journey_ml.erasure import SUBJECT_COLUMNS, ErasureError, forget, is_erased
from tests.conftest import SALT, count, make_config, snapshot
from tests.ingest.test_pipeline import CONTACTS, HEADER, WEB, run, write

AT = datetime(2026, 7, 2, tzinfo=UTC)


def _load(engine, tmp_path):
    write(tmp_path / "contacts.csv", "ContactId,AccountId,Email,FullName,BuyingRole,OptedOut\n"
          "victim-7,acme,v@x.com,V Ictim,economic_buyer,false\n"
          "other-1,acme,o@x.com,O Ther,end_user,false\n"
          "third-2,globex,t@x.com,T Hird,end_user,false\n")
    write(tmp_path / "web" / "a.csv", HEADER
          + "e1,2026-01-05T10:00:00Z,victim-7,acme,page_view,,,\n"
          + "e2,2026-01-05T11:00:00Z,victim-7,acme,pricing_page_view,,,\n"
          + "e3,not-a-date,victim-7,acme,page_view,,,\n"
          + "e4,2026-01-05T11:00:00Z,other-1,acme,page_view,,,\n"
          + "e5,2026-01-05T11:00:00Z,third-2,globex,page_view,,,\n"
          + "e6,2026-01-05T11:00:00Z,victim-7,acme,page_view,,,,,extra\n")
    cfg = make_config(CONTACTS, WEB)
    run(engine, cfg, tmp_path, source="crm_contacts")
    run(engine, cfg, tmp_path, source="web")
    return cfg


def _mentions(engine, needle: str) -> list[str]:
    dump = snapshot(engine, tables=tuple(t.name for t in Base.metadata.sorted_tables))
    return [t for t, rows in dump.items() if needle in json.dumps(rows, default=str)]


def test_forget_contact_removes_every_row_and_blocks_reingest(engine, tmp_path):
    cfg = _load(engine, tmp_path)
    assert set(_mentions(engine, "victim-7")) >= {"events", "contacts", "quarantine"}
    res = forget(engine, "contact", "victim-7", salt=SALT, actor="dpo@example.com", at=AT)
    assert res.rows_deleted["events"] == 2 and res.rows_deleted["contacts"] == 1
    assert res.rows_deleted["quarantine"] == 2  # the bad date and the unparsable row
    assert _mentions(engine, "victim-7") == []
    assert is_erased(engine, "contact", "victim-7", salt=SALT)
    # the erasure log holds a keyed hash and counts, nothing personal
    with engine.connect() as conn:
        log = conn.execute(sa.text("SELECT subject_hash, actor, rows_deleted FROM erasure_log")).one()
    assert len(log[0]) == 64 and "victim" not in str(log)

    # re-ingesting the old exports (as a new export) does not bring the person back
    old = (tmp_path / "web" / "a.csv").read_text()
    (tmp_path / "web" / "a.csv").write_text(old + "e7,2026-01-06T11:00:00Z,other-1,acme,page_view,,,\n")
    (tmp_path / "contacts.csv").write_text((tmp_path / "contacts.csv").read_text() + "\n")
    c = run(engine, cfg, tmp_path, source="crm_contacts")
    w = run(engine, cfg, tmp_path, source="web")
    assert c.rows_suppressed == 1 and w.rows_suppressed == 4 and w.balanced
    assert _mentions(engine, "victim-7") == []
    assert w.rows_loaded == 1
    assert count(engine, "events") == 3  # the other people's events are untouched


def test_forget_account_takes_its_buying_committee(engine, tmp_path):
    _load(engine, tmp_path)
    res = forget(engine, "account", "acme", salt=SALT, actor="dpo", at=AT)
    assert res.contacts_erased == 2
    assert _mentions(engine, "victim-7") == [] and _mentions(engine, "other-1") == []
    assert _mentions(engine, "acme") == []
    assert count(engine, "contacts") == 1 and count(engine, "tombstones") == 3


def test_forget_is_idempotent_and_validates(engine):
    forget(engine, "contact", "nobody", salt=SALT, actor="dpo", at=AT)
    again = forget(engine, "contact", "nobody", salt=SALT, actor="dpo", at=AT)
    assert again.total == 0 and count(engine, "tombstones") == 1
    with pytest.raises(ErasureError, match="non-empty contact id"):
        forget(engine, "contact", "  ", salt=SALT, actor="dpo", at=AT)
    with pytest.raises(ErasureError, match="unknown subject kind"):
        forget(engine, "visitor", "x", salt=SALT, actor="dpo", at=AT)  # type: ignore[arg-type]


def test_every_table_holding_people_is_covered_by_erasure():
    for table in Base.metadata.sorted_tables:
        for kind in ("contact", "account"):
            if f"{kind}_id" in table.c:
                assert SUBJECT_COLUMNS[kind].get(table.name) == f"{kind}_id", (table.name, kind)
            if "entity_id" in table.c:
                assert SUBJECT_COLUMNS[kind].get(table.name) == "entity_id", (table.name, kind)


# --- issue #9 case 3: tombstones ignore letter case ---------------------------------------

UPPER, MIXED = "0035e00000ABCDE", "0035e00000AbCdE"  # two people: Salesforce ids are case-sensitive


def _load_two(engine, tmp_path):
    write(tmp_path / "contacts.csv", "ContactId,AccountId,Email,FullName,BuyingRole,OptedOut\n"
          f"{UPPER},acme,u@x.com,U Pper,economic_buyer,false\n"
          f"{MIXED},acme,m@x.com,M Ixed,end_user,false\n")
    write(tmp_path / "web" / "a.csv", HEADER
          + f"e1,2026-01-05T10:00:00Z,{UPPER},acme,page_view,,,\n"
          + f"e2,2026-01-05T10:00:00Z,{MIXED},acme,page_view,,,\n"
          + f"e3,not-a-date,{MIXED},acme,page_view,,,\n")
    cfg = make_config(CONTACTS, WEB)
    run(engine, cfg, tmp_path, source="crm_contacts")
    run(engine, cfg, tmp_path, source="web")
    return cfg


def _reingest(engine, cfg, tmp_path):
    for p in (tmp_path / "contacts.csv", tmp_path / "web" / "a.csv"):
        p.write_text(p.read_text() + "\n")  # a new export with the same rows
    return run(engine, cfg, tmp_path, source="crm_contacts"), run(engine, cfg, tmp_path, source="web")


def test_case03_tombstones_compare_ids_exactly(engine, tmp_path):
    cfg = _load_two(engine, tmp_path)
    res = forget(engine, "contact", UPPER, salt=SALT, actor="dpo", at=AT)
    assert res.rows_deleted["contacts"] == 1 and res.rows_deleted["events"] == 1
    # the other person, whose id differs only in letter case, is untouched ...
    assert _mentions(engine, UPPER) == [] and set(_mentions(engine, MIXED)) >= {"contacts", "events", "quarantine"}
    assert not is_erased(engine, "contact", MIXED, salt=SALT)
    # ... and is not suppressed by the tombstone when their rows arrive again
    c, w = _reingest(engine, cfg, tmp_path)
    assert (c.rows_suppressed, w.rows_suppressed) == (1, 1)
    assert _mentions(engine, UPPER) == []
    assert count(engine, "contacts") == 1 and count(engine, "events") == 1


def test_case03_forgetting_an_id_in_the_wrong_case_says_so_and_blocks_nobody(engine, tmp_path):
    cfg = _load_two(engine, tmp_path)
    res = forget(engine, "contact", UPPER.lower(), salt=SALT, actor="dpo", at=AT)
    assert res.total == 0
    # the result names the ids that differ only in letter case, so the operator can retry
    assert sorted(res.case_variants) == [UPPER, MIXED]
    c, w = _reingest(engine, cfg, tmp_path)
    assert (c.rows_suppressed, w.rows_suppressed) == (0, 0)


def test_case03_quarantine_raw_text_is_matched_exactly_on_both_backends(engine, tmp_path):
    _load_two(engine, tmp_path)
    forget(engine, "contact", UPPER, salt=SALT, actor="dpo", at=AT)
    # the rejected row of the other person (SQLite's LIKE ignores case) is still there
    assert count(engine, "quarantine") == 1
