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
