"""The types of a feature set: `FeatureSpec` (one column), `FeatureSet` (the versioned,
ordered columns of one entity kind) and the naming helpers the families share."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from journey_ml.config import JourneyConfig

# fs-v2: lifetime / average value and numeric event properties (value family)
FEATURE_SET_VERSION = "fs-v2"

Kind = Literal["numeric", "categorical"]
Entity = Literal["account", "contact"]


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column.

    `categories` (categorical only) are the known values; any other value maps to "other".
    `point_in_time` is False for values taken from the latest entity export (firmographics,
    attributes), which carry no history. `source` is the raw attribute key for `attr_*`
    features (names are sanitised, keys are not).
    """

    name: str
    kind: Kind
    label: str
    group: str
    categories: tuple[str, ...] = ()
    point_in_time: bool = True
    source: str = ""


@dataclass(frozen=True)
class FeatureSet:
    """The ordered feature columns of one entity kind, versioned."""

    version: str
    entity: Entity
    features: tuple[FeatureSpec, ...]

    def names(self) -> list[str]:
        """Every column name, in order."""
        return [f.name for f in self.features]

    def numeric(self) -> list[str]:
        """Names of the numeric columns, in order."""
        return [f.name for f in self.features if f.kind == "numeric"]

    def categorical(self) -> list[str]:
        """Names of the categorical columns, in order."""
        return [f.name for f in self.features if f.kind == "categorical"]

    def spec(self, name: str) -> FeatureSpec:
        """The spec called ``name``; raises KeyError."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature set {self.version} has no feature {name!r}")

    @functools.cached_property
    def key(self) -> str:
        """`feature_set_key` of `to_dict`: equal sets, equal keys (computed once per set)."""
        return feature_set_key(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (stored with each model)."""
        return {
            "version": self.version,
            "entity": self.entity,
            "features": [{**asdict(f), "categories": list(f.categories)} for f in self.features],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSet:
        """The inverse of `to_dict`; raises ValueError on a malformed dict."""
        try:
            feats = tuple(
                FeatureSpec(
                    name=f["name"], kind=f["kind"], label=f["label"], group=f["group"],
                    categories=tuple(f.get("categories") or ()),
                    point_in_time=bool(f.get("point_in_time", True)), source=f.get("source", ""),
                )
                for f in d["features"]
            )
            fs = cls(version=d["version"], entity=d["entity"], features=feats)
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a feature set dict: missing or malformed {e}") from None
        if fs.entity not in ("account", "contact"):
            raise ValueError(f"feature set entity must be account or contact, got {fs.entity!r}")
        names = fs.names()
        if len(set(names)) != len(names):
            raise ValueError("feature set has repeated feature names")
        return fs


def feature_set_key(d: dict[str, Any]) -> str:
    """The canonical JSON text of a feature set's dict: what caches of feature frames (the
    cycle's memo, monitoring, batch scoring, a loaded model) file a set under."""
    return json.dumps(d, sort_keys=True, default=str)


@functools.lru_cache(maxsize=4096)  # pure; the builder sanitises the same few names every call
def sanitize(text: str) -> str:
    """Lower-case ``text`` and keep [a-z0-9_] (other runs become one underscore)."""
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "x"


def channels(config: JourneyConfig) -> list[str]:
    """The taxonomy's channels in order of first appearance."""
    return list(dict.fromkeys(t.channel for t in config.taxonomy.values()))


def words(name: str) -> str:
    """A configured name as words (labels)."""
    return name.replace("_", " ")
