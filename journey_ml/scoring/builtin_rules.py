"""Built-in rules: the last step of the fallback ladder, needing no registry at all.

The task's ``rules:`` entry (points per feature, value > 0 earns the points, optional cap)
mapped to a probability by a fixed logistic curve (no calibration data needed):
``p = 1 / (1 + exp(-(INTERCEPT + SLOPE * points)))`` — 0 points ~ 0.08, 5 points = 0.5,
10 points ~ 0.92. A task without rules gets a constant ``BASE_RATE`` ("no rules configured").

These scorers never fail on the frame: a feature the frame lacks counts as 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journey_ml.config import JourneyConfig
from journey_ml.models.rules import points_score
from journey_ml.scoring.reasons import explanation_lists, fired_top_k

INTERCEPT = -2.5
SLOPE = 0.5
BASE_RATE = 0.1
NO_RULES = "no rules configured"


class BuiltinRulesScorer:
    """A RulesScorer-like scorer with a fixed logistic mapping (no fitting, no registry)."""

    kind = "builtin_rules"

    def __init__(self, points: dict[str, float], cap: float | None = None,
                 intercept: float = INTERCEPT, slope: float = SLOPE):
        self.points = dict(points)
        self.cap = cap
        self.intercept = intercept
        self.slope = slope

    @property
    def feature_names(self) -> list[str]:
        return list(self.points)

    def _fired(self, X: pd.DataFrame) -> np.ndarray:
        cols = []
        for name in self.points:
            if name in X.columns:
                v = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            else:
                v = np.zeros(len(X))
            cols.append(np.nan_to_num(v, nan=0.0) > 0)
        return np.column_stack(cols) if cols else np.zeros((len(X), 0), dtype=bool)

    def rule_score(self, X: pd.DataFrame) -> np.ndarray:
        return points_score(self._fired(X), self.points, self.cap)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        z = self.intercept + self.slope * self.rule_score(X)
        return 1.0 / (1.0 + np.exp(-z))

    def explain_matrix(self, X: pd.DataFrame, top_k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """(rule index or -1, points) of the fired rules, (n, top_k) each."""
        names = self.feature_names
        return fired_top_k(self._fired(X), [float(self.points[n]) for n in names], names, top_k)

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[tuple[str, float]]]:
        return explanation_lists(*self.explain_matrix(X, top_k), self.feature_names)


class ConstantScorer:
    """The same probability for everyone, explained by nothing."""

    kind = "constant"
    feature_names: list[str] = []

    def __init__(self, p: float = BASE_RATE):
        self.p = float(p)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.p)

    def explain_matrix(self, X: pd.DataFrame, top_k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        return np.full((len(X), 0), -1, dtype=np.int32), np.zeros((len(X), 0))

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[tuple[str, float]]]:
        return [[] for _ in range(len(X))]


def builtin_scorer(config: JourneyConfig, task_name: str) -> tuple[BuiltinRulesScorer | ConstantScorer, str]:
    """(scorer, description) of the built-in rules of ``task_name``."""
    rules = config.rules.get(task_name)
    if rules is None or not rules.points:
        return ConstantScorer(BASE_RATE), f"{NO_RULES} (constant {BASE_RATE:g})"
    return BuiltinRulesScorer(dict(rules.points), rules.cap), "built-in rules"


__all__ = ["BuiltinRulesScorer", "ConstantScorer", "builtin_scorer", "BASE_RATE", "NO_RULES",
           "INTERCEPT", "SLOPE"]
