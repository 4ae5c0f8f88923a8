"""Attribution on small hand-made path sets whose answers are known by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from journey_ml.journeys import path_table, sessionise
from journey_ml.journeys.attribution import attribute, removal_effects, shapley_by_enumeration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def journeys(spec):
    """spec: [(channels, converted, value, copies)]: one entity per journey, a day per step,
    the conversion the day after the last step."""
    rows, e = [], 0
    for channels, converted, value, copies in spec:
        for _ in range(copies):
            e += 1
            for i, ch in enumerate(channels):
                rows.append((f"e{e}", T0 + timedelta(days=i), f"{ch}_touch", ch, None))
            if converted:
                rows.append((f"e{e}", T0 + timedelta(days=len(channels)), "closed_won", "sales", value))
    f = pd.DataFrame(rows, columns=["entity_id", "occurred_at", "event_type", "channel", "value"])
    return sessionise(f, as_of=AS_OF, level="channel", gap=timedelta(days=30), outcome_types=["closed_won"])


TWO = [(["A", "B"], True, 100.0, 1), (["A"], False, 0, 1), (["B"], True, 50.0, 1)]
THREE = [(["A", "B", "C"], True, 10.0, 1), (["A", "C"], True, 20.0, 2), (["B"], False, 0, 3),
         (["C", "A"], False, 0, 1), (["D"], False, 0, 2), (["B", "D"], False, 0, 1)]


def credit(res, method, what="conversions"):
    return res.wide(what)[method].to_dict()


def test_two_channels_every_method_by_hand():
    res = attribute(journeys(TWO), orders=(1,), half_life_days=1.0, bootstrap=0)
    assert res.conversions == 2 and res.value == 150.0 and res.journeys == 3
    assert credit(res, "first_touch") == {"A": 1, "B": 1}
    assert credit(res, "first_touch", "value") == {"A": 100, "B": 50}
    assert credit(res, "last_touch") == {"A": 0, "B": 2}
    assert credit(res, "linear") == {"A": 0.5, "B": 1.5}
    assert credit(res, "position_based") == {"A": 0.5, "B": 1.5}
    # half-life one day: A two days before the conversion (1/4), B one day (1/2) -> 1/3, 2/3
    td = credit(res, "time_decay")
    assert td["A"] == pytest.approx(1 / 3) and td["B"] == pytest.approx(5 / 3)
    assert credit(res, "shapley") == {"A": 0.5, "B": 1.5}
    # order 1: P(conv) = 2/3 * 1/2 + 1/3 = 2/3; without A 1/3 (RE 1/2); without B 0 (RE 1)
    re = res.removal_effects.set_index("channel")["removal_effect"]
    assert re["A"] == pytest.approx(0.5) and re["B"] == pytest.approx(1.0)
    mk = credit(res, "markov_1")
    assert mk["A"] == pytest.approx(2 / 3) and mk["B"] == pytest.approx(4 / 3)
    assert credit(res, "markov_1", "value")["A"] == pytest.approx(50.0)


def _dense_order1(counts: dict[str, dict[str, int]], remove: str | None = None) -> float:
    """P(conversion from start) of a first-order chain, by numpy on hand-written counts."""
    states = ["start", "A", "B", "C", "D"]
    q = np.zeros((5, 5))
    r = np.zeros(5)
    for i, s in enumerate(states):
        total = sum(counts[s].values())
        for to, n in counts[s].items():
            if to == "conv":
                r[i] = n / total
            elif to != "null":
                q[i, states.index(to)] = n / total
    if remove:
        q[states.index(remove)] = 0
        r[states.index(remove)] = 0
    return float(np.linalg.solve(np.eye(5) - q, r)[0])


def test_three_channels_markov_exact_and_zero_for_a_channel_never_converting():
    j = journeys(THREE)
    res = attribute(j, orders=(1, 2, 3), bootstrap=0)
    counts = {"start": {"A": 3, "B": 4, "C": 1, "D": 2}, "A": {"B": 1, "C": 2, "null": 1},
              "B": {"C": 1, "null": 3, "D": 1}, "C": {"conv": 3, "A": 1}, "D": {"null": 3}}
    base = _dense_order1(counts)
    pt = path_table(j)
    p, eff = removal_effects(pt, len(j.labels), 1)
    assert p == pytest.approx(base, abs=1e-12)
    for i, ch in enumerate(j.labels):
        assert eff[i] == pytest.approx(1 - _dense_order1(counts, ch) / base, abs=1e-12)
    # order 3 >= every path's length: the chain is the tree of prefixes, so a channel's removal
    # effect is the share of conversions on paths through it: A 1, B 1/3, C 1, D 0
    mk3 = credit(res, "markov_3")
    assert mk3["A"] == pytest.approx(9 / 7) and mk3["B"] == pytest.approx(3 / 7)
    assert mk3["C"] == pytest.approx(9 / 7) and mk3["D"] == 0
    for method in res.table["method"].unique():
        assert credit(res, method)["D"] == pytest.approx(0, abs=1e-12), method
        assert credit(res, method, "value")["D"] == pytest.approx(0, abs=1e-12), method


def test_every_method_sums_to_the_totals_with_seeded_intervals():
    j = journeys(THREE + TWO)
    a = attribute(j, bootstrap=40, seed=3)
    b = attribute(j, bootstrap=40, seed=3)
    pd.testing.assert_frame_equal(a.table, b.table)
    sums = a.table.groupby("method")[["conversions", "value"]].sum()
    assert np.allclose(sums["conversions"], a.conversions) and a.conversions == 5
    assert np.allclose(sums["value"], a.value) and a.value == 200.0
    t = a.table
    assert (t["conversions_low"] <= t["conversions"] + 1e-9).all()
    assert (t["conversions"] <= t["conversions_high"] + 1e-9).all()
    assert (t["conversions_high"] > t["conversions_low"]).any()


def test_shapley_closed_form_equals_enumeration():
    rng = np.random.default_rng(0)
    chans = list("ABCDEF")
    spec = []
    for _ in range(60):
        path = list(rng.choice(chans, size=rng.integers(1, 5)))
        spec.append((path, bool(rng.random() < 0.4), float(rng.integers(1, 100)), 1))
    j = journeys(spec)
    res = attribute(j, orders=(1,), bootstrap=0)
    pt = path_table(j)
    exact = shapley_by_enumeration(pt, len(j.labels))
    assert credit(res, "shapley") == pytest.approx(dict(zip(j.labels, exact, strict=True)))
    exact_v = shapley_by_enumeration(pt, len(j.labels), "value")
    assert credit(res, "shapley", "value") == pytest.approx(dict(zip(j.labels, exact_v, strict=True)))
    with pytest.raises(ValueError, match="exact up to 15"):
        shapley_by_enumeration(pt, 16)
