"""Request bodies for POST /v1/score taken from a warehouse (what a client would send)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from journey_ml.db.models import Account, Contact, Event, Outcome

_FIRM = ("name", "industry", "employees", "annual_revenue", "country", "created_at", "attributes")


def _iso(v):
    return v.isoformat() if isinstance(v, datetime) else v


def _clean(d: dict[str, Any], keys) -> dict[str, Any]:
    return {k: _iso(d[k]) for k in keys if d.get(k) is not None}


def score_body(engine: sa.Engine, task: str, account_id: str, as_of: datetime) -> dict[str, Any]:
    """The account's firmographics, contacts, events before ``as_of`` and outcome rows, as JSON.

    Contacts carry no e-mail (the warehouse keeps only its hash) but keep ``opted_out``.
    """
    A, C, E, O = Account.__table__, Contact.__table__, Event.__table__, Outcome.__table__  # noqa: E741
    with engine.connect() as conn:
        acc = conn.execute(sa.select(A).where(A.c.account_id == account_id)).mappings().first()
        contacts = [dict(r) for r in conn.execute(sa.select(C).where(C.c.account_id == account_id)
                                                  .order_by(C.c.contact_id)).mappings()]
        ids = [c["contact_id"] for c in contacts]
        # attributed as the feature SQL does: the event's account, else its contact's
        mine = sa.or_(E.c.account_id == account_id, sa.and_(E.c.account_id.is_(None), E.c.contact_id.in_(ids)))
        events = [dict(r) for r in conn.execute(sa.select(E).where(mine, E.c.occurred_at < as_of)
                                                .order_by(E.c.occurred_at, E.c.source, E.c.event_id)).mappings()]
        outcomes = [dict(r) for r in conn.execute(sa.select(O).where(
            sa.or_(O.c.account_id == account_id, sa.and_(O.c.account_id.is_(None), O.c.contact_id.in_(ids)))))
            .mappings()]
    body: dict[str, Any] = {"task": task, "entity_id": account_id, "as_of": as_of.isoformat()}
    if acc is not None:
        body["account"] = _clean(dict(acc), _FIRM)
    body["contacts"] = [{**_clean(c, ("contact_id", "account_id", "role", "created_at", "attributes")),
                         "opted_out": bool(c["opted_out"])} for c in contacts]
    body["events"] = [_clean(e, ("event_id", "source", "occurred_at", "contact_id", "account_id", "event_type",
                                 "channel", "value", "properties")) for e in events]
    body["outcomes"] = [_clean(o, ("outcome_id", "source", "outcome", "occurred_at", "contact_id", "account_id",
                                   "value", "properties")) for o in outcomes]
    return body
