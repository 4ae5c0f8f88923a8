"""The API's in-memory feature path scores exactly as the scratch-warehouse SQL path did:
the same records (probability, band, segment, ladder step, reasons, action, next steps)
for population members of every segment of the trained world."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from journey_ml.api.models import ScoreRequest
from journey_ml.api.registry_view import RegistryView
from journey_ml.api.scratch import ScratchPool
from journey_ml.api.service import ScoringService
from journey_ml.features import population
from journey_ml.scoring.ladder import ModelCache
from tests.api.conftest import SALT
from tests.api.payload import score_body

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*")
NOW = datetime(2026, 7, 2, tzinfo=UTC)


def test_in_memory_and_scratch_sql_paths_give_the_same_records(world):
    cache = ModelCache()
    view = RegistryView(world.registry, cache)
    memory = ScoringService(world.engine, world.config, view, cache, salt=SALT)
    pool = ScratchPool(1)
    scratch = ScoringService(world.engine, world.config, view, cache, salt=SALT, pool=pool)
    memory.warm()
    pop = list(population(world.engine, world.config, "conversion", world.as_of))
    picked = pop[:: max(len(pop) // 25, 1)][:25]
    assert len(picked) >= 10
    modes = set()
    for eid in picked:
        req = ScoreRequest.model_validate(score_body(world.engine, "conversion", eid, world.as_of))
        a = memory.score(req, now=NOW).record
        b = scratch.score(req, now=NOW).record
        assert a.keys() == b.keys()
        assert a["probability"] == pytest.approx(b["probability"], rel=1e-12, abs=1e-12), eid
        assert {k: v for k, v in a.items() if k != "probability"} == \
            {k: v for k, v in b.items() if k != "probability"}, eid
        modes.add((a["segment"], a["mode"]))
    assert len(modes) >= 2  # more than one segment / ladder step compared
    with pool.borrow({}) as db, db.connect() as conn:  # the scratch path left nothing behind
        assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one() == 0
    pool.close()


def test_the_api_cache_predicts_on_one_thread_with_the_same_scores(world):
    """The API's ModelCache(threads=1): every loaded XGBoost booster runs on one thread (a
    request is one row; more OpenMP threads only spin) and scores exactly as trained."""
    import json

    from journey_ml.features import build_features

    one, trained = ModelCache(threads=1), ModelCache()
    prod = world.registry.production("conversion", "global")
    a = one.get(world.registry, "conversion", "global", prod.version, prod.kind)
    b = trained.get(world.registry, "conversion", "global", prod.version, prod.kind)
    assert json.loads(a.scorer.booster_.save_config())["learner"]["generic_param"]["nthread"] == "1"
    assert a.scorer.n_jobs == 1 and b.scorer.n_jobs != 1
    from journey_ml.features import FeatureSet

    frame = build_features(world.engine, world.config, "conversion", world.as_of,
                           feature_set=FeatureSet.from_dict(a.feature_set)).frame.head(50)
    x = frame[a.scorer.feature_names]
    assert a.scorer.predict_proba(x) == pytest.approx(b.scorer.predict_proba(x), abs=1e-12)
