"""Reading the quarantine: the rows ingestion rejected, with their reasons (for `quarantine list`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from journey_ml.db.models import QuarantineRow


@dataclass(frozen=True)
class QuarantinedRow:
    """One rejected row: where it was (file, ordinal, line), why, and its PII-scrubbed text."""

    id: int
    run_id: str
    source: str
    file: str
    row_number: int  # ordinal among the file's rows
    line_number: int | None  # line where the row starts (None: Parquet, or quarantined before 0005)
    reason: str
    raw: str
    contact_id: str | None
    account_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class QuarantineListing:
    """The first ``limit`` matching rows and how many match in all."""

    rows: list[QuarantinedRow]
    total: int


def list_quarantine(engine: Engine, *, source: str | None = None, reason: str | None = None,
                    limit: int = 50) -> QuarantineListing:
    """Quarantined rows, newest ingestion first (in file order within one), optionally of one
    ``source`` and whose reason contains
    ``reason`` (case-insensitive, taken literally: ``%`` and ``_`` are not wildcards).

    Raises ValueError for a limit below 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    q = QuarantineRow
    conds = []
    if source is not None:
        conds.append(q.source == source)
    if reason:
        conds.append(q.reason.icontains(reason, autoescape=True))
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(q).where(*conds)).scalar_one()
        rows = conn.execute(select(q.__table__).where(*conds).order_by(q.created_at.desc(), q.id).limit(limit)).mappings()
        return QuarantineListing(rows=[QuarantinedRow(**r) for r in rows], total=total)
