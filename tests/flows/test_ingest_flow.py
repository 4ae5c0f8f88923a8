"""The ingestion flow end to end: Prefect test server, real PostgreSQL warehouse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from tests.conftest import count

pytestmark = pytest.mark.slow


def test_ingest_flow_on_postgresql(prefect_harness, pg_engine, pg_url, tmp_path, monkeypatch):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "a.csv").write_text(
        "id,ts,who,event\n"
        "1,2026-01-01T00:00:00Z,c1,page_view\n"
        "2,2026-01-02T00:00:00Z,c1,demo_request\n"
        "3,yesterday,c2,page_view\n")
    (tmp_path / "contacts.csv").write_text("ContactId,Email,OptedOut\nc1,a@b.c,false\nc2,d@e.f,true\n")
    cfg = {
        "data_dir": str(tmp_path),
        "taxonomy": {"page_view": {"channel": "web", "stage": "awareness"},
                     "demo_request": {"channel": "web", "stage": "decision"}},
        "sources": [
            {"name": "contacts", "kind": "contacts", "path": "contacts.csv",
             "columns": {"contact_id": "ContactId", "email": "Email", "opted_out": "OptedOut"}},
            {"name": "web", "kind": "events", "path": "web",
             "columns": {"event_id": "id", "occurred_at": "ts", "contact_id": "who", "event_type": "event"}},
        ],
    }
    path = tmp_path / "journey.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("JOURNEY_DATABASE_URL", pg_url)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JOURNEY_PII_SALT", "test-salt")  # required on PostgreSQL

    from flows.ingest import ingest_flow

    result = ingest_flow(config_path=str(path), received_at=datetime(2026, 7, 1, tzinfo=UTC))
    assert [r.source for r in result.runs] == ["contacts", "web"] and result.ok
    web = result.runs[1]
    assert (web.rows_read, web.rows_loaded, web.rows_rejected) == (3, 2, 1)
    assert result.balanced
    assert count(pg_engine, "events") == 2
    assert count(pg_engine, "contacts", "WHERE opted_out") == 1
    # a second run (a retry, a schedule firing twice) changes nothing
    again = ingest_flow(config_path=str(path), received_at=datetime(2026, 7, 2, tzinfo=UTC))
    assert again.total("rows_loaded") == 0
    assert count(pg_engine, "events") == 2
