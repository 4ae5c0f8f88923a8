"""Next-step probabilities on a hand-made chain; lift on a constructed treated/holdout split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from journey_ml.db.models import Event, Score
from journey_ml.journeys.lift import lift_table, needed_per_arm
from journey_ml.journeys.next_step import NextStepModel, evaluate_next_step, predict_current
from journey_ml.journeys.read import matured_scores, store_lift, stored_lift
from tests.journeys.test_attribution import journeys


def test_next_step_probabilities_by_hand():
    # A>B exited x2, A>B>C exited x1, A>C converted x1
    j = journeys([(["A", "B"], False, 0, 2), (["A", "B", "C"], False, 0, 1), (["A", "C"], True, 5.0, 1)])
    m1 = NextStepModel(order=1, beta=0.0).fit(j)
    p = m1.predict_proba(["A"])
    assert p["B"] == pytest.approx(3 / 4) and p["C"] == pytest.approx(1 / 4) and p["(exit)"] == 0
    p = m1.predict_proba(["A", "B"])  # order 1 forgets A: after B, exit 2 of 3, C 1 of 3
    assert p["(exit)"] == pytest.approx(2 / 3) and p["C"] == pytest.approx(1 / 3)
    p = m1.predict_proba(["C"])
    assert p["(conversion)"] == pytest.approx(0.5) and p["(exit)"] == pytest.approx(0.5)
    m0 = NextStepModel(order=0).fit(j)
    counts = {"B": 3, "C": 2, "(exit)": 3, "(conversion)": 1, "A": 0}  # 9 next steps, add-one smoothed
    p0 = m0.predict_proba(["A", "B"])
    for name, n in counts.items():
        assert p0[name] == pytest.approx((n + 1) / (9 + 5))
    # an unseen context backs off to the shorter one and still sums to 1
    m2 = NextStepModel(order=2).fit(j)
    assert sum(m2.predict_proba(["C", "B"]).values()) == pytest.approx(1.0)


def test_next_step_accuracy_beats_order_zero_on_a_deterministic_chain():
    # every journey goes A > B > C > conversion: order 1 knows the next step, order 0 cannot
    j = journeys([(["A", "B", "C"], True, 1.0, 60), (["A", "B"], False, 0, 5)])
    acc = evaluate_next_step(j, order=1, holdout_share=0.3, seed=1)
    assert acc.test_journeys > 0 and acc.train_journeys > 0
    assert acc.top1 > 0.9 > acc.baseline_top1
    assert acc.log_loss < acc.baseline_log_loss


def test_predicted_current_stage():
    j = journeys([(["A", "B"], False, 0, 3)])
    # as of T the journeys are long silent: exited, nothing ongoing
    assert predict_current(NextStepModel(order=1).fit(j), j).empty


def _split(rng, n_t, n_h, p_t, p_h, action="call", band="high", segment="smb"):
    return pd.DataFrame({"action": action, "band": band, "segment": segment,
                         "holdout": np.r_[np.zeros(n_t, bool), np.ones(n_h, bool)],
                         "outcome": np.r_[rng.random(n_t) < p_t, rng.random(n_h) < p_h].astype(int)})


def test_lift_recovers_a_known_effect_and_the_stopping_rule_holds():
    rng = np.random.default_rng(5)
    s = pd.concat([_split(rng, 4000, 4000, 0.30, 0.20), _split(rng, 40, 40, 0.9, 0.1, band="low")])
    t = lift_table(s, min_n=100).set_index(["action", "band", "segment"])
    big = t.loc[("call", "high", "smb")]
    assert big["treated_n"] == 4000 and big["holdout_n"] == 4000
    assert big["ci_low"] < 0.10 < big["ci_high"] and abs(big["difference"] - 0.10) < 0.03
    assert big["status"] == "lift" and big["p_value"] < 1e-6
    small = t.loc[("call", "low", "smb")]  # a huge difference on 40 + 40: not claimed
    assert small["difference"] > 0.5 and small["status"] == "collecting"
    assert t.loc[("call", "(all)", "(all)"), "treated_n"] == 4040
    none = lift_table(_split(rng, 3000, 3000, 0.2, 0.2), min_n=100).iloc[0]
    assert none["status"] == "no difference"
    with pytest.raises(ValueError, match="lift needs column"):
        lift_table(s.drop(columns="holdout"))
    assert needed_per_arm(0.2, 0.05) == pytest.approx(1090, abs=15)


def test_lift_from_the_warehouse_round_trip(engine):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    scores, events = [], []
    for i in range(20):
        hold = i % 2 == 1
        scores.append({"task": "conversion", "entity_id": f"a{i}", "as_of": t0, "entity_kind": "account",
                       "probability": 0.5, "band": "high", "segment": "smb", "mode": "segment_model",
                       "action": "call", "action_holdout": hold, "scored_at": t0})
        if not hold or i == 1:  # all 10 treated convert, 1 of 10 held out
            day = 30 if i != 4 else 120  # a4 converts after the 90-day horizon: not counted
            events.append({"source": "s", "event_id": f"w{i}", "occurred_at": t0 + timedelta(days=day),
                           "account_id": f"a{i}", "event_type": "closed_won", "channel": "sales", "stage": "purchase"})
    with engine.begin() as conn:
        conn.execute(sa.insert(Score.__table__), scores)
        conn.execute(sa.insert(Event.__table__), events)
    m = matured_scores(engine, task="conversion", outcome_types=["closed_won"], horizon_days=90,
                       as_of=t0 + timedelta(days=200))
    assert len(m) == 20 and m["outcome"].sum() == 10  # 9 treated in time + a1
    assert matured_scores(engine, task="conversion", outcome_types=["closed_won"], horizon_days=90,
                          as_of=t0 + timedelta(days=60)).empty  # not matured yet
    t = lift_table(m.rename(columns={}), min_n=5)
    n = store_lift(engine, "conversion", t0, t, horizon_days=90, measured_as_of=t0 + timedelta(days=200),
                   computed_at=t0 + timedelta(days=200))
    assert n == 2
    store_lift(engine, "conversion", t0, t, horizon_days=90, measured_as_of=t0 + timedelta(days=200),
               computed_at=t0 + timedelta(days=201))  # a re-run replaces
    back = stored_lift(engine, "conversion")
    assert len(back) == 2
    row = back.set_index("band").loc["high"]
    assert row["treated_rate"] == pytest.approx(0.9) and row["holdout_rate"] == pytest.approx(0.1)
    assert row["status"] == "lift"
