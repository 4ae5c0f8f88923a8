"""The feature set, declared once: names, kinds, human labels and groups.

`declare_feature_set` turns the configuration (windows, key events, key roles, taxonomy
channels, journey stages) plus the discovered entity attributes into a `FeatureSet`: the
concatenated declarations of the feature families (`journey_ml.features.families`, one
module per family with its computation beside it). The names are a contract: rule
scorers, models and seller-facing reasons refer to them. A trained model stores its
feature set (`to_dict`) and scoring rebuilds exactly those columns
(`FeatureSet.from_dict` + `build_features(..., feature_set=...)`).
"""

from __future__ import annotations

from journey_ml.config import JourneyConfig, TaskConfig
from journey_ml.features.families import FAMILIES, DeclareContext
from journey_ml.features.families.committee import DECISION_ROLES
from journey_ml.features.families.trend import TREND_DAYS
from journey_ml.features.families.value import VALUE_DAYS
from journey_ml.features.spec import (
    FEATURE_SET_VERSION,
    Entity,
    FeatureSet,
    FeatureSpec,
    Kind,
    channels,
    sanitize,
)

__all__ = ["DECISION_ROLES", "FEATURE_SET_VERSION", "TREND_DAYS", "VALUE_DAYS", "Entity", "FeatureSet",
           "FeatureSpec", "Kind", "channels", "declare_feature_set", "sanitize"]


def declare_feature_set(
    config: JourneyConfig,
    task: TaskConfig,
    attributes: dict[str, list[str] | None],
    categories: dict[str, list[str]] | None = None,
) -> FeatureSet:
    """The feature set for ``task``'s entity under ``config``.

    ``attributes`` maps an attribute key to None (numeric) or its known categories
    (categorical), as returned by `builder.discover_attributes`. ``categories`` gives the
    known values of the firmographic categoricals (industry, country, role); a value
    outside them becomes "other". Returns a FeatureSet; raises ValueError when two
    configured names collide (e.g. a key event called "events").
    """
    ctx = DeclareContext(config=config, task=task, attributes=attributes, categories=categories or {},
                         channels=channels(config))
    out: list[FeatureSpec] = []
    for family in FAMILIES:
        ctx.taken = {s.name for s in out}
        out.extend(family.declare(ctx))
    names = [s.name for s in out]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"feature names collide: {', '.join(clash)} (rename the key event or role)")
    return FeatureSet(version=FEATURE_SET_VERSION, entity=task.entity, features=tuple(out))
