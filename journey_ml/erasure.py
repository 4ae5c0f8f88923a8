"""Erasure ("right to be forgotten"): remove a person or company from every table we own.

Which tables hold a subject is declared once in ``SUBJECT_COLUMNS``; later modules (feature
snapshots, scores) add their tables there, and a test checks that every warehouse table
with a ``contact_id``/``account_id`` column is covered. One transaction deletes the rows,
writes a tombstone (a keyed hash, so a re-ingest of an old export cannot bring the subject
back) and an erasure record that holds no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, Engine, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from journey_ml.db.models import Base, Contact, ErasureLog, QuarantineRow, Tombstone
from journey_ml.ingest.pii import subject_hash

SubjectKind = Literal["contact", "account"]

# table name -> column holding the subject's id, per kind of subject
# (entity_id columns hold a contact or an account id, depending on the task's entity)
_ENTITY_TABLES = {"feature_snapshots": "entity_id", "segment_memberships": "entity_id",
                  "reference_samples": "entity_id", "scores": "entity_id"}
SUBJECT_COLUMNS: dict[str, dict[str, str]] = {
    "contact": {"events": "contact_id", "outcomes": "contact_id", "quarantine": "contact_id",
                "contacts": "contact_id", **_ENTITY_TABLES},
    "account": {"events": "account_id", "outcomes": "account_id", "quarantine": "account_id",
                "contacts": "account_id", "accounts": "account_id", **_ENTITY_TABLES},
}


class ErasureError(ValueError):
    """The erasure request is invalid (unknown kind, empty id)."""


@dataclass
class ErasureResult:
    subject_kind: str
    subject_hash: str
    rows_deleted: dict[str, int] = field(default_factory=dict)
    contacts_erased: int = 0  # for an account: the people of its buying committee

    @property
    def total(self) -> int:
        return sum(self.rows_deleted.values())


def register_subject_table(kind: SubjectKind, table: str, column: str) -> None:
    """Declare that ``table.column`` holds subjects of ``kind`` (used by later modules)."""
    SUBJECT_COLUMNS[kind][table] = column


def forget(engine: Engine, kind: SubjectKind, subject_id: str, *, salt: str, actor: str,
           at: datetime) -> ErasureResult:
    """Erase a contact or an account (with its contacts) everywhere, in one transaction.

    Idempotent: erasing an unknown or already-erased subject deletes nothing and still
    leaves a tombstone. Raises ErasureError for a bad request.
    """
    if kind not in SUBJECT_COLUMNS:
        raise ErasureError(f"unknown subject kind {kind!r}: use contact or account")
    subject_id = (subject_id or "").strip()
    if not subject_id:
        raise ErasureError(f"an erasure needs a non-empty {kind} id")
    h = subject_hash(kind, subject_id, salt)
    result = ErasureResult(subject_kind=kind, subject_hash=h)
    with engine.begin() as conn:
        if kind == "account":
            contact_ids = list(conn.execute(
                select(Contact.contact_id).where(Contact.account_id == subject_id)).scalars())
            for cid in contact_ids:
                _erase(conn, "contact", cid, salt, at, result.rows_deleted)
            result.contacts_erased = len(contact_ids)
        _erase(conn, kind, subject_id, salt, at, result.rows_deleted)
        conn.execute(ErasureLog.__table__.insert().values(
            subject_hash=h, subject_kind=kind, erased_at=at, actor=actor,
            rows_deleted=dict(result.rows_deleted)))
    return result


def _erase(conn: Connection, kind: str, subject_id: str, salt: str, at: datetime,
           counts: dict[str, int]) -> None:
    tables = Base.metadata.tables
    for table_name, column in SUBJECT_COLUMNS[kind].items():
        table = tables[table_name]
        cond = table.c[column] == subject_id
        if table_name == QuarantineRow.__tablename__:
            # rejected rows may carry the id only inside the raw text
            cond = or_(cond, table.c.raw.contains(f'"{subject_id}"', autoescape=True))
        n = conn.execute(delete(table).where(cond)).rowcount
        counts[table_name] = counts.get(table_name, 0) + n
    h = subject_hash(kind, subject_id, salt)
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(Tombstone)
    conn.execute(ins.values(subject_hash=h, subject_kind=kind, erased_at=at)
                 .on_conflict_do_nothing(index_elements=["subject_hash"]))


def is_erased(engine: Engine, kind: SubjectKind, subject_id: str, *, salt: str) -> bool:
    """Whether a tombstone exists for this subject."""
    h = subject_hash(kind, subject_id, salt)
    with engine.connect() as conn:
        return conn.execute(select(Tombstone.subject_hash).where(Tombstone.subject_hash == h)).first() is not None


__all__ = ["forget", "is_erased", "register_subject_table", "ErasureResult", "ErasureError",
           "SUBJECT_COLUMNS"]
