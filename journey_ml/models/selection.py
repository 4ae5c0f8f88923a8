"""Honest model selection: candidates fitted to the data size, scored on the same rows.

``fit_candidates`` fits XGBoost (parameters from `xgb_params_for`, shallower and more
regularised when positives are few), a regularised logistic regression and the rules
scorer on the training rows; ``select`` scores them on the same validation rows and takes
the best by the promotion metric; ``baselines`` scores the simple baselines (rules scorer,
recency alone, logistic regression) on the test holdout the gate uses. Everything returns
typed results with a sentence saying what won and why.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from journey_ml.models.linear import LogisticScorer
from journey_ml.models.metrics import Metrics, better, evaluate
from journey_ml.models.xgb import Column, XGBScorer

RECENCY_FEATURE = "days_since_last_event"
BASELINES = ("rules", "recency", "logistic")

# (fewer training positives than, max_depth cap, min_child_weight floor, L2 lambda, note)
SIZE_TIERS = (
    (50, 2, 5.0, 10.0, "very few positives"),
    (200, 3, 3.0, 5.0, "few positives"),
    (1000, 4, 2.0, 2.0, "a moderate number of positives"),
)


@dataclass(frozen=True)
class XGBParams:
    """XGBoost parameters for a training set, and why they differ from the configuration."""

    params: dict
    note: str


def xgb_params_for(positives: int, configured: dict) -> XGBParams:
    """``configured`` (the ``training.xgboost`` mapping) adjusted to ``positives`` training
    positives: depth capped, min_child_weight raised, L2 regularisation raised (SIZE_TIERS).
    Never deeper or less regularised than configured."""
    p = dict(configured)
    p.setdefault("reg_lambda", 1.0)
    for limit, depth, mcw, lam, what in SIZE_TIERS:
        if positives < limit:
            p["max_depth"] = min(int(p["max_depth"]), depth)
            p["min_child_weight"] = max(float(p["min_child_weight"]), mcw)
            p["reg_lambda"] = max(float(p["reg_lambda"]), lam)
            return XGBParams(p, f"{what} ({positives} < {limit}): max_depth {p['max_depth']}, "
                                f"min_child_weight {p['min_child_weight']:g}, lambda {p['reg_lambda']:g}")
    return XGBParams(p, f"{positives} positives: configured parameters")


@dataclass
class Candidate:
    """One fitted candidate and its validation metrics."""

    kind: str  # xgboost | logistic | rules
    scorer: object
    valid: Metrics | None = None
    error: str | None = None


@dataclass
class Selection:
    """The candidates of one segment, the winner and why."""

    metric: str
    candidates: dict[str, Candidate]
    winner: str
    reason: str
    notes: list[str] = field(default_factory=list)

    @property
    def scorer(self):
        return self.candidates[self.winner].scorer

    def valid_scores(self) -> dict[str, float]:
        """Validation value of the metric per candidate that could be scored."""
        return {k: getattr(c.valid, self.metric) for k, c in self.candidates.items() if c.valid is not None}


def fit_candidates(columns: list[Column], train: pd.DataFrame, valid: pd.DataFrame, *,
                   xgboost: dict, calibration: str, min_isotonic_positives: int, seed: int,
                   rules=None, kinds: tuple[str, ...] = ("xgboost", "logistic"),
                   sample_weight: np.ndarray | None = None,
                   ) -> tuple[dict[str, Candidate], list[str]]:
    """XGBoost, logistic regression and (when ``rules`` is an unfitted RulesScorer) the rules
    scorer, each fitted on ``train`` (XGBoost early-stops and calibrates on ``valid``).
    ``sample_weight`` (one per training row, e.g. `journey_ml.training.recency_weights`)
    weighs the learned candidates' fit; the rules scorer's points are fixed by config.

    Returns the candidates (a failed one carries its ``error``) and notes on how each was
    fitted. ``train``/``valid`` hold the feature columns and ``label``.
    """
    names = [c.name for c in columns]
    y, yv = train["label"].to_numpy(), valid["label"].to_numpy()
    sized = xgb_params_for(int(y.sum()), xgboost)
    x = sized.params
    out: dict[str, Candidate] = {}
    notes: list[str] = []
    xgb = XGBScorer(columns, n_estimators=x["n_estimators"], max_depth=x["max_depth"],
                    learning_rate=x["learning_rate"], subsample=x["subsample"],
                    colsample_bytree=x["colsample_bytree"], min_child_weight=x["min_child_weight"],
                    reg_lambda=x["reg_lambda"], early_stopping_rounds=x["early_stopping_rounds"],
                    n_jobs=x["n_jobs"], calibration=calibration,
                    min_isotonic_positives=min_isotonic_positives, random_state=seed)
    if "xgboost" in kinds:
        notes.append(f"xgboost: {sized.note}")
        try:
            out["xgboost"] = Candidate("xgboost", xgb.fit(train[names], y, valid[names], yv,
                                                          sample_weight=sample_weight))
            notes.append(f"xgboost calibration: {xgb.calibration_note_}")
        except ValueError as e:
            out["xgboost"] = Candidate("xgboost", None, error=str(e))
    if "logistic" in kinds:
        try:
            out["logistic"] = Candidate("logistic", LogisticScorer(columns, random_state=seed)
                                        .fit(train[names], y, sample_weight=sample_weight))
        except ValueError as e:
            out["logistic"] = Candidate("logistic", None, error=str(e))
    if rules is not None:
        try:
            out["rules"] = Candidate("rules", rules.fit(train, y))
        except ValueError as e:
            out["rules"] = Candidate("rules", None, error=str(e))
    return out, notes


def select(candidates: dict[str, Candidate], valid: pd.DataFrame, metric: str,
           notes: list[str] | None = None) -> Selection:
    """Score every fitted candidate on the same ``valid`` rows and take the best by ``metric``.

    A tie goes to the simpler model (rules, then logistic, then XGBoost). Raises ValueError
    when no candidate could be fitted.
    """
    y = valid["label"].to_numpy()
    for c in candidates.values():
        if c.scorer is not None:
            c.valid = evaluate(y, c.scorer.predict_proba(valid[c.scorer.feature_names]))
    scored = {k: getattr(c.valid, metric) for k, c in candidates.items()
              if c.valid is not None and math.isfinite(getattr(c.valid, metric))}
    if not scored:
        errors = "; ".join(f"{k}: {c.error}" for k, c in candidates.items() if c.error)
        raise ValueError(f"no candidate could be fitted ({errors or 'no finite validation ' + metric})")
    simple_first = [k for k in ("rules", "logistic", "xgboost") if k in scored]
    winner = simple_first[0]
    for k in simple_first[1:]:
        if better(metric, scored[k], scored[winner]) > 1e-12:
            winner = k
    others = ", ".join(f"{k} {v:.4f}" for k, v in scored.items() if k != winner)
    failed = [f"{k} failed ({c.error})" for k, c in candidates.items() if c.error]
    reason = (f"{winner} won on validation {metric} {scored[winner]:.4f}"
              + (f" vs {others}" if others else "") + (f"; {'; '.join(failed)}" if failed else ""))
    return Selection(metric, candidates, winner, reason, list(notes or []))


@dataclass(frozen=True)
class Baseline:
    """A simple baseline scored on the test holdout."""

    name: str  # rules | recency | logistic
    metrics: Metrics


def baselines(selection: Selection, columns: list[Column], train: pd.DataFrame, test: pd.DataFrame, *,
              seed: int) -> dict[str, Baseline]:
    """The rules scorer, recency alone and the logistic regression, each fitted on ``train``
    only (the candidates of ``selection`` are reused when they were fitted), scored on
    ``test``. A baseline that cannot be computed (no rules, no recency feature) is absent."""
    y = test["label"].to_numpy()
    out: dict[str, Baseline] = {}
    fitted = {k: c.scorer for k, c in selection.candidates.items() if c.scorer is not None}
    if "logistic" not in fitted and "logistic" not in selection.candidates:
        with contextlib.suppress(ValueError):  # a one-class training set: no such baseline
            fitted["logistic"] = LogisticScorer(columns, random_state=seed).fit(
                train[[c.name for c in columns]], train["label"].to_numpy())
    for name in ("rules", "logistic"):
        if name in fitted:
            s = fitted[name]
            out[name] = Baseline(name, evaluate(y, s.predict_proba(test[s.feature_names])))
    if RECENCY_FEATURE in train.columns and pd.to_numeric(train[RECENCY_FEATURE], errors="coerce").notna().any():
        try:
            rec = LogisticScorer([Column(RECENCY_FEATURE, "numeric")], random_state=seed).fit(
                train[[RECENCY_FEATURE]], train["label"].to_numpy())
            out["recency"] = Baseline("recency", evaluate(y, rec.predict_proba(test[[RECENCY_FEATURE]])))
        except ValueError:
            pass
    return out


@dataclass(frozen=True)
class CrossValidation:
    """k-fold metrics of one candidate kind (refitted per fold, the same way as the model)."""

    kind: str
    folds: int
    metric: str
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values))

    def sentence(self) -> str:
        return f"{self.folds}-fold cross-validated {self.metric} {self.mean:.4f} ± {self.std:.4f} ({self.kind})"


def cross_validate(kind: str, columns: list[Column], rows: pd.DataFrame, folds: int, metric: str, *,
                   xgboost: dict, calibration: str, min_isotonic_positives: int, seed: int) -> CrossValidation:
    """Stratified, seeded k-fold ``metric`` of ``kind`` (xgboost | logistic) on ``rows``
    (features and ``label``). XGBoost early-stops and calibrates on a stratified quarter of
    each fold's training rows. Raises ValueError when a class has fewer rows than folds."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    y = rows["label"].to_numpy()
    names = [c.name for c in columns]
    values = []
    for fit_idx, eval_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(rows, y):
        fit_rows, eval_rows = rows.iloc[fit_idx], rows.iloc[eval_idx]
        if kind == "logistic":
            scorer = LogisticScorer(columns, random_state=seed).fit(fit_rows[names], fit_rows["label"])
        else:
            inner, stop = train_test_split(np.arange(len(fit_rows)), test_size=0.25,
                                           stratify=fit_rows["label"], random_state=seed)
            cands, _ = fit_candidates(columns, fit_rows.iloc[inner], fit_rows.iloc[stop], xgboost=xgboost,
                                      calibration=calibration, min_isotonic_positives=min_isotonic_positives,
                                      seed=seed, kinds=("xgboost",))
            if cands["xgboost"].scorer is None:
                raise ValueError(cands["xgboost"].error)
            scorer = cands["xgboost"].scorer
        values.append(getattr(evaluate(eval_rows["label"], scorer.predict_proba(eval_rows[names])), metric))
    return CrossValidation(kind, folds, metric, tuple(float(v) for v in values))


def best_baseline(found: dict[str, Baseline], metric: str) -> Baseline | None:
    """The baseline with the best finite ``metric``, or None."""
    best = None
    for b in found.values():
        v = getattr(b.metrics, metric)
        if not math.isfinite(v):
            continue
        if best is None or better(metric, v, getattr(best.metrics, metric)) > 1e-12:
            best = b
    return best


__all__ = ["xgb_params_for", "XGBParams", "Candidate", "Selection", "fit_candidates", "select", "Baseline",
           "baselines", "best_baseline", "cross_validate", "CrossValidation", "RECENCY_FEATURE", "BASELINES", "SIZE_TIERS"]
