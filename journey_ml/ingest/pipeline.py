"""Ingesting a configured source: preflight, stream, validate, apply, account for every row.

``ingest_source`` is what the CLI and the Prefect flow call. Guarantees:

* preflight: every file's header is checked before anything is loaded, so a missing
  column or an empty file fails the run with nothing written;
* every row read is loaded, a duplicate, rejected (quarantined with a reason) or
  suppressed (an erased subject): ``read == loaded + duplicate + rejected + suppressed``;
* a batch is split by key hash into ``ingest.loaders`` partitions (PostgreSQL; SQLite: one),
  each applied on its own connection in one transaction together with its ledger row,
  exactly once: no two loaders touch the same key, a failure leaves no partial partition,
  and re-running skips the partitions already applied (splitting a half-applied batch as
  the run that started it did);
* a run holds its ``ingest_runs`` row while it works; a killed run's row is marked
  ``abandoned`` by the next run (see :mod:`journey_ml.ingest.runs`).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from journey_ml.config import JourneyConfig, SourceConfig
from journey_ml.db.models import IngestBatch, IngestRun, Tombstone
from journey_ml.ingest.load import (
    CopyPayload,
    apply_batch,
    batch_applied,
    encode_copy_payload,
    split_batch,
)
from journey_ml.ingest.pii import Tombstones
from journey_ml.ingest.readers import (
    RawBatch,
    SourceFileError,
    detect_format,
    file_digest,
    list_files,
    read_batches,
    read_columns,
)
from journey_ml.ingest.runs import AbandonedRun, RunLease, holder_name, sweep_abandoned, utc_now
from journey_ml.ingest.validate import TABLES, PreparedBatch, ValidationContext, prepare_batch
from journey_ml.schemas import CONTRACT_VERSION, CONTRACTS, Kind


class IngestError(RuntimeError):
    """A source could not be ingested; the message says which file and what is wrong.

    ``result`` is the failed run (recorded in ``ingest_runs``); `ingest_all` adds the runs
    of the sources it completed before, in ``completed``.
    """

    def __init__(self, message: str, result: IngestResult | None = None):
        super().__init__(message)
        self.result = result
        self.completed: list[IngestResult] = []


@dataclass
class IngestResult:
    """What one ingest run did. Counts always add up (see ``balanced``)."""

    run_id: str
    source: str
    kind: str
    status: str = "running"
    files: int = 0
    files_skipped: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    rows_suppressed: int = 0
    batches_applied: int = 0
    batches_skipped: int = 0
    unknown_event_types: dict[str, int] = field(default_factory=dict)
    watermark: datetime | None = None
    seconds: float = 0.0
    error: str | None = None
    # earlier runs found dead when this one started (marked "abandoned" in ingest_runs)
    abandoned: list[AbandonedRun] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """True when every row read is accounted for."""
        return self.rows_read == (self.rows_loaded + self.rows_duplicate
                                  + self.rows_rejected + self.rows_suppressed)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["watermark"] = self.watermark.isoformat() if self.watermark else None
        d["abandoned"] = [{**asdict(a), "started_at": a.started_at.isoformat()} for a in self.abandoned]
        d["balanced"] = self.balanced
        return d


@dataclass(frozen=True)
class Progress:
    """Reported after every batch."""

    source: str
    file: str
    bytes_done: int
    bytes_total: int
    rows_read: int


def ingest_source(
    engine: Engine,
    config: JourneyConfig,
    source: str | SourceConfig,
    *,
    data_dir: Path,
    salt: str,
    received_at: datetime,
    batch_rows: int = 100_000,
    incremental: bool = False,
    progress: Callable[[Progress], None] | None = None,
    loaders: int | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> IngestResult:
    """Ingest every file of one configured source into the warehouse.

    ``received_at`` (UTC-aware) is the ingestion time: the reference for rejecting future
    timestamps and the ledger's clock. ``clock`` is the wall clock, used only to tell live
    runs from dead ones (heartbeats). ``loaders`` overrides ``ingest.loaders`` (PostgreSQL
    only; SQLite always loads on one connection). Raises IngestError (after recording the failed
    run) when a file cannot be read or the database fails; batches applied before the
    failure stay applied and are skipped by the next run.
    """
    src = config.source(source) if isinstance(source, str) else source
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware (UTC)")
    started = time.perf_counter()
    result = IngestResult(run_id=str(uuid.uuid4()), source=src.name, kind=str(src.kind))
    lease = RunLease(engine, result.run_id, clock)
    lease.acquire()  # before the row exists, so no later run can see it unheld
    try:
        _record_run_start(engine, result, received_at, clock())
        lease.start_heartbeat()
        result = _run(engine, config, src, result, lease, data_dir=data_dir, salt=salt,
                      received_at=received_at, batch_rows=batch_rows, incremental=incremental,
                      progress=progress, loaders=loaders or config.ingest.loaders, clock=clock,
                      started=started)
    finally:
        lease.release()
    return result


def _run(engine: Engine, config: JourneyConfig, src: SourceConfig, result: IngestResult,
         lease: RunLease, *, data_dir: Path, salt: str, received_at: datetime, batch_rows: int,
         incremental: bool, progress: Callable[[Progress], None] | None, loaders: int,
         clock: Callable[[], datetime], started: float) -> IngestResult:
    try:
        result.abandoned = sweep_abandoned(
            engine, own_run_id=result.run_id, now=clock(), finished_at=received_at,
            stale_after=timedelta(minutes=config.ingest.stale_run_minutes))
        files = _preflight(src, _resolve(src, data_dir))
        if incremental:
            files, skipped = _recent_files(engine, src, files, config.ingest.overlap_hours)
            result.files_skipped = skipped
        result.files = len(files)
        ctx = ValidationContext(
            source=src,
            taxonomy=config.taxonomy,
            salt=salt,
            received_at=received_at,
            max_future_skew=timedelta(minutes=config.ingest.max_future_skew_minutes),
            unknown_event_types=config.ingest.unknown_event_types,
            pii_hash=frozenset(config.pii.hash),
            pii_drop=frozenset(config.pii.drop),
            tombstones=_tombstones(engine, salt),
        )
        applied = _applied_keys(engine, src.name)
        unknown: Counter = Counter()
        total_bytes = sum(p.stat().st_size for p, _ in files)
        done_bytes = 0
        # SQLite has one writer; on PostgreSQL each loader is a connection of its own, and
        # partition p of every batch goes to loader p % loaders, so no two touch one key
        loaders = max(1, loaders) if engine.dialect.name == "postgresql" else 1
        # PostgreSQL + immutable facts: encode for COPY in the prefetch thread too
        precode = engine.dialect.name == "postgresql" and src.kind in (Kind.events, Kind.outcomes)
        work = _work(files, src, ctx, batch_rows, applied, loaders, result.run_id if precode else None)
        # look keys up before COPY only once the source has rows (or a batch collided)
        state = {"check_existing": _source_has_rows(engine, src)}
        lock = threading.Lock()

        def load(part: _Part) -> None:
            nonlocal done_bytes
            applied_now = _apply(engine, result, src, part, received_at, unknown, state, lock)
            item = part.item
            with lock:
                item.applied_any |= applied_now
                item.pending -= 1
                if item.pending:
                    return
                if item.applied_any:
                    result.batches_applied += 1
                else:
                    result.batches_skipped += 1
                _item_done(item)

        def _item_done(item: _Item) -> None:  # under the lock
            nonlocal done_bytes
            if item.last_of_file:
                done_bytes += item.path.stat().st_size
            if progress:
                progress(Progress(src.name, item.path.name, done_bytes, total_bytes, result.rows_read))

        def dispatch(item: _Item, submit: Callable[[_Part], None]) -> None:
            if item.skipped_rows:  # partitions applied by an earlier run
                with lock:
                    _count_duplicates(result, item.skipped_rows)
            if not item.parts:
                with lock:
                    result.batches_skipped += 1
                    _item_done(item)
            for part in item.parts:
                submit(part)

        items = _prefetch(work, depth=2)
        if loaders == 1:
            for item in items:
                dispatch(item, load)
        else:
            _load_in_parallel(items, loaders, dispatch, load)
        result.unknown_event_types = dict(unknown.most_common())
        result.status = "succeeded"
    except (SourceFileError, IngestError) as e:
        result.status, result.error, cause = "failed", str(e), e
    except Exception as e:  # the database or the disk failed: record it, then report
        result.status, result.error, cause = "failed", f"{type(e).__name__}: {e}", e
    result.seconds = time.perf_counter() - started
    lease.stop_heartbeat()  # before the end is written; the lock is held until after it
    _record_run_end(engine, result, received_at)
    if result.status == "failed":
        raise IngestError(f"source {src.name!r}: {result.error}", result) from cause
    return result


def ingest_all(engine: Engine, config: JourneyConfig, *, data_dir: Path, salt: str,
               received_at: datetime, batch_rows: int = 100_000, incremental: bool = False,
               sources: list[str] | None = None,
               progress: Callable[[Progress], None] | None = None,
               loaders: int | None = None) -> list[IngestResult]:
    """Ingest the configured sources in config order (entities first, as configured); the
    first source that fails stops the run with IngestError (``completed`` holds the runs
    before it). Unknown source names fail before anything is loaded."""
    names = sources or [s.name for s in config.sources]
    for n in names:
        config.source(n)
    results: list[IngestResult] = []
    for name in names:
        try:
            results.append(ingest_source(engine, config, name, data_dir=data_dir, salt=salt,
                                         received_at=received_at, batch_rows=batch_rows,
                                         incremental=incremental, progress=progress,
                                         loaders=loaders))
        except IngestError as e:
            e.completed = results
            raise
    return results


# --- internals -------------------------------------------------------------------------


@dataclass
class _Item:
    """One batch: its partitions still to apply, and the rows of those applied before."""

    path: Path
    batch_no: int
    key: str
    rows_read: int
    last_of_file: bool
    partitions: int  # how the batch is split (fixed by the run that first applied part of it)
    parts: list[_Part] = field(default_factory=list)  # empty: applied whole by an earlier run
    skipped_rows: int = 0  # rows of the partitions an earlier run applied
    pending: int = 0  # parts not yet applied in this run
    applied_any: bool = False


@dataclass
class _Part:
    """One partition of a batch, applied in one transaction on one loader."""

    item: _Item
    partition_no: int
    prepared: PreparedBatch
    payload: CopyPayload | None = None


@dataclass
class _Applied:
    """What the ledger says of one batch: its partition count and its applied partitions."""

    partitions: int
    rows_read: dict[int, int] = field(default_factory=dict)  # partition -> rows it accounted for

    @property
    def complete(self) -> bool:
        return len(self.rows_read) >= self.partitions


def _load_in_parallel(items: Iterator[_Item], loaders: int,
                      dispatch: Callable[[_Item, Callable[[_Part], None]], None],
                      load: Callable[[_Part], None]) -> None:
    """Apply every item's parts on ``loaders`` threads: part p on thread p % loaders.

    Each thread takes its connection from the engine's pool and keeps to its own queue, so
    one key only ever meets one connection. The first failure stops the dispatch; the other
    threads finish the part in hand, drop the rest, and the failure is raised here.
    """
    queues: list[queue.Queue] = [queue.Queue(maxsize=2) for _ in range(loaders)]
    failed = threading.Event()
    errors: list[BaseException] = []

    def worker(q: queue.Queue) -> None:
        while (part := q.get()) is not None:
            if failed.is_set():
                continue  # drain, so the dispatcher never blocks on a full queue
            try:
                load(part)
            except BaseException as e:
                errors.append(e)
                failed.set()

    threads = [threading.Thread(target=worker, args=(q,), name=f"journey-ingest-load-{i}", daemon=True)
               for i, q in enumerate(queues)]
    for t in threads:
        t.start()
    try:
        for item in items:
            if failed.is_set():
                break
            dispatch(item, lambda part: queues[part.partition_no % loaders].put(part))
    finally:
        for q in queues:
            q.put(None)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def _resolve(src: SourceConfig, data_dir: Path) -> Path:
    p = Path(src.path)
    return p if p.is_absolute() else data_dir / p


def _preflight(src: SourceConfig, path: Path) -> list[tuple[Path, str]]:
    """Check every file before loading any: format known, not empty, required columns present."""
    contract = CONTRACTS[src.kind]
    files = list_files(path, src.format)
    problems = []
    out = []
    for f in files:
        try:
            fmt = detect_format(f, src.format)
            names = read_columns(f, fmt)
        except SourceFileError as e:
            problems.append(str(e))
            continue
        if fmt != "jsonl":  # JSON lines may omit keys per row; those rows are rejected
            missing = [
                f"{spec.name} (column {src.column_for(spec.name)!r})"
                for spec in contract.fields
                if spec.required and spec.name not in src.defaults
                and src.column_for(spec.name) not in names
            ]
            if missing:
                problems.append(f"{f}: missing required column(s) {', '.join(missing)}; "
                                f"columns present: {', '.join(names)}")
                continue
        out.append((f, fmt))
    if problems:
        raise SourceFileError("; ".join(problems))
    return out


def _work(files: list[tuple[Path, str]], src: SourceConfig, ctx: ValidationContext,
          batch_rows: int, applied: dict[str, _Applied], loaders: int,
          precode_run_id: str | None) -> Iterator[_Item]:
    fingerprint = _fingerprint(src, batch_rows)
    for path, fmt in files:
        digest = file_digest(path)
        batches = read_batches(path, fmt, batch_rows, src.null_values)
        current = next(batches, None)
        batch_no = 0
        while current is not None:
            nxt = next(batches, None)
            key = hashlib.blake2b(f"{fingerprint}:{digest}:{batch_no}".encode(), digest_size=16).hexdigest()
            yield _batch_item(path, batch_no, key, current, nxt is None, src, ctx, applied.get(key),
                              loaders, precode_run_id)
            current, batch_no = nxt, batch_no + 1


def _batch_item(path: Path, batch_no: int, key: str, raw: RawBatch, last_of_file: bool,
                src: SourceConfig, ctx: ValidationContext, done: _Applied | None, loaders: int,
                precode_run_id: str | None) -> _Item:
    """Validate and split one batch, keeping only the partitions not applied before."""
    if done is not None and done.complete:
        return _Item(path, batch_no, key, raw.rows_read, last_of_file, done.partitions,
                     skipped_rows=raw.rows_read)
    partitions = done.partitions if done is not None else loaders
    item = _Item(path, batch_no, key, raw.rows_read, last_of_file, partitions,
                 skipped_rows=sum(done.rows_read.values()) if done is not None else 0)
    for no, prepared in enumerate(split_batch(prepare_batch(raw, ctx), src.kind, partitions)):
        if done is not None and no in done.rows_read:
            continue
        payload = None
        if precode_run_id and len(prepared.rows):
            payload = encode_copy_payload(prepared.rows, precode_run_id)
        item.parts.append(_Part(item, no, prepared, payload))
    item.pending = len(item.parts)
    return item


def _fingerprint(src: SourceConfig, batch_rows: int) -> str:
    """What makes two readings of the same file the same batches."""
    return json.dumps([CONTRACT_VERSION, src.model_dump(mode="json"), batch_rows], sort_keys=True)


def _prefetch(items: Iterator[_Item], depth: int = 2) -> Iterator[_Item]:
    """Run ``items`` in a background thread, ``depth`` ahead: validation overlaps loading."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    _END = object()

    def produce() -> None:
        try:
            for it in items:
                while not stop.is_set():
                    try:
                        q.put(it, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    t = threading.Thread(target=produce, name="journey-ingest-prefetch", daemon=True)
    t.start()
    try:
        while True:
            it = q.get()
            if it is _END:
                return
            if isinstance(it, BaseException):
                raise it
            yield it
    finally:
        stop.set()
        t.join(timeout=5)


def _count_duplicates(result: IngestResult, rows_read: int) -> None:
    """Rows of partitions applied before (by an earlier or a concurrent run): duplicates."""
    result.rows_read += rows_read
    result.rows_duplicate += rows_read


def _source_has_rows(engine: Engine, src: SourceConfig) -> bool:
    if src.kind not in (Kind.events, Kind.outcomes):
        return True
    table = TABLES[src.kind]
    with engine.connect() as conn:
        return conn.execute(select(table.c.source).where(table.c.source == src.name).limit(1)).first() is not None


def _apply(engine: Engine, result: IngestResult, src: SourceConfig, part: _Part,
           received_at: datetime, unknown: Counter, state: dict, lock: threading.Lock) -> bool:
    """Apply one partition in its own transaction; False if another run applied it first."""
    prepared, item = part.prepared, part.item
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                outcome = apply_batch(conn, src.kind, prepared, run_id=result.run_id, batch_key=item.key,
                                      file=str(item.path), batch_no=item.batch_no, source=src.name,
                                      applied_at=received_at, payload=part.payload,
                                      check_existing=state["check_existing"],
                                      partition_no=part.partition_no, partitions=item.partitions)
            if outcome.collided:
                state["check_existing"] = True
            break
        except OperationalError as e:
            # two writers inserting overlapping keys (a concurrent run, or a batch resumed
            # with another partition count) can deadlock; PostgreSQL aborts one transaction
            # whole, so retrying the partition is safe (the ledger keeps it exactly once)
            if not isinstance(getattr(e, "orig", None), psycopg.errors.DeadlockDetected) or attempt == 2:
                raise
            state["check_existing"] = True
        except IntegrityError:
            with engine.connect() as conn:
                if batch_applied(conn, item.key, part.partition_no) is None:
                    raise
            # another run applied this very partition in the meantime: exactly once still holds
            with lock:
                _count_duplicates(result, prepared.rows_read)
            return False
    with lock:
        _count_applied(result, src, prepared, outcome, unknown)
    return True


def _count_applied(result: IngestResult, src: SourceConfig, prepared: PreparedBatch, outcome,
                   unknown: Counter) -> None:
    result.rows_read += prepared.rows_read
    result.rows_loaded += outcome.inserted
    result.rows_duplicate += prepared.duplicates + outcome.unchanged
    result.rows_rejected += prepared.rejected
    result.rows_suppressed += prepared.suppressed
    unknown.update(prepared.unknown_event_types)
    if src.kind in (Kind.events, Kind.outcomes) and len(prepared.rows) and outcome.inserted:
        latest = prepared.rows["occurred_at"].max().to_pydatetime()
        if result.watermark is None or latest > result.watermark:
            result.watermark = latest


def _tombstones(engine: Engine, salt: str) -> Tombstones:
    with engine.connect() as conn:
        return Tombstones.from_rows(conn.execute(select(Tombstone.subject_hash, Tombstone.hash_form)), salt)


def _applied_keys(engine: Engine, source: str) -> dict[str, _Applied]:
    b = IngestBatch
    out: dict[str, _Applied] = {}
    with engine.connect() as conn:
        for key, no, partitions, rows_read in conn.execute(
                select(b.batch_key, b.partition_no, b.partitions, b.rows_read).where(b.source == source)):
            out.setdefault(key, _Applied(partitions)).rows_read[no] = rows_read
    return out


def _recent_files(engine: Engine, src: SourceConfig, files: list[tuple[Path, str]],
                  overlap_hours: int) -> tuple[list[tuple[Path, str]], int]:
    """Files changed since the last successful run, minus an overlap window for late data."""
    with engine.connect() as conn:
        last = conn.execute(
            select(IngestRun.started_at)
            .where(IngestRun.source == src.name, IngestRun.status == "succeeded")
            .order_by(IngestRun.started_at.desc()).limit(1)
        ).scalar_one_or_none()
    if last is None:
        return files, 0
    cutoff = (last - timedelta(hours=overlap_hours)).timestamp()
    keep = [(p, f) for p, f in files if p.stat().st_mtime >= cutoff]
    return keep, len(files) - len(keep)


def _record_run_start(engine: Engine, result: IngestResult, at: datetime, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(IngestRun.__table__.insert().values(
            run_id=result.run_id, source=result.source, kind=result.kind, status="running",
            started_at=at, holder=holder_name(), heartbeat_at=now))


def _record_run_end(engine: Engine, result: IngestResult, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(IngestRun).where(IngestRun.run_id == result.run_id).values(
            status=result.status, finished_at=at + timedelta(seconds=result.seconds),
            files=result.files, rows_read=result.rows_read, rows_loaded=result.rows_loaded,
            rows_duplicate=result.rows_duplicate, rows_rejected=result.rows_rejected,
            rows_suppressed=result.rows_suppressed,
            unknown_event_types=result.unknown_event_types or None,
            watermark=result.watermark, error=result.error))
