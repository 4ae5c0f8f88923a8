"""Populations as declarations: which entities a task scores as of T, in words and as a filter.

The rules (T = as_of; history = events before T, see `boundary`):

* ``prospects``: an event in the lookback, no event of ``customer_events`` before T and
  no outcome row of the task's outcome before T;
* ``customers``: an event of ``customer_events`` in the lookback and no outcome (event or
  outcome row) in it;
* ``active``: any event in the lookback; an earlier outcome does not take the entity out
  (repeat outcomes, e.g. repurchase);
* ``all``: every known entity: in the accounts / contacts table (created before T or
  undated) or with an event before T.

Then ``population_filter`` keeps the entities whose attributes and segments take one of
the listed values. The SQL of the rules is in `_queries` (`population_query` and the
`_population_counts` both the builder and the diagnostics read); `PopulationStep`s say how
many entities are left after each step, so an empty population explains itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from journey_ml.config import JourneyConfig, TaskConfig
from journey_ml.features.values import attr_text


@dataclass(frozen=True)
class PopulationStep:
    """One step of a population rule and the entities left after it."""

    rule: str
    entities: int


def _filter_text(v: Any) -> str:
    """`attr_text`, with whole floats as integers (10.0 in an export matches 10 in the config)."""
    return attr_text(int(v)) if isinstance(v, float) and v.is_integer() else attr_text(v)


def describe(task: TaskConfig) -> str:
    """The task's population rule in one phrase (for messages)."""
    lb = f"{task.lookback_days}-day lookback"
    cust = ", ".join(task.customer_events)
    rule = {
        "prospects": f"prospects: an event in the {lb}, no customer event ({cust}) and no "
                     f"{task.outcome!r} outcome before T",
        "customers": f"customers: a customer event ({cust}) in the {lb} and no {task.outcome!r} outcome in it",
        "active": f"active: any event in the {lb}",
        "all": "all: every known entity (entity table or an event before T)",
    }[task.population]
    return rule + "".join(f"; {s.rule}" for s in filter_rules(task))


@dataclass(frozen=True)
class _FilterRule:
    rule: str
    kind: str  # attribute | segment
    key: str
    values: tuple[str, ...]


def filter_rules(task: TaskConfig) -> list[_FilterRule]:
    """The task's population filter as steps, in config order (attributes, then segments)."""
    f = task.population_filter
    out = [_FilterRule(f"attribute {k} in {sorted(_filter_text(v) for v in vals)}", "attribute", k,
                       tuple(_filter_text(v) for v in vals)) for k, vals in f.attributes.items()]
    out += [_FilterRule(f"segment {k} in {sorted(vals)}", "segment", k, tuple(vals))
            for k, vals in f.segments.items()]
    return out


def filter_masks(config: JourneyConfig, task: TaskConfig, frame: pd.DataFrame,
                 attributes: dict[str, dict]) -> list[tuple[str, np.ndarray]]:
    """(rule, keep mask over ``frame``'s rows) per filter step; ``attributes`` maps an
    entity id to its attribute dict (latest export). Segments are assigned on the feature
    frame as training and scoring assign them."""
    from journey_ml.segments import assign_segments

    out = []
    ids = frame.index.astype(str)
    for r in filter_rules(task):
        allowed = set(r.values)
        if r.kind == "attribute":
            vals = [(attributes.get(i) or {}).get(r.key) for i in ids]
            keep = np.array([v is not None and _filter_text(v) in allowed for v in vals], dtype=bool)
        else:
            seg = assign_segments(frame, config.segments[r.key], random_state=config.training.seed)
            keep = seg.reindex(frame.index).isin(allowed).to_numpy()
        out.append((r.rule, keep))
    return out
