"""Model selection units: size-fitted XGBoost parameters, the logistic scorer, calibration
checks, the choice on validation data and the baselines (#12 What to build 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from journey_ml.config import load_config
from journey_ml.models.linear import LogisticScorer
from journey_ml.models.selection import (
    baselines,
    best_baseline,
    fit_candidates,
    select,
    xgb_params_for,
)
from journey_ml.models.xgb import Column, XGBScorer, isotonic_problem
from journey_ml.scoring.ladder import score_and_explain

COLS = [Column("days_since_last_event", "numeric"), Column("visits_30d", "numeric"),
        Column("noise", "numeric"), Column("plan", "categorical", ("basic", "pro"))]


def _frame(n: int, seed: int, strength: float = 1.5) -> pd.DataFrame:
    """Labels driven by recency (fewer days -> more likely) and visits; ``noise`` is noise."""
    rng = np.random.default_rng(seed)
    days = rng.exponential(30, n)
    days[rng.random(n) < 0.1] = np.nan  # never active
    visits = rng.poisson(2, n).astype(float)
    plan = rng.choice(["basic", "pro", "legacy"], n)
    logit = -1.5 - strength * np.log1p(np.nan_to_num(days, nan=400)) / 2 + 0.4 * visits + 0.5 * (plan == "pro")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"days_since_last_event": days, "visits_30d": visits, "noise": rng.normal(size=n),
                         "plan": plan, "label": y})


@pytest.mark.parametrize("positives, depth, mcw, lam", [
    (10, 2, 5.0, 10.0), (49, 2, 5.0, 10.0), (50, 3, 3.0, 5.0), (199, 3, 3.0, 5.0), (500, 4, 2.0, 2.0),
    (5000, 6, 1.0, 1.0)])
def test_xgb_parameters_fit_the_number_of_positives(positives, depth, mcw, lam):
    configured = {"max_depth": 6, "min_child_weight": 1.0}
    p = xgb_params_for(positives, configured).params
    assert (p["max_depth"], p["min_child_weight"], p["reg_lambda"]) == (depth, mcw, lam)


def test_sized_parameters_never_loosen_the_configuration():
    p = xgb_params_for(10, {"max_depth": 1, "min_child_weight": 20.0, "reg_lambda": 50.0}).params
    assert (p["max_depth"], p["min_child_weight"], p["reg_lambda"]) == (1, 20.0, 50.0)


def test_logistic_scorer_contract_and_exact_contributions():
    df = _frame(800, 1)
    s = LogisticScorer(COLS).fit(df, df["label"])
    assert isinstance(s, LogisticScorer)
    p = s.predict_proba(df)
    assert p.shape == (len(df),) and ((p > 0) & (p < 1)).all()
    # contributions + intercept are the log-odds (a linear model explains itself exactly)
    lr = s.pipeline_["model"]
    logit = s.contributions(df).sum(axis=1).to_numpy() + lr.intercept_[0]
    z = s.pipeline_[:-1].transform(df)
    np.testing.assert_allclose(logit, z @ lr.coef_[0] + lr.intercept_[0])
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), p)
    # an unknown category and missing values score without error
    odd = df.head(3).assign(plan=["enterprise", None, "pro"], visits_30d=[np.nan, 1, 2])
    assert np.isfinite(s.predict_proba(odd)).all()
    # the ladder explains it like any scorer: top reasons by |contribution|, names in order
    e = score_and_explain(s, df.head(5), 2)
    assert e.idx.shape == (5, 2) and e.names == s.feature_names
    c = s.contributions(df.head(5)).to_numpy()
    for i in range(5):  # the two largest |contributions|, with their signed values
        assert set(e.idx[i]) == set(np.argsort(-np.abs(c[i]))[:2])
        np.testing.assert_allclose(sorted(e.val[i]), sorted(c[i, e.idx[i]]))
    with pytest.raises(ValueError, match="single class"):
        LogisticScorer(COLS).fit(df, np.zeros(len(df)))
    with pytest.raises(ValueError, match="lacks feature column.*plan"):
        s.predict_proba(df.drop(columns="plan"))


def test_isotonic_problem_names_ties_and_certainty():
    assert isotonic_problem(np.linspace(0.01, 0.9, 5000)) is None
    assert isotonic_problem(np.r_[np.full(10, 0.999999), np.linspace(0.01, 0.5, 100)]) == \
        "p = 1.00 on a top step of 10 rows"
    # a certain step of many rows is what the data say, not an artefact
    assert isotonic_problem(np.r_[np.full(300, 0.999999), np.linspace(0.01, 0.5, 900)]) is None
    msg = isotonic_problem(np.r_[np.full(1500, 0.02), np.linspace(0.05, 0.6, 300)])
    assert msg == "1,500 validation rows tied at one probability"


def test_few_positives_get_platt_scaling_and_say_so():
    train, valid = _frame(600, 2), _frame(300, 3)
    s = XGBScorer(COLS, n_estimators=30, calibration="isotonic", min_isotonic_positives=200).fit(
        train, train["label"], valid, valid["label"])
    assert s.calibration_ == "sigmoid"
    assert s.calibration_note_ == f"Platt scaling: {int(valid['label'].sum())} validation positives (isotonic needs 200)"
    p = s.predict_proba(valid)
    assert p.max() < 0.995 and len(np.unique(p)) > len(p) // 2


def test_isotonic_with_thousands_of_ties_falls_back_to_platt():
    # many positives but a coarse model (2 stumps): isotonic steps of thousands of rows
    train, valid = _frame(6000, 4, strength=0.3), _frame(6000, 5, strength=0.3)
    s = XGBScorer(COLS, n_estimators=2, max_depth=1, calibration="isotonic", min_isotonic_positives=50).fit(
        train, train["label"], valid, valid["label"])
    assert int(valid["label"].sum()) >= 50
    assert s.calibration_ == "sigmoid", s.calibration_note_
    assert s.calibration_note_.startswith("Platt scaling: isotonic refused (")
    assert "validation rows tied at one probability" in s.calibration_note_


def test_selection_scores_every_candidate_on_the_same_rows_and_takes_the_best():
    cfg, _ = load_config(None)
    train, valid, test = _frame(500, 6), _frame(300, 7), _frame(400, 8)
    from journey_ml.models.rules import RulesScorer

    rules = RulesScorer(points={"visits_30d": 1.0})
    cands, notes = fit_candidates(COLS, train, valid, xgboost=cfg.training.xgboost.model_dump(),
                                  calibration="isotonic", min_isotonic_positives=200, seed=7, rules=rules)
    assert set(cands) == {"xgboost", "logistic", "rules"}
    assert any(n.startswith("xgboost: very few positives") or n.startswith("xgboost: few positives")
               for n in notes), notes
    sel = select(cands, valid, "roc_auc", notes)
    scores = sel.valid_scores()
    assert set(scores) == {"xgboost", "logistic", "rules"}
    assert scores[sel.winner] == max(scores.values())
    assert sel.reason.startswith(f"{sel.winner} won on validation roc_auc {scores[sel.winner]:.4f} vs ")
    # the data are linear in log1p(recency): the logistic regression beats the rules here
    assert scores["logistic"] > scores["rules"]
    found = baselines(sel, COLS, train, test, seed=7)
    assert set(found) == {"rules", "logistic", "recency"}
    best = best_baseline(found, "roc_auc")
    assert best.metrics.roc_auc == max(b.metrics.roc_auc for b in found.values())
