"""Ingestion flow: every configured source (or the named ones), in order, into the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from journey_ml.jobs import IngestJobResult, IngestParams, JobFailed, run_ingest
from journey_ml.runtime import Runtime


# retrying is safe: applied batches are in the ledger and are skipped
@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30])
def ingest(rt: Runtime, params: IngestParams) -> IngestJobResult:
    result = run_ingest(rt, params)
    for r in result.runs:
        get_run_logger().info("%s: read %s, loaded %s, duplicate %s, rejected %s", r.source, r.rows_read,
                              r.rows_loaded, r.rows_duplicate, r.rows_rejected)
    if not result.ok:
        raise JobFailed(result.error or "ingestion failed", result)
    return result


@flow(name="journey-ingest")
def ingest_flow(sources: list[str] | None = None, incremental: bool = False,
                config_path: str | None = None, received_at: datetime | None = None) -> IngestJobResult:
    """Ingest the configured sources (all, in config order, by default)."""
    rt = Runtime.load(config_path=config_path)
    return ingest(rt, IngestParams(received_at=received_at or datetime.now(UTC), sources=tuple(sources or ()),
                                   incremental=incremental))


if __name__ == "__main__":
    ingest_flow()
