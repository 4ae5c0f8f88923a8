"""Real MLflow tracking stores for the registry tests, one per backend, created once.

``mlflow_sqlite``: a SQLite store under a session tmp folder. ``mlflow_pg``: a fresh
database on the local PostgreSQL (dropped at the end). MLflow migrates a new store in a few
seconds, so each is made once per session; tests stay independent by using a model name
(task) and an experiment of their own. Each test gets the warehouse of the same backend
(the ``engine`` fixture of tests/conftest.py), so the SQLite ledger lock and the PostgreSQL
advisory lock are both exercised.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL, _admin_conninfo

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _init_store(uri: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments(max_results=1)


@pytest.fixture(scope="session")
def mlflow_sqlite(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("mlflow-sqlite")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    _init_store(uri)
    return uri


@pytest.fixture(scope="session")
def mlflow_pg() -> Iterator[str]:
    name = f"journey_mlflow_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(_admin_conninfo(), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    uri = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name) \
        .render_as_string(hide_password=False)
    try:
        _init_store(uri)
        yield uri
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@dataclass
class Env:
    """A tracking store and a warehouse of the same backend, and registries on them."""

    backend: str
    tracking_uri: str
    engine: sa.Engine
    artifacts: Path

    def registry(self, experiment: str | None = None, actor: str = "tester"):
        from journey_ml.registry import Registry

        return Registry(self.tracking_uri, self.engine, experiment=experiment or unique("exp"),
                        actor=actor, artifact_location=str(self.artifacts))


def unique(prefix: str = "t") -> str:
    """A fresh task / experiment name (registered model names are store-wide)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def env(request, engine: sa.Engine, tmp_path: Path) -> Env:
    backend = engine.dialect.name
    uri = request.getfixturevalue("mlflow_sqlite" if backend == "sqlite" else "mlflow_pg")
    return Env(backend, uri, engine, tmp_path / "artifacts")


POINTS = {"demo": 5.0, "trial": 4.0, "pricing": 2.0, "webinar": 1.0}


@pytest.fixture(scope="session")
def labelled() -> tuple[pd.DataFrame, np.ndarray]:
    """Counts per feature whose outcome follows the full rule set."""
    from journey_ml.models.rules import RulesScorer

    rng = np.random.default_rng(11)
    n = 600
    X = pd.DataFrame({k: rng.poisson(0.5, n) for k in POINTS}).astype(float)
    score = RulesScorer(POINTS).rule_score(X)
    y = (rng.random(n) < 1 / (1 + np.exp(-(score - 5) / 1.5))).astype(int)
    return X, y


@pytest.fixture(scope="session")
def good_rules(labelled):
    from journey_ml.models.rules import RulesScorer

    X, y = labelled
    return RulesScorer(POINTS).fit(X, y)


@pytest.fixture(scope="session")
def weak_rules(labelled):
    """Fewer points: a deliberately worse candidate."""
    from journey_ml.models.rules import RulesScorer

    X, y = labelled
    return RulesScorer({"webinar": 1.0, "pricing": 0.5}).fit(X, y)
