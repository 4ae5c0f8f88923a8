"""Ingestion flow: migrate the warehouse, then ingest each configured source in order."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from journey_ml.db import upgrade
from journey_ml.ingest import ingest_source
from journey_ml.runtime import Runtime


@task(cache_policy=NO_CACHE)
def migrate(rt: Runtime) -> str | None:
    return upgrade(rt.engine)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def ingest_one(rt: Runtime, source: str, received_at: datetime, incremental: bool) -> dict:
    # retrying is safe: applied batches are in the ledger and are skipped
    return ingest_source(rt.engine, rt.config, source, data_dir=rt.data_dir, salt=rt.salt,
                         received_at=received_at, batch_rows=rt.settings.ingest_batch_rows,
                         incremental=incremental).to_dict()


@flow(name="journey-ingest", log_prints=True)
def ingest_flow(sources: list[str] | None = None, incremental: bool = False,
                config_path: str | None = None, received_at: datetime | None = None) -> list[dict]:
    """Ingest the configured sources (all, in config order, by default)."""
    rt = Runtime.load(config_path=config_path)
    received_at = received_at or datetime.now(UTC)
    migrate(rt)
    names = sources or [s.name for s in rt.config.sources]
    results = []
    for name in names:
        r = ingest_one(rt, name, received_at, incremental)
        get_run_logger().info(
            "%s: read %s, loaded %s, duplicate %s, rejected %s", name, r["rows_read"],
            r["rows_loaded"], r["rows_duplicate"], r["rows_rejected"])
        results.append(r)
    return results


if __name__ == "__main__":
    ingest_flow()
