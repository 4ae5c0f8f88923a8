"""The one YAML configuration file: everything non-secret.

Parsed into pydantic models that reject unknown keys; every error names the file and the
key (``config.yaml: sources.2.columns.occured_at: ...``). Without a file, the packaged
``default_config.yaml`` is used, which reads the simulator's exports.
"""

from __future__ import annotations

import re
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


class SimulationConfig(_Strict):
    """Defaults for `journey-ml simulate` (all overridable on the command line)."""

    accounts: int = Field(600, gt=0)
    seed: int = 7
    start: str = "2025-01-01"
    end: str = "2026-06-30"
    drift_from: str | None = None
    dirty_rate: float = Field(0.002, ge=0, le=0.5)


class TaskConfig(_Strict):
    """A prediction task: population as of T, label = outcome within (T, T + horizon]."""

    entity: Literal["contact", "account"] = "account"
    outcome: str
    horizon_days: int = Field(90, gt=0)
    # prospects: an event in the lookback, and never an event of `customer_events` before T;
    # customers: an event of `customer_events` in the lookback and no `outcome` in it
    population: Literal["prospects", "customers"] = "prospects"
    customer_events: list[str] = Field(default_factory=list)
    # only entities with at least one event in this window before T are scored
    lookback_days: int = Field(365, gt=0)
    segment_by: str | None = None
    # training stacks this many as-of dates, this many days apart, ending at the newest
    # date whose horizon has fully matured
    training_as_of_count: int = Field(8, ge=3)
    training_every_days: int = Field(30, gt=0)


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
    calibration: Literal["isotonic", "sigmoid"] = "isotonic"
    xgboost: XGBoostConfig = Field(default_factory=XGBoostConfig)
    # rows of training features kept (in the warehouse) as the drift reference
    reference_sample_rows: int = Field(5000, gt=0)
    max_parallel_segments: int = Field(2, gt=0)


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
    drift_reference: Literal["recent_window", "training_sample"] | None = None
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
    "drift_reference": "recent_window", "estimated_auc_floor": 0.6, "estimated_persistence_runs": 2,
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
    drift_reference: Literal["recent_window", "training_sample"] = "recent_window"
    estimated_auc_floor: float = 0.6
    estimated_persistence_runs: int = 2


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
    # write Evidently's HTML + JSON reports (the slow part of a run); off: the decision, the
    # figures and the stored run are the same, only the report pages are missing
    evidently_reports: bool = True
    # Evidently's sections cover at most this many columns (the drifted ones by model
    # importance first, then the most important others); its cost grows with the columns.
    # Our summary on the page lists every drifted column either way
    report_max_columns: int = Field(40, gt=0)
    # a retrain after a monitoring decision is promoted when it beats production on the newest
    # matured dates ("recent_matured", post-drift where there is any) or on the training
    # holdout ("holdout", the gate before #11)
    retrain_gate: Literal["recent_matured", "holdout"] = "recent_matured"
    seed: int = 7
    defaults: PolicyRules = Field(default_factory=lambda: PolicyRules(**_POLICY_DEFAULTS))
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
    """When `python -m flows.serve` runs one flow (``cron`` None: deployed, run on demand)."""

    cron: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)

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
            if t.outcome not in self.outcomes:
                raise ValueError(f"task {name!r}: outcome {t.outcome!r} is not in outcomes "
                                 f"({', '.join(self.outcomes) or 'none'})")
            if not t.customer_events:
                raise ValueError(f"task {name!r}: customer_events must name the event types "
                                 "that make an entity a customer")
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
