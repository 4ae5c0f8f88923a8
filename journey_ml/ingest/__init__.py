"""Ingestion: sources -> contract validation -> warehouse, every row accounted for."""

from journey_ml.ingest.pipeline import (
    IngestError,
    IngestResult,
    Progress,
    ingest_all,
    ingest_source,
)
from journey_ml.ingest.quarantine import QuarantinedRow, QuarantineListing, list_quarantine
from journey_ml.ingest.runs import AbandonedRun

__all__ = ["AbandonedRun", "IngestError", "IngestResult", "Progress", "QuarantineListing",
           "QuarantinedRow", "ingest_all", "ingest_source", "list_quarantine"]
