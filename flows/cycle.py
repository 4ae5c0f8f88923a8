"""The daily cycle as one flow: ingest (incremental) -> features -> score -> monitor.

The job (`journey_ml.jobs.run_cycle`) fixes the order; this flow runs each step as a
Prefect task with retries (exponential backoff: every step touches the warehouse, MLflow
or the file store) holding one concurrency slot per source or task it writes, then
publishes monitoring's events and summary artifacts from the typed result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows._locks import exclusive, lock_name
from flows.monitor import _retrain_mode, publish
from journey_ml.jobs import CycleJobResult, CycleParams, run_cycle
from journey_ml.runtime import Runtime


# retrying a step is safe: every step of the cycle is idempotent (see journey_ml.jobs.cycle)
@task(cache_policy=NO_CACHE, task_run_name="{name}", retries=2,
      retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_jitter_factor=0.5)
def cycle_step(name: str, keys: list[str], fn: Callable[[], Any]) -> Any:
    with exclusive(*(lock_name(name, k) for k in keys)):
        return fn()


def _as_task(name: str, keys: Sequence[str], fn: Callable[[], Any]) -> Any:
    return cycle_step(name, list(keys), fn)


@flow(name="journey-cycle")
def cycle_flow(tasks: list[str] | None = None, sources: list[str] | None = None,
               as_of: datetime | None = None, config_path: str | None = None) -> CycleJobResult:
    """The daily cycle: new events in, features, scores and monitoring as of the newest event."""
    rt = Runtime.load(config_path=config_path)
    result = run_cycle(rt, CycleParams(now=datetime.now(UTC), tasks=tuple(tasks or ()),
                                       sources=tuple(sources or ()), as_of=as_of, retrain=_retrain_mode(rt)),
                       step=_as_task)
    for run in result.monitoring.runs:
        publish(run)
    log = get_run_logger()
    log.info("cycle as of %s: %d rows loaded, %d scores, %d task(s) monitored%s; %s",
             f"{result.as_of:%Y-%m-%d %H:%M}", result.ingest.total("rows_loaded"), result.scoring.rows_written,
             len(result.monitoring.runs),
             f" ({', '.join(result.already_monitored)} already monitored)" if result.already_monitored else "",
             ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    return result


if __name__ == "__main__":
    cycle_flow()
