"""Training per segment: time-based splits, calibrated XGBoost, the promotion gate.

``prepare_training`` builds the stacked, labelled feature frame once (as-of dates whose
horizon has matured, oldest first) and splits it by time: the newest ``holdout_as_of_count``
dates are the frozen test holdout, the ones before them the validation set (early stopping
and calibration), the rest the training set. ``train_segment`` trains one segment's model
(or the pooled ``global`` model), logs everything to MLflow, registers the version as
``staging`` and promotes it only if it beats the current production version on the same
holdout, evaluated in the same run.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete

from journey_ml.config import JourneyConfig
from journey_ml.db.models import ReferenceSample
from journey_ml.features import (
    FeatureSet,
    declare_feature_set,
    discover_attributes,
    population_steps,
    split_dates,
    training_dates,
    training_frame,
)
from journey_ml.models.metrics import Metrics, better, evaluate
from journey_ml.models.selection import baselines, cross_validate, fit_candidates, select
from journey_ml.models.xgb import Column
from journey_ml.segments import GLOBAL, assign_segments


class TrainingError(RuntimeError):
    """Training cannot proceed (no data, one class...); the message says why."""


@dataclass
class TrainingData:
    """The stacked feature frame of a task, its segments and its time split."""

    task: str
    as_of: datetime
    dates: list[datetime]
    feature_set: FeatureSet
    frame: pd.DataFrame  # entity_id, as_of, features..., label, segment, split
    segmentation: str | None

    def rows(self, segment: str) -> pd.DataFrame:
        return self.frame if segment == GLOBAL else self.frame[self.frame["segment"] == segment]

    def segments(self) -> list[str]:
        return sorted(self.frame["segment"].dropna().unique().tolist())


@dataclass
class SegmentOutcome:
    """What training did for one segment."""

    task: str
    segment: str
    status: str  # promoted | staged | pooled | unchanged | failed
    reason: str
    model_name: str | None = None
    version: int | None = None
    run_id: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    positives: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    production_version: int | None = None
    production_metrics: dict[str, float] | None = None
    seconds: float = 0.0
    gate_passed: bool | None = None  # whether the candidate passed the promotion gate
    model_kind: str | None = None  # the selected learned model: xgboost | logistic
    selection: str = ""  # which candidate won model selection on validation, and the numbers
    selection_notes: list[str] = field(default_factory=list)  # parameters fitted to size, calibration
    validation: dict[str, float] = field(default_factory=dict)  # candidate -> validation metric
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # baseline -> test metrics
    global_metrics: dict[str, float] | None = None  # the global model on this segment's test rows
    global_serves: bool = False  # the segment's candidate lost to the global model on its rows
    cv: dict[str, float] | None = None  # snapshot tasks: k-fold metrics of the selected kind
    cv_summary: str = ""  # e.g. "5-fold cross-validated roc_auc 0.8412 ± 0.0107 (logistic)"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["metrics"] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.metrics.items()}
        return d


def prepare_training(engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime) -> TrainingData:
    """Build the labelled training frame for ``task_name`` with data up to ``as_of``.

    Raises TrainingError when the data cannot hold the configured as-of dates or has no
    positive (or no negative) label.
    """
    task = config.task(task_name)
    try:
        dates = training_dates(config, task_name, as_of)
    except ValueError as e:
        raise TrainingError(str(e)) from None
    fs = declare_feature_set(config, task, discover_attributes(engine, config, task_name))
    frame = training_frame(engine, config, task_name, dates, feature_set=fs)
    if frame.empty:
        steps = population_steps(engine, config, task_name, dates[-1])
        raise TrainingError(f"task {task_name!r}: no entity in the population at any of "
                            f"{len(dates)} as-of dates ({dates[0]:%Y-%m-%d} .. {dates[-1]:%Y-%m-%d}); as of "
                            f"{dates[-1]:%Y-%m-%d}: " + " -> ".join(f"{s.rule}: {s.entities:,}" for s in steps))
    if frame["label"].nunique() < 2:
        raise TrainingError(f"task {task_name!r}: all {len(frame)} labels are {int(frame['label'].iloc[0])}; "
                            "nothing to learn")
    tcfg = config.training
    try:
        rows = {pd.Timestamp(d).to_pydatetime(): int(n) for d, n in frame["as_of"].value_counts().items()}
        split = split_dates(tcfg, dates, rows)
    except ValueError as e:
        raise TrainingError(f"task {task_name!r}: {e}") from None
    frame["split"] = np.where(frame["as_of"].isin(split.test), "test",
                              np.where(frame["as_of"].isin(split.valid), "valid", "train"))
    _assign(frame, config, task_name)
    return TrainingData(task_name, as_of, dates, fs, frame.reset_index(drop=True), task.segment_by)


def _assign(frame: pd.DataFrame, config: JourneyConfig, task_name: str) -> None:
    """The ``segment`` column of a training frame (``global`` without ``segment_by``)."""
    task = config.task(task_name)
    if task.segment_by:
        seg_cfg = config.segments[task.segment_by]
        if seg_cfg.kind == "clusters":
            raise TrainingError(f"task {task_name!r}: segment_by {task.segment_by!r} is a clusters "
                                "segmentation; models are selected by rules or column segments "
                                "(clusters are for analysis)")
        frame["segment"] = assign_segments(frame, seg_cfg, random_state=config.training.seed).to_numpy()
    else:
        frame["segment"] = GLOBAL


def prepare_snapshot_training(engine: Engine, config: JourneyConfig, task_name: str,
                              as_of: datetime | None = None) -> TrainingData:
    """The labelled frame of a snapshot task: one row per entity with a label, split at
    random, stratified by the label and seeded (``snapshot.holdout_fraction`` test rows,
    ``validation_fraction`` validation rows). ``as_of`` defaults to the snapshot's time (the
    newest update of the entity table). Raises TrainingError when there are no entities,
    no labels or a single class, naming the task and the label column."""
    from sklearn.model_selection import train_test_split

    from journey_ml.features.snapshot import (
        build_snapshot,
        label_key,
        snapshot_as_of,
        snapshot_labels,
    )

    task = config.task(task_name)
    snap = task.snapshot
    key = label_key(config, task_name)
    try:
        t = as_of or snapshot_as_of(engine, config, task_name)
    except ValueError as e:
        raise TrainingError(str(e)) from None
    ff = build_snapshot(engine, config, task_name, t)
    y = snapshot_labels(engine, config, task_name, ff.frame.index)
    known = y.notna()
    if not known.any():
        raise TrainingError(f"task {task_name!r}: no {task.entity} has a value in the label column {key!r} "
                            f"({len(y)} {task.entity}s)")
    frame = ff.frame[known.to_numpy()].copy()
    frame["label"] = y[known].astype("int64").to_numpy()
    if frame["label"].nunique() < 2:
        raise TrainingError(f"task {task_name!r}: all {len(frame)} labels in {key!r} are "
                            f"{int(frame['label'].iloc[0])}; nothing to learn")
    seed = config.training.seed
    idx = np.arange(len(frame))
    lab = frame["label"].to_numpy()
    try:
        dev, test = train_test_split(idx, test_size=snap.holdout_fraction, stratify=lab, random_state=seed)
        train, valid = train_test_split(dev, test_size=snap.validation_fraction / (1 - snap.holdout_fraction),
                                        stratify=lab[dev], random_state=seed)
    except ValueError as e:
        raise TrainingError(f"task {task_name!r}: too few rows to split ({len(frame)} rows, "
                            f"{int(lab.sum())} positive): {e}") from None
    split = np.empty(len(frame), dtype=object)
    split[train], split[valid], split[test] = "train", "valid", "test"
    frame["split"] = split
    frame = frame.reset_index()  # entity_id becomes a column
    frame.insert(1, "as_of", pd.Timestamp(t))
    _assign(frame, config, task_name)
    return TrainingData(task_name, t, [t], ff.feature_set, frame, task.segment_by)


def data_end(engine: Engine) -> datetime:
    """The time of the newest event in the warehouse: the default "as of" of a run.

    Taken from the data, not the clock, so replaying an old export trains and scores as
    of that export. Raises TrainingError on an empty warehouse.
    """
    from sqlalchemy import func, select

    from journey_ml.db.models import Event

    with engine.connect() as conn:
        latest = conn.execute(select(func.max(Event.occurred_at))).scalar_one_or_none()
    if latest is None:
        raise TrainingError("the warehouse has no events yet: run `journey-ml ingest` first")
    if isinstance(latest, str):  # SQLite aggregate results bypass the column type
        latest = datetime.fromisoformat(latest)
    if latest.tzinfo is None:
        from datetime import UTC

        latest = latest.replace(tzinfo=UTC)
    return latest


def recency_weights(as_of: pd.Series, half_life_days: float | None) -> np.ndarray | None:
    """One weight per training row from its as-of date: 1 on the newest date, halving every
    ``half_life_days`` before it (``0.5 ** (age_days / half_life_days)``). None when
    ``half_life_days`` is None (recency weighting off). Raises ValueError for a half-life
    that is not a positive number."""
    if half_life_days is None:
        return None
    if not isinstance(half_life_days, int | float) or not math.isfinite(half_life_days) or half_life_days <= 0:
        raise ValueError(f"training.recency_half_life_days must be a number of days > 0, got {half_life_days!r}")
    t = pd.to_datetime(as_of, utc=True)
    if len(t) == 0:
        return np.zeros(0)
    age = (t.max() - t).dt.total_seconds().to_numpy() / 86_400.0
    return np.power(0.5, age / float(half_life_days))


def _columns(fs: FeatureSet) -> list[Column]:
    return [Column(f.name, f.kind, tuple(f.categories)) for f in fs.features]


FINGERPRINT_TAG = "journey.data_fingerprint"


def training_fingerprint(rows: pd.DataFrame, names: list[str], config: JourneyConfig) -> str:
    """SHA-256 of what a segment's model is trained from: the rows (entity, date, features,
    label, split, in a stable order) and the training settings but the thread count. Equal
    fingerprints mean retraining would fit the same model (training is seeded)."""
    cols = [c for c in ("entity_id", "as_of", *names, "label", "split") if c in rows.columns]
    frame = rows[cols]
    keys = [c for c in ("entity_id", "as_of") if c in cols]
    if keys:
        frame = frame.sort_values(keys, kind="mergesort")
    h = hashlib.sha256()
    h.update(json.dumps(cols).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    # threads change where and how fast it trains, not the model (`execution.model_threads`);
    # an unset recency weighting is left out so fingerprints from before the key stay valid
    exclude: dict = {"xgboost": {"n_jobs"}}
    if config.training.recency_half_life_days is None:
        exclude["recency_half_life_days"] = True
    h.update(config.training.model_dump_json(exclude=exclude).encode())
    return h.hexdigest()


def train_segment(data: TrainingData, segment: str, config: JourneyConfig, registry, engine: Engine,
                  *, actor: str = "journey-ml", promote: bool = True,
                  gate_against_rules: bool = False, at: datetime | None = None) -> SegmentOutcome:
    """Train, log, register and gate the model of one segment (or ``global``).

    A segment below the configured size (rows or positives in any split) is ``pooled``: it
    is scored by the global model and gets no model of its own. Never raises for a
    segment-level problem; the outcome says what happened. With ``promote=False`` a
    candidate that passes the gate stays ``staging`` (tags journey.gate, journey.gate_passed)
    for the caller to promote; with ``gate_against_rules`` a rules production version is
    evaluated on the holdout too (instead of counting as no production model). A version
    trained from the same rows and settings (`training_fingerprint`) is not trained again:
    the outcome is ``unchanged`` and nothing is registered. ``at``: the time the ledger
    records for this call's moves (default now; a replay over history passes its clock).
    """
    t0 = time.perf_counter()
    tcfg = config.training
    rows = data.rows(segment)
    parts = {s: rows[rows["split"] == s] for s in ("train", "valid", "test")}
    out = SegmentOutcome(task=data.task, segment=segment, status="failed", reason="",
                         rows={k: len(v) for k, v in parts.items()},
                         positives={k: int(v["label"].sum()) for k, v in parts.items()})
    small = [k for k in ("train", "valid", "test")
             if out.rows[k] < (tcfg.min_segment_rows if k == "train" else 1)
             or out.positives[k] < (tcfg.min_segment_positives if k == "train" else 1)
             or out.positives[k] == out.rows[k]]
    if small:
        out.status = "pooled" if segment != GLOBAL else "failed"
        out.reason = (f"too little data ({', '.join(f'{k}: {out.rows[k]} rows, {out.positives[k]} positive' for k in small)}; "
                      f"minimum {tcfg.min_segment_rows} rows / {tcfg.min_segment_positives} positives to train)"
                      + ("; uses the global model" if segment != GLOBAL else ""))
        out.seconds = time.perf_counter() - t0
        return out

    names = data.feature_set.names()
    fingerprint = training_fingerprint(rows, names, config)
    same = registry.find_version(data.task, segment, {FINGERPRINT_TAG: fingerprint})
    if same is not None:
        # same rows, labels, split and training settings: the same model again; register nothing
        out.status, out.model_name, out.version = "unchanged", same.name, same.version
        out.reason = f"training data unchanged since v{same.version} (fingerprint {fingerprint[:12]}); nothing registered"
        out.seconds = time.perf_counter() - t0
        return out
    metric = config.registry.promotion_metric
    rules = None
    if data.task in config.rules:
        from journey_ml.models.rules import RulesScorer

        rules = RulesScorer.from_config(config.rules[data.task])
    weights = recency_weights(parts["train"]["as_of"], tcfg.recency_half_life_days)
    cands, notes = fit_candidates(_columns(data.feature_set), parts["train"], parts["valid"],
                                  xgboost=tcfg.xgboost.model_dump(), calibration=tcfg.calibration,
                                  min_isotonic_positives=tcfg.min_isotonic_positives, seed=tcfg.seed, rules=rules,
                                  kinds=tuple(tcfg.candidates), sample_weight=weights)
    if weights is not None:
        notes.append(f"recency weighting: half-life {tcfg.recency_half_life_days:g} days, weights "
                     f"{weights.min():.3f}..{weights.max():.3f} (newest training date 1)")
    try:
        selection = select(cands, parts["valid"], metric, notes)
        learned = select({k: c for k, c in cands.items() if k != "rules"}, parts["valid"], metric)
    except ValueError as e:
        out.reason = f"training failed: {e}"
        out.seconds = time.perf_counter() - t0
        return out
    snap = config.task(data.task).snapshot
    if snap is not None:  # a snapshot task: learned candidates chosen by k-fold metrics on the development rows
        learned = _choose_by_cv(learned, data, parts, snap.cv_folds, metric, config, out)
        if selection.winner != "rules":
            selection.reason = learned.reason
    scorer = learned.scorer
    out.model_kind, out.selection = learned.winner, selection.reason
    out.selection_notes = selection.notes
    out.validation = {k: v for k, v in selection.valid_scores().items()}
    test_X, test_y = parts["test"][names], parts["test"]["label"].to_numpy()
    cand = evaluate(test_y, scorer.predict_proba(test_X))
    valid_m = learned.candidates[learned.winner].valid
    out.metrics = cand.scalars()
    found = baselines(selection, _columns(data.feature_set), parts["train"], parts["test"], seed=tcfg.seed)
    out.baselines = {k: b.metrics.scalars() for k, b in found.items()}

    prod = registry.production(data.task, segment)
    prod_value = None
    if prod is not None and (prod.kind != "rules" or gate_against_rules):
        try:
            loaded = registry.load(data.task, segment, "production")
            pm = evaluate(test_y, loaded.scorer.predict_proba(test_X[loaded.scorer.feature_names]))
            out.production_version, out.production_metrics = prod.version, pm.scalars()
            prod_value = getattr(pm, metric)
        except Exception as e:  # noqa: BLE001 - a broken production model must not block a fix
            out.production_version = prod.version
            out.reason = f"production v{prod.version} could not be evaluated ({type(e).__name__}: {e}); "
    global_value = None
    if segment != GLOBAL:
        global_value = _global_on_segment(registry, data.task, parts["test"], metric, out)

    run_id = _log_run(registry, data, segment, scorer, cand, valid_m, out, config)
    info = registry.log_model(
        scorer, task=data.task, segment=segment, run_id=run_id, feature_set=data.feature_set.to_dict(),
        metrics={**{f"test_{k}": v for k, v in cand.scalars().items() if not math.isnan(v)},
                 **_baseline_metrics(out)},
        params={"kind": learned.winner, "best_iteration": getattr(scorer, "best_iteration_", None),
                "calibration": getattr(scorer, "calibration_", "none (logistic)")},
        tags={"journey.task": data.task, "journey.segment": segment,
              "journey.feature_set_version": data.feature_set.version,
              "journey.data_window": f"{data.dates[0]:%Y-%m-%d}..{data.dates[-1]:%Y-%m-%d}",
              "journey.trained_as_of": data.as_of.isoformat(),
              **_selection_tags(out), FINGERPRINT_TAG: fingerprint}, at=at)
    out.model_name, out.version, out.run_id = info.name, info.version, run_id
    _ensure_rules_version(registry, data, segment, config, parts, run_id)
    _store_reference(engine, info.name, info.version, parts["train"], names, scorer, tcfg.reference_sample_rows, tcfg.seed)

    gate = registry.evaluate_gate(getattr(cand, metric), prod_value, metric, config.registry.promotion_margin,
                                  baselines={k: getattr(b.metrics, metric) for k, b in found.items()},
                                  global_metric=global_value,
                                  selection=None if selection.winner != "rules" else selection.reason)
    out.reason += gate.reason
    out.global_serves = gate.global_serves
    out.gate_passed = gate.promote
    if not promote:
        out.status = "staged"
        registry.tag_version(info.name, info.version, {"journey.gate": gate.reason,
                                                       "journey.gate_passed": str(gate.promote).lower()})
    elif gate.promote:
        registry.promote(data.task, segment, info.version, reason=gate.reason, run_id=run_id, at=at)
        out.status = "promoted"
    else:
        out.status = "staged"
        registry.tag_version(info.name, info.version, {"journey.gate": gate.reason})
        if gate.global_serves and prod is not None and prod.kind != "rules":
            _hand_to_global(registry, data.task, segment, gate.reason, run_id, actor, out, at)
    out.seconds = time.perf_counter() - t0
    return out


def _choose_by_cv(learned, data: TrainingData, parts: dict[str, pd.DataFrame], folds: int, metric: str,
                  config: JourneyConfig, out: SegmentOutcome):
    """The learned candidate with the best k-fold ``metric`` over train + valid rows (a
    snapshot task's development rows): steadier than one validation split on small data.
    Records every kind's cross-validated figures on ``out``; keeps ``learned`` when no
    kind can be cross-validated."""
    from journey_ml.models.selection import Selection

    tcfg = config.training
    dev = pd.concat([parts["train"], parts["valid"]])
    cvs, errors = {}, []
    for kind, c in learned.candidates.items():
        if c.scorer is None:
            continue
        try:
            cvs[kind] = cross_validate(kind, _columns(data.feature_set), dev, folds, metric,
                                       xgboost=tcfg.xgboost.model_dump(), calibration=tcfg.calibration,
                                       min_isotonic_positives=tcfg.min_isotonic_positives, seed=tcfg.seed)
        except ValueError as e:
            errors.append(f"{kind}: {e}")
    if not cvs:
        out.cv_summary = f"no cross-validation ({'; '.join(errors)})"
        return learned
    winner = max(cvs, key=lambda k: (better(metric, cvs[k].mean, 0.0), k == "logistic"))
    cv = cvs[winner]
    out.cv = {"folds": float(cv.folds), f"{metric}_mean": cv.mean, f"{metric}_std": cv.std,
              **{f"{k}_{metric}_mean": v.mean for k, v in cvs.items()}}
    out.cv_summary = "; ".join(v.sentence() for v in cvs.values())
    others = ", ".join(f"{k} {v.mean:.4f}" for k, v in cvs.items() if k != winner)
    reason = (f"{winner} won on {cv.folds}-fold cross-validated {metric} {cv.mean:.4f}"
              + (f" vs {others}" if others else ""))
    return Selection(metric, learned.candidates, winner, reason, learned.notes)


def _global_on_segment(registry, task: str, test: pd.DataFrame, metric: str, out: SegmentOutcome) -> float | None:
    """The global production model's ``metric`` on a segment's test rows (None without one)."""
    info = registry.production(task, GLOBAL)
    if info is None or info.kind == "rules":
        return None
    try:
        loaded = registry.load(task, GLOBAL, "production")
        gm = evaluate(test["label"].to_numpy(), loaded.scorer.predict_proba(test[loaded.scorer.feature_names]))
    except Exception:  # noqa: BLE001 - without a usable global model the segment is judged alone
        return None
    out.global_metrics = gm.scalars()
    return getattr(gm, metric)


def _hand_to_global(registry, task: str, segment: str, reason: str, run_id: str, actor: str,
                    out: SegmentOutcome, at: datetime | None = None) -> None:
    """The segment's candidate lost to the global model on its own rows: the segment's
    production alias is removed (ledger action ``retire``) so the global model serves it."""
    retire = getattr(registry, "retire", None)
    if retire is None:
        return
    move = retire(task, segment, reason=f"global model serves the segment: {reason}", run_id=run_id, actor=actor,
                  at=at)
    out.reason += f"; production v{move.from_version} retired, the global model serves {segment}"


def _baseline_metrics(out: SegmentOutcome) -> dict[str, float]:
    """``baseline_<name>_<metric>`` and ``global_on_segment_<metric>`` for the version."""
    m = {f"baseline_{b}_{k}": v for b, ms in out.baselines.items() for k, v in ms.items()
         if k in ("roc_auc", "pr_auc", "brier", "log_loss") and not math.isnan(v)}
    for k, v in (out.global_metrics or {}).items():
        if k in ("roc_auc", "pr_auc", "brier", "log_loss") and not math.isnan(v):
            m[f"global_on_segment_{k}"] = v
    m.update({f"valid_{metric_kind}": v for metric_kind, v in out.validation.items() if not math.isnan(v)})
    m.update({f"cv_{k}": v for k, v in (out.cv or {}).items()})
    return m


def _selection_tags(out: SegmentOutcome) -> dict[str, str]:
    """What won and why, the baselines' AUC, as version tags (shown by `models` commands)."""
    tags = {"journey.model_kind": out.model_kind or "", "journey.selection": out.selection[:4000],
            "journey.selection_notes": "; ".join(out.selection_notes)[:4000]}
    if out.cv_summary:
        tags["journey.cv"] = out.cv_summary
    if not math.isnan(out.metrics.get("roc_auc", math.nan)):
        tags["journey.test.roc_auc"] = f"{out.metrics['roc_auc']:.4f}"
    for b, ms in out.baselines.items():
        if not math.isnan(ms.get("roc_auc", math.nan)):
            tags[f"journey.baseline.{b}.roc_auc"] = f"{ms['roc_auc']:.4f}"
    if out.global_metrics and not math.isnan(out.global_metrics.get("roc_auc", math.nan)):
        tags["journey.global_on_segment.roc_auc"] = f"{out.global_metrics['roc_auc']:.4f}"
    return tags


def _rules_hash(config: JourneyConfig, task: str) -> str:
    return hashlib.sha256(config.rules[task].model_dump_json().encode()).hexdigest()[:16]


def _ensure_rules_version(registry, data: TrainingData, segment: str, config: JourneyConfig,
                          parts: dict[str, pd.DataFrame], run_id: str) -> None:
    """Register the rule-based scorer as a version of this model when its rules changed."""
    if data.task not in config.rules:
        return
    from journey_ml.models.rules import RulesScorer

    digest = _rules_hash(config, data.task)
    if registry.find_version(data.task, segment, {"journey.rules_hash": digest}) is not None:
        return
    recent = pd.concat([parts["train"], parts["valid"]])
    rules = RulesScorer.from_config(config.rules[data.task])
    try:
        rules.fit(recent, recent["label"])
    except ValueError:
        return  # rules reference features this segment lacks; fallback uses built-in rules
    registry.log_model(rules, task=data.task, segment=segment, run_id=run_id, set_staging=False,
                       tags={"journey.rules_hash": digest, "journey.task": data.task,
                             "journey.segment": segment})


def _store_reference(engine: Engine, model_name: str, version: int, train: pd.DataFrame,
                     names: list[str], scorer, n: int, seed: int) -> None:
    """A seeded sample of training rows as the version's drift reference (in the warehouse)."""
    sample = train.sample(n=min(n, len(train)), random_state=seed) if len(train) else train
    preds = scorer.predict_proba(sample[names]) if len(sample) else []
    feats = json.loads(sample[names].to_json(orient="records", date_format="iso", double_precision=15))
    recs = [{"model_name": model_name, "version": version, "row_id": i, "entity_id": str(eid),
             "as_of": as_of.to_pydatetime() if hasattr(as_of, "to_pydatetime") else as_of,
             "features": f, "label": int(lbl), "prediction": float(p)}
            for i, (eid, as_of, lbl, f, p) in enumerate(zip(sample["entity_id"], sample["as_of"],
                                                            sample["label"], feats, preds, strict=True))]
    with engine.begin() as conn:
        conn.execute(delete(ReferenceSample).where(ReferenceSample.model_name == model_name,
                                                   ReferenceSample.version == version))
        if recs:
            conn.execute(ReferenceSample.__table__.insert(), recs)


def _log_run(registry, data: TrainingData, segment: str, scorer, test: Metrics,
             valid: Metrics, out: SegmentOutcome, config: JourneyConfig) -> str:
    """One MLflow run per segment: params, metrics, data window, plots, feature importance."""
    x = config.training.xgboost
    params = {
        "task": data.task, "segment": segment, "segmentation": data.segmentation or "none",
        "horizon_days": config.tasks[data.task].horizon_days,
        "as_of_dates": ",".join(f"{d:%Y-%m-%d}" for d in data.dates),
        "data_window": f"{data.dates[0]:%Y-%m-%d}..{data.dates[-1]:%Y-%m-%d}",
        "feature_set_version": data.feature_set.version, "n_features": len(data.feature_set.features),
        "calibration": getattr(scorer, "calibration_", "none"), "seed": config.training.seed,
        "model_kind": out.model_kind, "selection": out.selection[:500],
        "best_iteration": getattr(scorer, "best_iteration_", None), **{f"xgb_{k}": v for k, v in x.model_dump().items()},
        **{f"rows_{k}": v for k, v in out.rows.items()}, **{f"positives_{k}": v for k, v in out.positives.items()},
    }
    metrics = {f"test_{k}": v for k, v in test.scalars().items()}
    metrics.update({f"valid_{k}": v for k, v in valid.scalars().items()})
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "calibration_table.json").write_text(json.dumps(test.calibration, indent=1))
        (d / "feature_importance.json").write_text(json.dumps(
            dict(sorted(scorer.importance().items(), key=lambda kv: -kv[1])), indent=1))
        (d / "feature_set.json").write_text(json.dumps(data.feature_set.to_dict(), indent=1))
        # the drift reference rows stay in the warehouse (erasable); MLflow gets statistics only
        train_rows = data.rows(segment).query("split == 'train'")
        if len(train_rows) > 100_000:  # statistics of a seeded sample are plenty
            train_rows = train_rows.sample(n=100_000, random_state=config.training.seed)
        (d / "reference_summary.json").write_text(json.dumps(_summary(train_rows, data.feature_set), indent=1))
        names = data.feature_set.names()
        sample = data.rows(segment)
        sample = sample[sample["split"] == "test"]
        sample = sample.sample(n=min(2000, len(sample)), random_state=config.training.seed)
        _plots(d, scorer, sample[names], test)
        return registry.log_run(f"{data.task}-{segment}", tags={"journey.task": data.task, "journey.segment": segment},
                                params=params, metrics=metrics, artifacts=d, artifact_path="report")


def _summary(train: pd.DataFrame, fs: FeatureSet) -> dict:
    """Per-feature distribution statistics of the training rows (no row-level data)."""
    out: dict[str, dict] = {"rows": len(train), "positive_rate": float(train["label"].mean()) if len(train) else None,
                            "features": {}}
    for f in fs.features:
        s = train[f.name]
        entry: dict = {"kind": f.kind, "null_share": float(s.isna().mean()) if len(s) else None}
        if f.kind == "numeric":
            v = pd.to_numeric(s, errors="coerce").dropna()
            if len(v):
                q = v.quantile([0.05, 0.5, 0.95]).tolist()
                entry.update(mean=float(v.mean()), std=float(v.std()), p05=q[0], p50=q[1], p95=q[2])
        else:
            entry["top"] = {str(k): int(c) for k, c in s.value_counts().head(10).items()}
        out["features"][f.name] = entry
    return out


def _plots(d: Path, scorer, X: pd.DataFrame, test: Metrics) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    contrib = scorer.contributions(X) if len(X) else pd.DataFrame(columns=scorer.feature_names)
    top = contrib.abs().mean().sort_values(ascending=False).head(15)
    fig, ax = plt.subplots(figsize=(8, 6))
    for i, name in enumerate(reversed(top.index.tolist())):
        vals = contrib[name].to_numpy()
        raw = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=float) if name in X else np.zeros(len(vals))
        rank = pd.Series(raw).rank(pct=True).fillna(0.5).to_numpy()
        jitter = (np.random.default_rng(0).random(len(vals)) - 0.5) * 0.3
        ax.scatter(vals, np.full(len(vals), i) + jitter, c=rank, cmap="coolwarm", s=4, alpha=0.6)
    ax.set_yticks(range(len(top)), list(reversed(top.index.tolist())))
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("SHAP value (log-odds contribution); colour: feature value rank")
    ax.set_title("SHAP summary (test holdout sample)")
    fig.tight_layout()
    fig.savefig(d / "shap_summary.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5))
    cal = test.calibration
    ax.plot([0, 1], [0, 1], ls="--", color="grey")
    ax.plot([c["mean_predicted"] for c in cal], [c["observed"] for c in cal], marker="o")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title(f"calibration (test, n={test.n}, Brier {test.brier:.3f})")
    fig.tight_layout()
    fig.savefig(d / "calibration.png", dpi=90)
    plt.close(fig)

    imp = pd.Series(scorer.importance()).sort_values().tail(20)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh(imp.index, imp.to_numpy())
    ax.set_title("feature importance (total gain)")
    fig.tight_layout()
    fig.savefig(d / "feature_importance.png", dpi=90)
    plt.close(fig)


__all__ = ["GLOBAL", "data_end", "TrainingData", "SegmentOutcome", "TrainingError", "prepare_training",
           "prepare_snapshot_training",
           "train_segment", "better"]
