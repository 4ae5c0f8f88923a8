"""Prefect flows: thin recipes, each task calls one journey_ml function.

Importing this package sets telemetry-off defaults before Prefect is imported.
"""

import os

for _k, _v in {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # flows report their own progress; MLflow's per-download bars and INFO lines are noise
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(_k, _v)
