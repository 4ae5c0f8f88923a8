"""Per-request scratch warehouses: in-memory SQLite databases with the real schema.

`POST /v1/score` loads the posted entity's rows into one of these and runs the batch
scorer (`compute_scores`) on it, so the API computes features with exactly the SQL the
batch flow uses. Migrating a database costs ~100 ms, so a pool migrates one template once
and copies it (SQLite's backup API, well under a millisecond) into each pooled database;
a request borrows one, loads its rows, scores, and the rows are deleted on return.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.pool import StaticPool

from journey_ml.db.migrate import upgrade
from journey_ml.db.models import Account, Contact, Event, Outcome

#: the tables a request writes (children first is irrelevant: no foreign keys)
DATA_TABLES = (Event.__table__, Contact.__table__, Account.__table__, Outcome.__table__)


def _engine_on(conn: sqlite3.Connection) -> Engine:
    """An engine whose only connection is ``conn`` (so every checkout sees the same data)."""
    return sa.create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool)


def _template() -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    upgrade(_engine_on(raw))
    return raw


class ScratchPool:
    """A fixed number of migrated in-memory warehouses, borrowed one per request.

    ``borrow(rows)`` yields an engine holding exactly ``rows`` (table name -> list of row
    dicts in the table's columns); the rows are removed when the block exits, whatever
    happens. Waits (up to ``timeout`` seconds) when every database is in use.
    """

    def __init__(self, size: int = 4, timeout: float = 30.0):
        if size < 1:
            raise ValueError(f"scratch pool size must be >= 1, got {size}")
        self.size = size
        self.timeout = timeout
        self._free: queue.LifoQueue[Engine] = queue.LifoQueue()
        self._lock = threading.Lock()
        template = _template()
        try:
            for _ in range(size):
                conn = sqlite3.connect(":memory:", check_same_thread=False)
                template.backup(conn)
                self._free.put(_engine_on(conn))
        finally:
            template.close()

    @contextmanager
    def borrow(self, rows: dict[str, list[dict[str, Any]]]) -> Iterator[Engine]:
        try:
            engine = self._free.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(f"no scratch warehouse free after {self.timeout:.0f}s "
                               f"({self.size} in the pool)") from None
        try:
            _load(engine, rows)
            yield engine
        finally:
            try:
                _clear(engine)
            except Exception:  # pragma: no cover - a broken database is replaced, not reused
                engine = _replacement()
            self._free.put(engine)

    def close(self) -> None:
        """Dispose every pooled database (those in use are disposed when returned)."""
        while True:
            try:
                self._free.get_nowait().dispose()
            except queue.Empty:
                return


def _replacement() -> Engine:  # pragma: no cover - only after a failed cleanup
    fresh = sqlite3.connect(":memory:", check_same_thread=False)
    template = _template()
    template.backup(fresh)
    template.close()
    return _engine_on(fresh)


def _load(engine: Engine, rows: dict[str, list[dict[str, Any]]]) -> None:
    with engine.begin() as conn:
        for table in DATA_TABLES:
            batch = rows.get(table.name)
            if batch:
                conn.execute(table.insert(), batch)


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in DATA_TABLES:
            conn.execute(table.delete())


__all__ = ["ScratchPool", "DATA_TABLES"]
