"""Training flow: one prepared frame per task, then every segment as an independent task."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from journey_ml.runtime import Runtime
from journey_ml.training import GLOBAL, TrainingData, data_end, prepare_training, train_segment


@task(cache_policy=NO_CACHE)
def prepare(rt: Runtime, task_name: str, as_of: datetime) -> TrainingData:
    return prepare_training(rt.engine, rt.config, task_name, as_of)


@task(cache_policy=NO_CACHE)
def train_one(rt: Runtime, data: TrainingData, segment: str) -> dict:
    return train_segment(data, segment, rt.config, rt.registry, rt.engine).to_dict()


@flow(name="journey-train", task_runner=ThreadPoolTaskRunner(max_workers=2))
def train_flow(tasks: list[str] | None = None, segments: list[str] | None = None,
               as_of: datetime | None = None, config_path: str | None = None) -> list[dict]:
    """Train every segment (and the pooled global model) of each task; gate and promote."""
    rt = Runtime.load(config_path=config_path)
    as_of = as_of or data_end(rt.engine)
    results: list[dict] = []
    for name in tasks or list(rt.config.tasks):
        data = prepare(rt, name, as_of)
        wanted = segments or [GLOBAL, *data.segments()]
        futures = [train_one.submit(rt, data, s) for s in wanted]
        for f in futures:
            r = f.result()
            get_run_logger().info("%s/%s: %s (%s)", name, r["segment"], r["status"], r["reason"])
            results.append(r)
    return results


if __name__ == "__main__":
    train_flow()
