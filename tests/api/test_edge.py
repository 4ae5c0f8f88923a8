"""The outer ASGI layer on its own: admission control answers 503 at once when full."""

from __future__ import annotations

import asyncio
import json

from journey_ml.api.app import _Edge
from journey_ml.api.metrics import ApiMetrics


def test_scoring_beyond_max_inflight_is_refused_at_once_and_admitted_again_later():
    async def scenario() -> list[int]:
        release = asyncio.Event()

        async def slow_app(scope, receive, send):  # stands in for FastAPI: holds the request
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        metrics = ApiMetrics()
        edge = _Edge(slow_app, max_body=1000, metrics=metrics, max_inflight=2)
        statuses: list[int] = []
        bodies: list[bytes] = []

        async def call(method: str = "POST", path: str = "/v1/score") -> None:
            async def receive():
                return {"type": "http.request", "body": b"{}", "more_body": False}

            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
                elif message.get("body"):
                    bodies.append(message["body"])

            await edge({"type": "http", "method": method, "path": path, "headers": []}, receive, send)

        held = [asyncio.create_task(call()) for _ in range(2)]
        await asyncio.sleep(0)
        await call()  # a third scoring request while two are in progress
        probe = asyncio.create_task(call("GET", "/healthz"))  # never refused (it waits like the others)
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*held, probe)
        await call()  # room again
        return statuses, bodies, metrics

    statuses, bodies, metrics = asyncio.run(scenario())
    assert statuses == [503, 200, 200, 200, 200]
    refused = json.loads(bodies[0])
    assert refused["error"] == "busy" and "2 scoring requests in progress" in refused["detail"]
    text = metrics.render(type("S", (), {"production": {}, "kinds": {}, "failures": 0, "last_error": None})())
    assert b'journey_api_requests_total{method="POST",route="/v1/score",status="503"} 1.0' in text
