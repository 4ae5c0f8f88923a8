"""Performance on matured labels: accuracy, ROC AUC, top-decile precision, Brier, calibration.

Judged only where enough labels have matured: below the minimum counts the result says
``enough=False`` with the reason and every figure is None, so a policy cannot act on noise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats


@dataclass
class PerformanceResult:
    """Quality of the scores against their matured labels."""

    n: int
    positives: int
    enough: bool
    reason: str | None
    accuracy: float | None
    roc_auc: float | None
    top_decile_precision: float | None
    brier: float | None
    calibration: list[dict] = field(default_factory=list)  # per band: band, n, mean_predicted, observed_rate
    threshold: float = 0.5
    base_rate: float | None = None
    dropped: int = 0  # rows left out: missing probability or label

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula; ties count half, as in sklearn."""
    ranks = stats.rankdata(p)
    pos = int(y.sum())
    neg = y.size - pos
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _band_edges(bands: list[tuple[str, float]]) -> list[tuple[str, float, float]]:
    """(name, lower, upper) per band, highest first; a band holds lower <= p < upper."""
    ordered = sorted(bands, key=lambda b: -b[1])
    out, upper = [], math.inf
    for name, lower in ordered:
        out.append((name, float(lower), upper))
        upper = float(lower)
    return out


def performance(probability, label, *, bands: list[tuple[str, float]], threshold: float = 0.5,
                min_labels: int = 200, min_positives: int = 10) -> PerformanceResult:
    """Score quality on matured labels.

    ``bands`` are (name, minimum probability) as in the scoring config. Rows with a missing
    probability or label are left out (counted in ``dropped``). Not enough labels (fewer than
    ``min_labels`` rows, or fewer than ``min_positives`` of either class): ``enough=False``,
    figures None. Never raises on data.
    """
    p = np.asarray(probability, dtype=float).ravel()
    y = np.asarray(label, dtype=float).ravel()
    if p.size != y.size:
        raise ValueError(f"{p.size} probabilities but {y.size} labels")
    keep = np.isfinite(p) & np.isfinite(y)
    dropped = int((~keep).sum())
    p, y = p[keep], y[keep]
    n = int(p.size)
    positives = int((y == 1).sum())

    def not_enough(reason: str) -> PerformanceResult:
        return PerformanceResult(n=n, positives=positives, enough=False, reason=reason, accuracy=None,
                                 roc_auc=None, top_decile_precision=None, brier=None, calibration=[],
                                 threshold=threshold, dropped=dropped)

    if not np.isin(y, (0.0, 1.0)).all():
        bad = sorted(set(np.unique(y[~np.isin(y, (0.0, 1.0))]).tolist()))[:3]
        return not_enough(f"labels must be 0 or 1, found {bad}")
    if ((p < 0) | (p > 1)).any():
        return not_enough(f"probabilities must be within [0, 1], found {p.min():.3g}..{p.max():.3g}")
    if n < min_labels:
        return not_enough(f"only {n} matured labels, fewer than the minimum {min_labels}")
    negatives = n - positives
    if positives < min_positives or negatives < min_positives:
        which, count = ("positive", positives) if positives < min_positives else ("negative", negatives)
        return not_enough(f"only {count} {which} labels among {n}, fewer than the minimum {min_positives}")

    yi = y.astype(int)
    reason = None
    if positives == 0 or negatives == 0:
        # reachable only with min_positives=0: accuracy and Brier still mean something, AUC does not
        auc = None
        reason = f"every label is {int(y[0])}: ROC AUC is undefined"
    else:
        auc = _auc(p, yi)
    top = max(1, math.ceil(n / 10))
    order = np.argsort(-p, kind="stable")
    calibration = []
    for name, lower, upper in _band_edges(bands):
        m = (p >= lower) & (p < upper)
        k = int(m.sum())
        calibration.append({"band": name, "min": lower, "n": k,
                            "mean_predicted": float(p[m].mean()) if k else None,
                            "observed_rate": float(y[m].mean()) if k else None})
    return PerformanceResult(
        n=n, positives=positives, enough=True, reason=reason,
        accuracy=float(((p >= threshold).astype(int) == yi).mean()), roc_auc=auc,
        top_decile_precision=float(y[order[:top]].mean()), brier=float(np.mean((p - y) ** 2)),
        calibration=calibration, threshold=threshold, base_rate=float(y.mean()), dropped=dropped)


@dataclass
class EstimatedPerformance:
    """Performance expected from calibrated probabilities alone (no labels): CBPE.

    If the probabilities are calibrated, a row with probability p is a positive with
    probability p, so the confusion matrix and the ROC AUC have expected values computable
    without labels. This holds while the relation between features and outcome stays the same
    (covariate shift); a change in what converts (concept drift) is invisible to it and only
    matured labels show it.
    """

    n: int
    roc_auc: float | None
    accuracy: float | None
    expected_positive_rate: float | None
    confusion: dict[str, float] = field(default_factory=dict)  # expected tp, fp, fn, tn
    threshold: float = 0.5
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = asdict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def expected_auc(p: np.ndarray) -> float:
    """The expected ROC AUC when each row is positive with its probability p (self-pairs left out).

    Sum over ordered pairs (i positive, j negative) of p_i (1 - p_j) [s_i > s_j] (ties half),
    divided by the expected number of such pairs.
    """
    p = np.sort(np.asarray(p, dtype=float))
    q = 1.0 - p
    values, start = np.unique(p, return_index=True)
    pos = np.add.reduceat(p, start)  # expected positives per distinct score
    neg = np.add.reduceat(q, start)
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # expected negatives with a lower score
    self_pairs = float(np.sum(p * q))  # a row is never paired with itself
    num = float(np.sum(pos * (below + 0.5 * neg))) - 0.5 * self_pairs
    den = float(p.sum() * q.sum()) - self_pairs
    return num / den if den > 0 else float("nan")


def estimate_performance(probability, *, threshold: float = 0.5, min_rows: int = 100) -> EstimatedPerformance:
    """CBPE on the current population's calibrated probabilities; never raises on data.

    Fewer than ``min_rows`` finite probabilities: figures None with the reason.
    """
    p = np.asarray(probability, dtype=float).ravel()
    p = p[np.isfinite(p)]
    n = int(p.size)
    if n < min_rows:
        return EstimatedPerformance(n, None, None, None, threshold=threshold,
                                    reason=f"only {n} scored rows, fewer than the minimum {min_rows}")
    if ((p < 0) | (p > 1)).any():
        return EstimatedPerformance(n, None, None, None, threshold=threshold,
                                    reason=f"probabilities must be within [0, 1], found {p.min():.3g}..{p.max():.3g}")
    flagged = p >= threshold
    tp, fp = float(p[flagged].sum()), float((1 - p[flagged]).sum())
    fn, tn = float(p[~flagged].sum()), float((1 - p[~flagged]).sum())
    auc = expected_auc(p)
    return EstimatedPerformance(n=n, roc_auc=auc if math.isfinite(auc) else None, accuracy=(tp + tn) / n,
                                expected_positive_rate=float(p.mean()),
                                confusion={"tp": tp, "fp": fp, "fn": fn, "tn": tn}, threshold=threshold)
