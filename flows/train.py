"""Training flow: the training job, with every segment of a task run as its own Prefect task."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.runners import fan_out
from journey_ml.jobs import JobFailed, SegmentData, TrainingJobResult, TrainingParams, run_training
from journey_ml.runtime import Runtime
from journey_ml.training import SegmentOutcome


@task(cache_policy=NO_CACHE, task_run_name="train {segment}")
def train_segment(train: Callable[[SegmentData], SegmentOutcome], segment: SegmentData) -> SegmentOutcome:
    out = train(segment)
    get_run_logger().info("%s/%s: %s (%s)", out.task, out.segment, out.status, out.reason)
    return out


@flow(name="journey-train")
def train_flow(tasks: list[str] | None = None, segments: list[str] | None = None,
               as_of: datetime | None = None, config_path: str | None = None) -> TrainingJobResult:
    """Train the global model and every segment of each task; gate and promote."""
    rt = Runtime.load(config_path=config_path)
    with fan_out(rt.config, train_segment) as each:  # execution.runner: thread pool or Dask
        result = run_training(rt, TrainingParams(tasks=tuple(tasks or ()), segments=tuple(segments or ()),
                                                 as_of=as_of), each=each)
    if not result.ok:
        raise JobFailed("; ".join(result.problems()), result)
    return result


if __name__ == "__main__":
    train_flow()
