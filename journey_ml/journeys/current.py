"""A task's journeys as of T, and where each entity's journey stands (what a score stores).

`task_journeys` is the one definition of "the journeys of a task as of T" (the warehouse's
events strictly before T within the journey lookback, the task's side of each entity's
story, cut at the map's level); the journey job and scoring both use it. `next_steps_as_of`
fits the task's next-step chain on them and says, per entity, the predicted current stage
and the probability of each next step. `NextStepChains` keeps fitted chains for the API,
which scores one posted entity at a time against the chain of the warehouse.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from journey_ml.config import JourneyConfig
from journey_ml.journeys.build import cut
from journey_ml.journeys.next_step import CurrentSteps, NextStepModel, current_steps
from journey_ml.journeys.read import read_events
from journey_ml.journeys.sessions import Journeys, _utc_times

log = logging.getLogger(__name__)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(t: datetime) -> int:
    """A timezone-aware datetime as integer nanoseconds since the epoch (exact, as pandas
    converts it)."""
    return (t - _EPOCH) // timedelta(microseconds=1) * 1000


def population_events(events: pd.DataFrame, population: str, customer_events: list[str],
                      outcome_types: list[str]) -> pd.DataFrame:
    """The task's side of each entity's story: a prospect task's journeys stop at the first
    customer event other than the outcome (customers were never prospects of it); a customer
    task's journeys start at the entity's first customer event."""
    marks = [e for e in customer_events if population == "customers" or e not in outcome_types]
    marked = events["event_type"].isin(marks)
    if not marked.any():  # no entity was ever a customer (one prospect's journey, mostly)
        return events.iloc[:0] if population == "customers" else events
    first = events[marked].groupby("entity_id")["occurred_at"].min()
    since = events["entity_id"].map(first)
    if population == "customers":
        return events[since.notna() & (events["occurred_at"] >= since)]
    return events[since.isna() | (events["occurred_at"] < since)]


def journeys_of(events: pd.DataFrame, config: JourneyConfig, task_name: str, as_of: datetime,
                labels=None) -> Journeys:
    """The task's journeys at the configured level from an event frame (`read_events` columns)."""
    task = config.task(task_name)
    outcome_types = config.outcomes[task.outcome]
    events = population_events(events, task.population, task.customer_events, outcome_types)
    return cut(events, config.journeys, as_of, config.journeys.level, outcome_types, labels=labels)


def task_journeys(engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime) -> Journeys:
    """The journeys of ``task_name`` as of T from the warehouse (events strictly before T)."""
    task = config.task(task_name)
    events = read_events(engine, as_of, entity=task.entity, lookback_days=config.journeys.lookback_days)
    return journeys_of(events, config, task_name, as_of)


def fit_chain(j: Journeys, config: JourneyConfig) -> NextStepModel:
    """The next-step chain of the configured order, fitted on ``j``."""
    return NextStepModel(order=config.journeys.next_order).fit(j)


def next_steps_as_of(engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime) -> CurrentSteps:
    """Every entity's predicted current stage and next-step probabilities as of T, from the
    task's chain fitted on the warehouse's journeys strictly before T (the same chain and
    predictions as the task's ``all`` journey map)."""
    j = task_journeys(engine, config, task_name, as_of)
    return current_steps(fit_chain(j, config), j)


class NextStepChains:
    """Chains fitted on the warehouse, kept per task and UTC day, for one entity at a time.

    A request as of T uses the chain fitted as of the start of T's day: it sees no event at
    or after T, and one fit serves every request of the day. Thread-safe.
    """

    def __init__(self, engine: Engine, config: JourneyConfig, keep: int = 8):
        self.engine = engine
        self.config = config
        self.keep = keep
        self._chains: dict[tuple[str, datetime], NextStepModel] = {}
        self._lock = threading.Lock()

    def chain(self, task_name: str, as_of: datetime) -> NextStepModel:
        day = as_of.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        key = (task_name, day)
        with self._lock:
            if key not in self._chains:
                self._chains[key] = fit_chain(task_journeys(self.engine, self.config, task_name, day), self.config)
                while len(self._chains) > self.keep:
                    self._chains.pop(next(iter(self._chains)))
            return self._chains[key]

    def try_chain(self, task_name: str, as_of: datetime) -> NextStepModel | None:
        """`chain`, or None when none can be fitted (the warehouse unreachable; the log says why)."""
        try:
            return self.chain(task_name, as_of)
        except Exception as e:  # noqa: BLE001 - the next step is an addition to the score
            log.warning("%s: next step not predicted (%s: %s)", task_name, type(e).__name__, e)
            return None

    def for_entity(self, task_name: str, entity_id: str, events: list[dict[str, Any]],
                   as_of: datetime) -> dict[str, Any]:
        """``{"stage", "next_steps"}`` of one entity from its own event rows (the warehouse
        event columns; every row is the entity's), as of T. When no chain can be fitted
        (the warehouse unreachable), both are None and the log says why: the score stands."""
        model = self.try_chain(task_name, as_of)
        if model is None:
            return {"stage": None, "next_steps": None}
        frame = pd.DataFrame({
            "entity_id": entity_id, "occurred_at": _utc_times(np.fromiter(
                (_ns(e["occurred_at"]) for e in events), dtype=np.int64, count=len(events))),
            **{c: [e.get(c) for e in events] for c in ("event_type", "channel", "stage", "value")}})
        j = journeys_of(frame, self.config, task_name, as_of, labels=model.classes_[:-2])
        stage, nxt = current_steps(model, j).of(entity_id)
        return {"stage": stage, "next_steps": nxt}


__all__ = ["population_events", "journeys_of", "task_journeys", "fit_chain", "next_steps_as_of", "NextStepChains"]
