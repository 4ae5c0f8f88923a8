"""Training flows: the weekly retrain of every segment, and the retrain of one segment
that monitoring asked for (``journey.retrain.requested``, see `flows.serve`).

Each segment runs as its own Prefect task holding the segment's concurrency slot
(``journey-train-<task>-<segment>``), so two trainings of one segment never overlap,
whichever deployment started them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows._locks import exclusive, lock_name
from flows.runners import fan_out
from journey_ml.jobs import JobFailed, SegmentData, TrainingJobResult, TrainingParams, run_training
from journey_ml.runtime import Runtime
from journey_ml.training import SegmentOutcome


# a segment-level problem is an outcome, not an exception: what raises is the database,
# MLflow or the network, and retraining a segment is safe (an unchanged frame registers nothing)
@task(cache_policy=NO_CACHE, task_run_name="train {segment}", retries=2,
      retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_jitter_factor=0.5)
def train_segment(train: Callable[[SegmentData], SegmentOutcome], segment: SegmentData) -> SegmentOutcome:
    with exclusive(lock_name("train", segment.data.task, segment.segment)):
        out = train(segment)
    get_run_logger().info("%s/%s: %s (%s)", out.task, out.segment, out.status, out.reason)
    return out


def _run(rt: Runtime, params: TrainingParams) -> TrainingJobResult:
    with fan_out(rt.config, train_segment) as each:  # execution.runner: thread pool or Dask
        result = run_training(rt, params, each=each)
    if not result.ok:
        raise JobFailed("; ".join(result.problems()), result)
    return result


@flow(name="journey-train")
def train_flow(tasks: list[str] | None = None, segments: list[str] | None = None,
               as_of: datetime | None = None, config_path: str | None = None,
               now: datetime | None = None) -> TrainingJobResult:
    """Train the global model and every segment of each task; gate and promote.
    ``now``: the clock of a replay over history (default: the wall clock)."""
    rt = Runtime.load(config_path=config_path)
    return _run(rt, TrainingParams(tasks=tuple(tasks or ()), segments=tuple(segments or ()), as_of=as_of, now=now))


@flow(name="journey-retrain")
def retrain_flow(task: str, segment: str, as_of: datetime | None = None,
                 config_path: str | None = None) -> TrainingJobResult:
    """Retrain one segment of one task (the one a monitoring event named); gated, and a
    new version only when its training data changed."""
    rt = Runtime.load(config_path=config_path)
    return _run(rt, TrainingParams(tasks=(task,), segments=(segment,), as_of=as_of, actor="journey-ml retrain"))


if __name__ == "__main__":
    train_flow()
