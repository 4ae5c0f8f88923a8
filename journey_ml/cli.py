"""`journey-ml`: one console script whose commands call the same functions the flows call.

Every command prints a table (or ``--json``), shows progress for long work, and exits
non-zero with one clear line on error, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from journey_ml.config import ConfigError

app = typer.Typer(name="journey-ml", no_args_is_help=True, add_completion=False,
                  help="Predictive customer journey mapping: ingest, features, models, scores.")
db_app = typer.Typer(no_args_is_help=True, help="Warehouse schema (Alembic migrations).")
config_app = typer.Typer(no_args_is_help=True, help="Configuration file.")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")


def _mount_models() -> None:
    from journey_ml.cli_models import models_app

    app.add_typer(models_app, name="models", help="Registry: list, history, promote, rollback.")


_mount_models()


def _mount_monitor() -> None:
    from journey_ml.cli_monitor import register

    register(app)


_mount_monitor()


def _mount_serve() -> None:
    from journey_ml.cli_serve import serve

    app.command("serve")(serve)


_mount_serve()

# soft_wrap: an error line stays one line, whatever the terminal width
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration file "
                      "(default: JOURNEY_CONFIG_PATH, else the packaged default).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

# Errors a user can fix: shown as one line, exit 1. Anything else is a bug: traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, ValueError, FileNotFoundError)


def _fail(msg: str) -> None:
    console.print(f"[bold red]error:[/] {msg}", highlight=False, markup=True)
    raise typer.Exit(1)


def _runtime(config: Path | None):
    from journey_ml.runtime import Runtime

    return Runtime.load(config_path=config)


def _now() -> datetime:
    return datetime.now(UTC)


def _emit_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


# --- db ---------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None,
               revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Create or migrate the warehouse schema to the newest revision."""
    from journey_ml.db import upgrade

    rt = _runtime(config)
    rev = upgrade(rt.engine, revision)
    out.print(f"warehouse at revision [bold]{rev}[/] ({rt.engine.url.render_as_string()})")


@db_app.command("current")
def db_current(config: ConfigOpt = None) -> None:
    """Show the warehouse's schema revision and the newest one available."""
    from journey_ml.db.migrate import current_revision, head_revision

    rt = _runtime(config)
    out.print(f"current: {current_revision(rt.engine) or 'none'}  head: {head_revision()}")


# --- config -----------------------------------------------------------------------------


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the configuration file and list its sources."""
    rt = _runtime(config)
    t = Table(title="sources")
    for col in ("name", "kind", "path", "format"):
        t.add_column(col)
    for s in rt.config.sources:
        t.add_row(s.name, str(s.kind), str(rt.data_dir / s.path), s.format)
    out.print(t)
    out.print(f"[green]ok[/]: {len(rt.config.sources)} sources, {len(rt.config.taxonomy)} event types")


# --- simulate ---------------------------------------------------------------------------


@app.command()
def simulate(
    config: ConfigOpt = None,
    accounts: Annotated[int | None, typer.Option(help="Number of accounts (companies).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    drift_from: Annotated[str | None, typer.Option(help="Inject a behaviour shift from this day.")] = None,
    dirty_rate: Annotated[float | None, typer.Option(help="Share of deliberately bad event rows.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder "
                       "(default: the config's data_dir).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write realistic, seeded source exports (CRM, web, email, webinars, sales, support, billing)."""
    from journey_ml.simulate import simulate as run_simulation

    rt = _runtime(config)
    params = simulation_params(rt.config.simulation, accounts=accounts, seed=seed, start=start,
                               end=end, drift_from=drift_from, dirty_rate=dirty_rate)
    target = out_dir or rt.data_dir
    with _progress() as prog:
        task = prog.add_task("simulating accounts", total=params.accounts)
        result = run_simulation(params, target,
                                progress=lambda done, total: prog.update(task, completed=done))
    if as_json:
        _emit_json({"out_dir": str(result.out_dir), "files": result.files, "events": result.events,
                    "accounts": result.accounts, "contacts": result.contacts,
                    "dirty_rows": result.dirty_rows})
        return
    t = Table(title=f"simulated exports in {result.out_dir}")
    t.add_column("file")
    t.add_column("rows", justify="right")
    for f, n in sorted(result.files.items()):
        t.add_row(f, f"{n:,}")
    out.print(t)
    out.print(f"{result.accounts:,} accounts, {result.contacts:,} contacts, {result.events:,} events "
              f"({result.dirty_rows:,} deliberately bad rows)")


def simulation_params(defaults, **overrides):
    """SimulationParams from the config's defaults and command-line overrides."""
    from journey_ml.simulate import SimulationParams

    vals = defaults.model_dump()
    vals.update({k: v for k, v in overrides.items() if v is not None})

    def _d(v: str | None) -> date | None:
        if v is None:
            return None
        try:
            return date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"not a date (YYYY-MM-DD): {v!r}") from None

    return SimulationParams(accounts=vals["accounts"], seed=vals["seed"], start=_d(vals["start"]),
                            end=_d(vals["end"]), drift_from=_d(vals["drift_from"]),
                            dirty_rate=vals["dirty_rate"])


# --- ingest -----------------------------------------------------------------------------


@app.command()
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
    from journey_ml.db import upgrade
    from journey_ml.ingest import IngestError, ingest_source

    rt = _runtime(config)
    upgrade(rt.engine)
    names = source or [s.name for s in rt.config.sources]
    for n in names:
        rt.config.source(n)  # unknown names fail before anything is loaded
    results = []
    failed = None
    with _progress(bytes_=True) as prog:
        for name in names:
            task = prog.add_task(f"ingest {name}", total=None)

            def report(p, task=task):
                prog.update(task, completed=p.bytes_done, total=p.bytes_total,
                            description=f"ingest {p.source} [dim]{p.file}[/]")

            try:
                results.append(ingest_source(
                    rt.engine, rt.config, name, data_dir=data_dir or rt.data_dir, salt=rt.salt,
                    received_at=_now(), batch_rows=rt.settings.ingest_batch_rows,
                    incremental=incremental, progress=report))
            except IngestError as e:
                failed = str(e)
                break
    if as_json:
        _emit_json({"runs": [r.to_dict() for r in results], "error": failed})
    else:
        out.print(ingest_table(results))
    if failed:
        _fail(failed)


def ingest_table(results) -> Table:
    """A summary table of ingest runs that fits 80 columns (also used by the demo)."""
    t = Table(title="ingestion", title_justify="left")
    for col in ("source", "files", "read", "loaded", "dup", "rejected", "erased", "unknown"):
        t.add_column(col, justify="left" if col == "source" else "right")
    for r in results:
        d = r if isinstance(r, dict) else r.to_dict()
        unknown = sum((d["unknown_event_types"] or {}).values())
        t.add_row(d["source"], str(d["files"]), f"{d['rows_read']:,}", f"{d['rows_loaded']:,}",
                  f"{d['rows_duplicate']:,}", f"{d['rows_rejected']:,}", f"{d['rows_suppressed']:,}",
                  f"{unknown:,}")
    return t


# --- features / train ---------------------------------------------------------------------

features_app = typer.Typer(no_args_is_help=True, help="Point-in-time features.")
app.add_typer(features_app, name="features")
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="As-of time, ISO 8601 (UTC if no "
                    "offset); default: the newest event in the warehouse.")]


def _as_of(value: str | None, engine) -> tuple[datetime, datetime]:
    from journey_ml.training import data_end

    end = data_end(engine)
    if value is None:
        return end, end
    from journey_ml.cli_models import parse_utc

    return parse_utc(value, "--as-of"), end


@features_app.command("build")
def features_build(
    config: ConfigOpt = None,
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="Task (repeatable; default all).")] = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build and store feature snapshots (and segment memberships) as of a date."""
    from journey_ml.db import upgrade
    from journey_ml.snapshots import build_and_store

    rt = _runtime(config)
    upgrade(rt.engine)
    t, end = _as_of(as_of, rt.engine)
    names = task or list(rt.config.tasks)
    for n in names:
        rt.config.task(n)  # unknown task names fail before any work
    results = [build_and_store(rt.engine, rt.config, n, t, data_end=end,
                               created_at=_now()) for n in names]
    if as_json:
        _emit_json([r.to_dict() for r in results])
        return
    tb = Table(title=f"feature snapshots as of {t:%Y-%m-%d %H:%M}", title_justify="left")
    for col in ("task", "entities", "features", "labelled", "positive rate", "segments"):
        tb.add_column(col)
    for r in results:
        segs = "; ".join(f"{k}: " + ", ".join(f"{s} {n}" for s, n in sorted(v.items())) for k, v in r.segments.items())
        tb.add_row(r.task, f"{r.entities:,}", str(r.features), "yes" if r.labelled else "not yet",
                   "" if r.positive_rate is None else f"{r.positive_rate:.1%}", segs)
    out.print(tb)


@app.command()
def train(
    config: ConfigOpt = None,
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="Task (repeatable; default all).")] = None,
    segment: Annotated[list[str] | None, typer.Option("--segment", help="Segment (repeatable; "
                       "default: global and every segment).")] = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train calibrated per-segment models, log them to MLflow, gate and promote."""
    from journey_ml.db import upgrade
    from journey_ml.training import GLOBAL, prepare_training, train_segment

    rt = _runtime(config)
    upgrade(rt.engine)
    t, _ = _as_of(as_of, rt.engine)
    outcomes = []
    for name in task or list(rt.config.tasks):
        console.print(f"[bold]{name}[/]: building the training frame as of {t:%Y-%m-%d} ...")
        data = prepare_training(rt.engine, rt.config, name, t)
        for seg in segment or [GLOBAL, *data.segments()]:
            console.print(f"  training {name}/{seg} ...")
            outcomes.append(train_segment(data, seg, rt.config, rt.registry, rt.engine))
    if as_json:
        _emit_json([o.to_dict() for o in outcomes])
        return
    out.print(leaderboard(outcomes))
    out.print(f"MLflow: {rt.settings.tracking_uri}  (mlflow ui --backend-store-uri {rt.settings.tracking_uri})")


def leaderboard(outcomes) -> Table:
    """Per-segment results that fit 80 columns: held-out metrics, production, the gate."""
    from rich import box

    t = Table(title="leaderboard (test holdout = newest as-of date)", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for col in ("model", "status", "ver", "rows", "pos", "AUC", "Brier", "lift", "prod"):
        t.add_column(col, justify="left" if col in ("model", "status") else "right", no_wrap=True)
    for o in outcomes:
        d = o if isinstance(o, dict) else o.to_dict()
        m = d.get("metrics") or {}
        pm = d.get("production_metrics") or {}

        def f(v, fmt="{:.3f}"):
            return "" if v is None or v != v else fmt.format(v)

        style = {"promoted": "green", "staged": "yellow", "pooled": "dim", "failed": "red"}.get(d["status"], "")
        prod = f(pm.get("roc_auc")) + (f" v{d['production_version']}" if d.get("production_version") else "")
        t.add_row(f"{d['task']}/{d['segment']}", f"[{style}]{d['status']}[/]", f(d.get("version"), "v{}"),
                  f"{sum((d.get('rows') or {}).values()):,}", f"{sum((d.get('positives') or {}).values()):,}",
                  f(m.get("roc_auc")), f(m.get("brier")), f(m.get("lift_top_decile"), "{:.1f}x"), prod)
    return t


@app.command()
def score(
    config: ConfigOpt = None,
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="Task (repeatable; default all).")] = None,
    as_of: AsOfOpt = None,
    top: Annotated[int, typer.Option(help="Show the top N scores of each task.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Score every entity of each task as of a date: probability, band, reasons, next-best action."""
    import uuid

    from journey_ml.db import upgrade
    from journey_ml.scoring import open_registry, score_summary_table, score_task

    rt = _runtime(config)
    upgrade(rt.engine)
    t, _ = _as_of(as_of, rt.engine)
    registry = open_registry(lambda: rt.registry)
    run_id = str(uuid.uuid4())
    results = []
    for name in task or list(rt.config.tasks):
        rt.config.task(name)
        results.append(score_task(rt.engine, registry, rt.config, name, t, run_id=run_id, scored_at=_now()))
    if as_json:
        _emit_json([r.to_dict() for r in results])
        return
    for r in results:
        out.print(score_summary_table(r))
        out.print(top_scores_table(rt.engine, r.task, r.as_of, top))


def top_scores_table(engine, task: str, as_of: datetime, n: int = 5) -> Table:
    """The highest scores of a task as of a date, with their reasons and action."""
    from sqlalchemy import select

    from journey_ml.db.models import Score

    s = Score.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(s).where(s.c.task == task, s.c.as_of == as_of)
                            .order_by(s.c.probability.desc()).limit(n)).mappings().all()
    t = Table(title=f"top {task} scores", title_justify="left", show_lines=True)
    for col in ("entity", "p", "band", "why", "next action"):
        t.add_column(col, justify="right" if col == "p" else "left")
    for r in rows:
        why = "\n".join(x.get("text", "") for x in (r["reasons"] or [])[:3])
        action = (r["action"] or "") + (" [dim](holdout)[/]" if r["action_holdout"] else "")
        t.add_row(r["entity_id"], f"{r['probability']:.2f}", r["band"], why, action)
    return t


# --- forget -----------------------------------------------------------------------------


@app.command()
def forget(
    config: ConfigOpt = None,
    contact: Annotated[str | None, typer.Option(help="Contact id to erase.")] = None,
    account: Annotated[str | None, typer.Option(help="Account id to erase (with its contacts).")] = None,
    actor: Annotated[str, typer.Option(help="Who asked (kept in the erasure log).")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Erase a person (or a company and its people) from every table we own."""
    from journey_ml.db import upgrade
    from journey_ml.erasure import forget as run_forget

    if (contact is None) == (account is None):
        _fail("give exactly one of --contact or --account")
    rt = _runtime(config)
    upgrade(rt.engine)
    kind, sid = ("contact", contact) if contact is not None else ("account", account)
    res = run_forget(rt.engine, kind, sid, salt=rt.salt, actor=actor, at=_now())
    if as_json:
        _emit_json({"subject_kind": res.subject_kind, "subject_hash": res.subject_hash,
                    "rows_deleted": res.rows_deleted, "contacts_erased": res.contacts_erased})
        return
    t = Table(title=f"erased {kind} (tombstone {res.subject_hash[:12]}...)")
    t.add_column("table")
    t.add_column("rows deleted", justify="right")
    for k, v in sorted(res.rows_deleted.items()):
        t.add_row(k, str(v))
    out.print(t)


# --- demo -------------------------------------------------------------------------------


@app.command()
def demo(
    config: ConfigOpt = None,
    accounts: Annotated[int | None, typer.Option(help="Accounts to simulate.")] = None,
    fresh: Annotated[bool, typer.Option(help="Start from an empty JOURNEY_HOME.")] = True,
) -> None:
    """The whole loop on the embedded default (SQLite, local MLflow, Prefect's ephemeral API)."""
    # the CLI is an entry point: it may start flows (the library itself never imports Prefect)
    from flows.demo import run_demo

    run_demo(config_path=config, accounts=accounts, fresh=fresh, console=out)


def _progress(bytes_: bool = False) -> Progress:
    cols = [TextColumn("{task.description}"), BarColumn()]
    cols.append(DownloadColumn() if bytes_ else TextColumn("{task.completed:,.0f}/{task.total:,.0f}"))
    cols.append(TimeElapsedColumn())
    return Progress(*cols, console=console, transient=False,
                    disable=not console.is_terminal and not os.environ.get("JOURNEY_PROGRESS"))


def main() -> None:
    """Console-script entry point: user errors become one line and exit code 1."""
    try:
        rc = app(standalone_mode=False)
        # click returns (not raises) the code of typer.Exit when not standalone
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except _USER_ERRORS as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(1)
    except Exception as e:  # click usage errors and friends
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if type(e).__module__.startswith("journey_ml"):
            console.print(f"[bold red]error:[/] {e}", highlight=False)
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
