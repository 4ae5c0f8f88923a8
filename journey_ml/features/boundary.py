"""The one boundary rule between what is known at T and what is predicted from it.

With T = ``as_of`` and H = the task's ``horizon_days``:

* **history** (features, populations): events with ``occurred_at < T``;
* **label window**: outcomes with ``T <= occurred_at < T + H``.

The two are half-open intervals that meet at T, so every event is in exactly one of them:
an event dated exactly T (date-only data puts a whole day there) is the label's, never the
features', and never lost. An event at T + H belongs to the next window (the history of
T + H, the label of a later date). A label window has matured once the data reaches its
end: ``T + H <= data_end``.

This is the only place the rule is written; the SQL (`journey_ml.features._queries`),
labels, snapshots and monitoring import it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa


def label_window(as_of: datetime, horizon_days: int) -> tuple[datetime, datetime]:
    """(start, end) of the label window of T: outcomes at ``start <= t < end`` count."""
    return as_of, as_of + timedelta(days=horizon_days)


def label_matured(as_of: datetime, horizon_days: int, data_end: datetime) -> bool:
    """Whether the label window of ``as_of`` has closed by ``data_end`` (the newest event)."""
    return label_window(as_of, horizon_days)[1] <= data_end


def in_history(column: Any, as_of: Any) -> sa.ColumnElement:
    """SQL: ``column`` is before T (known at T)."""
    return column < as_of


def in_label_window(column: Any, start: Any, end: Any) -> sa.ColumnElement:
    """SQL: ``column`` is in the label window ``[start, end)``."""
    return sa.and_(column >= start, column < end)
