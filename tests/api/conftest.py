"""The scoring API against the trained scoring world (real SQLite warehouse, real MLflow)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # starlette wants httpx2, which the constraints do not have yet
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from journey_ml.api import create_app
from journey_ml.db.models import Score
from journey_ml.runtime import Runtime
from journey_ml.settings import Settings
from tests.scoring.conftest import SCORED_AT, World, world  # noqa: F401 - the shared trained world

TOKEN = "test-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SALT = "t"  # the salt the world was ingested with


def runtime_for(w: World, tmp_path, **settings) -> Runtime:
    s = Settings(home=tmp_path, api_token=TOKEN, pii_salt=SALT, **settings)
    return Runtime(settings=s, config=w.config, _engine=w.engine)


@pytest.fixture(scope="module")
def api(world: World, tmp_path_factory) -> Iterator[TestClient]:  # noqa: F811
    """A started app (models loaded before the first request) on the world; no poller."""
    app = create_app(runtime_for(world, tmp_path_factory.mktemp("api"), api_max_events=400,
                                 api_max_body_bytes=300_000),
                     registry=world.registry, warm_in_background=False, poll_seconds=0)
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def batch_scores(world: World):  # noqa: F811
    """The batch flow's scores of the world as of its data end (written to ``scores``)."""
    from journey_ml.scoring import score_task

    score_task(world.engine, world.registry, world.config, "conversion", world.as_of, scored_at=SCORED_AT)
    s = Score.__table__
    with world.engine.connect() as conn:
        rows = conn.execute(sa.select(s).where(s.c.task == "conversion", s.c.as_of == world.as_of)).mappings().all()
    return {r["entity_id"]: dict(r) for r in rows}
