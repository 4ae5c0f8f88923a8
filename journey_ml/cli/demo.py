"""`journey-ml demo` (`make demo`): the whole loop on the embedded default, with progress
and a readable summary.

Runs each stage as its own Prefect flow (against Prefect's ephemeral API unless
PREFECT_API_URL points at a server) and prints what happened from the flows' typed
results. The CLI is an entry point, so it may start flows; the library never imports
Prefect and flows never import this module.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rich.console import Console

from journey_ml.cli import render


class DemoRefused(ValueError):
    """The demo would overwrite or pollute a stack's stores (the message says which and why)."""


def _quiet_prefect() -> None:
    # the ephemeral server logs every request; the demo prints its own progress
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("PREFECT_LOGGING_LOG_PRINTS", "false")
    # a busy machine can take longer than the default 20 s to start the ephemeral API
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    for name in ("prefect", "httpx", "uvicorn", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


# What infra/stack.sh (`make up`) keeps under the checkout's .journey/: never the demo's to wipe.
STACK_DIRNAME = "stack"
STACK_MARKER = ".journey-stack"


def _live_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (ValueError, OSError):
        return None
    return pid


def _refusal(settings) -> str | None:
    """Why the demo must not run with these settings (None when it may).

    The demo wipes its home and writes to the embedded stores: never inside a stack's
    directory, never while a stack of this checkout runs, never on a server's stores."""
    home = settings.home.resolve()
    stack = home / STACK_DIRNAME
    for d in (home, *home.parents):
        if (d / STACK_MARKER).exists():
            return (f"JOURNEY_HOME={settings.home} is inside the stack started by `make up` ({d}): run the "
                    "demo in a shell without the stack's exports, or with JOURNEY_HOME=/some/other/dir")
    live = sorted(f.stem for f in stack.glob("*.pid") if _live_pid(f))
    if live:
        return (f"a stack started by `make up` is running from this checkout ({', '.join(live)} in {stack}): "
                f"stop it with `make down`, or run the demo elsewhere: JOURNEY_HOME=/tmp/journey-demo make demo")
    if not settings.embedded or (settings.mlflow_tracking_uri or "").startswith(("http://", "https://")):
        return ("the demo runs on the embedded default (SQLite + local MLflow), but JOURNEY_DATABASE_URL or "
                "JOURNEY_MLFLOW_TRACKING_URI points at a server: unset them to run the demo")
    return None


def _wipe(home: Path) -> None:
    """Empty ``home`` for a fresh demo, keeping a stopped stack's directory (its secrets
    match the databases it created)."""
    for p in home.iterdir():
        if p.name == STACK_DIRNAME:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


@dataclass(frozen=True)
class DemoScenario:
    """The demo's world and clock: trained ``TRAIN_AFTER_DAYS`` after the simulation starts,
    then a tracking outage and a change in what converts ``ONSET_AFTER_DAYS`` later, walked
    every ``every_days`` to the end of the data. A configured ``simulation.tracking_outage_from``
    / ``conversion_shift_from`` / ``end`` wins."""

    train_at: date
    outage: date
    shift: date
    end: date
    every_days: int = 14

    TRAIN_AFTER_DAYS = 273  # 2025-10-01 on the default start
    ONSET_AFTER_DAYS = 35
    LENGTH_DAYS = 607  # 2026-08-31 on the default start: post-onset labels mature for months

    @classmethod
    def of(cls, sim) -> DemoScenario:
        start = date.fromisoformat(sim.start)
        train_at = start + timedelta(days=cls.TRAIN_AFTER_DAYS)
        onset = train_at + timedelta(days=cls.ONSET_AFTER_DAYS)
        pick = lambda v, d: date.fromisoformat(v) if v else d  # noqa: E731
        end = max(date.fromisoformat(sim.end), start + timedelta(days=cls.LENGTH_DAYS))
        return cls(train_at, pick(sim.tracking_outage_from, onset), pick(sim.conversion_shift_from, onset), end)


def _utc_day(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _walk_dates(start: datetime, end: datetime, every_days: int) -> list[datetime]:
    """``start + k * every_days`` (k >= 1) up to the end of the data."""
    out, t = [], start + timedelta(days=every_days)
    while t <= end:
        out.append(t)
        t += timedelta(days=every_days)
    return out


STORY = (
    ("stable", "a stable period: every segment of every task ok"),
    ("drift detected", "drift detected (an alert on feature or score drift)"),
    ("promoted on recent data", "a retrain promoted because it beat production on recent matured "
                                "post-onset data"),
    ("fallback", "an accuracy collapse sent a segment to the rules model"),
    ("restore", "a retrained model recovered and was restored to production"),
)


_RECENT_SPAN = re.compile(r"on recent matured data (\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


def _post_onset(outcome: str, onset: date) -> bool:
    """Whether a retrain outcome says it won on recent matured data from after ``onset`` only."""
    m = _RECENT_SPAN.search(outcome)
    return m is not None and date.fromisoformat(m.group(1)) >= onset


def story(monitoring: list, onset: date) -> dict[str, tuple[datetime, str, str]]:
    """The first walk date of each kind of step of `STORY`, read off the runs' executed
    decisions: step -> (as-of, task/segment, what happened). A step the policy never took is
    missing from the result. A promotion counts when every date of the recent matured data it
    won on is after ``onset`` (the injected change): the winner learned the new world."""
    found: dict[str, tuple[datetime, str, str]] = {}
    for job in monitoring:
        segs = [s for run in job.runs for s in run.segments]
        if segs and all(d.kind == "ok" for s in segs for d in s.decisions):
            found.setdefault("stable", (job.as_of, "(all)", f"every decision of the {len(segs)} segments ok"))
        for s in segs:
            where = f"{s.task}/{s.segment}"
            for d in s.decisions:
                if d.kind == "alert" and d.figures.get("condition") == "drift":
                    found.setdefault("drift detected", (s.as_of, where, d.reasons[0] if d.reasons else "drift"))
                elif (d.kind == "retrain" and d.executed and d.outcome.startswith("retrained: promoted")
                      and _post_onset(d.outcome, onset)):
                    found.setdefault("promoted on recent data", (s.as_of, where, d.outcome))
                elif d.kind in ("fallback", "restore") and d.executed:
                    found.setdefault(d.kind, (s.as_of, where, "; ".join(d.reasons)))
    return found


def _estimate_gap(monitoring: list) -> tuple[datetime, str, float, float] | None:
    """The run where the estimated AUC (CBPE) overshot the matured one the most, if by > 0.1."""
    worst = None
    for job in monitoring:
        for run in job.runs:
            for s in run.segments:
                real = ((s.performance or {}).get("production") or {}).get("roc_auc")
                est = (s.estimated or {}).get("roc_auc")
                if real is not None and est is not None and est - real > 0.1 and (
                        worst is None or est - real > worst[3] - worst[2]):
                    worst = (s.as_of, f"{s.task}/{s.segment}", real, est)
    return worst


def _print_monitoring(console: Console, run) -> None:
    """One line per segment (drift, performance) and each decision with its reasons."""
    console.print(f"    [bold]{run.task}[/] as of {run.as_of:%Y-%m-%d}:")
    for s in run.segments:
        d = s.drift or {}
        drift = (f"{len(d.get('drifted_columns') or [])}/{d.get('tested_columns', '?')} columns drifted"
                 + (" [red](drift)[/]" if d.get("detected") else "")) if d else "no drift check (rules mode)"
        p = (s.performance or {}).get("production") or {}
        perf = (f"AUC {p['roc_auc']:.3f} on {p['n']} matured labels" if p.get("roc_auc") is not None
                else (p.get("reason") or "no matured labels yet"))
        est = (s.estimated or {}).get("roc_auc")
        if est is not None:
            perf += f"; estimated AUC {est:.3f} (CBPE, no labels needed)"
        console.print(f"      {s.segment} (v{s.model_version}): {drift}; {perf}")
    for line in render.decision_lines(run, width=220, skip_ok=True):
        console.print(f"        {line}", highlight=False)


def _print_journeys(console: Console, rt, mapped, sim_dir: Path) -> None:
    """Where to open the maps, the top friction point with the attribution in one table,
    and the simulated dead end against the exit rate measured for it."""
    from journey_ml.jobs import JourneysParams, run_journeys
    from journey_ml.simulate.truth import dead_end

    for m in mapped.maps:
        if m.segment == "all":
            console.print(f"    {m.task}: {m.journeys:,} journeys, {m.conversions:,} conversions; "
                          f"open [bold]{m.report_html}[/]")
    main = next((m for m in mapped.maps if m.segment == "all" and m.attribution is not None), None)
    if main is not None:
        console.print(render.attribution_table(main, top_friction=main.top_friction))
    truth = dead_end(sim_dir, mapped.as_of, rt.config.journeys.gap_days, rt.config.journeys.lookback_days)
    from journey_ml.cli._common import now

    steps = run_journeys(rt, JourneysParams(computed_at=now(),
                                            tasks=(main.task,) if main else (), as_of=mapped.as_of,
                                            segments=("all",), level="event_type", sections=("friction",),
                                            report=False, log_run=False, lift=False))
    f = steps.maps[0].friction.set_index("step") if steps.maps else None
    if f is not None and truth.step in f.index:
        got = f.loc[truth.step]
        console.print(f"    known dead end (simulated): {truth.step}: exit rate {got['exit_rate']:.0%} measured "
                      f"({int(got['exits'])} of {int(got['journeys'])} journeys), {truth.exit_rate:.0%} by "
                      f"construction ({truth.gone_dark} of {truth.visitors} visitors went dark)", highlight=False)
    lifted = mapped.lift
    if not lifted.empty:
        whole = lifted[(lifted["band"] == "(all)") & (lifted["segment"] == "(all)")]
        newest = sorted(whole["score_as_of"].unique())[-2:]
        if len(newest):  # the walk scored every fortnight: the newest matured dates
            whole = whole[whole["score_as_of"].isin(newest)]
        console.print(render.lift_table(whole, rt.config.journeys.lift_min_n))


def run_demo(config_path: Path | None = None, accounts: int | None = None, fresh: bool = True,
             console: Console | None = None) -> dict:
    """Simulate (with a behaviour drift), ingest, then two periods: train and score as of a first
    date, score and monitor a second period (drift detected, alerts, the policy acting); print
    the summary and each segment's timeline. Returns the flows' typed results by stage."""
    # piped into a log, Rich would wrap the wide tables (leaderboard, lift) at 80 columns
    console = console or Console(width=None if os.environ.get("COLUMNS") or sys.stdout.isatty() else 120)
    from journey_ml.settings import Settings

    settings = Settings()
    home = settings.home
    refusal = _refusal(settings)
    if refusal:
        raise DemoRefused(refusal)
    if fresh and home.exists():
        _wipe(home)
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str((home / "prefect").resolve()))
    _quiet_prefect()

    import flows  # noqa: F401  (telemetry defaults)
    from flows.features import features_flow
    from flows.ingest import ingest_flow
    from flows.journeys import journeys_flow
    from flows.monitor import monitor_flow
    from flows.score import score_flow
    from flows.simulate import simulate_flow
    from flows.train import train_flow
    from journey_ml.db import upgrade
    from journey_ml.runtime import Runtime
    from journey_ml.scoring.stored import top_scores
    from journey_ml.training import data_end

    cfg = str(config_path) if config_path else None
    t0 = time.perf_counter()
    summary: dict = {}

    console.rule("[bold]journey-ml demo")
    console.print(f"home: {home.resolve()}  (SQLite warehouse, local MLflow, Prefect ephemeral API)")
    console.print("PII salt: " + ("the fixed development salt (demo only: anything else needs JOURNEY_PII_SALT)"
                                  if settings.uses_dev_salt else "JOURNEY_PII_SALT"))

    rt = Runtime.load(config_path=cfg)
    upgrade(rt.engine)  # the demo owns its warehouse; other commands only check the schema
    scenario = DemoScenario.of(rt.config.simulation)
    console.print("\n[bold]1/8 simulate[/] source exports (CRM, web, email, webinars, sales, support, billing, "
                  f"product) to {scenario.end}: web tracking loses 90% of its events from {scenario.outage} and "
                  f"what converts changes from {scenario.shift} (sales-led deals stall, a free workspace sells)")
    sim = simulate_flow(accounts=accounts, config_path=cfg, end=scenario.end.isoformat(),
                        tracking_outage_from=scenario.outage.isoformat(),
                        conversion_shift_from=scenario.shift.isoformat())
    summary["simulation"] = sim
    console.print(f"    {sim.accounts:,} accounts, {sim.contacts:,} contacts, {sim.events:,} events "
                  f"({sim.dirty_rows:,} deliberately bad rows) in {sim.out_dir}")

    console.print("\n[bold]2/8 ingest[/] into the warehouse (validated, de-duplicated, quarantined)")
    ingested = ingest_flow(config_path=cfg)
    summary["ingest"] = ingested
    console.print(render.ingest_table(ingested.runs))

    end = data_end(rt.engine)
    p1 = _utc_day(scenario.train_at)
    console.print(f"\n[bold]3/8 features[/] as of {p1:%Y-%m-%d} (point-in-time, segments stored per date)")
    snaps = features_flow(config_path=cfg, as_of=p1)
    summary["features"] = snaps
    for s in snaps.snapshots:
        console.print(f"    {s.task}: {s.entities:,} entities x {s.features} features"
                      + (f", {s.positive_rate:.1%} positive" if s.positive_rate is not None else ""))
        for name, counts in s.segments.items():
            console.print(f"      {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

    console.print(f"\n[bold]4/8 train[/] as of {p1:%Y-%m-%d}: one calibrated model per segment + a pooled "
                  "global model; promote only if better than production on the same holdout")
    trained = train_flow(config_path=cfg, as_of=p1, now=p1)
    summary["training"] = trained
    console.print(render.leaderboard(trained))

    console.print(f"\n[bold]5/8 score[/] as of {p1:%Y-%m-%d} every prospect and customer: probability, band, "
                  "reasons, next-best action")
    scored = score_flow(config_path=cfg, as_of=p1)
    summary["scoring"] = scored
    for r in scored.runs:
        modes = ", ".join(f"{k} {v}" for k, v in r.modes.items())
        console.print(f"    {r.task}: {r.rows_written:,} scores ({modes})")
        console.print(render.top_scores_table(top_scores(rt.engine, r.task, r.as_of, 5), r.task))

    dates = _walk_dates(p1, end, scenario.every_days)
    console.print(f"\n[bold]6/8 operate[/] {len(dates)} runs, every {scenario.every_days} days from "
                  f"{dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d} on the simulated clock: score, then monitor "
                  "(drift, estimated and matured performance, the policy's decisions, inline retraining, "
                  "alerts). Production runs this daily (journey-cycle); nothing below is scripted")
    summary["monitoring"] = []
    for when in dates:
        score_flow(config_path=cfg, as_of=when)
        monitored = monitor_flow(config_path=cfg, as_of=when, now=when)
        summary["monitoring"].append(monitored)
        for run in monitored.runs:
            for line in render.walk_lines(run):
                console.print(f"    {line}", highlight=False)
    final = summary["monitoring"][-1]
    for run in final.runs:
        _print_monitoring(console, run)
    rescored = score_flow(config_path=cfg, as_of=end)
    for r in rescored.runs:
        modes = ", ".join(f"{k} {v}" for k, v in r.modes.items())
        console.print(f"    rescored {r.task} as of {end:%Y-%m-%d}: {r.rows_written:,} scores ({modes})")

    console.print(f"\n[bold]7/8 journey map[/] as of {end:%Y-%m-%d}: paths, friction, attribution, next step, "
                  "lift of the actions scored in period 1 (matured)")
    mapped = journeys_flow(config_path=cfg, as_of=end)
    summary["journeys"] = mapped
    _print_journeys(console, rt, mapped, sim.out_dir)

    console.print("\n[bold]8/8 the story[/]: the first time the policy took each kind of step "
                  "(its own decisions on the data; per segment history: journey-ml models history)")
    summary["story"] = story(summary["monitoring"], min(scenario.outage, scenario.shift))
    for key, label in STORY:
        got = summary["story"].get(key)
        if got is None:
            console.print(f"    [red]not seen[/]  {label}", highlight=False)
        else:
            at, where, what = got
            console.print(f"    {at:%Y-%m-%d} {where:<22} {label}: {render._cut(what, 160)}", highlight=False)
    gap = _estimate_gap(summary["monitoring"])
    if gap is not None:
        at, where, real, est = gap
        console.print(f"    note: on {at:%Y-%m-%d} {where} had AUC {real:.3f} on matured labels while CBPE estimated "
                      f"{est:.3f}: CBPE estimates under covariate shift, not under a change in what converts, "
                      "which only matured labels show (README, Monitoring)", highlight=False)

    top_unknown = ", ".join(f"{k} ({v})" for k, v in list(ingested.unknown_event_types().items())[:4])
    elapsed = time.perf_counter() - t0
    console.rule("[bold]summary")
    console.print(f"[bold]{ingested.total('rows_loaded'):,}[/] rows loaded of {ingested.total('rows_read'):,} read: "
                  f"{ingested.total('rows_duplicate'):,} duplicates skipped, {ingested.total('rows_rejected'):,} rejected to "
                  "quarantine with a reason -- "
                  + ("[green]every row accounted for[/]" if ingested.balanced else "[red]COUNTS DO NOT ADD UP[/]"))
    if top_unknown:
        console.print(f"unknown event names kept and reported: {top_unknown}")
    console.print(f"warehouse: {rt.engine.url.render_as_string(hide_password=True)}")
    console.print("rejects:   .venv/bin/journey-ml quarantine list [--source web] [--reason timestamp] [--json]")
    promoted = [f"{o.task}/{o.segment} v{o.version}" for o in trained.by_status("promoted")]
    pooled = [f"{o.task}/{o.segment}" for o in trained.by_status("pooled")]
    console.print(f"promoted to production: {', '.join(promoted) or 'none'}")
    if pooled:
        console.print(f"too small for their own model (scored by the global model): {', '.join(pooled)}")
    console.print(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}")
    decided = [a for m in summary["monitoring"] for a in m.actions()]
    counts: dict[str, int] = {}
    for _, _, k in decided:
        counts[k] = counts.get(k, 0) + 1
    console.print("monitoring actions: " + (", ".join(f"{k} x{n}" for k, n in counts.items()) or "none")
                  + f" over {len(summary['monitoring'])} runs")
    missing = [label for key, label in STORY if key not in summary["story"]]
    console.print("the story: " + ("[green]all five kinds of step seen[/]" if not missing
                                   else "[red]not seen: " + "; ".join(missing) + "[/]"))
    alerts = rt.config.monitoring.alert_urls(home)
    console.print(f"alerts sent to: {', '.join(alerts) or 'none'}")
    console.print("timeline: .venv/bin/journey-ml models history; reports: .venv/bin/journey-ml reports list")
    console.print("journeys: .venv/bin/journey-ml journeys map|paths|friction|attribution|next|lift [--json]")
    console.print(f"finished in {elapsed:.0f} s")
    return summary
