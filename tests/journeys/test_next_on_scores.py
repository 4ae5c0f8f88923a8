"""Next-step prediction stored with each score (issue #13 item 3): a hand-made chain.

The tiny journey table (tests/journeys/conftest.py) at stage level, order 1, as of T:
  a2: awareness > consideration, exited          -> stage consideration, no next step
  a3: awareness | consideration > decision, the second journey ongoing (silent 9 days)
  a4: awareness > consideration > decision, exited (its closed_won is after T)
The chain's next steps (10 of them): consideration 3 (after awareness), decision 3,
(conversion) 1 (a1 after decision), (exit) 3 (a2 after consideration, a3's first journey
after awareness, a4 after decision). Order 0, add-one smoothed over 5 classes:
aw 1/15, co 4/15, de 4/15, conv 2/15, exit 4/15. After decision: conv 1, exit 1 (a1, a4),
so with beta 1: P = (n + P0) / (2 + 1) = aw 1/45, co 4/45, de 4/45, conv 17/45, exit 19/45.
Decision is never followed by a step, so its dwell time is unknown and a3's predicted
current stage stays decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from journey_ml.config import load_config
from journey_ml.db.models import Contact, Event, Score
from journey_ml.journeys.current import next_steps_as_of
from journey_ml.scoring import score_task
from tests.journeys.conftest import AS_OF, STAGE, tiny_rows

SCORED_AT = datetime(2026, 3, 2, tzinfo=UTC)
A3_NEXT = {"awareness": 1 / 45, "consideration": 4 / 45, "decision": 4 / 45, "(conversion)": 17 / 45,
           "(exit)": 19 / 45}


def _config(order: int = 1):
    cfg, _ = load_config(None)
    return cfg.model_copy(update={"journeys": cfg.journeys.model_copy(update={"next_order": order})})


def _stored(engine) -> dict[str, tuple]:
    s = Score.__table__
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.c.entity_id, s.c.stage, s.c.next_steps).where(
            s.c.task == "conversion", s.c.as_of == AS_OF)).all()
    return {e: (st, nxt) for e, st, nxt in rows}


def _load(engine) -> None:
    """The tiny table, each event also naming a contact of the account (a buying committee)."""
    rows = [{**r, "contact_id": f"c_{r['account_id']}"} for r in tiny_rows()]
    contacts = [{"contact_id": f"c_a{i}", "account_id": f"a{i}", "role": "champion", "source": "test",
                 "opted_out": False, "updated_at": AS_OF - timedelta(days=90)} for i in range(1, 6)]
    with engine.begin() as conn:
        conn.execute(sa.insert(Contact.__table__), contacts)
        conn.execute(sa.insert(Event.__table__), rows)


def test_scores_store_the_hand_made_chain(engine):
    _load(engine)
    r = score_task(engine, None, _config(), "conversion", AS_OF, scored_at=SCORED_AT)
    assert r.rows_written >= 3 and "next_step" in r.phases
    got = _stored(engine)
    assert "a1" not in got  # converted before T: not a prospect
    stage, nxt = got["a3"]
    assert stage == "decision"
    assert nxt.keys() == A3_NEXT.keys()
    for k, v in A3_NEXT.items():
        assert nxt[k] == pytest.approx(v, abs=1e-12), k
    assert got["a2"] == ("consideration", None)  # ended: the step it ended at, no next step
    assert got["a4"] == ("decision", None)
    if "a5" in got:  # only email_sent (not a journey step): no journey at all
        assert got["a5"] == (None, None)


def test_an_event_at_or_after_t_changes_nothing(engine):
    t = _config()
    _load(engine)
    score_task(engine, None, t, "conversion", AS_OF, scored_at=SCORED_AT)
    before = _stored(engine)

    def ev(i, acc, when, etype):
        channel, stage = STAGE[etype]
        return {"source": "test", "event_id": f"late{i}", "occurred_at": when, "account_id": acc,
                "contact_id": None, "event_type": etype, "channel": channel, "stage": stage, "value": None}

    # at T exactly and after it: a3 reaches a new step, a2 comes back, a4 converts again
    late = [ev(0, "a3", AS_OF, "closed_won"), ev(1, "a3", AS_OF + timedelta(hours=1), "page_view"),
            ev(2, "a2", AS_OF, "demo_request"), ev(3, "a4", AS_OF + timedelta(days=2), "pricing_page_view")]
    with engine.begin() as conn:
        conn.execute(sa.insert(Event.__table__), late)
    score_task(engine, None, t, "conversion", AS_OF, scored_at=SCORED_AT)
    assert _stored(engine) == before
    # ... while scoring after those events does see them
    later = next_steps_as_of(engine, t, "conversion", AS_OF + timedelta(days=3))
    assert later.of("a2")[0] == "decision"


def test_the_stored_values_are_the_journey_maps_predictions(engine):
    """The score carries what `journeys next` shows for the task's all-entities map."""
    from journey_ml.journeys.build import cut
    from journey_ml.journeys.next_step import NextStepModel, predict_current
    from journey_ml.journeys.read import read_events

    cfg = _config(order=2)
    _load(engine)
    score_task(engine, None, cfg, "conversion", AS_OF, scored_at=SCORED_AT)
    got = _stored(engine)
    j = cut(read_events(engine, AS_OF, lookback_days=cfg.journeys.lookback_days), cfg.journeys, AS_OF, "stage",
            ["closed_won"])
    pred = predict_current(NextStepModel(order=2).fit(j), j).set_index("entity_id")
    assert list(pred.index) == ["a3"]
    stage, nxt = got["a3"]
    assert stage == pred.at["a3", "predicted_current"]
    for k, v in nxt.items():
        assert v == pytest.approx(pred.at["a3", f"p_{k}"], abs=1e-12)
