"""Prometheus metrics of one API process (a registry of its own, so apps do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: latency buckets around the 25 ms p99 target
BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    """Requests by route and status, latency, scores by mode, fallbacks, models in use."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("journey_api_requests", "HTTP requests by route template, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("journey_api_request_seconds", "Request latency by route template.",
                                 ["route"], buckets=BUCKETS, registry=r)
        self.scores = Counter("journey_api_scores", "Scores served by POST /v1/score, by task and mode.",
                              ["task", "mode"], registry=r)
        self.fallbacks = Counter("journey_api_fallbacks", "Fallback-ladder steps skipped while scoring, by task.",
                                 ["task"], registry=r)
        self.model_version = Gauge("journey_api_model_version",
                                   "Production version in use per registered model (0: none).",
                                   ["model", "kind"], registry=r)
        self.registry_failures = Gauge("journey_api_registry_refresh_failures",
                                       "Failed registry refreshes since start.", registry=r)
        self.registry_ok = Gauge("journey_api_registry_last_refresh_ok",
                                 "1 when the last registry refresh succeeded.", registry=r)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self, view_status) -> bytes:
        """The exposition text, with the registry view's current versions."""
        self.model_version.clear()
        for name, version in view_status.production.items():
            self.model_version.labels(name, view_status.kinds.get(name) or "none").set(version or 0)
        self.registry_failures.set(view_status.failures)
        self.registry_ok.set(0 if view_status.last_error else 1)
        return generate_latest(self.registry)


__all__ = ["ApiMetrics", "BUCKETS"]
