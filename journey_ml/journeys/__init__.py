"""Journey mapping: sessions, paths, transitions, friction, attribution, next step, lift.

Library functions over plain frames (no I/O except `read`, the warehouse edge, and
`report`, which writes the HTML map). The job `journey_ml.jobs.run_journeys` ties them
together for the CLI and the flow.
"""

from journey_ml.journeys.paths import (
    PathTable,
    compare,
    compare_periods,
    compare_segments,
    friction,
    path_table,
    step_matrix,
    top_paths,
    transition_matrix,
    transitions,
    two_proportion_test,
)
from journey_ml.journeys.sessions import LEVELS, JourneyDataError, Journeys, sessionise

__all__ = [
    "Journeys", "JourneyDataError", "sessionise", "LEVELS",
    "PathTable", "path_table", "top_paths", "transitions", "transition_matrix", "step_matrix", "friction",
    "compare", "compare_segments", "compare_periods", "two_proportion_test",
]
