"""One journey map: every figure of one task and segment, from journeys already cut.

`build_map` is pure (journeys in, a typed `JourneyMap` out); the job reads the warehouse,
calls it per segment, writes the report and logs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from journey_ml.config import JourneysConfig
from journey_ml.journeys.attribution import AttributionResult, attribute
from journey_ml.journeys.next_step import (
    NextStepAccuracy,
    NextStepModel,
    evaluate_next_step,
    predict_current,
)
from journey_ml.journeys.paths import (
    flows,
    friction,
    path_table,
    step_matrix,
    top_paths,
    transitions,
)
from journey_ml.journeys.sessions import Journeys, sessionise


@dataclass(frozen=True)
class JourneyMap:
    """The figures of one task x segment as of T (frames are plain pandas)."""

    task: str
    segment: str
    as_of: datetime
    level: str
    attribution_level: str
    journeys: int
    conversions: int
    value: float
    statuses: dict[str, int]
    transitions: pd.DataFrame
    friction: pd.DataFrame
    step_matrix: pd.DataFrame
    paths_to_conversion: pd.DataFrame
    paths_to_drop_off: pd.DataFrame
    flows: pd.DataFrame
    attribution: AttributionResult | None
    next_step: NextStepAccuracy | None
    next_predictions: pd.DataFrame
    lift: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    committee: pd.DataFrame = field(default_factory=pd.DataFrame)  # per buying role (account tasks)
    notes: tuple[str, ...] = ()
    report_html: str | None = None
    run_id: str | None = None

    @property
    def top_friction(self) -> dict[str, Any] | None:
        """The step that loses the most conversions (first row of the friction table)."""
        return None if self.friction.empty else self.friction.iloc[0].to_dict()

    def summary(self) -> dict[str, Any]:
        """A few figures (MLflow metrics, CLI headline)."""
        out: dict[str, Any] = {"journeys": self.journeys, "conversions": self.conversions, "value": self.value,
                               "conversion_rate": self.conversions / self.journeys if self.journeys else math.nan}
        if self.top_friction:
            out["top_friction_exit_rate"] = float(self.top_friction["exit_rate"])
            out["top_friction_lost_conversions"] = float(self.top_friction["lost_conversions"])
        if self.next_step:
            out.update({"next_top1": self.next_step.top1, "next_log_loss": self.next_step.log_loss,
                        "next_baseline_top1": self.next_step.baseline_top1,
                        "next_baseline_log_loss": self.next_step.baseline_log_loss})
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (tables as lists of records)."""
        def rec(df: pd.DataFrame) -> list[dict]:
            return [{k: _clean(v) for k, v in r.items()} for r in df.to_dict("records")]

        return {
            "task": self.task, "segment": self.segment, "as_of": self.as_of.isoformat(), "level": self.level,
            "attribution_level": self.attribution_level, "summary": {k: _clean(v) for k, v in self.summary().items()},
            "statuses": self.statuses, "friction": rec(self.friction), "transitions": rec(self.transitions),
            "paths_to_conversion": rec(self.paths_to_conversion), "paths_to_drop_off": rec(self.paths_to_drop_off),
            "step_matrix": rec(self.step_matrix.reset_index(names="step")),
            "attribution": rec(self.attribution.table) if self.attribution else [],
            "removal_effects": rec(self.attribution.removal_effects) if self.attribution else [],
            "next_step": {k: _clean(v) for k, v in vars(self.next_step).items()} if self.next_step else None,
            "next_predictions": rec(self.next_predictions), "lift": rec(self.lift), "comparison": rec(self.comparison),
            "committee": rec(self.committee), "notes": list(self.notes), "report_html": self.report_html, "run_id": self.run_id,
        }


def _clean(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    return v


def cut(events: pd.DataFrame, cfg: JourneysConfig, as_of: datetime, level: str, outcome_types: list[str],
        labels=None) -> Journeys:
    """Journeys of an event frame with the configured gap, exclusions and step limits."""
    return sessionise(events, as_of=as_of, level=level, gap=timedelta(days=cfg.gap_days),  # type: ignore[arg-type]
                      outcome_types=outcome_types, exclude_event_types=cfg.exclude_event_types,
                      collapse_repeats=cfg.collapse_repeats, max_steps=cfg.max_steps, labels=labels)


SECTIONS = ("paths", "friction", "attribution", "next")


def build_map(task: str, segment: str, steps_j: Journeys, touch_j: Journeys, cfg: JourneysConfig, *,
              bootstrap: int | None = None, lift: pd.DataFrame | None = None,
              comparison: pd.DataFrame | None = None, committee: pd.DataFrame | None = None,
              sections: tuple[str, ...] = SECTIONS) -> JourneyMap:
    """Every figure of one map: transitions, friction, step matrix, top paths, Sankey flows
    (``steps_j``, the map's level), attribution (``touch_j``, the attribution level), next
    step accuracy and predictions for ongoing journeys. ``sections`` skips the expensive
    parts a caller does not need (attribution, next); paths and friction are cheap."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown journey map section(s) {', '.join(sorted(unknown))}; "
                         f"expected {', '.join(SECTIONS)}")
    notes = []
    tp = top_paths(steps_j, path_table(steps_j), cfg.top_paths) if steps_j.n else \
        {"conversion": pd.DataFrame(), "drop_off": pd.DataFrame()}
    attr = None
    if "attribution" not in sections:
        pass
    elif touch_j.n and touch_j.conversions:
        attr = attribute(touch_j, orders=tuple(cfg.markov_orders), half_life_days=cfg.half_life_days,
                         position_first=cfg.position_first, position_last=cfg.position_last,
                         bootstrap=cfg.bootstrap if bootstrap is None else bootstrap, confidence=cfg.confidence,
                         seed=cfg.seed)
    else:
        notes.append("no conversion in these journeys: nothing to attribute")
    acc, preds = None, pd.DataFrame()
    if steps_j.n and "next" in sections:
        try:
            acc = evaluate_next_step(steps_j, cfg.next_order, cfg.next_holdout_share, cfg.seed)
        except ValueError as e:
            notes.append(f"next-step accuracy not measured: {e}")
        preds = predict_current(NextStepModel(order=cfg.next_order).fit(steps_j), steps_j)
    statuses = steps_j.table["status"].value_counts().to_dict() if steps_j.n else {}
    return JourneyMap(
        task=task, segment=segment, as_of=steps_j.as_of, level=steps_j.level, attribution_level=touch_j.level,
        journeys=steps_j.n, conversions=steps_j.conversions, value=steps_j.total_value,
        statuses={k: int(v) for k, v in statuses.items()},
        transitions=transitions(steps_j) if steps_j.n else pd.DataFrame(),
        friction=friction(steps_j) if steps_j.n else pd.DataFrame(),
        step_matrix=step_matrix(steps_j, cfg.step_matrix_steps),
        paths_to_conversion=tp["conversion"], paths_to_drop_off=tp["drop_off"],
        flows=flows(steps_j) if steps_j.n else pd.DataFrame(columns=["step", "source", "target", "journeys"]),
        attribution=attr, next_step=acc, next_predictions=preds,
        lift=lift if lift is not None else pd.DataFrame(),
        comparison=comparison if comparison is not None else pd.DataFrame(),
        committee=committee if committee is not None else pd.DataFrame(), notes=tuple(notes))


__all__ = ["JourneyMap", "build_map", "cut", "SECTIONS"]
