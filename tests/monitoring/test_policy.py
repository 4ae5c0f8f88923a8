"""The monitoring policy: table-driven cases of the pure decision function."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from journey_ml.config import load_config, parse_config
from journey_ml.monitoring.policy import (
    Candidate,
    DriftSummary,
    MonitorResult,
    PerfSummary,
    SegmentState,
    decide,
    drift_detected,
    restore_decision,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)
POLICY = load_config(None)[0].monitoring.policy("conversion", "smb").model_copy(update={
    "critical_columns": ["pricing_page_view_30d"], "drift_persistence_runs": 2, "cooldown_days": 7,
    "min_labels": 200, "min_positives": 10, "min_drift_rows": 100, "auc_floor": 0.6, "accuracy_floor": 0.6,
    "recovery_margin": 0.05, "rollback_margin": 0.02, "rollback_window_days": 120})

CALM = DriftSummary(reference_rows=1000, current_rows=500, columns=40, drifted_columns=["a"], share_drifted=0.025,
                    prediction_drifted=False, explanation_drifted=False, rank_correlation=0.9)
DRIFT = replace(CALM, drifted_columns=[f"c{i}" for i in range(16)], share_drifted=0.4)
CRITICAL = replace(CALM, drifted_columns=["pricing_page_view_30d"], share_drifted=0.025,
                   critical_drifted=["pricing_page_view_30d"])
PRED_ONLY = replace(CALM, prediction_drifted=True, prediction_statistic=0.31)
EXPL_ONLY = replace(CALM, explanation_drifted=True, rank_correlation=0.2)
FEW_ROWS = replace(DRIFT, current_rows=20)
BAD_CONTRACT = replace(CALM, contract_ok=False, contract_problems=["visits_30d: 48% null (reference 0%)"])
GOOD = PerfSummary(n=400, positives=60, accuracy=0.85, roc_auc=0.81)
LOW_AUC = PerfSummary(n=400, positives=60, accuracy=0.84, roc_auc=0.52)
LOW_ACC = PerfSummary(n=400, positives=60, accuracy=0.41, roc_auc=0.70)
FEW_LABELS = PerfSummary(n=120, positives=30, accuracy=0.30, roc_auc=0.40)
FEW_POSITIVES = PerfSummary(n=400, positives=4, accuracy=0.30, roc_auc=0.40)

MODEL = SegmentState(production_version=3, production_kind="model", production_metrics={"roc_auc": 0.8},
                     promoted_at=NOW - timedelta(days=200), predecessor_version=1, predecessor_kind="model",
                     rules_version=2)
FRESH = replace(MODEL, promoted_at=NOW - timedelta(days=20))
COOLING = replace(MODEL, last_action_at=NOW - timedelta(days=2))
COOLED = replace(MODEL, last_action_at=NOW - timedelta(days=8))
DRIFTED_BEFORE = replace(MODEL, drift_runs=1)
RULES = replace(MODEL, production_version=2, production_kind="rules", last_action_at=NOW - timedelta(days=40))
NO_RULES = replace(MODEL, rules_version=None)


def result(drift=CALM, perf=GOOD, pred=None, error=None) -> MonitorResult:
    return MonitorResult(task="conversion", segment="smb", as_of=NOW, model_name="journey-conversion-smb",
                         model_version=3, drift=drift, performance=perf, predecessor_performance=pred,
                         matured_as_of=NOW - timedelta(days=91), error=error)


CASES = [
    # id, result, state, expected kinds, a phrase the reasons must contain
    ("stable", result(), MODEL, ["ok"], "no drift: 1 of 40 columns"),
    ("missing reference", result(drift=None, error="no drift reference sample for journey-conversion-smb v3"),
     MODEL, ["error"], "no drift reference sample"),
    ("no reference and no error text", result(drift=None), MODEL, ["error"], "drift cannot be judged"),
    ("no production", result(), replace(MODEL, production_version=None, production_kind=None), ["error"],
     "no production version"),
    ("drift first run: hysteresis", result(drift=DRIFT), MODEL, ["alert"], "1 of 2 consecutive runs"),
    ("drift persists: retrain", result(drift=DRIFT), DRIFTED_BEFORE, ["alert", "retrain"], "16 of 40 columns (40.0%) >= 30%"),
    ("critical column counts as drift", result(drift=CRITICAL), DRIFTED_BEFORE, ["alert", "retrain"],
     "critical column(s) drifted: pricing_page_view_30d"),
    ("prediction drift", result(drift=PRED_ONLY), DRIFTED_BEFORE, ["alert", "retrain"], "score distribution"),
    ("explanation drift", result(drift=EXPL_ONLY), DRIFTED_BEFORE, ["alert", "retrain"], "rank correlation 0.20"),
    ("drift during cooldown: alert only", result(drift=DRIFT), replace(COOLING, drift_runs=1), ["alert"], "cooldown"),
    ("drift after cooldown", result(drift=DRIFT), replace(COOLED, drift_runs=1), ["alert", "retrain"], "persisted 2"),
    ("too few current rows: not judged", result(drift=FEW_ROWS), DRIFTED_BEFORE, ["ok"], "20 current rows < minimum 100"),
    ("data contract problem", result(drift=BAD_CONTRACT), MODEL, ["alert"], "48% null"),
    ("AUC below floor: fallback + retrain", result(perf=LOW_AUC), MODEL, ["fallback", "retrain"], "AUC 0.520 < floor 0.600"),
    ("accuracy below floor", result(perf=LOW_ACC), MODEL, ["fallback", "retrain"], "accuracy 0.410 < floor 0.600"),
    ("below floor during cooldown", result(perf=LOW_AUC), COOLING, ["alert"], "cooldown"),
    ("below floor, no rules version", result(perf=LOW_AUC), NO_RULES, ["alert", "retrain"], "no registered rules"),
    ("too few labels: not judged", result(perf=FEW_LABELS), MODEL, ["ok"], "120 matured labels"),
    ("too few positives: not judged", result(perf=FEW_POSITIVES), MODEL, ["ok"], "4 positive"),
    ("no matured labels yet", result(perf=None), MODEL, ["ok"], "no matured labels"),
    ("new version worse than predecessor: rollback", result(perf=PerfSummary(400, 60, 0.8, 0.66), pred=GOOD), FRESH,
     ["rollback"], "worse by 0.150"),
    ("rollback beats the cooldown", result(perf=PerfSummary(400, 60, 0.8, 0.66), pred=GOOD),
     replace(FRESH, last_action_at=NOW - timedelta(days=1)), ["rollback"], "roll back"),
    ("within margin: no rollback", result(perf=PerfSummary(400, 60, 0.8, 0.80), pred=GOOD), FRESH, ["ok"],
     "performance ok"),
    ("old promotion: no rollback", result(perf=PerfSummary(400, 60, 0.8, 0.66), pred=GOOD), MODEL, ["ok"],
     "performance ok"),
    ("predecessor was rules: no rollback", result(perf=PerfSummary(400, 60, 0.8, 0.66), pred=GOOD),
     replace(FRESH, predecessor_kind="rules"), ["ok"], "performance ok"),
    ("predecessor with few labels: no rollback", result(perf=PerfSummary(400, 60, 0.8, 0.66), pred=FEW_LABELS),
     FRESH, ["ok"], "performance ok"),
    ("rules mode, no candidate: retrain", result(drift=None), RULES, ["alert", "retrain"], "in rules mode"),
    ("rules mode during cooldown", result(drift=None), replace(RULES, last_action_at=NOW - timedelta(days=1)),
     ["alert"], "cooldown"),
    ("rules mode, candidate passes: restore", result(drift=None),
     replace(RULES, candidate=Candidate(5, 0.72, True, "promoted: candidate roc_auc 0.72 vs 0.61")), ["restore"],
     "0.720 >= 0.650"),
    ("rules mode, candidate under floor + margin: hysteresis", result(drift=None),
     replace(RULES, candidate=Candidate(5, 0.63, True, "ok")), ["alert", "retrain"], "recovery margin"),
    ("rules mode, candidate failed the gate", result(drift=None),
     replace(RULES, candidate=Candidate(5, 0.9, False, "not promoted: worse than rules")), ["alert", "retrain"],
     "did not pass the promotion gate"),
]


@pytest.mark.parametrize("res,state,kinds,phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(res, state, kinds, phrase):
    decisions = decide(res, state, POLICY, NOW)
    assert [d.kind for d in decisions] == kinds, [d.summary() for d in decisions]
    text = " | ".join(r for d in decisions for r in d.reasons)
    assert phrase in text, text


def test_targets_of_alias_moves():
    fb = decide(result(perf=LOW_AUC), MODEL, POLICY, NOW)[0]
    assert fb.kind == "fallback" and fb.target_version == 2 and fb.figures["roc_auc"] == 0.52
    rb = decide(result(perf=PerfSummary(400, 60, 0.8, 0.66), pred=GOOD), FRESH, POLICY, NOW)[0]
    assert rb.target_version == 1 and rb.figures["predecessor_roc_auc"] == GOOD.roc_auc
    rs = restore_decision(replace(RULES, candidate=Candidate(5, 0.7, True, "g")), POLICY)
    assert rs.kind == "restore" and rs.target_version == 5


def test_rollback_wins_over_fallback():
    # the new version is below the floor, its predecessor is not: going back is the better move
    ds = decide(result(perf=PerfSummary(400, 60, 0.8, 0.55), pred=GOOD), FRESH, POLICY, NOW)
    assert [d.kind for d in ds] == ["rollback"]


def test_drift_detected_and_switches():
    assert drift_detected(result(drift=DRIFT), POLICY)
    assert not drift_detected(result(drift=CALM), POLICY)
    assert not drift_detected(result(drift=FEW_ROWS), POLICY)
    off = POLICY.model_copy(update={"prediction_drift": False, "explanation_drift": False})
    assert not drift_detected(result(drift=PRED_ONLY), off)
    assert not drift_detected(result(drift=EXPL_ONLY), off)


def test_pure_and_explicit_time():
    res, state = result(drift=DRIFT), DRIFTED_BEFORE
    assert decide(res, state, POLICY, NOW) == decide(res, state, POLICY, NOW)
    with pytest.raises(ValueError, match="naive datetime"):
        decide(res, state, POLICY, NOW.replace(tzinfo=None))


def test_policy_layers_and_errors_name_the_key():
    cfg = parse_config({
        "tasks": {"conversion": {"outcome": "won", "customer_events": ["closed_won"]}},
        "outcomes": {"won": ["closed_won"]},
        "monitoring": {"defaults": {"auc_floor": 0.55},
                       "tasks": {"conversion": {"cooldown_days": 3, "segments": {"smb": {"auc_floor": 0.7}}}}},
    }, "m.yaml")
    smb, ent = cfg.monitoring.policy("conversion", "smb"), cfg.monitoring.policy("conversion", "enterprise")
    assert (smb.auc_floor, smb.cooldown_days) == (0.7, 3)
    assert (ent.auc_floor, ent.cooldown_days, ent.drift_share) == (0.55, 3, 0.3)
    from journey_ml.config import ConfigError

    with pytest.raises(ConfigError, match=r"m.yaml: monitoring.tasks.conversion.segments.smb.auc_flor: unknown key"):
        parse_config({"tasks": {"conversion": {"outcome": "won", "customer_events": ["x"]}}, "outcomes": {"won": ["x"]},
                      "monitoring": {"tasks": {"conversion": {"segments": {"smb": {"auc_flor": 1}}}}}}, "m.yaml")
    with pytest.raises(ConfigError, match="monitoring.defaults.drift_share"):
        parse_config({"monitoring": {"defaults": {"drift_share": 2}}}, "m.yaml")


@pytest.mark.parametrize("k, n, threshold, drift, text", [
    # issue #9 case 21: "42 of 141 (30% < 30%)" printed a rounded share that looked equal to the threshold
    (42, 141, 0.3, False, "42 of 141 columns (29.8%) < 30%"),
    (43, 141, 0.3, True, "43 of 141 columns (30.5%) >= 30%"),
    (3, 10, 0.3, True, "3 of 10 columns (30.0%) >= 30%"),  # exactly at the threshold: 3/10 >= 3/10
    (1, 8, 0.125, True, "1 of 8 columns (12.5%) >= 12.5%"),
    (2, 3, 0.67, False, "2 of 3 columns (66.7%) < 67%"),  # 0.6667 rounds to 67% but is below 0.67
])
def test_drift_share_is_printed_and_compared_exactly(k, n, threshold, drift, text):
    d = replace(CALM, columns=n, drifted_columns=[f"c{i}" for i in range(k)], share_drifted=k / n)
    pol = POLICY.model_copy(update={"drift_share": threshold})
    assert drift_detected(result(drift=d), pol) is drift
    reasons = " | ".join(r for x in decide(result(drift=d), MODEL, pol, NOW) for r in x.reasons)
    assert text in reasons, reasons


# --- #11.2: drift weighted by the model's feature importance, effect-size floors -----------------
WEIGHTED = POLICY.model_copy(update={"drift_rule": "weighted", "weighted_drift_share": 0.3, "min_effect": 0.1,
                                     "critical_columns": ["pricing_page_view_30d"]})
SHARE = WEIGHTED.model_copy(update={"drift_rule": "share"})
# 16 of 40 columns drifted (40% of the columns) but they carry 5% of the importance: no drift by weight
MANY_UNIMPORTANT = replace(DRIFT, counted_columns=DRIFT.drifted_columns, weighted_share=0.05)
# 2 of 40 columns, 45% of the importance: drift by weight, not by share
FEW_IMPORTANT = replace(CALM, drifted_columns=["c1", "c2"], share_drifted=0.05, counted_columns=["c1", "c2"],
                        weighted_share=0.45)
# the critical column's test fired but its effect is under the floor: it does not count
TINY_CRITICAL = replace(CRITICAL, counted_columns=[], weighted_share=0.0)
TINY_SCORES = replace(CALM, prediction_drifted=True, prediction_statistic=0.01, prediction_effect=0.03,
                      counted_columns=[], weighted_share=0.0)
BIG_SCORES = replace(TINY_SCORES, prediction_effect=0.25)


@pytest.mark.parametrize("drift, weighted, share, phrase", [
    (MANY_UNIMPORTANT, False, True, "carry 5.0% of the model's feature importance < 30%"),
    (FEW_IMPORTANT, True, False, "carry 45.0% of the model's feature importance >= 30%"),
    (TINY_CRITICAL, False, True, "importance < 30%"),
    (TINY_SCORES, False, True, "importance < 30%"),
    (BIG_SCORES, True, True, "effect 0.250"),
], ids=["many unimportant columns", "few important columns", "critical column, tiny effect",
        "scores, tiny effect", "scores, large effect"])
def test_weighted_drift_rule(drift, weighted, share, phrase):
    assert drift_detected(result(drift=drift), WEIGHTED) is weighted
    assert drift_detected(result(drift=drift), SHARE) is share  # the rule before #11, on the same figures
    text = " | ".join(r for d in decide(result(drift=drift), MODEL, WEIGHTED, NOW) for r in d.reasons)
    assert phrase in text, text


# --- #11.3: the estimated performance (CBPE) has its own floor and persistence ----------------
def test_estimated_auc_floor_with_persistence():
    from journey_ml.monitoring.policy import EstimateSummary

    pol = POLICY.model_copy(update={"estimated_auc_floor": 0.6, "estimated_persistence_runs": 2})
    low = replace(result(perf=None), estimated=EstimateSummary(n=800, roc_auc=0.54, accuracy=0.9))
    ok = replace(result(perf=None), estimated=EstimateSummary(n=800, roc_auc=0.74, accuracy=0.9))
    first = decide(low, MODEL, pol, NOW)
    assert [d.kind for d in first] == ["alert"] and "estimated AUC 0.540 < floor 0.600" in first[0].reasons[0]
    second = decide(low, replace(MODEL, estimate_low_runs=1), pol, NOW)
    assert [d.kind for d in second] == ["fallback", "retrain"] and second[0].target_version == MODEL.rules_version
    assert "2 consecutive run(s)" in second[0].reasons[0]
    assert [d.kind for d in decide(low, replace(COOLING, estimate_low_runs=1), pol, NOW)] == ["alert"]
    assert [d.kind for d in decide(ok, replace(MODEL, estimate_low_runs=1), pol, NOW)] == ["ok"]
    # matured labels below the floor still win (they are the truth)
    both = replace(low, performance=LOW_AUC)
    assert "matured labels" in decide(both, MODEL, pol, NOW)[0].reasons[0]


def test_no_rollback_to_a_predecessor_below_the_floor():
    # both versions collapsed on the same matured labels (v3 0.22, v1 0.45 < floor 0.6): rolling back
    # would serve another failing model; the rules take over instead
    ds = decide(result(perf=PerfSummary(400, 60, 0.8, 0.22), pred=PerfSummary(400, 60, 0.8, 0.45)), FRESH, POLICY, NOW)
    assert [d.kind for d in ds] == ["fallback", "retrain"], [d.summary() for d in ds]
