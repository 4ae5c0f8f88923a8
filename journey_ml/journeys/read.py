"""The warehouse edge of journey mapping: events strictly before T, as a plain frame."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from journey_ml.db.models import Contact, Event

_COLUMNS = ["entity_id", "occurred_at", "event_type", "channel", "stage", "value", "contact_id", "role"]


def read_events(engine: Engine, as_of: datetime, *, entity: str = "account", lookback_days: int | None = None,
                event_types: list[str] | None = None) -> pd.DataFrame:
    """Events with ``occurred_at < as_of`` (and within ``lookback_days`` before it), one row
    each: entity_id (the account, through the contact when the event names only a
    contact; or the contact), occurred_at (UTC), event_type, channel, stage, value,
    contact_id, role (the contact's buying role). Events with no entity are left out."""
    if entity not in ("account", "contact"):
        raise ValueError(f"unknown entity {entity!r}; expected account or contact")
    e, c = Event.__table__, Contact.__table__
    ent = sa.func.coalesce(e.c.account_id, c.c.account_id) if entity == "account" else e.c.contact_id
    q = (sa.select(ent.label("entity_id"), e.c.occurred_at, e.c.event_type, e.c.channel, e.c.stage, e.c.value,
                   e.c.contact_id, c.c.role)
         .select_from(e.outerjoin(c, c.c.contact_id == e.c.contact_id))
         .where(e.c.occurred_at < as_of, ent.is_not(None)))
    if lookback_days is not None:
        q = q.where(e.c.occurred_at >= as_of - timedelta(days=lookback_days))
    if event_types:
        q = q.where(e.c.event_type.in_(event_types))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    for col in ("channel", "stage", "role"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


__all__ = ["read_events"]
