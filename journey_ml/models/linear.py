"""The logistic-regression scorer: a regularised linear model over the same declared features.

It is a model-selection candidate beside XGBoost (on small data it often ranks better) and
the "logistic regression" baseline of the promotion gate. The artifact carries its
preprocessing, a scikit-learn ``Pipeline``:

1. ``encode``: numeric features as signed ``log1p`` (counts and day spans are heavy-tailed),
   missing values imputed with the training median plus a missing indicator (a missing
   recency means "never"), categorical features one-hot over the categories known at
   training (unknown values count as ``other``);
2. ``scale``: standardised;
3. ``model``: L2-regularised logistic regression, unweighted, so its probabilities need no
   further calibration.

Explanations are exact for a linear model: a feature's contribution is
``coefficient x (x - mean)`` on the scaled scale (log-odds), summed over the columns the
feature encodes to, so reasons use the same templates as the XGBoost scorer's SHAP values.

Follows the estimator contract of this package: parameters in ``__init__``, fitted
attributes end in ``_``, ``fit`` validates and returns ``self``, ``predict_proba`` gives
P(outcome) per row, shape (n,), like every journey-ml Scorer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from journey_ml.models.xgb import Column


def _categories(c: Column) -> list[str]:
    cats = list(c.categories)
    return cats if "other" in cats else [*cats, "other"]


class FeatureEncoder(BaseEstimator, TransformerMixin):
    """Declared columns -> a float matrix (signed log1p, median-imputed + missing indicator,
    one-hot categories). ``owners_[j]`` is the index of the feature output column j encodes."""

    def __init__(self, columns: list[Column]):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None) -> FeatureEncoder:
        medians, indicate = {}, {}
        for c in self.columns:
            if c.kind == "categorical":
                continue
            v = _signed_log1p(pd.to_numeric(X[c.name], errors="coerce").to_numpy(dtype=float))
            finite = v[np.isfinite(v)]
            medians[c.name] = float(np.median(finite)) if len(finite) else 0.0
            indicate[c.name] = bool((~np.isfinite(v)).any())
        self.medians_, self.indicate_ = medians, indicate
        owners, names = [], []
        for i, c in enumerate(self.columns):
            if c.kind == "categorical":
                for cat in _categories(c):
                    owners.append(i)
                    names.append(f"{c.name}={cat}")
            else:
                owners.append(i)
                names.append(c.name)
                if indicate[c.name]:
                    owners.append(i)
                    names.append(f"{c.name} missing")
        self.owners_ = np.asarray(owners, dtype=np.int64)
        self.output_names_ = names
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(X), len(self.owners_)), dtype=float)
        j = 0
        for c in self.columns:
            if c.kind == "categorical":
                cats = _categories(c)
                values = X[c.name].to_numpy(dtype=object)
                codes = pd.Index(cats, dtype=object).get_indexer(values)
                codes[codes < 0] = cats.index("other")
                present = ~pd.isna(values)
                out[np.flatnonzero(present), j + codes[present]] = 1.0
                j += len(cats)
                continue
            v = _signed_log1p(pd.to_numeric(X[c.name], errors="coerce").to_numpy(dtype=float))
            missing = ~np.isfinite(v)
            out[:, j] = np.where(missing, self.medians_[c.name], v)
            j += 1
            if self.indicate_[c.name]:
                out[:, j] = missing
                j += 1
        return out


class LogisticScorer:
    """Regularised logistic regression over a declared feature set (see the module doc)."""

    kind = "logistic"

    def __init__(self, columns: list[Column], *, C: float = 0.5, max_iter: int = 2000, random_state: int = 7):
        self.columns = columns
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def _check(self, X: pd.DataFrame) -> None:
        missing = [n for n in self.feature_names if n not in X.columns]
        if missing:
            raise ValueError(f"input lacks feature column(s): {', '.join(missing[:10])}"
                             + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> LogisticScorer:
        """Fit encoder, scaler and model on (X, y), the model with ``sample_weight`` per row
        when given. Raises ValueError on an empty set, a single class or a missing feature
        column."""
        self._check(X)
        y = np.asarray(y, dtype=float)
        if len(y) == 0:
            raise ValueError("the training set is empty")
        if y.min() == y.max():
            raise ValueError(f"the training set has a single class ({int(y[0])}): cannot train a classifier")
        self.pipeline_ = Pipeline([
            ("encode", FeatureEncoder(self.columns)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)),
        ]).fit(X, y.astype(int), **({} if sample_weight is None else
                                     {"model__sample_weight": np.asarray(sample_weight, dtype=float)}))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(outcome) per row, shape (n,)."""
        self._check(X)
        if len(X) == 0:
            return np.zeros(0)
        return self.pipeline_.predict_proba(X)[:, 1]

    def _contribs(self, X: pd.DataFrame) -> np.ndarray:
        """(n, features) log-odds contributions: coefficient x scaled deviation from the mean."""
        z = self.pipeline_[:-1].transform(X)  # scaled: the training mean is 0
        per_column = z * self.pipeline_["model"].coef_[0]
        owners = self.pipeline_["encode"].owners_
        out = np.zeros((len(X), len(self.columns)))
        np.add.at(out.T, owners, per_column.T)
        return out

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row contributions (log-odds) of every feature."""
        self._check(X)
        return pd.DataFrame(self._contribs(X), columns=self.feature_names, index=X.index)

    def score_explain(self, X: pd.DataFrame, top_k: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probabilities and the top-``top_k`` contributions per row (as XGBScorer.score_explain)."""
        from journey_ml.scoring.reasons import top_k_matrix

        self._check(X)
        k = max(0, min(int(top_k), len(self.columns)))
        if len(X) == 0:
            return np.zeros(0), np.zeros((0, k), dtype=np.int32), np.zeros((0, k))
        idx, val = top_k_matrix(self._contribs(X), k)
        return self.predict_proba(X), idx, val

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-|contribution| features per row, with their signed contribution."""
        from journey_ml.scoring.reasons import explanation_lists

        _, idx, val = self.score_explain(X, top_k)
        return explanation_lists(idx, val, self.feature_names)

    def importance(self) -> dict[str, float]:
        """|coefficient| summed over the columns each feature encodes to (scaled scale)."""
        coef = np.abs(self.pipeline_["model"].coef_[0])
        owners = self.pipeline_["encode"].owners_
        totals = np.zeros(len(self.columns))
        np.add.at(totals, owners, coef)
        return {n: float(v) for n, v in zip(self.feature_names, totals, strict=True) if v > 0}


def _signed_log1p(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.log1p(np.abs(v))


__all__ = ["LogisticScorer", "FeatureEncoder"]
