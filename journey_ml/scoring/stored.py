"""Reads of stored scores (the ``scores`` table): the top of a run, an entity's newest score."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from journey_ml.db.models import Score


def top_scores(engine: Engine, task: str, as_of: datetime, n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` highest stored scores of ``task`` as of ``as_of``, highest first."""
    s = Score.__table__
    q = sa.select(s).where(s.c.task == task, s.c.as_of == as_of).order_by(s.c.probability.desc()).limit(n)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def latest_score(engine: Engine, entity_id: str, task: str | None = None) -> dict[str, Any] | None:
    """The newest stored score of an entity (of ``task``, or of any task); None if none."""
    s = Score.__table__
    q = sa.select(s).where(s.c.entity_id == entity_id)
    if task is not None:
        q = q.where(s.c.task == task)
    with engine.connect() as conn:
        row = conn.execute(q.order_by(s.c.as_of.desc(), s.c.scored_at.desc()).limit(1)).mappings().first()
    return None if row is None else dict(row)
