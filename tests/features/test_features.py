"""Point-in-time features on both warehouses: hand-computed journeys, leakage, labels,
populations, training frames, snapshots, reproduced feature sets and failure paths."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journey_ml.config import ConfigError, parse_config
from journey_ml.db import make_engine, upgrade
from journey_ml.features import (
    FEATURE_SET_VERSION,
    FeatureSet,
    FeatureSpec,
    build_features,
    declare_feature_set,
    discover_attributes,
    labels,
    load_snapshot,
    population,
    store_snapshot,
    training_dates,
    training_frame,
)
from journey_ml.ingest import ingest_source
from tests.conftest import RECEIVED_AT, SALT

T = datetime(2026, 3, 1, tzinfo=UTC)
SECOND = 1 / 86_400

CONFIG = {
    "taxonomy": {
        "page_view": {"channel": "web", "stage": "awareness"},
        "pricing_page_view": {"channel": "web", "stage": "consideration"},
        "demo_request": {"channel": "web", "stage": "decision"},
        "email_open": {"channel": "email", "stage": "awareness"},
        "login": {"channel": "product", "stage": "adoption"},
        "closed_won": {"channel": "sales", "stage": "purchase"},
        "invoice_paid": {"channel": "billing", "stage": "renewal"},
        "cancellation": {"channel": "billing", "stage": "churn"},
    },
    "outcomes": {"conversion": ["closed_won"], "churn": ["cancellation"]},
    "sources": [
        {"name": "crm_accounts", "kind": "accounts", "path": "accounts.csv",
         "columns": {"account_id": "AccountId", "industry": "Industry", "employees": "Employees",
                     "country": "Country"}},
        {"name": "crm_contacts", "kind": "contacts", "path": "contacts.csv",
         "columns": {"contact_id": "ContactId", "account_id": "AccountId", "role": "Role",
                     "opted_out": "OptedOut", "created_at": "CreatedDate", "email": "Email"},
         "pii": {"hash": ["Phone"]}},
        {"name": "events", "kind": "events", "path": "events",
         "columns": {"event_id": "id", "occurred_at": "ts", "contact_id": "contact", "account_id": "account",
                     "event_type": "event", "value": "amount"}},
        {"name": "outcomes", "kind": "outcomes", "path": "outcomes",
         "columns": {"outcome_id": "id", "outcome": "outcome", "occurred_at": "ts", "contact_id": "contact",
                     "account_id": "account"}},
    ],
    "tasks": {
        "conversion": {"entity": "account", "outcome": "conversion", "horizon_days": 30,
                       "population": "prospects", "customer_events": ["closed_won", "invoice_paid"],
                       "lookback_days": 180, "training_as_of_count": 3, "training_every_days": 10},
        "churn": {"entity": "account", "outcome": "churn", "horizon_days": 30, "population": "customers",
                  "customer_events": ["invoice_paid", "login"], "lookback_days": 180},
        "lead": {"entity": "contact", "outcome": "conversion", "horizon_days": 30, "population": "prospects",
                 "customer_events": ["closed_won"], "lookback_days": 180},
    },
    "features": {"windows_days": [7, 30, 90], "key_events": ["pricing_page_view", "demo_request", "login"],
                 "key_roles": ["economic_buyer", "technical_evaluator", "champion"], "max_categories": 3},
}

ACCOUNTS = """AccountId,Industry,Employees,Country,Tier,Seats
A1,Software,120,Germany,gold,10
A2,Retail,40,France,silver,5
A3,Software,15,Germany,gold,
A4,Media,8000,Japan,bronze,7
A5,Energy,300,Germany,,
A6,Software,50,Spain,,
A7,Retail,60,France,platinum,12
A8,Media,70,Germany,,
A9,Telecom,80,Italy,,
A10,Software,90,Germany,,
"""

CONTACTS = """ContactId,AccountId,Role,OptedOut,CreatedDate,Email,Phone
c1,A1,economic_buyer,false,2025-06-01T00:00:00Z,c1@x.com,111
c2,A1,technical_evaluator,true,2025-06-01T00:00:00Z,c2@x.com,222
c3,A1,champion,false,2026-01-01T00:00:00Z,c3@x.com,333
c4,A1,end_user,false,2026-04-01T00:00:00Z,c4@x.com,444
c5,A2,end_user,false,2025-01-01T00:00:00Z,c5@x.com,555
"""

EVENTS_HEADER = "id,ts,contact,account,event,amount,renewal_date\n"
# Hand-computed journeys around T = 2026-03-01T00:00:00Z.
EVENTS = """\
e1,2026-02-28T10:00:00Z,c1,A1,pricing_page_view,,
e2,2026-02-28T15:00:00Z,c1,A1,page_view,30,
e3,2026-02-10T12:00:00Z,c1,,email_open,,
e4,2026-02-20T09:00:00Z,c2,A1,demo_request,,
e5,2026-02-28T23:59:59Z,c3,A1,demo_request,,
e6,2026-03-01T00:00:00Z,c1,A1,pricing_page_view,,
e7,2026-03-05T00:00:00Z,c1,A1,closed_won,,
e8,2025-12-20T00:00:00Z,c1,A1,page_view,,
e9,2026-01-15T00:00:00Z,c3,,email_open,,
e10,2025-11-15T00:00:00Z,c1,A1,page_view,,
f1,2026-01-05T00:00:00Z,,A2,invoice_paid,100,2026-06-01
f2,2026-02-05T00:00:00Z,,A2,invoice_paid,50,2026-07-01
f3,2026-01-02T00:00:00Z,c5,A2,login,,
f4,2026-01-03T00:00:00Z,c5,A2,login,,
f5,2026-01-04T00:00:00Z,c5,A2,login,,
f6,2026-01-20T00:00:00Z,c5,A2,login,,
f7,2026-02-25T00:00:00Z,c5,A2,login,,
g1,2026-02-01T00:00:00Z,,A3,invoice_paid,20,
g2,2026-03-31T00:00:01Z,,A3,cancellation,,
h1,2026-01-10T00:00:00Z,,A4,cancellation,,
h2,2026-02-10T00:00:00Z,,A4,invoice_paid,10,
i1,2026-03-10T00:00:00Z,,A5,page_view,,
j1,2025-11-01T00:00:00Z,,A7,pricing_page_view,,
k1,2026-02-01T00:00:00Z,,A8,page_view,,
k2,2026-03-01T00:00:00Z,,A8,closed_won,,
l1,2026-02-15T00:00:00Z,,A9,page_view,,
m1,2025-06-01T00:00:00Z,,A10,page_view,,
"""
OUTCOMES = """id,outcome,ts,contact,account
o1,churn,2026-03-31T00:00:00Z,,A2
o2,conversion,2026-03-02T00:00:00Z,,A9
"""


def config():
    return parse_config(CONFIG, "test-features")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def ingest(engine, cfg, data_dir: Path, *sources: str) -> None:
    for s in sources or [s.name for s in cfg.sources]:
        res = ingest_source(engine, cfg, s, data_dir=data_dir, salt=SALT, received_at=RECEIVED_AT)
        assert res.rows_rejected == 0, (s, res)


def load(engine, tmp_path: Path):
    cfg = config()
    write(tmp_path / "accounts.csv", ACCOUNTS)
    write(tmp_path / "contacts.csv", CONTACTS)
    write(tmp_path / "events" / "a.csv", EVENTS_HEADER + EVENTS)
    write(tmp_path / "outcomes" / "a.csv", OUTCOMES)
    ingest(engine, cfg, tmp_path)
    return cfg


@pytest.fixture
def warehouse(engine, tmp_path):
    return engine, load(engine, tmp_path)


def close(a, b) -> bool:
    return (np.isnan(a) and np.isnan(b)) if isinstance(b, float) and np.isnan(b) else abs(a - b) < 1e-6


# --- hand-computed journeys --------------------------------------------------------------

A1_EXPECTED = {
    # e1, e2, e5 (Feb 28); e4 is an opted-out contact's, e6 is at T, e7 after T
    "events_7d": 3, "active_days_7d": 1, "ch_web_7d": 3, "ch_email_7d": 0,
    "pricing_page_view_7d": 1, "demo_request_7d": 1, "stage_decision_7d": 1,
    # + e3 (email, only the contact: attributed through c1)
    "events_30d": 4, "active_days_30d": 2, "ch_email_30d": 1, "stage_awareness_30d": 2,
    # + e8 (Dec 20), e9 (Jan 15, email via c3)
    "events_90d": 6, "active_days_90d": 4, "ch_email_90d": 2,
    # + e10 (Nov 15, before every window)
    "days_since_last_event": SECOND, "days_since_first_event": 106.0,
    "days_since_pricing_page_view": 14 / 24, "days_since_demo_request": SECOND, "days_since_login": np.nan,
    # last 30 d: 4 events; the 30 d before: e9 -> (4 - 1) / (1 + 1)
    "trend_30d": 1.5, "usage_decline_30d": 0.0,
    "furthest_stage": 2.0,  # decision
    "stage_awareness_days": 105 + 15 / 24, "stage_decision_days": 0.0, "stage_purchase_days": np.nan,
    "value_sum_90d": 30.0, "revenue_90d": 0.0, "days_to_renewal": np.nan,
    # c1 and c3 (c2 opted out, c4 created after T)
    "contacts_known": 2, "contacts_engaged_90d": 2,
    "role_economic_buyer_engaged_90d": 1, "role_technical_evaluator_engaged_90d": 0,
    "role_champion_engaged_90d": 1, "days_since_role_champion": SECOND,
    "days_since_role_technical_evaluator": np.nan, "days_since_role_economic_buyer": 9 / 24,
    "key_roles_missing": 1,  # technical_evaluator (only opted out)
    "employees": 120.0, "industry": "Software", "country": "Germany", "attr_tier": "gold", "attr_seats": 10.0,
}

A2_EXPECTED = {
    "events_30d": 2, "ch_billing_30d": 1, "ch_product_30d": 1, "login_30d": 1,
    # product: 1 login in the last 30 d, 4 in the 30 before -> (4 - 1) / 4
    "usage_decline_30d": 0.75, "trend_30d": (2 - 5) / (5 + 1),
    "revenue_90d": 150.0, "value_sum_90d": 150.0,
    "days_to_renewal": 122.0,  # latest renewal_date (f2: 2026-07-01) - T
    "furthest_stage": 6.0,  # renewal
    "stage_renewal_days": 31.0, "stage_adoption_days": 54.0,
    "days_since_login": 4.0, "contacts_known": 1, "contacts_engaged_90d": 1,
    "key_roles_missing": 2, "industry": "Retail", "country": "France", "attr_tier": "other",
}


def test_hand_computed_features(warehouse):
    engine, cfg = warehouse
    ff = build_features(engine, cfg, "conversion", T)
    assert list(ff.frame.columns) == ff.feature_set.names()
    assert ff.frame.index.name == "entity_id"
    # A2-A4 are customers, A5 has only events after T, A6 none, A10 only outside the lookback
    assert list(ff.frame.index) == ["A1", "A7", "A8", "A9"]
    row = ff.frame.loc["A1"]
    for name, want in A1_EXPECTED.items():
        assert close(row[name], want) if not isinstance(want, str) else row[name] == want, (name, row[name], want)

    churn = build_features(engine, cfg, "churn", T).frame
    assert list(churn.index) == ["A2", "A3"]  # A4 cancelled within the lookback
    row = churn.loc["A2"]
    for name, want in A2_EXPECTED.items():
        assert close(row[name], want) if not isinstance(want, str) else row[name] == want, (name, row[name], want)

    # an entity with no event in any window: counts 0, only recency and tenure
    a7 = ff.frame.loc["A7"]
    assert a7["events_90d"] == 0 and a7["active_days_90d"] == 0 and a7["trend_30d"] == 0
    assert close(a7["days_since_last_event"], 120.0) and close(a7["days_since_first_event"], 120.0)
    assert close(a7["days_since_pricing_page_view"], 120.0) and a7["furthest_stage"] == 1
    assert np.isnan(a7["stage_awareness_days"]) and a7["stage_consideration_days"] == 0
    assert a7["attr_tier"] == "platinum" and a7["attr_seats"] == 12  # gold, bronze, platinum: top 3
    assert a7["contacts_known"] == 0 and a7["key_roles_missing"] == 2
    # dtypes: numeric float64, categorical object
    fs = ff.feature_set
    assert all(ff.frame[c].dtype == np.float64 for c in fs.numeric())
    assert all(ff.frame[c].dtype == object for c in fs.categorical())


def test_contact_task_and_opted_out_contacts(warehouse):
    engine, cfg = warehouse
    ff = build_features(engine, cfg, "lead", T)
    assert list(ff.frame.index) == ["c1", "c3", "c5"]  # c2 opted out
    c1 = ff.frame.loc["c1"]
    assert c1["events_30d"] == 3 and c1["ch_email_30d"] == 1 and c1["active_days_30d"] == 2
    assert close(c1["days_since_first_event"], 106.0)
    assert c1["role"] == "economic_buyer" and c1["industry"] == "Software" and c1["employees"] == 120
    assert "contacts_known" not in ff.frame.columns and "attr_phone" not in ff.frame.columns
    assert "c2" not in population(engine, cfg, "lead", T)


def test_sqlite_and_postgresql_agree(tmp_path, pg_engine):
    lite = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(lite)
    cfg = load(lite, tmp_path / "lite")
    load(pg_engine, tmp_path / "pg")
    for task in ("conversion", "churn", "lead"):
        a = build_features(lite, cfg, task, T)
        b = build_features(pg_engine, cfg, task, T)
        assert a.feature_set == b.feature_set
        pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=False, rtol=1e-12)
        pd.testing.assert_series_equal(labels(lite, cfg, task, T, a.frame.index),
                                       labels(pg_engine, cfg, task, T, b.frame.index))
    lite.dispose()


# --- leakage and labels ---------------------------------------------------------------------

def test_events_at_or_after_t_never_change_features(warehouse, tmp_path):
    engine, cfg = warehouse
    before = {t: build_features(engine, cfg, t, T).frame for t in ("conversion", "churn", "lead")}
    later = """\
n1,2026-03-01T00:00:00Z,c1,A1,demo_request,5,2027-01-01
n2,2026-03-02T00:00:00Z,c3,,login,,
n3,2026-03-02T00:00:00Z,,A2,invoice_paid,99,2027-01-01
n4,2026-04-01T00:00:00Z,,A7,closed_won,,
n5,2026-03-01T00:00:00.000001Z,,A9,page_view,,
"""
    write(tmp_path / "events" / "b.csv", EVENTS_HEADER + later)
    write(tmp_path / "outcomes" / "b.csv", "id,outcome,ts,contact,account\no9,churn,2026-03-01T00:00:00Z,,A3\n")
    ingest(engine, cfg, tmp_path, "events", "outcomes")
    for task, frame in before.items():
        pd.testing.assert_frame_equal(build_features(engine, cfg, task, T).frame, frame)


def test_labels_use_only_the_horizon(warehouse):
    engine, cfg = warehouse
    ids = pd.Index(["A1", "A7", "A8", "A9", "A6"])
    y = labels(engine, cfg, "conversion", T, ids)
    # the label window is [T, T + H): A1: closed_won at T+4d; A8: closed_won exactly at T
    # (the label's, not the features'); A9: outcomes-table row at T+1d
    assert y.to_dict() == {"A1": 1, "A7": 0, "A8": 1, "A9": 1, "A6": 0}
    assert y.dtype == np.int64 and y.index.name == "entity_id"
    churn = labels(engine, cfg, "churn", T, pd.Index(["A2", "A3", "A4"]))
    # A2: outcome row exactly at T + 30 d is the next window's; A3: cancellation at T + 30 d + 1 s too
    assert churn.to_dict() == {"A2": 0, "A3": 0, "A4": 0}
    # one second later A2's row is inside the window, A3's cancellation still at its (open) end
    later = labels(engine, cfg, "churn", T + timedelta(seconds=1), pd.Index(["A2", "A3"]))
    assert later.to_dict() == {"A2": 1, "A3": 0}
    assert labels(engine, cfg, "churn", T + timedelta(seconds=2), pd.Index(["A3"])).tolist() == [1]
    # A8's closed_won at T is no longer in the window starting just after it
    assert labels(engine, cfg, "conversion", T + timedelta(seconds=1), pd.Index(["A8"])).tolist() == [0]


# --- populations, dates, training frames -----------------------------------------------------

def test_population_rules(warehouse):
    engine, cfg = warehouse
    assert list(population(engine, cfg, "conversion", T)) == ["A1", "A7", "A8", "A9"]
    assert list(population(engine, cfg, "churn", T)) == ["A2", "A3"]
    # after A8's closed_won (at T) A8 is a customer, not a prospect
    assert "A8" not in population(engine, cfg, "conversion", T + timedelta(seconds=1))
    # A9 converted per the outcomes table at T + 1 d: no longer a prospect after it
    assert "A9" not in population(engine, cfg, "conversion", T + timedelta(days=2))
    # A2's churn outcome row at T + 30 d takes it out of the customers that follow
    assert "A2" not in population(engine, cfg, "churn", T + timedelta(days=31))
    # lookback: A10's only event is 273 days before T
    assert "A10" in population(engine, cfg, "conversion", datetime(2025, 7, 1, tzinfo=UTC))
    # the standalone population and build_features' agree
    for task in ("conversion", "churn", "lead"):
        for when in (T, T + timedelta(days=2), T + timedelta(days=31)):
            assert list(build_features(engine, cfg, task, when).frame.index) == list(population(engine, cfg, task, when))


def test_other_windows_and_a_short_lookback(warehouse):
    engine, cfg = warehouse
    data = cfg.model_dump()
    data["features"]["windows_days"] = [14, 120]
    data["tasks"]["churn"]["lookback_days"] = 45
    other = parse_config(data, "test-features-windows")
    ff = build_features(engine, other, "conversion", T)
    assert [n for n in ff.frame.columns if n.startswith("events_")] == ["events_14d", "events_120d"]
    a7 = ff.frame.loc["A7"]
    assert a7["events_120d"] == 1 and a7["events_14d"] == 0  # j1 is exactly T - 120 d: inside
    a1 = ff.frame.loc["A1"]
    assert a1["events_120d"] == 7 and a1["ch_email_120d"] == 2 and a1["active_days_120d"] == 5
    assert close(a1["trend_30d"], 1.5) and a1["value_sum_90d"] == 30
    # a 45-day lookback: A4's cancellation (Jan 10) is outside it, its invoice (Feb 10) inside
    churn = build_features(engine, other, "churn", T)
    assert list(churn.frame.index) == ["A2", "A3", "A4"] == list(population(engine, other, "churn", T))


def test_as_of_inside_a_day(warehouse):
    """Windows start at T - w to the microsecond; active days are UTC calendar days."""
    engine, cfg = warehouse
    t = datetime(2026, 2, 17, 12, tzinfo=UTC)  # T - 7 d is e3's time (Feb 10 12:00) exactly
    a1 = build_features(engine, cfg, "conversion", t).frame.loc["A1"]
    assert (a1["events_7d"], a1["active_days_7d"], a1["events_30d"], a1["active_days_30d"]) == (1, 1, 1, 1)
    assert (a1["events_90d"], a1["active_days_90d"]) == (3, 3)  # e3, e9, e8 (e10 is 94 days back)
    later = build_features(engine, cfg, "conversion", t + timedelta(microseconds=1)).frame.loc["A1"]
    assert (later["events_7d"], later["active_days_7d"], later["active_days_30d"]) == (0, 0, 1)
    # same day as two events, between them: only the earlier one counts
    noon = build_features(engine, cfg, "conversion", datetime(2026, 2, 28, 12, tzinfo=UTC)).frame.loc["A1"]
    assert (noon["events_7d"], noon["active_days_7d"], noon["pricing_page_view_7d"]) == (1, 1, 1)
    assert close(noon["days_since_last_event"], 2 / 24)


def test_training_dates_and_validation():
    cfg = config()
    end = datetime(2026, 6, 30, 17, 45, tzinfo=UTC)
    dates = training_dates(cfg, "conversion", end, data_start=datetime(2025, 1, 1, tzinfo=UTC))
    assert dates == [datetime(2026, 5, 11, tzinfo=UTC), datetime(2026, 5, 21, tzinfo=UTC),
                     datetime(2026, 5, 31, tzinfo=UTC)]
    with pytest.raises(ValueError, match=r"task 'conversion': 3 training dates 10 days apart with a 30-day "
                                         r"horizon need more than 50 days of data; the data spans 40 days"):
        training_dates(cfg, "conversion", end, data_start=end - timedelta(days=40))
    with pytest.raises(ValueError, match="data_end must be timezone-aware"):
        training_dates(cfg, "conversion", datetime(2026, 6, 30))


def test_training_frame_stacks_dates_with_labels(warehouse):
    engine, cfg = warehouse
    dates = [T - timedelta(days=10), T]
    df = training_frame(engine, cfg, "conversion", dates)
    ff = build_features(engine, cfg, "conversion", T)
    assert list(df.columns) == ["entity_id", "as_of", *ff.feature_set.names(), "label"]
    first = df[df["as_of"] == pd.Timestamp(dates[0])]
    last = df[df["as_of"] == pd.Timestamp(T)].set_index("entity_id")
    assert set(first["entity_id"]) == {"A1", "A7", "A8", "A9"}  # A9's page_view is Feb 15
    assert last["label"].to_dict() == {"A1": 1, "A7": 0, "A8": 1, "A9": 1}
    # A8's closed_won at T is inside [T - 10 d, T - 10 d + 30 d)
    assert first.set_index("entity_id")["label"].to_dict() == {"A1": 1, "A7": 0, "A8": 1, "A9": 1}
    pd.testing.assert_frame_equal(last.drop(columns=["as_of", "label"]), ff.frame, check_names=False)
    assert df["label"].dtype == np.int64


# --- snapshots and feature sets ---------------------------------------------------------------

def test_snapshot_round_trip_and_restore_replaces(warehouse):
    engine, cfg = warehouse
    ff = build_features(engine, cfg, "conversion", T)
    y = labels(engine, cfg, "conversion", T, ff.frame.index)
    seg = pd.Series({"A1": "smb", "A7": "smb"})
    created = datetime(2026, 3, 2, tzinfo=UTC)
    assert store_snapshot(engine, ff, y, seg, created_at=created) == 4
    got = load_snapshot(engine, "conversion", T, ff.feature_set)
    pd.testing.assert_frame_equal(got[ff.feature_set.names()], ff.frame)
    assert got["label"].tolist() == [1, 0, 1, 1] and got["segment"].tolist() == ["smb", "smb", None, None]
    assert set(got["feature_set_version"]) == {FEATURE_SET_VERSION}
    # without a feature set: sorted names, numbers as float
    plain = load_snapshot(engine, "conversion", T)
    assert list(plain.columns[:-3]) == sorted(ff.feature_set.names())
    assert plain["events_7d"].dtype == np.float64 and plain.loc["A1", "industry"] == "Software"
    # storing again replaces (no duplicates), labels can be filled in later
    assert store_snapshot(engine, ff, created_at=created + timedelta(days=1)) == 4
    again = load_snapshot(engine, "conversion", T, ff.feature_set)
    assert len(again) == 4 and again["label"].isna().all()
    assert load_snapshot(engine, "conversion", T + timedelta(days=1)).empty


def _awkward_frame(n: int = 3) -> tuple:
    """A feature frame whose values the COPY path must store exactly as the row path does."""
    from journey_ml.features import FeatureFrame, FeatureSet, FeatureSpec

    frame = pd.DataFrame({
        "x": [0.1, 1 / 3, np.nan][:n], "tiny": [1e-300, -0.0, 2.5e17][:n], "count_7d": [3.0, 0.0, 12.0][:n],
        "industry": pd.Series(['say "hi", ok', None, "Retail"][:n], dtype=object),
        "tier": pd.Categorical(["gold", "it's", None][:n]),
    }, index=pd.Index(["A1", "A,2", 'A"3'][:n], name="entity_id"))
    cats = {"industry": ('say "hi", ok', "Retail"), "tier": ("gold", "it's")}
    specs = tuple(FeatureSpec(c, "categorical", c, "test", cats[c]) if c in cats else FeatureSpec(c, "numeric", c, "test")
                  for c in frame.columns)
    fs = FeatureSet("test-v1", "account", specs)
    return FeatureFrame("conversion", T, fs, frame), fs


def _work_tables_left(engine) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_class WHERE relname LIKE '\\_journey\\_snapshot\\_%'")).scalar()


@pytest.mark.parametrize("variant", ["shared", "long names", "no create privilege"])
def test_snapshot_copy_path_stores_what_the_row_path_stores(pg_engine, pg_url, monkeypatch, variant):
    """On PostgreSQL a snapshot goes in by COPY with server-built JSON (1M entities: minutes
    -> a minute); the stored documents, labels and segments equal the row path's, whichever
    way the server builds them: ``to_jsonb`` over unlogged work tables (parallel), the
    ``jsonb_build_object`` fallback for names longer than an identifier, or temporary work
    tables for a role that may not create tables. No work table outlives the write."""
    import sqlalchemy as sa

    from journey_ml.db import make_engine
    from journey_ml.features import builder

    writer = pg_engine
    if variant == "long names":
        monkeypatch.setattr(builder, "_PG_NAME_BYTES", 3)
    if variant == "no create privilege":
        with pg_engine.begin() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = 'journey_dml_only'")).scalar():
                conn.execute(sa.text("CREATE ROLE journey_dml_only LOGIN"))
            conn.execute(sa.text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
            conn.execute(sa.text("GRANT SELECT, INSERT, UPDATE, DELETE ON feature_snapshots TO journey_dml_only"))
        writer = make_engine(sa.engine.make_url(pg_url).set(username="journey_dml_only"))
        with writer.connect() as conn:
            assert not conn.execute(sa.text("SELECT has_schema_privilege('public', 'CREATE')")).scalar()
    ff, fs = _awkward_frame()
    y = pd.Series({"A1": 1, 'A"3': 0})
    seg = pd.Series({"A,2": "smb"})
    created = datetime(2026, 3, 2, tzinfo=UTC)
    assert builder._copyable(ff.frame)
    assert store_snapshot(writer, ff, y, seg, created_at=created) == 3
    assert _work_tables_left(pg_engine) == 0
    copied = load_snapshot(pg_engine, "conversion", T, fs)
    with pg_engine.connect() as conn:
        docs = dict(conn.execute(sa.text("SELECT entity_id, features::text FROM feature_snapshots")).all())
    monkeypatch.setattr(builder, "_copyable", lambda frame: False)
    assert store_snapshot(pg_engine, ff, y, seg, created_at=created) == 3  # replaces, by the row path
    rowwise = load_snapshot(pg_engine, "conversion", T, fs)
    with pg_engine.connect() as conn:
        docs_rows = dict(conn.execute(sa.text("SELECT entity_id, features::text FROM feature_snapshots")).all())
        same = conn.execute(sa.text("SELECT count(*) FROM feature_snapshots")).scalar()
    assert same == 3
    pd.testing.assert_frame_equal(copied, rowwise)
    got = copied.loc[ff.frame.index]
    pd.testing.assert_frame_equal(got[["x", "tiny", "count_7d"]], ff.frame[["x", "tiny", "count_7d"]])
    for c in ("industry", "tier"):
        assert [None if pd.isna(v) else v for v in got[c]] == [None if pd.isna(v) else v for v in ff.frame[c]]
    assert got.loc["A1", "x"] == 0.1 and got.loc["A,2", "x"] == 1 / 3 and np.isnan(got.loc['A"3', "x"])
    assert got.loc["A1", "tiny"] == 1e-300 and got.loc['A"3', "tiny"] == 2.5e17
    assert got["label"].tolist() == [1, pd.NA, 0] and got["segment"].tolist() == [None, "smb", None]
    assert {k: json.loads(v) for k, v in docs.items()} == {k: json.loads(v) for k, v in docs_rows.items()}
    if writer is not pg_engine:
        writer.dispose()


def test_a_failed_snapshot_write_leaves_the_stored_snapshot_and_no_work_tables(pg_engine):
    """A segment name too long for its column fails the COPY path's INSERT: the error
    names the column, the earlier snapshot stays as it was, no work table is left."""
    import sqlalchemy as sa

    ff, fs = _awkward_frame()
    created = datetime(2026, 3, 2, tzinfo=UTC)
    store_snapshot(pg_engine, ff, created_at=created)
    before = load_snapshot(pg_engine, "conversion", T, fs)
    with pytest.raises(sa.exc.DataError, match="character varying"):
        store_snapshot(pg_engine, ff, segments=pd.Series({"A1": "s" * 65}), created_at=created)
    pd.testing.assert_frame_equal(load_snapshot(pg_engine, "conversion", T, fs), before)
    assert _work_tables_left(pg_engine) == 0


def test_given_feature_set_is_reproduced_exactly(warehouse, tmp_path):
    engine, cfg = warehouse
    fs = build_features(engine, cfg, "conversion", T).feature_set
    assert discover_attributes(engine, cfg, "conversion") == {"Seats": None, "Tier": ["gold", "bronze", "platinum"]}
    # a model trained elsewhere: an attribute this warehouse lacks, a narrower category list,
    # and a different column order
    feats = list(fs.features)
    feats[fs.names().index("industry")] = dataclasses.replace(fs.spec("industry"), categories=("Retail",))
    feats.append(FeatureSpec("attr_gone", "numeric", "gone", "attribute", point_in_time=False, source="Gone"))
    feats.append(FeatureSpec("attr_kind", "categorical", "kind", "attribute", ("a",), False, "Kind"))
    feats.reverse()
    model_fs = FeatureSet.from_dict(json.loads(json.dumps(FeatureSet(fs.version, fs.entity, tuple(feats)).to_dict())))
    assert model_fs.features == tuple(feats)
    ff = build_features(engine, cfg, "conversion", T, model_fs)
    assert list(ff.frame.columns) == model_fs.names()
    assert ff.frame["attr_gone"].isna().all() and ff.frame["attr_gone"].dtype == np.float64
    assert ff.frame["attr_kind"].isna().all()
    assert ff.frame.loc["A1", "industry"] == "other" and ff.frame.loc["A9", "industry"] == "other"
    assert ff.feature_set is model_fs
    with pytest.raises(ValueError, match="is for accounts, task 'lead' scores contacts"):
        build_features(engine, cfg, "lead", T, model_fs)


def test_declaration_names_and_round_trip():
    cfg = config()
    fs = declare_feature_set(cfg, cfg.task("churn"), {"Tier": ["gold"], "Seats": None, "plan name!": ["x"]},
                             {"industry": ["Software"]})
    names = fs.names()
    assert names[:4] == ["events_7d", "active_days_7d", "ch_web_7d", "ch_email_7d"]
    for n in ("demo_request_90d", "pricing_page_view_30d", "usage_decline_30d", "trend_30d", "furthest_stage",
              "stage_churn_days", "days_to_renewal", "key_roles_missing", "role_champion_engaged_90d",
              "days_since_role_economic_buyer", "attr_plan_name", "attr_tier", "attr_seats"):
        assert n in names, n
    assert fs.categorical() == ["industry", "country", "attr_plan_name", "attr_tier"]
    assert fs.spec("attr_seats").point_in_time is False and fs.spec("events_7d").point_in_time
    assert FeatureSet.from_dict(json.loads(json.dumps(fs.to_dict()))) == fs
    lead = declare_feature_set(cfg, cfg.task("lead"), {})
    assert "role" in lead.names() and "contacts_known" not in lead.names()
    with pytest.raises(ValueError, match="not a feature set dict"):
        FeatureSet.from_dict({"version": "x"})


# --- failure paths ---------------------------------------------------------------------------

def test_unknown_task_and_naive_as_of(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(engine)
    cfg = config()
    with pytest.raises(ConfigError, match=r"unknown task 'nope' \(configured: conversion, churn, lead\)"):
        build_features(engine, cfg, "nope", T)
    with pytest.raises(ValueError, match="as_of must be timezone-aware"):
        build_features(engine, cfg, "conversion", datetime(2026, 3, 1))
    with pytest.raises(ValueError, match="as_of must be timezone-aware"):
        labels(engine, cfg, "conversion", datetime(2026, 3, 1), pd.Index([]))
    # an empty warehouse: an empty frame with every column
    ff = build_features(engine, cfg, "conversion", T)
    assert ff.frame.empty and list(ff.frame.columns) == ff.feature_set.names()
    engine.dispose()


def test_as_of_with_no_history_older_than_the_windows(warehouse):
    """Early in the data every event is inside the widest window: the older part is empty."""
    engine, cfg = warehouse
    t = datetime(2025, 6, 2, tzinfo=UTC)  # m1 (Jun 1) is the first event of the fixture
    ff = build_features(engine, cfg, "conversion", t)
    a10 = ff.frame.loc["A10"]
    assert (a10["events_7d"], a10["events_90d"]) == (1, 1)
    assert close(a10["days_since_first_event"], 1.0) and close(a10["days_since_last_event"], 1.0)


def test_feature_memo_builds_once_and_hands_out_copies(warehouse, monkeypatch):
    """The daily cycle's steps share a FeatureMemo: the same task, T and feature set are
    built once (1M entities: most of a minute each), and every caller gets the frame
    build_features gives, its own copy."""
    from journey_ml.features import builder
    from journey_ml.features import memo as memo_mod
    from journey_ml.features.memo import FeatureMemo

    engine, cfg = warehouse
    calls = []
    real = builder.build_features

    def counted(*a, **k):
        calls.append(a[2:4])
        return real(*a, **k)

    monkeypatch.setattr(memo_mod, "build_features", counted)
    expected = real(engine, cfg, "conversion", T)
    fs = expected.feature_set
    memo = FeatureMemo(keep=1)
    first = memo(engine, cfg, "conversion", T, feature_set=fs)
    pd.testing.assert_frame_equal(first.frame, expected.frame)
    first.frame.iloc[0, 0] = -1.0  # a caller's change stays its own
    first.frame["extra"] = 1
    second = memo(engine, cfg, "conversion", T, feature_set=fs)
    pd.testing.assert_frame_equal(second.frame, expected.frame)
    assert len(calls) == 1 and (memo.built, memo.reused) == (1, 1)
    # another date is another build; keep=1 forgets the first
    memo(engine, cfg, "conversion", T - timedelta(days=10), feature_set=fs)
    memo(engine, cfg, "conversion", T, feature_set=fs)
    assert len(calls) == 3
    # without a feature set it declares from the data each time, as build_features does
    memo(engine, cfg, "conversion", T)
    memo(engine, cfg, "conversion", T)
    assert len(calls) == 5
