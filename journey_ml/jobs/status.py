"""The status job: what is in production, how it scores, what monitoring last said, when
the deployments ran and run next, and whether the stack answers.

Read-only. Per task and segment: the production version and since when (the alias
ledger), the scoring mode of its newest stored scores, the last monitoring run and its
decisions. With a Prefect API (``PREFECT_API_URL``; ``PREFECT_API_AUTH_STRING`` for a
server with basic auth) the last and next run of each ``journey-*`` deployment, read over
its REST API (the library does not import Prefect). Health: the warehouse (reachable, schema
at head), the registry, the Prefect API.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from journey_ml.jobs._common import SchemaNotCurrent, require_schema, resolve_tasks, utc
from journey_ml.runtime import Runtime

TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@dataclass(frozen=True)
class SegmentStatus:
    task: str
    segment: str
    production_version: int | None
    production_kind: str | None  # xgboost | rules
    production_since: datetime | None  # the ledger's move of @production onto it
    scoring_as_of: datetime | None  # the newest stored scores of this segment
    scoring_modes: dict[str, int] = field(default_factory=dict)  # mode -> rows at that as_of
    monitored_as_of: datetime | None = None
    monitor_status: str | None = None  # ok | error
    drift_detected: bool | None = None
    decisions: tuple[str, ...] = ()  # kinds, in order
    decision_outcomes: tuple[str, ...] = ()

    @property
    def scoring_mode(self) -> str | None:
        """The mode that produced most of the newest scores."""
        return max(self.scoring_modes, key=lambda m: self.scoring_modes[m]) if self.scoring_modes else None


@dataclass(frozen=True)
class DeploymentStatus:
    name: str
    schedule: str | None  # "cron 0 5 * * *", "every 15s", None: on demand / triggered
    paused: bool
    last_run_at: datetime | None
    last_run_state: str | None
    next_run_at: datetime | None


@dataclass(frozen=True)
class Health:
    component: str  # warehouse | registry | prefect
    ok: bool
    detail: str


@dataclass(frozen=True)
class StatusResult:
    segments: tuple[SegmentStatus, ...]
    health: tuple[Health, ...]
    deployments: tuple[DeploymentStatus, ...] | None = None  # None: no Prefect API configured
    prefect_api: str | None = None

    @property
    def healthy(self) -> bool:
        return all(h.ok for h in self.health)


def _t(v: Any) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return utc(v, "time")


def _scoring(engine: sa.Engine, task: str, segment: str) -> tuple[datetime | None, dict[str, int]]:
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT max(as_of) FROM scores WHERE task = :t AND segment = :s"),
                            {"t": task, "s": segment}).scalar()
        if last is None:
            return None, {}
        rows = conn.execute(sa.text("SELECT mode, count(*) FROM scores WHERE task = :t AND segment = :s "
                                    "AND as_of = :a GROUP BY mode ORDER BY mode"),
                            {"t": task, "s": segment, "a": last}).all()
    return _t(last), {m: int(n) for m, n in rows}


def _segment(rt: Runtime, registry, task: str, segment: str) -> SegmentStatus:
    from journey_ml.monitoring import store
    from journey_ml.registry import ledger
    from journey_ml.registry._types import PRODUCTION, model_name

    version = kind = since = None
    if registry is not None:
        prod = registry.production(task, segment)
        if prod is not None:
            version, kind = prod.version, prod.kind
            move = ledger.last_move_to(rt.engine, model_name(task, segment), PRODUCTION, prod.version)
            since = _t(move.at) if move is not None else _t(prod.created_at)
    scored_as_of, modes = _scoring(rt.engine, task, segment)
    runs = store.runs(rt.engine, task, segment, limit=1)
    run = runs[0] if runs else None
    return SegmentStatus(task, segment, version, kind, since, scored_as_of, modes,
                         monitored_as_of=_t(run.as_of) if run else None, monitor_status=run.status if run else None,
                         drift_detected=run.drift_detected if run else None,
                         decisions=tuple(d.kind for d in run.decisions) if run else (),
                         decision_outcomes=tuple(d.outcome or "" for d in run.decisions) if run else ())


def _segments_of(rt: Runtime, task: str) -> list[str]:
    """The configured segments of a task and any other segment with scores or monitoring."""
    from journey_ml.segments import candidate_segments

    names = candidate_segments(rt.config, task)
    with rt.engine.connect() as conn:
        for q in ("SELECT DISTINCT segment FROM scores WHERE task = :t",
                  "SELECT DISTINCT segment FROM monitor_runs WHERE task = :t"):
            names += sorted(s for (s,) in conn.execute(sa.text(q), {"t": task}) if s)
    return list(dict.fromkeys(names))


def _prefect_client(api_url: str, timeout: float):
    import httpx

    headers = {}
    auth = os.environ.get("PREFECT_API_AUTH_STRING")
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    key = os.environ.get("PREFECT_API_KEY")
    if key and not auth:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=timeout)


def _schedule_text(dep: dict) -> str | None:
    parts = []
    for s in dep.get("schedules") or []:
        sch = s.get("schedule") or {}
        if sch.get("cron"):
            parts.append(f"cron {sch['cron']} {sch.get('timezone') or ''}".strip())
        elif sch.get("interval") is not None:
            parts.append(f"every {float(sch['interval']):g}s")
        elif sch.get("rrule"):
            parts.append(f"rrule {sch['rrule']}")
    return ", ".join(parts) or None


def prefect_deployments(api_url: str, timeout: float = 10) -> tuple[DeploymentStatus, ...]:
    """Each ``journey-*`` deployment: schedule, last finished/started run, next scheduled run.
    Raises httpx.HTTPError when the API does not answer."""
    out = []
    with _prefect_client(api_url, timeout) as c:
        r = c.post("/deployments/filter", json={"deployments": {"name": {"like_": "journey-"}}, "limit": 200})
        r.raise_for_status()
        for dep in sorted(r.json(), key=lambda d: d["name"]):
            if not dep["name"].startswith("journey-"):
                continue
            by_dep = {"deployments": {"id": {"any_": [dep["id"]]}}}
            last = c.post("/flow_runs/filter", json={**by_dep, "flow_runs": {"start_time": {"is_null_": False}},
                                                     "sort": "START_TIME_DESC", "limit": 1})
            last.raise_for_status()
            nxt = c.post("/flow_runs/filter", json={**by_dep, "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
                                                    "sort": "EXPECTED_START_TIME_ASC", "limit": 1})
            nxt.raise_for_status()
            lr = (last.json() or [None])[0]
            nr = (nxt.json() or [None])[0]
            out.append(DeploymentStatus(
                name=dep["name"], schedule=_schedule_text(dep), paused=bool(dep.get("paused")),
                last_run_at=_t((lr or {}).get("start_time")), last_run_state=(lr or {}).get("state_type"),
                next_run_at=_t((nr or {}).get("expected_start_time") or (nr or {}).get("next_scheduled_start_time"))))
    return tuple(out)


def _redacted(url: str) -> str:
    """A URL without its credentials."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a database URL
        from urllib.parse import urlsplit

        p = urlsplit(url)
        return p._replace(netloc=p.hostname + (f":{p.port}" if p.port else "")).geturl() if p.hostname else url


def _probe_tracking_server(uri: str, timeout: float = 5) -> None:
    """Fail fast on an MLflow server that does not answer (its client retries for minutes)."""
    if not uri.startswith(("http://", "https://")):
        return
    import httpx

    httpx.get(uri.rstrip("/") + "/health", timeout=timeout).raise_for_status()


def _warehouse_health(rt: Runtime) -> Health:
    """Reachable, and its schema at the revision this journey-ml needs."""
    where = _redacted(rt.settings.warehouse_url)
    try:
        rev = require_schema(rt.engine)
        return Health("warehouse", True, f"{where} (schema {rev})")
    except SchemaNotCurrent as e:
        return Health("warehouse", False, str(e))
    except Exception as e:  # noqa: BLE001 - unreachable: reported, not raised
        return Health("warehouse", False, f"{where}: {type(e).__name__}: {str(e).splitlines()[0]}")


def _registry_health(rt: Runtime) -> tuple[Health, Any]:
    """The tracking server answers and lists the registered models; (health, registry or None)."""
    uri = _redacted(rt.settings.tracking_uri)
    try:
        _probe_tracking_server(rt.settings.tracking_uri)
        registry = rt.registry
        n = len(registry.list_models())
        return Health("registry", True, f"{uri} ({n} registered models)"), registry
    except Exception as e:  # noqa: BLE001
        return Health("registry", False, f"{uri}: {type(e).__name__}: {str(e).splitlines()[0]}"), None


def _prefect_health(api: str) -> tuple[Health, tuple[DeploymentStatus, ...] | None]:
    """The Prefect API answers (with the configured credentials); (health, deployments or None)."""
    try:
        deployments = prefect_deployments(api)
        return Health("prefect", True, f"{_redacted(api)} ({len(deployments)} journey deployments)"), deployments
    except Exception as e:  # noqa: BLE001
        return Health("prefect", False, f"{_redacted(api)}: {type(e).__name__}: {str(e).splitlines()[0]}"), None


def _salt_health(rt: Runtime) -> Health:
    """The PII salt: required on a PostgreSQL warehouse (never shown)."""
    from journey_ml.settings import MissingSecret

    try:
        rt.settings.pii_salt_value()
    except MissingSecret as e:
        return Health("pii salt", False, str(e))
    return Health("pii salt", True, "the development salt (embedded warehouse)" if rt.settings.uses_dev_salt
                  else "set")


def startup_checks(rt: Runtime, prefect_api_url: str | None = None) -> tuple[Health, ...]:
    """What a long-running worker (``python -m flows.serve``) needs before it serves
    anything: the PII salt on a PostgreSQL warehouse, the warehouse reachable at the current
    schema, the tracking server answering, and the Prefect API (``prefect_api_url``, default
    ``PREFECT_API_URL``) answering when one is configured. Each check is one `Health`, the
    same ones `run_status` reports; nothing raises."""
    checks = [_salt_health(rt), _warehouse_health(rt)]
    if checks[-1].ok:  # the registry keeps its alias ledger in the warehouse
        checks.append(_registry_health(rt)[0])
    api = prefect_api_url if prefect_api_url is not None else os.environ.get("PREFECT_API_URL")
    if api:
        checks.append(_prefect_health(api)[0])
    return tuple(checks)


def run_status(rt: Runtime, tasks: tuple[str, ...] = (), prefect_api_url: str | None = None) -> StatusResult:
    """The status of every task (or ``tasks``). ``prefect_api_url`` defaults to
    ``PREFECT_API_URL``; without one, deployments are None. A component that does not
    answer is reported unhealthy (with why), never raised; SchemaNotCurrent and an
    unreachable warehouse are health entries too, and then no segment is listed."""
    health = [_warehouse_health(rt)]
    warehouse_ok = health[0].ok
    registry = None
    if warehouse_ok:
        h, registry = _registry_health(rt)
        health.append(h)

    api = prefect_api_url if prefect_api_url is not None else os.environ.get("PREFECT_API_URL")
    deployments = None
    if api:
        h, deployments = _prefect_health(api)
        health.append(h)

    segments: list[SegmentStatus] = []
    if warehouse_ok:
        for task in resolve_tasks(rt.config, tasks):
            segments += [_segment(rt, registry, task, s) for s in _segments_of(rt, task)]
    return StatusResult(tuple(segments), tuple(health), deployments, _redacted(api) if api else None)
