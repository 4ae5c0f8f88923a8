"""The ingest job: every configured source (or the named ones) into the warehouse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from journey_ml.ingest import IngestError, IngestResult, Progress, ingest_all
from journey_ml.jobs._common import require_schema, resolve_sources, utc
from journey_ml.runtime import Runtime


@dataclass(frozen=True)
class IngestParams:
    """``sources``: names (default: all, in config order); ``data_dir``: where relative
    source paths resolve (default: the config's); ``received_at``: the ingestion time."""

    received_at: datetime
    sources: tuple[str, ...] = ()
    incremental: bool = False
    data_dir: Path | None = None


@dataclass(frozen=True)
class IngestJobResult:
    """One run per source attempted; ``error`` is the failure that stopped the job."""

    runs: tuple[IngestResult, ...]
    error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.error is None

    def total(self, count: str) -> int:
        """A row count (``rows_read``, ``rows_loaded``, ``rows_rejected`` ...) over every source."""
        return sum(getattr(r, count) for r in self.runs)

    @property
    def balanced(self) -> bool:
        return all(r.balanced for r in self.runs)

    def unknown_event_types(self) -> dict[str, int]:
        """Unknown event names over every source, most frequent first."""
        total: dict[str, int] = {}
        for r in self.runs:
            for k, v in (r.unknown_event_types or {}).items():
                total[k] = total.get(k, 0) + v
        return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def run_ingest(rt: Runtime, params: IngestParams,
               progress: Callable[[Progress], None] | None = None) -> IngestJobResult:
    """Ingest the sources in order. A source that fails stops the job: its run (recorded in
    ``ingest_runs``) and the runs before it are returned with the error; batches applied
    before the failure stay applied and are skipped by the next run. Raises ConfigError for
    an unknown source and SchemaNotCurrent when the warehouse needs `journey-ml db upgrade`."""
    require_schema(rt.engine)
    names = resolve_sources(rt.config, params.sources)
    try:
        runs = ingest_all(rt.engine, rt.config, data_dir=params.data_dir or rt.data_dir, salt=rt.salt,
                          received_at=utc(params.received_at, "received_at"),
                          batch_rows=rt.settings.ingest_batch_rows, incremental=params.incremental,
                          sources=list(names), progress=progress)
    except IngestError as e:
        done = [*e.completed, *([e.result] if e.result is not None else [])]
        return IngestJobResult(tuple(done), error=str(e))
    return IngestJobResult(tuple(runs))
