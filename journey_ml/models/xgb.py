"""The XGBoost scorer: preprocessing, booster and calibration in one picklable object.

The artifact carries its preprocessing (category codes fixed at training), so training and
serving share one code path and scoring needs nothing but the model. Follows the
scikit-learn estimator contract: parameters in ``__init__``, fitted attributes end in ``_``,
``fit`` validates and returns ``self``, randomness only through ``random_state``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from journey_ml.models.treeshap import TreeShapTables

CHUNK_ROWS = 50_000  # rows per DMatrix when scoring and explaining in one pass
_SMALL_ROWS = 64  # up to this many rows, `_array` encodes from the values (`_small_array`)
# numeric dtypes whose values convert to float32 through float64 exactly as pandas casts them
_EXACT_DTYPES = (np.dtype("float64"), np.dtype("float32"), np.dtype("bool"))
_TABLES_LOCK = threading.Lock()  # one build of a model's TreeSHAP tables at a time
_DASK_CLIENT: ContextVar[Any] = ContextVar("journey_xgb_dask_client", default=None)


@contextmanager
def distributed_fit(client) -> Iterator[None]:
    """Within the block, `XGBScorer.fit` trains the booster with XGBoost's Dask interface
    (``xgboost.dask``) on ``client``'s cluster: the rows are split over the workers and
    every worker builds histograms on its part. Calibration and everything after the
    booster stay in this process."""
    token = _DASK_CLIENT.set(client)
    try:
        yield
    finally:
        _DASK_CLIENT.reset(token)


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
                 min_child_weight: float = 1.0, reg_lambda: float = 1.0, early_stopping_rounds: int = 30,
                 n_jobs: int = 2, calibration: str = "isotonic", min_isotonic_positives: int = 200,
                 max_isotonic_ties: int = 1000, random_state: int = 7):
        self.columns = columns
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.calibration = calibration
        self.min_isotonic_positives = min_isotonic_positives
        self.max_isotonic_ties = max_isotonic_ties
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

    def _dmatrix(self, X: pd.DataFrame, y=None, weight=None) -> xgb.DMatrix:
        return xgb.DMatrix(self._matrix(X), label=y, weight=weight, enable_categorical=True, nthread=self.n_jobs)

    def _array(self, X: pd.DataFrame) -> np.ndarray:
        """The same encoding as `_matrix` as one float32 array (category codes, NaN missing).

        Building a DMatrix from a frame of pandas Categoricals costs ~25 ms even for one
        row; from this array it is ~0.5 ms, with identical predictions and contributions
        (tests/models). Training keeps the frame path. A few rows whose numeric columns are
        all float or boolean (the API's one-row frames) are encoded from their values
        directly (`_small_array`, the same array: tests/models).
        """
        if len(X) <= _SMALL_ROWS:
            out = self._small_array(X)
            if out is not None:
                return out
        return self._frame_array(X)

    def _encoding(self) -> tuple[list[int], list[tuple[int, dict[str, int], int]]]:
        """(numeric column positions, per categorical column (position, category -> code,
        the code of "other")), derived from ``columns`` once and kept (never pickled)."""
        cached = getattr(self, "_encoding_cache", None)
        if cached is None or cached[0] is not self.columns:
            num = [j for j, c in enumerate(self.columns) if c.kind != "categorical"]
            cats = []
            for j, c in enumerate(self.columns):
                if c.kind == "categorical":
                    names = list(c.categories) + ["other"] if "other" not in c.categories else list(c.categories)
                    codes: dict[str, int] = {}
                    for i, name in enumerate(names):
                        codes.setdefault(name, i)  # the first position, as Index.get_indexer finds it
                    cats.append((j, codes, names.index("other")))
            cached = self._encoding_cache = (self.columns, (num, cats))
        return cached[1]

    def _small_array(self, X: pd.DataFrame) -> np.ndarray | None:
        """`_frame_array` of a few rows, from their values as Python objects (float64 values
        cast to float32 as pandas casts them); None when a numeric column is not float or
        boolean (integers and objects take the frame path) or X is not exactly our columns."""
        if X.columns.tolist() != self.feature_names:
            return None
        num, cats = self._encoding()
        dtypes = X.dtypes.tolist()
        if not all(dtypes[j] in _EXACT_DTYPES for j in num):
            return None
        values = X.to_numpy(dtype=object)
        out = np.empty((len(X), len(self.columns)), dtype=np.float32)
        if num:
            out[:, num] = np.asarray(values[:, num], dtype=np.float64)
        for j, codes, other in cats:
            out[:, j] = [np.nan if pd.isna(v) else codes.get(v, other) for v in values[:, j].tolist()]
        return out

    def _frame_array(self, X: pd.DataFrame) -> np.ndarray:
        """`_array` column-wise over the frame (any number of rows, any numeric dtype)."""
        missing = [c.name for c in self.columns if c.name not in X.columns]
        if missing:
            raise ValueError(f"input lacks feature column(s): {', '.join(missing[:10])}"
                             + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
        out = np.empty((len(X), len(self.columns)), dtype=np.float32)
        num = [j for j, c in enumerate(self.columns) if c.kind != "categorical"]
        if num:
            block = X[[self.columns[j].name for j in num]]
            if all(pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t) for t in block.dtypes):
                out[:, num] = block.to_numpy(dtype=np.float32, na_value=np.nan)
            else:
                for j in num:
                    out[:, j] = pd.to_numeric(X[self.columns[j].name], errors="coerce").to_numpy(
                        dtype=np.float32, na_value=np.nan)
        for j, c in enumerate(self.columns):
            if c.kind == "categorical":
                cats = list(c.categories) + ["other"] if "other" not in c.categories else list(c.categories)
                values = X[c.name].to_numpy(dtype=object)
                codes = pd.Index(cats, dtype=object).get_indexer(values).astype(np.float32)
                codes[codes < 0] = cats.index("other")
                codes[pd.isna(values)] = np.nan
                out[:, j] = codes
        return out

    def _predict_dmatrix(self, X: pd.DataFrame) -> xgb.DMatrix:
        return self._array_dmatrix(self._array(X))

    def _array_dmatrix(self, A: np.ndarray) -> xgb.DMatrix:
        types = ["c" if c.kind == "categorical" else "q" for c in self.columns]
        return xgb.DMatrix(A, feature_names=self.feature_names, feature_types=types,
                           enable_categorical=True, nthread=self.n_jobs)

    # --- estimator contract --------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y, X_valid: pd.DataFrame, y_valid, sample_weight=None) -> XGBScorer:
        """Train on (X, y) with early stopping and calibration on (X_valid, y_valid).

        ``sample_weight``: one weight per training row (e.g. recent dates weighing more);
        early stopping and calibration stay unweighted.

        ``calibration_`` is the method used and ``calibration_note_`` why: isotonic is used
        only with at least ``min_isotonic_positives`` validation positives, and only if its
        fit passes `isotonic_problem` (no tie of ``max_isotonic_ties`` rows or more, no
        p = 1.00); otherwise sigmoid (Platt) scaling, and the note says so. Raises
        ValueError when a set is empty or has a single class.
        """
        y = np.asarray(y, dtype=float)
        y_valid = np.asarray(y_valid, dtype=float)
        for name, labels in (("training", y), ("validation", y_valid)):
            if len(labels) == 0:
                raise ValueError(f"the {name} set is empty")
            if labels.min() == labels.max():
                raise ValueError(f"the {name} set has a single class ({int(labels[0])}): "
                                 "cannot train or calibrate a classifier")
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=float)
            if w.shape != y.shape or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"sample_weight must be {len(y)} finite weights >= 0 with a positive sum")
        if w is None:
            pos_weight = max((len(y) - float(y.sum())) / max(float(y.sum()), 1.0), 1.0)
        else:  # the weighted classes' ratio
            pos, neg = float(w[y == 1].sum()), float(w[y == 0].sum())
            pos_weight = max(neg / pos, 1.0) if pos > 0 else 1.0
        params = {
            "objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist",
            "max_depth": self.max_depth, "eta": self.learning_rate, "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree, "min_child_weight": self.min_child_weight,
            "lambda": getattr(self, "reg_lambda", 1.0),
            # rare outcomes: re-weight positives; calibration brings probabilities back
            "scale_pos_weight": pos_weight,
            "seed": self.random_state, "nthread": self.n_jobs, "max_cat_to_onehot": 8,
        }
        self._shap_tables = None  # a new booster: the TreeSHAP tables are rebuilt on first use
        dvalid = self._dmatrix(X_valid, y_valid)
        client = _DASK_CLIENT.get()
        if client is not None:
            self.booster_ = self._train_on_dask(client, params, X, y, X_valid, y_valid, w)
        else:
            self.booster_ = xgb.train(params, self._dmatrix(X, y, w), num_boost_round=self.n_estimators,
                                      evals=[(dvalid, "valid")], verbose_eval=False,
                                      early_stopping_rounds=self.early_stopping_rounds)
        self.best_iteration_ = int(self.booster_.best_iteration)
        raw = self._raw(dvalid)
        self.calibration_, self.calibrator_, self.calibration_note_ = self._fit_calibrator(raw, y_valid)
        return self

    def _train_on_dask(self, client, params: dict, X: pd.DataFrame, y: np.ndarray, X_valid: pd.DataFrame,
                       y_valid: np.ndarray, weight: np.ndarray | None = None) -> xgb.Booster:
        """The booster trained with ``xgboost.dask`` over ``client``'s workers (the same
        encoding as `_dmatrix`); one such training at a time on a cluster (each needs every
        worker it has data on at once)."""
        import dask.dataframe as dd
        from distributed import Lock
        from xgboost import dask as dxgb

        parts = max(1, len(client.nthreads()))

        def matrix(frame: pd.DataFrame, labels: np.ndarray, w: np.ndarray | None = None) -> dxgb.DaskDMatrix:
            m = self._matrix(frame).reset_index(drop=True)
            n = min(parts, max(1, len(m)))
            return dxgb.DaskDMatrix(client, dd.from_pandas(m, npartitions=n),
                                    dd.from_pandas(pd.Series(labels), npartitions=n),
                                    weight=None if w is None else dd.from_pandas(pd.Series(w), npartitions=n),
                                    enable_categorical=True)

        dask_params = {k: v for k, v in params.items() if k != "nthread"}  # each worker uses its threads
        with Lock("journey-ml-xgboost-dask"):
            out = dxgb.train(client, dask_params, matrix(X, y, weight), num_boost_round=self.n_estimators,
                             evals=[(matrix(X_valid, y_valid), "valid")], verbose_eval=False,
                             early_stopping_rounds=self.early_stopping_rounds)
        return out["booster"]

    def _fit_calibrator(self, raw: np.ndarray, y_valid: np.ndarray):
        """(method, calibrator, note): isotonic when asked for, with enough positives and a
        fit that passes the check; Platt scaling otherwise."""
        platt = LogisticRegression(random_state=self.random_state).fit(_logit(raw).reshape(-1, 1), y_valid)
        if self.calibration != "isotonic":
            return "sigmoid", platt, "Platt scaling (configured)"
        positives = int(y_valid.sum())
        if positives < self.min_isotonic_positives:
            return "sigmoid", platt, (f"Platt scaling: {positives} validation positives "
                                      f"(isotonic needs {self.min_isotonic_positives})")
        iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(raw, y_valid)
        problem = isotonic_problem(iso.predict(raw), self.max_isotonic_ties)
        if problem:
            return "sigmoid", platt, f"Platt scaling: isotonic refused ({problem})"
        return "isotonic", iso, f"isotonic ({positives} validation positives)"

    def set_threads(self, n: int) -> None:
        """Predict (and explain) on ``n`` threads from now on (the API: 1, a request is one row
        and more OpenMP threads only spin)."""
        self.n_jobs = int(n)
        if getattr(self, "booster_", None) is not None:
            self.booster_.set_param({"nthread": int(n)})

    def _raw(self, d: xgb.DMatrix) -> np.ndarray:
        return self.booster_.predict(d, iteration_range=(0, self.best_iteration_ + 1))

    def _raw_array(self, A: np.ndarray) -> np.ndarray:
        """`_raw` of encoded rows: a few rows straight from the array (``inplace_predict``,
        no DMatrix to build; the trees carry their categorical splits, so the values are
        the same: tests/models), more through a DMatrix."""
        if len(A) <= _SMALL_ROWS:
            return self.booster_.inplace_predict(A, iteration_range=(0, self.best_iteration_ + 1))
        return self._raw(self._array_dmatrix(A))

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        if getattr(self, "calibration_", self.calibration) == "isotonic":
            return np.clip(self.calibrator_.predict(raw), 0.0, 1.0)
        platt = self.calibrator_
        x = _logit(raw).reshape(-1, 1)
        if isinstance(platt, LogisticRegression) and len(platt.classes_) == 2 and platt.coef_.shape == (1, 1):
            # what predict_proba(x)[:, 1] computes (expit of x @ coef.T + intercept), without
            # its per-call input validation (most of its cost on one row; tests/models)
            return expit((x @ platt.coef_.T + platt.intercept_).reshape(-1))
        return platt.predict_proba(x)[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(outcome) per row."""
        return self._calibrate(self._raw(self._predict_dmatrix(X)))

    # --- explanations ----------------------------------------------------------------------

    def __getstate__(self) -> dict:
        # the TreeSHAP tables are derived from the booster: never pickled into the artifact
        # (which stays byte-identical whether or not they were built), rebuilt after a load
        return {k: v for k, v in self.__dict__.items() if k not in ("_shap_tables", "_encoding_cache")}

    def prepare_explanations(self) -> TreeShapTables:
        """The model's TreeSHAP tables, built once per booster and kept on the scorer.

        The MLflow wrapper calls this when a model is loaded, so the first explanation a
        service gives pays no build (a fraction of a second for a few hundred trees).
        """
        def fresh(cached) -> bool:  # built from this very booster and iteration range
            return cached is not None and cached[0] is self.booster_ and cached[1] == self.best_iteration_

        cached = getattr(self, "_shap_tables", None)
        if not fresh(cached):
            with _TABLES_LOCK:
                cached = getattr(self, "_shap_tables", None)
                if not fresh(cached):
                    tables = TreeShapTables.from_booster(self.booster_, self.best_iteration_ + 1)
                    cached = self._shap_tables = (self.booster_, self.best_iteration_, tables)
        return cached[2]

    def _contribs(self, A: np.ndarray) -> np.ndarray:
        """(n, features + 1) exact path-dependent SHAP values of the encoded rows ``A``, bias
        last: what ``booster.predict(..., pred_contribs=True)`` gives (tests/models), from
        decision-pattern tables (journey_ml.models.treeshap) at a fraction of its cost."""
        return self.prepare_explanations().shap_values(A, n_threads=self.n_jobs)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row SHAP values (log-odds scale): exact path-dependent TreeSHAP; bias dropped."""
        contribs = self._contribs(self._array(X))
        return pd.DataFrame(contribs[:, :-1], columns=self.feature_names, index=X.index)

    def score_explain(self, X: pd.DataFrame, top_k: int = 3, *,
                      chunk_rows: int = CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probabilities and the top-``top_k`` contributions of every row in one pass.

        Returns (p (n,), idx (n, k) feature indices, val (n, k) signed SHAP values), each row's
        picks ordered positive first, then by -|value|. Rows are processed in chunks (one
        encoding per chunk for both), so the (n, features) contributions matrix never exists
        in full.
        """
        from journey_ml.scoring.reasons import top_k_matrix

        n = len(X)
        k = max(0, min(int(top_k), len(self.columns)))
        p = np.empty(n)
        idx = np.empty((n, k), dtype=np.int32)
        val = np.empty((n, k))
        step = max(int(chunk_rows), 1)
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            A = self._array(X if (lo, hi) == (0, n) else X.iloc[lo:hi])
            p[lo:hi] = self._calibrate(self._raw_array(A))
            idx[lo:hi], val[lo:hi] = top_k_matrix(self._contribs(A)[:, :-1], k)
        return p, idx, val

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-|contribution| features per row, with their signed SHAP value (positive first)."""
        from journey_ml.scoring.reasons import explanation_lists

        _, idx, val = self.score_explain(X, top_k)
        return explanation_lists(idx, val, self.feature_names)

    def importance(self) -> dict[str, float]:
        """Total gain per feature (features never used are absent)."""
        return {k: float(v) for k, v in self.booster_.get_score(importance_type="total_gain").items()}


def isotonic_problem(p: np.ndarray, max_ties: int = 1000, min_certain_rows: int = 200) -> str | None:
    """Why calibrated probabilities ``p`` (of the validation rows) are unusable, or None.

    Isotonic regression is a step function: on few positives it puts p = 1.00 on a top step
    of a handful of rows (all positive by chance), and hands thousands of rows one
    probability, which no longer ranks them. A step at p >= 0.995 is accepted only when it
    holds at least ``min_certain_rows`` rows; no step may hold ``max_ties`` rows or more.
    """
    p = np.asarray(p, dtype=float)
    if len(p) == 0:
        return None
    values, counts = np.unique(np.round(p, 12), return_counts=True)
    certain = values >= 0.995
    if certain.any() and counts[certain].sum() < min_certain_rows:
        return f"p = {values.max():.2f} on a top step of {int(counts[certain].sum())} rows"
    if counts.max() >= max_ties:
        return f"{int(counts.max()):,} validation rows tied at one probability"
    return None


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
