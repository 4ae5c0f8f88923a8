"""Listing quarantined rows (for `journey-ml quarantine list`): filters and typed rows."""

from __future__ import annotations

from datetime import datetime

from journey_ml.ingest.quarantine import QuarantinedRow, list_quarantine
from tests.conftest import make_config
from tests.ingest.test_pipeline import HEADER, WEB, good_row, run, write


def test_list_quarantine_filters_by_source_reason_and_limit(engine, tmp_path):
    write(tmp_path / "web" / "a.csv", HEADER + good_row(1) + "e2,not-a-date,c2,a1,page_view,,,\n"
          + "e3,2026-01-05T10:00:00Z,c3,a1,page_view,abc,,\n" + "e4,also-bad,c4,a1,page_view,,,\n")
    cfg = make_config(WEB, {**WEB, "name": "web2"})
    run(engine, cfg, tmp_path)
    run(engine, cfg, tmp_path, source="web2")

    everything = list_quarantine(engine)
    assert everything.total == 6 and len(everything.rows) == 6
    row = everything.rows[0]
    assert isinstance(row, QuarantinedRow) and isinstance(row.created_at, datetime)
    assert row.file.endswith("a.csv") and row.line_number == row.row_number + 1

    web = list_quarantine(engine, source="web")
    assert web.total == 3 and {r.source for r in web.rows} == {"web"}
    # the reason filter is a case-insensitive substring
    dates = list_quarantine(engine, source="web", reason="VALID TIMESTAMP")
    assert [(r.row_number, r.contact_id) for r in dates.rows] == [(2, "c2"), (4, "c4")]
    assert "not a valid timestamp" in dates.rows[0].reason
    limited = list_quarantine(engine, reason="timestamp", limit=1)
    assert limited.total == 4 and len(limited.rows) == 1
    assert list_quarantine(engine, source="nope").total == 0
    assert list_quarantine(engine, reason="100%_").total == 0  # LIKE wildcards are literal
