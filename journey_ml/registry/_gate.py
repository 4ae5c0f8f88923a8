"""The promotion gate: a pure comparison of a candidate's metric with production's."""

from __future__ import annotations

import math

from journey_ml.registry._types import GateDecision

HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "log_loss": False, "brier": False}


def evaluate_gate(candidate_metric: float, production_metric: float | None, metric: str,
                  margin: float, *, baselines: dict[str, float] | None = None,
                  global_metric: float | None = None, selection: str | None = None) -> GateDecision:
    """Promote when the candidate is at least as good as every baseline, beats the global
    model on the segment's rows (when given) and beats production by >= margin (or there
    is no production metric).

    ``baselines`` (name -> metric on the same holdout: rules scorer, recency alone,
    logistic regression): a candidate below the best one is never promoted, whatever
    production is, and the reason names that baseline. ``global_metric``: the global
    model's metric on this segment's holdout rows; a segment candidate that does not beat it
    by the margin is refused with ``global_serves`` set. ``selection``: when given, the
    rules scorer won model selection (the sentence says so) and the candidate is refused.

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
    refused = _refusal(candidate_metric, metric, margin, baselines or {}, global_metric, selection)
    if refused is not None:
        return refused
    beat = _beaten(candidate_metric, metric, baselines or {}, global_metric)
    if production_metric is None or not math.isfinite(production_metric):
        what = "no production model" if production_metric is None else \
            f"production {metric} is {production_metric!r}"
        return GateDecision(True, f"promoted: {what}; candidate {metric} {candidate_metric:.4f}{beat}")
    gain = candidate_metric - production_metric if higher else production_metric - candidate_metric
    numbers = (f"candidate {metric} {candidate_metric:.4f} vs production {production_metric:.4f} "
               f"({direction} is better): improvement {gain:+.4f}")
    if gain >= margin - 1e-12:  # float noise must not flip an exact tie
        return GateDecision(True, f"promoted: {numbers} >= margin {margin:.4f}{beat}")
    return GateDecision(False, f"not promoted: {numbers} < margin {margin:.4f} "
                               "(not better than production by the margin)")


def _gain(a: float, b: float, metric: str) -> float:
    return a - b if HIGHER_IS_BETTER[metric] else b - a


def _refusal(candidate: float, metric: str, margin: float, baselines: dict[str, float],
             global_metric: float | None, selection: str | None) -> GateDecision | None:
    """The first reason the candidate may not be promoted whatever production is, or None."""
    if selection:
        return GateDecision(False, f"not promoted: the rules scorer won model selection ({selection})")
    finite = {k: v for k, v in baselines.items() if v is not None and math.isfinite(v)}
    if finite:
        name = max(finite, key=lambda k: finite[k] if HIGHER_IS_BETTER[metric] else -finite[k])
        if _gain(candidate, finite[name], metric) < -1e-12:
            others = ", ".join(f"{k} {v:.4f}" for k, v in finite.items() if k != name)
            return GateDecision(False, f"not promoted: below the best baseline, {name} "
                                       f"({metric} {candidate:.4f} vs {name} {finite[name]:.4f} on the same "
                                       f"holdout{'; ' + others if others else ''})")
    if global_metric is not None and math.isfinite(global_metric):
        gain = _gain(candidate, global_metric, metric)
        if gain < margin - 1e-12:
            return GateDecision(False, f"not promoted: the global model serves this segment (segment model "
                                       f"{metric} {candidate:.4f} vs global model {global_metric:.4f} on this "
                                       f"segment's holdout rows: {gain:+.4f} < margin {margin:.4f})",
                                global_serves=True)
    return None


def _beaten(candidate: float, metric: str, baselines: dict[str, float], global_metric: float | None) -> str:
    parts = [f"{k} {v:.4f}" for k, v in baselines.items() if v is not None and math.isfinite(v)]
    if global_metric is not None and math.isfinite(global_metric):
        parts.append(f"global model on this segment {global_metric:.4f}")
    return f" (baselines: {', '.join(parts)})" if parts else ""


__all__ = ["evaluate_gate", "HIGHER_IS_BETTER"]
