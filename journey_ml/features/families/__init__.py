"""Feature families: each module declares its columns and computes them, side by side.

To change a feature, change its family; to add one, add it to a family's ``declare`` and
``compute`` (a test checks the two agree for every family). The shared set-based SQL the
families read is in `journey_ml.features._queries`; `Parts` documents what it provides.
"""

from journey_ml.features.families import (
    activity,
    attributes,
    committee,
    firmographics,
    recency,
    stages,
    trend,
    value,
)
from journey_ml.features.families._base import DeclareContext, Parts

# declaration order = column order of the feature set
FAMILIES = (activity, recency, trend, stages, value, committee, firmographics, attributes)

__all__ = ["FAMILIES", "DeclareContext", "Parts"]
