"""The in-memory feature path (`features.memory.PostedRows`, what the API scores from)
gives exactly the frame of the SQL path on the same rows: random journeys (hypothesis)
and every hand-computed journey of test_features, every task of both entity kinds.

The SQL frame is built the way the API used to build it: the rows loaded into a scratch
SQLite warehouse with the real schema, then `build_features`.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journey_ml.api.scratch import DATA_TABLES, ScratchPool
from journey_ml.config import parse_config
from journey_ml.features import build_features, feature_set_for
from journey_ml.features.memory import PostedRows, property_number
from journey_ml.schemas import STAGES

DEFAULT = yaml.safe_load((Path(__file__).parents[2] / "journey_ml" / "default_config.yaml").read_text())


def _config():
    """The packaged configuration plus tasks of the other population rules and a contact
    task of each, and two numeric properties (so every query path is exercised)."""
    d = copy.deepcopy(DEFAULT)
    d["features"]["numeric_properties"] = ["amount", "seats"]
    d["features"]["max_categories"] = 3
    base = {"outcome": "conversion", "horizon_days": 30, "customer_events": ["closed_won", "invoice_paid"],
            "lookback_days": 45}
    d["tasks"].update({
        "account_active": {**base, "entity": "account", "population": "active"},
        "account_all": {**base, "entity": "account", "population": "all", "lookback_days": 400},
        "lead": {**base, "entity": "contact", "population": "prospects", "lookback_days": 180},
        "contact_customers": {**base, "entity": "contact", "population": "customers", "outcome": "churn"},
        "contact_all": {**base, "entity": "contact", "population": "all"},
        "filtered": {**base, "entity": "account", "population": "active",
                     "population_filter": {"attributes": {"tier": ["gold", "10"]}}},
    })
    return parse_config(d, "test-memory")


CFG = _config()
TAXONOMY = {k: (v["channel"], v["stage"]) for k, v in DEFAULT["taxonomy"].items()}


@pytest.fixture(scope="module")
def pool():
    p = ScratchPool(1)
    yield p
    p.close()


def rows_of(engine) -> dict[str, list[dict]]:
    with engine.connect() as conn:
        return {t.name: [dict(r._mapping) for r in conn.execute(sa.select(t))] for t in DATA_TABLES}


def assert_same(sql: pd.DataFrame, mem: pd.DataFrame, what: str) -> None:
    """Same columns, dtypes, index; NaN == NaN; floats within 1e-9 (relative or absolute)."""
    pd.testing.assert_frame_equal(sql, mem, check_exact=False, rtol=1e-9, atol=1e-9, obj=what)


def assert_paths_agree(pool: ScratchPool, cfg, rows: dict, as_of: datetime, tasks=None) -> int:
    """For every task: the declared feature set and the frame agree between the paths
    (declared from the data, and with a fixed feature set). Returns the rows compared."""
    posted = PostedRows.of(copy.deepcopy(rows))
    compared = 0
    with pool.borrow(rows) as scratch:
        for task in tasks or cfg.tasks:
            fs_sql = feature_set_for(scratch, cfg, task)
            assert feature_set_for(posted, cfg, task) == fs_sql, task
            sql = build_features(scratch, cfg, task, as_of)
            mem = build_features(posted, cfg, task, as_of)
            assert mem.feature_set == sql.feature_set
            assert_same(sql.frame, mem.frame, f"{task} as of {as_of.isoformat()}")
            fixed = build_features(posted, cfg, task, as_of, feature_set=sql.feature_set).frame
            assert_same(sql.frame, fixed, f"{task} (given feature set)")
            compared += len(sql.frame)
    return compared


# --- random journeys -------------------------------------------------------------------------

DAY = timedelta(days=1)
US = timedelta(microseconds=1)
T_CHOICES = [datetime(2026, 3, 15, tzinfo=UTC), datetime(2026, 3, 15, 13, 7, 5, 250_000, tzinfo=UTC),
             datetime(2026, 3, 15, 23, 59, 59, 999_999, tzinfo=UTC), datetime(2026, 3, 15, 0, 0, 0, 1, tzinfo=UTC)]
SPANS = [0, 7, 30, 45, 60, 90, 180, 365, 400]  # windows, trend halves, value span, lookbacks
ACCOUNTS = ["A1", "A2"]
CONTACTS = ["C1", "C2", "C3", "C4"]
ROLES = ["economic_buyer", "technical_evaluator", "procurement", "champion", "end_user", "intern", None]
EVENT_TYPES = [*TAXONOMY, "unmapped_type"]
NUMBERISH = st.sampled_from([" 5", "5 ", "+.5e3", "-2.", "1e", "abc", "", "7", "1_000", "0x10", "3.25"])
PROP = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                 st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), NUMBERISH,
                 st.lists(st.integers(0, 3), max_size=2), st.fixed_dictionaries({"a": st.integers(0, 3)}))
RENEWAL = st.one_of(st.none(), st.sampled_from(["2026-07-01", "2026-04-01T12:00:00Z", "not a date", "2025-12-31"]),
                    st.integers(1, 3), st.booleans())
ATTRS = st.one_of(st.none(), st.just({}), st.fixed_dictionaries(
    {}, optional={"tier": st.sampled_from(["gold", "silver", "bronze", "10", None]),
                  "seats": st.one_of(st.integers(0, 50), st.floats(0, 50, allow_nan=False), st.just("ten"))}))


@st.composite
def offsets(draw, t: datetime) -> datetime:
    """A time near T: T itself, a window edge +- 1 us, a UTC midnight boundary, far history,
    or anywhere in the last ~400 days (and a little after T)."""
    midnight = datetime(t.year, t.month, t.day, tzinfo=UTC)
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return t - draw(st.sampled_from(SPANS)) * DAY + draw(st.sampled_from([-1, 0, 1])) * US
    if kind == 1:
        return midnight - draw(st.integers(-1, 92)) * DAY + draw(st.sampled_from([-1, 0, 1])) * US
    if kind == 2:
        return t - draw(st.integers(500, 3000)) * DAY
    return t + timedelta(microseconds=draw(st.integers(-400 * 86_400 * 10**6, 3 * 86_400 * 10**6)))


@st.composite
def journeys(draw) -> tuple[dict, datetime]:
    t = draw(st.sampled_from(T_CHOICES))
    created = st.one_of(st.none(), offsets(t))
    accounts = [{"account_id": a, "name": None, "source": "api", "updated_at": t,
                 "industry": draw(st.sampled_from(["Software", "Retail", "Health", "Energy", None])),
                 "employees": draw(st.one_of(st.none(), st.integers(1, 5000))),
                 "annual_revenue": draw(st.one_of(st.none(), st.floats(0, 1e8, allow_nan=False))),
                 "country": draw(st.sampled_from(["Germany", "France", "Spain", "Italy", None])),
                 "created_at": draw(created), "attributes": draw(ATTRS)}
                for a in draw(st.lists(st.sampled_from(ACCOUNTS), unique=True, max_size=2))]
    contacts = [{"contact_id": c, "account_id": draw(st.sampled_from([*ACCOUNTS, "A3", None])),
                 "email_hash": None, "role": draw(st.sampled_from(ROLES)), "opted_out": draw(st.booleans()),
                 "created_at": draw(created), "attributes": draw(ATTRS), "source": "api", "updated_at": t}
                for c in draw(st.lists(st.sampled_from(CONTACTS), unique=True, max_size=4))]
    events = []
    for i in range(draw(st.integers(0, 30))):
        etype = draw(st.sampled_from(EVENT_TYPES))
        chan, stage = TAXONOMY.get(etype, (None, None))
        props = draw(st.one_of(st.none(), st.fixed_dictionaries(
            {}, optional={"amount": PROP, "seats": PROP, "renewal_date": RENEWAL})))
        events.append({
            "source": draw(st.sampled_from(["web", "crm"])), "event_id": f"e{i}", "occurred_at": draw(offsets(t)),
            "contact_id": draw(st.sampled_from([*CONTACTS, "C5", None])),
            "account_id": draw(st.sampled_from([*ACCOUNTS, None, None])), "event_type": etype,
            "channel": draw(st.sampled_from([chan, chan, "partner", None])),
            "stage": draw(st.sampled_from([stage, stage, *STAGES, None])),
            "value": draw(st.one_of(st.none(), st.floats(-1e4, 1e6, allow_nan=False))),
            "properties": props or None})
    outcomes = [{"source": "crm", "outcome_id": f"o{i}",
                 "outcome": draw(st.sampled_from(["conversion", "churn", "upsell"])), "occurred_at": draw(offsets(t)),
                 "contact_id": draw(st.sampled_from([*CONTACTS, None])),
                 "account_id": draw(st.sampled_from([*ACCOUNTS, None])), "value": None, "properties": None}
                for i in range(draw(st.integers(0, 3)))]
    return {"accounts": accounts, "contacts": contacts, "events": events, "outcomes": outcomes}, t


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(journeys())
def test_random_journeys_give_the_sql_frame(pool, journey):
    rows, t = journey
    assert_paths_agree(pool, CFG, rows, t)


def test_random_journeys_reach_populations():
    """The generator is not vacuous: its journeys put entities in every task's population."""

    from hypothesis import find

    for task in CFG.tasks:
        def populated(j, task=task):
            return len(build_features(PostedRows.of(j[0]), CFG, task, j[1]).frame) >= 1
        find(journeys(), populated, settings=settings(max_examples=500, database=None))


def test_property_numbers_read_as_sqlite_reads_them(pool):
    """JSON values as `property_number` reads them in SQLite: numbers, booleans as 1/0,
    text matching the number pattern; lists, objects and other text are not numbers."""
    values = [None, True, False, 3, -2.5, 1e20, " 5", "5 ", "+.5e3", "-2.", "1e", "abc", "", [1], {"a": 1}, "3.25"]
    t = T_CHOICES[0]
    events = [{"source": "web", "event_id": f"e{i}", "occurred_at": t - DAY, "contact_id": None, "account_id": "A1",
               "event_type": "page_view", "channel": "web", "stage": "awareness", "value": None,
               "properties": {"amount": v}} for i, v in enumerate(values)]
    from journey_ml.features import _queries as Q

    with pool.borrow({"events": events}) as scratch, scratch.connect() as conn:
        got = dict(conn.execute(sa.select(Q.E.c.event_id, Q.property_number("amount"))).all())
    sql = [got[f"e{i}"] for i in range(len(values))]
    mem = [property_number(v) for v in values]
    assert [None if np.isnan(m) else m for m in mem] == sql


# --- the hand-computed journeys of test_features -----------------------------------------------

def test_hand_computed_journeys_give_the_sql_frame(pool, tmp_path):
    from tests.features.reference_frames import FIXTURE_DATES, fixture_warehouse

    engine, cfg = fixture_warehouse(tmp_path)
    rows = rows_of(engine)
    # the rows themselves (not only the pool's copy) give the warehouse's frames
    posted = PostedRows.of(rows)
    n = 0
    for d in [*FIXTURE_DATES, datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)]:
        for task in cfg.tasks:
            assert_same(build_features(engine, cfg, task, d).frame, build_features(posted, cfg, task, d).frame,
                        f"{task} as of {d.isoformat()}")
        n += assert_paths_agree(pool, cfg, rows, d)
    assert n > 20
    # other windows and a short lookback (test_other_windows_and_a_short_lookback)
    from tests.features.test_features import CONFIG

    d = copy.deepcopy(CONFIG)
    d["features"]["windows_days"] = [3, 14, 120]
    for t in d["tasks"].values():
        t["lookback_days"] = 20
    other = parse_config(d, "other windows")
    for d in FIXTURE_DATES:
        assert_paths_agree(pool, other, rows, d)
    engine.dispose()
