"""POST /v1/score against the batch flow, stored scores, committees, probes and metrics."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import sqlalchemy as sa

from journey_ml.db.models import Event, Tombstone
from journey_ml.ingest.pii import subject_hash
from tests.api.conftest import AUTH, SALT
from tests.api.payload import score_body

# the world trains and logs models: MLflow's type-hint and FutureWarnings are not ours
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*")


def _pick(batch_scores: dict, per_segment: int = 3) -> list[str]:
    """A few entities of every segment (sorted, deterministic)."""
    out: list[str] = []
    for seg in sorted({r["segment"] for r in batch_scores.values()}):
        out += sorted(e for e, r in batch_scores.items() if r["segment"] == seg)[:per_segment]
    return out


def _new_prospects(world, batch_scores, n: int = 3) -> list[str]:
    """Scored entities whose whole history lies in the last 90 days (recent window only)."""
    e, c = Event.__table__, sa.table("contacts", sa.column("contact_id"), sa.column("account_id"))
    ent = sa.func.coalesce(e.c.account_id, c.c.account_id)
    q = (sa.select(ent).select_from(e.outerjoin(c, c.c.contact_id == e.c.contact_id)).group_by(ent)
         .having(sa.func.min(e.c.occurred_at) >= world.as_of - timedelta(days=90)))
    with world.engine.connect() as conn:
        fresh = sorted(set(conn.execute(q).scalars()) & set(batch_scores))
    return fresh[:n]


def test_batch_and_api_scores_are_identical(api, world, batch_scores):
    fresh = _new_prospects(world, batch_scores)
    assert fresh, "the world should have prospects with only recent history"
    picked = _pick(batch_scores) + fresh
    assert len({batch_scores[e]["segment"] for e in picked}) >= 3  # segment models and the pooled one
    modes = set()
    for eid in picked:
        stored = batch_scores[eid]
        r = api.post("/v1/score", json=score_body(world.engine, "conversion", eid, world.as_of), headers=AUTH)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["entity_id"] == eid
        assert got["probability"] == pytest.approx(stored["probability"], abs=1e-9), eid
        for k in ("band", "segment", "mode", "model_name", "model_version", "action", "action_holdout"):
            assert got[k] == stored[k], (eid, k, got[k], stored[k])
        assert got["reasons"] == stored["reasons"], eid
        modes.add(got["mode"])
    assert "segment_model" in modes and "global_model" in modes


def test_default_as_of_is_now(api, world, batch_scores):
    from datetime import UTC, datetime

    eid = _pick(batch_scores, 1)[0]
    body = score_body(world.engine, "conversion", eid, world.as_of)
    del body["as_of"]
    before = datetime.now(UTC)
    r = api.post("/v1/score", json=body, headers=AUTH)
    after = datetime.now(UTC)
    if r.status_code == 422:  # now may be past the 180-day lookback after the world's last event
        assert "no activity in the 180 days before as_of" in r.json()["detail"]
        return
    assert r.status_code == 200, r.text
    assert before <= datetime.fromisoformat(r.json()["as_of"]) <= after


def test_a_customer_is_not_in_the_conversion_population(api, world, batch_scores):
    e = Event.__table__
    with world.engine.connect() as conn:
        customer = conn.execute(sa.select(e.c.account_id).where(e.c.event_type == "closed_won",
                                                                e.c.occurred_at < world.as_of - timedelta(days=30),
                                                                e.c.account_id.is_not(None)).limit(1)).scalar_one()
    assert customer not in batch_scores
    r = api.post("/v1/score", json=score_body(world.engine, "conversion", customer, world.as_of), headers=AUTH)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert customer in detail and "already a customer (closed_won on" in detail


def test_opted_out_contacts_do_not_count(api, world, batch_scores):
    eid = _pick(batch_scores, 1)[0]
    body = score_body(world.engine, "conversion", eid, world.as_of)
    base = api.post("/v1/score", json=body, headers=AUTH).json()
    noisy = copy.deepcopy(body)
    noisy["contacts"].append({"contact_id": "OPTED-1", "role": "economic_buyer", "opted_out": True,
                              "email": "someone@example.com"})
    t = world.as_of - timedelta(days=2)
    noisy["events"] += [{"event_id": f"x{i}", "source": "web", "occurred_at": (t - timedelta(hours=i)).isoformat(),
                         "contact_id": "OPTED-1", "event_type": "demo_request"} for i in range(10)]
    got = api.post("/v1/score", json=noisy, headers=AUTH).json()
    assert got["probability"] == base["probability"] and got["reasons"] == base["reasons"]
    # the same events from a contact who did not opt out do change the features
    noisy["contacts"][-1]["opted_out"] = False
    changed = api.post("/v1/score", json=noisy, headers=AUTH).json()
    assert (changed["probability"], changed["reasons"]) != (base["probability"], base["reasons"])


def test_pii_policy_is_applied_like_ingestion(api):
    from journey_ml.api.models import ScoreRequest
    from journey_ml.ingest.pii import keyed_hash

    service = api.app.state.service
    req = ScoreRequest.model_validate({
        "task": "conversion", "entity_id": "A1",
        "contacts": [{"contact_id": "c1", "email": "Ann@Example.com"}],
        "events": [{"event_id": "e1", "source": "web", "occurred_at": "2026-01-01T00:00:00Z", "contact_id": "c1",
                    "event_type": "page_view", "properties": {"email": "ann@example.com", "ip": "1.2.3.4", "k": 1}}]})
    rows = service._rows(req, "account", world_now())
    contact, event = rows["contacts"][0], rows["events"][0]
    assert contact["email_hash"] == keyed_hash("Ann@Example.com", SALT) and "email" not in contact
    assert event["properties"] == {"email": keyed_hash("ann@example.com", SALT), "k": 1}  # ip dropped
    assert (event["channel"], event["stage"], contact["account_id"]) == ("web", "awareness", "A1")


def world_now():
    from datetime import UTC, datetime

    return datetime(2026, 7, 2, tzinfo=UTC)


def test_an_erased_entity_is_not_scored(api, world, batch_scores):
    eid = _pick(batch_scores, 1)[0]
    t = Tombstone.__table__
    h = subject_hash("account", eid, SALT)
    with world.engine.begin() as conn:
        conn.execute(t.insert(), [{"subject_hash": h, "subject_kind": "account", "erased_at": world.as_of}])
    try:
        r = api.post("/v1/score", json=score_body(world.engine, "conversion", eid, world.as_of), headers=AUTH)
    finally:
        with world.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.subject_hash == h))
    assert r.status_code == 422 and r.json()["error"] == "erased" and eid in r.json()["detail"]


def test_stored_score(api, batch_scores):
    eid = _pick(batch_scores, 1)[0]
    r = api.get(f"/v1/entities/{eid}/score", params={"task": "conversion"}, headers=AUTH)
    assert r.status_code == 200, r.text
    got, stored = r.json(), batch_scores[eid]
    assert got["probability"] == stored["probability"] and got["run_id"] == stored["run_id"]
    assert got["reasons"] == stored["reasons"] and got["as_of"].startswith(stored["as_of"].strftime("%Y-%m-%d"))
    assert api.get(f"/v1/entities/{eid}/score", headers=AUTH).status_code == 200  # any task
    r = api.get("/v1/entities/NO-SUCH-ID/score", params={"task": "conversion"}, headers=AUTH)
    assert r.status_code == 404 and "'NO-SUCH-ID'" in r.json()["detail"]
    r = api.get(f"/v1/entities/{eid}/score", params={"task": "upsell"}, headers=AUTH)
    assert r.status_code == 422 and "'upsell'" in r.json()["detail"]


def test_committee(api, world, batch_scores):
    eid = _pick(batch_scores, 1)[0]
    r = api.get(f"/v1/accounts/{eid}/committee", params={"as_of": world.as_of.isoformat()}, headers=AUTH)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["account_id"] == eid and view["contacts"] >= 1
    assert set(view["key_roles_missing"]) <= set(world.config.features.key_roles)
    assert view["scores"]["conversion"]["probability"] == batch_scores[eid]["probability"]
    r = api.get("/v1/accounts/NOPE/committee", headers=AUTH)
    assert r.status_code == 404 and "'NOPE'" in r.json()["detail"]
    r = api.get(f"/v1/accounts/{eid}/committee", params={"as_of": "2026-01-01T00:00:00"}, headers=AUTH)
    assert r.status_code == 422 and "as_of" in r.json()["detail"]


def test_probes_and_openapi(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    r = api.get("/readyz")
    assert r.status_code == 200, r.text
    ready = r.json()
    assert ready["ready"] and ready["warehouse"] == "ok" and ready["registry"]["last_error"] is None
    smb = ready["tasks"]["conversion"]["smb"]
    assert smb["version"] == 1 and smb["loaded"] and smb["kind"] == "xgboost"
    assert ready["tasks"]["conversion"]["enterprise"]["serves"] == "global model"
    spec = api.get("/openapi.json").json()
    assert {"/v1/score", "/v1/entities/{entity_id}/score", "/v1/accounts/{account_id}/committee"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_metrics(api, world, batch_scores):
    eid = _pick(batch_scores, 1)[0]
    assert api.post("/v1/score", json=score_body(world.engine, "conversion", eid, world.as_of),
                    headers=AUTH).status_code == 200
    api.post("/v1/score", json={}, headers=AUTH)
    text = api.get("/metrics").text
    mode = batch_scores[eid]["mode"]
    assert 'journey_api_requests_total{method="POST",route="/v1/score",status="200"}' in text
    assert 'journey_api_requests_total{method="POST",route="/v1/score",status="422"}' in text
    assert f'journey_api_scores_total{{mode="{mode}",task="conversion"}}' in text
    assert 'journey_api_request_seconds_bucket{le="0.025",route="/v1/score"}' in text
    assert 'journey_api_model_version{kind="xgboost",model="journey-conversion-smb"} 1.0' in text
    assert "journey_api_registry_last_refresh_ok 1.0" in text
    assert "journey_api_fallbacks_total" in text
