"""The ingest run ledger: a run holds its ``ingest_runs`` row; rows whose holder is gone are abandoned.

A killed ingest (SIGKILL, OOM, a lost machine) never writes its end, so its row used to say
"running" forever. Now every run holds its row while it works:

* PostgreSQL: a session-level advisory lock keyed by the run id, on a connection of its own.
  The server drops it when the process dies, so "nobody holds the lock" is exact.
* SQLite (one machine, no server to ask): the row names its holder (``host:pid``) and a
  thread refreshes ``heartbeat_at``. A row is stale when its process is gone on this host,
  or its heartbeat is older than ``ingest.stale_run_minutes`` (a process on another host,
  a hung process, a reused pid).

Every run starts by marking the stale rows ``abandoned``, with the reason in ``error`` and
the counts of the batches they did apply (so each row still adds up: read = loaded +
duplicate + rejected + suppressed); the run's result lists them. The batches they applied
stay applied, and the ledger makes the new run skip them.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError

from journey_ml.db.models import IngestBatch, IngestRun

HEARTBEAT_SECONDS = 30.0
# class id of the two-key pg_advisory_lock(int, int) taken by runs (the migration lock uses
# the one-key form, a separate key space)
_LOCK_CLASS = 0x6A6D6C69  # "jmli"


def utc_now() -> datetime:
    """The wall clock, UTC: only for liveness (heartbeats), never for business logic."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class AbandonedRun:
    """A run found dead by a later run, and why it was judged so."""

    run_id: str
    source: str
    started_at: datetime
    reason: str


def holder_name() -> str:
    """Who holds a run: ``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _lock_key(run_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(run_id.encode(), digest_size=4).digest(), "big", signed=True)


class RunLease:
    """What proves a run is alive, from before its row is written until after its end is."""

    def __init__(self, engine: Engine, run_id: str, clock: Callable[[], datetime],
                 interval: float = HEARTBEAT_SECONDS) -> None:
        self.engine, self.run_id, self.clock, self.interval = engine, run_id, clock, interval
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        if self.engine.dialect.name == "postgresql":
            self._conn = self.engine.connect()
            self._conn.execute(text("SELECT pg_advisory_lock(:c, :k)"),
                               {"c": _LOCK_CLASS, "k": _lock_key(self.run_id)})
            self._conn.commit()  # a session lock: held across transactions, never idle in one
        else:
            self._thread = threading.Thread(target=self._beat, name="journey-ingest-heartbeat", daemon=True)

    def start_heartbeat(self) -> None:
        """Begin refreshing ``heartbeat_at`` (SQLite; the row must exist)."""
        if self._thread is not None:
            self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10)

    def release(self) -> None:
        """Stop the heartbeat and drop the lock (idempotent)."""
        self.stop_heartbeat()
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"),
                                   {"c": _LOCK_CLASS, "k": _lock_key(self.run_id)})
                self._conn.commit()
            except DBAPIError:
                pass  # the session is gone, and its lock with it
            finally:
                self._conn.close()
                self._conn = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(IngestRun).where(IngestRun.run_id == self.run_id)
                                 .values(heartbeat_at=self.clock()))
            except DBAPIError:
                continue  # a long batch holds SQLite's write lock: beat again next time


def sweep_abandoned(engine: Engine, *, own_run_id: str, now: datetime, stale_after: timedelta,
                    finished_at: datetime) -> list[AbandonedRun]:
    """Mark every other "running" row whose holder is gone as abandoned; return them."""
    with engine.connect() as conn:
        rows = conn.execute(select(IngestRun.run_id, IngestRun.source, IngestRun.started_at,
                                   IngestRun.holder, IngestRun.heartbeat_at)
                            .where(IngestRun.status == "running", IngestRun.run_id != own_run_id)
                            .order_by(IngestRun.started_at)).all()
    out = []
    for r in rows:
        if engine.dialect.name == "postgresql":
            found = _sweep_pg(engine, r, own_run_id, finished_at)
        else:
            reason = _stale_reason(r.holder, r.heartbeat_at, now, stale_after)
            found = reason and _mark(engine, r.run_id, _abandoned(reason, own_run_id), finished_at)
        if found:
            out.append(AbandonedRun(r.run_id, r.source, r.started_at, found))
    return out


def _sweep_pg(engine: Engine, r, own_run_id: str, finished_at: datetime) -> str | None:
    if r.holder is None:
        return _mark(engine, r.run_id, _abandoned(_NO_HOLDER, own_run_id), finished_at)
    with engine.connect() as conn:
        args = {"c": _LOCK_CLASS, "k": _lock_key(r.run_id)}
        if not conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"), args).scalar_one():
            return None  # its holder is alive
        try:
            reason = (f"its holder {r.holder} no longer holds the run's lock: the process ended "
                      "without finishing (killed or crashed)")
            return _mark(engine, r.run_id, _abandoned(reason, own_run_id), finished_at)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), args)
            conn.commit()


_NO_HOLDER = "no holder recorded (started by a version that did not record one) and not finished"


def _stale_reason(holder: str | None, heartbeat: datetime | None, now: datetime,
                  stale_after: timedelta) -> str | None:
    """Why a SQLite run's holder is gone, or None while it may be alive."""
    if holder is None:
        return _NO_HOLDER
    host, _, pid = holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return f"its process {pid} on this host is no longer running (killed or crashed)"
    if heartbeat is None or now - heartbeat > stale_after:
        since = heartbeat.isoformat(timespec="seconds") if heartbeat else "its start"
        return (f"no heartbeat since {since} (more than {stale_after} before {now.isoformat(timespec='seconds')}) "
                f"from its holder {holder}")
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _abandoned(reason: str, by: str) -> str:
    return f"abandoned: {reason}; marked by run {by}, which resumes from the batch ledger"


def _mark(engine: Engine, run_id: str, reason: str, finished_at: datetime) -> str | None:
    """Mark one run abandoned with the counts of the batches it applied; None if it ended meanwhile."""
    b = IngestBatch
    with engine.begin() as conn:
        totals = conn.execute(select(
            func.count(func.distinct(b.file)), func.coalesce(func.sum(b.rows_read), 0),
            func.coalesce(func.sum(b.rows_loaded), 0), func.coalesce(func.sum(b.rows_duplicate), 0),
            func.coalesce(func.sum(b.rows_rejected), 0), func.coalesce(func.sum(b.rows_suppressed), 0),
        ).where(b.run_id == run_id)).one()
        done = conn.execute(update(IngestRun).where(IngestRun.run_id == run_id, IngestRun.status == "running")
                            .values(status="abandoned", error=reason, finished_at=finished_at,
                                    files=totals[0], rows_read=totals[1], rows_loaded=totals[2],
                                    rows_duplicate=totals[3], rows_rejected=totals[4],
                                    rows_suppressed=totals[5])).rowcount
    return reason if done == 1 else None
