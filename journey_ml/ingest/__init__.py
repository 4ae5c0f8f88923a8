"""Ingestion: sources -> contract validation -> warehouse, every row accounted for."""

from journey_ml.ingest.pipeline import (
    IngestError,
    IngestResult,
    Progress,
    ingest_all,
    ingest_source,
)

__all__ = ["IngestError", "IngestResult", "Progress", "ingest_all", "ingest_source"]
