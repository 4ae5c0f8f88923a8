"""The MLflow pyfunc wrapper: any Scorer, served through one model URI form.

The scorer itself is stored with joblib as the artifact ``scorer.joblib`` (plus
``feature_set.json`` when given). The pickled ``JourneyPyfunc`` holds no state (its class is
pickled by reference), so ``python_model.pkl`` is a few hundred bytes and every scorer kind
loads through ``models:/journey-<task>-<segment>@production``.

Not an MLflow "model from code": loading one runs its code file through a process-wide global
(``mlflow.models.model.__mlflow_model__``), which two threads loading models at once race on,
and leaves a module in ``sys.modules`` per load.

The pieces of an MLflow model are built here without touching MLflow's global state:
``save_pyfunc`` writes the model folder (explicit pinned requirements, a signature from the
scorer's features, a synthetic input example) and the registry adapter uploads it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import Model, ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from journey_ml.models.scorer import CATEGORICAL, check_input, feature_specs

SCORER_ARTIFACT = "scorer.joblib"
FEATURE_SET_ARTIFACT = "feature_set.json"
# distributions pinned in every model's requirements (installed versions, no inference)
PINNED_DISTRIBUTIONS = ("mlflow", "xgboost", "scikit-learn", "pandas", "numpy", "journey-ml")


class _DropPickleNotice(logging.Filter):
    """MLflow logs a warning for every pickled python_model; ours pickles a bare class reference."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Passing a Python object as `python_model`")


logging.getLogger("mlflow.pyfunc").addFilter(_DropPickleNotice())


class JourneyPyfunc(mlflow.pyfunc.PythonModel):
    """Serves a journey-ml Scorer: ``predict`` returns P(outcome) per row as a numpy array."""

    def __init__(self) -> None:
        self._scorer = None
        self.feature_set: dict | None = None

    def __getstate__(self) -> dict:
        # the scorer lives in its own artifact; never pickle it into python_model.pkl
        return {**self.__dict__, "_scorer": None, "feature_set": None}

    def load_context(self, context) -> None:
        self._scorer = joblib.load(context.artifacts["scorer"])
        fs = context.artifacts.get("feature_set")
        self.feature_set = json.loads(Path(fs).read_text("utf-8")) if fs else None

    @property
    def scorer(self):
        if self._scorer is None:
            raise RuntimeError("the model's context is not loaded (load it with mlflow.pyfunc.load_model)")
        return self._scorer

    def predict(self, context, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> np.ndarray:
        X = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return np.asarray(self.scorer.predict_proba(check_input(self.scorer, X)), dtype=float)


def unwrap_scorer(pyfunc_model):
    """The Scorer inside a loaded pyfunc model (or a JourneyPyfunc)."""
    inner = pyfunc_model if isinstance(pyfunc_model, JourneyPyfunc) else pyfunc_model.unwrap_python_model()
    if not isinstance(inner, JourneyPyfunc):
        raise TypeError(f"not a journey-ml model: its python model is a {type(inner).__name__}")
    return inner.scorer


def pinned_requirements() -> list[str]:
    """``name==version`` of the installed distributions a model needs to load."""
    reqs = []
    for dist in PINNED_DISTRIBUTIONS:
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs


def signature_for(scorer) -> ModelSignature:
    """Inputs: one double column per numeric feature, a string column per categorical one;
    output: the probability per row."""
    cols = [ColSpec("string" if s.kind == CATEGORICAL else "double", s.name)
            for s in feature_specs(scorer)]
    return ModelSignature(inputs=Schema(cols),
                          outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]))


def synthetic_input_example(scorer) -> pd.DataFrame:
    """One made-up row (zeros; the first known category): never a customer's data."""
    row: dict[str, Any] = {}
    for s in feature_specs(scorer):
        if s.kind == CATEGORICAL:
            row[s.name] = s.categories[0] if s.categories else "other"
        else:
            row[s.name] = 0.0
    return pd.DataFrame([row], columns=[s.name for s in feature_specs(scorer)])


def save_pyfunc(scorer, path: str | Path, *, feature_set: dict | None = None,
                signature: ModelSignature | None = None, mlflow_model: Model | None = None,
                pip_requirements: list[str] | None = None) -> Path:
    """Write the MLflow model folder of ``scorer`` at ``path`` (which must not exist)."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="journey-scorer-") as tmp:
        scorer_file = Path(tmp) / SCORER_ARTIFACT
        joblib.dump(scorer, scorer_file)
        artifacts = {"scorer": str(scorer_file)}
        if feature_set is not None:
            fs_file = Path(tmp) / FEATURE_SET_ARTIFACT
            fs_file.write_text(json.dumps(feature_set, indent=1, sort_keys=True, default=str), "utf-8")
            artifacts["feature_set"] = str(fs_file)
        mlflow.pyfunc.save_model(
            path=str(path), python_model=JourneyPyfunc(), artifacts=artifacts,
            mlflow_model=mlflow_model, signature=signature or signature_for(scorer),
            input_example=synthetic_input_example(scorer),
            pip_requirements=pip_requirements if pip_requirements is not None else pinned_requirements(),
        )
    return path


__all__ = ["JourneyPyfunc", "unwrap_scorer", "pinned_requirements", "signature_for",
           "synthetic_input_example", "save_pyfunc", "SCORER_ARTIFACT", "FEATURE_SET_ARTIFACT"]
