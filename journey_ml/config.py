"""The one YAML configuration file: everything non-secret.

Parsed into pydantic models that reject unknown keys; every error names the file and the
key (``config.yaml: sources.2.columns.occured_at: ...``). Without a file, the packaged
``default_config.yaml`` is used, which reads the simulator's exports.
"""

from __future__ import annotations

import re
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from journey_ml.schemas import CONTRACTS, STAGES, Kind, column_key

DEFAULT_CONFIG_NAME = "default_config.yaml"


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid; the message names file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaxonomyEntry(_Strict):
    channel: str
    stage: str

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, v: str) -> str:
        if v not in STAGES:
            raise ValueError(f"unknown stage {v!r}; expected one of {', '.join(STAGES)}")
        return v


class PiiConfig(_Strict):
    """Source columns that are personal data: hashed (keyed) or dropped before storage."""

    hash: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)

    @field_validator("hash", "drop")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return [column_key(n) for n in v]

    @model_validator(mode="after")
    def _disjoint(self) -> PiiConfig:
        both = set(self.hash) & set(self.drop)
        if both:
            raise ValueError(f"columns both hashed and dropped: {sorted(both)}")
        return self


class SourceConfig(_Strict):
    """One source: a file, a folder or a glob of CSV / Parquet / JSON-lines exports."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Kind
    path: str
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    # contract field -> column name in the export
    columns: dict[str, str] = Field(default_factory=dict)
    # constant values for contract fields the export does not carry (e.g. channel: web)
    defaults: dict[str, Any] = Field(default_factory=dict)
    # timezone assumed for timestamps without an offset (a date alone is local midnight)
    timezone: str = "UTC"
    # how timestamps are written: ISO 8601 text, or numbers of seconds / milliseconds
    # since 1970-01-01 UTC (numbers are rejected unless declared here)
    timestamp_format: Literal["iso", "epoch_s", "epoch_ms"] = "iso"
    # rows without an id that are exact copies of each other: one event ("merge"), or one
    # event per row ("keep": the row's ordinal in its file joins the derived id)
    identical_rows: Literal["merge", "keep"] = "merge"
    pii: PiiConfig = Field(default_factory=PiiConfig)
    # unmapped columns: kept in properties/attributes ("keep") or discarded ("drop")
    extra_columns: Literal["keep", "drop"] = "keep"
    # CSV values that mean "missing"
    null_values: list[str] = Field(default_factory=lambda: ["", "NULL", "null", "NA", "N/A"])
    # values of a boolean column that mean true (case-insensitive)
    true_values: list[str] = Field(default_factory=lambda: ["true", "1", "yes", "y", "t"])

    @field_validator("columns")
    @classmethod
    def _column_names(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: column_key(c) for k, c in v.items()}

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r} (use an IANA name such as "
                             "Europe/Paris or America/New_York)") from None
        return v

    @model_validator(mode="after")
    def _known_fields(self) -> SourceConfig:
        contract = CONTRACTS[self.kind]
        for key in (*self.columns, *self.defaults):
            if key not in contract.names:
                raise ValueError(
                    f"{key!r} is not a field of the {self.kind} contract "
                    f"(fields: {', '.join(contract.names)})"
                )
        return self

    def column_for(self, field: str) -> str:
        """The export's column name for a contract field (the field name when unmapped)."""
        return self.columns.get(field, field)


class IngestConfig(_Strict):
    max_future_skew_minutes: int = Field(60, ge=0)
    # incremental runs re-read files changed within this window before the watermark
    overlap_hours: int = Field(72, ge=0)
    unknown_event_types: Literal["keep", "reject"] = "keep"
    # a run is abandoned (killed) when its holder is gone: on PostgreSQL its session lock,
    # on SQLite its process on this host, or its heartbeat for this long (other hosts)
    stale_run_minutes: int = Field(10, ge=1)
    # PostgreSQL: each batch is split by key hash into this many partitions, each loaded on
    # its own connection (a parallel COPY stream); no two loaders touch the same key.
    # SQLite has one writer and always uses one.
    loaders: int = Field(2, ge=1, le=16)


class SimulationConfig(_Strict):
    """Defaults for `journey-ml simulate` (all overridable on the command line)."""

    accounts: int = Field(600, gt=0)
    seed: int = 7
    start: str = "2025-01-01"
    end: str = "2026-06-30"
    drift_from: str | None = None
    conversion_shift_from: str | None = None  # what converts changes (simulate/_shift.py); null: off
    tracking_outage_from: str | None = None  # web tracking loses most events from this day; null: off
    dirty_rate: float = Field(0.002, ge=0, le=0.5)


class PopulationFilter(_Strict):
    """Keep only the entities whose attributes and segments take one of the listed values
    (every entry must hold). ``attributes``: attribute key -> values (compared as text);
    ``segments``: segmentation name (of ``segments:``) -> segment names."""

    attributes: dict[str, list[str | int | float | bool]] = Field(default_factory=dict)
    segments: dict[str, list[str]] = Field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.attributes or self.segments)


# population rules (see journey_ml.features.population for how each is computed)
POPULATIONS = ("prospects", "customers", "active", "all")


class SnapshotTaskConfig(_Strict):
    """A snapshot task: one row per entity with a label column and no timestamps (a churn
    export). Features come from the entity's attributes (and its events, where any); the
    holdout is a stratified, seeded random split and training reports k-fold metrics."""

    # the attribute (unmapped export column) holding the label; default: the task's outcome
    label: str | None = None
    # label values that mean 1 (case-insensitive; numbers: > 0 is 1)
    positive: list[str] = Field(default_factory=lambda: ["1", "true", "yes", "y", "t"])
    holdout_fraction: float = Field(0.2, gt=0, lt=0.5)
    validation_fraction: float = Field(0.2, gt=0, lt=0.5)
    cv_folds: int = Field(5, ge=2, le=20)


class TaskConfig(_Strict):
    """A prediction task: population as of T, label = outcome within [T, T + horizon)
    (the boundary rule of `journey_ml.features.boundary`)."""

    entity: Literal["contact", "account"] = "account"
    # the outcome (a key of `outcomes`); for a snapshot task, the name of its label column
    outcome: str
    # set for a snapshot task (see SnapshotTaskConfig); event-based otherwise
    snapshot: SnapshotTaskConfig | None = None
    horizon_days: int = Field(90, gt=0)
    # prospects: an event in the lookback, and never an event of `customer_events` before T;
    # customers: an event of `customer_events` in the lookback and no `outcome` in it;
    # active: any event in the lookback (repeat outcomes allowed: repurchase);
    # all: every known entity (in the accounts/contacts table or with an event before T)
    population: Literal["prospects", "customers", "active", "all"] = "prospects"
    # what makes an entity a customer (prospects and customers populations only)
    customer_events: list[str] = Field(default_factory=list)
    population_filter: PopulationFilter = Field(default_factory=PopulationFilter)
    # only entities with at least one event in this window before T are scored
    lookback_days: int = Field(365, gt=0)
    segment_by: str | None = None
    # training stacks this many as-of dates, this many days apart, ending at the newest
    # date whose horizon has fully matured (see journey_ml.features.dates)
    training_as_of_count: int = Field(8, ge=3)
    training_every_days: int = Field(30, gt=0)
    # or calendar dates: weekly (the anchor's weekday, default Monday) or monthly (the
    # anchor's day of the month, default the 1st)
    training_frequency: Literal["days", "weekly", "monthly"] = "days"
    training_anchor: date | None = None
    # or an explicit list of as-of dates (midnight UTC); overrides the three above
    training_dates: list[date] = Field(default_factory=list)


class SegmentRule(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    min: float | None = None  # inclusive
    max: float | None = None  # inclusive


class SegmentationConfig(_Strict):
    """How entities are split into segments, each with its own model."""

    kind: Literal["rules", "column", "clusters"]
    # rules / column: an account or contact column, or `attributes.<name>`
    column: str | None = None
    rules: list[SegmentRule] = Field(default_factory=list)
    default: str = "other"  # segment for entities no rule matches
    # clusters: k-means on these features (default: a behavioural set)
    k: int = Field(3, ge=2, le=12)
    features: list[str] = Field(default_factory=list)
    # clusters: k-means is fitted on at most this many entities (a seeded sample; at 1M
    # entities a full fit costs ~30 s a day), then every entity goes to its nearest centre
    fit_rows: int = Field(100_000, ge=1_000)

    @model_validator(mode="after")
    def _complete(self) -> SegmentationConfig:
        if self.kind in ("rules", "column") and not self.column:
            raise ValueError(f"a {self.kind} segmentation needs `column`")
        if self.kind == "rules" and not self.rules:
            raise ValueError("a rules segmentation needs at least one rule")
        return self


class FeatureConfig(_Strict):
    """What the point-in-time feature builder computes (see journey_ml/features)."""

    windows_days: list[int] = Field(default_factory=lambda: [7, 30, 90])
    # event types that get their own windowed counts and a recency feature
    key_events: list[str] = Field(default_factory=list)
    # buying-committee roles whose engagement and recency are features (accounts)
    key_roles: list[str] = Field(default_factory=list)
    # entity attribute columns used as features: all, none, or a list
    attributes: Literal["all", "none"] | list[str] = "all"
    max_categories: int = Field(20, ge=2)
    # numeric event properties (extra columns of an export, e.g. items): summed over each
    # window and over the lifetime, and averaged over the lifetime
    numeric_properties: list[str] = Field(default_factory=list)


class XGBoostConfig(_Strict):
    n_estimators: int = Field(400, gt=0)
    max_depth: int = Field(4, gt=0)
    learning_rate: float = Field(0.05, gt=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(1.0, ge=0)
    early_stopping_rounds: int = Field(30, gt=0)
    n_jobs: int = Field(2, gt=0)


class TrainingConfig(_Strict):
    seed: int = 7
    # segments smaller than this use the pooled global model
    min_segment_rows: int = Field(400, gt=0)
    min_segment_positives: int = Field(25, gt=0)
    # the latest as-of dates are held out: validation (early stopping, calibration), then test
    validation_as_of_count: int = Field(1, ge=1)
    holdout_as_of_count: int = Field(1, ge=1)
    # instead of the counts: a share of the rows (newest dates first) or explicit dates
    validation: float | list[date] | None = None
    holdout: float | list[date] | None = None

    @field_validator("validation", "holdout")
    @classmethod
    def _share(cls, v: float | list[date] | None) -> float | list[date] | None:
        if isinstance(v, float | int) and not isinstance(v, bool) and not 0 < v < 1:
            raise ValueError(f"a share of the rows must be between 0 and 1 (exclusive), got {v}")
        if isinstance(v, list) and not v:
            raise ValueError("an empty list of dates")
        return v
    calibration: Literal["isotonic", "sigmoid"] = "isotonic"
    # isotonic calibration only with this many validation positives (else Platt scaling)
    min_isotonic_positives: int = Field(200, gt=0)
    # learned candidates of model selection (the best on validation is taken)
    candidates: list[Literal["xgboost", "logistic"]] = Field(default_factory=lambda: ["xgboost", "logistic"],
                                                             min_length=1)
    xgboost: XGBoostConfig = Field(default_factory=XGBoostConfig)
    # rows of training features kept (in the warehouse) as the drift reference
    reference_sample_rows: int = Field(5000, gt=0)
    max_parallel_segments: int = Field(2, gt=0)
    # recency weighting: a training row this many days older than the newest training date
    # weighs half as much (None: every date weighs the same)
    recency_half_life_days: float | None = Field(None, gt=0)


class ExecutionConfig(_Strict):
    """Where a job's independent pieces (segments to train, partitions to score) run.

    ``thread``: a thread pool in the flow's process (``training.max_parallel_segments``
    at once). ``dask``: Prefect tasks on Dask (prefect-dask): the scheduler at ``address``,
    or a LocalCluster of ``n_workers`` x ``threads_per_worker`` started for the flow run.
    See `journey_ml.execution`.
    """

    runner: Literal["thread", "dask"] = "thread"
    address: str | None = None
    n_workers: int = Field(2, gt=0)
    threads_per_worker: int = Field(1, gt=0)
    processes: bool = True
    # batch scoring splits each task's population into this many partitions (by entity
    # hash); default 1 on the thread runner, one per worker thread on dask
    scoring_partitions: int | None = Field(None, gt=0)
    # a segment with at least this many training rows trains with xgboost.dask across the
    # cluster (dask runner only); default: never
    distributed_training_rows: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> ExecutionConfig:
        # set to something other than its default (a dumped and re-parsed config names them all)
        changed = {n for n in self.model_fields_set
                   if getattr(self, n) != type(self).model_fields[n].default}
        local = {"n_workers", "threads_per_worker", "processes"} & changed
        if self.runner == "thread":
            dask_only = sorted(({"address", "distributed_training_rows"} | local) & changed)
            if dask_only:
                raise ValueError(f"{', '.join(dask_only)}: only with runner: dask (runner is thread)")
        if self.address is not None:
            if not re.fullmatch(r"(tcp|tls|ucx|inproc)://\S+", self.address):
                raise ValueError(f"address {self.address!r}: expected a Dask scheduler address "
                                 "such as tcp://scheduler:8786 (or tls://...)")
            if local:
                raise ValueError(f"{', '.join(sorted(local))}: only for a local cluster; with an address "
                                 "the cluster's own workers are used")
        return self


class RegistryConfig(_Strict):
    experiment: str = "journey-ml"
    promotion_metric: Literal["roc_auc", "pr_auc", "log_loss", "brier"] = "roc_auc"
    # a candidate must beat production by at least this much on the same holdout; > 0, so
    # a tie (a retrain on unchanged data) is never promoted
    promotion_margin: float = Field(0.005, gt=0)


class RulesConfig(_Strict):
    """Rule-based scorer for a task: points per feature (value > 0 earns the points)."""

    points: dict[str, float]
    # points above this value count fully (saturation)
    cap: float | None = None


class Band(_Strict):
    name: str
    min: float = Field(ge=0, le=1)  # probability at or above which a score is in this band


class PlayRule(_Strict):
    """One next-best action: the first rule whose conditions all hold wins.

    Conditions left empty always hold. ``reasons`` matches when any of the score's top
    reasons is one of these features; ``missing_roles`` when any of these committee roles
    has not engaged (account scores); ``min_features`` when every feature is >= its value,
    ``max_features`` when every feature is <= its value (a missing value fails both).
    """

    task: str
    action: str
    bands: list[str] = Field(default_factory=list)
    stages: list[str] = Field(default_factory=list)  # furthest journey stage reached
    segments: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    missing_roles: list[str] = Field(default_factory=list)
    min_features: dict[str, float] = Field(default_factory=dict)
    max_features: dict[str, float] = Field(default_factory=dict)


class ScoringConfig(_Strict):
    bands: list[Band] = Field(default_factory=lambda: [Band(name="high", min=0.5), Band(name="medium", min=0.2),
                                                       Band(name="low", min=0.0)])
    top_reasons: int = Field(3, ge=1, le=10)
    # share of entities, per action, that receive no action (seeded), to measure lift later
    holdout_share: float = Field(0.1, ge=0, lt=1)
    holdout_seed: int = 7
    # feature name (or a pattern with * ) -> sentence; {value} is the feature's value
    reason_templates: dict[str, str] = Field(default_factory=dict)
    playbook: list[PlayRule] = Field(default_factory=list)
    # task -> action when no playbook rule matches
    default_actions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bands(self) -> ScoringConfig:
        if not self.bands or min(b.min for b in self.bands) != 0:
            raise ValueError("bands must include one starting at min: 0")
        return self


class PolicyRules(_Strict):
    """Monitoring thresholds and actions of a task or a segment (every field optional).

    Unset fields inherit: segment override -> task policy -> ``monitoring.defaults``.
    """

    # data drift: share of feature columns drifted that counts as dataset drift
    drift_share: float | None = Field(None, gt=0, le=1)
    # columns whose drift alone counts as dataset drift
    critical_columns: list[str] | None = None
    # also judge the score distribution and the ranking of mean |SHAP| per feature
    prediction_drift: bool | None = None
    explanation_drift: bool | None = None
    # explanation drift: Spearman rank correlation of mean |SHAP| below this is drift
    min_rank_correlation: float | None = Field(None, ge=-1, le=1)
    explanation_top_k: int | None = Field(None, gt=0)
    # performance on matured labels: below either floor -> fall back to rules and retrain
    accuracy_floor: float | None = Field(None, ge=0, le=1)
    auc_floor: float | None = Field(None, ge=0, le=1)
    # minimum samples: rows for drift, matured labels and positives for performance
    min_drift_rows: int | None = Field(None, gt=0)
    min_labels: int | None = Field(None, gt=0)
    min_positives: int | None = Field(None, gt=0)
    # days between automatic actions (retrain, fallback) of one segment
    cooldown_days: float | None = Field(None, ge=0)
    # hysteresis: drift must be seen in this many consecutive runs before a retrain
    drift_persistence_runs: int | None = Field(None, ge=1)
    # hysteresis: the fallback is released only by a model whose holdout AUC is at least
    # auc_floor + recovery_margin (and that beats the rules model on the same holdout)
    recovery_margin: float | None = Field(None, ge=0, le=1)
    # a version promoted within this many days is compared with its predecessor on the
    # matured labels; worse by more than rollback_margin (AUC) -> roll back
    rollback_window_days: float | None = Field(None, ge=0)
    rollback_margin: float | None = Field(None, ge=0, le=1)
    # what counts as feature drift: "weighted" (the production model's feature importance of
    # the drifted columns reaches weighted_drift_share) or "share" (the share of drifted
    # columns reaches drift_share, every column weighing the same: the rule before #11)
    drift_rule: Literal["weighted", "share"] | None = None
    weighted_drift_share: float | None = Field(None, gt=0, le=1)
    # effect-size floor: a column (and the score distribution) counts as drifted only when its
    # test fires and its effect reaches this (Wasserstein distance normed by the reference std
    # for numbers, Jensen-Shannon distance for categories), so a tiny but significant shift
    # on a large sample does not count
    min_effect: float | None = Field(None, ge=0)
    # the drift reference: the features of the newest date of the production version's
    # training window ("recent_window"), or the sample of pooled training rows kept at
    # training ("training_sample", the reference before #11)
    drift_reference: Literal["previous_run", "training_population", "recent_window", "training_sample"] | None = None
    # previous_run: the newest monitoring run at least this many days before T (so a step change
    # is compared with a population from before it, while the slow ageing of a population between
    # two runs does not pile up as it does against a fixed training reference)
    drift_reference_lag_days: float | None = Field(None, ge=0)
    # performance estimated from calibrated probabilities before labels mature (CBPE): an
    # estimated ROC AUC below this floor in this many consecutive runs -> fall back to rules
    estimated_auc_floor: float | None = Field(None, ge=0, le=1)
    estimated_persistence_runs: int | None = Field(None, ge=1)


class TaskPolicy(PolicyRules):
    """A task's monitoring policy, with per-segment overrides."""

    segments: dict[str, PolicyRules] = Field(default_factory=dict)


_POLICY_DEFAULTS = {
    "drift_share": 0.3, "critical_columns": [], "prediction_drift": True, "explanation_drift": True,
    "min_rank_correlation": 0.6, "explanation_top_k": 10, "accuracy_floor": 0.6, "auc_floor": 0.6,
    "min_drift_rows": 100, "min_labels": 200, "min_positives": 10, "cooldown_days": 7.0,
    "drift_persistence_runs": 2, "recovery_margin": 0.05, "rollback_window_days": 120.0,
    "rollback_margin": 0.02, "drift_rule": "weighted", "weighted_drift_share": 0.3, "min_effect": 0.1,
    "drift_reference": "previous_run", "drift_reference_lag_days": 28.0, "estimated_auc_floor": 0.6, "estimated_persistence_runs": 2,
}


class SegmentPolicy(_Strict):
    """The fully resolved policy of one task's segment (what `monitoring.policy.decide` reads)."""

    drift_share: float
    critical_columns: list[str]
    prediction_drift: bool
    explanation_drift: bool
    min_rank_correlation: float
    explanation_top_k: int
    accuracy_floor: float
    auc_floor: float
    min_drift_rows: int
    min_labels: int
    min_positives: int
    cooldown_days: float
    drift_persistence_runs: int
    recovery_margin: float
    rollback_window_days: float
    rollback_margin: float
    drift_rule: Literal["weighted", "share"] = "weighted"
    weighted_drift_share: float = 0.3
    min_effect: float = 0.1
    drift_reference: Literal["previous_run", "training_population", "recent_window", "training_sample"] = "previous_run"
    drift_reference_lag_days: float = 28.0
    estimated_auc_floor: float = 0.6
    estimated_persistence_runs: int = 2


class JourneysConfig(_Strict):
    """Journey mapping (see journey_ml/journeys): sessions, friction, attribution, lift."""

    # the level the map, paths and friction use; attribution uses `attribution_level`
    level: Literal["event_type", "channel", "stage"] = "stage"
    attribution_level: Literal["event_type", "channel"] = "channel"
    # a silence this long (days) ends a journey; an outcome event always ends it
    gap_days: float = Field(30.0, gt=0)
    lookback_days: int = Field(365, gt=0)
    # events the company does to people rather than steps they take (not journey steps)
    exclude_event_types: list[str] = Field(default_factory=lambda: ["email_sent"])
    collapse_repeats: bool = True
    # the last N steps of a journey are kept (older steps are dropped)
    max_steps: int = Field(50, ge=2)
    top_paths: int = Field(10, ge=1)
    step_matrix_steps: int = Field(10, ge=1)
    half_life_days: float = Field(7.0, gt=0)
    # position-based attribution: share of the first and the last touch (the rest: the middle)
    position_first: float = Field(0.4, ge=0, le=1)
    position_last: float = Field(0.4, ge=0, le=1)
    markov_orders: list[int] = Field(default_factory=lambda: [1, 2, 3])
    bootstrap: int = Field(100, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 7
    # next-step prediction: Markov order and the share of journeys held out for its accuracy
    next_order: int = Field(2, ge=0, le=5)
    next_holdout_share: float = Field(0.2, gt=0, lt=1)
    # lift: below this many entities in either arm, no lift is claimed
    lift_min_n: int = Field(100, ge=1)

    @field_validator("markov_orders")
    @classmethod
    def _orders(cls, v: list[int]) -> list[int]:
        bad = [o for o in v if not 1 <= o <= 3]
        if bad or not v:
            raise ValueError(f"markov orders must be 1, 2 or 3 (got {v})")
        return sorted(set(v))

    @model_validator(mode="after")
    def _position(self) -> JourneysConfig:
        if self.position_first + self.position_last > 1:
            raise ValueError("position_first + position_last must be at most 1")
        return self


class MonitoringConfig(_Strict):
    """Monitoring: drift and performance reports, the policy that acts on them, alerts."""

    # where HTML/JSON reports are written ({home} is JOURNEY_HOME)
    reports_dir: str = "{home}/reports"
    # Apprise URLs (slack://, msteams://, mailto://, json://...); file:///path.jsonl appends
    # one JSON line per alert (the default, for the demo and tests)
    alerts: list[str] = Field(default_factory=lambda: ["file://{home}/alerts.jsonl"])
    # retraining requested by a decision: run it inside the monitoring run ("inline"), or
    # only emit the event for a deployment triggered by it ("event"; needs a Prefect server)
    retrain: Literal["inline", "event"] = "inline"
    # rows sampled (seeded) from reference and current for the drift tests
    sample_rows: int = Field(20_000, gt=0)
    # the report pages (our summary + Evidently's sections, HTML + JSON; the slow part of a run):
    # "on_decision": for a segment whose run decides anything but ok, or whose previous run did
    # (the recovery), i.e. the pages an alert links to; "always": every run; "never" (or false).
    # The decision, the figures and the stored run are the same either way
    evidently_reports: Literal["always", "on_decision", "never"] = "on_decision"
    # Evidently's sections cover at most this many columns (the drifted ones by model
    # importance first, then the most important others); its cost grows with the columns.
    # Our summary on the page lists every drifted column either way
    report_max_columns: int = Field(20, gt=0)
    # a retrain after a monitoring decision is promoted when it beats production on the newest
    # matured dates ("recent_matured", post-drift where there is any) or on the training
    # holdout ("holdout", the gate before #11)
    retrain_gate: Literal["recent_matured", "holdout"] = "recent_matured"
    seed: int = 7
    defaults: PolicyRules = Field(default_factory=lambda: PolicyRules(**_POLICY_DEFAULTS))

    @field_validator("evidently_reports", mode="before")
    @classmethod
    def _reports_flag(cls, v: Any) -> Any:
        return {True: "always", False: "never"}.get(v, v) if isinstance(v, bool) else v
    tasks: dict[str, TaskPolicy] = Field(default_factory=dict)

    def policy(self, task: str, segment: str) -> SegmentPolicy:
        """The resolved policy of ``task``'s ``segment``: segment override, task, defaults."""
        layers = [PolicyRules(**_POLICY_DEFAULTS), self.defaults]
        tp = self.tasks.get(task)
        if tp is not None:
            layers.append(tp)
            if segment in tp.segments:
                layers.append(tp.segments[segment])
        values: dict[str, Any] = {}
        for layer in layers:
            values.update({k: getattr(layer, k) for k in PolicyRules.model_fields
                           if getattr(layer, k) is not None})
        return SegmentPolicy(**values)

    def resolve_dir(self, home: Path) -> Path:
        """The reports folder with ``{home}`` filled in, absolute (reports are linked as file URIs)."""
        return Path(self.reports_dir.format(home=str(home))).resolve()

    def alert_urls(self, home: Path) -> list[str]:
        """The alert URLs with ``{home}`` filled in (file URLs made absolute)."""
        out = []
        for url in self.alerts:
            url = url.replace("{home}", str(home.resolve()) if url.startswith("file://") else str(home))
            out.append(url)
        return out


_CRON = re.compile(r"^\S+(\s+\S+){4,5}$")


class FlowSchedule(_Strict):
    """When `python -m flows.serve` runs one flow: a ``cron`` expression or every
    ``interval_seconds`` (neither: deployed, run on demand)."""

    cron: str | None = None
    interval_seconds: int | None = Field(None, gt=0)
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> FlowSchedule:
        if self.cron is not None and self.interval_seconds is not None:
            raise ValueError("give either cron or interval_seconds, not both")
        return self

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None and not _CRON.match(v.strip()):
            raise ValueError(f"{v!r} is not a cron expression (5 fields: minute hour day month weekday)")
        return v


class SchedulesConfig(_Strict):
    """Schedules of the Prefect deployments (flow name -> cron), in ``timezone``."""

    timezone: str = "UTC"
    flows: dict[str, FlowSchedule] = Field(default_factory=dict)
    # journey-retrain runs once per segment per cooldown: a repeated
    # journey.retrain.requested for the same segment within it starts no run (0: every event)
    retrain_cooldown_minutes: int = Field(360, ge=0)


class JourneyConfig(_Strict):
    """The whole configuration file."""

    version: Literal[1] = 1
    data_dir: str = "{home}/exports"
    taxonomy: dict[str, TaxonomyEntry] = Field(default_factory=dict)
    outcomes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="outcome name -> event types that mean it happened",
    )
    pii: PiiConfig = Field(default_factory=PiiConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    tasks: dict[str, TaskConfig] = Field(default_factory=dict)
    segments: dict[str, SegmentationConfig] = Field(default_factory=dict)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    rules: dict[str, RulesConfig] = Field(default_factory=dict)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    schedules: SchedulesConfig = Field(default_factory=SchedulesConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    journeys: JourneysConfig = Field(default_factory=JourneysConfig)

    @model_validator(mode="after")
    def _unique_sources(self) -> JourneyConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}")
        return self

    @model_validator(mode="after")
    def _references(self) -> JourneyConfig:
        for name, t in self.tasks.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"task name {name!r}: lower-case letters, digits and _ only")
            if t.snapshot is not None:
                if t.segment_by is not None and t.segment_by not in self.segments:
                    raise ValueError(f"task {name!r}: segment_by {t.segment_by!r} is not a segmentation")
                continue
            if t.outcome not in self.outcomes:
                raise ValueError(f"task {name!r}: outcome {t.outcome!r} is not in outcomes "
                                 f"({', '.join(self.outcomes) or 'none'})")
            if not t.customer_events and t.population in ("prospects", "customers"):
                raise ValueError(f"task {name!r}: customer_events must name the event types "
                                 f"that make an entity a customer (population {t.population!r})")
            for seg in t.population_filter.segments:
                if seg not in self.segments:
                    raise ValueError(f"task {name!r}: population_filter.segments: {seg!r} is not in "
                                     f"segments ({', '.join(self.segments) or 'none'})")
            if t.segment_by is not None and t.segment_by not in self.segments:
                raise ValueError(f"task {name!r}: segment_by {t.segment_by!r} is not in segments "
                                 f"({', '.join(self.segments) or 'none'})")
        for name in self.rules:
            if name not in self.tasks:
                raise ValueError(f"rules for unknown task {name!r}")
        for i, rule in enumerate(self.scoring.playbook):
            if rule.task not in self.tasks:
                raise ValueError(f"scoring.playbook.{i}: unknown task {rule.task!r}")
        for name in self.monitoring.tasks:
            if name not in self.tasks:
                raise ValueError(f"monitoring.tasks.{name}: unknown task {name!r} "
                                 f"(configured: {', '.join(self.tasks) or 'none'})")
        return self

    def unknown_event_types(self, seen: set[str] | None = None) -> list[str]:
        """Warnings, one per task and event type named in its ``customer_events`` or its
        outcome's event types that is neither in the taxonomy nor in ``seen`` (the event
        types in the data; None: not checked against the data). Such a name matches
        nothing, so a population or a label silently comes out empty."""
        known = set(self.taxonomy) | (seen or set())
        where = ("found in neither the taxonomy nor the data" if seen is not None
                 else "not in the taxonomy (the data was not checked)")
        out = []
        for name, t in self.tasks.items():
            named = [("customer_events", e) for e in t.customer_events]
            named += [(f"outcomes.{t.outcome}", e) for e in self.outcomes.get(t.outcome, [])]
            for key, e in named:
                if e not in known:
                    out.append(f"tasks.{name}: {key} names event type {e!r}, {where}: it matches nothing")
        return out

    def task(self, name: str) -> TaskConfig:
        """The task called ``name``; raises ConfigError naming the known tasks."""
        if name not in self.tasks:
            raise ConfigError(f"unknown task {name!r} (configured: {', '.join(self.tasks) or 'none'})")
        return self.tasks[name]

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``; raises ConfigError naming the known sources."""
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"unknown source {name!r} (configured: {known})")

    def resolve_data_dir(self, home: Path, base: Path | None = None) -> Path:
        """Where relative source paths point: ``data_dir`` with ``{home}`` filled in."""
        d = Path(self.data_dir.format(home=str(home)))
        if not d.is_absolute() and base is not None:
            d = base / d
        return d


def _format_error(path: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, origin: str = "<config>") -> JourneyConfig:
    """Validate an already-parsed YAML document; errors name ``origin`` and the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return JourneyConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(origin, e)) from None


def load_config(path: Path | str | None = None) -> tuple[JourneyConfig, Path | None]:
    """Load and validate the YAML configuration.

    Returns the config and the folder relative paths resolve against (None for the
    packaged default). Raises ConfigError naming the file and key on any problem.
    """
    if path is None:
        text = resources.files("journey_ml").joinpath(DEFAULT_CONFIG_NAME).read_text("utf-8")
        return parse_config(yaml.safe_load(text), f"<packaged {DEFAULT_CONFIG_NAME}>"), None
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: configuration file not found")
    try:
        data = yaml.safe_load(p.read_text("utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return parse_config(data, str(p)), p.parent.resolve()
