"""The training job's fan-out: XGBoost threads x segments training at once <= the cores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mlflow import MlflowClient

from journey_ml import execution
from journey_ml.config import load_config
from journey_ml.db import upgrade
from journey_ml.ingest import ingest_all
from journey_ml.jobs import TrainingParams, run_training, serial
from journey_ml.runtime import Runtime
from journey_ml.settings import Settings
from journey_ml.simulate import SimulationParams, simulate

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("job_world")
    simulate(SimulationParams(accounts=500, seed=5), root / "exports")
    return root / "exports"


def _runtime(home, exports) -> Runtime:
    cfg, _ = load_config(None)
    cfg = cfg.model_copy(update={
        "tasks": {"conversion": cfg.tasks["conversion"]}, "rules": {"conversion": cfg.rules["conversion"]},
        "training": cfg.training.model_copy(update={
            "min_segment_rows": 150, "min_segment_positives": 8, "max_parallel_segments": 2,
            "xgboost": cfg.training.xgboost.model_copy(update={"n_estimators": 30, "n_jobs": 2})})})
    rt = Runtime(settings=Settings(home=home, pii_salt="t"), config=cfg)
    upgrade(rt.engine)
    ingest_all(rt.engine, cfg, data_dir=exports, salt="t", received_at=datetime(2026, 7, 1, tzinfo=UTC))
    return rt


class _TwoAtOnce:
    """A fan-out that says two calls run at once (as the flow's thread pool does)."""

    slots = 2

    def __call__(self, fn, items):
        return serial(fn, items)


def _threads_logged(rt: Runtime, result) -> dict[str, int]:
    client = MlflowClient(rt.settings.tracking_uri)
    return {o.segment: int(client.get_run(o.run_id).data.params["xgb_n_jobs"]) for o in result.outcomes if o.run_id}


def test_segments_in_parallel_share_the_cores(exports, tmp_path, monkeypatch):
    monkeypatch.setattr(execution, "available_cores", lambda: 2)
    rt = _runtime(tmp_path / "home", exports)
    result = run_training(rt, TrainingParams(tasks=("conversion",)), each=_TwoAtOnce())
    threads = _threads_logged(rt, result)
    assert len(threads) >= 2, [(o.segment, o.status, o.reason) for o in result.outcomes]
    # the global model trains alone (2 threads); the segments two at a time, 1 thread each
    assert threads.pop("global") == 2
    assert set(threads.values()) == {1}


def test_serial_segments_get_the_configured_threads(exports, tmp_path, monkeypatch):
    monkeypatch.setattr(execution, "available_cores", lambda: 4)
    rt = _runtime(tmp_path / "home", exports)
    result = run_training(rt, TrainingParams(tasks=("conversion",)), each=serial)
    threads = _threads_logged(rt, result)
    assert len(threads) >= 2 and set(threads.values()) == {2}


def test_a_segment_above_the_threshold_trains_with_xgboost_dask(exports, tmp_path):
    """execution.distributed_training_rows: the global model and the segments above it
    (each trained in a task on a worker) train with xgboost.dask on the whole cluster; the
    models are as good as single-process ones."""
    from distributed import Client, LocalCluster, get_task_stream

    rt = _runtime(tmp_path / "home", exports)
    execution = rt.config.execution.model_copy(update={"runner": "dask", "distributed_training_rows": 100})
    rt.config = rt.config.model_copy(update={"execution": execution})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:

        def on_workers(fn, items):
            return client.gather([client.submit(fn, i, pure=False) for i in items])

        with get_task_stream(client) as stream:
            result = run_training(rt, TrainingParams(tasks=("conversion",)), each=on_workers)
    trained = [o for o in result.outcomes if o.status in ("promoted", "staged")]
    assert {o.segment for o in trained} >= {"global"} and len(trained) >= 2, result.problems()
    assert all(o.metrics["roc_auc"] > 0.6 for o in trained), [(o.segment, o.metrics) for o in trained]
    # xgboost.dask's training tasks (its `fn-<id>` dispatches) ran on the workers: one per
    # trained model and worker
    dispatched = [t for t in stream.data if isinstance(t["key"], str) and t["key"].startswith("fn-")]
    assert len({t["worker"] for t in dispatched}) == 2
    assert len(dispatched) >= 2 * len(trained)
