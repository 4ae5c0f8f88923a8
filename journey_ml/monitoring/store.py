"""Monitoring runs and decisions in the warehouse (tables ``monitor_runs``, ``monitor_decisions``).

A run row holds the typed results of one segment's monitoring as JSON (contract, drift,
performance, report paths); each decision row its kind, reasons, figures and what executing
it did, with the alias-ledger row of the move it caused. Alias moves themselves only ever
go through the registry (and so through the ledger).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from journey_ml.db.models import MonitorDecision, MonitorRun
from journey_ml.monitoring.policy import ACTIONS

_R = MonitorRun.__table__
_D = MonitorDecision.__table__


def jsonable(value: Any) -> Any:
    """``value`` with NaN/inf as None, datetimes as ISO text, tuples as lists (JSON-safe)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return jsonable(value.item())
    return value


@dataclass
class StoredDecision:
    """A decision row, as read back."""

    id: int
    monitor_run_id: int
    task: str
    segment: str
    as_of: datetime
    kind: str
    reasons: list[str]
    figures: dict[str, Any]
    executed: bool
    outcome: str | None
    alias_move_id: int | None
    decided_at: datetime


@dataclass
class StoredRun:
    """A monitor run row, as read back, with its decisions."""

    id: int
    run_key: str
    task: str
    segment: str
    as_of: datetime
    model_name: str | None
    model_version: int | None
    model_kind: str | None
    status: str
    drift_detected: bool
    matured_as_of: datetime | None
    contract: dict | None
    drift: dict | None
    performance: dict | None
    reports: dict | None
    error: str | None
    created_at: datetime
    decisions: list[StoredDecision] = field(default_factory=list)
    estimated: dict | None = None
    estimation_error: float | None = None


def save_run(engine: Engine, *, run_key: str, task: str, segment: str, as_of: datetime,
             model_name: str | None, model_version: int | None, model_kind: str | None, status: str,
             drift_detected: bool, matured_as_of: datetime | None, contract: dict | None, drift: dict | None,
             performance: dict | None, reports: dict | None, error: str | None, created_at: datetime,
             estimated: dict | None = None) -> int:
    """Insert one monitor run row; returns its id."""
    values = dict(estimated=jsonable(estimated), run_key=run_key, task=task, segment=segment, as_of=as_of, model_name=model_name,
                  model_version=model_version, model_kind=model_kind, status=status,
                  drift_detected=bool(drift_detected), matured_as_of=matured_as_of, contract=jsonable(contract),
                  drift=jsonable(drift), performance=jsonable(performance), reports=jsonable(reports),
                  error=error, created_at=created_at)
    with engine.begin() as conn:
        return int(conn.execute(sa.insert(_R).values(**values).returning(_R.c.id)).scalar_one())


def update_reports(engine: Engine, run_id: int, reports: dict) -> None:
    """Replace a run's report paths (they are completed after its decisions are executed)."""
    with engine.begin() as conn:
        conn.execute(sa.update(_R).where(_R.c.id == run_id).values(reports=jsonable(reports)))


def record_estimation_error(engine: Engine, task: str, segment: str, as_of: datetime, model_name: str | None,
                            model_version: int | None, realised_auc: float) -> dict | None:
    """Once the labels of ``as_of`` have matured: estimated minus realised AUC on that date's run.

    Returns {estimated_roc_auc, realised_roc_auc, error} or None when no run of that date and
    version has an estimate.
    """
    q = (sa.select(_R.c.id, _R.c.estimated).where(_R.c.task == task, _R.c.segment == segment, _R.c.as_of == as_of,
                                                  _R.c.model_name == model_name, _R.c.model_version == model_version)
         .order_by(_R.c.id.desc()))
    with engine.begin() as conn:
        for rid, est in conn.execute(q).all():
            auc = (est or {}).get("roc_auc")
            if auc is None:
                continue
            err = float(auc) - float(realised_auc)
            conn.execute(sa.update(_R).where(_R.c.id == rid).values(estimation_error=err))
            return {"as_of": as_of.isoformat(), "estimated_roc_auc": float(auc), "realised_roc_auc": float(realised_auc),
                    "error": err}
    return None


def estimate_streak(engine: Engine, task: str, segment: str, model_name: str | None, version: int | None,
                    before: datetime, floor: float) -> int:
    """Consecutive runs before ``before`` of this version whose estimated AUC was below ``floor``."""
    def low(est) -> bool:
        auc = (est or {}).get("roc_auc")
        return auc is not None and auc < floor

    return _streak(engine, task, segment, model_name, version, before, _R.c.estimated, low)


def save_decision(engine: Engine, *, monitor_run_id: int, task: str, segment: str, as_of: datetime, kind: str,
                  reasons: list[str], figures: dict | None, decided_at: datetime) -> int:
    """Insert one decision (not executed yet); returns its id."""
    with engine.begin() as conn:
        return int(conn.execute(sa.insert(_D).values(
            monitor_run_id=monitor_run_id, task=task, segment=segment, as_of=as_of, kind=kind,
            reasons=list(reasons), figures=jsonable(figures or {}), executed=False, decided_at=decided_at,
        ).returning(_D.c.id)).scalar_one())


def mark_executed(engine: Engine, decision_id: int, *, executed: bool, outcome: str,
                  alias_move_id: int | None = None) -> None:
    """Record what executing a decision did (or why it was not executed)."""
    with engine.begin() as conn:
        conn.execute(sa.update(_D).where(_D.c.id == decision_id).values(
            executed=executed, outcome=outcome, alias_move_id=alias_move_id))


def _decision(m) -> StoredDecision:
    return StoredDecision(id=m["id"], monitor_run_id=m["monitor_run_id"], task=m["task"], segment=m["segment"],
                          as_of=m["as_of"], kind=m["kind"], reasons=list(m["reasons"] or []),
                          figures=dict(m["figures"] or {}), executed=bool(m["executed"]), outcome=m["outcome"],
                          alias_move_id=m["alias_move_id"], decided_at=m["decided_at"])


def runs(engine: Engine, task: str | None = None, segment: str | None = None, *,
         before: datetime | None = None, limit: int | None = None) -> list[StoredRun]:
    """Monitor runs with their decisions, newest first (as_of, then id)."""
    q = sa.select(_R)
    if task is not None:
        q = q.where(_R.c.task == task)
    if segment is not None:
        q = q.where(_R.c.segment == segment)
    if before is not None:
        q = q.where(_R.c.as_of < before)
    q = q.order_by(_R.c.as_of.desc(), _R.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as conn:
        rows = [r._mapping for r in conn.execute(q)]
        ids = [r["id"] for r in rows]
        decs: dict[int, list[StoredDecision]] = {}
        if ids:
            for d in conn.execute(sa.select(_D).where(_D.c.monitor_run_id.in_(ids)).order_by(_D.c.id)):
                sd = _decision(d._mapping)
                decs.setdefault(sd.monitor_run_id, []).append(sd)
    return [StoredRun(**{k: r[k] for k in StoredRun.__dataclass_fields__ if k != "decisions"},
                      decisions=decs.get(r["id"], [])) for r in rows]


def decisions(engine: Engine, task: str | None = None, segment: str | None = None) -> list[StoredDecision]:
    """Every stored decision, oldest first."""
    q = sa.select(_D)
    if task is not None:
        q = q.where(_D.c.task == task)
    if segment is not None:
        q = q.where(_D.c.segment == segment)
    with engine.connect() as conn:
        return [_decision(r._mapping) for r in conn.execute(q.order_by(_D.c.decided_at, _D.c.id))]


def last_action_at(engine: Engine, task: str, segment: str, before: datetime) -> datetime | None:
    """When the newest executed action (retrain, fallback, rollback, restore) was decided."""
    q = (sa.select(sa.func.max(_D.c.decided_at))
         .where(_D.c.task == task, _D.c.segment == segment, _D.c.executed.is_(True),
                _D.c.kind.in_(sorted(ACTIONS)), _D.c.decided_at <= before))
    with engine.connect() as conn:
        at = conn.execute(q).scalar_one_or_none()
    if isinstance(at, str):  # SQLite aggregates bypass the column type
        at = datetime.fromisoformat(at)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at


def drift_streak(engine: Engine, task: str, segment: str, model_name: str | None, version: int | None,
                 before: datetime) -> int:
    """Consecutive runs before ``before`` of this model version that saw drift (newest back)."""
    return _streak(engine, task, segment, model_name, version, before, _R.c.drift_detected, bool)


def _streak(engine: Engine, task: str, segment: str, model_name: str | None, version: int | None,
            before: datetime, column, holds) -> int:
    """Consecutive ok runs before ``before`` of this version where ``holds(column value)``."""
    q = (sa.select(column, _R.c.model_name, _R.c.model_version)
         .where(_R.c.task == task, _R.c.segment == segment, _R.c.as_of < before, _R.c.status == "ok")
         .order_by(_R.c.as_of.desc(), _R.c.id.desc()))
    n = 0
    with engine.connect() as conn:
        for value, name, v in conn.execute(q):
            if name != model_name or v != version or not holds(value):
                break
            n += 1
    return n


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a segment's timeline: an alias move, a monitoring run or a decision."""

    at: datetime
    task: str | None
    segment: str | None
    source: str  # ledger | monitor | decision
    event: str  # promote / rollback / fallback / restore / stage; drift / checked; decision kind
    version: str  # "v2 -> v3" for moves, "v3" for runs and decisions
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def _run_detail(r: StoredRun) -> str:
    parts = []
    d = r.drift or {}
    if r.error:
        parts.append(r.error)
    elif d:
        k, n = len(d.get('drifted_columns') or []), d.get('tested_columns') or 0
        parts.append(f"{k} of {n} columns drifted ({100 * k / n:.1f}%)" if n else "no column tested")
    p = (r.performance or {}).get("production") or {}
    if p.get("roc_auc") is not None:
        parts.append(f"AUC {p['roc_auc']:.3f}, accuracy {p.get('accuracy') or 0:.3f} on {p.get('n')} matured labels")
    elif p:
        parts.append(p.get("reason") or "performance not judged")
    return "; ".join(parts)


def timeline(engine: Engine, task: str | None = None, segment: str | None = None) -> list[TimelineEntry]:
    """Alias moves, monitoring runs and their decisions on one timeline, newest first."""
    from journey_ml.registry import ledger, split_model_name

    out = []
    for m in ledger.moves(engine, task=task, segment=segment):
        t, s = split_model_name(m.model_name)
        if segment is not None and s != segment:
            continue
        moved = f"v{m.from_version} -> v{m.to_version}" if m.from_version else f"-> v{m.to_version}"
        out.append(TimelineEntry(m.at, t, s, "ledger", f"{m.action} @{m.alias}", moved, f"{m.reason} ({m.actor})"))
    for r in runs(engine, task, segment):
        out.append(TimelineEntry(r.created_at, r.task, r.segment, "monitor",
                                 "drift" if r.drift_detected else ("error" if r.error else "checked"),
                                 f"v{r.model_version}", f"as of {r.as_of:%Y-%m-%d}: {_run_detail(r)}"))
        for d in r.decisions:
            if d.kind == "ok":
                continue
            out.append(TimelineEntry(d.decided_at, d.task, d.segment, "decision", d.kind, f"v{r.model_version}",
                                     "; ".join(d.reasons) + (f" -> {d.outcome}" if d.outcome else "")))
    order = {"ledger": 0, "decision": 1, "monitor": 2}  # same instant: the run, its decisions, then moves
    return sorted(out, key=lambda e: (e.at, -order[e.source]), reverse=True)


__all__ = ["TimelineEntry", "timeline", "StoredRun", "StoredDecision", "save_run", "update_reports", "save_decision", "mark_executed", "runs", "decisions",
           "last_action_at", "drift_streak", "estimate_streak", "record_estimation_error", "jsonable"]
