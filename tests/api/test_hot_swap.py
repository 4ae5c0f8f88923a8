"""Hot-swap: the API follows @production moves after a poll; a registry outage keeps the
last known good models; the registry is not asked per request."""

from __future__ import annotations

import threading

import pytest

from journey_ml.scoring.ladder import UnreachableRegistry
from tests.api.conftest import AUTH, TestClient, runtime_for
from tests.api.payload import score_body

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*")


class CountingRegistry:
    """The real registry, counting the questions it is asked (and able to go down)."""

    def __init__(self, registry):
        self.registry = registry
        self.tracking_uri = registry.tracking_uri
        self.calls: dict[str, int] = {}
        self.down: Exception | None = None
        self.lock = threading.Lock()

    def __getattr__(self, name):
        fn = getattr(self.registry, name)

        def call(*args, **kwargs):
            with self.lock:
                self.calls[name] = self.calls.get(name, 0) + 1
            if self.down is not None:
                raise self.down
            return fn(*args, **kwargs)
        return call


@pytest.fixture
def counted(world, tmp_path):
    reg = CountingRegistry(world.registry)
    app = create_app_for(world, tmp_path, reg)
    with TestClient(app) as client:
        yield client, reg, app.state.service.view


def create_app_for(world, tmp_path, registry, **kw):
    from journey_ml.api import create_app

    return create_app(runtime_for(world, tmp_path), registry=registry, warm_in_background=False,
                      poll_seconds=kw.pop("poll_seconds", 0), **kw)


def _smb_entity(batch_scores) -> str:
    return sorted(e for e, r in batch_scores.items() if r["segment"] == "smb")[0]


def test_promotion_is_served_after_a_poll_and_rollback_too(counted, world, batch_scores):
    client, reg, view = counted
    body = score_body(world.engine, "conversion", _smb_entity(batch_scores), world.as_of)
    before = client.post("/v1/score", json=body, headers=AUTH).json()
    assert (before["mode"], before["model_version"]) == ("segment_model", 1)
    rules = world.registry.find_version("conversion", "smb", {"journey.rules_hash": None})
    assert rules is not None and rules.version != 1
    world.registry.promote("conversion", "smb", rules.version, reason="test: monitoring engaged rules",
                           action="fallback")
    try:
        stale = client.post("/v1/score", json=body, headers=AUTH).json()
        assert stale["model_version"] == 1  # no registry call per request: unchanged until the poll
        assert view.refresh()
        after = client.post("/v1/score", json=body, headers=AUTH).json()
        assert (after["mode"], after["model_name"], after["model_version"]) == \
            ("rules_model", "journey-conversion-smb", rules.version)
        assert "fallback engaged" in after["mode_reason"]
        ready = client.get("/readyz").json()["tasks"]["conversion"]["smb"]
        assert (ready["version"], ready["kind"], ready["loaded"]) == (rules.version, "rules", True)
        assert (f'journey_api_model_version{{kind="rules",model="journey-conversion-smb"}} {rules.version}.0'
                in client.get("/metrics").text)
    finally:
        world.registry.rollback("conversion", "smb", to_version=1, reason="test: restore")
    assert view.refresh()
    back = client.post("/v1/score", json=body, headers=AUTH).json()
    assert (back["mode"], back["model_version"], back["probability"]) == \
        ("segment_model", 1, before["probability"])


def test_requests_do_not_ask_the_registry(counted, world, batch_scores):
    client, reg, _ = counted
    body = score_body(world.engine, "conversion", _smb_entity(batch_scores), world.as_of)
    client.post("/v1/score", json=body, headers=AUTH)
    asked = dict(reg.calls)
    for _ in range(3):
        assert client.post("/v1/score", json=body, headers=AUTH).status_code == 200
    assert reg.calls == asked


def test_registry_outage_keeps_the_last_good_models(counted, world, batch_scores):
    client, reg, view = counted
    eid = _smb_entity(batch_scores)
    body = score_body(world.engine, "conversion", eid, world.as_of)
    reg.down = ConnectionError("mlflow server down")
    assert not view.refresh()
    r = client.post("/v1/score", json=body, headers=AUTH)
    assert r.status_code == 200
    got = r.json()
    assert (got["mode"], got["model_version"]) == ("segment_model", 1)
    assert got["probability"] == pytest.approx(batch_scores[eid]["probability"], abs=1e-9)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "mlflow server down" in ready.json()["registry"]["last_error"]
    assert "journey_api_registry_last_refresh_ok 0.0" in client.get("/metrics").text
    reg.down = None
    assert view.refresh() and client.get("/readyz").json()["registry"]["last_error"] is None


def test_unreachable_registry_from_the_start_scores_with_builtin_rules(world, batch_scores, tmp_path):
    app = create_app_for(world, tmp_path, UnreachableRegistry(ConnectionError("no route to host")))
    with TestClient(app) as client:
        body = score_body(world.engine, "conversion", _smb_entity(batch_scores), world.as_of)
        r = client.post("/v1/score", json=body, headers=AUTH)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["mode"] == "builtin_rules" and got["model_version"] is None
        assert "registry unreachable" in got["mode_reason"]
        ready = client.get("/readyz").json()
        assert "no route to host" in ready["registry"]["last_error"]
        assert 'journey_api_fallbacks_total{task="conversion"}' in client.get("/metrics").text


def test_the_poller_refreshes_in_the_background(world, tmp_path):
    reg = CountingRegistry(world.registry)
    app = create_app_for(world, tmp_path, reg, poll_seconds=0.05)
    with TestClient(app) as client:
        view = app.state.service.view
        start = view.refreshes
        done = threading.Event()
        for _ in range(600):  # wait (at most ~60 s on a busy machine) for two more polls
            if view.refreshes >= start + 2:
                done.set()
                break
            done.wait(0.1)
        assert done.is_set(), "the poller never refreshed the registry view"
        assert client.get("/readyz").status_code == 200


def test_no_token_configured_refuses_to_start(world, tmp_path):
    from journey_ml.api import create_app

    rt = runtime_for(world, tmp_path)
    rt.settings.api_token = None
    app = create_app(rt, registry=world.registry, warm_in_background=False, poll_seconds=0)
    with pytest.raises(RuntimeError, match="JOURNEY_API_TOKEN is not set"), TestClient(app):
        pass
    open_app = create_app(rt, registry=world.registry, warm_in_background=False, poll_seconds=0,
                          require_auth=False)
    with TestClient(open_app) as client:
        body = {"task": "conversion", "entity_id": "x"}
        r = client.post("/v1/score", json=body)
        assert r.status_code == 422 and "no activity" in r.json()["detail"]  # reached the service: no 401
