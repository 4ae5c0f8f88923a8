"""Batch scoring on a trained small world: one row per entity, the fallback ladder,
reasons, actions and the holdout."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest
import sqlalchemy as sa

from journey_ml.features import build_features
from journey_ml.scoring import ModelCache, score_task
from journey_ml.training import GLOBAL
from tests.scoring.conftest import SCORED_AT

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
TASK = "conversion"


def rows(engine, as_of=None) -> pd.DataFrame:
    with engine.connect() as conn:
        df = pd.read_sql(sa.text("SELECT * FROM scores WHERE task = :t"), conn, params={"t": TASK})
    df["reasons"] = [json.loads(r) if isinstance(r, str) else r for r in df["reasons"]]
    return df


def run(world, registry=None, **kw):
    return score_task(world.engine, world.registry if registry is None else registry, world.config, TASK,
                      world.as_of, scored_at=SCORED_AT, cache=kw.pop("cache", ModelCache()), **kw)


def own_and_pooled(world) -> tuple[str, str]:
    own = sorted(s for s, o in world.outcomes.items() if s != GLOBAL and o.status == "promoted")
    pooled = sorted(s for s, o in world.outcomes.items() if o.status == "pooled")
    assert own and pooled, {s: o.status for s, o in world.outcomes.items()}
    return own[0], pooled[0]


def test_scores_every_entity_once_and_rerun_replaces(world):
    pop = build_features(world.engine, world.config, TASK, world.as_of).frame.index
    first = run(world)
    assert first.entities == first.rows_written == len(pop) > 100
    df = rows(world.engine)
    assert sorted(df["entity_id"]) == sorted(pop)
    again = run(world)
    df2 = rows(world.engine)
    assert len(df2) == len(pop) and df2["entity_id"].is_unique
    assert set(df2["run_id"]) == {again.run_id} != {first.run_id}
    for col in ("mode", "mode_reason", "band", "reasons", "action"):
        assert df2[col].notna().all(), col
    assert set(df2["band"]) <= {"high", "medium", "low"}
    assert sum(first.modes.values()) == sum(first.bands.values()) == len(pop)
    own, pooled = own_and_pooled(world)
    by_seg = {s.segment: s for s in first.segments}
    assert by_seg[own].mode == "segment_model" and by_seg[own].mode_reason.endswith("@production")
    assert by_seg[pooled].mode == "global_model"
    assert by_seg[pooled].mode_reason == (f"no production model for journey-{TASK}-{pooled}; "
                                          f"scored by journey-{TASK}-global v{world.outcomes[GLOBAL].version}")
    assert any(f"no production model for journey-{TASK}-{pooled}" in f for f in first.fallbacks)
    # band = the highest band whose min <= p
    for p, b in zip(df2["probability"], df2["band"], strict=True):
        assert b == ("high" if p >= 0.5 else "medium" if p >= 0.2 else "low")


class Unreachable:
    tracking_uri = "broken://"

    def __getattr__(self, name):
        def fail(*a, **k):
            raise ConnectionError("cannot reach the tracking server at broken://\nsecond line")
        return fail


def test_registry_unreachable_scores_with_builtin_rules(world):
    r = run(world, registry=Unreachable())
    assert r.modes == {"builtin_rules": r.entities}
    df = rows(world.engine)
    assert (df["mode"] == "builtin_rules").all() and df["model_name"].isna().all()
    reason = df["mode_reason"].iloc[0]
    assert "registry unreachable (ConnectionError: cannot reach the tracking server at broken://)" in reason
    assert "second line" not in reason and reason.endswith("scored by built-in rules")


def test_bad_tracking_uri_is_unreachable_too(world, tmp_path):
    from journey_ml.registry import Registry

    (tmp_path / "f").write_text("not a directory")
    from journey_ml.scoring import open_registry

    bad = open_registry(lambda: Registry(f"sqlite:///{tmp_path / 'f' / 'nope' / 'mlflow.db'}", world.engine))
    r = run(world, registry=bad)
    assert r.modes == {"builtin_rules": r.entities}
    assert "registry unreachable (NotADirectoryError" in r.segments[0].mode_reason


def test_builtin_without_rules_is_a_constant(world):
    cfg = world.config.model_copy(update={"rules": {}})
    r = score_task(world.engine, Unreachable(), cfg, TASK, world.as_of, scored_at=SCORED_AT, cache=ModelCache())
    df = rows(world.engine)
    assert (df["probability"] == 0.1).all() and "no rules configured" in df["mode_reason"].iloc[0]
    assert r.modes == {"builtin_rules": r.entities}


def _scorer_file(registry, info) -> Path:
    return Path(unquote(urlparse(info.source).path)) / "artifacts" / "scorer.joblib"


def test_corrupt_segment_model_falls_to_global(world):
    own, _ = own_and_pooled(world)
    info = world.registry.production(TASK, own)
    f = _scorer_file(world.registry, info)
    original = f.read_bytes()
    try:
        f.write_bytes(original + b"tampered")
        r = run(world)
    finally:
        f.write_bytes(original)
    seg = {s.segment: s for s in r.segments}[own]
    assert seg.mode == "global_model"
    assert f"production journey-{TASK}-{own} v{info.version} failed to load (CorruptModel:" in seg.mode_reason
    assert seg.mode_reason.endswith(f"scored by journey-{TASK}-global v{world.outcomes[GLOBAL].version}")


def test_corrupt_global_model_falls_to_registered_rules(world):
    _, pooled = own_and_pooled(world)
    info = world.registry.production(TASK, GLOBAL)
    f = _scorer_file(world.registry, info)
    original = f.read_bytes()
    try:
        f.write_bytes(b"garbage")
        r = run(world)
    finally:
        f.write_bytes(original)
    seg = {s.segment: s for s in r.segments}[pooled]
    assert seg.mode == "rules_model"
    assert "failed to load (CorruptModel" in seg.mode_reason
    assert "scored by the registered rules journey-conversion-global v" in seg.mode_reason


def test_schema_mismatch_takes_the_next_step(world):
    own, _ = own_and_pooled(world)

    def drop_pricing(*a, **k):
        ff = build_features(*a, **k)
        ff.frame = ff.frame.drop(columns=["pricing_page_view_30d"])
        return ff

    r = run(world, build=drop_pricing)
    segs = {s.segment: s for s in r.segments}
    # every XGBoost model needs the column; the rules need it too: built-in rules score
    for s in segs.values():
        assert s.mode == "builtin_rules", s.mode_reason
        assert "cannot score these features (SchemaMismatch: input does not fit the xgboost scorer: " \
               "missing column(s): pricing_page_view_30d)" in s.mode_reason
    assert "registered rules" in segs[own].mode_reason
    assert r.rows_written == r.entities


def test_schema_mismatch_of_one_model_only(world):
    """A drop of a column the rules do not read: XGBoost fails, the registered rules score."""
    def drop_events(*a, **k):
        ff = build_features(*a, **k)
        ff.frame = ff.frame.drop(columns=["events_7d"])
        return ff

    r = run(world, build=drop_events)
    assert set(r.modes) == {"rules_model"}
    assert all("missing column(s): events_7d" in s.mode_reason for s in r.segments)


def test_rules_mode_when_production_is_the_rules_version(world):
    own, _ = own_and_pooled(world)
    reg = world.registry
    before = reg.production(TASK, own)
    rules = reg.find_version(TASK, own, {"journey.rules_hash": None})
    assert rules is not None and rules.kind == "rules"
    reg.promote(TASK, own, rules.version, reason="monitoring: drift", action="fallback")
    try:
        r = run(world)
    finally:
        reg.promote(TASK, own, before.version, reason="test done", action="restore")
    seg = {s.segment: s for s in r.segments}[own]
    assert seg.mode == "rules_model" and seg.model_version == rules.version
    assert seg.mode_reason == (f"journey-{TASK}-{own} v{rules.version}: "
                               "production is the rules model (fallback engaged)")
    df = rows(world.engine)
    fired = df[(df["segment"] == own)]["reasons"]
    for reasons in fired:
        for x in reasons:
            assert x["contribution"] > 0 and x["feature"] in world.config.rules[TASK].points


def test_reasons_use_templates_and_signed_contributions(world):
    from fnmatch import fnmatchcase

    from journey_ml.features import feature_set_for

    run(world)
    df = rows(world.engine)
    k = world.config.scoring.top_reasons
    templates = world.config.scoring.reason_templates
    labels = {f.name: f.label for f in feature_set_for(world.engine, world.config, TASK).features}
    patterned = 0
    for reasons in df["reasons"]:
        assert 1 <= len(reasons) <= k
        signs = [x["contribution"] > 0 for x in reasons]
        assert signs == sorted(signs, reverse=True)  # positive first
        for x in reasons:
            assert x["text"].endswith(f" ({x['contribution']:+.2f})")
            body = x["text"].rsplit(" (", 1)[0]
            if x["feature"] in templates:
                assert body == templates[x["feature"]].format(value=x["value"])
            elif fnmatchcase(x["feature"], "*_30d") and x["value"] is not None:
                assert body == f"{labels[x['feature']]}: {x['value']:.0f}"
                patterned += 1
    assert patterned > 0


def test_holdout_share_and_determinism(world):
    run(world)
    a = rows(world.engine).set_index("entity_id")
    run(world)
    b = rows(world.engine).set_index("entity_id")
    assert (a["action_holdout"] == b["action_holdout"].reindex(a.index)).all()
    assert (a["action"] == b["action"].reindex(a.index)).all()
    share = a["action_holdout"].astype(bool).mean()
    assert abs(share - world.config.scoring.holdout_share) <= 0.05, share
    assert a.loc[a["action_holdout"].astype(bool), "action"].notna().all()  # text kept


def test_playbook_gives_varied_actions(world):
    """Value conditions spread the plays: the default is not what most entities get."""
    run(world)
    df = rows(world.engine)
    share = df["action"].value_counts(normalize=True)
    default = world.config.scoring.default_actions[TASK]
    assert len(share) >= 4, share
    assert share.get(default, 0.0) < 0.5, share
    # value rules hold on the values: everyone told to chase a proposal received one
    feats = build_features(world.engine, world.config, TASK, world.as_of).frame
    chased = df.loc[df["action"] == "chase the proposal: book the decision call", "entity_id"]
    assert (feats.loc[chased, "proposal_sent_90d"] >= 1).all()
