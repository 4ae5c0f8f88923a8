"""`journey-ml`: one console script whose commands call the same jobs the flows call.

Every command prints a table (or ``--json``), shows progress for long work, and exits
non-zero with one clear line on a user error, never a traceback.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
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
    console,
    emit_json,
    fail,
    guarded,
    now,
    out,
    progress,
    runtime,
    user_errors,
)

app = typer.Typer(name="journey-ml", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="Predictive customer journey mapping: ingest, features, models, scores.")
db_app = typer.Typer(no_args_is_help=True, help="Warehouse schema (Alembic migrations).")
config_app = typer.Typer(no_args_is_help=True, help="Configuration file.")
features_app = typer.Typer(no_args_is_help=True, help="Point-in-time features.")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(features_app, name="features")


@app.callback()
def _options(verbose: Annotated[bool, typer.Option("--verbose", help="Also show MLflow's download "
                                                   "progress bars and INFO logs (hidden by default).")] = False
             ) -> None:
    """Predictive customer journey mapping: ingest, features, models, scores."""
    if verbose:
        import logging
        import os

        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "true"
        os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO"
        logging.basicConfig(level=logging.INFO)


def _mount() -> None:
    from journey_ml.cli.cycle import cycle
    from journey_ml.cli.journeys import journeys_app
    from journey_ml.cli.models import models_app
    from journey_ml.cli.monitor import monitor, reports_app
    from journey_ml.cli.quarantine import quarantine_app
    from journey_ml.cli.serve import serve
    from journey_ml.cli.status import status

    app.add_typer(models_app, name="models", help="Registry: list, history, promote, rollback.")
    app.command("monitor")(monitor)
    app.command("cycle")(cycle)
    app.add_typer(reports_app, name="reports", help="Monitoring reports: list, open.")
    app.command("serve")(serve)
    app.command("status")(status)
    app.add_typer(quarantine_app, name="quarantine", help="Rejected rows: list them with their reasons.")
    app.add_typer(journeys_app, name="journeys", help="Journey mapping: map, paths, friction, attribution, "
                  "next, lift.")


# --- db ---------------------------------------------------------------------------------


@db_app.command("upgrade")
@guarded
def db_upgrade(config: ConfigOpt = None,
               revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Create or migrate the warehouse schema to the newest revision."""
    from journey_ml.db import upgrade

    rt = runtime(config)
    rev = upgrade(rt.engine, revision)
    out.print(f"warehouse at revision [bold]{rev}[/] ({rt.engine.url.render_as_string(hide_password=True)})")


@db_app.command("current")
@guarded
def db_current(config: ConfigOpt = None) -> None:
    """Show the warehouse's schema revision and the newest one available."""
    from journey_ml.db.migrate import current_revision, head_revision

    rt = runtime(config)
    out.print(f"current: {current_revision(rt.engine) or 'none'}  head: {head_revision()}")


# --- config -----------------------------------------------------------------------------


@config_app.command("check")
@guarded
def config_check(config: ConfigOpt = None) -> None:
    """Validate the configuration file and list its sources."""
    from rich.table import Table

    rt = runtime(config)
    t = Table(title="sources")
    for col in ("name", "kind", "path", "format"):
        t.add_column(col)
    for s in rt.config.sources:
        t.add_row(s.name, str(s.kind), str(rt.data_dir / s.path), s.format)
    out.print(t)
    from journey_ml.features import event_types_in_data

    try:
        seen = event_types_in_data(rt.engine)
    except Exception as e:  # noqa: BLE001 - the check against the data is optional
        seen = None
        console.print(f"[yellow]note:[/] event types not checked against the warehouse ({type(e).__name__})",
                      highlight=False)
    for w in rt.config.unknown_event_types(seen):
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    out.print(f"[green]ok[/]: {len(rt.config.sources)} sources, {len(rt.config.taxonomy)} event types")


# --- simulate ---------------------------------------------------------------------------


@app.command()
@guarded
def simulate(
    config: ConfigOpt = None,
    accounts: Annotated[int | None, typer.Option(help="Number of accounts (companies).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    drift_from: Annotated[str | None, typer.Option(help="Inject a behaviour shift from this day.")] = None,
    conversion_shift_from: Annotated[str | None, typer.Option(
        help="Change what converts from this day: sales-led deals stall, a free workspace converts on its own.")] = None,
    tracking_outage_from: Annotated[str | None, typer.Option(
        help="Break the website's tracking from this day: most web events are never recorded.")] = None,
    dirty_rate: Annotated[float | None, typer.Option(help="Share of deliberately bad event rows.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder "
                       "(default: the config's data_dir).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write realistic, seeded source exports (CRM, web, email, webinars, sales, support, billing)."""
    from journey_ml.jobs import run_simulation, simulation_params

    rt = runtime(config)
    total = simulation_params(rt.config.simulation, accounts=accounts).accounts
    with progress() as prog:
        bar = prog.add_task("simulating accounts", total=total)
        result = run_simulation(rt, out_dir, progress=lambda done, _total: prog.update(bar, completed=done),
                                accounts=accounts, seed=seed, start=start, end=end, drift_from=drift_from,
                                conversion_shift_from=conversion_shift_from, dirty_rate=dirty_rate,
                                tracking_outage_from=tracking_outage_from)
    if as_json:
        emit_json({**asdict(result), "out_dir": str(result.out_dir)})
        return
    out.print(render.simulation_table(result))
    out.print(f"{result.accounts:,} accounts, {result.contacts:,} contacts, {result.events:,} events "
              f"({result.dirty_rows:,} deliberately bad rows)")


# --- ingest -----------------------------------------------------------------------------


@app.command()
@guarded
def ingest(
    config: ConfigOpt = None,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Source name "
                      "(repeatable; default: all configured sources, in order).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder relative source paths resolve "
                        "against (default: the config's data_dir).")] = None,
    incremental: Annotated[bool, typer.Option(help="Only files changed since the last run, "
                           "minus the configured overlap window.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Load source exports into the warehouse: validated, de-duplicated, every row accounted for."""
    from journey_ml.jobs import IngestParams, run_ingest

    rt = runtime(config)
    with progress(bytes_=True) as prog:
        bars: dict[str, int] = {}

        def report(p):
            if p.source not in bars:
                bars[p.source] = prog.add_task(f"ingest {p.source}", total=None)
            prog.update(bars[p.source], completed=p.bytes_done, total=p.bytes_total,
                        description=f"ingest {p.source} [dim]{p.file}[/]")

        result = run_ingest(rt, IngestParams(received_at=now(), sources=tuple(source or ()),
                                             incremental=incremental, data_dir=data_dir), progress=report)
    if as_json:
        emit_json({"runs": [r.to_dict() for r in result.runs], "error": result.error})
    else:
        out.print(render.ingest_table(result.runs))
        for r in result.runs:
            for a in r.abandoned:
                console.print(f"[yellow]note:[/] earlier run {a.run_id} of {a.source} (started "
                              f"{a.started_at:%Y-%m-%d %H:%M} UTC) marked abandoned: {a.reason}", highlight=False)
    if result.error:
        fail(result.error)


# --- features / train / score ---------------------------------------------------------------


AllowEmptyOpt = Annotated[bool, typer.Option("--allow-empty", help="Exit 0 even when a task's population "
                          "is empty (nothing to do).")]


def _refuse_empty(rt, tasks: list[str], as_of, data_end, allow: bool) -> None:
    from journey_ml.jobs import empty_population

    if tasks and not allow:
        fail("; ".join(empty_population(rt.engine, rt.config, t, as_of, data_end) for t in tasks)
             + " -- nothing written for it (pass --allow-empty to accept)")


@features_app.command("build")
@guarded
def features_build(config: ConfigOpt = None, task: TasksOpt = None, as_of: AsOfOpt = None,
                   allow_empty: AllowEmptyOpt = False, as_json: JsonOpt = False) -> None:
    """Build and store feature snapshots (and segment memberships) as of a date."""
    from journey_ml.jobs import FeaturesParams, run_features

    rt = runtime(config)
    result = run_features(rt, FeaturesParams(tasks=tuple(task or ()), as_of=as_of_option(as_of), created_at=now()))
    if as_json:
        emit_json([r.to_dict() for r in result.snapshots])
    else:
        out.print(render.features_table(result))
    _refuse_empty(rt, [s.task for s in result.snapshots if s.entities == 0], result.as_of, result.data_end,
                  allow_empty)


@app.command()
@guarded
def train(
    config: ConfigOpt = None,
    task: TasksOpt = None,
    segment: Annotated[list[str] | None, typer.Option("--segment", help="Segment (repeatable; "
                       "default: global and every segment).")] = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train calibrated per-segment models, log them to MLflow, gate and promote."""
    from journey_ml.jobs import TrainingParams, run_training

    rt = runtime(config)
    if not as_json:
        console.print("building the training frames and training every segment ...")
    result = run_training(rt, TrainingParams(tasks=tuple(task or ()), segments=tuple(segment or ()),
                                             as_of=as_of_option(as_of), actor="cli"))
    if as_json:
        emit_json({"outcomes": [o.to_dict() for o in result.outcomes],
                   "failures": [asdict(f) for f in result.failures]})
    else:
        if result.outcomes:
            out.print(render.leaderboard(result))
            for line in render.leaderboard_reasons(result):
                out.print(line, markup=False, highlight=False)
            uri = rt.settings.tracking_uri
            out.print(f"MLflow: {uri}  (mlflow ui --backend-store-uri {uri})")
    if result.failures:
        fail("; ".join(f"{f.task}: {f.reason}" for f in result.failures))


@app.command()
@guarded
def score(
    config: ConfigOpt = None,
    task: TasksOpt = None,
    as_of: AsOfOpt = None,
    top: Annotated[int, typer.Option(help="Show the top N scores of each task.")] = 5,
    allow_empty: AllowEmptyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Score every entity of each task as of a date: probability, band, reasons, next-best action."""
    from journey_ml.jobs import ScoringParams, run_scoring
    from journey_ml.scoring.stored import top_scores

    rt = runtime(config)
    result = run_scoring(rt, ScoringParams(scored_at=now(), tasks=tuple(task or ()), as_of=as_of_option(as_of)))
    if as_json:
        emit_json([r.to_dict() for r in result.runs])
    else:
        for r in result.runs:
            out.print(render.score_summary_table(r))
            if r.entities:
                out.print(render.top_scores_table(top_scores(rt.engine, r.task, r.as_of, top), r.task))
    _refuse_empty(rt, result.empty_tasks(), result.as_of, result.data_end, allow_empty)


# --- forget -----------------------------------------------------------------------------


@app.command()
@guarded
def forget(
    config: ConfigOpt = None,
    contact: Annotated[str | None, typer.Option(help="Contact id to erase.")] = None,
    account: Annotated[str | None, typer.Option(help="Account id to erase (with its contacts).")] = None,
    actor: Annotated[str, typer.Option(help="Who asked (kept in the erasure log).")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Erase a person (or a company and its people) from every table we own."""
    from journey_ml.erasure import forget as run_forget
    from journey_ml.jobs import require_schema

    if (contact is None) == (account is None):
        fail("give exactly one of --contact or --account")
    rt = runtime(config)
    require_schema(rt.engine)
    kind, sid = ("contact", contact) if contact is not None else ("account", account)
    res = run_forget(rt.engine, kind, sid, salt=rt.salt, actor=actor, at=now())
    if as_json:
        emit_json({"subject_kind": res.subject_kind, "subject_hash": res.subject_hash,
                   "rows_deleted": res.rows_deleted, "contacts_erased": res.contacts_erased,
                   "case_variants": res.case_variants})
        return
    out.print(render.erasure_table(kind, res))
    if res.case_variants:  # ids are case-sensitive: a wrong-case request erases nobody else
        console.print(f"[yellow]note:[/] ids are compared exactly; stored {kind} ids differing only in letter "
                      f"case were NOT erased: {', '.join(res.case_variants)}", highlight=False)


# --- demo -------------------------------------------------------------------------------


@app.command()
@guarded
def demo(
    config: ConfigOpt = None,
    accounts: Annotated[int | None, typer.Option(help="Accounts to simulate.")] = None,
    fresh: Annotated[bool, typer.Option(help="Start from an empty JOURNEY_HOME.")] = True,
) -> None:
    """The whole loop on the embedded default (SQLite, local MLflow, Prefect's ephemeral API)."""
    from journey_ml.cli.demo import run_demo

    run_demo(config_path=config, accounts=accounts, fresh=fresh)  # its own console: 120 columns when piped


_mount()


def main() -> None:
    """Console-script entry point: a usage error is two lines and exit 2; a user error one
    line and exit 1; anything else is a bug and keeps its traceback."""
    try:
        rc = app(standalone_mode=False)
        # click returns (not raises) the code of typer.Exit when not standalone
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except user_errors() as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(1)
    except typer.TyperException as e:  # click's usage errors (typer vendors click)
        show = getattr(e, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(e, "exit_code", 2))


if __name__ == "__main__":
    main()
