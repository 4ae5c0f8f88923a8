"""Warehouse tables (SQLAlchemy 2 typed models).

The same models serve SQLite (embedded default) and PostgreSQL. Schema changes go through
Alembic migrations in ``journey_ml/db/migrations``; nothing here creates tables at runtime.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no timezone type, so values are stored
    naive-UTC and given their UTC tzinfo back on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the warehouse stores UTC-aware times")
        if dialect.name == "sqlite":
            from datetime import UTC

            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            from datetime import UTC

            return value.replace(tzinfo=UTC)
        return value


JSONType = JSON().with_variant(JSONB(), "postgresql")


def Key(length: int = 128) -> String:  # noqa: N802 - reads like a type
    """An identifier column: byte-order collation on PostgreSQL.

    Ids are compared for equality and joined on, never sorted for people; "C" collation
    lets B-tree maintenance use memcmp instead of locale rules (measured ~20% faster
    bulk loads into the events table).
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(Key(), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(256))
    industry: Mapped[str | None] = mapped_column(String(128))
    employees: Mapped[int | None] = mapped_column(Integer)
    annual_revenue: Mapped[float | None] = mapped_column(Float)
    country: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    source: Mapped[str] = mapped_column(String(64))
    ingest_run_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Contact(Base):
    __tablename__ = "contacts"

    contact_id: Mapped[str] = mapped_column(Key(), primary_key=True)
    # no FK to accounts: exports arrive in any order and contacts may precede their account
    account_id: Mapped[str | None] = mapped_column(Key(), index=True)
    email_hash: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(64))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    source: Mapped[str] = mapped_column(String(64))
    ingest_run_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """One touchpoint: the event contract (see ``schemas.EVENT_CONTRACT``)."""

    __tablename__ = "events"

    source: Mapped[str] = mapped_column(Key(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(Key(), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    contact_id: Mapped[str | None] = mapped_column(Key())
    account_id: Mapped[str | None] = mapped_column(Key())
    event_type: Mapped[str] = mapped_column(String(128), nullable=False)
    channel: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str | None] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    ingest_run_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        # time-window queries per entity (features as of T) and global windows (monitoring)
        Index("ix_events_contact_time", "contact_id", "occurred_at"),
        Index("ix_events_account_time", "account_id", "occurred_at"),
        # BRIN on PostgreSQL: tiny and nearly free to maintain on append-mostly time data
        Index("ix_events_occurred_at", "occurred_at", postgresql_using="brin"),
    )


class Outcome(Base):
    __tablename__ = "outcomes"

    source: Mapped[str] = mapped_column(Key(64), primary_key=True)
    outcome_id: Mapped[str] = mapped_column(Key(), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(64), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    contact_id: Mapped[str | None] = mapped_column(Key())
    account_id: Mapped[str | None] = mapped_column(Key())
    value: Mapped[float | None] = mapped_column(Float)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    ingest_run_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        Index("ix_outcomes_contact_time", "contact_id", "occurred_at"),
        Index("ix_outcomes_account_time", "account_id", "occurred_at"),
    )


class IngestRun(Base):
    """One `ingest` of one source: counts that always add up, and the watermark."""

    __tablename__ = "ingest_runs"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed | abandoned
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    files: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_loaded: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_suppressed: Mapped[int] = mapped_column(BigInteger, default=0)
    unknown_event_types: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)  # also why a run was marked abandoned
    # who runs it ("host:pid") and when it last said so: a later run marks the row
    # abandoned when the holder is gone (see journey_ml.ingest.runs)
    holder: Mapped[str | None] = mapped_column(String(300))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_ingest_runs_status", "status"),)


class IngestBatch(Base):
    """Ledger of applied batch partitions, each written in its partition's own transaction
    (exactly once). A batch is split by key hash into ``partitions`` parts (one per loader
    connection); it is applied when every ``partition_no`` in 0..partitions-1 has its row."""

    __tablename__ = "ingest_batches"

    batch_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    partition_no: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    partitions: Mapped[int] = mapped_column(Integer, default=1)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    source: Mapped[str] = mapped_column(String(64))
    file: Mapped[str] = mapped_column(Text)
    batch_no: Mapped[int] = mapped_column(Integer)
    rows_read: Mapped[int] = mapped_column(Integer)
    rows_loaded: Mapped[int] = mapped_column(Integer)
    rows_duplicate: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    rows_suppressed: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QuarantineRow(Base):
    """A rejected row, kept verbatim with the reason (erased people are never kept here)."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    source: Mapped[str] = mapped_column(String(64))
    file: Mapped[str] = mapped_column(Text)
    row_number: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    # ids found in the raw row, so erasure can find it
    contact_id: Mapped[str | None] = mapped_column(Key(), index=True)
    account_id: Mapped[str | None] = mapped_column(Key(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the physical line of the file where the row starts (1 = a CSV's header); row_number is
    # the row's ordinal among the file's rows. NULL for Parquet (no lines) and rows from
    # before migration 0005
    line_number: Mapped[int | None] = mapped_column(BigInteger)


class Tombstone(Base):
    """A keyed hash of an erased subject: blocks a re-ingest from bringing them back."""

    __tablename__ = "tombstones"

    subject_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # how the id was hashed (journey_ml.ingest.pii.Match): "exact", or "casefold" for the
    # tombstones written before ids were compared exactly (migration 0005)
    hash_form: Mapped[str] = mapped_column(String(16), default="exact")


class ErasureLog(Base):
    """Proof that an erasure happened: no personal data, only a keyed hash and counts."""

    __tablename__ = "erasure_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    rows_deleted: Mapped[dict[str, Any]] = mapped_column(JSONType)


class FeatureSnapshot(Base):
    """Features of one entity as of T for one task (reuse, monitoring); label once matured."""

    __tablename__ = "feature_snapshots"

    task: Mapped[str] = mapped_column(Key(64), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    entity_id: Mapped[str] = mapped_column(Key(), primary_key=True)
    feature_set_version: Mapped[str] = mapped_column(String(32))
    segment: Mapped[str | None] = mapped_column(String(64))
    features: Mapped[dict[str, Any]] = mapped_column(JSONType)
    label: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_feature_snapshots_entity", "entity_id"),)


class SegmentMembership(Base):
    """Which segment an entity was in as of T (movement between segments stays visible)."""

    __tablename__ = "segment_memberships"

    segmentation: Mapped[str] = mapped_column(Key(64), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    entity_id: Mapped[str] = mapped_column(Key(), primary_key=True)
    entity_kind: Mapped[str] = mapped_column(String(16))
    segment: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_segment_memberships_entity", "entity_id"),)


class AliasMove(Base):
    """The alias ledger: every move of a registry alias (MLflow keeps no history)."""

    __tablename__ = "alias_ledger"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(256), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))  # promote | rollback | fallback | restore | stage
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferenceSample(Base):
    """Training features kept as a model version's drift reference.

    Kept in the warehouse (not as an MLflow artifact) so erasure can reach it; MLflow only
    gets summary statistics and a pointer.
    """

    __tablename__ = "reference_samples"

    model_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    row_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity_id: Mapped[str] = mapped_column(Key())
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType)
    label: Mapped[int | None] = mapped_column(Integer)
    prediction: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_reference_samples_entity", "entity_id"),)


class Score(Base):
    """One score per (task, entity, as_of): a re-run replaces it, never duplicates it."""

    __tablename__ = "scores"

    task: Mapped[str] = mapped_column(Key(64), primary_key=True)
    entity_id: Mapped[str] = mapped_column(Key(), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    entity_kind: Mapped[str] = mapped_column(String(16))
    probability: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(32))
    segment: Mapped[str | None] = mapped_column(String(64))
    model_name: Mapped[str | None] = mapped_column(String(256))
    model_version: Mapped[int | None] = mapped_column(Integer)
    # segment_model | global_model | rules_model | builtin_rules
    mode: Mapped[str] = mapped_column(String(32))
    mode_reason: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list[Any] | None] = mapped_column(JSONType)
    action: Mapped[str | None] = mapped_column(Text)
    action_holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[str | None] = mapped_column(String(36))
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the entity's journey as of T (issue #13): predicted current stage, and {next step: p}
    # from the task's Markov chain fitted on journeys before T (NULL once the journey ended)
    stage: Mapped[str | None] = mapped_column(String(128))
    next_steps: Mapped[dict[str, float] | None] = mapped_column(JSONType)

    __table_args__ = (Index("ix_scores_entity", "entity_id"),)


class MonitorRun(Base):
    """One monitoring run of a task's segment as of T: typed results as JSON, report paths."""

    __tablename__ = "monitor_runs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_key: Mapped[str] = mapped_column(String(36))  # groups the segments of one monitoring run
    task: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    model_name: Mapped[str | None] = mapped_column(String(256))
    model_version: Mapped[int | None] = mapped_column(Integer)
    model_kind: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # ok | error
    drift_detected: Mapped[bool] = mapped_column(Boolean, default=False)
    matured_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contract: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    drift: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    performance: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    reports: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # performance estimated from calibrated probabilities (CBPE) before labels mature, and once
    # they have: estimated minus realised ROC AUC
    estimated: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    estimation_error: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_monitor_runs_task_segment_as_of", "task", "segment", "as_of"),)


class MonitorDecision(Base):
    """A decision of the monitoring policy, its reasons, and what executing it did."""

    __tablename__ = "monitor_decisions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    monitor_run_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("monitor_runs.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    # ok | alert | retrain | fallback | rollback | restore | error
    kind: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]] = mapped_column(JSONType)
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    executed: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(Text)  # what executing it did (or why not)
    alias_move_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Lift(Base):
    """Outcome rate of a next-best action against its holdout, per scoring date, band, segment."""

    __tablename__ = "lift"

    task: Mapped[str] = mapped_column(Key(64), primary_key=True)
    score_as_of: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    action: Mapped[str] = mapped_column(String(512), primary_key=True)
    band: Mapped[str] = mapped_column(String(32), primary_key=True)
    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    treated_n: Mapped[int] = mapped_column(Integer)
    treated_rate: Mapped[float | None] = mapped_column(Float)
    holdout_n: Mapped[int] = mapped_column(Integer)
    holdout_rate: Mapped[float | None] = mapped_column(Float)
    difference: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # lift | harm | no difference | collecting
    horizon_days: Mapped[int] = mapped_column(Integer)
    measured_as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ = [
    "Base",
    "Account",
    "Contact",
    "Event",
    "Outcome",
    "IngestRun",
    "IngestBatch",
    "QuarantineRow",
    "Tombstone",
    "ErasureLog",
    "FeatureSnapshot",
    "SegmentMembership",
    "AliasMove",
    "ReferenceSample",
    "Score",
    "MonitorRun",
    "MonitorDecision",
    "Lift",
    "UTCDateTime",
    "JSONType",
]
