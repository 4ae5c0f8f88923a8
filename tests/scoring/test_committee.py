"""The buying-committee view on both warehouses: opted-out people never appear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journey_ml.config import load_config
from journey_ml.db.models import Account, Contact, Event, Score
from journey_ml.scoring import committee_view

T = datetime(2026, 6, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 2, tzinfo=UTC)


@pytest.fixture
def committee(engine):
    contacts = [("C1", "economic_buyer", False), ("C2", "champion", False), ("C3", "technical_evaluator", True),
                ("C4", "end_user", False)]
    events = [("C1", 10), ("C1", 40), ("C2", 5), ("C2", 6), ("C2", 7), ("C3", 1), ("C3", 2), ("C3", 3),
              ("C3", 4), ("C4", 200)]
    with engine.begin() as conn:
        conn.execute(Account.__table__.insert(), [{"account_id": "A1", "source": "t", "updated_at": NOW}])
        conn.execute(Contact.__table__.insert(), [
            {"contact_id": c, "account_id": "A1", "role": r, "opted_out": o, "source": "t", "updated_at": NOW}
            for c, r, o in contacts])
        conn.execute(Event.__table__.insert(), [
            {"source": "t", "event_id": f"e{i}", "occurred_at": T - timedelta(days=d), "contact_id": c,
             "account_id": None, "event_type": "page_view"} for i, (c, d) in enumerate(events)]
            + [{"source": "t", "event_id": "late", "occurred_at": T + timedelta(days=1), "contact_id": "C4",
                "account_id": "A1", "event_type": "page_view"}])
        base = {"task": "conversion", "entity_id": "A1", "entity_kind": "account", "band": "medium",
                "segment": "smb", "mode": "segment_model", "action": "x", "action_holdout": False,
                "scored_at": NOW}
        conn.execute(Score.__table__.insert(), [
            {**base, "as_of": T - timedelta(days=30), "probability": 0.1, "reasons": []},
            {**base, "as_of": T, "probability": 0.3, "mode_reason": "m",
             "reasons": [{"feature": "f", "contribution": 0.2, "text": "t (+0.20)"}]},
            {**base, "as_of": T + timedelta(days=1), "probability": 0.9, "reasons": []}])
    return engine


def test_committee_view(committee):
    cfg, _ = load_config(None)
    v = committee_view(committee, cfg, "A1", T)
    assert v.contacts == 3 and v.contacts_engaged_90d == 2
    assert "C3" not in v.events_by_contact_90d  # opted out: nowhere
    assert v.roles_engaged == ["champion", "economic_buyer"]
    assert "technical_evaluator" in v.key_roles_missing and "end_user" in v.key_roles_missing
    assert v.most_engaged["contact_id"] == "C2" and v.most_engaged["events_90d"] == 3
    assert v.role_last_activity["economic_buyer"] == T - timedelta(days=10)
    assert v.role_last_activity["end_user"] == T - timedelta(days=200)  # before the window, not after T
    assert v.role_last_activity["technical_evaluator"] is None
    assert v.latest_score is not None and v.latest_score.probability == 0.3
    assert v.latest_score.reasons[0]["text"] == "t (+0.20)"
    assert "C3" not in str(v.to_dict())
