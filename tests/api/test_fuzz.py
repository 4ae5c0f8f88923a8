"""A bounded, seeded schemathesis run against the API's own OpenAPI document, over loopback.

Every generated request (valid and invalid bodies, paths, queries) must get an answer that is
not a server error, and every error is the API's JSON ``{error, detail}`` (issue #9, Tests).
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.api.conftest import AUTH, runtime_for

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*",
                                        "ignore::DeprecationWarning", "ignore::pytest.PytestUnraisableExceptionWarning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_url(world, tmp_path_factory):  # noqa: F811 - the shared world fixture
    """The app on a real uvicorn server (the serve command's protocol) on a loopback port."""
    import uvicorn

    from journey_ml.api import create_app
    from journey_ml.api.server import BoundedHeadH11Protocol

    app = create_app(runtime_for(world, tmp_path_factory.mktemp("fuzz"), api_max_events=400,
                                 api_max_body_bytes=300_000),
                     registry=world.registry, warm_in_background=False, poll_seconds=0)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=BoundedHeadH11Protocol,
                                           log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:  # pragma: no cover
        raise AssertionError("the API did not start")
    yield url
    server.should_exit = True
    thread.join(timeout=30)


def test_no_server_error_and_errors_are_json(live_url):
    from hypothesis import given
    from hypothesis import strategies as st

    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/score", "/v1/entities/{entity_id}/score", "/readyz"}
    seen: dict[str, int] = {}

    @given(case=st.one_of(*[op.as_strategy() for op in operations]))
    @settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    def check(case):
        response = case.call(headers=AUTH, timeout=60)
        path = case.operation.path
        seen[f"{case.method} {path}"] = seen.get(f"{case.method} {path}", 0) + 1
        assert response.status_code < 500 or (path == "/readyz" and response.status_code == 503), \
            (case.method, path, response.status_code, response.text[:500])
        if response.status_code >= 400 and path != "/readyz":
            body = response.json()
            assert set(body) >= {"error", "detail"} and body["detail"], body

    check()
    assert seen.get("POST /v1/score", 0) >= 30, seen  # the scoring endpoint got its share
