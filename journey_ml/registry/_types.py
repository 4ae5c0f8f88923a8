"""Typed results and errors of the model registry layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

PRODUCTION = "production"
STAGING = "staging"
MODEL_PREFIX = "journey-"


def model_name(task: str, segment: str) -> str:
    """The registered model name of a task's segment model (segment "global" = pooled model)."""
    if not task or "-" in task:
        raise ValueError(f"invalid task name {task!r}: no hyphens allowed")
    if not segment or "-" in segment:
        raise ValueError(f"invalid segment name {segment!r}: no hyphens allowed")
    return f"{MODEL_PREFIX}{task}-{segment}"


def split_model_name(name: str) -> tuple[str | None, str | None]:
    """(task, segment) of a ``journey-<task>-<segment>`` name; (None, None) for other names."""
    if not name.startswith(MODEL_PREFIX):
        return None, None
    parts = name[len(MODEL_PREFIX):].split("-")
    if len(parts) != 2 or not all(parts):
        return None, None
    return parts[0], parts[1]


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()}


class RegistryError(Exception):
    """A registry operation a user can act on; the message says what and why."""


class ModelNotFound(RegistryError, LookupError):
    """No such registered model, version or alias."""

    def __init__(self, message: str, name: str | None = None, version: int | None = None,
                 alias: str | None = None):
        super().__init__(message)
        self.name, self.version, self.alias = name, version, alias


class CorruptModel(RegistryError):
    """A version's artifacts do not match the digest recorded when it was logged."""

    def __init__(self, name: str, version: int, detail: str = ""):
        msg = f"model {name} version {version} is corrupt: its artifacts do not match the recorded digest"
        super().__init__(msg + (f" ({detail})" if detail else ""))
        self.name, self.version = name, version


class NothingToRollBack(RegistryError, ValueError):
    """The alias has no earlier version to go back to."""


class NoChange(RegistryError):
    """The alias already points at the requested version: nothing was moved or recorded."""

    def __init__(self, name: str, alias: str, version: int):
        super().__init__(f"{name}@{alias} is already v{version}: nothing changed (no ledger row written)")
        self.name, self.alias, self.version = name, alias, version


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version, as journey-ml sees it."""

    name: str
    version: int
    run_id: str | None
    kind: str | None  # "xgboost" | "rules" (the scorer's kind)
    digest: str | None  # SHA-256 of the model's artifact files (tag journey.digest)
    aliases: list[str]
    created_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    source: str | None = None

    @property
    def task(self) -> str | None:
        return split_model_name(self.name)[0]

    @property
    def segment(self) -> str | None:
        return split_model_name(self.name)[1]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class AliasMoveInfo:
    """One row of the alias ledger: an alias moved from one version to another."""

    id: int | None
    model_name: str
    alias: str
    from_version: int | None
    to_version: int | None
    action: str  # promote | rollback | fallback | restore | stage
    reason: str
    actor: str
    run_id: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate replaces production, and why (the numbers)."""

    promote: bool
    reason: str
    global_serves: bool = False  # a segment candidate lost to the global model on its rows


@dataclass(frozen=True)
class ModelSummary:
    """A registered model at a glance."""

    name: str
    task: str | None
    segment: str | None
    versions: list[int]
    production_version: int | None
    production_since: datetime | None
    staging_version: int | None
    kinds: dict[int, str]  # version -> scorer kind
    # version -> holdout AUC of the model ("model") and of its baselines, as recorded at training
    holdout_auc: dict[int, dict[str, str]] = field(default_factory=dict)

    @property
    def production_kind(self) -> str | None:
        return self.kinds.get(self.production_version) if self.production_version else None

    def to_dict(self) -> dict[str, Any]:
        d = _jsonable(asdict(self))
        d["kinds"] = {str(k): v for k, v in self.kinds.items()}
        d["holdout_auc"] = {str(k): v for k, v in self.holdout_auc.items()}
        d["production_kind"] = self.production_kind
        return d


@dataclass
class LoadedModel:
    """A verified, loaded model version: the pyfunc model, its scorer and version info."""

    pyfunc: Any  # mlflow.pyfunc.PyFuncModel
    scorer: Any  # journey_ml.models.scorer.Scorer
    info: ModelVersionInfo

    def predict_proba(self, X) -> Any:
        """P(outcome) per row straight from the scorer (integer columns welcome)."""
        from journey_ml.models.scorer import check_input

        return self.scorer.predict_proba(check_input(self.scorer, X))


__all__ = ["PRODUCTION", "STAGING", "model_name", "split_model_name", "RegistryError",
           "ModelNotFound", "CorruptModel", "NothingToRollBack", "ModelVersionInfo",
           "AliasMoveInfo", "GateDecision", "ModelSummary", "LoadedModel"]
