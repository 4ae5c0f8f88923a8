"""Sessions, paths, transitions, step matrix and friction on the hand-computed tiny table
(see conftest.py), read from a real warehouse on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from journey_ml.db.models import Event
from journey_ml.journeys import (
    JourneyDataError,
    compare,
    compare_periods,
    friction,
    path_table,
    sessionise,
    step_matrix,
    top_paths,
    transitions,
    two_proportion_test,
)
from journey_ml.journeys.read import read_events
from tests.journeys.conftest import AS_OF, tiny_rows

GAP = timedelta(days=30)


def _journeys(frame, level="stage", **kw):
    return sessionise(frame, as_of=AS_OF, level=level, gap=GAP, outcome_types=["closed_won"],
                      exclude_event_types=["email_sent"], **kw)


@pytest.fixture
def warehouse_frame(engine):
    with engine.begin() as conn:
        conn.execute(sa.insert(Event.__table__), list(tiny_rows()))
    return read_events(engine, AS_OF)


def test_read_is_strictly_before_as_of(engine):
    with engine.begin() as conn:
        conn.execute(sa.insert(Event.__table__), list(tiny_rows()))
    f = read_events(engine, datetime(2026, 1, 10, tzinfo=UTC))
    assert f["occurred_at"].max() < pd.Timestamp("2026-01-10", tz="UTC")
    assert "closed_won" not in set(f["event_type"])  # a1's conversion is at T exactly: not seen


def test_sessions(warehouse_frame):
    j = _journeys(warehouse_frame)
    t = j.table.sort_values(["entity_id", "start"]).reset_index(drop=True)
    assert list(t["entity_id"]) == ["a1", "a2", "a3", "a3", "a4"]
    assert list(t["status"]) == ["converted", "exited", "exited", "ongoing", "exited"]
    assert list(t["n_steps"]) == [3, 2, 1, 2, 3]
    assert t["value"].tolist() == [1000.0, 0, 0, 0, 0]
    paths = j.path_strings()
    assert sorted(paths) == ["awareness", "awareness > consideration", "awareness > consideration > decision",
                             "awareness > consideration > decision", "consideration > decision"]


def test_transitions(warehouse_frame):
    tr = transitions(_journeys(warehouse_frame)).set_index(["from", "to"])
    assert tr.loc[("(start)", "awareness"), "count"] == 4
    assert tr.loc[("(start)", "awareness"), "probability"] == pytest.approx(0.8)
    assert tr.loc[("awareness", "consideration"), "count"] == 3
    assert tr.loc[("awareness", "consideration"), "median_hours"] == pytest.approx(24)
    assert tr.loc[("consideration", "decision"), "median_hours"] == pytest.approx(72)
    assert tr.loc[("decision", "(conversion)"), "probability"] == pytest.approx(1 / 3)
    assert tr.loc[("decision", "(conversion)"), "median_hours"] == pytest.approx(120)
    assert tr.loc[("decision", "(ongoing)"), "count"] == 1
    assert tr.loc[("decision", "(exit)"), "count"] == 1
    # every row of probabilities sums to 1
    assert tr.groupby(level="from")["probability"].sum().tolist() == pytest.approx([1.0] * 4)


def test_friction_by_hand(warehouse_frame):
    f = friction(_journeys(warehouse_frame))
    assert list(f["step"]) == ["decision", "awareness", "consideration"]  # ranked by lost conversions
    d = f.set_index("step")
    assert d.loc["decision", "journeys"] == 3 and d.loc["decision", "exits"] == 1
    assert d.loc["decision", "exit_rate"] == pytest.approx(1 / 3)
    assert d.loc["decision", "lost_conversions"] == pytest.approx(0.5)
    assert d.loc["awareness", "conversion_through"] == pytest.approx(0.25)
    assert d.loc["awareness", "conversion_not_through"] == pytest.approx(0.0)
    assert d.loc["awareness", "lost_conversions"] == pytest.approx(1 / 3)
    assert d.loc["awareness", "median_hours_stuck"] == pytest.approx(24)
    assert d.loc["consideration", "median_hours_stuck"] == pytest.approx(72)
    assert math.isnan(d.loc["decision", "median_hours_stuck"])
    assert d.loc["decision", "sentence"] == ("33% of journeys that reach decision end there (1 of 3); "
                                             "about 0.5 conversions lost")


def test_step_matrix_and_top_paths(warehouse_frame):
    j = _journeys(warehouse_frame)
    m = step_matrix(j, steps=3)
    assert m[1]["awareness"] == pytest.approx(0.8) and m[1]["consideration"] == pytest.approx(0.2)
    assert m[2]["(exit)"] == pytest.approx(0.2) and m[2]["decision"] == pytest.approx(0.2)
    assert m[3]["(exit)"] == pytest.approx(0.4) and m[3]["(ongoing)"] == pytest.approx(0.2)
    assert np.allclose(m.sum(axis=0), 1.0)
    top = top_paths(j, n=3)
    conv = top["conversion"].iloc[0]
    assert conv["path"] == "awareness > consideration > decision" and conv["journeys"] == 1
    assert conv["all_journeys_on_path"] == 2 and conv["conversion_rate"] == pytest.approx(0.5)
    assert top["drop_off"].iloc[0]["path"] == "awareness > consideration > decision"
    assert top["drop_off"]["journeys"].sum() == 3


def test_levels_and_dedupe(warehouse_frame):
    ch = _journeys(warehouse_frame, level="channel")
    assert set(ch.path_strings()) == {"web"}  # web repeats collapse into one step
    pt = path_table(_journeys(warehouse_frame, level="event_type"))
    assert pt.paths["n"].sum() == 5 and len(pt.paths) == 4  # a1 and a4 share their path
    raw = _journeys(warehouse_frame, collapse_repeats=False)
    assert raw.table["n_steps"].sum() == 12


def test_bad_input_is_named(tiny_frame):
    with pytest.raises(JourneyDataError, match="no column stage"):
        _journeys(tiny_frame.drop(columns="stage"))
    broken = tiny_frame.copy()
    broken.loc[3, "occurred_at"] = None
    with pytest.raises(JourneyDataError, match="row 3: column occurred_at is empty"):
        _journeys(broken)
    with pytest.raises(JourneyDataError, match="unknown journey level"):
        _journeys(tiny_frame, level="campaign")


def test_two_proportion_test_and_comparisons(tiny_frame):
    z, p = two_proportion_test(30, 100, 10, 100)
    assert z == pytest.approx(3.5355, abs=1e-3) and p == pytest.approx(0.000407, abs=2e-5)
    j = _journeys(tiny_frame)
    c = compare(j, j, ("x", "y"))
    assert c.loc[0, "metric"] == "conversion_rate" and c.loc[0, "difference"] == 0
    assert not c["significant"].any()
    per = compare_periods(j, pd.Timestamp("2026-02-01", tz="UTC")).set_index(["metric", "step"])
    assert per.loc[("conversion_rate", ""), "before_n"] == 4 and per.loc[("conversion_rate", ""), "after_n"] == 1
    assert per.loc[("exit_rate", "decision"), "before_rate"] == pytest.approx(0.5)


def test_account_roles_by_hand():
    from journey_ml.journeys.committee import account_roles, role_summary

    t = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [("a1", "c1", "champion", 0, "awareness"), ("a1", "c2", "economic_buyer", 3, "decision"),
            ("a1", None, None, 5, "purchase"),  # an account-level event: no contact, no role
            ("a1", "c1", "champion", 4, "consideration"), ("a2", "c3", "champion", 0, "awareness")]
    ev = pd.DataFrame([{"entity_id": a, "contact_id": c, "role": r, "occurred_at": t + pd.Timedelta(days=d),
                        "stage": s, "event_type": "x", "channel": "web", "value": np.nan} for a, c, r, d, s in rows]
                      + [{"entity_id": "a1", "contact_id": None, "role": None, "occurred_at": t + pd.Timedelta(days=6),
                          "stage": "purchase", "event_type": "closed_won", "channel": "sales", "value": 10.0}])
    j = sessionise(ev, as_of=AS_OF, level="stage", gap=GAP, outcome_types=["closed_won"])
    roles = account_roles(ev, j).set_index(["account_id", "role"])
    assert roles.loc[("a1", "champion"), "events"] == 2
    assert roles.loc[("a1", "champion"), "stages"] == "awareness > consideration"
    assert roles.loc[("a1", "economic_buyer"), "days_to_first_touch"] == pytest.approx(3)
    assert bool(roles.loc[("a1", "economic_buyer"), "converted"]) and not roles.loc[("a2", "champion"), "converted"]
    s = role_summary(roles.reset_index(), accounts=2, converted_accounts=1).set_index("role")
    assert s.loc["champion", "accounts"] == 2 and s.loc["champion", "conversion_with"] == pytest.approx(0.5)
    assert s.loc["economic_buyer", "conversion_with"] == 1.0 and s.loc["economic_buyer", "conversion_without"] == 0.0


def _awkward_rows():
    """Rows the COPY path must carry exactly: microsecond times, NULL channel/stage/value, an empty-string value of a text column, quotes and
    commas, contact-only events (the account comes through the contact), a contact's role."""
    t = datetime(2026, 1, 1, 12, 0, 0, 123457, tzinfo=UTC)
    yield from tiny_rows()
    base = {"source": "odd", "value": None, "channel": None, "stage": None}
    yield {**base, "event_id": "o1", "occurred_at": t, "account_id": None, "contact_id": "c1",
           "event_type": 'say "hi", ok'}
    yield {**base, "event_id": "o2", "occurred_at": t + timedelta(microseconds=1), "account_id": "a,9",
           "contact_id": None, "event_type": "page_view", "channel": "", "value": 0.1}
    yield {**base, "event_id": "o3", "occurred_at": datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
           "account_id": None, "contact_id": "c2", "event_type": "x", "stage": "decision", "value": -2.5e-7}


@pytest.mark.parametrize("entity", ["account", "contact"])
def test_postgres_copy_path_reads_what_the_row_path_reads(pg_engine, tmp_path, entity):
    """read_events streams PostgreSQL results through COPY (minutes -> seconds at 20M
    events); SQLite goes through the cursor. The same rows give the same frame."""
    from journey_ml.db import make_engine, upgrade
    from journey_ml.db.models import Contact

    lite = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(lite)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    contacts = [{"contact_id": "c1", "account_id": "a7", "role": "champion", "source": "t", "updated_at": now},
                {"contact_id": "c2", "account_id": None, "role": None, "source": "t", "updated_at": now}]
    frames = []
    for eng in (lite, pg_engine):
        with eng.begin() as conn:
            conn.execute(sa.insert(Contact.__table__), contacts)
            conn.execute(sa.insert(Event.__table__), list(_awkward_rows()))
        f = read_events(eng, AS_OF, entity=entity, lookback_days=365)
        frames.append(f.sort_values(["entity_id", "occurred_at", "event_type"]).reset_index(drop=True))
    lite.dispose()
    sqlite_frame, pg_frame = frames
    assert len(pg_frame) == len(_rows_before(entity))
    pd.testing.assert_frame_equal(pg_frame, sqlite_frame)
    assert pg_frame["occurred_at"].dt.microsecond.tolist().count(123457) == 1
    empty = read_events(pg_engine, datetime(2000, 1, 1, tzinfo=UTC), entity=entity)
    assert list(empty.columns) == list(sqlite_frame.columns) and empty.empty


def _rows_before(entity: str) -> list[dict]:
    contact_account = {"c1": "a7", "c2": None}
    out = []
    for r in _awkward_rows():
        ent = (r["account_id"] or contact_account.get(r["contact_id"])) if entity == "account" else r["contact_id"]
        if ent is not None and r["occurred_at"] < AS_OF:
            out.append(r)
    return out
