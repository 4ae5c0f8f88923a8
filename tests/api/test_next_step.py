"""The API returns each score's journey stage and next-step probabilities (issue #13 item 3)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from journey_ml.journeys.current import next_steps_as_of
from tests.api.conftest import AUTH
from tests.api.payload import score_body

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*")


def test_stored_scores_come_back_with_their_next_steps(api, batch_scores):
    ongoing = sorted(e for e, r in batch_scores.items() if r["next_steps"])
    ended = sorted(e for e, r in batch_scores.items() if r["stage"] and not r["next_steps"])
    assert ongoing and ended, "the world should have ongoing and ended journeys among the scored"
    for eid in ongoing[:3] + ended[:2]:
        r = api.get(f"/v1/entities/{eid}/score", params={"task": "conversion"}, headers=AUTH)
        assert r.status_code == 200, r.text
        got, stored = r.json(), batch_scores[eid]
        assert got["stage"] == stored["stage"]
        assert got["next_steps"] == stored["next_steps"]
    nxt = batch_scores[ongoing[0]]["next_steps"]
    assert {"(conversion)", "(exit)"} <= nxt.keys() and sum(nxt.values()) == pytest.approx(1.0)


def test_posted_entity_gets_the_warehouse_chain_prediction(api, world, batch_scores):
    # as of a midnight the API's chain (fitted as of the start of the request's day) is the
    # batch's chain as of the same T: the posted entity gets what batch scoring stores
    t = world.as_of.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    batch = next_steps_as_of(world.engine, world.config, "conversion", t)
    picked = [e for e in sorted(batch_scores) if batch.of(e)[1] is not None][:3]
    assert picked
    for eid in picked:
        r = api.post("/v1/score", json=score_body(world.engine, "conversion", eid, t), headers=AUTH)
        assert r.status_code == 200, r.text
        stage, nxt = batch.of(eid)
        got = r.json()
        assert got["stage"] == stage
        assert got["next_steps"].keys() == nxt.keys()
        for k, v in nxt.items():
            assert got["next_steps"][k] == pytest.approx(v, abs=1e-12), (eid, k)
