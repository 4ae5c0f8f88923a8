"""End-to-end fixtures: real `prefect server` / `mlflow server` processes (tests/e2e/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.servers import MlflowServer, PrefectServer, mlflow_server, prefect_server


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory) -> Iterator[PrefectServer]:
    """A PostgreSQL-backed `prefect server start` on a free loopback port, per test module."""
    with prefect_server(tmp_path_factory.mktemp("prefect")) as server:
        yield server


@pytest.fixture(scope="module")
def mlflow_api(tmp_path_factory) -> Iterator[MlflowServer]:
    """A PostgreSQL-backed `mlflow server` on a free loopback port, per test module."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server
