"""The API's documentation works offline and names the configured tasks (issue #9, cases 22, 24)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*")

_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_external_host(api, page):
    r = api.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    refs = [a or b for a, b in _URL.findall(r.text)]
    assert refs, r.text[:500]
    external = [u for u in refs if re.match(r"^(https?:)?//", u)]
    assert not external, f"{page} loads {external}"
    for u in refs:  # every asset it loads is served by the API itself
        got = api.get(u)
        assert got.status_code == 200 and len(got.content) > 0, (u, got.status_code)
    assert "cdn.jsdelivr.net" not in r.text and "unpkg.com" not in r.text


def test_openapi_lists_the_configured_tasks(api, world):
    schema = api.get("/openapi.json").json()
    tasks = list(world.config.tasks)
    assert schema["components"]["schemas"]["ScoreRequest"]["properties"]["task"]["enum"] == tasks
    [param] = [p for p in schema["paths"]["/v1/entities/{entity_id}/score"]["get"]["parameters"]
               if p["name"] == "task"]
    assert {"type": "string", "enum": tasks} in param["schema"]["anyOf"]
    # the schema documents; the service still answers an unknown task with the configured ones
    from tests.api.conftest import AUTH

    r = api.post("/v1/score", json={"task": "nope", "entity_id": "A1"}, headers=AUTH)
    assert r.status_code == 422 and "nope" in r.json()["detail"]
