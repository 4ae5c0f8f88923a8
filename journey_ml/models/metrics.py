"""Held-out classification metrics: ranking, calibration and the top decile a seller works."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


@dataclass
class Metrics:
    n: int
    positives: int
    base_rate: float
    roc_auc: float
    pr_auc: float
    brier: float
    log_loss: float
    precision_top_decile: float
    lift_top_decile: float
    calibration: list[dict] = field(default_factory=list)  # per bin: mean predicted, observed, n

    def scalars(self) -> dict[str, float]:
        """The numeric metrics (for MLflow), NaN where undefined."""
        d = asdict(self)
        d.pop("calibration")
        return {k: float(v) for k, v in d.items()}


def evaluate(y_true, p, bins: int = 10) -> Metrics:
    """Metrics of probabilities ``p`` against 0/1 labels; ranking metrics are NaN on one class.

    Raises ValueError when the inputs are empty or of different lengths.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        raise ValueError("cannot evaluate on an empty set")
    if len(y) != len(p):
        raise ValueError(f"labels ({len(y)}) and predictions ({len(p)}) differ in length")
    pos = int(y.sum())
    base = pos / len(y)
    two_classes = 0 < pos < len(y)
    top = max(int(math.ceil(len(y) * 0.1)), 1)
    order = np.argsort(-p, kind="stable")[:top]
    prec_top = float(y[order].mean())
    pc = np.clip(p, 1e-6, 1 - 1e-6)
    return Metrics(
        n=len(y), positives=pos, base_rate=base,
        roc_auc=float(roc_auc_score(y, p)) if two_classes else math.nan,
        pr_auc=float(average_precision_score(y, p)) if two_classes else math.nan,
        brier=float(brier_score_loss(y, pc)),
        log_loss=float(log_loss(y, pc, labels=[0, 1])),
        precision_top_decile=prec_top,
        lift_top_decile=prec_top / base if base > 0 else math.nan,
        calibration=calibration_table(y, p, bins),
    )


def calibration_table(y, p, bins: int = 10) -> list[dict]:
    """Reliability table over equal-width probability bins (empty bins left out)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        m = idx == b
        if m.any():
            rows.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "mean_predicted": float(p[m].mean()),
                         "observed": float(y[m].mean()), "n": int(m.sum())})
    return rows


def better(metric: str, a: float, b: float) -> float:
    """How much ``a`` beats ``b`` on ``metric`` (positive = better), whatever its direction."""
    return (b - a) if metric in ("log_loss", "brier") else (a - b)
