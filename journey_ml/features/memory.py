"""Features of a few entities from rows held in memory (the API's posted entity).

`PostedRows` wraps warehouse rows as dicts (``accounts`` / ``contacts`` / ``events`` /
``outcomes``, the tables' columns, as `ScoringService._rows` produces them) and stands in
for the warehouse engine in `build_features` and `feature_set_for`: the builder then
takes the aggregates from here instead of the SQL of `_queries`, and assembles the frame
with the very same code (`builder._assemble`: population rules, `Parts`, every family's
``compute``, `builder._conform`). Nothing here defines a feature; it only computes what
each query of `_queries` returns, with its semantics:

* rows are attributed as `_queries._attributed` does (account tasks: the row's account,
  else its contact's; contact tasks: its contact; rows of opted-out contacts never count);
* history is strictly before T; the older part (``history_query``) is before T - span, the
  recent part (``window_query``) in [T - span, T); a w-day window is [T - w days, T);
* active days are UTC calendar days (the day masks of ``_day_mask`` plus the boundary
  day's ``edge``); numeric properties are read as ``property_number`` reads them on SQLite
  (JSON numbers, booleans as 1/0, text matching ``_NUMBER``);
* look-ups: outcome-row exclusions, known entities (population ``all``), renewal dates
  (latest event before T with one; ties by source, event_id descending), firmographics,
  engaged and known contacts, attributes, and the declaration's top categories.

Timestamps are compared as integer microseconds (exact, as the stored text compares) and
converted to epoch seconds as `_queries._epoch_values` converts SQLite's text.
The equality with the SQL path is tested on random journeys (tests/features/test_memory.py).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from journey_ml.config import JourneyConfig, TaskConfig
from journey_ml.features import _queries as Q
from journey_ml.features.declaration import VALUE_DAYS, FeatureSet, sanitize
from journey_ml.features.families._base import Recent
from journey_ml.schemas import STAGES

_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()


def _us(d: datetime) -> int:
    """Microseconds since the epoch (UTC), exact."""
    d = d.astimezone(UTC)
    return ((d.toordinal() - _EPOCH_ORDINAL) * 86_400 + d.hour * 3_600 + d.minute * 60 + d.second) * 1_000_000 \
        + d.microsecond


def _seconds(us: np.ndarray) -> np.ndarray:
    """Epoch seconds as `_queries._epoch_values` gives them (integer ns, then / 1e9)."""
    return (us * 1000).astype("float64") / 1e9


def _sql_json_value(v: Any) -> Any:
    """What SQLite's json_extract returns for a decoded JSON value: text, a number,
    booleans as 1/0, objects and arrays as their (compact) JSON text."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, separators=(",", ":"))
    return v


_NUMBER_RE = re.compile(Q._NUMBER)
# no renewal dates (shared: the families only read it)
_NO_RENEWALS = pd.DataFrame({"entity_id": np.array([], dtype=object), "renewal_date": np.array([], dtype=object)})


def property_number(v: Any) -> float:
    """`_queries.property_number` of one value (NaN for SQL NULL): the JSON value as text,
    a float when it matches ``_NUMBER``."""
    v = _sql_json_value(v)
    if v is None:
        return np.nan
    if isinstance(v, (int, float)):
        text = repr(float(v)) if isinstance(v, float) else str(v)
    else:
        text = str(v)
    if _NUMBER_RE.search(text) is None:
        return np.nan
    return float(text)


def _known(created: datetime | None, t_us: int) -> bool:
    return created is None or _us(created) < t_us


class _Sums:
    """Per-group sums of several columns at once: ``add`` a column (NaN counts as 0), get
    back its handle; ``result()`` is the (groups x columns) matrix."""

    def __init__(self, code: np.ndarray, m: int) -> None:
        self.code, self.m, self.cols = code, m, []

    @property
    def k(self) -> int:
        return len(self.cols)

    def add(self, values: np.ndarray) -> tuple[str, int]:
        a = np.asarray(values)
        if a.dtype != np.bool_:  # flags are counted as they are; NaN values count as 0
            a = np.where(np.isnan(a), 0.0, a)
        self.cols.append(a)
        return ("sum", len(self.cols) - 1)

    def result(self) -> np.ndarray:
        n = len(self.code)
        if not self.cols or not n:
            return np.zeros((self.m, len(self.cols)))
        if self.m == 1:  # one entity (the API's case): plain column sums
            return np.column_stack(self.cols).sum(axis=0, keepdims=True, dtype="float64")
        onehot = np.zeros((self.m, n))
        onehot[self.code, np.arange(n)] = 1.0
        return onehot @ np.column_stack(self.cols)


class _Extremes:
    """Per-group minima (np.fmin) or maxima (np.fmax) of times under several conditions
    (NaN when no row qualifies)."""

    def __init__(self, ufunc: np.ufunc, code: np.ndarray, m: int, t: np.ndarray) -> None:
        self.ufunc, self.code, self.m, self.t, self.conds = ufunc, code, m, t, []
        self.kind = "lo" if ufunc is np.fmin else "hi"

    @property
    def k(self) -> int:
        return len(self.conds)

    def add(self, cond: np.ndarray | None) -> tuple[str, int]:
        self.conds.append(np.ones(len(self.t), dtype=bool) if cond is None else cond)
        return (self.kind, len(self.conds) - 1)

    def result(self) -> np.ndarray:
        g = np.full((self.m, len(self.conds)), np.nan)
        if self.conds and len(self.t):
            values = np.where(np.column_stack(self.conds), self.t[:, None], np.nan)
            if self.m == 1:  # one entity: a reduction (fmin/fmax skip NaN; NaN when none)
                return self.ufunc.reduce(values, axis=0, keepdims=True)
            self.ufunc.at(g, self.code, values)
        return g


@dataclass
class PostedRows:
    """Warehouse rows in memory: table name -> list of row dicts in the table's columns.
    Pass it where `build_features` / `feature_set_for` take an engine."""

    accounts: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    events: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]

    @classmethod
    def of(cls, rows: dict[str, list[dict[str, Any]]]) -> PostedRows:
        return cls(list(rows.get("accounts", ())), list(rows.get("contacts", ())),
                   list(rows.get("events", ())), list(rows.get("outcomes", ())))

    def opted_out(self) -> set[str]:
        """Contact ids marked opted out."""
        return {c["contact_id"] for c in self.contacts if c.get("opted_out") is True}

    # --- attribution ---------------------------------------------------------------------

    def _attributed(self, entity: str, rows: list[dict[str, Any]]) -> tuple[list[int], list[str], list[Any]]:
        """(row positions, entity ids, contact role) of the rows counted for ``entity``
        (`_queries._attributed`)."""
        keep, ents, roles = [], [], []
        if entity == "account":
            by_id = {c["contact_id"]: c for c in self.contacts}
            for i, r in enumerate(rows):
                cid = r.get("contact_id")
                c = by_id.get(cid) if cid is not None else None
                if c is not None and c.get("opted_out") is True:
                    continue
                ent = r.get("account_id")
                if ent is None and c is not None:
                    ent = c.get("account_id")
                if ent is None:
                    continue
                keep.append(i)
                ents.append(str(ent))
                roles.append(c.get("role") if c is not None else None)
        else:
            opted = self.opted_out()
            for i, r in enumerate(rows):
                cid = r.get("contact_id")
                if cid is None or cid in opted:
                    continue
                keep.append(i)
                ents.append(str(cid))
                roles.append(None)
        return keep, ents, roles

    # --- the builder's inputs --------------------------------------------------------------

    def attribute_records(self, entity: str) -> tuple[list[str], list[dict]]:
        """`builder._attribute_records`: ids and non-empty attribute dicts (table order)."""
        table = self.accounts if entity == "account" else [c for c in self.contacts if c.get("opted_out") is not True]
        key = "account_id" if entity == "account" else "contact_id"
        ids, recs = [], []
        for r in table:
            a = r.get("attributes")
            if isinstance(a, dict) and a:
                ids.append(str(r[key]))
                recs.append(a)
        return ids, recs

    def categories(self, config: JourneyConfig, task: TaskConfig) -> dict[str, list[str]]:
        """`builder._categories`: the most frequent values (count desc, then value)."""
        limit = config.features.max_categories

        def top(values: list[Any]) -> list[str]:
            counts = Counter(v for v in values if v is not None)
            return [str(v) for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]

        out = {name: top([a.get(name) for a in self.accounts]) for name in ("industry", "country")}
        if task.entity == "contact":
            out["role"] = top([c.get("role") for c in self.contacts if c.get("opted_out") is not True])
        return out

    def fetch(self, plan: Q.Plan, fs: FeatureSet, as_of: datetime) -> tuple[dict, dict]:
        """What `builder._fetch` returns (the older and the recent stream's dicts)."""
        t_us = _us(as_of)
        day0 = t_us // _DAY_US  # T's UTC day number
        midnight = day0 * _DAY_US

        def before(days: int) -> int:
            return t_us - days * _DAY_US

        def day_start(days: int) -> int:
            return midnight - days * _DAY_US

        pos, ents, roles = self._attributed(plan.entity, self.events)
        ev = [self.events[i] for i in pos]
        n = len(ev)
        us = np.fromiter((_us(e["occurred_at"]) for e in ev), dtype=np.int64, count=n)
        past = us < before(0)
        span = Q.window_span(plan)
        older_m = past & (us < before(span))
        recent_m = past & (us >= before(span))
        ts = _seconds(us)
        etype = np.array([e.get("event_type") for e in ev], dtype=object)
        chan = np.array([e.get("channel") for e in ev], dtype=object)
        stage = np.array([e.get("stage") for e in ev], dtype=object)
        role = np.array(roles, dtype=object)
        value = np.array([np.nan if (v := e.get("value")) is None else float(v) for e in ev], dtype="float64")
        props = [np.array([property_number((e.get("properties") or {}).get(k)) for e in ev], dtype="float64")
                 for k in plan.properties]
        ent_arr = np.array(ents, dtype=object)
        in_lb = us >= before(plan.lookback_days)
        is_cust = np.isin(etype, list(plan.customer_events)) if n else np.zeros(0, bool)
        is_out = np.isin(etype, list(plan.outcome_events)) if n else np.zeros(0, bool)
        pop_counts: dict[str, np.ndarray]
        if plan.population in ("active", "all"):
            pop_counts = {"lb": in_lb}
        elif plan.population == "prospects":
            pop_counts = {"lb": in_lb, "cust": is_cust}
        else:
            pop_counts = {"lb": in_lb, "cust": in_lb & is_cust, "out": in_lb & is_out}

        def groups(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
            codes, ids = pd.factorize(ent_arr[mask])
            return codes.astype(np.int64), np.asarray(ids, dtype=object), len(ids)

        # --- older history (history_query) ---
        oc, oids, om = groups(older_m)
        o_ts, o_stage, o_type, o_role = ts[older_m], stage[older_m], etype[older_m], role[older_m]
        o_val = value[older_m]
        o_props = [v[older_m] for v in props]
        lows = _Extremes(np.fmin, oc, om, o_ts)
        highs = _Extremes(np.fmax, oc, om, o_ts)
        tot = _Sums(oc, om)
        hist: dict[str, Any] = {"first": lows.add(None), "last_at": highs.add(None)}
        for s in STAGES:
            at = o_stage == s
            hist[f"first:{s}"], hist[f"last:{s}"] = lows.add(at), highs.add(at)
        for i, k in enumerate(plan.key_events):
            hist[f"event_last_{i}"] = highs.add(o_type == k)
        for i, r in enumerate(plan.roles):
            hist[f"role_last_{i}"] = highs.add(o_role == r)
        for name, flag in pop_counts.items():
            hist[name] = tot.add(flag[older_m])
        # SUM(): NULL (NaN) for a group without a non-null value
        for stem, v in (("value", o_val), *((f"prop_{i}", v) for i, v in enumerate(o_props))):
            have = tot.add(~np.isnan(v))
            hist[f"{stem}_all"] = ("sql_sum", tot.add(v)[1], have[1])
            hist[f"{stem}_n"] = have
        lo, hi, sm = lows.result(), highs.result(), tot.result()
        cols: dict[str, np.ndarray] = {}
        for name, spec in hist.items():
            if spec[0] == "sql_sum":
                _, j, have = spec
                cols[name] = np.where(sm[:, have] > 0, sm[:, j], np.nan)
            elif spec[0] == "lo":
                cols[name] = lo[:, spec[1]]
            elif spec[0] == "hi":
                cols[name] = hi[:, spec[1]]
            else:
                cols[name] = sm[:, spec[1]]
        block = np.column_stack(list(cols.values())) if om else np.empty((0, len(cols)))
        hist_frame = pd.DataFrame(block, columns=list(cols), index=pd.Index(oids, name="entity_id", dtype=object))

        # --- recent history (window_query, summarised as builder._summarise_recent does) ---
        rc, rids, m = groups(recent_m)
        r_us, r_ts = us[recent_m], ts[recent_m]
        r_type, r_chan, r_stage, r_role = etype[recent_m], chan[recent_m], stage[recent_m], role[recent_m]
        r_val = value[recent_m]
        tot = _Sums(rc, m)
        lows = _Extremes(np.fmin, rc, m, r_ts)
        highs = _Extremes(np.fmax, rc, m, r_ts)
        order: list[tuple[str, Any]] = []  # (count name, its column), in `_summarise_recent`'s order
        dims = [(r_chan, list(plan.channels), [f"ch_{sanitize(c)}" for c in plan.channels]),
                (r_stage, list(STAGES), [f"stage_{s}" for s in STAGES]),
                (r_type, list(plan.key_events), [sanitize(k) for k in plan.key_events])]
        equal = [[col == v for v in vals] for col, vals, _ in dims]
        for w in plan.windows:
            in_w = r_us >= before(w)
            order.append((f"events_{w}d", tot.add(in_w)))
            for (_, _, names), eqs in zip(dims, equal, strict=True):
                for eq, name in zip(eqs, names, strict=True):
                    order.append((f"{name}_{w}d", tot.add(in_w & eq)))
        k = day0 - r_us // _DAY_US  # UTC calendar days before T's day
        longest = max(max(plan.windows, default=0), 1)
        on_day = k < longest
        day_keys = np.unique(rc[on_day] * longest + k[on_day])
        day_code, day_k = day_keys // longest, day_keys % longest
        for w in plan.windows:
            days = np.bincount(day_code[day_k < w], minlength=m).astype("float64")
            order.append((f"active_days_{w}d", ("days", days, tot.add((r_us >= before(w)) & (r_us < day_start(w - 1))))))
        last = r_us >= before(plan.trend_days)
        prev = (r_us < before(plan.trend_days)) & (r_us >= before(2 * plan.trend_days))
        product = r_chan == "product"
        order += [("_last", tot.add(last)), ("_prev", tot.add(prev)),
                  ("_product_last", tot.add(last & product)), ("_product_prev", tot.add(prev & product))]
        inv = r_us >= before(plan.value_days)
        val0 = np.nan_to_num(r_val)
        order += [(f"value_sum_{VALUE_DAYS}d", tot.add(np.where(inv, val0, 0.0))),
                  (f"revenue_{VALUE_DAYS}d", tot.add(np.where(inv & (r_chan == "billing"), val0, 0.0))),
                  ("_value_all", tot.add(val0)), ("_value_n", tot.add(~np.isnan(r_val)))]
        for i, v in enumerate(props):
            rv = v[recent_m]
            rv0 = np.nan_to_num(rv)
            for w in plan.windows:
                order.append((f"_prop_{i}_{w}", tot.add(np.where(r_us >= before(w), rv0, 0.0))))
            order += [(f"_prop_{i}_all", tot.add(rv0)), (f"_prop_{i}_n", tot.add(~np.isnan(rv)))]
        for i, r in enumerate(plan.roles):
            order.append((f"_role_{i}", tot.add(inv & (r_role == r))))
        pop_at = {name: tot.add(flag[recent_m]) for name, flag in pop_counts.items()}
        t_order: list[tuple[str, Any]] = [("first", lows.add(None)), ("last_at", highs.add(None))]
        stage_eq = {s: r_stage == s for s in STAGES}
        t_order += [(f"first:{s}", lows.add(stage_eq[s])) for s in STAGES]
        t_order += [(f"last:{s}", highs.add(stage_eq[s])) for s in STAGES]
        t_order += [(f"event_last_{i}", highs.add(r_type == key)) for i, key in enumerate(plan.key_events)]
        t_order += [(f"role_last_{i}", highs.add(r_role == r)) for i, r in enumerate(plan.roles)]
        sm = np.vstack([tot.result(), np.zeros((1, tot.k))])  # the spare slot: 0 for counts
        lo = np.vstack([lows.result(), np.full((1, lows.k), np.nan)])  # NaN for times
        hi = np.vstack([highs.result(), np.full((1, highs.k), np.nan)])
        counts: dict[str, np.ndarray] = {}
        for name, spec in order:
            if spec[0] == "days":  # active days + the boundary day inside the window
                _, days, edge = spec
                counts[name] = np.append(days + (sm[:m, edge[1]] > 0), 0.0)
            else:
                counts[name] = sm[:, spec[1]]
        times = {name: (lo if spec[0] == "lo" else hi)[:, spec[1]] for name, spec in t_order}
        population = {name: sm[:, spec[1]] for name, spec in pop_at.items()}
        recent = Recent(ids=rids, counts=counts, times=times, population=population)

        older: dict[str, Any] = {"hist": hist_frame, "phases": {}}
        if any(s.group == "attribute" for s in fs.features):
            older["attrs"] = self.attribute_records(plan.entity)
        got: dict[str, Any] = {"recent": recent, "phases": {},
                               "excluded": self._outcome_excluded(plan, t_us),
                               "entities": self._known_entities(plan, t_us),
                               "renew": self._renewals(ev, ents, us, t_us),
                               "firm": self._firmographics(plan.entity)}
        if plan.entity == "account":
            vpos = np.flatnonzero(past & (us >= before(plan.value_days)))
            engaged: dict[str, set] = {}
            for i in vpos:
                cid = ev[i].get("contact_id")
                if cid is not None:
                    engaged.setdefault(ents[i], set()).add(cid)
            got["engaged"] = pd.DataFrame({f"contacts_engaged_{plan.value_days}d": np.array(
                [float(len(v)) for v in engaged.values()], dtype="float64")},
                index=pd.Index(list(engaged), name="entity_id", dtype=object))
            known = Counter(str(c["account_id"]) for c in self.contacts
                            if c.get("account_id") is not None and c.get("opted_out") is not True
                            and _known(c.get("created_at"), t_us))
            got["known"] = pd.DataFrame({"entity_id": np.array(list(known), dtype=object),
                                         "contacts_known": np.array(list(known.values()), dtype="int64")})
        return older, got

    def _outcome_excluded(self, plan: Q.Plan, t_us: int) -> set[str]:
        """`builder._outcome_excluded`: outcome rows of the task's outcome before T
        (prospects) or in the lookback (customers)."""
        if plan.population not in ("prospects", "customers"):
            return set()
        lo = t_us - plan.lookback_days * _DAY_US if plan.population == "customers" else None
        pos, ents, _ = self._attributed(plan.entity, self.outcomes)
        out = set()
        for i, ent in zip(pos, ents, strict=True):
            o = self.outcomes[i]
            t = _us(o["occurred_at"])
            if o.get("outcome") == plan.outcome and t < t_us and (lo is None or t >= lo):
                out.add(ent)
        return out

    def _known_entities(self, plan: Q.Plan, t_us: int) -> np.ndarray | None:
        """`builder._known_entities` (population ``all``)."""
        if plan.population != "all":
            return None
        if plan.entity == "account":
            ids = [str(a["account_id"]) for a in self.accounts if _known(a.get("created_at"), t_us)]
        else:
            ids = [str(c["contact_id"]) for c in self.contacts
                   if c.get("opted_out") is not True and _known(c.get("created_at"), t_us)]
        return np.array(ids, dtype=object)

    @staticmethod
    def _renewals(ev: list[dict], ents: list[str], us: np.ndarray, t_us: int) -> pd.DataFrame:
        """`builder._renewals` over the attributed events: the renewal_date of each
        entity's latest event before T carrying one (ties: source, then event_id, descending)."""
        best: dict[str, tuple] = {}
        for e, ent, t in zip(ev, ents, us.tolist(), strict=True):
            props = e.get("properties")
            if not isinstance(props, dict) or t >= t_us:
                continue
            rd = _sql_json_value(props.get("renewal_date"))
            if rd is None:
                continue
            key = (t, e.get("source"), e.get("event_id"))
            if ent not in best or key > best[ent][0]:
                best[ent] = (key, rd)
        if not best:
            return _NO_RENEWALS
        return pd.DataFrame({"entity_id": np.array(list(best), dtype=object),
                             "renewal_date": np.array([v[1] for v in best.values()], dtype=object)})

    def _firmographics(self, entity: str) -> pd.DataFrame:
        """`firmographics_query`: the account columns per entity (contacts: their account's
        and their role; opted-out contacts left out); the first row of an id wins."""
        cols = ("employees", "annual_revenue", "industry", "country")
        if entity == "account":
            recs = [(a["account_id"], a) for a in self.accounts]
        else:
            accounts = {}
            for a in self.accounts:
                accounts.setdefault(a["account_id"], a)
            recs = [(c["contact_id"], {**(accounts.get(c.get("account_id")) or {}), "role": c.get("role")})
                    for c in self.contacts if c.get("opted_out") is not True]
            cols = (*cols, "role")
        seen: dict[str, dict] = {}
        for eid, r in recs:
            seen.setdefault(str(eid), r)
        data: dict[str, np.ndarray] = {}
        for c in cols:
            vals = tuple(r.get(c) for r in seen.values())
            data[c] = Q._numbers(vals) if c in ("employees", "annual_revenue") else np.array(vals, dtype=object)
        return pd.DataFrame(data, index=pd.Index(list(seen), name="entity_id", dtype=object))


__all__ = ["PostedRows", "property_number"]
