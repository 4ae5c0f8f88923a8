"""Feature, prediction and explanation drift: Evidently's tests, computed exactly and fast.

Per column we pick the test and threshold Evidently 0.7 picks by default
(`evidently.legacy.calculations.stattests.registry._get_default_stattest`), on the same
cleaned values (nulls and infinities dropped), so our flags match its `DataDriftPreset`:

| reference rows (non-null) | numeric column                                   | categorical column      |
|---|---|---|
| <= 1000 | 2 values or fewer: Z-test; 3-5: chi-squared; more: Kolmogorov-Smirnov (p < 0.05; KS p <= 0.05) | chi-squared (Z-test if 2 values or fewer) |
| > 1000  | 5 values or fewer: Jensen-Shannon distance; more: Wasserstein distance normed by the reference std (>= 0.1) | Jensen-Shannon distance (>= 0.1) |

The statistics are the same numbers, computed on all rows: categorical columns by value
counts, the Wasserstein distance from sorted values (exact, no scipy argsort), so no
sampling error is added. Each column runs in its own guard; a bad one is reported with
``skipped`` and a reason, never raised.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from journey_ml.features.declaration import FeatureSet
from journey_ml.monitoring.contract import ColumnProfiles, ContractResult, check_contract
from journey_ml.monitoring.policy import share_reached

# Evidently 0.7's defaults: the size that switches tests, and each test's threshold
SMALL_REFERENCE_ROWS = 1000
P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
# method name -> (Evidently's display name, what the statistic is)
METHODS: dict[str, tuple[str, str]] = {
    "ks": ("K-S p_value", "p_value"),
    "chisquare": ("chi-square p_value", "p_value"),
    "z": ("Z-test p_value", "p_value"),
    "wasserstein": ("Wasserstein distance (normed)", "distance"),
    "jensenshannon": ("Jensen-Shannon distance", "distance"),
}


def _clean_float(v: Any) -> Any:
    """NaN and infinities become None (JSON has neither)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None, numpy scalars as Python ones (for strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    return _clean_float(obj)


@dataclass
class ColumnDrift:
    """The drift test of one column (or of the prediction scores)."""

    column: str
    kind: str
    method: str
    statistic: float
    threshold: float
    drifted: bool
    skipped: str | None = None  # why not computed
    statistic_type: str = ""  # p_value (drift when small) | distance (drift when large)
    reference_rows: int = 0  # values tested (nulls and infinities left out, as Evidently does)
    current_rows: int = 0
    # effect size, whatever the test: Wasserstein distance normed by the reference std (numbers),
    # Jensen-Shannon distance (categories); a test that fires on a tiny effect does not count
    effect: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return jsonable(asdict(self))


@dataclass
class ExplanationDrift:
    """The shift in the ranking of mean |SHAP| per feature."""

    reference_ranking: list[str]
    current_ranking: list[str]
    rank_correlation: float
    top_k_overlap: float
    drifted: bool
    top_k: int = 10
    entered_top_k: list[str] = field(default_factory=list)
    left_top_k: list[str] = field(default_factory=list)
    skipped: str | None = None  # why there is no comparison

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return jsonable(asdict(self))


@dataclass
class DriftOptions:
    """Options of a drift run; thresholds default to Evidently's per test."""

    sample_rows: int = 10_000  # rows per side for the Evidently report (our statistics use every row)
    seed: int = 7
    share_threshold: float = 0.5  # share of drifted columns that means dataset drift (Evidently's drift_share)
    critical_columns: list[str] = field(default_factory=list)
    min_rank_correlation: float = 0.7
    top_k: int = 10
    min_top_k_overlap: float = 0.5
    num_threshold: float | None = None  # None: the chosen test's default (0.05 p-value, 0.1 distance)
    cat_threshold: float | None = None
    min_effect: float = 0.0  # a drifted column counts only when its effect reaches this
    importance: dict[str, float] = field(default_factory=dict)  # feature -> weight (the weighted share)


@dataclass
class DriftResult:
    """Everything one drift run found; `to_dict` is JSON-ready."""

    reference_rows: int
    current_rows: int
    contract: ContractResult
    columns: dict[str, ColumnDrift]
    drifted_columns: list[str]
    share_drifted: float
    dataset_drift: bool
    critical_drifted: list[str]
    prediction: ColumnDrift | None
    explanation: ExplanationDrift | None
    seconds: float
    tested_columns: int = 0  # columns actually tested (the denominator of share_drifted)
    skipped_columns: list[str] = field(default_factory=list)
    critical_skipped: list[str] = field(default_factory=list)  # critical columns the contract made untestable
    # drifted columns whose effect reaches the floor, and their share of the model's importance
    counted_columns: list[str] = field(default_factory=list)
    weighted_share: float | None = None  # None: no importance given

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return jsonable({
            "reference_rows": self.reference_rows, "current_rows": self.current_rows,
            "contract": self.contract.to_dict(),
            "columns": {k: v.to_dict() for k, v in self.columns.items()},
            "drifted_columns": list(self.drifted_columns), "share_drifted": self.share_drifted,
            "dataset_drift": self.dataset_drift, "critical_drifted": list(self.critical_drifted),
            "critical_skipped": list(self.critical_skipped),
            "tested_columns": self.tested_columns, "skipped_columns": list(self.skipped_columns),
            "counted_columns": list(self.counted_columns), "weighted_share": self.weighted_share,
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "explanation": self.explanation.to_dict() if self.explanation else None,
            "seconds": self.seconds,
        })


# ---------------------------------------------------------------- statistics (Evidently's, exactly)

def wasserstein_sorted(rs: np.ndarray, cs: np.ndarray) -> float:
    """First Wasserstein distance of two sorted samples, via their quantile functions.

    W1 = integral over u in (0, 1] of |Q_r(u) - Q_c(u)|; the quantile functions are step
    functions with breaks at i/n and j/m, so the integral is a sum over the merged breaks.
    Same value as `scipy.stats.wasserstein_distance` (to rounding), several times faster.
    """
    n, m = rs.size, cs.size
    if n == m:
        return float(np.mean(np.abs(rs - cs)))
    u = np.sort(np.concatenate([np.arange(1, n + 1) / n, np.arange(1, m + 1) / m]))
    du = np.diff(u, prepend=0.0)
    mid = u - du / 2  # strictly inside each step, so the floor picks the right order statistic
    ir = np.minimum((mid * n).astype(np.int64), n - 1)
    ic = np.minimum((mid * m).astype(np.int64), m - 1)
    return float(np.dot(np.abs(rs[ir] - cs[ic]), du))


def _distinct_sorted(a: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array."""
    if a.size == 0:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _counts(values: pd.Series | np.ndarray) -> dict[Any, int]:
    return pd.Series(values).value_counts(dropna=True).to_dict()


def _jensenshannon(ref_counts: Mapping[Any, int], cur_counts: Mapping[Any, int], n_ref: int, n_cur: int) -> float:
    # Evidently: shares over the union of values, no smoothing, natural log
    keys = list(set(ref_counts) | set(cur_counts))
    p = np.array([ref_counts.get(k, 0) / n_ref for k in keys])
    q = np.array([cur_counts.get(k, 0) / n_cur for k in keys])
    return float(distance.jensenshannon(p, q))


def _chisquare(ref_counts: Mapping[Any, int], cur_counts: Mapping[Any, int], n_ref: int, n_cur: int) -> float:
    keys = list(set(ref_counts) | set(cur_counts))
    k_norm = n_cur / n_ref
    f_exp = np.array([ref_counts.get(k, 0) * k_norm for k in keys], dtype=float)
    f_obs = np.array([cur_counts.get(k, 0) for k in keys], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a value absent from the reference has f_exp 0: statistic inf, p-value 0 (as in Evidently)
        return float(stats.chisquare(f_obs, f_exp)[1])


def _ztest(ref_counts: Mapping[Any, int], cur_counts: Mapping[Any, int], n_ref: int, n_cur: int) -> float:
    keys = sorted(set(ref_counts) | set(cur_counts))
    if len(ref_counts) == 1 and len(cur_counts) == 1 and keys and len(keys) == 1:
        return 1.0
    first = keys[0]
    # proportion of values that are not the first (sorted) value, as Evidently's z-test does
    p1 = (n_ref - ref_counts.get(first, 0)) / n_ref
    p2 = (n_cur - cur_counts.get(first, 0)) / n_cur
    pooled = (p1 * n_ref + p2 * n_cur) / (n_ref + n_cur)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def _decide(column: str, kind: str, method: str, statistic: float, threshold: float | None,
            n_ref: int, n_cur: int) -> ColumnDrift:
    stype = METHODS[method][1]
    if threshold is None:
        threshold = DISTANCE_THRESHOLD if stype == "distance" else P_VALUE_THRESHOLD
    if stype == "distance":
        drifted = statistic >= threshold
    elif method == "ks":
        drifted = statistic <= threshold
    else:
        drifted = statistic < threshold
    return ColumnDrift(column=column, kind=kind, method=method, statistic=float(statistic),
                       threshold=float(threshold), drifted=bool(drifted), statistic_type=stype,
                       reference_rows=n_ref, current_rows=n_cur)


def _decide_sorted(column: str, r: np.ndarray, c: np.ndarray, rs: np.ndarray, cs: np.ndarray,
                   threshold: float | None) -> ColumnDrift:
    """Evidently's default numeric test on finite values ``r``, ``c`` (``rs``, ``cs`` sorted)."""
    if r.size == 0:
        raise ValueError(f"column {column!r} has no finite value in the reference data")
    if c.size == 0:
        raise ValueError(f"column {column!r} has no finite value in the current data")
    out = _test_sorted(column, r, c, rs, cs, threshold)
    if out.method == "jensenshannon":
        effect = out.statistic
    elif out.method in ("z", "chisquare"):  # few distinct values: the shift of their shares
        effect = _jensenshannon(_counts(rs), _counts(cs), r.size, c.size)
    elif out.method == "wasserstein":
        effect = out.statistic
    else:
        effect = wasserstein_sorted(rs, cs) / max(float(np.std(r)), 0.001)
    return replace(out, effect=effect)


def _test_sorted(column: str, r: np.ndarray, c: np.ndarray, rs: np.ndarray, cs: np.ndarray,
                 threshold: float | None) -> ColumnDrift:
    rd, cd = _distinct_sorted(rs), _distinct_sorted(cs)
    # Evidently counts distinct values over both sides; only "<= 2", "<= 5" or "more" matters
    n_values = 6 if len(rd) > 5 or len(cd) > 5 else len(np.union1d(rd, cd))
    if r.size <= SMALL_REFERENCE_ROWS:
        if n_values > 5:
            with warnings.catch_warnings():  # scipy falls back from the exact p-value, as in Evidently: say nothing
                warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
                p = float(stats.ks_2samp(r, c)[1])
            return _decide(column, "numeric", "ks", p, threshold, r.size, c.size)
        rc, cc = _counts(rs), _counts(cs)
        if n_values > 2:
            return _decide(column, "numeric", "chisquare", _chisquare(rc, cc, r.size, c.size), threshold,
                           r.size, c.size)
        return _decide(column, "numeric", "z", _ztest(rc, cc, r.size, c.size), threshold, r.size, c.size)
    if n_values <= 5:
        js = _jensenshannon(_counts(rs), _counts(cs), r.size, c.size)
        return _decide(column, "numeric", "jensenshannon", js, threshold, r.size, c.size)
    norm = max(float(np.std(r)), 0.001)
    return _decide(column, "numeric", "wasserstein", wasserstein_sorted(rs, cs) / norm, threshold,
                   r.size, c.size)


def numeric_drift(column: str, reference: pd.Series | np.ndarray, current: pd.Series | np.ndarray,
                  threshold: float | None = None) -> ColumnDrift:
    """Evidently's default test for a numeric column, on all finite values; raises on bad data."""
    r = ColumnProfiles(pd.DataFrame({column: reference})).finite(column)
    c = ColumnProfiles(pd.DataFrame({column: current})).finite(column)
    return _decide_sorted(column, r, c, np.sort(r), np.sort(c), threshold)


def _decide_counts(column: str, rc: dict[Any, int], cc: dict[Any, int], threshold: float | None) -> ColumnDrift:
    """Evidently's default categorical test from value counts (nulls left out)."""
    n_r, n_c = sum(rc.values()), sum(cc.values())
    if n_r == 0:
        raise ValueError(f"column {column!r} has no value in the reference data")
    if n_c == 0:
        raise ValueError(f"column {column!r} has no value in the current data")
    js = _jensenshannon(rc, cc, n_r, n_c)
    if n_r > SMALL_REFERENCE_ROWS:
        out = _decide(column, "categorical", "jensenshannon", js, threshold, n_r, n_c)
    elif len(set(rc) | set(cc)) > 2:
        out = _decide(column, "categorical", "chisquare", _chisquare(rc, cc, n_r, n_c), threshold, n_r, n_c)
    else:
        out = _decide(column, "categorical", "z", _ztest(rc, cc, n_r, n_c), threshold, n_r, n_c)
    return replace(out, effect=js)


def categorical_drift(column: str, reference: pd.Series, current: pd.Series,
                      threshold: float | None = None) -> ColumnDrift:
    """Evidently's default test for a categorical column, on value counts; raises on bad data."""
    rc = ColumnProfiles(pd.DataFrame({column: reference})).categorical(column).counts
    cc = ColumnProfiles(pd.DataFrame({column: current})).categorical(column).counts
    return _decide_counts(column, rc, cc, threshold)


def _skipped(column: str, kind: str, reason: str) -> ColumnDrift:
    return ColumnDrift(column=column, kind=kind, method="", statistic=float("nan"), threshold=float("nan"),
                       drifted=False, skipped=reason)


# ---------------------------------------------------------------- public API

def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, feature_set: FeatureSet, *,
                  columns: list[str] | None = None, options: DriftOptions | None = None,
                  profiles: tuple[ColumnProfiles, ColumnProfiles] | None = None) -> dict[str, ColumnDrift]:
    """Per-column drift of ``columns`` (default: every declared feature); never raises per column.

    ``profiles`` (reference, current) reuses the column summaries the contract computed.
    """
    options = options or DriftOptions()
    ref_p, cur_p = profiles or (ColumnProfiles(reference), ColumnProfiles(current))
    out: dict[str, ColumnDrift] = {}
    for name in columns if columns is not None else feature_set.names():
        try:
            kind = feature_set.spec(name).kind
        except KeyError:
            out[name] = _skipped(name, "", f"column {name!r} is not in feature set {feature_set.version}")
            continue
        try:
            if name not in current.columns:
                raise ValueError(f"column {name!r} is missing from the current data")
            if name not in reference.columns:
                raise ValueError(f"column {name!r} is missing from the reference data")
            if kind == "numeric":
                r, c = ref_p.finite(name), cur_p.finite(name)
                out[name] = _decide_sorted(name, r, c, np.sort(r), np.sort(c), options.num_threshold)
            else:
                out[name] = _decide_counts(name, ref_p.categorical(name).counts, cur_p.categorical(name).counts,
                                           options.cat_threshold)
        except Exception as e:  # one bad column never sinks the run: report it and go on
            out[name] = _skipped(name, kind, str(e) or type(e).__name__)
    return out


def prediction_drift(reference_scores: np.ndarray, current_scores: np.ndarray,
                     threshold: float | None = None) -> ColumnDrift:
    """Drift of the score distribution, tested as Evidently tests a numeric column; never raises."""
    try:
        return numeric_drift("prediction", np.asarray(reference_scores, dtype=float),
                             np.asarray(current_scores, dtype=float), threshold)
    except Exception as e:
        return _skipped("prediction", "numeric", str(e) or type(e).__name__)


def _ranking(values: Mapping[str, float]) -> list[str]:
    # larger mean |SHAP| first; ties by name so the ranking is deterministic
    return sorted(values, key=lambda k: (-float(values[k]), k))


def mean_abs_shap(shap: Mapping[str, float] | pd.DataFrame) -> dict[str, float]:
    """Mean |SHAP| per feature from per-row SHAP values (a frame), or the dict as given."""
    if isinstance(shap, pd.DataFrame):
        return {str(k): float(v) for k, v in shap.abs().mean(skipna=True).items()}
    return {str(k): float(v) for k, v in shap.items()}


def explanation_drift(reference_mean_abs: Mapping[str, float], current_mean_abs: Mapping[str, float], *,
                      top_k: int = 10, min_rank_correlation: float = 0.7,
                      min_top_k_overlap: float = 0.5) -> ExplanationDrift:
    """Shift in the ranking of mean |SHAP| per feature.

    The Spearman correlation is taken over the features in either side's top 2*top_k: the
    long tail of near-zero importances reorders by noise alone. Drift when the correlation
    is below ``min_rank_correlation`` or the top-k overlap is below ``min_top_k_overlap``.
    """
    common = sorted(set(reference_mean_abs) & set(current_mean_abs))
    ref = {k: float(reference_mean_abs[k]) for k in common if math.isfinite(float(reference_mean_abs[k]))}
    cur = {k: float(current_mean_abs[k]) for k in common if math.isfinite(float(current_mean_abs[k]))}
    common = sorted(set(ref) & set(cur))
    ref = {k: ref[k] for k in common}
    cur = {k: cur[k] for k in common}
    rr, cr = _ranking(ref), _ranking(cur)
    k = min(top_k, len(common))
    if k == 0:
        return ExplanationDrift(rr, cr, float("nan"), float("nan"), False, top_k=top_k,
                                skipped="no feature has a finite mean |SHAP| on both sides")
    top_r, top_c = set(rr[:k]), set(cr[:k])
    overlap = len(top_r & top_c) / k
    focus = sorted(set(rr[:2 * k]) | set(cr[:2 * k]))
    if len(focus) >= 2:
        a = np.array([ref[f] for f in focus])
        b = np.array([cur[f] for f in focus])
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            rho = 1.0 if np.ptp(a) == np.ptp(b) else 0.0
        else:
            rho = float(stats.spearmanr(a, b)[0])
    else:
        rho = 1.0
    drifted = rho < min_rank_correlation or overlap < min_top_k_overlap
    return ExplanationDrift(reference_ranking=rr, current_ranking=cr, rank_correlation=rho,
                            top_k_overlap=overlap, drifted=bool(drifted), top_k=top_k,
                            entered_top_k=[f for f in cr[:k] if f not in top_r],
                            left_top_k=[f for f in rr[:k] if f not in top_c])


def check_drift(reference: pd.DataFrame, current: pd.DataFrame, feature_set: FeatureSet, *,
                reference_scores: np.ndarray | None = None, current_scores: np.ndarray | None = None,
                reference_shap: Mapping[str, float] | pd.DataFrame | None = None,
                current_shap: Mapping[str, float] | pd.DataFrame | None = None,
                options: DriftOptions | None = None, contract_kwargs: dict[str, Any] | None = None) -> DriftResult:
    """The contract, then drift on the usable columns, the scores and the SHAP ranking.

    ``reference_shap``/``current_shap`` are mean |SHAP| per feature, or per-row SHAP frames.
    Never raises on bad data: problems are in ``contract`` and in each column's ``skipped``.
    """
    options = options or DriftOptions()
    t = time.perf_counter()
    profiles = (ColumnProfiles(reference), ColumnProfiles(current))
    contract = check_contract(reference, current, feature_set, profiles=profiles, **(contract_kwargs or {}))
    usable = contract.usable_columns
    columns = feature_drift(reference, current, feature_set, columns=usable, options=options, profiles=profiles)
    for name, cc in contract.columns.items():
        if name not in columns:
            reason = "; ".join(cc.problems) if not cc.usable else contract.problems[0] if contract.problems else ""
            columns[name] = _skipped(name, cc.kind, reason or "not tested")
    columns = {n: columns[n] for n in contract.columns}  # declaration order
    tested = [c for c in columns.values() if c.skipped is None]
    drifted = [c.column for c in tested if c.drifted]
    share = len(drifted) / len(tested) if tested else 0.0
    prediction = None
    if reference_scores is not None and current_scores is not None:
        if contract.enough_rows:
            prediction = prediction_drift(reference_scores, current_scores, options.num_threshold)
        else:
            prediction = _skipped("prediction", "numeric", contract.problems[0])
    explanation = None
    if reference_shap is not None and current_shap is not None:
        try:
            explanation = explanation_drift(mean_abs_shap(reference_shap), mean_abs_shap(current_shap),
                                            top_k=options.top_k, min_rank_correlation=options.min_rank_correlation,
                                            min_top_k_overlap=options.min_top_k_overlap)
        except Exception as e:  # never sink the run on the explanation; say why it is missing
            explanation = ExplanationDrift([], [], float("nan"), float("nan"), False, top_k=options.top_k,
                                           skipped=f"explanation drift not computed ({type(e).__name__}: {e})")
    skipped = [c.column for c in columns.values() if c.skipped is not None]
    counted = [n for n in drifted if counts(columns[n], options.min_effect)]
    weighted = None
    if options.importance:
        total = sum(options.importance.get(c.column, 0.0) for c in tested)
        weighted = sum(options.importance.get(n, 0.0) for n in counted) / total if total > 0 else 0.0
    return DriftResult(
        reference_rows=len(reference), current_rows=len(current), contract=contract, columns=columns,
        drifted_columns=drifted, share_drifted=share, dataset_drift=share_reached(len(drifted), len(tested), options.share_threshold),
        critical_drifted=[c for c in options.critical_columns if c in drifted],
        prediction=prediction, explanation=explanation, seconds=time.perf_counter() - t,
        tested_columns=len(tested), skipped_columns=skipped,
        critical_skipped=[c for c in options.critical_columns if c in skipped],
        counted_columns=counted, weighted_share=weighted)


def counts(c: ColumnDrift, min_effect: float) -> bool:
    """Whether a column's drift counts: its test fired and its effect reaches ``min_effect``."""
    return bool(c.drifted and c.skipped is None and (c.effect is None or c.effect >= min_effect))
