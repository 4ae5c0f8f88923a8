"""What every feature family gets: a declaration context and the fetched parts.

A family is one module with ``declare(ctx) -> list[FeatureSpec]`` (its columns: names,
kinds, labels) and ``compute(parts) -> dict[name, values]`` (those columns for the
population, one value per member). `journey_ml.features.declaration` concatenates the
declarations in `FAMILIES` order; the builder fetches the shared aggregates once (the
set-based SQL of `_queries` plus the per-entity pivot, see `builder`) and hands every
family the same `Parts`. A test asserts that each family computes exactly what it declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journey_ml.config import JourneyConfig, TaskConfig
from journey_ml.features.spec import FeatureSet, FeatureSpec, Kind

DAY_S = 86_400.0


@dataclass
class DeclareContext:
    """The inputs of a declaration. ``taken``: names declared by the families before this one."""

    config: JourneyConfig
    task: TaskConfig
    attributes: dict[str, list[str] | None]
    categories: dict[str, list[str]]
    channels: list[str]
    taken: set[str] = field(default_factory=set)


class Specs(list):
    """A family's declared columns; ``add`` appends one."""

    def __init__(self, group: str) -> None:
        super().__init__()
        self.group = group

    def add(self, name: str, label: str, kind: Kind = "numeric", **kw: Any) -> None:
        self.append(FeatureSpec(name=name, kind=kind, label=label, group=self.group, **kw))


@dataclass
class Parts:
    """The shared aggregates, aligned with the population ``pop`` (sorted entity ids).

    ``count(name)``: a windowed count / sum of the recent part (0 without recent events);
    ``time(name)``: the first or last time (epoch seconds, NaN: never) over the whole
    history before T: ``first``, ``last_at``, ``first:<stage>``, ``last:<stage>``,
    ``event_last_<i>`` (i-th key event), ``role_last_<i>`` (i-th key role);
    ``lifetime(name)``: a sum over the whole history before T (0 when none): ``value_all``,
    ``value_n`` (events with a value), ``prop_<i>_all``, ``prop_<i>_n`` (i-th numeric property);
    ``count("_prop_<i>_<w>")``: the i-th numeric property summed over the window w.
    ``fetched``: the look-ups (renewal dates, committee, firmographics, attributes,
    lifetime value) as the builder fetched them."""

    plan: Any  # _queries.Plan
    feature_set: FeatureSet
    pop: pd.Index
    as_of_s: float
    count: Callable[[str], np.ndarray]
    time: Callable[[str], np.ndarray]
    lifetime: Callable[[str], np.ndarray]
    fetched: dict[str, Any]

    def days_since(self, ts: np.ndarray) -> np.ndarray:
        return (self.as_of_s - ts) / DAY_S

    def specs(self, group: str) -> list[FeatureSpec]:
        return [s for s in self.feature_set.features if s.group == group]


@dataclass
class Recent:
    """The recent aggregate summarised per entity (``ids``), as the SQL pivot
    (`builder._summarise_recent`) and the in-memory path (`features.memory`) both produce it;
    every array has one slot per id plus a spare last slot (the fill value: 0 for counts,
    NaN for times)."""

    ids: np.ndarray
    counts: dict[str, np.ndarray]  # feature columns that are 0 without recent events
    times: dict[str, np.ndarray]  # epoch seconds (NaN: none): first, last_at, first:<s>, ...
    population: dict[str, np.ndarray]  # lb / cust / out sums for the population rules
