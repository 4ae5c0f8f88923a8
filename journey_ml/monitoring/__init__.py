"""Monitoring: data contract, drift (features, predictions, explanations), performance, reports."""

from journey_ml.monitoring.contract import ColumnContract, ContractResult, check_contract
from journey_ml.monitoring.drift import (
    ColumnDrift,
    DriftOptions,
    DriftResult,
    ExplanationDrift,
    check_drift,
    explanation_drift,
    feature_drift,
    prediction_drift,
)
from journey_ml.monitoring.performance import PerformanceResult, performance
from journey_ml.monitoring.policy import Decision, MonitorResult, SegmentState, decide
from journey_ml.monitoring.reports import (
    ReportFiles,
    classification_report,
    data_definition,
    drift_report,
)

__all__ = [
    "ColumnContract", "ColumnDrift", "ContractResult", "DriftOptions", "DriftResult", "ExplanationDrift",
    "PerformanceResult", "ReportFiles", "check_contract", "check_drift", "classification_report",
    "data_definition", "drift_report", "explanation_drift", "feature_drift", "performance", "prediction_drift",
]

# the policy loop (policy, store, alerts, runner); the runner is loaded on first use
__all__ += ["Decision", "MonitorResult", "SegmentState", "decide", "monitor_task", "summary_markdown"]


def __getattr__(name: str):
    if name in ("monitor_task", "summary_markdown"):
        from journey_ml.monitoring import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
