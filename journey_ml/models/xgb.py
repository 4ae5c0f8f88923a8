"""The XGBoost scorer: preprocessing, booster and calibration in one picklable object.

The artifact carries its preprocessing (category codes fixed at training), so training and
serving share one code path and scoring needs nothing but the model. Follows the
scikit-learn estimator contract: parameters in ``__init__``, fitted attributes end in ``_``,
``fit`` validates and returns ``self``, randomness only through ``random_state``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # numeric | categorical
    categories: tuple[str, ...] = ()


class XGBScorer:
    """Calibrated gradient-boosted classifier over a declared feature set."""

    kind = "xgboost"

    def __init__(self, columns: list[Column], *, n_estimators: int = 400, max_depth: int = 4,
                 learning_rate: float = 0.05, subsample: float = 0.8, colsample_bytree: float = 0.8,
                 min_child_weight: float = 1.0, early_stopping_rounds: int = 30, n_jobs: int = 2,
                 calibration: str = "isotonic", random_state: int = 7):
        self.columns = columns
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.calibration = calibration
        self.random_state = random_state

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]

    # --- preprocessing (shared by fit, predict and explain) ----------------------------

    def _matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c.name for c in self.columns if c.name not in X.columns]
        if missing:
            raise ValueError(f"input lacks feature column(s): {', '.join(missing[:10])}"
                             + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
        out = {}
        for c in self.columns:
            s = X[c.name]
            if c.kind == "categorical":
                cats = list(c.categories) + ["other"] if "other" not in c.categories else list(c.categories)
                v = s.astype(object).where(s.notna(), None)
                v = v.where(v.isin(cats) | v.isna(), "other")
                out[c.name] = pd.Categorical(v, categories=cats)
            else:
                out[c.name] = pd.to_numeric(s, errors="coerce").astype("float32")
        return pd.DataFrame(out, index=X.index)

    def _dmatrix(self, X: pd.DataFrame, y=None) -> xgb.DMatrix:
        return xgb.DMatrix(self._matrix(X), label=y, enable_categorical=True, nthread=self.n_jobs)

    # --- estimator contract --------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y, X_valid: pd.DataFrame, y_valid) -> XGBScorer:
        """Train on (X, y) with early stopping and calibration on (X_valid, y_valid).

        Raises ValueError when a set is empty or has a single class.
        """
        y = np.asarray(y, dtype=float)
        y_valid = np.asarray(y_valid, dtype=float)
        for name, labels in (("training", y), ("validation", y_valid)):
            if len(labels) == 0:
                raise ValueError(f"the {name} set is empty")
            if labels.min() == labels.max():
                raise ValueError(f"the {name} set has a single class ({int(labels[0])}): "
                                 "cannot train or calibrate a classifier")
        pos = float(y.sum())
        params = {
            "objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist",
            "max_depth": self.max_depth, "eta": self.learning_rate, "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree, "min_child_weight": self.min_child_weight,
            # rare outcomes: re-weight positives; calibration brings probabilities back
            "scale_pos_weight": max((len(y) - pos) / max(pos, 1.0), 1.0),
            "seed": self.random_state, "nthread": self.n_jobs, "max_cat_to_onehot": 8,
        }
        dtrain = self._dmatrix(X, y)
        dvalid = self._dmatrix(X_valid, y_valid)
        self.booster_ = xgb.train(params, dtrain, num_boost_round=self.n_estimators,
                                  evals=[(dvalid, "valid")], verbose_eval=False,
                                  early_stopping_rounds=self.early_stopping_rounds)
        self.best_iteration_ = int(self.booster_.best_iteration)
        raw = self._raw(dvalid)
        if self.calibration == "isotonic":
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(raw, y_valid)
        else:
            self.calibrator_ = LogisticRegression(random_state=self.random_state).fit(
                _logit(raw).reshape(-1, 1), y_valid)
        return self

    def _raw(self, d: xgb.DMatrix) -> np.ndarray:
        return self.booster_.predict(d, iteration_range=(0, self.best_iteration_ + 1))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(outcome) per row."""
        raw = self._raw(self._dmatrix(X))
        if self.calibration == "isotonic":
            return np.clip(self.calibrator_.predict(raw), 0.0, 1.0)
        return self.calibrator_.predict_proba(_logit(raw).reshape(-1, 1))[:, 1]

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row SHAP values (log-odds scale) from XGBoost's native TreeSHAP; bias dropped."""
        contribs = self.booster_.predict(self._dmatrix(X), pred_contribs=True,
                                         iteration_range=(0, self.best_iteration_ + 1))
        return pd.DataFrame(contribs[:, :-1], columns=self.feature_names, index=X.index)

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-|contribution| features per row, with their signed SHAP value."""
        c = self.contributions(X).to_numpy()
        order = np.argsort(-np.abs(c), axis=1)[:, :top_k]
        names = self.feature_names
        return [[(names[j], float(c[i, j])) for j in order[i]] for i in range(len(c))]

    def importance(self) -> dict[str, float]:
        """Total gain per feature (features never used are absent)."""
        return {k: float(v) for k, v in self.booster_.get_score(importance_type="total_gain").items()}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
