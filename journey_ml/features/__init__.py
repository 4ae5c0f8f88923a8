"""Point-in-time features: declared once, computed in the warehouse, shared by training
and scoring (see `builder` for the semantics)."""

from journey_ml.features.builder import (
    FeatureFrame,
    build_features,
    discover_attributes,
    event_types_in_data,
    feature_set_for,
    labels,
    load_snapshot,
    population,
    population_steps,
    store_snapshot,
    training_frame,
)
from journey_ml.features.dates import DateSplit, split_dates, training_dates
from journey_ml.features.declaration import (
    FEATURE_SET_VERSION,
    FeatureSet,
    FeatureSpec,
    declare_feature_set,
)

__all__ = [
    "FEATURE_SET_VERSION",
    "FeatureFrame",
    "FeatureSet",
    "FeatureSpec",
    "build_features",
    "declare_feature_set",
    "discover_attributes",
    "event_types_in_data",
    "feature_set_for",
    "labels",
    "load_snapshot",
    "population",
    "population_steps",
    "store_snapshot",
    "training_dates",
    "split_dates",
    "DateSplit",
    "training_frame",
]
