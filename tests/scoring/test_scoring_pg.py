"""Batch scoring on PostgreSQL: the COPY write path, re-runs, fallbacks and opted-out people.

The PostgreSQL world holds the same simulated exports as the SQLite one and scores with
the same registry, so these tests exercise the warehouse side (features, DELETE + COPY).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from journey_ml.db.models import Contact
from journey_ml.features import build_features
from journey_ml.scoring import ModelCache, compute_scores, score_task
from journey_ml.training import GLOBAL
from tests.scoring.conftest import SCORED_AT
from tests.scoring.test_scoring import TASK, Unreachable, _scorer_file, own_and_pooled

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def stored(engine, task=TASK) -> pd.DataFrame:
    with engine.connect() as conn:
        df = pd.read_sql(sa.text("SELECT * FROM scores WHERE task = :t ORDER BY entity_id"), conn, params={"t": task})
    df["reasons"] = [json.loads(r) if isinstance(r, str) else r for r in df["reasons"]]
    return df


def run(w, registry=None, config=None, task=TASK, **kw):
    return score_task(w.engine, w.registry if registry is None else registry, config or w.config, task, w.as_of,
                      scored_at=SCORED_AT, cache=ModelCache(), **kw)


def test_copy_writes_exactly_the_records_and_rerun_replaces(pg_world):
    w = pg_world
    assert w.engine.dialect.name == "postgresql"
    pop = build_features(w.engine, w.config, TASK, w.as_of).frame.index
    first = run(w)
    again = run(w, run_id="run-2")
    assert first.entities == again.rows_written == len(pop) > 100
    df = stored(w.engine)
    assert len(df) == len(pop) and df["entity_id"].is_unique and sorted(df["entity_id"]) == sorted(pop)
    assert set(df["run_id"]) == {"run-2"} and "write" in again.phases
    own, pooled = own_and_pooled(w)
    modes = df.groupby("segment")["mode"].first()
    assert modes[own] == "segment_model" and modes[pooled] == "global_model"
    # what COPY stored is what compute_scores returns (the API's path), field by field
    batch = compute_scores(w.engine, w.registry, w.config, TASK, w.as_of, run_id="run-2", scored_at=SCORED_AT,
                           cache=ModelCache())
    expected = pd.DataFrame(batch.records()).sort_values("entity_id").reset_index(drop=True)
    for col in ("entity_id", "band", "segment", "model_name", "mode", "mode_reason", "action", "action_holdout",
                "run_id", "entity_kind"):
        assert df[col].tolist() == expected[col].tolist(), col
    assert df["probability"].tolist() == expected["probability"].tolist()
    assert df["model_version"].tolist() == expected["model_version"].tolist()
    assert df["reasons"].tolist() == expected["reasons"].tolist()
    assert (df["as_of"] == w.as_of).all() and (df["scored_at"] == SCORED_AT).all()


def test_copy_escapes_text_and_json(pg_world):
    """Tabs, newlines, backslashes and quotes in actions and reason texts survive COPY."""
    w = pg_world
    sc = w.config.scoring
    nasty = 'call\tthe "buyer" \\ now\nplease'
    cfg = w.config.model_copy(update={"scoring": sc.model_copy(update={
        "playbook": [], "default_actions": {TASK: nasty},
        "reason_templates": {"*": 'said "{label}" \\ {value}'}})})
    run(w, registry=Unreachable(), config=cfg)
    df = stored(w.engine)
    assert (df["action"] == nasty).all() and (df["mode"] == "builtin_rules").all()
    texts = [x["text"] for r in df["reasons"] for x in r]
    assert texts and all(t.startswith('said "') and ' \\ ' in t for t in texts)
    batch = compute_scores(w.engine, Unreachable(), cfg, TASK, w.as_of, scored_at=SCORED_AT, cache=ModelCache())
    expected = {r["entity_id"]: r["reasons"] for r in batch.records()}
    assert {e: r for e, r in zip(df["entity_id"], df["reasons"], strict=True)} == expected


def test_fallbacks_on_postgresql(pg_world):
    w = pg_world
    r = run(w, registry=Unreachable())
    assert r.modes == {"builtin_rules": r.entities}
    df = stored(w.engine)
    assert len(df) == r.entities and df["model_name"].isna().all()
    assert df["mode_reason"].str.contains("registry unreachable \\(ConnectionError").all()
    own, _ = own_and_pooled(w)
    info = w.registry.production(TASK, own)
    f = _scorer_file(w.registry, info)
    original = f.read_bytes()
    try:
        f.write_bytes(original + b"tampered")
        r = run(w)
    finally:
        f.write_bytes(original)
    seg = {s.segment: s for s in r.segments}[own]
    assert seg.mode == "global_model" and "failed to load (CorruptModel" in seg.mode_reason
    df = stored(w.engine)
    assert set(df.loc[df["segment"] == own, "mode"]) == {"global_model"}
    assert set(df.loc[df["segment"] == own, "model_name"]) == {f"journey-{TASK}-{GLOBAL}"}


def test_opted_out_contacts_are_not_scored(pg_world):
    w = pg_world
    task = "contact_conversion"
    cfg = w.config.model_copy(update={"tasks": {**w.config.tasks, task: w.config.tasks[TASK].model_copy(
        update={"entity": "contact", "segment_by": None})}})
    with w.engine.connect() as conn:
        opted = {r[0] for r in conn.execute(sa.select(Contact.contact_id).where(Contact.opted_out.is_(True)))}
    assert opted, "the simulated world has opted-out contacts"
    r = run(w, registry=None, config=cfg, task=task)
    df = stored(w.engine, task)
    assert len(df) == r.entities > 0
    assert not opted & set(df["entity_id"])
    assert (df["entity_kind"] == "contact").all() and (df["mode"] == "builtin_rules").all()
