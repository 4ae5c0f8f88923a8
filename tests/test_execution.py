"""The runner selection and the one rule against oversubscription (journey_ml.execution)."""

from __future__ import annotations

import pytest

from journey_ml.config import ConfigError, parse_config
from journey_ml.execution import model_threads, runner_plan, scoring_partitions, with_model_threads

THREAD_CASES = [
    # requested, concurrent, cores -> threads per model
    (2, 1, 2, 2),     # alone on 2 cores: what is configured
    (2, 2, 2, 1),     # two segments at once on 2 cores: one thread each (was 2 x 2 = 4)
    (8, 2, 16, 8),    # enough cores: what is configured
    (8, 3, 16, 5),    # 3 x 5 = 15 <= 16
    (4, 0, 4, 4),     # nothing else running
    (2, 4, 2, 1),     # more at once than cores: never below 1
    (1, 1, 64, 1),    # never more than configured
]


@pytest.mark.parametrize(("requested", "concurrent", "cores", "expected"), THREAD_CASES)
def test_model_threads(requested, concurrent, cores, expected):
    got = model_threads(requested, concurrent, cores)
    assert got == expected
    if 0 < concurrent <= cores:
        assert concurrent * got <= cores


@pytest.mark.parametrize(("args", "message"), [
    ((0, 1, 2), "requested=0"), ((2, 1, 0), "cores=0"), ((2, -1, 2), "concurrent=-1")])
def test_model_threads_rejects_nonsense(args, message):
    with pytest.raises(ValueError, match=message):
        model_threads(*args)


def _cfg(execution: dict | None = None, **training):
    data = {"training": training} if training else {}
    if execution is not None:
        data["execution"] = execution
    return parse_config(data, "journey.yaml")


def test_thread_pool_never_larger_than_the_cores():
    plan = runner_plan(_cfg(max_parallel_segments=6), cores=2)
    assert (plan.kind, plan.slots) == ("thread", 2)
    assert runner_plan(_cfg(max_parallel_segments=3), cores=8).slots == 3
    assert scoring_partitions(_cfg(), plan.slots) == 1


def test_local_cluster_sized_to_the_cores():
    plan = runner_plan(_cfg({"runner": "dask", "n_workers": 4, "threads_per_worker": 1}), cores=2)
    assert plan.kind == "dask" and plan.address is None
    assert plan.cluster["n_workers"] == 2 and plan.slots == 2
    assert "exceeds the 2 core(s)" in plan.notes[0]
    assert scoring_partitions(_cfg({"runner": "dask"}), plan.slots) == 2
    assert scoring_partitions(_cfg({"runner": "dask", "scoring_partitions": 5}), plan.slots) == 5


def test_scheduler_address():
    plan = runner_plan(_cfg({"runner": "dask", "address": "tcp://scheduler:8786"}), cores=2)
    assert (plan.kind, plan.address, plan.slots) == ("dask", "tcp://scheduler:8786", None)
    assert "tcp://scheduler:8786" in plan.describe()
    assert scoring_partitions(_cfg({"runner": "dask", "address": "tcp://s:8786"}), None) == 1


@pytest.mark.parametrize(("execution", "message"), [
    ({"runner": "spark"}, "execution.runner"),
    ({"address": "tcp://s:8786"}, "address: only with runner: dask"),
    ({"n_workers": 3}, "n_workers: only with runner: dask"),
    ({"processes": False}, "processes: only with runner: dask"),
    ({"runner": "dask", "address": "s:8786"}, "expected a Dask scheduler address"),
    ({"runner": "dask", "address": "tcp://s:8786", "n_workers": 3}, "n_workers: only for a local cluster"),
    ({"runner": "dask", "n_workers": 0}, "execution.n_workers"),
    ({"runner": "dask", "scoring_partitions": 0}, "execution.scoring_partitions"),
    ({"runner": "dask", "workers": 2}, "execution.workers"),
])
def test_bad_execution_config_names_the_key(execution, message):
    with pytest.raises(ConfigError, match="journey.yaml") as e:
        _cfg(execution)
    assert message in str(e.value)


def test_with_model_threads_sets_what_training_reads():
    cfg = _cfg()
    two = with_model_threads(cfg, 1)
    assert two.training.xgboost.n_jobs == 1 and cfg.training.xgboost.n_jobs == 2
    assert two.training.seed == cfg.training.seed and two.tasks == cfg.tasks


def test_a_dumped_configuration_loads_again():
    # model_dump spells every key with its default: that is not "n_workers given to a thread runner"
    for execution in ({}, {"runner": "dask", "address": "tcp://s:8786"}, {"runner": "dask", "n_workers": 1}):
        cfg = _cfg(execution)
        assert parse_config(cfg.model_dump(mode="json"), "dumped.yaml").execution == cfg.execution
