"""Reasons, actions, holdout and built-in rules without a warehouse."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journey_ml.config import load_config
from journey_ml.scoring.actions import choose_action, in_holdout, stage_name
from journey_ml.scoring.batch import band_of
from journey_ml.scoring.builtin_rules import BuiltinRulesScorer
from journey_ml.scoring.reasons import build_reasons, reason_text, template_for

CFG, _ = load_config(None)
T = CFG.scoring.reason_templates


def test_template_lookup_exact_then_pattern():
    assert template_for("pricing_page_view_30d", T).startswith("visited the pricing page")
    assert template_for("email_click_30d", T) == "{label}: {value:.0f}"
    assert template_for("employees", T) == "{label}: {value:.3g}"


def test_reason_text_and_fallback():
    assert reason_text("pricing_page_view_30d", 4.0, 0.2123, T) == \
        "visited the pricing page 4 times in the last 30 days (+0.21)"
    assert reason_text("email_click_30d", np.float64(3), -0.5, T, "email click events") == \
        "email click events: 3 (-0.50)"
    # a text value under a numeric format: falls back to "{label}: {value}"
    assert reason_text("industry", "software", 0.1, T, "account industry") == "account industry: software (+0.10)"
    assert reason_text("x", 1, 0.1, {"x": "{nope} broken"}, "x label") == "x label: 1 (+0.10)"


def test_build_reasons_top_k_positive_first():
    pairs = [("a", -0.9), ("b", 0.1), ("c", 0.5), ("d", -0.05)]
    out = build_reasons(pairs, {"a": 1, "b": 2, "c": 3}, {}, {"a": "A"}, 3)
    assert [x["feature"] for x in out] == ["c", "b", "a"]
    assert out[2]["text"] == "A: 1 (-0.90)"


def test_bands():
    assert band_of(0.5, CFG) == "high" and band_of(0.49, CFG) == "medium" and band_of(0.0, CFG) == "low"


def test_playbook_order_and_default():
    feats = {"furthest_stage": 2.0, "role_economic_buyer_engaged_90d": 0.0,
             "role_technical_evaluator_engaged_90d": 0.0}
    assert stage_name(2.0) == "decision" and stage_name(-1) is None and stage_name(np.nan) is None
    # both the economic-buyer and the evaluator rules hold: the first wins
    assert choose_action(CFG, "conversion", band="low", segment="smb", reason_features=[],
                         features=feats) == "send the ROI calculator to the economic buyer"
    feats["role_economic_buyer_engaged_90d"] = 1.0
    assert choose_action(CFG, "conversion", band="low", segment="smb", reason_features=[],
                         features=feats) == "book a technical deep-dive with the evaluator"
    feats = {"furthest_stage": 1.0}
    assert choose_action(CFG, "conversion", band="high", segment="smb",
                         reason_features=["pricing_page_view_30d"], features=feats) == \
        "sales call: pricing questions are open"
    assert choose_action(CFG, "conversion", band="high", segment="smb", reason_features=[],
                         features=feats) == CFG.scoring.default_actions["conversion"]
    assert choose_action(CFG, "churn", band="low", segment=None, reason_features=["usage_decline_30d"],
                         features={}) == "adoption play: re-onboard the team"


def test_holdout_is_deterministic_and_near_share():
    ids = [f"A{i:05d}" for i in range(2000)]
    a = [in_holdout(i, "x", 7, 0.1) for i in ids]
    assert a == [in_holdout(i, "x", 7, 0.1) for i in ids]
    assert abs(np.mean(a) - 0.1) < 0.03
    assert not any(in_holdout(i, "x", 7, 0.0) for i in ids)
    assert not in_holdout("A1", None, 7, 0.5)


def test_builtin_rules_fixed_mapping():
    s = BuiltinRulesScorer({"a": 5, "b": 2})
    X = pd.DataFrame({"a": [0, 1, np.nan], "b": [0, 3, 1]})  # a feature the frame lacks counts 0
    p = s.predict_proba(X)
    assert p[1] > p[2] > p[0] and abs(p[0] - 1 / (1 + np.exp(2.5))) < 1e-9
    assert s.explain(X) == [[], [("a", 5.0), ("b", 2.0)], [("b", 2.0)]]
    assert BuiltinRulesScorer({"zz": 1}).predict_proba(X).shape == (3,)
