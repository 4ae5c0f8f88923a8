"""The monitoring run of a task as of T: measure, decide, act, alert, record.

Per segment with a ``production`` version, `monitor_task`:

1. compares the version's drift reference (``reference_samples``, written at training) with
   the segment's features as of T (built like scoring: the version's feature set, segments
   assigned by the task's segmentation; the pooled ``global`` model sees everyone): the data
   contract, feature drift, the score distribution (the stored scores of T when this
   version produced them, else its predictions) and the ranking of mean |SHAP| per feature;
2. judges performance on matured labels: the newest scoring date T' whose horizon closed
   by T, its scores joined to the outcomes of [T', T' + horizon) (features.boundary). The production version's
   figures are its served scores when it produced them, else its predictions on the
   features of T' ("replayed"); a recently promoted version's predecessor is replayed on
   the same rows, for the rollback check;
3. writes Evidently HTML + JSON reports and logs them as MLflow artifacts of the version's run;
4. asks the pure `policy.decide` and executes: alias moves through the registry (and so the
   alias ledger), retraining through ``retrain`` (default: `journey_ml.training`, gated);
   after a retrain in rules mode the candidate is restored when it passes the hysteresis;
5. stores the run and its decisions, sends alerts, and returns the events a flow emits.

Nothing here reads the clock: ``as_of`` and ``now`` are parameters. Ledger rows carry the
wall-clock time of the move (the registry's), decisions the given ``now``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from journey_ml.config import JourneyConfig, SegmentPolicy
from journey_ml.db.models import ReferenceSample, Score
from journey_ml.features import FeatureSet, build_features, feature_set_for, labels
from journey_ml.features.boundary import label_matured
from journey_ml.monitoring import alerts as alerting
from journey_ml.monitoring import store
from journey_ml.monitoring.policy import (
    Candidate,
    Decision,
    DriftSummary,
    EstimateSummary,
    MonitorResult,
    PerfSummary,
    SegmentState,
    decide,
    drift_detected,
    restore_decision,
)
from journey_ml.registry import PRODUCTION, ModelNotFound
from journey_ml.registry import ledger as ledger_mod
from journey_ml.segments import GLOBAL, candidate_segments, task_segments

log = logging.getLogger(__name__)
RULES_HASH_TAG = "journey.rules_hash"
TRAINED_AS_OF_TAG = "journey.trained_as_of"  # set by training: the as-of the version was trained at

# decision kind -> Prefect event name (emitted by flows/monitor.py)
EVENTS = {"retrain": "journey.retrain.requested", "fallback": "journey.fallback.engaged",
          "rollback": "journey.rollback", "restore": "journey.model.restored"}
DRIFT_EVENT = "journey.drift.detected"


class MonitorError(RuntimeError):
    """The monitoring run cannot start (unknown task, naive time...); the message says why."""


@dataclass
class RetrainOutcome:
    """What a retraining did for one segment."""

    status: str  # promoted | staged | pooled | failed | requested
    reason: str
    version: int | None = None
    roc_auc: float | None = None  # candidate's holdout AUC
    gate_passed: bool | None = None
    alias_move_id: int | None = None


Retrain = Callable[[str, str, datetime, bool], RetrainOutcome]


@dataclass
class ExecutedDecision:
    """A decision with what executing it did."""

    kind: str
    reasons: list[str]
    figures: dict[str, Any]
    executed: bool
    outcome: str
    alias_move_id: int | None = None
    id: int | None = None


@dataclass
class SegmentMonitorResult:
    """One segment's monitoring: the figures, the reports, the decisions."""

    task: str
    segment: str
    as_of: datetime
    model_name: str | None
    model_version: int | None
    model_kind: str | None
    monitor_run_id: int | None
    result: MonitorResult
    drift: dict[str, Any] | None
    performance: dict[str, Any] | None
    reports: dict[str, str]
    decisions: list[ExecutedDecision]
    notes: list[str] = field(default_factory=list)
    estimated: dict[str, Any] | None = None  # CBPE on the population as of T

    @property
    def kinds(self) -> list[str]:
        return [d.kind for d in self.decisions]

    def to_dict(self) -> dict[str, Any]:
        return store.jsonable({
            "task": self.task, "segment": self.segment, "as_of": self.as_of, "model_name": self.model_name,
            "model_version": self.model_version, "model_kind": self.model_kind,
            "monitor_run_id": self.monitor_run_id, "drift_detected": bool(self.drift and self.drift.get("detected")),
            "drift": self.drift, "performance": self.performance, "reports": self.reports,
            "decisions": [asdict(d) for d in self.decisions], "notes": self.notes, "estimated": self.estimated})


@dataclass
class MonitorRunResult:
    """A monitoring run of one task: per segment results, events to emit, alert deliveries."""

    task: str
    as_of: datetime
    run_key: str
    segments: list[SegmentMonitorResult]
    events: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def decisions(self) -> list[tuple[str, ExecutedDecision]]:
        return [(s.segment, d) for s in self.segments for d in s.decisions]

    def to_dict(self) -> dict[str, Any]:
        return store.jsonable({"task": self.task, "as_of": self.as_of, "run_key": self.run_key,
                               "segments": [s.to_dict() for s in self.segments], "events": self.events,
                               "deliveries": self.deliveries, "seconds": self.seconds, "notes": self.notes})


# --- reading what there is --------------------------------------------------------------------

def _utc(t: datetime, what: str) -> datetime:
    if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
        raise MonitorError(f"{what} must be a timezone-aware (UTC) datetime, got {t!r}")
    return t.astimezone(UTC)


def load_reference(engine: Engine, name: str, version: int, fs: FeatureSet) -> tuple[pd.DataFrame, np.ndarray]:
    """A version's drift reference rows (features in declaration order) and their predictions."""
    t = ReferenceSample.__table__
    q = sa.select(t.c.features, t.c.prediction).where(t.c.model_name == name, t.c.version == version) \
        .order_by(t.c.row_id)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    frame = pd.DataFrame([r[0] for r in rows], columns=fs.names())
    for f in fs.features:
        if f.kind == "numeric":
            frame[f.name] = pd.to_numeric(frame[f.name], errors="coerce").astype("float64")
        else:
            frame[f.name] = frame[f.name].astype(object)
    preds = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=float)
    return frame, preds


def reference_date(engine: Engine, name: str, version: int) -> datetime | None:
    """The newest as-of date among a version's reference rows: the end of its training window."""
    t = ReferenceSample.__table__
    with engine.connect() as conn:
        at = conn.execute(sa.select(sa.func.max(t.c.as_of)).where(t.c.model_name == name,
                                                                  t.c.version == version)).scalar_one_or_none()
    if isinstance(at, str):  # SQLite aggregates bypass the column type
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _scores(engine: Engine, task: str, as_of: datetime) -> pd.DataFrame:
    t = Score.__table__
    q = sa.select(t.c.entity_id, t.c.probability, t.c.segment, t.c.model_name, t.c.model_version) \
        .where(t.c.task == task, t.c.as_of == as_of)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(q).all(), columns=["entity_id", "probability", "segment", "model_name",
                                                             "model_version"]).set_index("entity_id")


def matured_as_of(engine: Engine, config: JourneyConfig, task: str, as_of: datetime) -> datetime | None:
    """The newest scoring date of ``task`` whose label horizon closed by ``as_of``."""
    horizon = config.task(task).horizon_days
    t = Score.__table__
    with engine.connect() as conn:
        dates = [d for (d,) in conn.execute(sa.select(t.c.as_of).where(t.c.task == task).distinct())]
    dates = [d if isinstance(d, datetime) else datetime.fromisoformat(str(d)) for d in dates]
    dates = [d.replace(tzinfo=UTC) if d.tzinfo is None else d for d in dates]
    ok = [d for d in dates if label_matured(d, horizon, as_of)]
    return max(ok) if ok else None


def _kind(kind: str | None) -> str:
    return "rules" if kind == "rules" else "model"


# --- the run ----------------------------------------------------------------------------------

class _Context:
    """Per-run caches: feature frames per (date, feature set), loaded models, training data."""

    def __init__(self, engine: Engine, registry, config: JourneyConfig, task: str, build=build_features):
        from journey_ml.scoring.ladder import ModelCache

        self.engine, self.registry, self.config, self.task = engine, registry, config, task
        self.build = build
        self.models = ModelCache()
        self._frames: dict[tuple, tuple[pd.DataFrame, pd.Series]] = {}

    def model(self, segment: str, info):
        return self.models.get(self.registry, self.task, segment, info.version, info.kind)

    def features(self, as_of: datetime, fs: FeatureSet) -> tuple[pd.DataFrame, pd.Series]:
        key = (as_of, fs.key)
        if key not in self._frames:
            frame = self.build(self.engine, self.config, self.task, as_of, feature_set=fs).frame
            self._frames[key] = (frame, task_segments(frame, self.config, self.task))
        return self._frames[key]

    def rows(self, as_of: datetime, fs: FeatureSet, segment: str) -> pd.DataFrame:
        frame, segs = self.features(as_of, fs)
        return frame if segment == GLOBAL else frame[segs.to_numpy() == segment]


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=n, random_state=seed) if len(frame) > n else frame


def _perf(probability, label, config: JourneyConfig, policy: SegmentPolicy):
    from journey_ml.monitoring.performance import performance

    bands = [(b.name, b.min) for b in config.scoring.bands]
    return performance(np.asarray(probability, dtype=float), np.asarray(label, dtype=int), bands=bands,
                       min_labels=policy.min_labels, min_positives=policy.min_positives)


def _state(ctx: _Context, segment: str, info, policy: SegmentPolicy, as_of: datetime, now: datetime) -> SegmentState:
    reg, engine, name = ctx.registry, ctx.engine, info.name
    move = ledger_mod.last_move_to(engine, name, PRODUCTION, info.version)
    pred_v = move.from_version if move is not None and move.action != "rollback" else None
    pred_kind = None
    if pred_v is not None:
        try:
            pred_kind = _kind(reg.version(ctx.task, segment, pred_v).kind)
        except ModelNotFound:
            pred_v = None
    metrics = {}
    if info.run_id and info.kind != "rules":
        try:
            metrics = {k[5:]: v for k, v in reg.run_metrics(info.run_id).items() if k.startswith("test_")}
        except Exception as e:  # noqa: BLE001 - figures for the reasons only
            log.warning("metrics of %s v%s unavailable: %s", name, info.version, e)
    versions = reg.versions(ctx.task, segment)
    from journey_ml.scoring.batch import rules_hash

    rh = rules_hash(ctx.config, ctx.task)
    rules = [v for v in versions if v.kind == "rules"]
    rules_v = next((v.version for v in rules if rh and v.tags.get(RULES_HASH_TAG) == rh),
                   rules[0].version if rules else None)
    candidate = None
    if info.kind == "rules":
        since = move.at if move is not None else None  # when the fallback was engaged
        for v in versions:  # newest first: the newest model gated against the rules since then
            if since is not None and v.created_at < since:
                break
            passed = v.tags.get("journey.gate_passed")
            if v.kind == "rules" or passed is None:
                continue
            auc = None
            if v.run_id:
                try:
                    auc = reg.run_metrics(v.run_id).get("test_roc_auc")
                except Exception:  # noqa: BLE001
                    auc = None
            candidate = Candidate(v.version, auc, passed == "true", _gate_text(v.tags.get("journey.gate", ""), "staged"))
            break
    return SegmentState(
        production_version=info.version, production_kind=_kind(info.kind), production_metrics=metrics,
        promoted_at=move.at if move is not None else None, predecessor_version=pred_v, predecessor_kind=pred_kind,
        rules_version=rules_v, last_action_at=store.last_action_at(engine, ctx.task, segment, now),
        drift_runs=store.drift_streak(engine, ctx.task, segment, name, info.version, as_of), candidate=candidate,
        estimate_low_runs=store.estimate_streak(engine, ctx.task, segment, name, info.version, as_of,
                                                policy.estimated_auc_floor))


def _measure(ctx: _Context, segment: str, info, state: SegmentState, policy: SegmentPolicy, as_of: datetime,
             out_dir: Path, notes: list[str]):
    """Drift and performance of one segment's production version. The report pages are not
    written here: returned as ``pages`` (callables taking the final drift dict), for the caller
    to write once the decisions say whether they are wanted (`monitoring.evidently_reports`)."""
    from journey_ml.monitoring.drift import DriftOptions, check_drift
    from journey_ml.monitoring.reports import classification_report, drift_report

    cfg, mcfg = ctx.config, ctx.config.monitoring
    model = ctx.model(segment, info)
    fs = FeatureSet.from_dict(model.feature_set) if model.feature_set else feature_set_for(ctx.engine, cfg, ctx.task)
    reports: dict[str, str] = {}
    pages: list[Callable[[dict[str, Any] | None], None]] = []
    drift = drift_dict = None
    error = None
    estimated = None
    if info.kind == "rules":
        notes.append(f"rules mode: production is the rules version v{info.version}; drift is judged for models")
    else:
        ref, ref_pred = load_reference(ctx.engine, info.name, info.version, fs)
        if ref.empty:
            error = f"no drift reference sample for {info.name} v{info.version} in reference_samples"
        else:
            ref, ref_pred = _drift_reference(ctx, segment, info, policy, fs, model, as_of, ref, ref_pred, notes)
        if not ref.empty:
            cur = ctx.rows(as_of, fs, segment)
            cur_s = _sample(cur, mcfg.sample_rows, mcfg.seed)
            served = _scores(ctx.engine, ctx.task, as_of).reindex(cur_s.index)
            mine = ((served["model_name"] == info.name) & (served["model_version"] == info.version)).to_numpy()
            cur_pred = np.array([], dtype=float)
            if len(cur_s):  # the served score where this version produced it, else its prediction
                cur_pred = model.scorer.predict_proba(cur_s[model.scorer.feature_names])
                cur_pred = np.where(mine, served["probability"].to_numpy(dtype=float), cur_pred)
            if len(cur_pred):  # CBPE: what the calibrated scores of T say about performance, no labels needed
                from journey_ml.monitoring.performance import estimate_performance

                estimated = estimate_performance(cur_pred, min_rows=policy.min_drift_rows)
            ref_shap = cur_shap = None
            if policy.explanation_drift and hasattr(model.scorer, "contributions") and len(cur_s) and len(ref):
                ref_shap = model.scorer.contributions(_sample(ref, mcfg.sample_rows, mcfg.seed)[model.scorer.feature_names])
                cur_shap = model.scorer.contributions(cur_s[model.scorer.feature_names])
            importance = model_importance(model.scorer)
            opts = DriftOptions(sample_rows=mcfg.sample_rows, seed=mcfg.seed, share_threshold=policy.drift_share,
                                critical_columns=list(policy.critical_columns),
                                min_rank_correlation=policy.min_rank_correlation, top_k=policy.explanation_top_k,
                                min_effect=policy.min_effect, importance=importance)
            dr = check_drift(ref, cur_s, fs, reference_scores=ref_pred if policy.prediction_drift else None,
                             current_scores=cur_pred if policy.prediction_drift else None,
                             reference_shap=ref_shap, current_shap=cur_shap, options=opts,
                             contract_kwargs={"min_rows": policy.min_drift_rows})
            drift = DriftSummary.from_result(dr)
            drift_dict = {**dr.to_dict(), "importance": importance,
                          "reference": next((n.removeprefix("drift reference: ") for n in reversed(notes)
                                             if n.startswith("drift reference: ")), None)}

            def drift_page(dd: dict[str, Any] | None, ref=ref, cur_s=cur_s, dr=dr, importance=importance) -> None:
                try:
                    from journey_ml.monitoring.reports import ranked_by_importance

                    usable = dr.contract.usable_columns
                    drifted = set(dr.drifted_columns)
                    shown = ranked_by_importance([c for c in usable if c in drifted], importance) + \
                        ranked_by_importance([c for c in usable if c not in drifted], importance)
                    if dd is not None:
                        dd["report_columns"] = len(shown[:mcfg.report_max_columns])
                    rf = drift_report(ref, cur_s, fs, out_dir, columns=shown[:mcfg.report_max_columns],
                                      sample_rows=mcfg.sample_rows, seed=mcfg.seed, drift_share=policy.drift_share,
                                      title=f"{info.name} v{info.version}: drift as of {as_of:%Y-%m-%d}", exact=dr)
                    reports["drift_html"], reports["drift_json"] = str(rf.html), str(rf.json)
                    if rf.error:
                        reports["drift_error"] = rf.error
                        notes.append(f"drift report has no Evidently sections: {rf.error}")
                except Exception as e:  # noqa: BLE001 - the figures stand without the page
                    notes.append(f"drift report not written ({type(e).__name__}: {e})")
                    reports["drift_error"] = f"{type(e).__name__}: {e}"

            pages.append(drift_page)

    perf = pred_perf = None
    perf_dict: dict[str, Any] | None = None
    t_mat = matured_as_of(ctx.engine, cfg, ctx.task, as_of)
    if t_mat is None:
        notes.append(f"no scores old enough to have matured labels (horizon {cfg.task(ctx.task).horizon_days} days)")
    else:
        served = _scores(ctx.engine, ctx.task, t_mat)
        if segment != GLOBAL:
            served = served[served["segment"] == segment]
        y = labels(ctx.engine, cfg, ctx.task, t_mat, served.index)
        mine = (served["model_name"] == info.name) & (served["model_version"] == info.version)
        source = "served"
        if len(served) and mine.all():
            p = served["probability"].to_numpy(dtype=float)
        elif info.kind == "rules":
            p, source = None, None
            notes.append(f"matured scores of {t_mat:%Y-%m-%d} were not produced by the rules version: "
                         "performance not judged in rules mode")
        else:
            frame = ctx.rows(t_mat, fs, GLOBAL).reindex(served.index)
            p = model.scorer.predict_proba(frame[model.scorer.feature_names]) if len(frame) else np.array([])
            source = "replayed"
        if p is not None:
            pr = _perf(p, y.to_numpy(), cfg, policy)
            perf = PerfSummary.from_result(pr)
            perf_dict = {"matured_as_of": t_mat, "source": source, "production": pr.to_dict()}
            if pr.roc_auc is not None:  # the estimate made when these rows were scored, against the truth
                err = store.record_estimation_error(ctx.engine, ctx.task, segment, t_mat, info.name, info.version,
                                                    pr.roc_auc)
                if err is not None:
                    perf_dict["estimate"] = err
            recent = state.promoted_at is not None and \
                as_of - state.promoted_at <= timedelta(days=policy.rollback_window_days)
            if (info.kind != "rules" and state.predecessor_kind == "model" and recent and len(served)):
                try:
                    old = ctx.models.get(ctx.registry, ctx.task, segment, state.predecessor_version, None)
                    frame = ctx.rows(t_mat, fs, GLOBAL).reindex(served.index)
                    ofs = FeatureSet.from_dict(old.feature_set) if old.feature_set else fs
                    if ofs.to_dict() != fs.to_dict():
                        frame = ctx.rows(t_mat, ofs, GLOBAL).reindex(served.index)
                    pp = _perf(old.scorer.predict_proba(frame[old.scorer.feature_names]), y.to_numpy(), cfg, policy)
                    pred_perf = PerfSummary.from_result(pp)
                    perf_dict["predecessor"] = {"version": state.predecessor_version, **pp.to_dict()}
                except Exception as e:  # noqa: BLE001 - no comparison, no rollback
                    notes.append(f"predecessor v{state.predecessor_version} not evaluated "
                                 f"({type(e).__name__}: {e})")

            def performance_page(_dd: dict[str, Any] | None, p=p, y=y, t_mat=t_mat, source=source) -> None:
                try:
                    rf = classification_report(pd.DataFrame({"probability": p, "label": y.to_numpy()}), out_dir,
                                               title=f"{info.name} v{info.version}: matured labels of "
                                                     f"{t_mat:%Y-%m-%d} ({source})")
                    reports["performance_html"], reports["performance_json"] = str(rf.html), str(rf.json)
                    if rf.error:
                        reports["performance_error"] = rf.error
                except Exception as e:  # noqa: BLE001
                    notes.append(f"performance report not written ({type(e).__name__}: {e})")
                    reports["performance_error"] = f"{type(e).__name__}: {e}"

            pages.append(performance_page)
    result = MonitorResult(task=ctx.task, segment=segment, as_of=as_of, model_name=info.name,
                           model_version=info.version, drift=drift, performance=perf,
                           predecessor_performance=pred_perf, matured_as_of=t_mat, error=error,
                           estimated=EstimateSummary.from_result(estimated) if estimated is not None else None)
    return result, drift_dict, perf_dict, reports, estimated.to_dict() if estimated is not None else None, pages


def trained_as_of(info) -> datetime | None:
    """The as-of date a version was trained at (its ``journey.trained_as_of`` tag), else None."""
    raw = (getattr(info, "tags", None) or {}).get(TRAINED_AS_OF_TAG)
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def reference_as_of(engine: Engine, task: str, segment: str, info, policy: SegmentPolicy,
                    as_of: datetime) -> tuple[datetime | None, str]:
    """Which population the drift of ``as_of`` is judged against, and a sentence saying why.

    ``previous_run``: the as-of of this version's newest monitoring run of the segment at least
    ``drift_reference_lag_days`` before ``as_of``, else its training as-of when that is before
    ``as_of``, else the newest date of its training window; ``training_population``: its training as-of;
    ``recent_window``: the newest date of its training window (the reference rows). None:
    the date is unknown (the stored training sample is used).
    """
    trained = trained_as_of(info)
    if policy.drift_reference == "previous_run":
        lag = timedelta(days=policy.drift_reference_lag_days)
        prev = next((r for r in store.runs(engine, task, segment, before=min(as_of, as_of - lag + timedelta(microseconds=1)), limit=20)
                     if r.model_name == info.name and r.model_version == info.version and r.status == "ok"), None)
        if prev is not None and (trained is None or prev.as_of > trained):
            return prev.as_of, (f"the population of the monitoring run of {prev.as_of:%Y-%m-%d} "
                                f"(the newest at least {policy.drift_reference_lag_days:g} days earlier)")
        if trained is not None and trained < as_of:
            return trained, (f"the population at v{info.version}'s training as-of ({trained:%Y-%m-%d}; "
                             f"no run at least {policy.drift_reference_lag_days:g} days earlier)")
        # trained as of T itself: the newest date of its training window (below)
    if policy.drift_reference == "training_population" and trained is not None:
        return trained, f"the population at v{info.version}'s training as-of ({trained:%Y-%m-%d})"
    at = reference_date(engine, info.name, info.version)
    return at, (f"the newest date of v{info.version}'s training window ({at:%Y-%m-%d})" if at is not None else "")


def _drift_reference(ctx: _Context, segment: str, info, policy: SegmentPolicy, fs: FeatureSet, model,
                     as_of: datetime, ref: pd.DataFrame, ref_pred: np.ndarray,
                     notes: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The reference rows and their predictions for ``policy.drift_reference`` (the stored
    training sample when that population is too small or unknown)."""
    if policy.drift_reference == "training_sample":
        return ref, ref_pred
    ref_at, what = reference_as_of(ctx.engine, ctx.task, segment, info, policy, as_of)
    window = ctx.rows(ref_at, fs, segment) if ref_at is not None else ref.iloc[:0]
    if len(window) >= policy.min_drift_rows:
        window = _sample(window, ctx.config.monitoring.sample_rows, ctx.config.monitoring.seed)
        notes.append(f"drift reference: {what}, {len(window)} rows")
        return window, model.scorer.predict_proba(window[model.scorer.feature_names])
    notes.append(f"drift reference: the stored training sample ({len(ref)} rows); "
                 + (f"{what} has {len(window)} rows < {policy.min_drift_rows}" if what else "no reference date known"))
    return ref, ref_pred


def model_importance(scorer) -> dict[str, float]:
    """The scorer's feature importance as shares summing to 1 (total gain); {} when it has none."""
    try:
        raw = scorer.importance() if hasattr(scorer, "importance") else {}
    except Exception:  # noqa: BLE001 - an unfitted or rules scorer: no weights
        raw = {}
    total = sum(v for v in raw.values() if v > 0)
    return {k: float(v) / total for k, v in raw.items() if v > 0} if total > 0 else {}


def page_summary(task: str, seg: str, info, t: datetime, drift_dict: dict | None, perf_dict: dict | None,
                 decisions: list[ExecutedDecision], reports: dict[str, str], prefix: str,
                 estimated: dict | None = None, chart_svg: str = "") -> dict[str, Any]:
    """What our summary block at the top of a report page says (see `reports.summary_html`)."""
    from journey_ml.monitoring.reports import ranked_by_importance

    drift = None
    if drift_dict:
        imp = drift_dict.get("importance") or {}
        cols = drift_dict.get("columns") or {}
        names = ranked_by_importance(list(drift_dict.get("drifted_columns") or []), imp)
        pred = drift_dict.get("prediction") or {}
        drift = {"detected": bool(drift_dict.get("detected")), "tested_columns": drift_dict.get("tested_columns"),
                 "drifted_count": len(names), "share_text": share_text(len(names), drift_dict.get("tested_columns") or 0),
                 "weighted_share": drift_dict.get("weighted_share"), "reference": drift_dict.get("reference"),
                 "report_columns": drift_dict.get("report_columns"),
                 "prediction_drifted": pred.get("drifted") if pred and not pred.get("skipped") else None,
                 "drifted": [{"column": c, "importance": imp.get(c, 0.0), "method": (cols.get(c) or {}).get("method"),
                              "statistic": (cols.get(c) or {}).get("statistic"),
                              "threshold": (cols.get(c) or {}).get("threshold"),
                              "effect": (cols.get(c) or {}).get("effect")} for c in names]}
    realised = None
    p = (perf_dict or {}).get("production") or {}
    if p:
        realised = {"as_of": (perf_dict or {}).get("matured_as_of"), "roc_auc": p.get("roc_auc"),
                    "accuracy": p.get("accuracy"), "n": p.get("n")}
    return store.jsonable({
        "task": task, "segment": seg, "model": info.name, "version": info.version, "as_of": t,
        "decisions": [{"kind": d.kind, "reasons": d.reasons, "outcome": d.outcome} for d in decisions],
        "drift": drift, "realised": realised, "estimated": estimated, "chart_svg": chart_svg,
        "report_error": reports.get(f"{prefix}_error")})


def share_text(k: int, n: int) -> str:
    """``"42 of 141 columns (29.8%)"``: the exact count, the share to one decimal."""
    return f"{k} of {n} columns ({100 * k / n:.1f}%)" if n else f"{k} of 0 columns"


def default_retrain(engine: Engine, registry, config: JourneyConfig, *, at: datetime | None = None) -> Retrain:
    """Retrain a segment with `journey_ml.training` as of T; the promotion gate decides.

    In rules mode the candidate is gated against the rules version and left ``staging``
    (the policy restores it when it also clears the hysteresis). The task's training frame
    is prepared once per (task, T). ``at``: the time the ledger records for a promotion
    (the monitoring run's ``now``).
    """
    from journey_ml.training import TrainingError, prepare_training, train_segment

    prepared: dict[tuple[str, datetime], Any] = {}

    from journey_ml.scoring.ladder import ModelCache

    models = ModelCache()

    def retrain(task: str, segment: str, as_of: datetime, in_fallback: bool) -> RetrainOutcome:
        try:
            if (task, as_of) not in prepared:
                prepared[(task, as_of)] = prepare_training(engine, config, task, as_of)
            data = prepared[(task, as_of)]
        except TrainingError as e:
            return RetrainOutcome("failed", str(e))
        prod = registry.production(task, segment)
        recent = (config.monitoring.retrain_gate == "recent_matured" and not in_fallback
                  and prod is not None and prod.kind != "rules")
        out = train_segment(data, segment, config, registry, engine, actor="journey-ml monitor",
                            promote=not in_fallback and not recent, gate_against_rules=True, at=at)
        if recent and out.version is not None and out.status in ("staged", "promoted"):
            return _recent_gate(engine, registry, config, models, task, segment, as_of, prod, out, at)
        move_id = None
        if out.status == "promoted" and out.model_name:
            m = ledger_mod.last_move_to(engine, out.model_name, PRODUCTION, out.version)
            move_id = m.id if m is not None else None
        return RetrainOutcome(out.status, _gate_text(out.reason, out.status), out.version,
                              out.metrics.get("roc_auc"), out.gate_passed, move_id)

    return retrain


def _recent_gate(engine, registry, config, models, task, segment, as_of, prod, out,
                 at: datetime | None = None) -> RetrainOutcome:
    """Promote the staged candidate only if it beats production on recent matured data (#11.4)."""
    from journey_ml.monitoring.recent_gate import recent_gate

    try:
        g = recent_gate(engine, config, task, segment, models.get(registry, task, segment, out.version, None),
                        models.get(registry, task, segment, prod.version, prod.kind), as_of,
                        min_positives=config.monitoring.policy(task, segment).min_positives)
    except Exception as e:  # noqa: BLE001 - no comparison, no promotion
        return RetrainOutcome("staged", f"not promoted: recent comparison failed ({type(e).__name__}: {e})",
                              out.version, out.metrics.get("roc_auc"), False)
    holdout = f"holdout: {out.reason}"
    if not g.promote:
        return RetrainOutcome("staged", f"not promoted {g.reason}; {holdout}", out.version,
                              out.metrics.get("roc_auc"), False)
    m = registry.promote(task, segment, out.version, reason=f"promoted {g.reason}"[:2000], actor="journey-ml monitor",
                         at=at)
    return RetrainOutcome("promoted", f"promoted {g.reason}; {holdout}", out.version, out.metrics.get("roc_auc"),
                          True, m.id)


def _gate_text(reason: str, status: str) -> str:
    """The gate's reason for a candidate left staging for the policy: "gate passed: ..."."""
    if status == "staged" and reason.startswith("promoted: "):
        return "gate passed: " + reason[len("promoted: "):]
    return reason


_DEFAULT = object()


def monitor_task(engine: Engine, registry, config: JourneyConfig, task: str, as_of: datetime, *,
                 reports_dir: Path, now: datetime, retrain: Retrain | None | object = _DEFAULT,
                 alert_urls: list[str] | None = None, segments: list[str] | None = None,
                 run_key: str | None = None, build=build_features) -> MonitorRunResult:
    """Monitor every segment of ``task`` that has a production version, as of ``as_of``.

    ``retrain``: called for each retraining decision (default: `default_retrain`); None
    only records the request (the flow's event can trigger a deployment). ``alert_urls``:
    Apprise / file URLs (default: none). ``build``: the feature builder (the cycle's
    `FeatureMemo`). Raises MonitorError for a naive time, ConfigError for an unknown task;
    a segment-level failure is recorded as that segment's error.
    """
    t0 = time.perf_counter()
    config.task(task)
    t, now = _utc(as_of, "as_of"), _utc(now, "now")
    run_key = run_key or str(uuid.uuid4())
    if retrain is _DEFAULT:
        retrain = default_retrain(engine, registry, config, at=now)
    ctx = _Context(engine, registry, config, task, build)
    results: list[SegmentMonitorResult] = []
    events: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    run_notes: list[str] = []
    for seg in segments or candidate_segments(config, task):
        info = registry.production(task, seg)
        if info is None:
            if segments:
                run_notes.append(f"{task}/{seg}: no production version, not monitored")
            continue
        previous = store.runs(engine, task, seg, before=t, limit=1)
        r = _monitor_segment(ctx, seg, info, t, now, Path(reports_dir), retrain, run_key)
        results.append(r)
        events.extend(_events(r))
        for alert in _alerts(r, previous[0] if previous else None):
            for dl in alerting.send(alert_urls or [], alert):
                deliveries.append({"segment": seg, "decision": alert.decision, "condition": alert.condition,
                                   "state": alert.state, **asdict(dl)})
                if not dl.ok:
                    log.warning("alert to %s failed: %s", dl.url, dl.error)
    return MonitorRunResult(task=task, as_of=t, run_key=run_key, segments=results, events=events,
                            deliveries=deliveries, seconds=time.perf_counter() - t0, notes=run_notes)


def _conditions(decisions) -> dict[str, list]:
    """Decisions other than ok, grouped by condition (in order)."""
    out: dict[str, list] = {}
    for d in decisions:
        if d.kind != "ok":
            out.setdefault((d.figures or {}).get("condition") or d.kind, []).append(d)
    return out


def _alerts(r: SegmentMonitorResult, previous: store.StoredRun | None) -> list[alerting.Alert]:
    """One alert per condition whose state changed since the segment's previous run, and a
    recovery message per condition that cleared."""
    now_c = _conditions(r.decisions)
    before = _conditions(previous.decisions) if previous is not None else {}
    strongest = {c: alerting.strongest([d.kind for d in ds]) for c, ds in now_c.items()}
    # once production is the rules model, the model's performance conditions are moot, not recovered
    moved = previous is not None and previous.model_version != r.model_version
    superseded = frozenset({"performance", "estimated_performance", "drift"}) if moved else frozenset()
    p = alerting.plan({c: alerting.strongest([d.kind for d in ds]) for c, ds in before.items()}, strongest,
                      superseded=superseded)
    page = r.reports.get("drift_html") or r.reports.get("performance_html")
    link = Path(page).resolve().as_uri() if page else None
    base = dict(task=r.task, segment=r.segment, as_of=r.as_of, model=f"{r.model_name} v{r.model_version}", report=link)
    out = []
    for c in p.send:
        ds = now_c[c]
        kind = strongest[c]
        figures = {k: v for d in ds for k, v in (d.figures or {}).items()
                   if not isinstance(v, list | dict) and k != "condition"}
        out.append(alerting.Alert(**base, decision=kind, reasons=list(dict.fromkeys(x for d in ds for x in d.reasons)),
                                  figures=figures, outcome="; ".join(d.outcome for d in ds if d.outcome) or None,
                                  condition=c, severity=alerting.severity(kind)))
    ok = [x for d in r.decisions if d.kind == "ok" for x in d.reasons]
    for c in p.recovered:
        out.append(alerting.Alert(**base, decision="recovered", condition=c, severity="info", state="recovered",
                                  reasons=[f"{c.replace('_', ' ')} cleared since the run of "
                                           f"{previous.as_of:%Y-%m-%d}", *ok]))
    return out


def _monitor_segment(ctx: _Context, seg: str, info, t: datetime, now: datetime, reports_dir: Path,
                     retrain: Retrain | None, run_key: str) -> SegmentMonitorResult:
    cfg, task = ctx.config, ctx.task
    policy = cfg.monitoring.policy(task, seg)
    notes: list[str] = []
    out_dir = reports_dir / task / seg / f"{t:%Y-%m-%d}"
    state = _state(ctx, seg, info, policy, t, now)
    try:
        result, drift_dict, perf_dict, reports, estimated, pages = _measure(ctx, seg, info, state, policy, t,
                                                                            out_dir, notes)
    except Exception as e:  # noqa: BLE001 - one segment's failure is its own error decision
        log.exception("monitoring %s/%s failed", task, seg)
        result = MonitorResult(task=task, segment=seg, as_of=t, model_name=info.name, model_version=info.version,
                               error=f"monitoring failed: {type(e).__name__}: {e}")
        drift_dict, perf_dict, reports, estimated, pages = None, None, {}, None, []
    detected = drift_detected(result, policy)
    if drift_dict is not None:
        drift_dict = {"detected": detected, **drift_dict}
    run_id = store.save_run(ctx.engine, run_key=run_key, task=task, segment=seg, as_of=t, model_name=info.name,
                            model_version=info.version, model_kind=_kind(info.kind),
                            status="error" if result.error else "ok", drift_detected=detected,
                            matured_as_of=result.matured_as_of,
                            contract=(drift_dict or {}).get("contract"), drift=drift_dict, performance=perf_dict,
                            reports=reports, error=result.error, created_at=now, estimated=estimated)
    executed: list[ExecutedDecision] = []
    for d in decide(result, state, policy, now):
        executed.extend(_execute(ctx, seg, info, d, state, policy, t, now, retrain, run_id))
    if _wants_pages(ctx, seg, t, executed):
        for write in pages:
            write(drift_dict)
    _add_summaries(ctx, seg, info, t, drift_dict, perf_dict, executed, reports, notes, estimated)
    if reports and info.run_id:  # after the summaries: the logged pages say what was decided
        try:
            ctx.registry.log_version_artifacts(info.name, info.version, out_dir, f"monitoring/{t:%Y-%m-%d}")
            reports["mlflow_run_id"] = info.run_id
        except Exception as e:  # noqa: BLE001 - the reports are on disk either way
            notes.append(f"reports not logged to MLflow ({type(e).__name__}: {e})")
    if reports:
        store.update_reports(ctx.engine, run_id, reports)
    return SegmentMonitorResult(task=task, segment=seg, as_of=t, model_name=info.name, model_version=info.version,
                                model_kind=_kind(info.kind), monitor_run_id=run_id, result=result,
                                drift=drift_dict, performance=perf_dict, reports=reports, decisions=executed,
                                notes=notes, estimated=estimated)


def _wants_pages(ctx: _Context, seg: str, t: datetime, executed: list[ExecutedDecision]) -> bool:
    """Whether this run writes its report pages (`monitoring.evidently_reports`): always, never,
    or on a decision: anything but ok now, or in the segment's previous run (the recovery)."""
    mode = ctx.config.monitoring.evidently_reports
    if mode != "on_decision":
        return mode == "always"
    if any(d.kind != "ok" for d in executed):
        return True
    previous = next((r for r in store.runs(ctx.engine, ctx.task, seg, before=t, limit=1)), None)
    return previous is not None and any(d.kind != "ok" for d in previous.decisions)


def _add_summaries(ctx: _Context, seg: str, info, t: datetime, drift_dict: dict | None, perf_dict: dict | None,
                   executed: list[ExecutedDecision], reports: dict[str, str], notes: list[str],
                   estimated: dict | None) -> None:
    """Our summary (the decision, ranked drifted columns, performance) at the top of each page."""
    from journey_ml.monitoring.reports import add_summary, performance_chart_svg

    est, real = [], []
    for r in reversed(store.runs(ctx.engine, ctx.task, seg, limit=60)):  # oldest first; this run included
        if (r.estimated or {}).get("roc_auc") is not None:
            est.append((r.as_of, r.estimated["roc_auc"]))
        p = (r.performance or {}).get("production") or {}
        if p.get("roc_auc") is not None and r.matured_as_of is not None:
            real.append((r.matured_as_of, p["roc_auc"]))
    chart = performance_chart_svg(est, sorted(dict(real).items()))
    shown = {**estimated, "as_of": t} if estimated else None
    for prefix in ("drift", "performance"):
        if f"{prefix}_html" not in reports:
            continue
        try:
            add_summary(reports, page_summary(ctx.task, seg, info, t, drift_dict, perf_dict, executed, reports,
                                              prefix, estimated=shown, chart_svg=chart), prefix)
        except Exception as e:  # noqa: BLE001 - the page stays as Evidently wrote it
            notes.append(f"summary not added to the {prefix} report ({type(e).__name__}: {e})")


def _execute(ctx: _Context, seg: str, info, d: Decision, state: SegmentState, policy: SegmentPolicy,
             t: datetime, now: datetime, retrain: Retrain | None, run_id: int) -> list[ExecutedDecision]:
    """Store a decision, carry it out, record what happened (a restore may follow a retrain)."""
    reg, engine, task = ctx.registry, ctx.engine, ctx.task
    did = store.save_decision(engine, monitor_run_id=run_id, task=task, segment=seg, as_of=t, kind=d.kind,
                              reasons=d.reasons, figures=d.figures, decided_at=now)
    reason = "; ".join(d.reasons)
    executed, outcome, move_id = False, "", None
    follow: list[ExecutedDecision] = []
    try:
        if d.kind in ("fallback", "restore"):
            m = reg.promote(task, seg, d.target_version, reason=f"monitor: {reason}"[:2000], action=d.kind,
                            actor="journey-ml monitor", at=now)
            executed, move_id = True, m.id
            outcome = f"production v{m.from_version} -> v{m.to_version} ({d.kind})"
        elif d.kind == "rollback":
            m = reg.rollback(task, seg, to_version=d.target_version, reason=f"monitor: {reason}"[:2000],
                             actor="journey-ml monitor", at=now)
            executed, move_id = True, m.id
            outcome = f"production v{m.from_version} -> v{m.to_version} (rollback)"
        elif d.kind == "retrain":
            now_rules = reg.production(task, seg)
            in_fallback = now_rules is not None and now_rules.kind == "rules"
            if retrain is None:
                outcome = "retraining requested (event emitted; no inline retraining configured)"
            else:
                r = retrain(task, seg, t, in_fallback)
                executed, move_id = r.status not in ("failed",), r.alias_move_id
                outcome = f"retrained: {r.status}" + (f" v{r.version}" if r.version else "") + f" ({r.reason})"
                if in_fallback and r.version is not None and r.gate_passed is not None:
                    after = replace(state, production_version=now_rules.version, production_kind="rules",
                                    candidate=Candidate(r.version, r.roc_auc, bool(r.gate_passed), r.reason))
                    nxt = restore_decision(after, policy)
                    if nxt is not None:
                        follow = _execute(ctx, seg, info, nxt, after, policy, t, now, retrain, run_id)
        else:
            outcome = "" if d.kind == "ok" else "alerted"
    except Exception as e:  # noqa: BLE001 - recorded on the decision; the run goes on
        log.exception("executing %s for %s/%s failed", d.kind, task, seg)
        outcome = f"failed: {type(e).__name__}: {e}"
    store.mark_executed(engine, did, executed=executed, outcome=outcome, alias_move_id=move_id)
    return [ExecutedDecision(d.kind, d.reasons, store.jsonable(d.figures), executed, outcome, move_id, did), *follow]


def segment_resource(task: str, segment: str, model_name: str | None = None,
                     model_version: int | None = None) -> dict[str, str]:
    """The Prefect event resource of a task's segment: id ``journey.segment.<task>.<segment>``
    with the task and segment as labels (the retrain deployment's trigger templates them
    into the run's parameters)."""
    return {"prefect.resource.id": f"journey.segment.{task}.{segment}",
            "prefect.resource.name": f"{task}/{segment}", "journey.task": task, "journey.segment": segment,
            "journey.model": f"{model_name}", "journey.version": str(model_version)}


def _events(r: SegmentMonitorResult) -> list[dict[str, Any]]:
    """The Prefect events of a segment's run (the flow emits them)."""
    resource = segment_resource(r.task, r.segment, r.model_name, r.model_version)
    base = {"task": r.task, "segment": r.segment, "as_of": r.as_of.isoformat(),
            "monitor_run_id": r.monitor_run_id, "report": r.reports.get("drift_html")}
    out = []
    if r.drift and r.drift.get("detected"):
        out.append({"event": DRIFT_EVENT, "resource": resource,
                    "payload": {**base, "share_drifted": r.drift.get("share_drifted"),
                                "drifted_columns": r.drift.get("drifted_columns")}})
    for d in r.decisions:
        if d.kind in EVENTS and (d.executed or d.kind == "retrain"):
            out.append({"event": EVENTS[d.kind], "resource": resource,
                        "payload": {**base, "reasons": d.reasons, "outcome": d.outcome}})
    return store.jsonable(out)


def summary_markdown(result: MonitorRunResult) -> str:
    """A markdown summary of a run: one row per segment, then each decision with its reasons."""
    lines = [f"# Monitoring `{result.task}` as of {result.as_of:%Y-%m-%d %H:%M} UTC", "",
             "| segment | model | drift | performance | decisions | reports |", "|---|---|---|---|---|---|"]
    for s in result.segments:
        d = s.drift or {}
        drift = (share_text(len(d.get('drifted_columns') or []), d.get('tested_columns') or 0)
                 + (" **drift**" if d.get("detected") else "")) if d else "-"
        p = ((s.performance or {}).get("production") or {})
        perf = f"AUC {p['roc_auc']:.3f} on {p['n']}" if p.get("roc_auc") is not None else "-"
        links = " ".join(f"[{k.split('_')[0]}]({Path(v).resolve().as_uri()})" for k, v in s.reports.items()
                         if k.endswith("_html"))
        lines.append(f"| {s.segment} | {s.model_name} v{s.model_version} ({s.model_kind}) | {drift} | {perf} | "
                     f"{', '.join(s.kinds)} | {links} |")
    lines.append("")
    for s in result.segments:
        for k, v in s.reports.items():
            if k.endswith("_error"):
                lines.append(f"- **{s.segment}: {k.split('_')[0]} report without Evidently's sections** — {v}")
        for dec in s.decisions:
            if dec.kind == "ok":
                continue
            lines.append(f"- **{s.segment}: {dec.kind}** — {'; '.join(dec.reasons)}"
                         + (f" → {dec.outcome}" if dec.outcome else ""))
    return "\n".join(lines)


__all__ = ["monitor_task", "default_retrain", "segment_resource", "summary_markdown", "candidate_segments", "load_reference",
           "matured_as_of", "MonitorRunResult", "SegmentMonitorResult", "ExecutedDecision", "RetrainOutcome",
           "MonitorError", "EVENTS", "DRIFT_EVENT"]
