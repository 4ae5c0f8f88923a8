"""Scoring flow: each task's population scored as of T into the warehouse's scores table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.runners import fan_out
from journey_ml.jobs import ScoringJobResult, ScoringParams, run_scoring
from journey_ml.jobs.scoring import ScorePartition
from journey_ml.runtime import Runtime
from journey_ml.scoring.batch import ScoreBatch


@task(cache_policy=NO_CACHE, task_run_name="score {partition}")
def score_partition(score: Callable[[ScorePartition], ScoreBatch], partition: ScorePartition) -> ScoreBatch:
    return score(partition)


# a re-run replaces the (task, as_of) rows in one transaction: retrying is safe
@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[10, 60])
def score(rt: Runtime, params: ScoringParams) -> ScoringJobResult:
    with fan_out(rt.config, score_partition) as each:  # partitions on the thread pool or Dask
        result = run_scoring(rt, params, each=each)
    for r in result.runs:
        get_run_logger().info("%s: %d scores (%s; bands %s)", r.task, r.rows_written, r.modes, r.bands)
    return result


@flow(name="journey-score")
def score_flow(tasks: list[str] | None = None, as_of: datetime | None = None,
               config_path: str | None = None) -> ScoringJobResult:
    """Score every task (or ``tasks``); an unreachable registry degrades to built-in rules."""
    rt = Runtime.load(config_path=config_path)
    return score(rt, ScoringParams(scored_at=datetime.now(UTC), tasks=tuple(tasks or ()), as_of=as_of))


if __name__ == "__main__":
    score_flow()
