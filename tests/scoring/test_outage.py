"""A deleted or empty MLflow store is an outage, not a fallback (issue #9 case 5).

Before: after `.journey/mlflow.db` was deleted, `journey-ml score` silently recreated an
empty store, scored everyone with built-in rules and overwrote the stored scores while the
alias ledger still said production was v1; the API kept `/readyz` ready.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from journey_ml.jobs import ScoringParams, run_scoring
from journey_ml.registry import Registry
from journey_ml.registry.consistency import RegistryOutage, missing_production
from journey_ml.runtime import Runtime
from journey_ml.settings import Settings
from tests.scoring.conftest import world  # noqa: F401 - the shared trained world

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*")


def _scores(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT task, entity_id, as_of, probability, mode, model_version FROM scores ORDER BY 1, 2, 3"))]


def _runtime(w, tmp_path, registry) -> Runtime:
    rt = Runtime(settings=Settings(home=tmp_path, pii_salt="t"), config=w.config, _engine=w.engine)
    rt.__dict__["registry"] = registry  # the cached_property's slot: this registry, not the settings'
    return rt


def test_empty_tracking_store_refuses_to_overwrite_scores(world, tmp_path):  # noqa: F811
    good = _runtime(world, tmp_path, world.registry)
    run_scoring(good, ScoringParams(scored_at=datetime(2026, 7, 2, tzinfo=UTC), as_of=world.as_of))
    before = _scores(world.engine)
    assert before and {r[4] for r in before} <= {"segment_model", "global_model"}

    empty = Registry(f"sqlite:///{tmp_path / 'recreated-mlflow.db'}", world.engine, experiment="scoring-test")
    missing = missing_production(world.engine, empty, "conversion")
    assert {m.model_name for m in missing} == {f"journey-conversion-{s}" for s, o in world.outcomes.items()
                                              if o.status == "promoted"}
    with pytest.raises(RegistryOutage) as e:
        run_scoring(_runtime(world, tmp_path, empty),
                    ScoringParams(scored_at=datetime(2026, 7, 3, tzinfo=UTC), as_of=world.as_of))
    msg = str(e.value)
    assert "journey-conversion-global@production is v" in msg and "has no version" in msg
    assert "nothing was written" in msg
    assert _scores(world.engine) == before  # the stored scores are untouched


def test_api_readyz_reports_the_missing_version(world, tmp_path):  # noqa: F811
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient

    from journey_ml.api import create_app

    empty = Registry(f"sqlite:///{tmp_path / 'recreated-mlflow.db'}", world.engine, experiment="scoring-test")
    rt = Runtime(settings=Settings(home=tmp_path, pii_salt="t", api_token="x"), config=world.config,
                 _engine=world.engine)
    app = create_app(rt, registry=empty, warm_in_background=False, poll_seconds=0)
    with TestClient(app) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    problems = r.json()["problems"]
    assert any("registry outage: the alias ledger says journey-conversion-global@production is v" in p
               for p in problems), problems
