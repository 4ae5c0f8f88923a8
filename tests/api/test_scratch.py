"""Scratch warehouses: the real schema, rows gone after every request, bounded waiting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from journey_ml.api.scratch import ScratchPool
from journey_ml.db.migrate import current_revision, head_revision

T = datetime(2026, 1, 1, tzinfo=UTC)
ROWS = {"events": [{"source": "web", "event_id": "e1", "occurred_at": T, "contact_id": None, "account_id": "A1",
                    "event_type": "page_view", "channel": "web", "stage": "awareness", "value": None,
                    "properties": {"k": 1}}],
        "accounts": [{"account_id": "A1", "employees": 10, "source": "api", "updated_at": T}]}


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_rows_are_loaded_then_removed_even_after_an_error():
    pool = ScratchPool(1)
    with pool.borrow(ROWS) as eng:
        assert current_revision(eng) == head_revision()  # migrated with the real migrations
        assert (_count(eng, "events"), _count(eng, "accounts")) == (1, 1)
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT properties FROM events")).scalar_one() == '{"k": 1}'
    with pytest.raises(RuntimeError, match="boom"), pool.borrow(ROWS) as eng:
        raise RuntimeError("boom")
    with pool.borrow({}) as again:
        assert again is eng and (_count(again, "events"), _count(again, "accounts")) == (0, 0)
    pool.close()


def test_databases_are_separate_and_waiting_is_bounded():
    pool = ScratchPool(2, timeout=0.01)
    with pool.borrow(ROWS) as a, pool.borrow({}) as b:
        assert a is not b and _count(b, "events") == 0 and _count(a, "events") == 1
        with pytest.raises(TimeoutError, match=r"no scratch warehouse free .*\(2 in the pool\)"), pool.borrow({}):
            pass
    with pytest.raises(ValueError, match="size must be >= 1"):
        ScratchPool(0)
