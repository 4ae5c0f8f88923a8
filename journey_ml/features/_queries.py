"""The aggregate SQL behind the feature builder (SQLAlchemy Core, SQLite and PostgreSQL).

Every query attributes rows to the task's entity the same way (`_attributed`) and leaves
opted-out contacts out. Timestamps are compared through the `UTCDateTime` column type, so
the bound values match the stored format on both backends. The only dialect branches
are `_day_mask` (UTC calendar-day bit masks for active days) and the fetch in
`fetch_frame` (COPY on PostgreSQL).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from journey_ml.db.models import Account, Contact, Event, Outcome
from journey_ml.features.boundary import in_history, in_label_window
from journey_ml.schemas import STAGES

E = Event.__table__
C = Contact.__table__
A = Account.__table__
O = Outcome.__table__  # noqa: E741
DAY = timedelta(days=1)


def _clock_value(kind: str, days: int, as_of: datetime) -> Any:
    if kind == "t":
        return as_of - days * DAY
    day0 = as_of.astimezone(UTC).date()
    if kind == "d":
        return datetime(day0.year, day0.month, day0.day, tzinfo=UTC) - days * DAY
    return day0 if kind == "date" else day0.isoformat()


class Clock:
    """The T-derived values of a statement as named bind parameters, so one statement
    (built and compiled once per plan and dialect, see `prepare`) serves every T.

    ``before(d)`` = T - d days, ``day_start(d)`` = T's UTC midnight - d days, ``day0()``
    = T's UTC date (``day0(text=True)``: as ISO text). The SQL is the one the same
    expressions with literal datetimes give, only the parameter names differ.
    """

    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self.specs: dict[str, tuple[str, int]] = {}
        self._binds: dict[str, sa.BindParameter] = {}

    def _bind(self, kind: str, days: int, type_: Any) -> sa.BindParameter:
        name = f"jm_{kind}_{days}".replace("-", "m")
        b = self._binds.get(name)
        if b is None:
            self.specs[name] = (kind, days)
            b = self._binds[name] = sa.bindparam(name, _clock_value(kind, days, self.as_of), type_=type_)
        return b

    def before(self, days: int) -> sa.BindParameter:
        return self._bind("t", days, E.c.occurred_at.type)

    def day_start(self, days: int) -> sa.BindParameter:
        return self._bind("d", days, E.c.occurred_at.type)

    def day0(self, text: bool = False) -> sa.BindParameter:
        return self._bind("datestr", 0, sa.String()) if text else self._bind("date", 0, sa.Date())

    def values(self, as_of: datetime) -> dict[str, Any]:
        return {n: _clock_value(k, d, as_of) for n, (k, d) in self.specs.items()}


When = datetime | Clock  # T itself (literal binds) or a Clock (named binds)


def _before(as_of: When, days: int) -> Any:
    """T - days (a datetime, or the clock's bind parameter)."""
    return as_of.before(days) if isinstance(as_of, Clock) else as_of - days * DAY


def _day_start(as_of: When, days: int) -> Any:
    """T's UTC midnight - days."""
    if isinstance(as_of, Clock):
        return as_of.day_start(days)
    return _clock_value("d", days, as_of)


@dataclass(frozen=True)
class Plan:
    """What to compute, resolved from the configuration (raw values, not column names)."""

    entity: str
    windows: tuple[int, ...]
    channels: tuple[str, ...]
    key_events: tuple[str, ...]
    roles: tuple[str, ...]  # empty for contact tasks
    lookback_days: int
    population: str
    customer_events: tuple[str, ...]
    outcome: str
    outcome_events: tuple[str, ...]
    trend_days: int
    value_days: int
    # numeric event properties (features.numeric_properties): summed per window and lifetime
    properties: tuple[str, ...] = ()


# a number written as text, in a pattern POSIX (PostgreSQL ~) and Python (SQLite REGEXP) read alike
_NUMBER = r"^ *[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)? *$"


def property_number(key: str) -> sa.ColumnElement:
    """The event's ``properties[key]`` as a float; NULL when missing or not a number
    (exports carry numbers as JSON numbers or as text)."""
    text = sa.cast(E.c.properties[key].as_string(), sa.String)
    return sa.case((text.regexp_match(_NUMBER), sa.cast(text, sa.Float)))


@dataclass
class Query:
    """A select plus how its columns map back: internal label -> meaning."""

    stmt: sa.Select
    names: dict[str, str]  # internal label -> result key
    timestamps: tuple[str, ...] = ()  # internal labels holding timestamps
    strings: tuple[str, ...] = ()  # labels holding text (every other column is numeric)
    categorical: tuple[str, ...] = ()  # text labels read as pandas Categorical (repetitive values)
    integers: tuple[str, ...] = ()  # exact int64 labels (bit masks), never NULL


def _attributed(entity: str, table: sa.Table = E) -> tuple[sa.FromClause, sa.ColumnElement, list]:
    """FROM clause, entity-id expression and filters for rows of ``table`` (events/outcomes).

    Account tasks: the row's account, else its contact's account (email events carry only
    the contact). Contact tasks: the row's contact. Rows of opted-out contacts never count.
    """
    if entity == "account":
        frm = table.outerjoin(C, C.c.contact_id == table.c.contact_id)
        ent = sa.func.coalesce(table.c.account_id, C.c.account_id)
        return frm, ent, [ent.is_not(None), C.c.opted_out.is_not(sa.true())]
    # an anti-join (NOT EXISTS), not NOT IN: keeps the PostgreSQL plan parallel
    opted_out = sa.exists().where(C.c.contact_id == table.c.contact_id, C.c.opted_out.is_(sa.true()))
    ent = table.c.contact_id
    return table, ent, [ent.is_not(None), ~opted_out]


DAY_BITS = 63  # days per bit-mask word (bit 63 would be the sign bit)


def _day_mask(t: sa.ColumnElement, as_of: When, first: int, last: int, dialect: str) -> sa.ColumnElement:
    """The one dialect-specific expression: per group, the OR of ``1 << (k - first)`` over
    rows with k in [first, last], k = UTC calendar days between T's UTC day (day0) and the
    row's day.

    PostgreSQL: date arithmetic and bit_or. SQLite: julianday differences and sum(DISTINCT)
    (bits of distinct days are distinct powers of two, so their distinct sum is their OR).
    The caller restricts the rows by time, so k is evaluated once per row and aggregate.
    """
    clock = isinstance(as_of, Clock)
    if dialect == "postgresql":
        day0 = as_of.day0() if clock else sa.literal(as_of.astimezone(UTC).date(), sa.Date)
        k = day0 - sa.cast(sa.func.timezone("UTC", t), sa.Date)
        agg = sa.func.bit_or
    else:  # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC)
        day0 = as_of.day0(text=True) if clock else as_of.astimezone(UTC).date().isoformat()
        k = sa.cast(sa.func.julianday(day0) - sa.func.julianday(sa.func.substr(t, 1, 10)), sa.Integer)

        def agg(x: sa.ColumnElement) -> sa.ColumnElement:
            return sa.func.sum(sa.distinct(x))

    in_word = sa.and_(t >= _day_start(as_of, last), t < _day_start(as_of, first - 1))
    bit = sa.cast(sa.literal(1), sa.BigInteger).op("<<")(k - first)
    return sa.func.coalesce(agg(sa.case((in_word, bit))), 0)


def _count(cond: sa.ColumnElement) -> sa.ColumnElement:
    """Conditional count: count(CASE WHEN cond THEN 1 END) (0 when nothing matches; NULLs
    skip the aggregate's transition call, cheaper than sum(CASE ... ELSE 0 END))."""
    return sa.func.count(sa.case((cond, 1)))


class _Cols:
    """Collects labelled aggregate columns under short internal labels (f0, f1, ...)."""

    def __init__(self) -> None:
        self.cols: list[sa.ColumnElement] = []
        self.names: dict[str, str] = {}
        self.timestamps: list[str] = []
        self.integers: list[str] = []

    def add(self, expr: sa.ColumnElement, name: str, timestamp: bool = False, integer: bool = False) -> None:
        label = f"f{len(self.cols)}"
        self.cols.append(expr.label(label))
        self.names[label] = name
        if timestamp:
            self.timestamps.append(label)
        if integer:
            self.integers.append(label)


def window_query(p: Plan, as_of: When, dialect: str) -> Query:
    """The recent part of the history, [T - span, T), per entity *and* (event_type,
    channel, stage).

    Narrow on purpose: a handful of aggregates per row instead of one per (window x
    channel/stage/key event) column; the builder pivots the result into the per-channel,
    per-stage and per-key-event columns (about 3x faster on PostgreSQL than ~100 CASE
    aggregates per row). Columns: first/last time, n (all rows), lb (rows in the
    population lookback), n_<w> per window, last/prev (trend halves), value (sum over the
    value window) and, for account tasks, role_<i> / role_last_<i> (events and latest
    time of contacts in the i-th key role).

    Active days ride along as day bit masks: days_<j> = the UTC days (k days before T's
    day, k in word j) with events, and edge_<w> = events in [T - w, start of day w - 1)
    (the part of the boundary day inside a window when T is not midnight). The builder
    ORs the masks per entity: active_days_<w> = popcount(days k < w) + (edge_<w> > 0).
    No separate (entity, day) aggregate.
    """
    frm, ent, where = _attributed(p.entity)
    t = E.c.occurred_at
    span = window_span(p)
    q = _Cols()
    q.add(sa.func.min(t), "first", True)
    q.add(sa.func.max(t), "last_at", True)
    q.add(sa.func.count(), "n")
    # windows as wide as the span are `n` (the builder aliases them): fewer columns to ship
    if p.lookback_days < span:
        q.add(_count(t >= _before(as_of, p.lookback_days)), "lb")
    for w in p.windows:
        if w < span:
            q.add(_count(t >= _before(as_of, w)), f"n_{w}")
    q.add(_count(t >= _before(as_of, p.trend_days)), "last")
    q.add(_count(sa.and_(t < _before(as_of, p.trend_days), t >= _before(as_of, 2 * p.trend_days))), "prev")
    inv = t >= _before(as_of, p.value_days)
    q.add(sa.func.sum(sa.case((inv, E.c.value))), "value")
    # lifetime value: the span's part (the older part is in history_query)
    q.add(sa.func.sum(E.c.value), "value_all")
    q.add(sa.func.count(E.c.value), "value_n")
    for i, key in enumerate(p.properties):
        v = property_number(key)
        for w in p.windows:
            q.add(sa.func.sum(sa.case((t >= _before(as_of, w), v))), f"prop_{i}_{w}")
        q.add(sa.func.sum(v), f"prop_{i}_all")
        q.add(sa.func.count(v), f"prop_{i}_n")
    for i, r in enumerate(p.roles):
        q.add(_count(sa.and_(inv, C.c.role == r)), f"role_{i}")
        q.add(sa.func.max(sa.case((C.c.role == r, t))), f"role_last_{i}", True)
    longest = max(p.windows, default=0)
    for j in range(-(-longest // DAY_BITS)):
        first, last = j * DAY_BITS, min((j + 1) * DAY_BITS, longest) - 1
        q.add(_day_mask(t, as_of, first, last, dialect), f"days_{j}", integer=True)
    for w in p.windows:
        q.add(_count(sa.and_(t >= _before(as_of, w), t < _day_start(as_of, w - 1))), f"edge_{w}")
    dims = (E.c.event_type, E.c.channel, E.c.stage)
    stmt = (sa.select(ent.label("entity_id"), *dims, *q.cols).select_from(frm)
            .where(t < _before(as_of, 0), t >= _before(as_of, span), *where).group_by(ent, *dims))
    return Query(stmt, q.names, tuple(q.timestamps), categorical=("entity_id", "event_type", "channel", "stage"),
                 integers=tuple(q.integers))


def window_span(p: Plan) -> int:
    """Days of history the window query reads: the widest window, trend or value span."""
    return max((*p.windows, 2 * p.trend_days, p.value_days))


def engaged_contacts_query(p: Plan, as_of: When) -> Query:
    """Account tasks: distinct contacts with events in the value window."""
    frm, ent, where = _attributed("account")
    t = E.c.occurred_at
    stmt = (sa.select(ent.label("entity_id"), sa.func.count(sa.distinct(E.c.contact_id)).label("f0"))
            .select_from(frm)
            .where(t < _before(as_of, 0), t >= _before(as_of, p.value_days), E.c.contact_id.is_not(None), *where)
            .group_by(ent))
    return Query(stmt, {"f0": f"contacts_engaged_{p.value_days}d"})


def _population_counts(p: Plan, as_of: When) -> dict[str, sa.ColumnElement]:
    """Counts behind the population rules: lb = rows in the lookback; cust = customer rows
    (ever for prospects, in the lookback for customers); out = outcome rows in the
    lookback (customers only)."""
    t = E.c.occurred_at
    in_lb = t >= _before(as_of, p.lookback_days)
    if p.population in ("active", "all"):
        return {"lb": _count(in_lb)}
    cust = E.c.event_type.in_(p.customer_events)
    if p.population == "prospects":
        return {"lb": _count(in_lb), "cust": _count(cust)}
    return {"lb": _count(in_lb), "cust": _count(sa.and_(in_lb, cust)),
            "out": _count(sa.and_(in_lb, E.c.event_type.in_(p.outcome_events)))}


def population_query(p: Plan, as_of: datetime) -> Query:
    """Entities meeting the event part of the population rules as of T (HAVING)."""
    frm, ent, where = _attributed(p.entity)
    t = E.c.occurred_at
    c = _population_counts(p, as_of)
    having = {"prospects": (c.get("lb", 0) > 0, c.get("cust", 0) == 0),
              "customers": (c.get("cust", 0) > 0, c.get("out", 0) == 0),
              "active": (c["lb"] > 0,), "all": ()}[p.population]
    stmt = (sa.select(ent.label("entity_id")).select_from(frm)
            .where(in_history(t, as_of), *where).group_by(ent))
    if having:
        stmt = stmt.having(sa.and_(*having))
    return Query(stmt, {})


def population_counts_query(p: Plan, as_of: datetime) -> Query:
    """Per entity with an event before T: every count the population rules read (n = all
    rows, plus those of `_population_counts`), without the rules applied (diagnostics)."""
    frm, ent, where = _attributed(p.entity)
    t = E.c.occurred_at
    cols = [sa.func.count().label("n")] + [v.label(k) for k, v in _population_counts(p, as_of).items()]
    stmt = (sa.select(ent.label("entity_id"), *cols).select_from(frm)
            .where(in_history(t, as_of), *where).group_by(ent))
    return Query(stmt, {})


def known_entities_query(entity: str, as_of: When) -> sa.Select:
    """Entities of the kind in their own table as of T (created before T or undated;
    contacts not opted out): the `all` population besides entities with events."""
    tbl, key = (A, A.c.account_id) if entity == "account" else (C, C.c.contact_id)
    cond = [sa.or_(tbl.c.created_at.is_(None), tbl.c.created_at < _before(as_of, 0))]
    if entity == "contact":
        cond.append(C.c.opted_out.is_not(sa.true()))
    return sa.select(key.label("entity_id")).where(*cond)


def history_query(p: Plan, as_of: When, before: datetime | sa.BindParameter) -> Query:
    """The older part of the history, before ``before`` (= T - window span), per entity:
    first/last event, per-stage first/last, last key event and last role engagement
    times, and the population counts (combined with the window part by the builder)."""
    frm, ent, where = _attributed(p.entity)
    t = E.c.occurred_at
    q = _Cols()
    q.add(sa.func.min(t), "first", True)
    q.add(sa.func.max(t), "last_at", True)
    for s in STAGES:
        q.add(sa.func.min(sa.case((E.c.stage == s, t))), f"first:{s}", True)
        q.add(sa.func.max(sa.case((E.c.stage == s, t))), f"last:{s}", True)
    for i, k in enumerate(p.key_events):
        q.add(sa.func.max(sa.case((E.c.event_type == k, t))), f"event_last_{i}", True)
    for i, r in enumerate(p.roles):
        q.add(sa.func.max(sa.case((C.c.role == r, t))), f"role_last_{i}", True)
    for name, expr in _population_counts(p, as_of).items():
        q.add(expr, name)
    q.add(sa.func.sum(E.c.value), "value_all")
    q.add(sa.func.count(E.c.value), "value_n")
    for i, key in enumerate(p.properties):
        v = property_number(key)
        q.add(sa.func.sum(v), f"prop_{i}_all")
        q.add(sa.func.count(v), f"prop_{i}_n")
    stmt = (sa.select(ent.label("entity_id"), *q.cols).select_from(frm)
            .where(t < before, *where).group_by(ent))
    return Query(stmt, q.names, tuple(q.timestamps))


def outcome_rows_query(p: Plan, lo: Any, hi: Any) -> sa.Select:
    """Entities with a row of the task's outcome in the outcomes table at lo <= t < hi
    (lo None: since the beginning); the half-open interval of `boundary`."""
    frm, ent, where = _attributed(p.entity, O)
    t = O.c.occurred_at
    cond = [in_history(t, hi)] if lo is None else [in_label_window(t, lo, hi)]
    return sa.select(ent.label("entity_id")).select_from(frm).where(O.c.outcome == p.outcome, *cond,
                                                                    *where).distinct()


def outcome_events_query(p: Plan, lo: datetime, hi: datetime) -> sa.Select:
    """Entities with an outcome event at lo <= t < hi (the label window, see `boundary`)."""
    frm, ent, where = _attributed(p.entity)
    t = E.c.occurred_at
    return (sa.select(ent.label("entity_id")).select_from(frm)
            .where(in_label_window(t, lo, hi), E.c.event_type.in_(p.outcome_events), *where).distinct())


def renewal_query(p: Plan, as_of: When) -> sa.Select:
    """The `renewal_date` property of each entity's latest event before T that has one."""
    frm, ent, where = _attributed(p.entity)
    t = E.c.occurred_at
    rd = E.c.properties["renewal_date"].as_string()
    ranked = (sa.select(ent.label("entity_id"), rd.label("renewal_date"),
                        sa.func.row_number().over(partition_by=ent, order_by=(t.desc(), E.c.source.desc(),
                                                                              E.c.event_id.desc())).label("rn"))
              .select_from(frm).where(t < _before(as_of, 0), E.c.properties.is_not(None), rd.is_not(None), *where)
              .subquery("ranked"))
    return sa.select(ranked.c.entity_id, ranked.c.renewal_date).where(ranked.c.rn == 1)


def contacts_known_query(as_of: When) -> sa.Select:
    """Contacts per account (not opted out, created before T or undated)."""
    return (sa.select(C.c.account_id.label("entity_id"), sa.func.count().label("contacts_known"))
            .where(C.c.account_id.is_not(None), C.c.opted_out.is_not(sa.true()),
                   sa.or_(C.c.created_at.is_(None), C.c.created_at < _before(as_of, 0)))
            .group_by(C.c.account_id))


def firmographics_query(entity: str) -> sa.Select:
    """Firmographic columns per entity (accounts; contacts get their account's and their role)."""
    firm = (A.c.employees, A.c.annual_revenue, A.c.industry, A.c.country)
    if entity == "account":
        return sa.select(A.c.account_id.label("entity_id"), *firm)
    return (sa.select(C.c.contact_id.label("entity_id"), *firm, C.c.role)
            .select_from(C.outerjoin(A, A.c.account_id == C.c.account_id))
            .where(C.c.opted_out.is_not(sa.true())))


def attributes_query(entity: str) -> sa.Select:
    """Non-empty attribute JSON of every entity of the kind (opted-out contacts excluded)."""
    if entity == "account":
        return sa.select(A.c.account_id, A.c.attributes).where(A.c.attributes.is_not(None))
    return sa.select(C.c.contact_id, C.c.attributes).where(C.c.attributes.is_not(None),
                                                           C.c.opted_out.is_not(sa.true()))


def top_values_query(column: sa.Column, limit: int, *where: sa.ColumnElement) -> sa.Select:
    """The most frequent non-null values of a column, ties broken by value."""
    n = sa.func.count().label("n")
    return (sa.select(column.label("value"), n).where(column.is_not(None), *where).group_by(column)
            .order_by(n.desc(), column).limit(limit))


@dataclass
class Prepared:
    """A statement compiled once for a dialect (see `prepare`); `params` binds a T."""

    query: Query | None  # None: a plain select (rows only)
    labels: list[str]
    sql: str
    positions: tuple[str, ...] | None  # positional paramstyles: parameter names in order
    fixed: dict[str, Any]  # the parameters that do not depend on T (bind-processed)
    fixed_raw: dict[str, Any]  # the same, as given (COPY merges them client-side)
    clock: Clock
    procs: dict[str, Callable[[Any], Any] | None]  # bind processors of the clock parameters

    def params(self, as_of: datetime, *, processed: bool = True) -> Any:
        values = self.clock.values(as_of)
        if processed:
            values = {n: (f(v) if (f := self.procs.get(n)) else v) for n, v in values.items()}
            values = {**self.fixed, **values}
        else:
            values = {**self.fixed_raw, **values}
        if self.positions is None:
            return values
        return tuple(values[n] for n in self.positions)


def prepare(stmt: Query | sa.Select, clock: Clock, dialect: sa.Dialect) -> Prepared:
    """Compile a query built over ``clock`` once: the SQL text, the constant parameters
    and how to bind the clock's values for any T. On PostgreSQL a `Query` is wrapped as
    `fetch_frame` streams it (timestamps as epoch seconds, through COPY)."""
    q = stmt if isinstance(stmt, Query) else None
    sel = q.stmt if q is not None else stmt
    labels = [c.name for c in sel.selected_columns]
    copy = q is not None and dialect.name == "postgresql"
    if copy:
        sub = sel.subquery("agg")
        sel = sa.select(*[sa.cast(sa.extract("epoch", sub.c[n]), sa.Float).label(n) if n in q.timestamps
                          else sub.c[n] for n in labels])
    compiled = sel.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    raw = dict(compiled.params)
    procs: dict[str, Callable[[Any], Any] | None] = {}
    for bind, name in compiled.bind_names.items():
        procs[name] = bind.type.dialect_impl(dialect).bind_processor(dialect)
    fixed = {n: (f(v) if (f := procs.get(n)) else v) for n, v in raw.items() if n not in clock.specs}
    positions = None if copy or not dialect.positional else tuple(compiled.positiontup or ())
    return Prepared(q, labels, str(compiled), positions, fixed,
                    {n: v for n, v in raw.items() if n not in clock.specs}, clock,
                    {n: procs.get(n) for n in clock.specs})


def fetch_rows(conn: Connection, p: Prepared, as_of: datetime) -> list[tuple]:
    """The rows of a prepared statement as of T, as the driver returns them."""
    return conn.exec_driver_sql(p.sql, p.params(as_of)).fetchall()


def fetch_frame(conn: Connection, q: Query | Prepared, *, index: bool = True,
                as_of: datetime | None = None) -> pd.DataFrame:
    """Run an aggregate query into a DataFrame: entity_id plus the named columns.

    Timestamp columns come back as float seconds since the epoch (NaN when NULL), other
    non-text columns as float64, ``q.categorical`` columns as pandas Categorical. With
    ``index`` the result is indexed by entity_id (str). On PostgreSQL the result streams
    through `COPY (...) TO STDOUT` and is parsed by Arrow (millions of rows in seconds);
    on SQLite it is read through the cursor into columns. ``q`` may be `prepare`d (then
    ``as_of`` gives T).
    """
    if isinstance(q, Prepared):
        prep, q = q, q.query
        labels = prep.labels
    else:
        prep = None
        labels = [c.name for c in q.stmt.selected_columns]
    text = {"entity_id", *q.strings, *q.categorical}
    if conn.dialect.name == "postgresql":
        import pyarrow as pa

        if prep is not None:
            sql, params = prep.sql, prep.params(as_of, processed=False)
        else:
            sub = q.stmt.subquery("agg")
            cols = [sa.cast(sa.extract("epoch", sub.c[n]), sa.Float).label(n) if n in q.timestamps else sub.c[n]
                    for n in labels]
            compiled = sa.select(*cols).compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
            sql, params = str(compiled), compiled.params
        dict_type = pa.dictionary(pa.int32(), pa.string())
        types = {n: (dict_type if n in q.categorical else pa.string()) if n in text
                 else pa.int64() if n in q.integers else pa.float64() for n in labels}
        table = copy_table(conn, sql, params, types)
        if table is None:
            df = pd.DataFrame({n: pd.Series(dtype=object if n in text else "int64" if n in q.integers
                                            else "float64") for n in labels})
        else:
            df = table.to_pandas()
    else:
        rows = fetch_rows(conn, prep, as_of) if prep is not None else conn.execute(q.stmt).fetchall()
        return _frame(rows, labels, q, text, index)
    df = df.rename(columns=q.names)
    if "entity_id" not in q.categorical:
        df["entity_id"] = df["entity_id"].astype(str)
    return df.set_index("entity_id") if index else df


def _numbers(values: tuple) -> np.ndarray:
    """A numeric column as float64 (as pd.to_numeric(errors="coerce") gives it)."""
    if all(v is None or (type(v) in (int, float)) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype("float64").to_numpy()


def _frame(rows: list, labels: list[str], q: Query, text: set[str], index: bool) -> pd.DataFrame:
    """Result rows as `fetch_frame` returns them, built cheaply for small results: the
    float columns (timestamps parsed in one pass, numbers) as one 2-D block, the others
    inserted at their places; columns renamed and entity_id made the (str) index as the
    generic path does."""
    n = len(rows)
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(labels)
    names = [q.names.get(lab, lab) for lab in labels]
    stamps = [i for i, lab in enumerate(labels) if lab in q.timestamps]
    floats = [i for i, lab in enumerate(labels) if lab not in text and lab not in q.integers]
    block = np.empty((n, len(floats)))
    stamp_at: dict[int, np.ndarray] = {}
    if stamps:
        secs = _epoch_values([v for i in stamps for v in cols[i]])
        stamp_at = {i: secs[j * n:(j + 1) * n] for j, i in enumerate(stamps)}
    for j, i in enumerate(floats):
        block[:, j] = stamp_at[i] if i in stamp_at else _numbers(cols[i])
    ent = labels.index("entity_id")
    idx = None
    if index:
        if "entity_id" in q.categorical:
            idx = pd.Index(pd.Series(cols[ent], dtype=object).astype("category"), name="entity_id")
        else:
            idx = pd.Index(np.array([str(v) for v in cols[ent]], dtype=object), name="entity_id", dtype=object)
    df = pd.DataFrame(block, columns=[names[i] for i in floats], index=idx)
    fl = set(floats)
    for i, lab in enumerate(labels):
        if i in fl or (index and i == ent):
            continue
        if lab in q.categorical:
            v = pd.Series(cols[i], dtype=object).astype("category").array
        elif lab in q.integers:
            v = np.array(cols[i], dtype="int64")
        elif lab == "entity_id":
            v = np.array([str(x) for x in cols[i]], dtype=object)
        else:
            v = np.array(cols[i], dtype=object)
        df.insert(i - (1 if index and i > ent else 0), names[i], v)
    return df


def copy_table(conn: Connection, sql: str, params: dict, types: dict):
    """The rows of ``sql`` (PostgreSQL) through ``COPY ... TO STDOUT``, parsed by Arrow into
    a pyarrow Table with the given column types (NULL is an unquoted empty field, "" a
    quoted one); None when there are no rows."""
    import pyarrow.csv as pcsv

    buf = _copy_csv(conn.connection.driver_connection, sql, params)
    if buf.tell() == 0:
        return None
    buf.seek(0)
    opts = pcsv.ConvertOptions(column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False)
    return pcsv.read_csv(buf, convert_options=opts)


def _copy_csv(raw, sql: str, params: dict) -> io.BytesIO:
    """``COPY (sql) TO STDOUT`` as CSV with a header, into memory.

    Driven through libpq (psycopg's public `pq` layer) in a tight loop: the server sends
    one message per row, and psycopg's `Copy.read()` costs about twice as much Python
    time per row (seconds for millions of rows). Parameters are merged client-side, as
    psycopg does for COPY. Raises psycopg.DatabaseError with the server's message.
    """
    import psycopg
    from psycopg import pq

    query = psycopg.ClientCursor(raw).mogrify(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER)", params)
    pgconn = raw.pgconn
    res = pgconn.exec_(query.encode(raw.info.encoding))
    if res.status != pq.ExecStatus.COPY_OUT:
        raise psycopg.DatabaseError((res.error_message or b"COPY failed").decode(errors="replace"))
    buf = io.BytesIO()
    write, get = buf.write, pgconn.get_copy_data
    while True:
        n, data = get(0)
        if n <= 0:
            break
        write(data)
    error = None
    while (res := pgconn.get_result()) is not None:
        if res.status != pq.ExecStatus.COMMAND_OK:
            error = (res.error_message or b"COPY failed").decode(errors="replace")
    if n == -2 or error:
        raise psycopg.DatabaseError(error or pgconn.error_message.decode(errors="replace"))
    return buf


def fetch_ids(conn: Connection, stmt: sa.Select) -> set[str]:
    """The entity_id column of a small query, as a set of strings."""
    return {str(r[0]) for r in conn.execute(stmt)}


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _epoch_values(values: list) -> np.ndarray:
    """`_epoch` of a few values as float64: SQLite's own text form ('YYYY-MM-DD
    HH:MM:SS.ffffff', naive UTC) converted in Python exactly as pandas does it (integer
    nanoseconds, then / 1e9 in floating point); anything else through `_epoch`."""
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if v is None:
            out[i] = np.nan
        elif type(v) is str and len(v) == 26 and v[10] == " " and v[19] == ".":
            d = datetime.fromisoformat(v)
            secs = (d.toordinal() - _EPOCH_ORDINAL) * 86_400 + d.hour * 3_600 + d.minute * 60 + d.second
            out[i] = float(secs * 1_000_000_000 + d.microsecond * 1_000) / 1e9
        else:
            return _epoch(pd.Series(values, dtype=object)).to_numpy(dtype="float64")
    return out


def _epoch(s: pd.Series) -> pd.Series:
    ts = pd.to_datetime(s, utc=True, format="ISO8601")
    return (ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
