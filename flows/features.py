"""Feature flow: point-in-time features (and segment memberships) as of T, stored as snapshots."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from journey_ml.jobs import FeaturesJobResult, FeaturesParams, run_features
from journey_ml.runtime import Runtime


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10)
def features(rt: Runtime, params: FeaturesParams) -> FeaturesJobResult:
    return run_features(rt, params)


@flow(name="journey-features")
def features_flow(tasks: list[str] | None = None, as_of: datetime | None = None,
                  config_path: str | None = None) -> FeaturesJobResult:
    """Build and store feature snapshots for each task as of ``as_of`` (default: data end)."""
    rt = Runtime.load(config_path=config_path)
    return features(rt, FeaturesParams(tasks=tuple(tasks or ()), as_of=as_of))


if __name__ == "__main__":
    features_flow()
