"""Applying a validated batch to the warehouse: atomically and exactly once, per partition.

A batch is split by key hash into partitions (``split_batch``), one per loader connection,
so no two loaders ever write the same key. One transaction per partition: its rows go
straight in by ``COPY`` (PostgreSQL, immutable facts) or through a temporary staging table
and one set-based ``INSERT ... SELECT ... ON CONFLICT``; partition 0 also carries the
batch's rejects (to quarantine); the partition's ledger row is written last. A failure
anywhere rolls that partition back; the ledger's primary key (batch, partition) makes a
second application of the same partition impossible.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import JSON, Column, Connection, MetaData, Table, Text, select, text

from journey_ml.db.models import IngestBatch, QuarantineRow, UTCDateTime
from journey_ml.ingest.validate import TABLES, PreparedBatch
from journey_ml.schemas import CONTRACTS, Kind

# columns that change on every load and must not count as a change of the entity
_VOLATILE = {"updated_at", "ingest_run_id", "source"}
_SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class BatchOutcome:
    inserted: int  # new or changed rows
    unchanged: int  # already in the warehouse (duplicates)
    collided: bool = False  # the fast path met existing keys (look them up from now on)


def batch_applied(conn: Connection, batch_key: str, partition_no: int = 0) -> str | None:
    """The run that applied this partition of a batch, or None if it was never applied."""
    return conn.execute(
        select(IngestBatch.run_id).where(IngestBatch.batch_key == batch_key,
                                         IngestBatch.partition_no == partition_no)
    ).scalar_one_or_none()


def split_batch(prepared: PreparedBatch, kind: Kind, partitions: int) -> list[PreparedBatch]:
    """``prepared`` split by a stable hash of each row's key into ``partitions`` parts.

    The hash is pandas' fixed-key SipHash of the row's id (the last key column: the source is
    one per run), the same on every machine and in every run, so a batch re-read after a
    crash splits exactly as before (its missing partitions hold exactly the rows not yet
    loaded). Partition 0 also carries what belongs
    to the batch as a whole: the rejects, in-batch duplicates, suppressed rows and unknown
    event types. Each part's ``rows_read`` is what it accounts for, so the parts add up to
    the batch and each balances on its own.
    """
    if partitions == 1:
        return [prepared]
    rows = prepared.rows
    ids = rows[CONTRACTS[kind].key[-1]].to_numpy(dtype=object)
    part = (pd.util.hash_array(ids, categorize=False) % np.uint64(partitions)).astype(np.int64)
    out = []
    for p in range(partitions):
        sub = rows[part == p].reset_index(drop=True)
        if p == 0:
            out.append(PreparedBatch(
                rows=sub, rejects=prepared.rejects, duplicates=prepared.duplicates,
                suppressed=prepared.suppressed, unknown_event_types=prepared.unknown_event_types,
                rows_read=prepared.rows_read - (len(rows) - len(sub))))
        else:
            out.append(PreparedBatch(rows=sub, rejects=prepared.rejects.iloc[:0], rows_read=len(sub)))
    return out


def apply_batch(conn: Connection, kind: Kind, prepared: PreparedBatch, *, run_id: str,
                batch_key: str, file: str, batch_no: int, source: str,
                applied_at: datetime, payload: CopyPayload | None = None,
                check_existing: bool = True, partition_no: int = 0,
                partitions: int = 1) -> BatchOutcome:
    """Apply one prepared batch (or one partition of it, from ``split_batch``) inside the
    caller's transaction; returns insert counts.

    Raises sqlalchemy.exc.IntegrityError if the partition was already applied concurrently
    (the caller's transaction must then roll back).
    """
    inserted = 0
    collided = False
    if len(prepared.rows) and conn.dialect.name == "postgresql" and kind in (Kind.events, Kind.outcomes):
        inserted, collided = _copy_new_rows(conn, kind, prepared.rows, source, run_id, payload,
                                            check_existing)
    elif len(prepared.rows):
        inserted = _merge_via_stage(conn, kind, prepared.rows, run_id)
    if len(prepared.rejects):
        recs = [
            {"run_id": run_id, "source": source, "file": file, "created_at": applied_at,
             "row_number": int(r.row_number), "line_number": _opt_int(r.line_number),
             "reason": str(r.reason), "raw": str(r.raw),
             "contact_id": _opt(r.contact_id), "account_id": _opt(r.account_id)}
            for r in prepared.rejects.itertuples(index=False)
        ]
        conn.execute(QuarantineRow.__table__.insert(), recs)
    conn.execute(IngestBatch.__table__.insert().values(
        batch_key=batch_key, partition_no=partition_no, partitions=partitions,
        run_id=run_id, source=source, file=file, batch_no=batch_no,
        rows_read=prepared.rows_read, rows_loaded=inserted,
        rows_duplicate=prepared.duplicates + len(prepared.rows) - inserted,
        rows_rejected=prepared.rejected, rows_suppressed=prepared.suppressed,
        applied_at=applied_at,
    ))
    return BatchOutcome(inserted=inserted, unchanged=len(prepared.rows) - inserted, collided=collided)


@dataclass(frozen=True)
class CopyPayload:
    """A batch pre-encoded for COPY (done in the prefetch thread, off the loading path)."""

    rows: bytes
    run_id: str


def encode_copy_payload(rows: pd.DataFrame, run_id: str) -> CopyPayload:
    """CSV bytes of the batch's rows in table order, for ``apply_batch``."""
    return CopyPayload(rows=bytes(_csv_bytes(rows.assign(ingest_run_id=run_id))), run_id=run_id)


def _copy_new_rows(conn: Connection, kind: Kind, rows: pd.DataFrame, source: str, run_id: str,
                   payload: CopyPayload | None, check_existing: bool) -> tuple[int, bool]:
    """PostgreSQL, immutable facts: skip keys already stored, COPY the rest straight in.

    With ``check_existing`` the batch's keys are looked up first (one indexed ``= ANY``
    query); without it (the source had no rows when the run started and nothing has
    collided since) the lookup is skipped. Either way, if a key turns out to exist (a
    concurrent writer, an overlapping file), the COPY fails on the primary key and the
    batch falls back to the staging merge inside a savepoint of the same transaction.
    Returns (rows inserted, whether a collision happened).
    """
    table = TABLES[kind]
    id_col = CONTRACTS[kind].key[1]
    raw = conn.connection.driver_connection
    existing: set[str] = set()
    if check_existing:
        with raw.cursor() as cur:
            cur.execute(f"SELECT {id_col} FROM {table.name} WHERE source = %s AND {id_col} = ANY(%s)",
                        (source, rows[id_col].tolist()))
            existing = {r[0] for r in cur.fetchall()}
    fresh = rows[~rows[id_col].isin(existing)] if existing else rows
    if fresh.empty:
        return 0, False
    fresh = fresh.assign(ingest_run_id=run_id)
    names = list(fresh.columns)
    data = payload.rows if payload and not existing and payload.run_id == run_id else _csv_bytes(fresh)
    savepoint = conn.begin_nested()
    try:
        with raw.cursor() as cur, cur.copy(
            f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT csv)"
        ) as cp:
            cp.write(data)
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()
        return _merge_via_stage(conn, kind, fresh.drop(columns=["ingest_run_id"]), run_id), True
    savepoint.commit()
    return len(fresh), False


def _merge_via_stage(conn: Connection, kind: Kind, rows: pd.DataFrame, run_id: str) -> int:
    """Stage ``rows`` in a temporary table, then one INSERT ... SELECT ... ON CONFLICT."""
    stage = _stage_table(TABLES[kind])
    # SQLite's driver auto-commits DDL, so a rolled-back batch can leave it behind
    stage.drop(conn, checkfirst=True)
    stage.create(conn)
    _fill_stage(conn, stage, rows)
    inserted = conn.execute(text(_merge_sql(conn, kind)), {"run_id": run_id}).rowcount
    # on failure the rollback removes it (PostgreSQL) or the next batch does (SQLite)
    stage.drop(conn)
    return inserted


def _csv_bytes(frame: pd.DataFrame) -> memoryview:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            # Arrow writes zone-aware times ~20x slower than naive ones; the UTC wall time
            # followed by "Z" is the very text it would write
            utc = table.column(i).cast(pa.timestamp(f.type.unit)).cast(pa.string())
            table = table.set_column(i, f.name, pc.binary_join_element_wise(utc, "Z", ""))
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    return buf.getbuffer()


def _opt(v: object) -> str | None:
    """Text, or None for every kind of missing (None, NaN, pd.NA: never the text '<NA>')."""
    return None if v is None or pd.isna(v) else str(v)


def _opt_int(v: object) -> int | None:
    return None if v is None or pd.isna(v) else int(v)


def _stage_table(table: Table) -> Table:
    """A constraint-free temporary copy of ``table`` (JSON kept as text until the merge)."""
    cols = []
    for c in table.columns:
        if c.name == "ingest_run_id":
            continue
        typ = c.type
        if isinstance(typ, JSON):
            typ = Text()
        cols.append(Column(c.name, typ))
    return Table(f"stage_{table.name}", MetaData(), *cols, prefixes=["TEMPORARY"])


def _fill_stage(conn: Connection, stage: Table, rows: pd.DataFrame) -> None:
    names = [c.name for c in stage.columns]
    frame = rows[names]
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(
            f"COPY {stage.name} ({', '.join(names)}) FROM STDIN (FORMAT csv)"
        ) as cp:
            cp.write(_csv_bytes(frame))
        return
    # SQLite: format values the way SQLAlchemy stores them, then one executemany
    cols = {}
    for name in names:
        s = frame[name]
        if isinstance(stage.c[name].type, UTCDateTime) or pd.api.types.is_datetime64_any_dtype(s):
            s = pd.to_datetime(s, utc=True)
            cols[name] = s.dt.strftime(_SQLITE_TS).astype(object).where(s.notna(), None)
        elif pd.api.types.is_bool_dtype(s):
            cols[name] = s.astype(int).astype(object)
        else:
            cols[name] = s.astype(object).where(s.notna(), None)
    records = list(zip(*(cols[n] for n in names), strict=True))
    placeholders = ", ".join("?" * len(names))
    conn.connection.driver_connection.executemany(
        f"INSERT INTO {stage.name} ({', '.join(names)}) VALUES ({placeholders})", records
    )


def _merge_sql(conn: Connection, kind: Kind) -> str:
    table = TABLES[kind]
    names = [c.name for c in table.columns if c.name != "ingest_run_id"]
    key = [k for k in CONTRACTS[kind].key]
    cols = ", ".join(names)
    json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
    select_cols = ", ".join(
        f"CAST({n} AS JSONB)" if n in json_cols and conn.dialect.name == "postgresql" else n
        for n in names
    )
    head = (f"INSERT INTO {table.name} ({cols}, ingest_run_id) "
            f"SELECT {select_cols}, :run_id FROM stage_{table.name} WHERE true "
            f"ON CONFLICT ({', '.join(key)}) ")
    if kind in (Kind.events, Kind.outcomes):
        # touchpoints are immutable facts: the first copy wins
        return head + "DO NOTHING"
    updates = [n for n in names if n not in key]
    compared = [n for n in updates if n not in _VOLATILE]
    sets = ", ".join(f"{n} = excluded.{n}" for n in updates)
    sets += ", ingest_run_id = excluded.ingest_run_id"
    changed = " OR ".join(f"{table.name}.{n} IS DISTINCT FROM excluded.{n}" for n in compared)
    return head + f"DO UPDATE SET {sets} WHERE {changed}"
