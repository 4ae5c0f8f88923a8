"""The alias ledger: every move of a registry alias, in the warehouse (MLflow keeps no history).

Rows live in ``alias_ledger`` (:class:`journey_ml.db.models.AliasMove`). Moves are
serialised per model name by :func:`locked`, a warehouse transaction that holds a lock for
that model: on PostgreSQL a transaction-scoped advisory lock keyed by a 64-bit hash of the
name, on SQLite a ``BEGIN IMMEDIATE`` write transaction (SQLite has one writer at a time, so
this serialises every writer of the file, which is what makes it safe). The ledger row of a
move is written in that same transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from journey_ml.db.models import AliasMove
from journey_ml.registry._types import MODEL_PREFIX, AliasMoveInfo

ACTIONS = ("promote", "rollback", "fallback", "restore", "stage", "retire")


def lock_key(model_name: str) -> int:
    """The signed 64-bit advisory-lock key of a model name (stable across processes)."""
    digest = hashlib.sha256(f"journey-ml:alias:{model_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def locked(engine: Engine, model_name: str) -> Iterator[Connection]:
    """A warehouse transaction holding the per-model alias lock; commits on success.

    Blocks until any other holder (thread or process) commits or rolls back. On SQLite the
    wait is bounded by the connection's busy timeout (30 s from ``make_engine``).
    """
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(model_name)})
            yield conn
    elif dialect == "sqlite":
        with engine.connect() as conn:
            # pysqlite would open a deferred transaction lazily; take the write lock up front
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(Exception):  # the original error is the one to see
                    conn.exec_driver_sql("ROLLBACK")
                raise
            else:
                conn.exec_driver_sql("COMMIT")
    else:
        raise ValueError(f"unsupported warehouse backend {dialect!r} for the alias ledger")


_T = AliasMove.__table__


def _info(row) -> AliasMoveInfo:
    m = row._mapping
    return AliasMoveInfo(id=m["id"], model_name=m["model_name"], alias=m["alias"],
                         from_version=m["from_version"], to_version=m["to_version"],
                         action=m["action"], reason=m["reason"], actor=m["actor"],
                         run_id=m["run_id"], at=m["at"].astimezone(UTC))


def record(conn: Connection, *, model_name: str, alias: str, from_version: int | None,
           to_version: int | None, action: str, reason: str, actor: str, at: datetime,
           run_id: str | None = None) -> AliasMoveInfo:
    """Write one ledger row in the caller's transaction and return it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown ledger action {action!r} (expected one of {', '.join(ACTIONS)})")
    if at.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware (UTC)")
    values = {"model_name": model_name, "alias": alias, "from_version": from_version,
              "to_version": to_version, "action": action, "reason": reason, "actor": actor,
              "run_id": run_id, "at": at}
    new_id = conn.execute(sa.insert(_T).values(**values).returning(_T.c.id)).scalar_one()
    return AliasMoveInfo(id=new_id, **values)


def _query(model_name: str | None = None, *, task: str | None = None, segment: str | None = None,
           alias: str | None = None):
    q = sa.select(_T)
    if model_name is not None:
        q = q.where(_T.c.model_name == model_name)
    elif task is not None:
        q = q.where(_T.c.model_name.startswith(f"{MODEL_PREFIX}{task}-", autoescape=True))
    if model_name is None and segment is not None:
        q = q.where(_T.c.model_name.endswith(f"-{segment}", autoescape=True))
    if alias is not None:
        q = q.where(_T.c.alias == alias)
    return q.order_by(_T.c.at.desc(), _T.c.id.desc())


def moves(bind: Engine | Connection, model_name: str | None = None, *, task: str | None = None,
          segment: str | None = None, alias: str | None = None,
          limit: int | None = None) -> list[AliasMoveInfo]:
    """Ledger rows, newest first: of one model, or of a task's / segment's models, or all."""
    q = _query(model_name, task=task, segment=segment, alias=alias)
    if limit is not None:
        q = q.limit(limit)
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return [_info(r) for r in conn.execute(q)]
    return [_info(r) for r in bind.execute(q)]


def last_move_to(bind: Engine | Connection, model_name: str, alias: str, version: int, *,
                 exclude_actions: tuple[str, ...] = ()) -> AliasMoveInfo | None:
    """The newest move of ``alias`` onto ``version`` (optionally ignoring some actions)."""
    q = _query(model_name, alias=alias).where(_T.c.to_version == version)
    if exclude_actions:
        q = q.where(_T.c.action.not_in(exclude_actions))
    q = q.limit(1)
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            row = conn.execute(q).first()
    else:
        row = bind.execute(q).first()
    return _info(row) if row is not None else None


__all__ = ["ACTIONS", "lock_key", "locked", "record", "moves", "last_move_to"]
