"""Point-in-time features, labels and training frames, computed where the data lives.

Semantics (T = ``as_of``, a UTC-aware datetime; H = the task's horizon_days):

* Strictly before T. Features use only events with ``occurred_at < T``; a w-day window is
  ``[T - w days, T)``. Events at or after T never change the features at T.
* Labels use only [T, T + H) (`boundary`: the one rule, so every event is in exactly one
  of history and label window): 1 when the entity has an event whose type is one of
  ``config.outcomes[task.outcome]``, or a row of the outcomes table with
  ``outcome == task.outcome``, in that interval; else 0. An outcome exactly at T counts,
  one at T + H does not (it is the next window's).
* Entity of an event (and of an outcome row): account tasks use
  ``COALESCE(account_id, contacts.account_id)`` (email events carry only the contact);
  contact tasks use ``contact_id``. Rows without an entity are ignored.
* Opted-out contacts are left out everywhere: their events and outcome rows are in no
  aggregate, population, or label, and they are never in a contact population. Contacts
  counted in ``contacts_known`` are the account's contacts not opted out and created
  before T (or undated).
* Population as of T: the rules of `population` (``prospects``, ``customers``, ``active``,
  ``all``, then ``population_filter``); erased people are absent already.
* Each feature's definition is in its family (`journey_ml.features.families`: activity,
  recency, trend, stages, value, committee, firmographics, attributes), beside its
  declaration. Days are float days (seconds / 86 400); counts are 0 (not NaN) for
  population members without events in a window; categorical values outside a feature's
  known categories become "other", missing stays None.

How (see `_queries`): all aggregation is SQL through SQLAlchemy Core, the same statements
on SQLite and PostgreSQL. History before T is split at T - span (span = the widest of
the windows, 60 days for the trend and 90 for value/committee):

1. older history, one row per entity: first/last event, per-stage first/last, last key
   event and role times, population counts, lifetime sums (conditional aggregation,
   GROUP BY entity);
2. recent history [T - span, T), one row per (entity, event_type, channel, stage):
   first/last time, a handful of conditional counts and UTC-day bit masks (active
   days). pandas pivots it per entity (bincount over integer positions, no loop over
   rows) into the per-window channel / stage / key-event columns and merges its times
   with the older part. (~100 CASE aggregates per event row cost PostgreSQL about 3x the
   time of this narrow aggregate plus the pivot.)
3. small look-ups: outcome-table exclusions, renewal dates, committee, firmographics,
   attributes.

The builder aligns these parts with the population once (`families.Parts`) and every
family computes its columns from them.

On PostgreSQL results stream through COPY into Arrow, and (1) runs on one connection
while (2)-(3) run on another, both in one exported snapshot (identical data).
Training and scoring share `build_features`; with a stored feature set it returns
exactly that set's columns.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from journey_ml.config import JourneyConfig, TaskConfig
from journey_ml.db.copy import copy_arrow
from journey_ml.db.models import FeatureSnapshot
from journey_ml.features import _queries as Q
from journey_ml.features.boundary import label_window
from journey_ml.features.declaration import (
    TREND_DAYS,
    VALUE_DAYS,
    FeatureSet,
    channels,
    declare_feature_set,
    sanitize,
)
from journey_ml.features.families import FAMILIES, Parts
from journey_ml.features.families._base import Recent as _Recent
from journey_ml.features.memory import PostedRows
from journey_ml.features.population import PopulationStep, filter_masks
from journey_ml.features.values import attr_text, is_missing, is_number
from journey_ml.schemas import STAGES

log = logging.getLogger(__name__)
_DAY_S = 86_400.0
_SNAPSHOT_BATCH = 2_000
_SMALL = 256  # up to this many rows, columns are handled as one float block (cheaper)


@dataclass
class FeatureFrame:
    """Features of one task's population as of T.

    ``frame``: index ``entity_id`` (str), columns exactly ``feature_set.names()`` in order;
    numeric columns float64, categorical columns object (str or None).
    """

    task: str
    as_of: datetime
    feature_set: FeatureSet
    frame: pd.DataFrame


# --- helpers -----------------------------------------------------------------------------

def _utc(value: datetime, what: str = "as_of") -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got {value!r}")
    return value.astimezone(UTC)


def _plan(config: JourneyConfig, task_name: str) -> tuple[TaskConfig, Q.Plan]:
    task = config.task(task_name)  # ConfigError naming the known tasks
    f = config.features
    plan = Q.Plan(
        entity=task.entity,
        windows=tuple(dict.fromkeys(f.windows_days)),
        channels=tuple(channels(config)),
        key_events=tuple(dict.fromkeys(f.key_events)),
        roles=tuple(dict.fromkeys(f.key_roles)) if task.entity == "account" else (),
        lookback_days=task.lookback_days,
        population=task.population,
        customer_events=tuple(task.customer_events),
        outcome=task.outcome,
        outcome_events=tuple(config.outcomes[task.outcome]),
        trend_days=TREND_DAYS,
        value_days=VALUE_DAYS,
        properties=tuple(dict.fromkeys(f.numeric_properties)),
    )
    return task, plan


def _tune(conn: Connection) -> None:
    """PostgreSQL settings for this transaction: room for hash aggregates over ~1M
    entities, and no parallel workers. The two fetch streams already keep two cores busy;
    a parallel partial aggregate over ~1M groups has every worker hash nearly every group
    and then merges them, which cost more CPU and time than it saved (measured).

    Room: each group of the older-history aggregate holds ~40 transition states (~1.2 kB),
    so 930k contacts need ~1.1 GB of hash memory, and the recent aggregate's ~2.6M
    (entity, type, channel, stage) groups about as much. With 256 MB (512 MB of hash
    memory) both spilled to disk in batches; 1 GB (hash_mem_multiplier 2 by default) keeps
    them in memory: 16% less server CPU for the history query and 20% for the window one
    at 20M events (#14, BENCHMARKS.md). It is a cap, not an allocation: small warehouses
    use what their groups need."""
    conn.exec_driver_sql("SET LOCAL work_mem = '1GB'")
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")


@contextmanager
def _snapshot_pair(engine: Engine) -> Iterator[tuple[Connection, Connection]]:
    """Two PostgreSQL read transactions seeing exactly the same data (exported snapshot)."""
    with engine.connect() as first, engine.connect() as second:
        first.execution_options(isolation_level="REPEATABLE READ")
        second.execution_options(isolation_level="REPEATABLE READ")
        with first.begin(), second.begin():
            snap = first.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            if not re.fullmatch(r"[0-9A-Fa-f-]+", snap):  # pragma: no cover - defensive
                raise RuntimeError(f"unexpected snapshot id {snap!r}")
            second.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snap}'")
            _tune(first)
            _tune(second)
            yield first, second


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A read transaction; on PostgreSQL with room for the big hash aggregates."""
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            _tune(conn)
        yield conn


class _Timer:
    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.phases: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = now - self.t
        self.t = now


_PREPARED: dict[tuple, Q.Prepared] = {}


def _prepared(conn: Connection, what: str, plan: Q.Plan | str, build: Callable[[Q.Clock], Any]) -> Q.Prepared:
    """The statement ``build`` makes over a `Q.Clock`, compiled once per (statement, plan,
    dialect): later calls only bind T (statement construction and compilation cost more
    than the whole query on a small warehouse)."""
    d = conn.dialect
    key = (what, plan, type(d), d.paramstyle, getattr(d, "server_version_info", None))
    got = _PREPARED.get(key)
    if got is None:
        clock = Q.Clock(datetime(2000, 1, 1, tzinfo=UTC))
        got = _PREPARED[key] = Q.prepare(build(clock), clock, d)
    return got


def _outcome_rows(plan: Q.Plan, as_of: Q.When) -> sa.Select:
    lo = Q._before(as_of, plan.lookback_days) if plan.population == "customers" else None
    return Q.outcome_rows_query(plan, lo, Q._before(as_of, 0))


def _outcome_excluded(conn: Connection, plan: Q.Plan, as_of: datetime) -> set[str]:
    """Entities the outcome table takes out of the population: prospects with an outcome
    row before T, customers with one in the lookback."""
    if plan.population not in ("prospects", "customers"):
        return set()  # active / all: an earlier outcome does not leave (repeat outcomes)
    prep = _prepared(conn, "outcome_rows", plan, lambda c: _outcome_rows(plan, c))
    return {str(r[0]) for r in Q.fetch_rows(conn, prep, as_of)}


def _known_entities(conn: Connection, plan: Q.Plan, as_of: datetime) -> np.ndarray | None:
    """Population `all`: the entity table's ids as of T (None for the other rules)."""
    if plan.population != "all":
        return None
    prep = _prepared(conn, "known_entities", plan.entity, lambda c: Q.known_entities_query(plan.entity, c))
    return np.array([str(r[0]) for r in Q.fetch_rows(conn, prep, as_of)], dtype=object)


def _final_population(candidates: pd.Index, excluded: set[str]) -> pd.Index:
    ids = candidates[~candidates.isin(list(excluded))] if excluded else candidates
    return pd.Index(sorted(ids), name="entity_id", dtype=object)


def _pii_keys(config: JourneyConfig) -> set[str]:
    keys = {*config.pii.hash, *config.pii.drop}
    for s in config.sources:
        keys |= {*s.pii.hash, *s.pii.drop}
    return {k.lower() for k in keys}


def _attribute_records(conn: Connection, entity: str) -> tuple[list[str], list[dict]]:
    ids, recs = [], []
    for eid, attrs in conn.execute(Q.attributes_query(entity)):
        if isinstance(attrs, dict) and attrs:
            ids.append(str(eid))
            recs.append(attrs)
    return ids, recs


def _discover(conn: Connection, config: JourneyConfig, task: TaskConfig) -> dict[str, list[str] | None]:
    if config.features.attributes == "none":
        return {}
    return _discover_in(_attribute_records(conn, task.entity)[1], config)


def _discover_in(recs: list[dict], config: JourneyConfig) -> dict[str, list[str] | None]:
    """The usable attribute keys of the entities' attribute dicts (see `discover_attributes`)."""
    wanted = config.features.attributes
    if wanted == "none":
        return {}
    values: dict[str, list[Any]] = {}
    for r in recs:
        for k, v in r.items():
            if v is not None:
                values.setdefault(k, []).append(v)
    pii = _pii_keys(config)
    limit = config.features.max_categories
    out: dict[str, list[str] | None] = {}
    for key in sorted(values):
        if (wanted != "all" and key not in wanted) or key.lower() in pii:
            continue
        vals = values[key]
        if all(is_number(v) for v in vals):
            out[key] = None
            continue
        counts = Counter(attr_text(v) for v in vals)
        if len(counts) == len(vals) and len(counts) > limit:
            continue  # every value distinct: an identifier, not a feature
        out[key] = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
    return out


def _categories(conn: Connection, config: JourneyConfig, task: TaskConfig) -> dict[str, list[str]]:
    limit = config.features.max_categories
    out = {}
    for name in ("industry", "country"):
        out[name] = [str(r[0]) for r in conn.execute(Q.top_values_query(Q.A.c[name], limit))]
    if task.entity == "contact":
        out["role"] = [str(r[0]) for r in conn.execute(
            Q.top_values_query(Q.C.c.role, limit, Q.C.c.opted_out.is_not(sa.true())))]
    return out


def _declare(conn: Connection, config: JourneyConfig, task: TaskConfig) -> FeatureSet:
    return declare_feature_set(config, task, _discover(conn, config, task), _categories(conn, config, task))


def _positions(values: pd.Series, universe: pd.Index) -> np.ndarray:
    """Position of each value in ``universe`` (-1 when absent or null); fast on Categoricals."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = universe.get_indexer(pd.Index(values.cat.categories.astype(str)))
        codes = values.cat.codes.to_numpy()
        if not len(cats):  # every value null (e.g. no recent event has a channel)
            return np.full(len(codes), -1, dtype=np.int64)
        return np.where(codes >= 0, cats[np.maximum(codes, 0)], -1)
    return universe.get_indexer(values.astype(str).where(values.notna(), None))


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, -1 for null; distinct values as str objects) of a text column."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy().astype(np.int64), values.cat.categories.astype(str).to_numpy(object)
    codes, uniques = pd.factorize(values.astype(object).where(values.notna(), None))
    return codes.astype(np.int64), np.asarray(uniques, dtype=object).astype(str).astype(object)


def _summarise_recent(win: pd.DataFrame, plan: Q.Plan) -> _Recent:
    """Pivot the recent aggregate (entity x event_type x channel x stage rows) into
    per-entity columns: windowed counts per channel / stage / key event, active days
    (OR of the day masks), trend halves, value, role engagement, the first/last times
    (overall, per stage, per key event, per role) and the population sums.

    Sums are bincounts, minima/maxima ufunc.at, over rows sorted by entity (sequential
    memory walks): no Python loop over rows. Runs in the fetching thread, so it overlaps
    the older-history query on the other connection."""
    code, ids = _codes(win["entity_id"])
    m = len(ids)
    code = np.where(code >= 0, code, m)  # spare slot m: rows without an entity
    order = np.argsort(code, kind="stable")
    code = code[order]

    def col(name: str, dtype: Any = "float64") -> np.ndarray:
        return win[name].to_numpy(dtype=dtype)[order]

    chan = col("channel", object)
    etype = win["event_type"]
    counts: dict[str, np.ndarray] = {}
    times: dict[str, np.ndarray] = {}

    def total(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        v = np.nan_to_num(values) if mask is None else np.where(mask, np.nan_to_num(values), 0.0)
        return np.bincount(code, weights=v, minlength=m + 1)

    def by_dim(pos: np.ndarray, k: int, values: np.ndarray) -> list[np.ndarray]:
        """Sums of values per (entity, pos): k arrays of m + 1."""
        keep = pos >= 0
        grid = np.bincount(pos[keep] * (m + 1) + code[keep], weights=values[keep], minlength=(m + 1) * k)
        return [grid[i * (m + 1):(i + 1) * (m + 1)] for i in range(k)]

    def extreme(ufunc: np.ufunc, pos: np.ndarray | None, k: int, values: np.ndarray) -> list[np.ndarray]:
        """Minima (np.fmin) / maxima (np.fmax) of values per (entity, pos), NaN when none."""
        g = np.full((m + 1) * k, np.nan)
        if pos is None:
            ufunc.at(g, code, values)
        else:
            keep = pos >= 0
            ufunc.at(g, pos[keep] * (m + 1) + code[keep], values[keep])
        return [g[i * (m + 1):(i + 1) * (m + 1)] for i in range(k)]

    stage_pos = _positions(win["stage"], pd.Index(STAGES))[order]
    key_pos = _positions(etype, pd.Index(plan.key_events))[order]
    dims = [
        (_positions(win["channel"], pd.Index(plan.channels))[order], [f"ch_{sanitize(c)}" for c in plan.channels]),
        (stage_pos, [f"stage_{s}" for s in STAGES]),
        (key_pos, [sanitize(k) for k in plan.key_events]),
    ]
    n_all = col("n")
    for w in plan.windows:
        v = col(f"n_{w}") if f"n_{w}" in win else n_all
        counts[f"events_{w}d"] = total(v)
        for pos, names in dims:
            if names:
                for name, sums in zip(names, by_dim(pos, len(names), v), strict=True):
                    counts[f"{name}_{w}d"] = sums
    # active days: OR the day masks per entity, count the days k < w, add the boundary day
    words = []
    for j in range(sum(1 for c in win.columns if c.startswith("days_"))):
        acc = np.zeros(m + 1, dtype=np.int64)
        np.bitwise_or.at(acc, code, col(f"days_{j}", np.int64))
        words.append(acc)
    for w in plan.windows:
        active = np.zeros(m + 1)
        for j, word in enumerate(words):
            bits = min(max(w - j * Q.DAY_BITS, 0), Q.DAY_BITS)
            if bits:
                active += np.bitwise_count(word & np.int64((1 << bits) - 1))
        counts[f"active_days_{w}d"] = active + (total(col(f"edge_{w}")) > 0)
    last, prev = col("last"), col("prev")
    product = chan == "product"
    counts["_last"], counts["_prev"] = total(last), total(prev)
    counts["_product_last"], counts["_product_prev"] = total(last, product), total(prev, product)
    value = col("value")
    counts[f"value_sum_{VALUE_DAYS}d"] = total(value)
    counts[f"revenue_{VALUE_DAYS}d"] = total(value, chan == "billing")
    for name in ("value_all", "value_n", *(c for c in win.columns if c.startswith("prop_"))):
        counts[f"_{name}"] = total(col(name))
    for i in range(len(plan.roles)):
        counts[f"_role_{i}"] = total(col(f"role_{i}"))

    first_w, last_w = col("first"), col("last_at")
    [times["first"]] = extreme(np.fmin, None, 1, first_w)
    [times["last_at"]] = extreme(np.fmax, None, 1, last_w)
    for s, lo in zip(STAGES, extreme(np.fmin, stage_pos, len(STAGES), first_w), strict=True):
        times[f"first:{s}"] = lo
    for s, hi in zip(STAGES, extreme(np.fmax, stage_pos, len(STAGES), last_w), strict=True):
        times[f"last:{s}"] = hi
    if plan.key_events:
        for i, hi in enumerate(extreme(np.fmax, key_pos, len(plan.key_events), last_w)):
            times[f"event_last_{i}"] = hi
    for i in range(len(plan.roles)):
        [times[f"role_last_{i}"]] = extreme(np.fmax, None, 1, col(f"role_last_{i}"))

    lb = col("lb") if "lb" in win else n_all
    is_cust = etype.isin(plan.customer_events).to_numpy()[order]
    population = {"lb": total(lb)}
    if plan.population == "prospects":
        population["cust"] = total(n_all, is_cust)
    elif plan.population == "customers":
        population["cust"] = total(lb, is_cust)
        population["out"] = total(lb, etype.isin(plan.outcome_events).to_numpy()[order])
    for values in counts.values():
        values[m] = 0.0
    for values in times.values():
        values[m] = np.nan
    return _Recent(ids=ids, counts=counts, times=times, population=population)


@dataclass
class _Keys:
    """The population (sorted ids) and, per member, its row in the older aggregate and its
    slot in the recent summary (-1: none)."""

    pop: pd.Index
    hist_row: np.ndarray
    recent_slot: np.ndarray


def _population_keys(plan: Q.Plan, hist: pd.DataFrame, recent: _Recent, excluded: set[str],
                     known: np.ndarray | None = None) -> _Keys:
    """Apply the population rules to the older (``hist``, one row per entity) and recent
    (per-entity summary) parts plus the outcome-row exclusions; ``known`` (population
    `all`) adds the entities of the entity table without events.

    Entity ids are hashed once (factorize) and sorted once (Arrow); everything after that
    works on integer positions."""
    import pyarrow as pa
    import pyarrow.compute as pc

    h, r = len(hist), len(recent.ids)
    extra = [known] if known is not None and len(known) else []
    codes, universe = pd.factorize(np.concatenate([hist.index.to_numpy(object), recent.ids, *extra]))
    universe = np.asarray(universe, dtype=object)
    n = len(universe)
    hc, rc = codes[:h], codes[h:h + r]

    def combined(col: str) -> np.ndarray:
        a = np.zeros(n)
        a[hc] = np.nan_to_num(hist[col].to_numpy(dtype="float64"))
        a[rc] += recent.population[col][:-1]
        return a

    if plan.population == "prospects":
        keep = (combined("lb") > 0) & (combined("cust") == 0)
    elif plan.population == "customers":
        keep = (combined("cust") > 0) & (combined("out") == 0)
    elif plan.population == "active":
        keep = combined("lb") > 0
    else:  # all
        keep = np.ones(n, dtype=bool)
    if excluded:
        keep &= ~pd.Index(universe).isin(list(excluded))
    kept = np.flatnonzero(keep)
    kept = kept[pc.array_sort_indices(pa.array(universe[kept], pa.string())).to_numpy()]
    hist_row = np.full(n, -1, dtype=np.int64)
    hist_row[hc] = np.arange(h)
    recent_slot = np.full(n, -1, dtype=np.int64)
    recent_slot[rc] = np.arange(len(rc))
    return _Keys(pop=pd.Index(universe[kept], name="entity_id", dtype=object),
                 hist_row=hist_row[kept], recent_slot=recent_slot[kept])


def _parts(hist: pd.DataFrame, recent: _Recent, keys: _Keys, plan: Q.Plan, fs: FeatureSet, as_of_s: float,
           fetched: dict[str, Any]) -> Parts:
    """Align the older and recent parts with the population, as every family reads them."""
    slot = np.where(keys.recent_slot >= 0, keys.recent_slot, len(recent.ids))  # spare slot: fill value
    rows = keys.hist_row
    # a few rows: every (float64) column in one array, not one DataFrame look-up per column
    block = hist.to_numpy(dtype="float64") if len(hist) <= _SMALL else None
    where = {c: i for i, c in enumerate(hist.columns)}

    def count(name: str) -> np.ndarray:
        return recent.counts[name][slot]

    def older(name: str) -> np.ndarray:
        col = block[:, where[name]] if block is not None else hist[name].to_numpy(dtype="float64")
        if not len(col):  # no history older than the recent span (e.g. T early in the data)
            col = np.full(1, np.nan)
        return np.where(rows >= 0, col[np.maximum(rows, 0)], np.nan)

    def time(name: str) -> np.ndarray:
        """Latest/earliest of the older and the recent part: fmin for first*, else fmax."""
        old, new = older(name), recent.times[name][slot]
        return np.fmin(old, new) if name.startswith("first") else np.fmax(old, new)

    def lifetime(name: str) -> np.ndarray:
        """A sum over the whole history before T: the older part's plus the recent one's."""
        return np.nan_to_num(older(name)) + recent.counts[f"_{name}"][slot]

    return Parts(plan=plan, feature_set=fs, pop=keys.pop, as_of_s=as_of_s, count=count, time=time,
                 lifetime=lifetime, fetched=fetched)


def _fetch_older(conn: Connection, plan: Q.Plan, fs: FeatureSet, as_of: datetime) -> dict[str, Any]:
    """Stream 1: the older-history aggregate (the longest query) and attributes."""
    t = _Timer()
    got: dict[str, Any] = {}
    prep = _prepared(conn, "history", plan,
                     lambda c: Q.history_query(plan, c, c.before(Q.window_span(plan))))
    got["hist"] = Q.fetch_frame(conn, prep, as_of=as_of)
    t.lap("history")
    if any(s.group == "attribute" for s in fs.features):
        got["attrs"] = _attribute_records(conn, plan.entity)
        t.lap("attributes")
    got["phases"] = t.phases
    return got


def _fetch_recent(conn: Connection, plan: Q.Plan, as_of: datetime) -> dict[str, Any]:
    """Stream 2: the recent (window) aggregate, pivoted per entity right away, then the
    outcome-row exclusions, renewal dates, firmographics and, for accounts, the
    committee look-ups."""
    t = _Timer()
    got: dict[str, Any] = {}
    dialect = conn.dialect.name
    win = Q.fetch_frame(conn, _prepared(conn, "window", plan, lambda c: Q.window_query(plan, c, dialect)),
                        index=False, as_of=as_of)
    t.lap("window")
    got["recent"] = _summarise_recent(win, plan)
    del win
    t.lap("recent_pivot")
    got["excluded"] = _outcome_excluded(conn, plan, as_of)
    got["entities"] = _known_entities(conn, plan, as_of)
    got["renew"] = _renewals(conn, plan, as_of)
    t.lap("renewal")
    firm = Q.fetch_frame(conn, _prepared(conn, "firmographics", plan.entity, lambda c: Q.Query(
        Q.firmographics_query(plan.entity), {}, categorical=("industry", "country", "role"))), as_of=as_of)
    got["firm"] = firm[~firm.index.duplicated()]
    t.lap("firmographics")
    if plan.entity == "account":
        got["engaged"] = Q.fetch_frame(conn, _prepared(conn, "engaged", plan,
                                                       lambda c: Q.engaged_contacts_query(plan, c)), as_of=as_of)
        got["known"] = _contacts_known(conn, as_of)
        t.lap("committee")
    got["phases"] = t.phases
    return got


def _renewals(conn: Connection, plan: Q.Plan, as_of: datetime) -> pd.DataFrame:
    """entity_id, renewal_date (as pd.read_sql gives them) of the renewal query."""
    prep = _prepared(conn, "renewal", plan, lambda c: Q.renewal_query(plan, c))
    if conn.dialect.name == "postgresql":
        return pd.read_sql(Q.renewal_query(plan, as_of), conn)
    rows = Q.fetch_rows(conn, prep, as_of)
    if not all(isinstance(r[0], str) and isinstance(r[1], str) for r in rows):
        return pd.read_sql(Q.renewal_query(plan, as_of), conn)  # numbers in the JSON: pandas' own typing
    return pd.DataFrame({"entity_id": np.array([r[0] for r in rows], dtype=object),
                         "renewal_date": np.array([r[1] for r in rows], dtype=object)})


def _contacts_known(conn: Connection, as_of: datetime) -> pd.DataFrame:
    """entity_id, contacts_known of the contacts-known query."""
    if conn.dialect.name == "postgresql":
        return pd.read_sql(Q.contacts_known_query(as_of), conn)
    rows = Q.fetch_rows(conn, _prepared(conn, "known", "account", Q.contacts_known_query), as_of)
    return pd.DataFrame({"entity_id": np.array([r[0] for r in rows], dtype=object),
                         "contacts_known": np.array([r[1] for r in rows], dtype="int64")})


def _fetch(engine: Engine, plan: Q.Plan, fs: FeatureSet, as_of: datetime) -> tuple[dict, dict]:
    """Both fetch streams over one consistent view of the warehouse.

    PostgreSQL: two connections in two threads, the second importing the first one's
    snapshot (REPEATABLE READ + pg_export_snapshot), so the server works on both at once.
    SQLite: one connection, one stream after the other.
    """
    if engine.dialect.name != "postgresql":
        with _reading(engine) as conn:
            return _fetch_older(conn, plan, fs, as_of), _fetch_recent(conn, plan, as_of)
    from concurrent.futures import ThreadPoolExecutor

    with _snapshot_pair(engine) as (first, second), ThreadPoolExecutor(2) as pool:
        older = pool.submit(_fetch_older, first, plan, fs, as_of)
        recent = pool.submit(_fetch_recent, second, plan, as_of)
        return older.result(), recent.result()


def _assemble(plan: Q.Plan, fs: FeatureSet, as_of: datetime, older: dict, recent: dict
              ) -> tuple[pd.Index, dict[str, dict[str, Any]]]:
    """The population and, per family, feature name -> values (aligned with it)."""
    hist = older["hist"]
    keys = _population_keys(plan, hist, recent["recent"], recent["excluded"], recent["entities"])
    if len(keys.pop) == 0:
        return keys.pop, {}
    parts = _parts(hist, recent["recent"], keys, plan, fs, as_of.timestamp(), {**older, **recent})
    return keys.pop, {f.GROUP: f.compute(parts) for f in FAMILIES}


def _category(v: Any, known: set[str]) -> Any:
    """One categorical value as `_conform` gives it: None when missing, "other" when unknown."""
    if pd.isna(v):
        return None
    return v if v in known else "other"


def _conform(pop: pd.Index, values: dict[str, Any], fs: FeatureSet) -> pd.DataFrame:
    """Exactly the feature set's columns: missing ones NaN/None, unknown categories "other"."""
    n = len(pop)
    if n <= _SMALL:
        return _conform_small(pop, values, fs)
    cols: dict[str, Any] = {}
    for spec in fs.features:
        v = values.get(spec.name)
        if spec.kind == "numeric":
            cols[spec.name] = _numeric_column(v, n)
        else:
            s = pd.Series([None] * n if v is None else v, dtype=object)
            present = s.notna()
            s = s.where(present, None)
            known = set(spec.categories)
            s[present & ~s.isin(known)] = "other"
            cols[spec.name] = s.astype(object).to_numpy()
    # copy=False: one block per column, no 1 GB consolidation copy for a million rows
    frame = pd.DataFrame(cols, index=pop, columns=fs.names(), copy=False)
    frame.index.name = "entity_id"
    return frame


def _numeric_column(v: Any, n: int) -> np.ndarray:
    if v is None:
        return np.full(n, np.nan)
    if isinstance(v, np.ndarray) and v.dtype == np.float64:
        return v
    return pd.to_numeric(pd.Series(v), errors="coerce").to_numpy(dtype="float64")


def _conform_small(pop: pd.Index, values: dict[str, Any], fs: FeatureSet) -> pd.DataFrame:
    """`_conform` for a few rows: the numeric columns as one 2-D float block (one
    DataFrame construction instead of one per column), the categorical ones inserted at
    their places, each value mapped as the vectorised path maps it."""
    n = len(pop)
    numeric = [s for s in fs.features if s.kind == "numeric"]
    block = np.empty((n, len(numeric)))
    for j, spec in enumerate(numeric):
        block[:, j] = _numeric_column(values.get(spec.name), n)
    frame = pd.DataFrame(block, index=pop, columns=[s.name for s in numeric])
    for i, spec in enumerate(fs.features):
        if spec.kind == "numeric":
            continue
        v = values.get(spec.name)
        known = set(spec.categories)
        col = np.empty(n, dtype=object)
        col[:] = [None] * n if v is None else [_category(x, known) for x in v]
        frame.insert(i, spec.name, col)
    frame.index.name = "entity_id"
    return frame


# --- public API ---------------------------------------------------------------------------

def population(engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime) -> pd.Index:
    """The entity ids in ``task_name``'s population as of ``as_of`` (sorted, name entity_id).

    Raises ConfigError for an unknown task, ValueError for a naive ``as_of``.
    """
    task, plan = _plan(config, task_name)
    t = _utc(as_of)
    if task.population_filter.segments:  # segments are assigned on the features
        return build_features(engine, config, task_name, t).frame.index
    with _reading(engine) as conn:
        candidates = Q.fetch_frame(conn, Q.population_query(plan, t)).index
        known = _known_entities(conn, plan, t)
        if known is not None:
            candidates = candidates.union(pd.Index(known))
        pop = _final_population(candidates, _outcome_excluded(conn, plan, t))
        if task.population_filter:
            frame = pd.DataFrame(index=pop)
            for _, keep in filter_masks(config, task, frame, _attributes_by_id(conn, plan.entity)):
                frame = frame[keep]
            pop = frame.index
        return pop


def _attributes_by_id(conn: Connection, entity: str) -> dict[str, dict]:
    return _by_id(*_attribute_records(conn, entity))


def _by_id(ids: list[str], recs: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i, r in zip(ids, recs, strict=True):
        out.setdefault(i, r)
    return out


def _filtered(engine: Engine, config: JourneyConfig, task: TaskConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's rows that pass the task's population filter (every step)."""
    if not task.population_filter or frame.empty:
        return frame
    if isinstance(engine, PostedRows):
        attrs = _by_id(*engine.attribute_records(task.entity)) if task.population_filter.attributes else {}
    else:
        with _reading(engine) as conn:
            attrs = _attributes_by_id(conn, task.entity) if task.population_filter.attributes else {}
    keep = np.ones(len(frame), dtype=bool)
    for _, mask in filter_masks(config, task, frame, attrs):
        keep &= mask
    return frame[keep]


def population_steps(engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime
                     ) -> list[PopulationStep]:
    """How the task's population as of ``as_of`` comes about: each step of its rule (and
    filter) with the entities left after it, the last count being the population's size.
    For explaining an empty population. Raises ConfigError, ValueError for a naive as_of."""
    task, plan = _plan(config, task_name)
    t = _utc(as_of)
    lb = f"{task.lookback_days}-day lookback"
    cust = ", ".join(task.customer_events)
    with _reading(engine) as conn:
        c = Q.fetch_frame(conn, Q.population_counts_query(plan, t))
        excluded = _outcome_excluded(conn, plan, t)
        known = _known_entities(conn, plan, t)
    steps: list[PopulationStep] = []

    def step(rule: str, keep: pd.Series) -> None:
        nonlocal c
        c = c[keep]
        steps.append(PopulationStep(rule, len(c)))

    if plan.population == "all":
        ids = c.index.union(pd.Index(known if known is not None else [], dtype=object))
        c = pd.DataFrame(index=ids)
        steps.append(PopulationStep("entities in the entity table or with an event before T", len(c)))
    else:
        steps.append(PopulationStep("entities with an event before T", len(c)))
    if plan.population in ("prospects", "active"):
        step(f"with an event in the {lb}", c["lb"] > 0)
    if plan.population == "prospects":
        step(f"and no customer event ({cust}) before T", c["cust"] == 0)
        step(f"and no {task.outcome!r} outcome row before T", ~c.index.isin(list(excluded)))
    elif plan.population == "customers":
        step(f"with a customer event ({cust}) in the {lb}", c["cust"] > 0)
        step(f"and no {task.outcome!r} outcome event in the {lb}", c["out"] == 0)
        step(f"and no {task.outcome!r} outcome row in the {lb}", ~c.index.isin(list(excluded)))
    if task.population_filter and len(c):
        if task.population_filter.segments:  # features of the unfiltered population
            bare = config.model_copy(update={"tasks": {**config.tasks, task_name: task.model_copy(
                update={"population_filter": type(task.population_filter)()})}})
            frame = build_features(engine, bare, task_name, t).frame
        else:
            frame = pd.DataFrame(index=c.index)
        with _reading(engine) as conn:
            attrs = _attributes_by_id(conn, task.entity)
        for rule, keep in filter_masks(config, task, frame, attrs):
            frame = frame[keep]
            steps.append(PopulationStep(f"and {rule}", len(frame)))
    return steps


def event_types_in_data(engine: Engine) -> set[str]:
    """The distinct event types stored in the warehouse."""
    with _reading(engine) as conn:
        return {str(r[0]) for r in conn.execute(sa.select(Q.E.c.event_type).distinct()) if r[0] is not None}


def discover_attributes(engine: Engine, config: JourneyConfig, task_name: str) -> dict[str, list[str] | None]:
    """Attribute keys usable as features for the task's entity: key -> None (numeric) or
    its most frequent values (categorical, at most features.max_categories).

    Reads accounts.attributes or contacts.attributes (latest export); honours
    features.attributes (all / none / a list) and skips keys configured as PII and keys
    whose every value is distinct (identifiers). Raises ConfigError for an unknown task.
    """
    task = config.task(task_name)
    with _reading(engine) as conn:
        return _discover(conn, config, task)


def feature_set_for(engine: Engine, config: JourneyConfig, task_name: str) -> FeatureSet:
    """The feature set the current data and configuration give for ``task_name``
    (attributes and firmographic categories discovered). Raises ConfigError."""
    task = config.task(task_name)
    if isinstance(engine, PostedRows):
        return _declare_posted(engine, config, task)
    with _reading(engine) as conn:
        return _declare(conn, config, task)


def _declare_posted(rows: PostedRows, config: JourneyConfig, task: TaskConfig) -> FeatureSet:
    """`_declare` over rows in memory."""
    found = {} if config.features.attributes == "none" else _discover_in(rows.attribute_records(task.entity)[1],
                                                                         config)
    return declare_feature_set(config, task, found, rows.categories(config, task))


def build_features(engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime,
                   feature_set: FeatureSet | None = None) -> FeatureFrame:
    """Features of the task's population as of ``as_of`` (events strictly before it).

    Without ``feature_set`` the set is declared from the configuration and the data; with
    one (from a trained model) exactly its columns are returned, in order. Raises
    ConfigError for an unknown task, ValueError for a naive ``as_of`` or a feature set
    of another entity kind.

    ``engine`` may be a `memory.PostedRows` (rows in memory, e.g. the API's posted
    entity): the aggregates then come from those rows instead of the SQL, and the frame
    is assembled by the same code (same families, same population rules).
    """
    task, plan = _plan(config, task_name)
    t = _utc(as_of)
    if feature_set is not None and feature_set.entity != task.entity:
        raise ValueError(f"feature set {feature_set.version} is for {feature_set.entity}s, "
                         f"task {task_name!r} scores {task.entity}s")
    timer = _Timer()
    posted = isinstance(engine, PostedRows)
    if feature_set is None:
        if posted:
            feature_set = _declare_posted(engine, config, task)
        else:
            with _reading(engine) as conn:
                feature_set = _declare(conn, config, task)
    fs = feature_set
    timer.lap("declare")
    older, recent = engine.fetch(plan, fs, t) if posted else _fetch(engine, plan, fs, t)
    timer.lap("fetch")
    pop, by_family = _assemble(plan, fs, t, older, recent)
    del older["hist"], recent["recent"]
    values = {k: v for computed in by_family.values() for k, v in computed.items()}
    missing = [n for n in fs.names() if n not in values]
    if missing and len(pop):  # never silently NaN: say which declared columns nothing computed
        log.warning("features %s: %d declared feature(s) not computed by this configuration, left empty: %s",
                    task_name, len(missing), ", ".join(missing[:10]))
    timer.lap("combine")
    frame = _filtered(engine, config, task, _conform(pop, values, fs))
    timer.lap("assemble")
    phases = {**timer.phases, **{f"fetch.{k}": v for k, v in older["phases"].items()},
              **{f"fetch.{k}": v for k, v in recent["phases"].items()}}
    log.debug("features %s as of %s: %d x %d in %s", task_name, t.isoformat(), *frame.shape,
              {k: round(v, 2) for k, v in phases.items()}, extra={"phases": phases})
    return FeatureFrame(task=task_name, as_of=t, feature_set=fs, frame=frame)


def labels(engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime,
           entity_ids: pd.Index) -> pd.Series:
    """1 when the entity's outcome happens in the label window [as_of, as_of + horizon)
    (the rule of `journey_ml.features.boundary`), else 0.

    Returns an int Series indexed like ``entity_ids`` (name entity_id). Raises
    ConfigError for an unknown task, ValueError for a naive ``as_of``.
    """
    task, plan = _plan(config, task_name)
    start, end = label_window(_utc(as_of), task.horizon_days)
    with _reading(engine) as conn:
        hits = Q.fetch_ids(conn, Q.outcome_events_query(plan, start, end))
        hits |= Q.fetch_ids(conn, Q.outcome_rows_query(plan, start, end))
    idx = pd.Index(entity_ids, name="entity_id").astype(object)
    return pd.Series(idx.isin(list(hits)).astype("int64"), index=idx, name="label")


def training_frame(engine: Engine, config: JourneyConfig, task_name: str, as_of_dates: list[datetime],
                   feature_set: FeatureSet | None = None) -> pd.DataFrame:
    """Features and labels of every as-of date stacked: columns entity_id, as_of, <features>,
    label (one row per entity and date, dates in the given order).

    One feature set serves every date (declared once when not given). Raises ConfigError
    for an unknown task, ValueError for no dates or a naive date.
    """
    task = config.task(task_name)
    if not as_of_dates:
        raise ValueError(f"task {task_name!r}: no as-of dates to build a training frame from")
    dates = [_utc(d) for d in as_of_dates]
    if feature_set is None:
        with _reading(engine) as conn:
            feature_set = _declare(conn, config, task)
    parts = []
    for d in dates:
        ff = build_features(engine, config, task_name, d, feature_set)
        y = labels(engine, config, task_name, d, ff.frame.index)
        part = ff.frame.reset_index()
        part.insert(1, "as_of", pd.Timestamp(d))
        part["label"] = y.to_numpy()
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["as_of"] = pd.to_datetime(out["as_of"], utc=True)
    return out


def _json_ready(frame: pd.DataFrame) -> list[dict[str, Any]]:
    obj = frame.astype(object).where(frame.notna(), None)
    return obj.to_dict(orient="records")


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    table = FeatureSnapshot.__table__
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    keys = ("feature_set_version", "segment", "features", "label", "created_at")
    stmt = stmt.on_conflict_do_update(index_elements=["task", "as_of", "entity_id"],
                                      set_={k: stmt.excluded[k] for k in keys})
    for i in range(0, len(rows), _SNAPSHOT_BATCH):
        conn.execute(stmt, rows[i:i + _SNAPSHOT_BATCH])


def store_snapshot(engine: Engine, ff: FeatureFrame, labels: pd.Series | None = None,
                   segments: pd.Series | None = None, *, created_at: datetime) -> int:
    """Upsert the frame into feature_snapshots, keyed (task, as_of, entity_id).

    ``labels`` / ``segments`` are aligned on entity_id (missing -> NULL). Storing the
    same task and date again replaces those entities' rows. Returns the rows written;
    raises ValueError for a naive ``created_at``.
    """
    created = _utc(created_at, "created_at")
    ids = ff.frame.index.astype(str)
    lab = labels.reindex(ff.frame.index) if labels is not None else pd.Series(None, index=ff.frame.index)
    seg = segments.reindex(ff.frame.index) if segments is not None else pd.Series(None, index=ff.frame.index)
    if engine.dialect.name == "postgresql" and _copyable(ff.frame):
        with engine.begin() as conn:
            return _copy_snapshot(conn, ff, ids, lab, seg, created)
    feats = _json_ready(ff.frame)
    rows = [
        {"task": ff.task, "as_of": ff.as_of, "entity_id": eid, "feature_set_version": ff.feature_set.version,
         "segment": None if pd.isna(s) else str(s), "features": f,
         "label": None if pd.isna(y) else int(y), "created_at": created}
        for eid, f, y, s in zip(ids, feats, lab.to_numpy(dtype=object), seg.to_numpy(dtype=object), strict=True)
    ]
    with engine.begin() as conn:
        _upsert(conn, rows)
    return len(rows)


_PG_MAX_COLUMNS = 1_500  # a PostgreSQL table holds at most 1,600 columns
_JSON_ARGS = 100  # a PostgreSQL function takes at most 100 arguments


def _copyable(frame: pd.DataFrame) -> bool:
    """Can the frame's rows go through the typed COPY path (each column one SQL type)?"""
    if frame.shape[1] > _PG_MAX_COLUMNS:
        return False
    for c in frame.columns:
        col = frame[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = col.cat.categories
            if len(cats) and not all(isinstance(v, str) for v in cats):
                return False
        elif col.dtype == object and not all(isinstance(v, str) for v in col.dropna()):
            return False
    return True


def _copy_snapshot(conn: Connection, ff: FeatureFrame, ids: pd.Index, lab: pd.Series, seg: pd.Series,
                   created: datetime) -> int:
    """`store_snapshot` on PostgreSQL: the typed frame into a stage table by COPY (Arrow
    CSV); the server builds each row's JSON document (`_snapshot_documents`) and one
    ``INSERT ... ON CONFLICT`` moves them into feature_snapshots. The stored documents equal
    the row path's (numbers exact: Arrow and PostgreSQL both write shortest round-trip
    floats; NaN and missing -> null). The work tables live and die in the caller's
    transaction."""
    import pyarrow as pa

    frame = ff.frame
    names = [str(c) for c in frame.columns]

    def sql_type(col: pd.Series) -> str:
        if pd.api.types.is_bool_dtype(col.dtype):
            return "boolean"
        if pd.api.types.is_integer_dtype(col.dtype):
            return "bigint"
        if pd.api.types.is_float_dtype(col.dtype):
            return "double precision"
        return "text"

    cols = {"entity_id": pa.array(ids.to_numpy(dtype=object), pa.string()),
            "segment": pa.array([None if pd.isna(v) else str(v) for v in seg.to_numpy(dtype=object)], pa.string()),
            "label": pa.array([None if pd.isna(v) else int(v) for v in lab.to_numpy(dtype=object)], pa.int64())}
    types = []
    for i, c in enumerate(frame.columns):
        col = frame[c]
        t = sql_type(col)
        types.append(t)
        if t == "text":
            cols[f"c{i}"] = pa.array(col.astype(object).where(col.notna(), None).to_numpy(), pa.string())
        else:
            cols[f"c{i}"] = pa.array(col.to_numpy(), from_pandas=True)  # NaN -> null
    table = pa.table(cols)
    defs = ", ".join(["entity_id text", "segment text", "label bigint"]
                     + [f"c{i} {t}" for i, t in enumerate(types)])
    stage, docs, kind = _work_tables(conn)
    conn.exec_driver_sql(f"CREATE {kind} TABLE {stage} ({defs})")
    copy_arrow(conn.connection.driver_connection, stage, table)
    _snapshot_documents(conn, stage, docs, names, kind)
    conn.execute(sa.text(
        "INSERT INTO feature_snapshots (task, as_of, entity_id, feature_set_version, segment, features, label, "
        f"created_at) SELECT :task, :as_of, entity_id, :version, segment, features, label, :created FROM {docs} "
        "ON CONFLICT (task, as_of, entity_id) DO UPDATE SET feature_set_version = EXCLUDED.feature_set_version, "
        "segment = EXCLUDED.segment, features = EXCLUDED.features, label = EXCLUDED.label, "
        "created_at = EXCLUDED.created_at"),
        {"task": ff.task, "as_of": ff.as_of, "version": ff.feature_set.version, "created": created})
    conn.exec_driver_sql(f"DROP TABLE {stage}, {docs}")
    return table.num_rows


_PG_NAME_BYTES = 63  # longer identifiers are truncated by PostgreSQL


def _work_tables(conn: Connection) -> tuple[str, str, str]:
    """Names of the stage and documents tables of one snapshot write, and their kind:
    ``UNLOGGED`` tables of the schema (which parallel workers can read: the documents are
    then built on every core), or ``TEMPORARY`` when the role may not create tables.
    Either way they exist only inside the caller's transaction."""
    import uuid

    tag = uuid.uuid4().hex[:12]
    stage, docs = f"_journey_snapshot_stage_{tag}", f"_journey_snapshot_docs_{tag}"
    can_create = conn.exec_driver_sql(
        "SELECT has_schema_privilege(current_schema(), 'CREATE')").scalar()
    return stage, docs, "UNLOGGED" if can_create else "TEMPORARY"


def _snapshot_documents(conn: Connection, stage: str, docs: str, names: list[str], kind: str) -> None:
    """Table ``docs`` (entity_id, segment, label, features jsonb) from the typed ``stage``
    (columns c0.. hold ``names``' values).

    ``to_jsonb`` of a row whose columns are aliased to the feature names: about half the
    server time of ``jsonb_build_object`` over the same pairs (the conversion of each
    number is the cost: ~0.3 us a value). On an unlogged stage the documents are
    built by parallel workers, and compressed with lz4 where the server has it. Names
    longer than PostgreSQL's identifiers fall back to ``jsonb_build_object``."""
    if not names:
        doc, source = "'{}'::jsonb", stage
    elif max(len(n.encode()) for n in names) <= _PG_NAME_BYTES:
        aliases = ", ".join(f's.c{i} AS "{n.replace(chr(34), chr(34) * 2)}"' for i, n in enumerate(names))
        doc, source = "to_jsonb(f)", f"{stage} s, LATERAL (SELECT {aliases}) f"
    else:
        pairs = [f"{_sql_literal(n)}, s.c{i}" for i, n in enumerate(names)]
        per = _JSON_ARGS // 2
        doc = " || ".join(f"jsonb_build_object({', '.join(pairs[k:k + per])})" for k in range(0, len(pairs), per))
        source = f"{stage} s"
    if kind == "UNLOGGED":
        # per transaction: let the planner spread the documents over the cores, and use the
        # faster TOAST compression when the server was built with it
        conn.exec_driver_sql("SET LOCAL parallel_setup_cost = 0")
        conn.exec_driver_sql("SET LOCAL parallel_tuple_cost = 0")
        lz4 = conn.exec_driver_sql("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                   "WHERE name = 'default_toast_compression'").scalar()
        if lz4:
            conn.exec_driver_sql("SET LOCAL default_toast_compression = lz4")
    conn.exec_driver_sql(f"CREATE {kind} TABLE {docs} AS SELECT s.entity_id, s.segment, s.label, "
                         f"{doc} AS features FROM {source}")


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_snapshot(engine: Engine, task_name: str, as_of: datetime,
                  feature_set: FeatureSet | None = None) -> pd.DataFrame:
    """The stored snapshot of ``task_name`` as of ``as_of``: index entity_id, the feature
    columns (``feature_set``'s, in order and typed; else sorted by name), then segment,
    label (nullable Int64) and feature_set_version. Empty when nothing is stored.
    Raises ValueError for a naive ``as_of``.
    """
    t = _utc(as_of)
    fs_tbl = FeatureSnapshot.__table__
    stmt = (sa.select(fs_tbl.c.entity_id, fs_tbl.c.features, fs_tbl.c.segment, fs_tbl.c.label,
                      fs_tbl.c.feature_set_version)
            .where(fs_tbl.c.task == task_name, fs_tbl.c.as_of == t).order_by(fs_tbl.c.entity_id))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    idx = pd.Index([str(r[0]) for r in rows], name="entity_id", dtype=object)
    feats = pd.DataFrame.from_records([r[1] or {} for r in rows], index=idx) if rows else pd.DataFrame(index=idx)
    if feature_set is not None:
        values = {c: feats[c].to_numpy() for c in feats.columns}
        feats = _conform(idx, values, feature_set)
    else:
        feats = feats.reindex(columns=sorted(feats.columns))
        for c in feats.columns:
            if all(is_missing(v) or (is_number(v) and not isinstance(v, str)) for v in feats[c]):
                feats[c] = pd.to_numeric(feats[c], errors="coerce").astype("float64")
    feats["segment"] = pd.Series([r[2] for r in rows], index=idx, dtype=object)
    feats["label"] = pd.array([r[3] for r in rows], dtype="Int64")
    feats["feature_set_version"] = pd.Series([r[4] for r in rows], index=idx, dtype=object)
    return feats
