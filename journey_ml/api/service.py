"""What the API does, without HTTP: score posted rows, read stored scores, readiness.

`ScoringService.score` turns a `ScoreRequest` into warehouse rows with the ingestion's
rules (PII keys hashed or dropped with the same keyed hash, e-mails stored only as a
hash, erased subjects suppressed, stages and default channels from the taxonomy,
duplicates dropped as ingestion drops them) and runs the batch scorer (`compute_scores`)
on them with the shared ModelCache and the cached registry view. The features of the
posted entity are computed from those rows in memory (`features.memory.PostedRows`, the
same families and population rules as the SQL builder, tested equal to it); given a
`ScratchPool`, the service loads the rows into a scratch SQLite warehouse and runs the
SQL instead (the earlier path, kept for comparisons). Batch and API therefore share
every line from the feature families to the next-best action. Errors a client can fix raise `RequestProblem`
(status + message naming the field); a model or registry problem never does: the ladder
degrades and the record says so.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from journey_ml.api.models import ScoreRequest
from journey_ml.api.registry_view import RegistryView, candidate_segments
from journey_ml.api.scratch import ScratchPool
from journey_ml.config import ConfigError, JourneyConfig
from journey_ml.db.models import Account, Contact
from journey_ml.erasure import erased_subjects
from journey_ml.features.memory import PostedRows
from journey_ml.ingest.pii import keyed_hash
from journey_ml.journeys.current import NextStepChains
from journey_ml.registry._types import model_name
from journey_ml.scoring.batch import compute_scores
from journey_ml.scoring.committee import committee_view
from journey_ml.scoring.ladder import GLOBAL, ModelCache, one_line

log = logging.getLogger(__name__)
SOURCE = "api"


class RequestProblem(Exception):
    """A request the service cannot answer as asked: HTTP ``status`` and a message."""

    def __init__(self, status: int, message: str, error: str = "invalid_request"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error


@dataclass
class ApiLimits:
    """Request limits (from Settings)."""

    max_events: int = 5_000
    max_contacts: int = 500
    max_outcomes: int = 500


@dataclass
class ScoreResult:
    """One scored request: the record and what the ladder did (for metrics)."""

    record: dict[str, Any]
    fallback_steps: list[str]
    notes: list[str]


def _pii_policy(config: JourneyConfig) -> tuple[set[str], set[str]]:
    drop = set(config.pii.drop)
    return set(config.pii.hash) - drop, drop


class ScoringService:
    """The API's work, built once per process from the runtime's resources."""

    def __init__(self, engine: Engine, config: JourneyConfig, view: RegistryView, cache: ModelCache, *,
                 salt: str, pool: ScratchPool | None = None, limits: ApiLimits | None = None):
        self.engine = engine
        self.config = config
        self.view = view
        self.cache = cache
        self.salt = salt
        self.pool = pool
        self.limits = limits or ApiLimits()
        self._to_hash, self._to_drop = _pii_policy(config)
        self._warm_lock = threading.Lock()
        self.warmed = False
        self.warm_error: str | None = None
        self.chains = NextStepChains(engine, config)  # next step: the warehouse's chain, not the posted rows'

    # --- startup ----------------------------------------------------------------------------

    def warm(self) -> None:
        """Ask the registry every question the ladder may ask and load the production models."""
        with self._warm_lock:
            try:
                ok = self.view.warm(self.config)
                self.warm_error = None if ok else self.view.last_error
            except Exception as e:  # noqa: BLE001 - readiness reports it; scoring degrades
                self.warm_error = one_line(e)
                log.warning("registry warm-up failed (%s)", self.warm_error)
            today = datetime.now(UTC)
            for task in self.config.tasks:  # the day's next-step chains, so no request waits for a fit
                self.chains.try_chain(task, today)
            self.warmed = True

    # --- scoring ------------------------------------------------------------------------------

    def _task(self, name: str):
        try:
            return self.config.task(name)
        except ConfigError:
            known = ", ".join(sorted(self.config.tasks))
            raise RequestProblem(422, f"task: {name!r} is not a configured task (known: {known})",
                                 "unknown_task") from None

    def score(self, req: ScoreRequest, *, now: datetime | None = None) -> ScoreResult:
        """Score the posted entity as of ``req.as_of`` (default ``now``). Raises RequestProblem."""
        now = now or datetime.now(UTC)
        task = self._task(req.task)
        as_of = (req.as_of or now).astimezone(UTC)
        for name, items, limit in (("events", req.events, self.limits.max_events),
                                   ("contacts", req.contacts, self.limits.max_contacts),
                                   ("outcomes", req.outcomes, self.limits.max_outcomes)):
            if len(items) > limit:
                raise RequestProblem(422, f"{name}: {len(items)} given, at most {limit} per request",
                                     "too_many_items")
        rows = self._rows(req, task.entity, now)
        if self.pool is None:
            batch = compute_scores(PostedRows.of(rows), self.view, self.config, req.task, as_of, scored_at=now,
                                   cache=self.cache)
        else:
            with self.pool.borrow(rows) as scratch:
                batch = compute_scores(scratch, self.view, self.config, req.task, as_of, scored_at=now,
                                       cache=self.cache)
        records = [r for r in batch.records() if r["entity_id"] == req.entity_id]
        if not records:
            raise RequestProblem(422, f"entity {req.entity_id!r} is not in the population of task "
                                 f"{req.task!r} as of {as_of.isoformat()}: "
                                 f"{self._why_not(req, task, rows, as_of)}", "not_in_population")
        rec = dict(records[0]) | self.chains.for_entity(req.task, req.entity_id, rows["events"], as_of)
        rec["as_of"] = rec["as_of"].isoformat()
        rec["scored_at"] = rec["scored_at"].isoformat()
        steps = [s for r in batch.results if req.entity_id in r.index for s in r.skipped]
        return ScoreResult(record=rec, fallback_steps=steps, notes=batch.notes)

    def _props(self, d: dict[str, Any] | None) -> dict[str, Any] | None:
        """A properties/attributes document with the PII policy applied (as ingestion does)."""
        if not d:
            return None
        out = {}
        for k, v in d.items():
            if k in self._to_drop:
                continue
            out[k] = keyed_hash(str(v), self.salt) if (k in self._to_hash and v is not None) else v
        return out or None

    def _erased(self, contact_ids: set[str], account_ids: set[str]) -> set[tuple[str, str]]:
        subjects = {("contact", c) for c in contact_ids} | {("account", a) for a in account_ids}
        with self.engine.connect() as conn:
            return erased_subjects(conn, subjects, self.salt)

    def _rows(self, req: ScoreRequest, entity: str, now: datetime) -> dict[str, list[dict[str, Any]]]:
        eid = req.entity_id
        taxonomy = self.config.taxonomy
        skew = timedelta(minutes=self.config.ingest.max_future_skew_minutes)
        reject_unknown = self.config.ingest.unknown_event_types == "reject"
        contacts: dict[str, dict[str, Any]] = {}
        for i, c in enumerate(req.contacts):
            acc = c.account_id
            if entity == "account":
                if acc is not None and acc != eid:
                    raise RequestProblem(422, f"contacts.{i}.account_id: {acc!r} is not the scored account {eid!r}")
                acc = eid
            elif c.contact_id != eid:
                raise RequestProblem(422, f"contacts.{i}.contact_id: {c.contact_id!r} is not the scored "
                                     f"contact {eid!r} (a contact task takes the contact's own record only)")
            if c.created_at is not None and c.created_at > now + skew:
                raise RequestProblem(422, f"contacts.{i}.created_at is in the future")
            contacts[c.contact_id] = {  # a later row of the same contact wins, as in ingestion
                "contact_id": c.contact_id, "account_id": acc,
                "email_hash": keyed_hash(c.email, self.salt) if c.email else None,
                "role": c.role, "opted_out": bool(c.opted_out), "created_at": c.created_at,
                "attributes": self._props(c.attributes), "source": SOURCE, "updated_at": now}
        account_id = eid if entity == "account" else (contacts[eid]["account_id"] if eid in contacts else None)
        account = None
        if req.account is not None:
            a = req.account
            if a.account_id is not None and account_id is not None and a.account_id != account_id:
                raise RequestProblem(422, f"account.account_id: {a.account_id!r} is not the scored entity's "
                                     f"account {account_id!r}")
            account_id = account_id or a.account_id
            if account_id is None:
                raise RequestProblem(422, "account.account_id: required when the scored contact has no account")
            account = {"account_id": account_id, "name": a.name, "industry": a.industry, "employees": a.employees,
                       "annual_revenue": a.annual_revenue, "country": a.country, "created_at": a.created_at,
                       "attributes": self._props(a.attributes), "source": SOURCE, "updated_at": now}
        events: dict[tuple[str, str], dict[str, Any]] = {}
        for i, e in enumerate(req.events):
            self._check_owner(f"events.{i}", e.contact_id, e.account_id, entity, eid, contacts)
            if e.occurred_at > now + skew:
                raise RequestProblem(422, f"events.{i}.occurred_at: {e.occurred_at.isoformat()} is in the future "
                                     f"(after now + {skew})")
            tax = taxonomy.get(e.event_type)
            if tax is None and reject_unknown:
                raise RequestProblem(422, f"events.{i}.event_type: {e.event_type!r} is not in the taxonomy")
            key = (e.source, e.event_id)
            if key in events:  # ingestion keeps the first copy of an event
                continue
            events[key] = {
                "source": e.source, "event_id": e.event_id, "occurred_at": e.occurred_at.astimezone(UTC),
                "contact_id": e.contact_id, "account_id": e.account_id, "event_type": e.event_type,
                "channel": e.channel if e.channel is not None else (tax.channel if tax else None),
                "stage": tax.stage if tax else None, "value": e.value, "properties": self._props(e.properties)}
        outcomes: dict[tuple[str, str], dict[str, Any]] = {}
        for i, o in enumerate(req.outcomes):
            self._check_owner(f"outcomes.{i}", o.contact_id, o.account_id, entity, eid, contacts)
            outcomes.setdefault((o.source, o.outcome_id), {
                "source": o.source, "outcome_id": o.outcome_id, "outcome": o.outcome,
                "occurred_at": o.occurred_at.astimezone(UTC), "contact_id": o.contact_id,
                "account_id": o.account_id, "value": o.value, "properties": self._props(o.properties)})
        erased = self._erased({*contacts, *(r["contact_id"] for r in events.values() if r["contact_id"])},
                              {eid} if entity == "account" else ({account_id} if account_id else set()))
        if (entity, eid) in erased:
            raise RequestProblem(422, f"entity {eid!r} was erased (journey-ml forget): it is not scored", "erased")
        gone = {cid for kind, cid in erased if kind == "contact"}
        if gone:  # erased people leave no trace, as at ingestion
            contacts = {k: v for k, v in contacts.items() if k not in gone}
            events = {k: v for k, v in events.items() if v["contact_id"] not in gone}
            outcomes = {k: v for k, v in outcomes.items() if v["contact_id"] not in gone}
        if entity == "contact" and contacts.get(eid, {}).get("opted_out"):
            raise RequestProblem(422, f"contact {eid!r} opted out: opted-out contacts are not scored", "opted_out")
        return {"accounts": [account] if account else [], "contacts": list(contacts.values()),
                "events": list(events.values()), "outcomes": list(outcomes.values())}

    @staticmethod
    def _check_owner(where: str, contact_id: str | None, account_id: str | None, entity: str, eid: str,
                     contacts: dict[str, dict[str, Any]]) -> None:
        """Every posted row must belong to the scored entity (else it would silently not count)."""
        if entity == "account":
            if account_id is not None and account_id != eid:
                raise RequestProblem(422, f"{where}.account_id: {account_id!r} is not the scored account {eid!r}")
            if account_id is None and contact_id not in contacts:
                raise RequestProblem(422, f"{where}.contact_id: {contact_id!r} has no account_id and is not "
                                     "one of the posted contacts")
        elif contact_id != eid:
            raise RequestProblem(422, f"{where}.contact_id: {contact_id!r} is not the scored contact {eid!r}")

    def _why_not(self, req: ScoreRequest, task, rows: dict[str, list[dict]], as_of: datetime) -> str:
        """Why the entity is outside the task's population (every rule of the feature builder
        it fails; opted-out contacts' rows do not count)."""
        opted = {c["contact_id"] for c in rows["contacts"] if c["opted_out"]}
        mine = [e for e in rows["events"] if e["occurred_at"] < as_of and e["contact_id"] not in opted]
        lo = as_of - timedelta(days=task.lookback_days)
        recent = [e for e in mine if e["occurred_at"] >= lo]
        outcome_rows = [o for o in rows["outcomes"] if o["outcome"] == task.outcome and o["occurred_at"] < as_of
                        and o["contact_id"] not in opted]
        cust = set(task.customer_events)
        why: list[str] = []
        if task.population == "prospects":
            done = sorted((e for e in mine if e["event_type"] in cust), key=lambda e: e["occurred_at"])
            if done:
                why.append(f"already a customer ({done[0]['event_type']} on {done[0]['occurred_at']:%Y-%m-%d}); "
                           "the task scores open prospects")
            if outcome_rows:
                why.append(f"outcome {task.outcome!r} already recorded on {outcome_rows[0]['occurred_at']:%Y-%m-%d}")
            if not recent:
                why.append(f"no activity in the {task.lookback_days} days before as_of")
        elif task.population == "active":
            if not recent:
                why.append(f"no activity in the {task.lookback_days} days before as_of")
        elif task.population == "all":
            pass
        else:
            if not [e for e in recent if e["event_type"] in cust]:
                why.append(f"not a customer: none of {', '.join(task.customer_events)} in the "
                           f"{task.lookback_days} days before as_of")
            outcome_events = set(self.config.outcomes[task.outcome])
            if [e for e in recent if e["event_type"] in outcome_events] or [o for o in outcome_rows
                                                                             if o["occurred_at"] >= lo]:
                why.append(f"outcome {task.outcome!r} already happened in the {task.lookback_days} days "
                           "before as_of")
        if not why and task.population_filter:
            from journey_ml.features.population import filter_rules

            why.append("outside the population filter (" + "; ".join(r.rule for r in filter_rules(task)) + ")")
        return "; ".join(why) or "outside the population"

    # --- reads ------------------------------------------------------------------------------

    def latest_score(self, entity_id: str, task: str | None = None) -> dict[str, Any]:
        """The newest stored score of an entity (of ``task``, or of any task). Raises RequestProblem."""
        if task is not None:
            self._task(task)
        from journey_ml.scoring.stored import latest_score

        row = latest_score(self.engine, entity_id, task)
        if row is None:
            what = f" of task {task!r}" if task else ""
            raise RequestProblem(404, f"no stored score{what} for entity {entity_id!r}", "not_found")
        out = dict(row)
        for k in ("as_of", "scored_at"):
            out[k] = out[k].isoformat()
        out["reasons"] = list(out["reasons"] or [])
        return out

    def committee(self, account_id: str, as_of: datetime | None = None) -> dict[str, Any]:
        """The buying-committee view of a known account. Raises RequestProblem (404)."""
        a, c = Account.__table__, Contact.__table__
        with self.engine.connect() as conn:
            known = conn.execute(sa.select(a.c.account_id).where(a.c.account_id == account_id).limit(1)).first() \
                or conn.execute(sa.select(c.c.contact_id).where(c.c.account_id == account_id).limit(1)).first()
        if known is None:
            raise RequestProblem(404, f"account {account_id!r} is not in the warehouse", "not_found")
        return committee_view(self.engine, self.config, account_id, as_of or datetime.now(UTC)).to_dict()

    # --- readiness ---------------------------------------------------------------------------

    def _missing_production(self, st) -> list[str]:
        """Production versions the alias ledger records that the registry view does not serve
        (a deleted or replaced tracking store): an outage, reported by /readyz."""
        from journey_ml.registry.consistency import ledger_production

        if not self.warmed or (st.last_error and not st.refreshes):
            return []  # not asked yet, or the registry is unreachable (the fallback's case)
        out = []
        try:
            recorded = ledger_production(self.engine)
        except Exception:  # noqa: BLE001 - the warehouse problem is reported on its own
            return []
        for name, move in sorted(recorded.items()):
            if name in st.production and st.production[name] != move.to_version:
                have = st.production[name]
                out.append(f"the alias ledger says {name}@production is v{move.to_version}, the registry "
                           + (f"serves v{have}" if have is not None else "has no production version of it"))
        return out

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, details): the warehouse answers and every task knows what scores it."""
        problems: list[str] = []
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            warehouse = "ok"
        except Exception as e:  # noqa: BLE001 - reported, not raised
            warehouse = one_line(e)
            problems.append(f"warehouse unreachable ({warehouse})")
        if not self.warmed:
            problems.append("loading models from the registry")
        st = self.view.status()
        tasks: dict[str, Any] = {}
        for t in self.config.tasks:
            segs = {}
            for seg in candidate_segments(self.config, t):
                name = model_name(t, seg)
                version = st.production.get(name)
                if version is None:
                    segs[seg] = {"model": name, "version": None,
                                 "serves": "global model" if seg != GLOBAL else "registered or built-in rules"}
                    continue
                loaded = self.view.is_loaded(t, seg, version)
                segs[seg] = {"model": name, "version": version, "kind": st.kinds.get(name),
                             "loaded": loaded,
                             "serves": "this version" if loaded else "the next step of the fallback ladder"}
            tasks[t] = segs
        missing = self._missing_production(st)
        problems += [f"registry outage: {m}" for m in missing]
        registry = {"refreshed_at": st.refreshed_at.isoformat() if st.refreshed_at else None,
                    "last_error": st.last_error, "refreshes": st.refreshes, "failures": st.failures}
        if st.last_error and not st.refreshes:
            registry["serves"] = "built-in rules (registry never reached)"
        ready = not problems
        return ready, {"ready": ready, "problems": problems, "warehouse": warehouse, "registry": registry,
                       "tasks": tasks}


__all__ = ["ScoringService", "RequestProblem", "ApiLimits", "ScoreResult"]
