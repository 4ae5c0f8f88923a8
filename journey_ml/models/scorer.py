"""The Scorer protocol every model implements, and input checking shared by all of them.

A scorer turns a frame of features into P(outcome) per row and explains its scores. The
XGBoost scorer (:mod:`journey_ml.models.xgb`) and the rule-based scorer
(:mod:`journey_ml.models.rules`) implement it; the MLflow wrapper
(:mod:`journey_ml.models.pyfunc`) serves any of them through the same model URI.

Column kinds: a scorer may describe its inputs with a ``columns`` attribute (objects with
``name``, ``kind`` in {"numeric", "categorical"} and ``categories``), as the XGBoost scorer
does; without one every feature is numeric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores: P(outcome) per row and the features behind each score."""

    kind: str  # "xgboost" | "rules"
    feature_names: list[str]  # input columns, in order

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(outcome) per row, shape (n,)."""
        ...

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[tuple[str, float]]]:
        """Per row: the top features and their signed contribution."""
        ...


class SchemaMismatch(ValueError):
    """The input frame does not fit the scorer: missing columns or columns of the wrong kind."""

    def __init__(self, message: str, missing: list[str] | None = None,
                 wrong_kind: dict[str, str] | None = None):
        super().__init__(message)
        self.missing = missing or []
        self.wrong_kind = wrong_kind or {}


@dataclass(frozen=True)
class FeatureSpec:
    """One input column of a scorer: its name, kind and (categorical) known categories."""

    name: str
    kind: str = NUMERIC
    categories: tuple[str, ...] = ()


def feature_specs(scorer) -> list[FeatureSpec]:
    """The scorer's inputs in order, with their kinds (numeric unless the scorer says otherwise)."""
    declared = {}
    for c in getattr(scorer, "columns", None) or []:
        name = getattr(c, "name", None)
        if name is not None:
            kind = CATEGORICAL if getattr(c, "kind", NUMERIC) == CATEGORICAL else NUMERIC
            declared[name] = FeatureSpec(name, kind, tuple(getattr(c, "categories", ()) or ()))
    return [declared.get(n, FeatureSpec(n)) for n in scorer.feature_names]


def _numeric_dtype(dt) -> bool:
    return ptypes.is_bool_dtype(dt) or (ptypes.is_numeric_dtype(dt) and not ptypes.is_complex_dtype(dt))


def _fits_as_is(specs: list[FeatureSpec], X: pd.DataFrame) -> bool:
    """True when X has exactly the specs' columns in their order (no duplicate), each
    numeric spec on a numeric or boolean dtype and each categorical one on object, string
    or category: what `check_input` would return unchanged. Checked per distinct dtype."""
    names = [s.name for s in specs]
    if X.columns.tolist() != names or len(set(names)) != len(names):
        return False
    numeric: dict[Any, bool] = {}
    for spec, dt in zip(specs, X.dtypes.tolist(), strict=True):
        ok = numeric.get(dt)
        if ok is None:
            ok = numeric[dt] = _numeric_dtype(dt)
        if spec.kind == NUMERIC:
            if not ok:
                return False
        elif not (ptypes.is_object_dtype(dt) or ptypes.is_string_dtype(dt) or isinstance(dt, pd.CategoricalDtype)):
            return False
    return True


def _names(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _dtype_label(s: pd.Series) -> str:
    return str(s.dtype)


def check_input(scorer, X: pd.DataFrame) -> pd.DataFrame:
    """X with the scorer's columns in the scorer's order (extra columns dropped).

    Numeric features must be numbers or booleans (an object column of numbers and missing
    values is converted); categorical features must be strings or categories. A column with
    only missing values fits any kind. Raises SchemaMismatch naming every missing column and
    every column of the wrong kind.
    """
    if not isinstance(X, pd.DataFrame):
        raise SchemaMismatch(f"expected a pandas DataFrame of features, got {type(X).__name__}")
    specs = feature_specs(scorer)
    if _fits_as_is(specs, X):  # the API's one-row frames: already the scorer's columns, in order
        return X
    missing = [s.name for s in specs if s.name not in X.columns]
    wrong: dict[str, str] = {}
    converted: dict[str, pd.Series] = {}
    duplicated = set(X.columns[X.columns.duplicated()])
    dtypes = dict(zip(X.columns, X.dtypes, strict=True))  # a duplicated name is caught before use
    for spec in specs:
        if spec.name in missing:
            continue
        if spec.name in duplicated:
            wrong[spec.name] = "a duplicated column"
            continue
        # the common case first, without touching the values (one-row API requests)
        if spec.kind == NUMERIC and _numeric_dtype(dtypes[spec.name]):
            continue
        col = X[spec.name]
        if col.isna().all():
            continue
        if spec.kind == NUMERIC:
            if ptypes.is_object_dtype(col) or ptypes.is_string_dtype(col):
                try:
                    converted[spec.name] = pd.to_numeric(col, errors="raise")
                    continue
                except (ValueError, TypeError):
                    pass
            wrong[spec.name] = f"expected numeric, got {_dtype_label(col)}"
        else:
            if (ptypes.is_object_dtype(col) or ptypes.is_string_dtype(col)
                    or isinstance(col.dtype, pd.CategoricalDtype)):
                continue
            wrong[spec.name] = f"expected categorical (strings), got {_dtype_label(col)}"
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"missing column(s): {_names(missing)}")
        if wrong:
            parts.append("column(s) of the wrong kind: "
                         + _names([f"{k} ({v})" for k, v in wrong.items()]))
        label = getattr(scorer, "kind", type(scorer).__name__)
        raise SchemaMismatch(f"input does not fit the {label} scorer: " + "; ".join(parts),
                             missing=missing, wrong_kind=wrong)
    out = X.loc[:, [s.name for s in specs]]
    if converted:
        out = out.copy()
        for name, values in converted.items():
            out[name] = values
    return out


__all__ = ["Scorer", "SchemaMismatch", "FeatureSpec", "feature_specs", "check_input",
           "NUMERIC", "CATEGORICAL"]
