"""The task runner a flow fans its job's pieces out on, chosen by ``execution:`` in config.

`fan_out` opens the runner `journey_ml.execution.runner_plan` describes (a thread pool, or
prefect-dask's DaskTaskRunner on a scheduler address or a local cluster) and yields the
``each`` the job calls: every piece becomes one run of a Prefect task on that runner.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prefect import Task, get_run_logger
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from journey_ml.config import JourneyConfig
from journey_ml.execution import RunnerPlan, runner_plan


def task_runner(plan: RunnerPlan) -> TaskRunner:
    """The Prefect task runner of ``plan``."""
    if plan.kind == "thread":
        return ThreadPoolTaskRunner(max_workers=plan.slots)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise RuntimeError("execution.runner: dask needs the dask extra on the flow worker and on every "
                           "Dask worker (pip install '.[dask]' from a checkout)") from None
    if plan.address:
        return DaskTaskRunner(address=plan.address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=dict(plan.cluster))


@dataclass
class FanOut:
    """``each(fn, items)``: one run of ``task(fn, item)`` per item on ``runner``, results in
    order; ``slots`` is how many run at once in this process (None: on a cluster)."""

    runner: TaskRunner
    task: Task
    slots: int | None

    @property
    def width(self) -> int:
        """Pieces run at once anywhere: the slots here, or a cluster's worker threads."""
        if self.slots is not None:
            return self.slots
        return max(1, sum(self.runner.client.nthreads().values()))

    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        fn_name, item_name = list(inspect.signature(self.task.fn).parameters)[:2]
        futures = [self.runner.submit(self.task, {fn_name: fn, item_name: item}) for item in items]
        return [f.result() for f in futures]


@contextmanager
def fan_out(config: JourneyConfig, task: Task) -> Iterator[FanOut]:
    """Open the configured runner for the length of the block; ``task`` takes (fn, item)."""
    plan = runner_plan(config)
    log = get_run_logger()
    log.info("fan-out on %s", plan.describe())
    for note in plan.notes:
        log.warning(note)
    with task_runner(plan) as runner:
        yield FanOut(runner, task, plan.slots)
