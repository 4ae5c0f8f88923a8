"""The FastAPI application: `create_app()` builds it; nothing happens at import time.

Resources (warehouse engine, registry view, model cache, the registry poller) are built
when the app starts (its lifespan) and closed when it stops.
Probes (`/healthz`, `/readyz`) and `/metrics` are open; `/v1/*` needs the bearer token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import AwareDatetime
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from journey_ml.api.auth import AuthProblem, check_bearer
from journey_ml.api.metrics import ApiMetrics
from journey_ml.api.models import ErrorOut, ScoreOut, ScoreRequest
from journey_ml.api.service import ApiLimits, RequestProblem, ScoringService
from journey_ml.scoring.ladder import one_line

log = logging.getLogger(__name__)

_STATUS_ERRORS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                  405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
                  422: "validation_error", 503: "unavailable"}


def _error(status: int, detail: str, error: str | None = None, errors: list | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": error or _STATUS_ERRORS.get(status, "error"), "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple | list) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


class _TooLarge(StarletteHTTPException):
    pass


class _Edge:
    """Outer ASGI layer: body-size limit (Content-Length and streamed bytes), admission
    control for scoring (more than ``max_inflight`` POST /v1/score at once in this process:
    503 at once instead of an unbounded queue) and metrics."""

    def __init__(self, app, max_body: int, metrics: ApiMetrics, max_inflight: int = 0):
        self.app = app
        self.max_body = max_body
        self.metrics = metrics
        self.max_inflight = max_inflight
        self.inflight = 0  # the event loop is single-threaded: no lock needed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.max_inflight and scope.get("method") == "POST" and scope.get("path") == "/v1/score":
            if self.inflight >= self.max_inflight:
                self.metrics.observe("/v1/score", "POST", 503, 0.0)
                resp = _error(503, f"busy: {self.inflight} scoring requests in progress in this process "
                              "(JOURNEY_API_MAX_INFLIGHT); retry later", "busy", headers={"Retry-After": "1"})
                return await resp(scope, receive, send)
            self.inflight += 1
            try:
                return await self._handle(scope, receive, send)
            finally:
                self.inflight -= 1
        return await self._handle(scope, receive, send)

    async def _handle(self, scope, receive, send):
        t0 = time.perf_counter()
        state = {"status": 500, "started": False}
        too_large = f"request body larger than {self.max_body} bytes (JOURNEY_API_MAX_BODY_BYTES)"

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
            await send(message)

        try:
            length = dict(scope.get("headers") or ()).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                bad = not length.isdigit()
                resp = _error(400 if bad else 413, "invalid Content-Length header" if bad else too_large)
                return await resp(scope, receive, tracked_send)
            seen = 0

            async def limited_receive():
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > self.max_body:
                        raise _TooLarge(413, too_large)
                return message

            try:
                await self.app(scope, limited_receive, tracked_send)
            except _TooLarge:
                if not state["started"]:
                    await _error(413, too_large)(scope, receive, tracked_send)
        finally:
            route = scope.get("route")
            self.metrics.observe(getattr(route, "path", "unmatched"), scope.get("method", ""),
                                 state["status"], time.perf_counter() - t0)


def create_app(runtime=None, *, registry=None, require_auth: bool | None = None,
               warm_in_background: bool = True, poll_seconds: float | None = None) -> FastAPI:
    """The scoring API.

    ``runtime`` (journey_ml.runtime.Runtime; default: loaded from the environment now, so
    a bad configuration fails here) gives settings, configuration and warehouse;
    ``registry`` defaults to the runtime's (an unreachable one degrades scoring to built-in
    rules). With ``require_auth`` (default: on unless JOURNEY_API_NO_AUTH) a missing
    JOURNEY_API_TOKEN makes startup fail. ``warm_in_background`` loads the production
    models after the server starts (/readyz says 503 until done); False loads them before
    the first request. ``poll_seconds`` overrides JOURNEY_API_REGISTRY_POLL_SECONDS (0: no
    poller; call ``app.state.service.view.refresh()``).
    """
    from journey_ml.runtime import Runtime

    rt = runtime if runtime is not None else Runtime.load()
    s = rt.settings
    auth = (not s.api_no_auth) if require_auth is None else require_auth
    metrics = ApiMetrics()
    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from journey_ml.api.registry_view import Poller, RegistryView
        from journey_ml.scoring.ladder import ModelCache, open_registry

        reg = registry if registry is not None else open_registry(lambda: rt.registry)
        if auth and s.api_token is None:
            raise RuntimeError("JOURNEY_API_TOKEN is not set: set it, or start without authentication "
                               "explicitly (journey-ml serve --no-auth)")
        if not auth:
            log.warning("API AUTHENTICATION IS OFF: anyone who can reach this port can read scores")
        cache = ModelCache(threads=1)  # one posted entity per request: one thread (more only spin)
        view = RegistryView(reg, cache)
        service = ScoringService(rt.engine, rt.config, view, cache, salt=rt.salt,
                                 limits=ApiLimits(max_events=s.api_max_events))
        # scoring is CPU work under the GIL: more threads than JOURNEY_API_SCORING_THREADS only
        # take turns on it (at 70 req/s, 40 threads cost ~2x the CPU per request of one); the
        # requests wait on the event loop, in order, meanwhile
        scoring = ThreadPoolExecutor(s.api_scoring_threads, thread_name_prefix="scoring")
        holder.update(service=service, token=s.api_token if auth else None, scoring=scoring)
        poller = Poller(view, s.api_registry_poll_seconds if poll_seconds is None else poll_seconds)
        if warm_in_background:
            def warm_then_poll() -> None:
                service.warm()
                poller.start()
            threading.Thread(target=warm_then_poll, name="registry-warm", daemon=True).start()
        else:
            service.warm()
            poller.start()
        app.state.service = service
        app.state.poller = poller
        try:
            yield
        finally:
            poller.stop()
            scoring.shutdown(wait=False, cancel_futures=True)

    from fastapi_offline import FastAPIOffline

    # /docs and /redoc assets come from the package, not a CDN: the docs work offline
    app = FastAPIOffline(title="journey-ml scoring API", version="1",
                         description="Scores, reasons and next-best actions from the production models.",
                         lifespan=lifespan, favicon_url=None)
    _document_tasks(app, list(rt.config.tasks))
    app.add_middleware(_Edge, max_body=s.api_max_body_bytes, metrics=metrics, max_inflight=s.api_max_inflight)
    bearer = HTTPBearer(auto_error=False, description="JOURNEY_API_TOKEN")

    def svc() -> ScoringService:
        return holder["service"]

    async def authorised(request: Request, _: Any = Depends(bearer)) -> None:  # noqa: B008 - FastAPI idiom
        # async: a token comparison needs no thread of its own
        check_bearer(request.headers.get("authorization"), holder.get("token"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return _error(422, detail, "validation_error", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestProblem)
    async def _problem(request: Request, exc: RequestProblem) -> JSONResponse:
        return _error(exc.status, exc.message, exc.error)

    @app.exception_handler(AuthProblem)
    async def _auth(request: Request, exc: AuthProblem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.message, headers=headers)

    @app.exception_handler(SQLAlchemyError)
    async def _warehouse(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.warning("warehouse error on %s: %s", request.url.path, one_line(exc))
        return _error(503, f"warehouse unavailable ({one_line(exc)})", "warehouse_unavailable")

    @app.exception_handler(TimeoutError)
    async def _busy(request: Request, exc: TimeoutError) -> JSONResponse:
        return _error(503, f"busy ({exc}); retry later", "busy", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__})", "internal_error")

    errors = {s: {"model": ErrorOut} for s in (401, 403, 404, 413, 422)}

    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], responses={503: {"description": "not ready, with reasons"}})
    def readyz() -> JSONResponse:
        """Warehouse reachable and every task's models loaded (or its fallback known)."""
        ready, details = svc().readiness()
        return JSONResponse(details, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["probes"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus metrics of this process."""
        return Response(metrics.render(svc().view.status()), media_type="text/plain; version=0.0.4")

    @app.post("/v1/score", tags=["scores"], response_model=ScoreOut, responses=errors,
              dependencies=[Depends(authorised)])
    async def score(body: ScoreRequest) -> dict[str, Any]:
        """Score one entity from its posted rows with the batch feature code and production models."""
        result = await asyncio.get_running_loop().run_in_executor(holder["scoring"], svc().score, body)
        rec = result.record
        metrics.scores.labels(rec["task"], rec["mode"]).inc()
        if result.fallback_steps:
            metrics.fallbacks.labels(rec["task"]).inc(len(result.fallback_steps))
        return rec

    @app.get("/v1/entities/{entity_id}/score", tags=["scores"], response_model=ScoreOut, responses=errors,
             dependencies=[Depends(authorised)])
    def stored_score(entity_id: str, task: Annotated[str | None, Query(description="Task (default: any)")] = None
                     ) -> dict[str, Any]:
        """The latest stored score of an entity (from the batch flow)."""
        return svc().latest_score(entity_id, task)

    @app.get("/v1/accounts/{account_id}/committee", tags=["accounts"], responses=errors,
             dependencies=[Depends(authorised)])
    def committee(account_id: str, as_of: Annotated[AwareDatetime | None, Query()] = None) -> dict[str, Any]:
        """The buying committee of an account: roles engaged, key roles missing, latest scores."""
        return svc().committee(account_id, as_of)

    return app


def _document_tasks(app: FastAPI, tasks: list[str]) -> None:
    """List the configured tasks as an enum wherever the API takes a task (the schema only:
    the service still answers an unknown task with 422 naming the configured ones)."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default()
        for name, model in (schema.get("components", {}).get("schemas") or {}).items():
            prop = (model.get("properties") or {}).get("task")
            if prop is not None and name.startswith("Score"):
                prop.pop("anyOf", None)
                prop.update(type="string", enum=tasks)
        for path in (schema.get("paths") or {}).values():
            for op in path.values():
                for p in op.get("parameters") or []:
                    if p.get("name") == "task":
                        p["schema"] = {"anyOf": [{"type": "string", "enum": tasks}, {"type": "null"}],
                                       "title": "Task"}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """uvicorn factory (``journey_ml.api.app:app_from_env``): everything from JOURNEY_*."""
    return create_app()


__all__ = ["create_app", "app_from_env"]
