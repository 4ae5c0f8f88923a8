"""Where a job's independent pieces run, and how many threads each model gets.

``execution:`` in the configuration (`ExecutionConfig`) picks the runner; `runner_plan`
turns it into what the flows build their Prefect task runner from (``flows/runners.py``:
a thread pool, or prefect-dask's ``DaskTaskRunner``); the library never imports Prefect.

`model_threads` is the one rule against oversubscription: models training at once x
XGBoost threads per model never exceed the cores of the machine they run on. In the flow's
process "at once" is the thread pool's size; on a Dask worker it is the worker threads of
every worker on that host (a LocalCluster's workers share the flow's machine).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from journey_ml.config import JourneyConfig


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def model_threads(requested: int, concurrent: int, cores: int) -> int:
    """XGBoost threads for one model when ``concurrent`` models train at once on ``cores``
    cores: the configured ``requested`` threads, at most the model's share of the cores,
    at least 1. ``concurrent`` x result never exceeds ``cores`` unless ``concurrent``
    alone does (then each model gets 1 thread)."""
    if requested < 1 or concurrent < 0 or cores < 1:
        raise ValueError(f"model_threads: requested={requested}, concurrent={concurrent}, cores={cores}: "
                         "requested and cores must be >= 1, concurrent >= 0")
    return max(1, min(requested, cores // max(1, concurrent)))


@dataclass(frozen=True)
class RunnerPlan:
    """The task runner a flow builds for its fan-out.

    ``slots``: pieces run at once (the thread pool's size, a local cluster's worker
    threads); None for a remote cluster (its workers decide). ``cluster`` holds the
    LocalCluster's arguments when Dask runs locally."""

    kind: Literal["thread", "dask"]
    slots: int | None
    address: str | None = None
    cluster: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "thread":
            return f"thread pool of {self.slots}"
        if self.address:
            return f"Dask scheduler at {self.address}"
        c = self.cluster
        return (f"local Dask cluster, {c['n_workers']} worker(s) x {c['threads_per_worker']} thread(s)"
                f" ({'processes' if c['processes'] else 'threads of this process'})")


def runner_plan(config: JourneyConfig, cores: int | None = None) -> RunnerPlan:
    """The runner ``config.execution`` asks for, sized to this machine: a thread pool
    never larger than the cores, a local cluster of at most the cores' worth of worker
    threads (fewer workers when the configured ones would exceed them; noted)."""
    e = config.execution
    cores = cores or available_cores()
    if e.runner == "thread":
        return RunnerPlan("thread", slots=min(config.training.max_parallel_segments, cores))
    if e.address:
        return RunnerPlan("dask", slots=None, address=e.address)
    workers = min(e.n_workers, max(1, cores // e.threads_per_worker))
    notes = () if workers == e.n_workers else (
        f"execution.n_workers {e.n_workers} x threads_per_worker {e.threads_per_worker} exceeds the "
        f"{cores} core(s) here: {workers} worker(s) started",)
    cluster = {"n_workers": workers, "threads_per_worker": e.threads_per_worker, "processes": e.processes,
               # the cluster is private to the flow run: no dashboard port to collide on
               "dashboard_address": None}
    return RunnerPlan("dask", slots=workers * e.threads_per_worker, cluster=cluster, notes=notes)


def scoring_partitions(config: JourneyConfig, slots: int | None) -> int:
    """How many partitions batch scoring splits a population into: ``scoring_partitions``
    when configured, else 1 on the thread runner and one per worker thread on Dask
    (``slots``; 1 when unknown)."""
    e = config.execution
    if e.scoring_partitions is not None:
        return e.scoring_partitions
    return max(1, slots or 1) if e.runner == "dask" else 1


def _dask_worker():
    try:
        from distributed import get_worker
    except ImportError:  # the dask extra is not installed: not on a worker
        return None
    try:
        return get_worker()
    except ValueError:
        return None


def _host_slots(worker) -> int:
    """Worker threads of every Dask worker on this worker's host."""
    mine = worker.state.nthreads
    try:
        info = worker.client.scheduler_info(n_workers=-1)["workers"]
        host = info[worker.address]["host"]
        return max(mine, sum(w["nthreads"] for w in info.values() if w.get("host") == host))
    except Exception:  # noqa: BLE001 - no scheduler view: this worker's own threads
        return mine


def threads_here(requested: int, concurrent: int) -> int:
    """`model_threads` for a model trained here: on a Dask worker ``concurrent`` is the
    worker threads of its host; elsewhere the caller's (its pool's size, 1 alone)."""
    worker = _dask_worker()
    if worker is not None:
        concurrent = _host_slots(worker)
    return model_threads(requested, concurrent, available_cores())


def with_model_threads(config: JourneyConfig, threads: int) -> JourneyConfig:
    """``config`` with ``training.xgboost.n_jobs`` set to ``threads`` (what training reads)."""
    t = config.training
    if t.xgboost.n_jobs == threads:
        return config
    xgb = t.xgboost.model_copy(update={"n_jobs": threads})
    return config.model_copy(update={"training": t.model_copy(update={"xgboost": xgb})})


@contextmanager
def dask_client() -> Iterator[Any]:
    """The Dask client of where this runs: on a worker, the worker's (this task secedes
    from its thread while the work it starts runs, so a 1-thread worker can take part);
    elsewhere the current client (a flow's DaskTaskRunner). Raises RuntimeError without one."""
    try:
        from distributed import get_client, worker_client
    except ImportError:
        raise RuntimeError("execution.distributed_training_rows needs the dask extra "
                           "(the dask extra: pip install '.[dask]')") from None
    if _dask_worker() is not None:
        with worker_client() as client:
            yield client
        return
    try:
        client = get_client()
    except ValueError:
        raise RuntimeError("no Dask client here: distributed training runs under execution.runner: dask") from None
    yield client
