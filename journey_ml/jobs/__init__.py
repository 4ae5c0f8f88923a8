"""One job entry point per stage.

Each job takes the resources (`journey_ml.runtime.Runtime`: settings, config, warehouse,
registry) and typed parameters, and returns a typed result. Flows, the CLI and the API
call these and nothing else, so no loop over tasks, sources or segments is written twice.
Every job checks that the warehouse schema is current and changes nothing when it is not.
"""

from journey_ml.jobs._common import (
    Each,
    JobFailed,
    SchemaNotCurrent,
    empty_population,
    require_schema,
    resolve_sources,
    resolve_tasks,
    serial,
)
from journey_ml.jobs.cycle import CycleJobResult, CycleParams, run_cycle
from journey_ml.jobs.features import FeaturesJobResult, FeaturesParams, run_features
from journey_ml.jobs.ingest import IngestJobResult, IngestParams, run_ingest
from journey_ml.jobs.journeys import JourneysJobResult, JourneysParams, run_journeys
from journey_ml.jobs.monitoring import MonitoringJobResult, MonitoringParams, run_monitoring
from journey_ml.jobs.scoring import ScoringJobResult, ScoringParams, run_scoring
from journey_ml.jobs.simulation import run_simulation, simulation_params
from journey_ml.jobs.training import (
    SegmentData,
    TaskFailure,
    TrainingJobResult,
    TrainingParams,
    run_training,
)

__all__ = [
    "Each", "serial", "empty_population", "JobFailed", "SchemaNotCurrent", "require_schema",
    "resolve_tasks", "resolve_sources",
    "IngestParams", "IngestJobResult", "run_ingest",
    "FeaturesParams", "FeaturesJobResult", "run_features",
    "TrainingParams", "TrainingJobResult", "TaskFailure", "SegmentData", "run_training",
    "ScoringParams", "ScoringJobResult", "run_scoring",
    "MonitoringParams", "MonitoringJobResult", "run_monitoring",
    "run_simulation", "simulation_params",
    "JourneysParams", "JourneysJobResult", "run_journeys",
    "CycleParams", "CycleJobResult", "run_cycle",
]
