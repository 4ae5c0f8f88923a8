"""Every bad request gets the right status and a message naming the problem; the service stays up."""

from __future__ import annotations

import copy
import json

import pytest

from tests.api.conftest import AUTH
from tests.api.payload import score_body

# the world trains and logs models: MLflow's type-hint and FutureWarnings are not ours
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*")


@pytest.fixture(scope="module")
def good(world, batch_scores) -> dict:
    eid = sorted(e for e, r in batch_scores.items() if r["segment"] == "smb")[0]
    return score_body(world.engine, "conversion", eid, world.as_of)


def _without(body: dict, key: str) -> dict:
    b = copy.deepcopy(body)
    del b[key]
    return b


def _event(body: dict, **change) -> dict:
    b = copy.deepcopy(body)
    b["events"][0].update(change)
    return b


def _drop_event_key(body: dict, key: str) -> dict:
    b = copy.deepcopy(body)
    del b["events"][0][key]
    return b


CASES = [
    # (id, body builder, status, words the message must contain)
    ("missing task", lambda g: _without(g, "task"), 422, ["task", "Field required"]),
    ("missing entity", lambda g: _without(g, "entity_id"), 422, ["entity_id", "Field required"]),
    ("missing occurred_at", lambda g: _drop_event_key(g, "occurred_at"), 422, ["events.0.occurred_at"]),
    ("event without anyone", lambda g: _event(g, contact_id=None, account_id=None), 422,
     ["events.0", "contact_id and account_id"]),
    ("value not a number", lambda g: _event(g, value="lots"), 422, ["events.0.value"]),
    ("naive timestamp", lambda g: _event(g, occurred_at="2026-05-01T10:00:00"), 422,
     ["events.0.occurred_at", "timezone"]),
    ("bad timestamp", lambda g: _event(g, occurred_at="31/02/2026"), 422, ["events.0.occurred_at"]),
    ("events not a list", lambda g: {**g, "events": {"a": 1}}, 422, ["events"]),
    ("unknown field", lambda g: {**g, "segment": "smb"}, 422, ["segment", "Extra inputs are not permitted"]),
    ("unknown event field", lambda g: _event(g, ocurred_at="2026-05-01T10:00:00Z"), 422, ["events.0.ocurred_at"]),
    ("unknown task", lambda g: {**g, "task": "upsell"}, 422, ["'upsell'", "known: conversion"]),
    ("unknown entity", lambda g: {**g, "entity_id": "NO-SUCH-ACCOUNT", "events": [], "contacts": [],
                                  "account": None}, 422, ["'NO-SUCH-ACCOUNT'", "no activity"]),
    ("event of another account", lambda g: _event(g, account_id="A-OTHER"), 422,
     ["events.0.account_id", "'A-OTHER'"]),
    ("event in the future", lambda g: _event(g, occurred_at="2999-01-01T00:00:00Z"), 422,
     ["events.0.occurred_at", "future"]),
    ("too many events", lambda g: {**g, "events": [{**g["events"][0], "event_id": f"e{i}"} for i in range(401)]},
     422, ["events", "401", "at most 400"]),
    ("not json", None, 422, ["JSON decode error"]),
]


@pytest.mark.parametrize(("build", "status", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_body(api, good, build, status, words):
    if build is None:
        r = api.post("/v1/score", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    else:
        r = api.post("/v1/score", json=build(good), headers=AUTH)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error", "detail"}
    for w in words:
        assert w in body["detail"], (w, body["detail"])
    ok = api.post("/v1/score", json=good, headers=AUTH)  # the service is still up and right
    assert ok.status_code == 200 and ok.json()["entity_id"] == good["entity_id"]


def test_oversized_body_by_content_length(api, good):
    big = {**good, "events": [{**good["events"][0], "event_id": f"e{i}", "properties": {"pad": "x" * 900}}
                              for i in range(390)]}
    data = json.dumps(big).encode()
    assert len(data) > 300_000
    r = api.post("/v1/score", content=data, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and "300000 bytes" in r.json()["detail"]
    assert api.post("/v1/score", json=good, headers=AUTH).status_code == 200


def test_oversized_body_streamed_without_length(api, good):
    chunk = json.dumps(good).encode()

    def stream():  # chunked transfer: no Content-Length, the size is counted as it arrives
        yield b'{"task": "conversion", "entity_id": "x", "pad": "'
        for _ in range(400_000 // len(chunk) + 2):
            yield b"y" * len(chunk)
        yield b'"}'

    r = api.post("/v1/score", content=stream(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than 300000 bytes" in r.json()["detail"]
    assert api.post("/v1/score", json=good, headers=AUTH).status_code == 200


@pytest.mark.parametrize(("headers", "status", "words"), [
    ({}, 401, "missing Authorization header"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "expected 'Bearer <token>'"),
    ({"Authorization": "Bearer wrong-token"}, 403, "invalid API token"),
], ids=["no token", "not bearer", "wrong token"])
def test_auth(api, good, headers, status, words):
    for method, url, kw in (("POST", "/v1/score", {"json": good}),
                            ("GET", f"/v1/entities/{good['entity_id']}/score", {}),
                            ("GET", f"/v1/accounts/{good['entity_id']}/committee", {})):
        r = api.request(method, url, headers=headers, **kw)
        assert r.status_code == status, (url, r.text)
        assert words in r.json()["detail"]
        if status == 401:
            assert r.headers["WWW-Authenticate"] == "Bearer"
    # an unauthenticated bad body is refused for the token, not validated
    assert api.post("/v1/score", json={}, headers=headers).status_code == status
    assert api.post("/v1/score", json=good, headers=AUTH).status_code == 200


def test_probes_need_no_token(api):
    for url in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert api.get(url).status_code == 200, url


def test_unknown_route_and_method(api):
    r = api.get("/v1/nothing", headers=AUTH)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = api.get("/v1/score", headers=AUTH)
    assert r.status_code == 405


def _without_attributes(body: dict) -> dict:
    b = copy.deepcopy(body)
    b["account"].pop("attributes", None)
    for c in b.get("contacts") or []:
        c.pop("attributes", None)
    return b


@pytest.mark.parametrize("builder", [
    pytest.param(lambda g: _without(g, "account"), id="no account"),
    pytest.param(lambda g: {**g, "account": None}, id="account null"),
    pytest.param(_without_attributes, id="no attributes"),
    pytest.param(lambda g: _without(g, "outcomes"), id="no outcomes"),
])
def test_optional_fields_left_out_still_score(api, good, builder):
    """Issue #9 case 6: a valid body without `account` or `account.attributes` (both optional)
    answered 500. Every optional field left out still gets a score."""
    r = api.post("/v1/score", json=builder(good), headers=AUTH)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert 0.0 <= rec["probability"] <= 1.0 and rec["entity_id"] == good["entity_id"]


def test_no_contacts_is_a_4xx_naming_the_event(api, good):
    """Without `contacts`, an event that names only a contact cannot be placed: 422 naming it."""
    r = api.post("/v1/score", json=_without(good, "contacts"), headers=AUTH)
    assert r.status_code == 422, r.text
    assert "contact_id" in r.json()["detail"] and "not one of the posted contacts" in r.json()["detail"]
