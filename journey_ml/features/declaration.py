"""The feature set, declared once: names, kinds, human labels and groups.

`declare_feature_set` turns the configuration (windows, key events, key roles, taxonomy
channels, journey stages) plus the discovered entity attributes into a `FeatureSet`. The
names are a contract: rule scorers, models and seller-facing reasons refer to them. A
trained model stores its feature set (`to_dict`) and scoring rebuilds exactly those
columns (`FeatureSet.from_dict` + `build_features(..., feature_set=...)`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from journey_ml.config import JourneyConfig, TaskConfig
from journey_ml.schemas import STAGES

FEATURE_SET_VERSION = "fs-v1"

# roles whose absence from the last 90 days counts in `key_roles_missing`
DECISION_ROLES: tuple[str, ...] = ("economic_buyer", "technical_evaluator", "procurement")
# windows the trend, value and committee features always use (whatever windows_days says)
TREND_DAYS = 30
VALUE_DAYS = 90
# firmographic columns of the account: (feature name = column name, kind, label)
_FIRMOGRAPHIC: tuple[tuple[str, str, str], ...] = (
    ("employees", "numeric", "employees"),
    ("annual_revenue", "numeric", "annual revenue"),
    ("industry", "categorical", "industry"),
    ("country", "categorical", "country"),
)

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


def sanitize(text: str) -> str:
    """Lower-case ``text`` and keep [a-z0-9_] (other runs become one underscore)."""
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "x"


def channels(config: JourneyConfig) -> list[str]:
    """The taxonomy's channels in order of first appearance."""
    return list(dict.fromkeys(t.channel for t in config.taxonomy.values()))


def _words(name: str) -> str:
    return name.replace("_", " ")


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
    f = config.features
    cats = categories or {}
    out: list[FeatureSpec] = []

    def add(name: str, label: str, group: str, kind: Kind = "numeric", **kw: Any) -> None:
        out.append(FeatureSpec(name=name, kind=kind, label=label, group=group, **kw))

    chans = channels(config)
    for w in f.windows_days:
        add(f"events_{w}d", f"events in the last {w} days", "activity")
        add(f"active_days_{w}d", f"active days in the last {w} days", "activity")
        for c in chans:
            add(f"ch_{sanitize(c)}_{w}d", f"{_words(c)} interactions in the last {w} days", "activity")
        for s in STAGES:
            add(f"stage_{s}_{w}d", f"{s} stage events in the last {w} days", "activity")
        for k in f.key_events:
            add(f"{sanitize(k)}_{w}d", f"{_words(k)} events in the last {w} days", "activity")

    add("days_since_last_event", "days since the last interaction", "recency")
    add("days_since_first_event", "days since the first interaction (tenure)", "recency")
    for k in f.key_events:
        add(f"days_since_{sanitize(k)}", f"days since the last {_words(k)}", "recency")

    add("trend_30d", "change in activity, last 30 days vs the 30 before", "trend")
    add("usage_decline_30d", "decline in product usage, last 30 days vs the 30 before", "trend")

    add("furthest_stage", "furthest journey stage reached", "stage")
    for s in STAGES:
        add(f"stage_{s}_days", f"days spent in the {s} stage", "stage")

    add(f"value_sum_{VALUE_DAYS}d", f"total value of interactions in the last {VALUE_DAYS} days", "value")
    add(f"revenue_{VALUE_DAYS}d", f"billed revenue in the last {VALUE_DAYS} days", "value")
    add("days_to_renewal", "days until the renewal date", "value")

    if task.entity == "account":
        add("contacts_known", "known contacts at the account", "committee")
        add(f"contacts_engaged_{VALUE_DAYS}d", f"contacts engaged in the last {VALUE_DAYS} days", "committee")
        for r in f.key_roles:
            add(f"role_{sanitize(r)}_engaged_{VALUE_DAYS}d",
                f"{_words(r)} engaged in the last {VALUE_DAYS} days", "committee")
            add(f"days_since_role_{sanitize(r)}", f"days since the {_words(r)} last engaged", "committee")
        add("key_roles_missing", "decision roles not engaged in the last 90 days", "committee")

    for name, kind, label in _FIRMOGRAPHIC:
        add(name, f"account {label}", "firmographic", kind,  # type: ignore[arg-type]
            categories=tuple(cats.get(name, ())) if kind == "categorical" else (), point_in_time=False)
    if task.entity == "contact":
        add("role", "buying role", "firmographic", "categorical",
            categories=tuple(cats.get("role", ())), point_in_time=False)

    taken = {s.name for s in out}
    for key in sorted(attributes, key=lambda k: (sanitize(k), k)):
        base = f"attr_{sanitize(key)}"
        name, i = base, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        values = attributes[key]
        if values is None:
            add(name, f"{key} (attribute)", "attribute", point_in_time=False, source=key)
        else:
            add(name, f"{key} (attribute)", "attribute", "categorical", categories=tuple(values),
                point_in_time=False, source=key)
    names = [s.name for s in out]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"feature names collide: {', '.join(clash)} (rename the key event or role)")
    return FeatureSet(version=FEATURE_SET_VERSION, entity=task.entity, features=tuple(out))
