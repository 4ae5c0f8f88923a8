"""Results do not depend on the runner: the training and scoring flows on a local Dask
cluster (prefect-dask, two worker processes) and on the default thread pool, from the same
exports into two separate homes, give the same model versions and metrics and the same
stored scores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]

RECEIVED_AT = datetime(2026, 7, 1, tzinfo=UTC)
RUNNERS = {
    "thread": {"runner": "thread"},
    # real worker processes: what travels to a worker (Runtime, segment rows, partitions) is pickled
    "dask": {"runner": "dask", "n_workers": 2, "threads_per_worker": 1, "processes": True},
}


def _config(exports, execution: dict) -> dict:
    with open(__import__("journey_ml").__path__[0] + "/default_config.yaml") as f:
        cfg = yaml.safe_load(f)
    cfg["data_dir"] = str(exports)
    cfg["training"].update({"min_segment_rows": 150, "min_segment_positives": 8})
    cfg["training"]["xgboost"]["n_estimators"] = 40
    cfg["tasks"] = {"conversion": {**cfg["tasks"]["conversion"], "training_as_of_count": 5}}
    cfg["rules"] = {"conversion": cfg["rules"]["conversion"]}
    cfg["scoring"]["playbook"] = [r for r in cfg["scoring"]["playbook"] if r["task"] == "conversion"]
    cfg["scoring"]["default_actions"] = {"conversion": cfg["scoring"]["default_actions"]["conversion"]}
    cfg["execution"] = execution
    return cfg


def _stored(engine) -> list[tuple]:
    """Every stored score, without what differs by run (run id, wall-clock time)."""
    names = [c["name"] for c in sa.inspect(engine).get_columns("scores")
             if c["name"] not in ("id", "run_id", "scored_at")]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            f"SELECT {', '.join(names)} FROM scores ORDER BY task, entity_id"))]


def _run(runner: str, exports, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client

    from flows.score import score_flow
    from flows.train import train_flow
    from journey_ml.db import upgrade
    from journey_ml.ingest import ingest_all
    from journey_ml.runtime import Runtime

    home = tmp_path / runner
    path = tmp_path / f"{runner}.yaml"
    path.write_text(yaml.safe_dump(_config(exports, RUNNERS[runner])))
    monkeypatch.setenv("JOURNEY_HOME", str(home))
    monkeypatch.delenv("JOURNEY_DATABASE_URL", raising=False)
    monkeypatch.delenv("JOURNEY_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("JOURNEY_PII_SALT", "t")
    rt = Runtime.load(config_path=path)
    upgrade(rt.engine)
    ingest_all(rt.engine, rt.config, data_dir=exports, salt="t", received_at=RECEIVED_AT)
    trained = train_flow(config_path=str(path))
    scored = score_flow(config_path=str(path))
    with get_client(sync_client=True) as client:
        names = sorted(r.name for r in client.read_task_runs()
                       if r.name.startswith(("train ", "score conversion")) and r.state.is_completed())
    models = {o.segment: (o.status, o.model_name, o.version, o.metrics) for o in trained.outcomes}
    return models, scored.runs[0], _stored(rt.engine), names


def test_training_and_scoring_do_not_depend_on_the_runner(prefect_harness, tmp_path, monkeypatch):
    from journey_ml.simulate import SimulationParams, simulate

    exports = tmp_path / "exports"
    simulate(SimulationParams(accounts=400, seed=3), exports)
    t_models, t_run, t_rows, t_tasks = _run("thread", exports, tmp_path, monkeypatch)
    d_models, d_run, d_rows, d_tasks = _run("dask", exports, tmp_path, monkeypatch)
    # the Dask run trained its segments as Prefect tasks on the cluster and scored the
    # population in partitions there (one per worker thread); the thread pool in one piece
    segments = [f"train {s}" for s in sorted(t_models)]  # the global model too, first and alone
    assert t_tasks == segments
    assert d_tasks == sorted([*segments, *segments, "score conversion 1/2", "score conversion 2/2"])

    # the global model and at least one segment got a version of their own
    assert t_models["global"][0] == "promoted", t_models
    assert sum(v is not None for _, _, v, _ in t_models.values()) >= 2, t_models
    # the same versions, promoted alike, with the same holdout metrics
    assert d_models.keys() == t_models.keys()
    for seg, (status, name, version, metrics) in t_models.items():
        d_status, d_name, d_version, d_metrics = d_models[seg]
        assert (d_status, d_name, d_version) == (status, name, version), seg
        assert d_metrics.keys() == metrics.keys()
        for k, v in metrics.items():
            assert d_metrics[k] == pytest.approx(v, abs=1e-9, nan_ok=True), (seg, k)
    assert d_run.entities == t_run.entities > 0 and d_run.phases.keys() == t_run.phases.keys()
    assert len(d_rows) == len(t_rows) == t_run.entities
    for t, d in zip(t_rows, d_rows, strict=True):
        assert d[:2] == t[:2]
        assert d == t or _close(d, t), (t, d)


def _close(a: tuple, b: tuple) -> bool:
    return all(x == y or (isinstance(x, float) and abs(x - y) <= 1e-9) for x, y in zip(a, b, strict=True))
