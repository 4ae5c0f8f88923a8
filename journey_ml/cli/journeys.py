"""`journey-ml journeys map|paths|friction|attribution|next|lift`: journey mapping.

Every command runs the journeys job (the flow runs the same job) on the sections it shows,
prints tables (or ``--json``); only ``map`` writes the HTML pages and logs them to MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from journey_ml.cli import render
from journey_ml.cli._common import (
    AsOfOpt,
    ConfigOpt,
    JsonOpt,
    TasksOpt,
    as_of_option,
    emit_json,
    guarded,
    now,
    out,
    parse_utc,
    runtime,
)

journeys_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                           help="Journey mapping: paths, friction, attribution, next step, lift, the map.")

SegmentOpt = Annotated[list[str] | None, typer.Option("--segment", "-s", help="Segment map (repeatable; `all` = "
                       "every entity; default: all and every segment).")]
LevelOpt = Annotated[str | None, typer.Option(help="Step level: event_type, channel or stage (default: config).")]
GapOpt = Annotated[float | None, typer.Option("--gap-days", help="Inactivity gap that ends a journey, in days "
                   "(default: config).")]
TopOpt = Annotated[int, typer.Option(help="Rows per table.", min=1)]


def _run(config: Path | None, task, segment, as_of, *, sections: tuple[str, ...], report: bool = False,
         lift: bool = False, default_segments: tuple[str, ...] = ("all",), **kw):
    from journey_ml.jobs import JourneysParams, run_journeys

    rt = runtime(config)
    params = JourneysParams(computed_at=now(), tasks=tuple(task or ()), as_of=as_of_option(as_of),
                            segments=tuple(segment or default_segments), sections=sections, report=report,
                            log_run=report, lift=lift, **{k: v for k, v in kw.items() if v is not None})
    return rt, run_journeys(rt, params)


@journeys_app.command("map")
@guarded
def journeys_map(config: ConfigOpt = None, task: TasksOpt = None, segment: SegmentOpt = None, as_of: AsOfOpt = None,
                 level: LevelOpt = None, gap_days: GapOpt = None,
                 bootstrap: Annotated[int | None, typer.Option(help="Bootstrap resamples for the attribution "
                                                                    "intervals (default: config).", min=0)] = None,
                 compare_from: Annotated[str | None, typer.Option(help="Also compare journeys started before / "
                                                                       "from this time (ISO 8601).")] = None,
                 as_json: JsonOpt = False) -> None:
    """Build the journey map of each task and segment: one offline HTML page each (logged to MLflow)."""
    split = parse_utc(compare_from, "--compare-from") if compare_from else None
    _, res = _run(config, task, segment, as_of, sections=("paths", "friction", "attribution", "next"), report=True,
                  lift=True, default_segments=(), level=level, gap_days=gap_days, bootstrap=bootstrap,
                  compare_from=split)
    if as_json:
        emit_json({"as_of": res.as_of.isoformat(), "maps": [m.to_dict() for m in res.maps],
                   "lift_rows_written": res.lift_rows_written})
        return
    out.print(render.journey_maps_table(res))
    for m in res.maps:
        if m.segment == "all" and m.top_friction:
            out.print(f"{m.task}: top friction: {m.top_friction['sentence']}", highlight=False)
        for note in m.notes:
            out.print(f"[yellow]note:[/] {m.task}/{m.segment}: {note}", highlight=False)


@journeys_app.command("paths")
@guarded
def journeys_paths(config: ConfigOpt = None, task: TasksOpt = None, segment: SegmentOpt = None,
                   as_of: AsOfOpt = None, level: LevelOpt = None, gap_days: GapOpt = None, top: TopOpt = 10,
                   as_json: JsonOpt = False) -> None:
    """Top paths to conversion and to drop-off."""
    _, res = _run(config, task, segment, as_of, sections=("paths",), level=level, gap_days=gap_days)
    if as_json:
        emit_json([{"task": m.task, "segment": m.segment, **{k: m.to_dict()[k] for k in (
            "paths_to_conversion", "paths_to_drop_off", "transitions", "step_matrix")}} for m in res.maps])
        return
    for m in res.maps:
        for t in render.paths_tables(m, top):
            out.print(t)


@journeys_app.command("friction")
@guarded
def journeys_friction(config: ConfigOpt = None, task: TasksOpt = None, segment: SegmentOpt = None,
                      as_of: AsOfOpt = None, level: LevelOpt = None, gap_days: GapOpt = None, top: TopOpt = 10,
                      as_json: JsonOpt = False) -> None:
    """Friction per step (exit rate, conversion through vs not, time stuck, lost conversions), ranked."""
    _, res = _run(config, task, segment, as_of, sections=("friction",), level=level, gap_days=gap_days)
    if as_json:
        emit_json([{"task": m.task, "segment": m.segment, "friction": m.to_dict()["friction"]} for m in res.maps])
        return
    for m in res.maps:
        out.print(render.friction_table(m, top))
        for r in m.friction.head(3).itertuples():
            out.print(f"  {r.sentence}", highlight=False)


@journeys_app.command("attribution")
@guarded
def journeys_attribution(config: ConfigOpt = None, task: TasksOpt = None, segment: SegmentOpt = None,
                         as_of: AsOfOpt = None, gap_days: GapOpt = None,
                         level: Annotated[str | None, typer.Option(help="Touchpoints: channel or event_type "
                                                                        "(default: config).")] = None,
                         bootstrap: Annotated[int | None, typer.Option(help="Bootstrap resamples (default: "
                                                                            "config).", min=0)] = None,
                         value: Annotated[bool, typer.Option("--value", help="Attribute value instead of "
                                                             "conversions.")] = False,
                         as_json: JsonOpt = False) -> None:
    """Multi-touch attribution by every method (heuristics, Shapley, exact Markov), with intervals."""
    _, res = _run(config, task, segment, as_of, sections=("attribution",), attribution_level=level,
                  gap_days=gap_days, bootstrap=bootstrap)
    if as_json:
        emit_json([{"task": m.task, "segment": m.segment, "attribution": m.to_dict()["attribution"],
                    "removal_effects": m.to_dict()["removal_effects"], "notes": list(m.notes)} for m in res.maps])
        return
    for m in res.maps:
        if m.attribution is None:
            out.print(f"{m.task}/{m.segment}: " + "; ".join(m.notes))
            continue
        out.print(render.attribution_table(m, "value" if value else "conversions"))


@journeys_app.command("next")
@guarded
def journeys_next(config: ConfigOpt = None, task: TasksOpt = None, segment: SegmentOpt = None,
                  as_of: AsOfOpt = None, level: LevelOpt = None, gap_days: GapOpt = None,
                  order: Annotated[int | None, typer.Option(help="Markov order (default: config).", min=0,
                                                            max=5)] = None,
                  top: TopOpt = 10, as_json: JsonOpt = False) -> None:
    """Next-step prediction: held-out accuracy beside order 0, and each ongoing journey's next step."""
    _, res = _run(config, task, segment, as_of, sections=("next",), level=level, gap_days=gap_days,
                  next_order=order)
    if as_json:
        emit_json([{"task": m.task, "segment": m.segment, **{k: m.to_dict()[k] for k in (
            "next_step", "next_predictions")}} for m in res.maps])
        return
    for m in res.maps:
        for t in render.next_step_tables(m, top):
            out.print(t)
        for note in m.notes:
            out.print(f"[yellow]note:[/] {note}", highlight=False)


@journeys_app.command("lift")
@guarded
def journeys_lift(config: ConfigOpt = None, task: TasksOpt = None, as_of: AsOfOpt = None,
                  as_json: JsonOpt = False) -> None:
    """Measure the lift of each next-best action against its holdout (matured scores) and store it."""
    rt, res = _run(config, task, None, as_of, sections=(), lift=True)
    if as_json:
        from journey_ml.journeys.build import _clean

        emit_json({"rows_written": res.lift_rows_written,
                   "lift": [{k: _clean(v) for k, v in r.items()} for r in res.lift.to_dict("records")]})
        return
    if res.lift.empty:
        out.print("no matured scores with an action yet (scores count once their horizon has passed)")
        return
    out.print(render.lift_table(res.lift.sort_values(["task", "score_as_of"], ascending=[True, False]),
                                rt.config.journeys.lift_min_n))
    out.print(f"{res.lift_rows_written} lift rows stored")


__all__ = ["journeys_app"]
