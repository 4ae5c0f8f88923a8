"""The MLflow adapter implements the registry protocol the rest of journey-ml is typed against."""

from __future__ import annotations

import inspect

from journey_ml.registry import ModelRegistry, Registry


def _protocol_methods() -> list[str]:
    return [n for n, v in vars(ModelRegistry).items() if inspect.isfunction(v) and not n.startswith("_")]


def test_every_protocol_method_exists_with_the_same_parameters():
    methods = _protocol_methods()
    assert {"log_run", "log_model", "load", "promote", "rollback", "production"} <= set(methods)
    for name in methods:
        want = inspect.signature(getattr(ModelRegistry, name)).parameters
        have = inspect.signature(getattr(Registry, name)).parameters
        missing = [p for p in want if p not in have]
        assert not missing, f"Registry.{name} lacks {missing}"
        for p, spec in want.items():  # same kind (positional / keyword-only) for every shared name
            assert have[p].kind == spec.kind, f"Registry.{name}({p}): {have[p].kind} != {spec.kind}"
        extra = [p for p, spec in have.items() if p not in want and spec.default is inspect.Parameter.empty]
        assert not extra, f"Registry.{name} requires parameters the protocol does not pass: {extra}"


def test_the_adapter_is_an_instance_of_the_protocol(tmp_path):
    from journey_ml.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(engine)
    reg = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", engine, experiment="protocol-test")
    assert isinstance(reg, ModelRegistry)
