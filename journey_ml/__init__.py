"""journey-ml: workflow-orchestrated MLOps for predictive customer journey mapping."""

__version__ = "0.1.0"
