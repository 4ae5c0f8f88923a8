"""The rule-based scorer: points per feature, calibrated to a probability.

A rule fires when its feature's value is above zero (missing counts as zero) and earns its
points; the score is the sum of the points of the rules that fired, optionally capped
(saturation). ``fit`` calibrates score -> probability with a one-dimensional logistic
regression on recent labelled data, so rules and XGBoost versions of a model speak the same
probability scale and can replace each other behind the ``production`` alias.

Follows the scikit-learn estimator contract: parameters in ``__init__`` (stored as given),
fitted attributes end in ``_``, ``fit`` validates and returns ``self``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from journey_ml.models.scorer import check_input


class RulesScorer(BaseEstimator):
    """Points per feature (value > 0 earns the points), capped, calibrated by logistic regression."""

    kind = "rules"

    def __init__(self, points: dict[str, float], cap: float | None = None, random_state: int = 0):
        self.points = points
        self.cap = cap
        self.random_state = random_state

    @classmethod
    def from_config(cls, rules_cfg) -> RulesScorer:
        """The (unfitted) scorer of a task's ``rules:`` entry (a RulesConfig)."""
        return cls(points=dict(rules_cfg.points), cap=rules_cfg.cap)

    @property
    def feature_names(self) -> list[str]:
        """The features the rules read, in configuration order."""
        return list(self.points)

    # --- the score ------------------------------------------------------------------------

    def _fired(self, X: pd.DataFrame) -> np.ndarray:
        """Boolean matrix (rows x rules): which rules fired (value > 0; NaN counts as 0)."""
        X = check_input(self, X)
        if len(self.points) == 0:
            return np.zeros((len(X), 0), dtype=bool)
        values = X.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.nan_to_num(values, nan=0.0) > 0

    def rule_score(self, X: pd.DataFrame) -> np.ndarray:
        """The points score per row (sum of the points of the rules that fired, capped)."""
        return points_score(self._fired(X), self.points, self.cap)

    # --- estimator contract -----------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y) -> RulesScorer:
        """Calibrate score -> probability on labelled rows.

        Raises ValueError when X lacks a configured feature, when X and y differ in length,
        when y is not 0/1 or has a single class.
        """
        if not self.points:
            raise ValueError("a rules scorer needs at least one rule (points is empty)")
        y_arr = np.asarray(y, dtype=float).ravel()
        if len(y_arr) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y_arr)} labels")
        if len(y_arr) == 0:
            raise ValueError("cannot calibrate the rules scorer on an empty set")
        if np.isnan(y_arr).any() or not np.isin(y_arr, (0.0, 1.0)).all():
            raise ValueError("labels must be 0 or 1 (missing labels are not allowed)")
        classes = np.unique(y_arr)
        if len(classes) < 2:
            raise ValueError(f"cannot calibrate the rules scorer: y has a single class "
                             f"({int(classes[0])}); need both positive and negative labels")
        score = self.rule_score(X)  # raises SchemaMismatch (a ValueError) on missing features
        self.calibrator_ = LogisticRegression(random_state=self.random_state).fit(
            score.reshape(-1, 1), y_arr.astype(int))
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(self.points)
        self.feature_names_in_ = np.array(self.feature_names, dtype=object)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibrator_"):
            raise NotFittedError("this RulesScorer is not calibrated yet: call fit(X, y) on "
                                 "recent labelled data first")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(outcome) per row, shape (n,)."""
        self._check_fitted()
        score = self.rule_score(X)
        if len(score) == 0:
            return np.zeros(0)
        return self.calibrator_.predict_proba(score.reshape(-1, 1))[:, 1]

    def explain_matrix(self, X: pd.DataFrame, top_k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Column-wise `explain`: (rule index or -1, points), (n, top_k) each."""
        from journey_ml.scoring.reasons import fired_top_k

        names = self.feature_names
        return fired_top_k(self._fired(X), [float(self.points[n]) for n in names], names, top_k)

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[tuple[str, float]]]:
        """Per row: the rules that fired with their points, largest first (top_k of them)."""
        from journey_ml.scoring.reasons import explanation_lists

        return explanation_lists(*self.explain_matrix(X, top_k), self.feature_names)


def points_score(fired: np.ndarray, points: dict[str, float], cap: float | None) -> np.ndarray:
    """Sum of the points of the rules that fired (``fired``: rows x rules, in ``points``
    order), capped at ``cap``."""
    weights = np.array([float(p) for p in points.values()], dtype=float)
    score = fired.astype(float) @ weights if len(weights) else np.zeros(len(fired))
    return np.minimum(score, float(cap)) if cap is not None else score


__all__ = ["RulesScorer", "points_score"]
