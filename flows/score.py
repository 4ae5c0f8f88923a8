"""Scoring flow: each task's population scored as of T into the warehouse's scores table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from journey_ml.runtime import Runtime
from journey_ml.scoring import open_registry, score_task
from journey_ml.training import data_end


@task(cache_policy=NO_CACHE)
def score_one(rt: Runtime, registry, task_name: str, as_of: datetime, run_id: str) -> dict:
    return score_task(rt.engine, registry, rt.config, task_name, as_of, run_id=run_id,
                      scored_at=datetime.now(UTC)).to_dict()


@flow(name="journey-score")
def score_flow(tasks: list[str] | None = None, as_of: datetime | None = None,
               config_path: str | None = None) -> list[dict]:
    """Score every task (or ``tasks``); an unreachable registry degrades to built-in rules."""
    rt = Runtime.load(config_path=config_path)
    as_of = as_of or data_end(rt.engine)
    registry = open_registry(lambda: rt.registry)
    run_id = str(uuid.uuid4())
    results: list[dict] = []
    for name in tasks or list(rt.config.tasks):
        r = score_one(rt, registry, name, as_of, run_id)
        get_run_logger().info("%s: %d scores (%s; bands %s)", name, r["rows_written"], r["modes"], r["bands"])
        results.append(r)
    return results


if __name__ == "__main__":
    score_flow()
