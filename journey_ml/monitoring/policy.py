"""The monitoring policy: a pure function from (result, state, policy, now) to decisions.

`decide` does no I/O and reads no clock: the runner gathers a `MonitorResult` (what was
measured), a `SegmentState` (the registry and the previous runs) and the resolved
`SegmentPolicy` (config), and executes what comes back. Every `Decision` carries sentences
with the figures that led to it, so a run can be explained afterwards.

Rules, in order:

1. No production version, or no drift reference for it: ``error``, no action.
2. In rules mode (fallback engaged): a candidate model that beat the rules on its holdout
   and clears ``auc_floor + recovery_margin`` there is ``restore``d (the hysteresis);
   otherwise retraining is requested again once the cooldown has passed.
3. A version promoted within ``rollback_window_days`` that does worse than its predecessor
   on the same matured labels (AUC lower by more than ``rollback_margin``): ``rollback``.
4. Production below ``accuracy_floor`` or ``auc_floor`` on matured labels: ``fallback`` to
   the rules version and ``retrain`` (an ``alert`` only while the cooldown runs).
5. Drift (share of drifted columns >= ``drift_share``, a critical column, the score
   distribution or the explanation ranking) seen in ``drift_persistence_runs`` consecutive
   runs of the same version: ``alert`` + ``retrain``; fewer runs, or cooldown: ``alert``.
6. A failed data contract (null spikes, unseen categories...): ``alert``.
7. Otherwise ``ok``. Too few rows or matured labels are said so, and nothing is judged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Literal

from journey_ml.config import SegmentPolicy

DecisionKind = Literal["ok", "alert", "retrain", "fallback", "rollback", "restore", "error"]
KINDS: tuple[str, ...] = ("ok", "alert", "retrain", "fallback", "rollback", "restore", "error")
# decisions that change something (the cooldown counts from the last executed one)
ACTIONS: frozenset[str] = frozenset({"retrain", "fallback", "rollback", "restore"})


@dataclass(frozen=True)
class DriftSummary:
    """What drift detection found for one segment (our own type, built from a DriftResult)."""

    reference_rows: int
    current_rows: int
    columns: int  # feature columns tested
    drifted_columns: list[str]
    share_drifted: float
    critical_drifted: list[str] = field(default_factory=list)
    prediction_drifted: bool | None = None  # None: not measured
    prediction_statistic: float | None = None
    explanation_drifted: bool | None = None
    rank_correlation: float | None = None
    contract_ok: bool = True
    contract_problems: list[str] = field(default_factory=list)
    # drifted columns whose effect reaches the policy's floor, and their share of the model's
    # feature importance (None: no importance known)
    counted_columns: list[str] | None = None
    weighted_share: float | None = None
    prediction_effect: float | None = None

    @classmethod
    def from_result(cls, r: Any) -> DriftSummary:
        """From `journey_ml.monitoring.drift.DriftResult` (duck-typed, no import)."""
        pred = getattr(r, "prediction", None)
        expl = getattr(r, "explanation", None)
        contract = getattr(r, "contract", None)
        tested = getattr(r, "tested_columns", None)
        if tested is None:
            tested = sum(1 for c in (getattr(r, "columns", None) or {}).values() if not getattr(c, "skipped", None))
        return cls(
            reference_rows=int(r.reference_rows), current_rows=int(r.current_rows), columns=int(tested),
            drifted_columns=list(r.drifted_columns), share_drifted=float(r.share_drifted),
            critical_drifted=list(getattr(r, "critical_drifted", None) or []),
            prediction_drifted=None if pred is None or getattr(pred, "skipped", False) else bool(pred.drifted),
            prediction_statistic=None if pred is None else _num(getattr(pred, "statistic", None)),
            explanation_drifted=None if expl is None or getattr(expl, "skipped", None) else bool(expl.drifted),
            rank_correlation=None if expl is None or getattr(expl, "skipped", None)
            else _num(getattr(expl, "rank_correlation", None)),
            contract_ok=not _alerting_problems(contract), contract_problems=_alerting_problems(contract),
            counted_columns=list(getattr(r, "counted_columns", None) or []),
            weighted_share=_num(getattr(r, "weighted_share", None)),
            prediction_effect=None if pred is None else _num(getattr(pred, "effect", None)))


# contract findings worth an alert; a constant column or one that is null on both sides (a
# feature that does not apply to this population) is reported, not alerted
_ALERTING = frozenset({"missing", "type_mismatch", "all_infinite", "null_spike", "inf_spike", "unseen_categories"})


#: a column null in every current row alerts only when the reference makes that unlikely:
#: P(all n rows null) = (reference null share) ** n below this (a sparse column of a small
#: segment, e.g. days since a downgrade among 130 accounts, is often null throughout by chance)
ALL_NULL_SURPRISE = 1e-3


def all_null_surprising(ref_null_share: float, rows: int) -> bool:
    """Whether ``rows`` current rows all null is a break, not chance, given the reference."""
    return ref_null_share < 1.0 and (rows <= 0 or ref_null_share ** rows < ALL_NULL_SURPRISE)


def _alerting_problems(contract: Any) -> list[str]:
    if contract is None:
        return []
    out: list[str] = []
    rows = int(getattr(contract, "rows", 0) or 0)
    for c in (getattr(contract, "columns", None) or {}).values():
        statuses = set(getattr(c, "statuses", None) or [c.status])
        new_nulls = "all_null" in statuses and all_null_surprising(getattr(c, "ref_null_share", 0.0), rows)
        if statuses & _ALERTING or new_nulls:
            out.extend(p for p in c.problems if "every reference row" not in p)
    return out


@dataclass(frozen=True)
class PerfSummary:
    """Performance of one scorer on matured labels (from a PerformanceResult)."""

    n: int
    positives: int
    accuracy: float | None
    roc_auc: float | None
    enough: bool = True
    reason: str = ""

    @classmethod
    def from_result(cls, r: Any) -> PerfSummary:
        """From `journey_ml.monitoring.performance.PerformanceResult` (duck-typed)."""
        return cls(n=int(r.n), positives=int(r.positives), accuracy=_num(r.accuracy), roc_auc=_num(r.roc_auc),
                   enough=bool(r.enough), reason=str(r.reason or ""))


@dataclass(frozen=True)
class EstimateSummary:
    """Performance estimated from calibrated probabilities on the current population (CBPE)."""

    n: int
    roc_auc: float | None
    accuracy: float | None

    @classmethod
    def from_result(cls, r: Any) -> EstimateSummary:
        """From `journey_ml.monitoring.performance.EstimatedPerformance` (duck-typed)."""
        return cls(n=int(r.n), roc_auc=_num(r.roc_auc), accuracy=_num(r.accuracy))


@dataclass(frozen=True)
class MonitorResult:
    """What one monitoring run measured for a task's segment."""

    task: str
    segment: str
    as_of: datetime
    model_name: str | None
    model_version: int | None
    drift: DriftSummary | None = None
    # production on the matured labels; the predecessor on the same rows (rollback check)
    performance: PerfSummary | None = None
    predecessor_performance: PerfSummary | None = None
    matured_as_of: datetime | None = None
    error: str | None = None  # e.g. no reference sample: nothing can be judged
    estimated: EstimateSummary | None = None  # CBPE on the population as of T (no labels needed)


@dataclass(frozen=True)
class Candidate:
    """A retrained model version waiting while the segment is in rules mode."""

    version: int
    roc_auc: float | None  # on its training holdout
    gate_passed: bool  # beat the rules model on the same holdout by the promotion margin
    gate_reason: str = ""


@dataclass(frozen=True)
class SegmentState:
    """The segment as the registry and the previous monitoring runs describe it."""

    production_version: int | None
    production_kind: Literal["model", "rules"] | None
    production_metrics: dict[str, float] = field(default_factory=dict)  # its holdout metrics
    promoted_at: datetime | None = None  # when production last moved to this version
    predecessor_version: int | None = None
    predecessor_kind: Literal["model", "rules"] | None = None
    rules_version: int | None = None  # the registered rules version (fallback target)
    last_action_at: datetime | None = None  # last executed retrain/fallback/rollback/restore
    drift_runs: int = 0  # consecutive previous runs of this version with drift
    estimate_low_runs: int = 0  # consecutive previous runs of this version with estimated AUC < floor
    candidate: Candidate | None = None

    @property
    def in_fallback(self) -> bool:
        return self.production_kind == "rules"


@dataclass(frozen=True)
class Decision:
    """One thing the policy decided, with the sentences and figures behind it."""

    kind: DecisionKind
    reasons: list[str]
    figures: dict[str, Any] = field(default_factory=dict)
    target_version: int | None = None  # fallback / rollback / restore: where production goes

    def summary(self) -> str:
        return f"{self.kind}: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _f(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _cooldown(state: SegmentState, policy: SegmentPolicy, now: datetime) -> str | None:
    """A sentence when the cooldown is still running, else None."""
    if state.last_action_at is None or policy.cooldown_days <= 0:
        return None
    until = state.last_action_at + timedelta(days=policy.cooldown_days)
    if now < until:
        return (f"cooldown: last action {state.last_action_at:%Y-%m-%d %H:%M}, no automatic action "
                f"before {until:%Y-%m-%d %H:%M} ({policy.cooldown_days:g} days)")
    return None


def exact(x: float) -> Fraction:
    """A configured share as the exact fraction its decimal text says (0.3 is 3/10)."""
    return Fraction(str(x))


def pct(x: float | Fraction) -> str:
    """A threshold as a percentage without rounding noise: 0.3 -> "30%", 0.125 -> "12.5%"."""
    return f"{float(exact(x) * 100 if not isinstance(x, Fraction) else x * 100):g}%"


def share_reached(k: int, n: int, threshold: float) -> bool:
    """Whether ``k`` of ``n`` reaches ``threshold``, compared exactly (no float division)."""
    return n > 0 and Fraction(k, n) >= exact(threshold)


def share_sentence(k: int, n: int, threshold: float) -> str:
    """``"42 of 141 columns (29.8%) < 30%"``: the exact count and the comparison actually made."""
    op = ">=" if share_reached(k, n, threshold) else "<"
    return f"{k} of {n} columns ({100 * k / n:.1f}%) {op} {pct(threshold)}" if n else f"0 of 0 columns < {pct(threshold)}"


def _drift_signals(d: DriftSummary, policy: SegmentPolicy) -> list[str]:
    """Sentences for each drift signal that fired (empty: no drift)."""
    out = []
    weighted = policy.drift_rule == "weighted"
    cols = d.counted_columns if weighted and d.counted_columns is not None else d.drifted_columns
    k = len(cols)
    names = ", ".join(cols[:6]) + (" ..." if k > 6 else "")
    if weighted and d.weighted_share is not None:
        if d.weighted_share >= policy.weighted_drift_share:
            out.append(f"feature drift: the drifted columns carry {d.weighted_share:.1%} of the model's feature "
                       f"importance >= {pct(policy.weighted_drift_share)} ({k} of {d.columns} columns with an "
                       f"effect >= {policy.min_effect:g}): {names}")
    elif share_reached(k, d.columns, policy.drift_share):
        out.append(f"feature drift: {share_sentence(k, d.columns, policy.drift_share)} (threshold): {names}")
    crit = [c for c in cols if c in policy.critical_columns] if weighted else \
        ([c for c in d.critical_drifted if c in policy.critical_columns] or
         [c for c in d.drifted_columns if c in policy.critical_columns])
    if crit:
        out.append(f"critical column(s) drifted: {', '.join(crit)}")
    pred_counts = d.prediction_drifted and (not weighted or d.prediction_effect is None
                                            or d.prediction_effect >= policy.min_effect)
    if policy.prediction_drift and pred_counts:
        out.append("the score distribution drifted"
                   + (f" (statistic {d.prediction_statistic:.3g}" if d.prediction_statistic is not None else "")
                   + (f", effect {d.prediction_effect:.3f})" if d.prediction_effect is not None else
                      (")" if d.prediction_statistic is not None else "")))
    if policy.explanation_drift and d.explanation_drifted:
        out.append("the ranking of mean |SHAP| per feature shifted"
                   + (f" (rank correlation {d.rank_correlation:.2f} < {policy.min_rank_correlation:.2f})"
                      if d.rank_correlation is not None else ""))
    return out


def drift_detected(result: MonitorResult, policy: SegmentPolicy) -> bool:
    """Whether this run's drift counts towards the persistence hysteresis."""
    d = result.drift
    if d is None or d.current_rows < policy.min_drift_rows:
        return False
    return bool(_drift_signals(d, policy))


def _fall_back(base: str, figures: dict[str, Any], state: SegmentState, cooling: str | None) -> list[Decision]:
    """Fall back to the rules version and retrain (an alert only while the cooldown runs)."""
    if cooling:
        return [Decision("alert", [base, cooling], figures)]
    if state.rules_version is None:
        return [Decision("alert", [base, "no registered rules version to fall back to"], figures),
                Decision("retrain", [base], figures)]
    return [Decision("fallback", [base, f"production moves to the rules version v{state.rules_version}"],
                     figures, target_version=state.rules_version),
            Decision("retrain", [base], figures)]


def _perf_judgeable(p: PerfSummary | None, policy: SegmentPolicy) -> str | None:
    """None when ``p`` can be judged, else a sentence saying why not."""
    if p is None:
        return "no matured labels yet: performance not judged"
    if p.n < policy.min_labels or p.positives < policy.min_positives or not p.enough:
        return (f"performance not judged: {p.n} matured labels ({p.positives} positive), minimum "
                f"{policy.min_labels} labels and {policy.min_positives} positives"
                + (f" ({p.reason})" if p.reason and not p.enough else ""))
    return None


def restore_decision(state: SegmentState, policy: SegmentPolicy) -> Decision | None:
    """In rules mode: ``restore`` the candidate when it passes the gate and the hysteresis."""
    d = _restore_decision(state, policy)
    return None if d is None else replace(d, figures={**d.figures, "condition": condition(d)})


def _restore_decision(state: SegmentState, policy: SegmentPolicy) -> Decision | None:
    c = state.candidate
    if not state.in_fallback or c is None:
        return None
    bar = policy.auc_floor + policy.recovery_margin
    figures = {"candidate_version": c.version, "candidate_roc_auc": c.roc_auc, "required_roc_auc": bar}
    if not c.gate_passed:
        return Decision("alert", [f"in rules mode: candidate v{c.version} did not pass the promotion gate "
                                  f"against the rules model ({c.gate_reason or 'no reason recorded'})"], figures)
    if c.roc_auc is None or c.roc_auc < bar:
        return Decision("alert", [f"in rules mode: candidate v{c.version} passed the gate but its holdout "
                                  f"AUC {_f(c.roc_auc)} is below floor {policy.auc_floor:.3f} + recovery "
                                  f"margin {policy.recovery_margin:.3f} = {bar:.3f}; the fallback stays"], figures)
    return Decision("restore", [f"candidate v{c.version} beat the rules model on its holdout ({c.gate_reason}) "
                                f"and its AUC {c.roc_auc:.3f} >= {bar:.3f} (floor {policy.auc_floor:.3f} + "
                                f"recovery margin {policy.recovery_margin:.3f}): restore it to production"],
                    figures, target_version=c.version)


def condition(d: Decision) -> str:
    """What a decision is about (alerts are sent once per segment and condition until it changes):
    drift | performance | estimated_performance | contract | rules_mode | rollback | restore | error | ok."""
    f, first = d.figures, (d.reasons[0] if d.reasons else "")
    if d.kind in ("ok", "error", "rollback", "restore"):
        return d.kind
    if first.startswith("in rules mode") or "candidate_version" in f:
        return "rules_mode"
    if "estimated_roc_auc" in f:
        return "estimated_performance"
    if "share_drifted" in f or "weighted_share" in f:
        return "drift"
    if "labels" in f or d.kind == "fallback":
        return "performance"
    if "problems" in f:
        return "contract"
    return d.kind


def decide(result: MonitorResult, state: SegmentState, policy: SegmentPolicy, now: datetime) -> list[Decision]:
    """The decisions for one segment's monitoring result; pure (see the module docstring).

    Always returns at least one decision, each with ``figures["condition"]`` (see `condition`).
    Raises ValueError for a naive ``now``.
    """
    return [replace(d, figures={**d.figures, "condition": condition(d)})
            for d in _decide(result, state, policy, now)]


def _decide(result: MonitorResult, state: SegmentState, policy: SegmentPolicy, now: datetime) -> list[Decision]:
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware (UTC) time")
    if result.error:
        return [Decision("error", [f"{result.error}; no action taken"])]
    if state.production_version is None:
        return [Decision("error", [f"no production version for {result.task}/{result.segment}; "
                                   "nothing to monitor, no action taken"])]
    if result.drift is None and not state.in_fallback:
        return [Decision("error", [f"no drift reference for {result.model_name} v{result.model_version}: "
                                   "drift cannot be judged; no action taken"])]

    cooling = _cooldown(state, policy, now)
    perf = result.performance
    perf_gap = _perf_judgeable(perf, policy)
    notes: list[str] = []  # sentences for an ok / alert when nothing stronger is decided

    # 2. rules mode: restore, or keep retraining after the cooldown
    if state.in_fallback:
        restore = restore_decision(state, policy)
        if restore is not None and restore.kind == "restore":
            return [restore]
        why = [f"in rules mode (production is the rules version v{state.production_version})"]
        if restore is not None:
            why = restore.reasons
        if cooling:
            return [Decision("alert", [*why, cooling])]
        return [Decision("alert", why), Decision("retrain", [*why, "retraining to find a model that "
                                                             "passes the gate against the rules"])]

    # 3. a new version worse than its predecessor on the same matured labels
    pred = result.predecessor_performance
    recent = (state.promoted_at is not None
              and now - state.promoted_at <= timedelta(days=policy.rollback_window_days))
    if (recent and state.predecessor_version is not None and state.predecessor_kind == "model"
            and perf_gap is None and pred is not None and _perf_judgeable(pred, policy) is None
            and perf.roc_auc is not None and pred.roc_auc is not None
            and perf.roc_auc < pred.roc_auc - policy.rollback_margin
            # going back only helps if the predecessor clears the floors; else rule 4 falls back to rules
            and pred.roc_auc >= policy.auc_floor
            and (pred.accuracy is None or pred.accuracy >= policy.accuracy_floor)):
        figures = {"roc_auc": perf.roc_auc, "predecessor_roc_auc": pred.roc_auc, "labels": perf.n,
                   "predecessor_version": state.predecessor_version}
        return [Decision("rollback", [
            f"v{state.production_version} (promoted {state.promoted_at:%Y-%m-%d}) has AUC {perf.roc_auc:.3f} on "
            f"{perf.n} matured labels vs {pred.roc_auc:.3f} for its predecessor v{state.predecessor_version} "
            f"on the same labels (worse by {pred.roc_auc - perf.roc_auc:.3f} > margin "
            f"{policy.rollback_margin:.3f}): roll back"], figures, target_version=state.predecessor_version)]

    # 4. below a floor on matured labels: fall back to the rules and retrain
    if perf_gap is None:
        low = []
        if perf.accuracy is not None and perf.accuracy < policy.accuracy_floor:
            low.append(f"accuracy {perf.accuracy:.3f} < floor {policy.accuracy_floor:.3f}")
        if perf.roc_auc is not None and perf.roc_auc < policy.auc_floor:
            low.append(f"AUC {perf.roc_auc:.3f} < floor {policy.auc_floor:.3f}")
        if low:
            own = state.production_metrics.get("roc_auc")
            base = (f"v{state.production_version} on {perf.n} matured labels ({perf.positives} positive) "
                    f"as of {result.matured_as_of:%Y-%m-%d}: " if result.matured_as_of else
                    f"v{state.production_version} on {perf.n} matured labels: ") + ", ".join(low) + \
                (f" (its holdout AUC was {own:.3f})" if own is not None else "")
            figures = {"accuracy": perf.accuracy, "roc_auc": perf.roc_auc, "labels": perf.n,
                       "positives": perf.positives, "holdout_roc_auc": own}
            return _fall_back(base, figures, state, cooling)
        notes.append(f"performance ok on {perf.n} matured labels: accuracy {_f(perf.accuracy)}, "
                     f"AUC {_f(perf.roc_auc)}")
    else:
        notes.append(perf_gap)

    # 4b. the estimated performance (CBPE) below its floor, persistently: the labels will come
    # too late (a tracking outage flattens the scores long before the horizon closes)
    est = result.estimated
    if est is not None and est.roc_auc is not None:
        floor = policy.estimated_auc_floor
        if est.roc_auc < floor:
            runs = state.estimate_low_runs + 1
            base = (f"estimated AUC {est.roc_auc:.3f} < floor {floor:.3f} on {est.n} scored rows (CBPE, no labels "
                    f"needed) in {runs} consecutive run(s)")
            figures = {"estimated_roc_auc": est.roc_auc, "estimated_accuracy": est.accuracy, "rows": est.n,
                       "consecutive_runs": runs}
            if runs < policy.estimated_persistence_runs:
                return [Decision("alert", [base, f"{policy.estimated_persistence_runs} needed before falling back"],
                                 figures)]
            return _fall_back(base, figures, state, cooling)
        notes.append(f"estimated AUC {est.roc_auc:.3f} >= floor {floor:.3f} (CBPE on {est.n} rows)")

    # 5. drift, with persistence and cooldown
    d = result.drift
    if d is not None:
        if d.current_rows < policy.min_drift_rows:
            notes.append(f"drift not judged: {d.current_rows} current rows < minimum {policy.min_drift_rows}")
        else:
            signals = _drift_signals(d, policy)
            if signals:
                runs = state.drift_runs + 1
                figures = {"share_drifted": d.share_drifted, "drifted_columns": d.drifted_columns,
                           "weighted_share": d.weighted_share, "counted_columns": d.counted_columns,
                           "consecutive_runs": runs, "rank_correlation": d.rank_correlation}
                if runs < policy.drift_persistence_runs:
                    return [Decision("alert", [*signals, f"drift seen in {runs} of {policy.drift_persistence_runs} "
                                                         "consecutive runs needed before retraining"], figures)]
                persist = f"drift persisted {runs} consecutive run(s) (>= {policy.drift_persistence_runs})"
                if cooling:
                    return [Decision("alert", [*signals, persist, cooling], figures)]
                return [Decision("alert", [*signals, persist], figures),
                        Decision("retrain", [*signals, persist], figures)]
            if policy.drift_rule == "weighted" and d.weighted_share is not None:
                notes.append(f"no drift: the drifted columns carry {d.weighted_share:.1%} of the model's feature "
                             f"importance < {pct(policy.weighted_drift_share)}")
            else:
                notes.append(f"no drift: {share_sentence(len(d.drifted_columns), d.columns, policy.drift_share)}")
        # 6. data contract
        if not d.contract_ok:
            return [Decision("alert", [f"data contract: {p}" for p in d.contract_problems[:8]] or
                             ["data contract failed"], {"problems": d.contract_problems})]
    return [Decision("ok", notes)]


__all__ = ["share_reached", "share_sentence", "pct", "exact", "KINDS", "ACTIONS", "DriftSummary", "PerfSummary", "MonitorResult", "Candidate", "SegmentState",
           "Decision", "EstimateSummary", "decide", "condition", "restore_decision", "drift_detected"]
