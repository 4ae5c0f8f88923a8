"""Erasure ("right to be forgotten"): remove a person or company from every table we own.

Which tables hold a subject is declared once in ``SUBJECT_COLUMNS``; later modules (feature
snapshots, scores) add their tables there, and a test checks that every warehouse table
with a ``contact_id``/``account_id`` column is covered. One transaction deletes the rows,
writes a tombstone (a keyed hash, so a re-ingest of an old export cannot bring the subject
back) and an erasure record that holds no personal data.

Ids are compared exactly (``0035e00000ABCDE`` is not ``0035e00000AbCdE``; see
:mod:`journey_ml.ingest.pii` for the one place that says how values are compared).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, Engine, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from journey_ml.db.models import Account, Base, Contact, ErasureLog, QuarantineRow, Tombstone
from journey_ml.ingest.pii import TOMBSTONE_HASHES, Match, subject_hash

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
    # stored ids equal to the requested one but for letter case (ids are compared exactly,
    # so these were NOT erased; a request that deleted nothing may have a typo in the case)
    case_variants: list[str] = field(default_factory=list)

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
        result.case_variants = _case_variants(conn, kind, subject_id)
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
            # rejected rows may carry the id only inside the raw text; found case-sensitively
            # (SQLite's LIKE ignores letter case: it would take another person's rows)
            find = func.strpos if conn.dialect.name == "postgresql" else func.instr
            cond = or_(cond, find(table.c.raw, f'"{subject_id}"') > 0)
        n = conn.execute(delete(table).where(cond)).rowcount
        counts[table_name] = counts.get(table_name, 0) + n
    h = subject_hash(kind, subject_id, salt)
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(Tombstone)
    conn.execute(ins.values(subject_hash=h, subject_kind=kind, erased_at=at, hash_form=Match.exact.value)
                 .on_conflict_do_nothing(index_elements=["subject_hash"]))


def _case_variants(conn: Connection, kind: str, subject_id: str) -> list[str]:
    """Stored ids of ``kind`` that equal ``subject_id`` ignoring letter case (but are not it)."""
    column = Contact.contact_id if kind == "contact" else Account.account_id
    return sorted(conn.execute(select(column).where(
        func.lower(column) == subject_id.lower(), column != subject_id)).scalars())


def erased_subjects(conn: Connection, subjects: Iterable[tuple[str, str]], salt: str) -> set[tuple[str, str]]:
    """The (kind, id) pairs among ``subjects`` that a tombstone of either form covers."""
    keys: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (form, hash) -> subjects
    for kind, sid in set(subjects):
        for form, hash_of in TOMBSTONE_HASHES.items():
            keys.setdefault((form.value, hash_of(kind, sid, salt)), set()).add((kind, sid))
    if not keys:
        return set()
    hits = conn.execute(select(Tombstone.hash_form, Tombstone.subject_hash).where(
        Tombstone.subject_hash.in_({h for _, h in keys}))).all()
    return {s for form, h in hits for s in keys.get((form, h), set())}


def is_erased(engine: Engine, kind: SubjectKind, subject_id: str, *, salt: str) -> bool:
    """Whether a tombstone (exact, or a legacy case-folded one) covers this subject."""
    with engine.connect() as conn:
        return bool(erased_subjects(conn, [(kind, subject_id)], salt))


__all__ = ["forget", "is_erased", "erased_subjects", "register_subject_table",
           "ErasureResult", "ErasureError", "SUBJECT_COLUMNS"]
