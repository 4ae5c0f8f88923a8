"""The journey-mapping job: journeys as of T per task and segment, the map, lift.

For each task: the warehouse's events strictly before T (within the lookback) are cut into
journeys at the map's level and at the attribution level; one `JourneyMap` is built for
all entities (``all``) and one per segment; each map is written as a self-contained HTML
page (and JSON) under the reports folder and logged to MLflow as a journey run. Lift of
the next-best actions is measured on the scores whose horizon has passed and stored in
the ``lift`` table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from journey_ml.jobs._common import require_schema, resolve_as_of, resolve_tasks, utc
from journey_ml.journeys.build import SECTIONS, JourneyMap, build_map, cut
from journey_ml.journeys.committee import account_roles, role_summary
from journey_ml.journeys.current import population_events
from journey_ml.journeys.lift import lift_table
from journey_ml.journeys.paths import compare, compare_periods
from journey_ml.journeys.read import entity_segments, matured_scores, read_events, store_lift
from journey_ml.runtime import Runtime

ALL = "all"


@dataclass(frozen=True)
class JourneysParams:
    """``tasks``: default every task; ``as_of``: default the newest event; ``segments``:
    which maps (``all`` = every entity; default ``all`` and every segment); ``level`` /
    ``attribution_level`` / ``gap_days`` / ``bootstrap`` / ``next_order``: override the configuration;
    ``compare_from``: also compare journeys started before / from this time (the ``all``
    map); ``sections``: what to compute (see `journey_ml.journeys.build.SECTIONS`);
    ``report``: write the HTML maps; ``log_run``: log each map to MLflow; ``lift``:
    measure and store lift; ``computed_at``: wall-clock time written on lift rows."""

    computed_at: datetime
    tasks: tuple[str, ...] = ()
    as_of: datetime | None = None
    segments: tuple[str, ...] = ()
    level: str | None = None
    attribution_level: str | None = None
    gap_days: float | None = None
    bootstrap: int | None = None
    next_order: int | None = None
    compare_from: datetime | None = None
    sections: tuple[str, ...] = SECTIONS
    report: bool = True
    log_run: bool = True
    lift: bool = True


@dataclass(frozen=True)
class JourneysJobResult:
    as_of: datetime
    maps: tuple[JourneyMap, ...]
    lift: pd.DataFrame
    lift_rows_written: int

    def map(self, task: str, segment: str = ALL) -> JourneyMap:
        for m in self.maps:
            if m.task == task and m.segment == segment:
                return m
        raise ValueError(f"no journey map for task {task!r}, segment {segment!r} "
                         f"(have: {', '.join(f'{m.task}/{m.segment}' for m in self.maps) or 'none'})")


def _lift(rt: Runtime, task: str, as_of: datetime, computed_at: datetime) -> tuple[pd.DataFrame, int]:
    t = rt.config.task(task)
    scores = matured_scores(rt.engine, task=task, outcome_types=rt.config.outcomes[t.outcome],
                            horizon_days=t.horizon_days, as_of=as_of, entity=t.entity)
    frames, written = [], 0
    for score_as_of, cohort in scores.groupby("score_as_of", sort=True):
        table = lift_table(cohort, min_n=rt.config.journeys.lift_min_n, confidence=rt.config.journeys.confidence)
        written += store_lift(rt.engine, task, score_as_of.to_pydatetime(), table, horizon_days=t.horizon_days,
                              measured_as_of=as_of, computed_at=computed_at)
        frames.append(table.assign(task=task, score_as_of=score_as_of))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), written


def _log(rt: Runtime, m: JourneyMap, files) -> tuple[str | None, str | None]:
    """Log a map to MLflow; a registry failure is a note on the map, not a lost report."""
    try:
        metrics = {k: v for k, v in m.summary().items() if isinstance(v, int | float)}
        rid = rt.registry.log_journey_run(m.task, m.segment, m.as_of, metrics=metrics, files=list(files),
                                          params={"level": m.level, "attribution_level": m.attribution_level,
                                                  "gap_days": rt.config.journeys.gap_days,
                                                  "as_of": m.as_of.isoformat()})
        return rid, None
    except Exception as e:  # noqa: BLE001 - the map is written; say why it is not in MLflow
        return None, f"not logged to MLflow: {type(e).__name__}: {e}"


def run_journeys(rt: Runtime, params: JourneysParams) -> JourneysJobResult:
    """Journey maps as of T for every requested task (all entities and each segment),
    written under ``<reports_dir>/journeys`` and logged to MLflow; lift measured and stored.
    Raises ConfigError for an unknown task, ValueError for an unknown segment or section,
    and SchemaNotCurrent."""
    require_schema(rt.engine)
    names = resolve_tasks(rt.config, params.tasks)
    as_of, _ = resolve_as_of(rt.engine, params.as_of)
    cfg = rt.config.journeys
    if params.gap_days is not None:
        if params.gap_days <= 0:
            raise ValueError(f"the inactivity gap must be positive, got {params.gap_days} days")
        cfg = cfg.model_copy(update={"gap_days": params.gap_days})
    if params.next_order is not None:
        if not 0 <= params.next_order <= 5:
            raise ValueError(f"the next-step order must be 0 to 5, got {params.next_order}")
        cfg = cfg.model_copy(update={"next_order": params.next_order})
    level = params.level or cfg.level
    touch_level = params.attribution_level or cfg.attribution_level
    computed_at = utc(params.computed_at, "computed_at")
    reports_dir = rt.config.monitoring.resolve_dir(rt.settings.home)
    maps: list[JourneyMap] = []
    lifts, written = [], 0
    for name in names:
        task = rt.config.task(name)
        outcome_types = rt.config.outcomes[task.outcome]
        events = read_events(rt.engine, as_of, entity=task.entity, lookback_days=cfg.lookback_days)
        events = population_events(events, task.population, task.customer_events, outcome_types)
        steps_j = cut(events, cfg, as_of, level, outcome_types)
        touch_j = cut(events, cfg, as_of, touch_level, outcome_types)
        seg_cfg = rt.config.segments.get(task.segment_by) if task.segment_by else None
        seg_of = entity_segments(rt.engine, task.segment_by, seg_cfg, task.entity, as_of)
        steps_j, touch_j = steps_j.with_segments(seg_of), touch_j.with_segments(seg_of)
        lift = pd.DataFrame()
        if params.lift:
            lift, n = _lift(rt, name, as_of, computed_at)
            written += n
            lifts.append(lift)
        latest_lift = lift[lift["score_as_of"] == lift["score_as_of"].max()] if not lift.empty else lift
        segs = sorted(set(steps_j.table["segment"])) if steps_j.n else []
        wanted = list(params.segments) or [ALL, *segs]
        unknown = [s for s in wanted if s != ALL and s not in segs]
        if unknown:
            raise ValueError(f"task {name!r}: no journeys in segment(s) {', '.join(unknown)} as of "
                             f"{as_of:%Y-%m-%d} (segments: {', '.join(segs) or 'none'})")
        for seg in wanted:
            if seg == ALL:
                sj, tj = steps_j, touch_j
                comparison = (compare_periods(sj, params.compare_from) if params.compare_from is not None
                              else pd.DataFrame())
                seg_lift = latest_lift
            else:
                mask = (steps_j.table["segment"] == seg).to_numpy()
                sj = steps_j.subset(mask)
                tj = touch_j.subset((touch_j.table["segment"] == seg).to_numpy())
                comparison = compare(sj, steps_j.subset(~mask), (seg, "rest"))
                seg_lift = (latest_lift[latest_lift["segment"].isin([seg, "(all)"])]
                            if not latest_lift.empty else latest_lift)
            committee = None
            if task.entity == "account" and sj.n:
                steps_only = events[~events["event_type"].isin(cfg.exclude_event_types)]
                committee = role_summary(account_roles(steps_only, sj), sj.table["entity_id"].nunique(),
                                         int(sj.table.groupby("entity_id")["converted"].any().sum()))
            m = build_map(name, seg, sj, tj, cfg, bootstrap=params.bootstrap, lift=seg_lift,
                          comparison=comparison, committee=committee, sections=params.sections)
            if params.report:
                from journey_ml.journeys.report import write_report

                html_path, json_path = write_report(m, reports_dir)
                m = dataclasses.replace(m, report_html=str(html_path))
                if params.log_run:
                    rid, note = _log(rt, m, [html_path, json_path])
                    m = dataclasses.replace(m, run_id=rid, notes=m.notes + ((note,) if note else ()))
            maps.append(m)
    all_lift = pd.concat([x for x in lifts if not x.empty], ignore_index=True) if any(
        not x.empty for x in lifts) else pd.DataFrame()
    return JourneysJobResult(as_of, tuple(maps), all_lift, written)


__all__ = ["JourneysParams", "JourneysJobResult", "run_journeys", "ALL"]
