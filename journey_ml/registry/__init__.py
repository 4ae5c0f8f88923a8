"""The model registry layer: MLflow registered models (aliases only) plus the alias ledger.

``Registry`` (in :mod:`journey_ml.registry.mlflow_registry`) is imported lazily so that
importing this package (names, types, the ledger) does not import MLflow.
"""

from __future__ import annotations

from journey_ml.registry._gate import evaluate_gate
from journey_ml.registry._types import (
    PRODUCTION,
    STAGING,
    AliasMoveInfo,
    CorruptModel,
    GateDecision,
    LoadedModel,
    ModelNotFound,
    ModelSummary,
    ModelVersionInfo,
    NoChange,
    NothingToRollBack,
    RegistryError,
    model_name,
    split_model_name,
)
from journey_ml.registry.protocol import ModelRegistry


def __getattr__(name: str):
    if name in ("Registry", "tree_digest"):
        from journey_ml.registry import mlflow_registry

        return getattr(mlflow_registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Registry", "ModelRegistry", "tree_digest", "evaluate_gate", "model_name", "split_model_name",
           "PRODUCTION", "STAGING", "RegistryError", "ModelNotFound", "CorruptModel",
           "NothingToRollBack", "NoChange", "ModelVersionInfo", "AliasMoveInfo", "GateDecision",
           "ModelSummary", "LoadedModel"]
