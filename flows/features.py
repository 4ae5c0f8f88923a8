"""Feature flow: point-in-time features (and segment memberships) as of T, stored as snapshots."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from journey_ml.runtime import Runtime
from journey_ml.snapshots import build_and_store


@task(cache_policy=NO_CACHE)
def snapshot(rt: Runtime, task_name: str, as_of: datetime, data_end: datetime) -> dict:
    return build_and_store(rt.engine, rt.config, task_name, as_of, data_end=data_end).to_dict()


@flow(name="journey-features")
def features_flow(tasks: list[str] | None = None, as_of: datetime | None = None,
                  config_path: str | None = None) -> list[dict]:
    """Build and store feature snapshots for each task as of ``as_of`` (default: data end)."""
    from journey_ml.training import data_end

    rt = Runtime.load(config_path=config_path)
    end = data_end(rt.engine)
    return [snapshot(rt, t, as_of or end, end) for t in (tasks or list(rt.config.tasks))]


if __name__ == "__main__":
    features_flow()
