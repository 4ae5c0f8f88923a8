"""The registry interface the rest of journey-ml depends on.

`journey_ml.registry.mlflow_registry.Registry` (MLflow + the warehouse's alias ledger) is
its one production implementation; MLflow's own types never cross this boundary: callers
get `ModelVersionInfo`, `AliasMoveInfo`, `LoadedModel` and plain values.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Engine

from journey_ml.registry._types import (
    AliasMoveInfo,
    GateDecision,
    LoadedModel,
    ModelSummary,
    ModelVersionInfo,
)


@runtime_checkable
class ModelRegistry(Protocol):
    """Versions of ``journey-<task>-<segment>`` models, their aliases and the alias ledger."""

    engine: Engine
    tracking_uri: str

    def log_run(self, run_name: str, *, tags: dict[str, str], params: dict[str, Any],
                metrics: dict[str, float], artifacts: str | Path | None = None,
                artifact_path: str = "report") -> str: ...

    def log_journey_run(self, task: str, segment: str, as_of: datetime, *, metrics: dict[str, float],
                        params: dict[str, Any], files: list[Path]) -> str: ...

    def log_model(self, scorer, *, task: str, segment: str, run_id: str | None = None,
                  feature_set: dict | None = None, metrics: dict[str, float] | None = None,
                  params: dict | None = None, tags: dict[str, str] | None = None,
                  set_staging: bool = True, at: datetime | None = None) -> ModelVersionInfo: ...

    def production(self, task: str, segment: str) -> ModelVersionInfo | None: ...

    def staging(self, task: str, segment: str) -> ModelVersionInfo | None: ...

    def version(self, task: str, segment: str, version: int) -> ModelVersionInfo: ...

    def versions(self, task: str, segment: str) -> list[ModelVersionInfo]: ...

    def find_version(self, task: str, segment: str, tags: dict[str, str | None]) -> ModelVersionInfo | None: ...

    def tag_version(self, name: str, version: int, tags: dict[str, str]) -> None: ...

    def log_version_artifacts(self, name: str, version: int, local_dir: str | Path,
                              artifact_path: str) -> str | None: ...

    def run_metrics(self, run_id: str) -> dict[str, float]: ...

    def history(self, task: str | None = None, segment: str | None = None) -> list[AliasMoveInfo]: ...

    def list_models(self) -> list[ModelSummary]: ...

    def verify(self, task: str, segment: str, version: int) -> ModelVersionInfo: ...

    def load(self, task: str, segment: str, alias: str = ..., *, version: int | None = None) -> LoadedModel: ...

    def evaluate_gate(self, candidate_metric: float, production_metric: float | None, metric: str,
                      margin: float, *, baselines: dict[str, float] | None = None,
                      global_metric: float | None = None, selection: str | None = None) -> GateDecision: ...

    def promote(self, task: str, segment: str, version: int, *, reason: str, run_id: str | None = None,
                action: str = ..., alias: str = ..., actor: str | None = None,
                at: datetime | None = None) -> AliasMoveInfo: ...

    def retire(self, task: str, segment: str, *, reason: str, run_id: str | None = None,
               actor: str | None = None, at: datetime | None = None) -> AliasMoveInfo: ...

    def rollback(self, task: str, segment: str, *, to_version: int | None = None, reason: str = ...,
                 run_id: str | None = None, actor: str | None = None,
                 at: datetime | None = None) -> AliasMoveInfo: ...
