"""The promotion gate: a pure comparison of a candidate's metric with production's."""

from __future__ import annotations

import math

from journey_ml.registry._types import GateDecision

HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "log_loss": False, "brier": False}


def evaluate_gate(candidate_metric: float, production_metric: float | None, metric: str,
                  margin: float) -> GateDecision:
    """Promote when there is no production metric, or the candidate beats it by >= margin.

    ``margin`` must be > 0, so a tie (a retrain on unchanged data, an identical model) is
    never promoted and versions do not churn.

    ``roc_auc`` and ``pr_auc`` are higher-is-better, ``log_loss`` and ``brier`` lower-is-better.
    A candidate whose metric is not a number is never promoted; a production metric that is
    not a number (e.g. AUC on one class) counts as absent. The reason states the numbers.
    """
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown promotion metric {metric!r} "
                         f"(expected one of {', '.join(HIGHER_IS_BETTER)})")
    if margin is None or not math.isfinite(margin) or margin <= 0:
        raise ValueError(f"promotion margin must be a number > 0 (a tie must never be promoted), got {margin!r}")
    higher = HIGHER_IS_BETTER[metric]
    direction = "higher" if higher else "lower"
    if candidate_metric is None or not math.isfinite(candidate_metric):
        return GateDecision(False, f"not promoted: candidate {metric} is {candidate_metric!r}, "
                                   "not a number")
    if production_metric is None or not math.isfinite(production_metric):
        what = "no production model" if production_metric is None else \
            f"production {metric} is {production_metric!r}"
        return GateDecision(True, f"promoted: {what}; candidate {metric} {candidate_metric:.4f}")
    gain = candidate_metric - production_metric if higher else production_metric - candidate_metric
    numbers = (f"candidate {metric} {candidate_metric:.4f} vs production {production_metric:.4f} "
               f"({direction} is better): improvement {gain:+.4f}")
    if gain >= margin - 1e-12:  # float noise must not flip an exact tie
        return GateDecision(True, f"promoted: {numbers} >= margin {margin:.4f}")
    return GateDecision(False, f"not promoted: {numbers} < margin {margin:.4f} "
                               "(not better than production by the margin)")


__all__ = ["evaluate_gate", "HIGHER_IS_BETTER"]
