"""Scorers: the Scorer protocol, the rule-based scorer, the MLflow pyfunc wrapper.

Importing this package stays light: the MLflow wrapper (``journey_ml.models.pyfunc``) is
imported only when one of its names is used.
"""

from __future__ import annotations

from journey_ml.models.rules import RulesScorer
from journey_ml.models.scorer import SchemaMismatch, Scorer, check_input

_PYFUNC = {"JourneyPyfunc", "unwrap_scorer"}


def __getattr__(name: str):
    if name in _PYFUNC:
        from journey_ml.models import pyfunc

        return getattr(pyfunc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Scorer", "SchemaMismatch", "check_input", "RulesScorer", "JourneyPyfunc", "unwrap_scorer"]
