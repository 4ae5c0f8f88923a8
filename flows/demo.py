"""`make demo`: the whole loop on the embedded default, with progress and a readable summary.

Runs each stage as its own Prefect flow (against Prefect's ephemeral API unless
PREFECT_API_URL points at a server) and prints what happened in plain terms.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from rich.console import Console


def _quiet_prefect() -> None:
    # the ephemeral server logs every request; the demo prints its own progress
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("PREFECT_LOGGING_LOG_PRINTS", "false")
    for name in ("prefect", "httpx", "uvicorn", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_demo(config_path: Path | None = None, accounts: int | None = None, fresh: bool = True,
             console: Console | None = None) -> dict:
    """Simulate, ingest (and, as the platform grows, train, score, monitor); print a summary."""
    console = console or Console()
    from journey_ml.settings import Settings

    settings = Settings()
    home = settings.home
    if fresh and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str((home / "prefect").resolve()))
    _quiet_prefect()

    import flows  # noqa: F401  (telemetry defaults)
    from flows.features import features_flow
    from flows.ingest import ingest_flow
    from flows.score import score_flow
    from flows.simulate import simulate_flow
    from flows.train import train_flow
    from journey_ml.cli import ingest_table, leaderboard, top_scores_table

    cfg = str(config_path) if config_path else None
    t0 = time.perf_counter()
    summary: dict = {}

    console.rule("[bold]journey-ml demo")
    console.print(f"home: {home.resolve()}  (SQLite warehouse, local MLflow, Prefect ephemeral API)")

    console.print("\n[bold]1/5 simulate[/] source exports (CRM, web, email, webinars, sales, support, billing, product)")
    sim = simulate_flow(accounts=accounts, config_path=cfg)
    summary["simulation"] = sim
    console.print(f"    {sim['accounts']:,} accounts, {sim['contacts']:,} contacts, {sim['events']:,} events "
                  f"({sim['dirty_rows']:,} deliberately bad rows) in {sim['out_dir']}")

    console.print("\n[bold]2/5 ingest[/] into the warehouse (validated, de-duplicated, quarantined)")
    runs = ingest_flow(config_path=cfg)
    summary["ingest"] = runs
    console.print(ingest_table(runs))
    read = sum(r["rows_read"] for r in runs)
    loaded = sum(r["rows_loaded"] for r in runs)
    rejected = sum(r["rows_rejected"] for r in runs)
    dupes = sum(r["rows_duplicate"] for r in runs)
    balanced = all(r["balanced"] for r in runs)

    console.print("\n[bold]3/5 features[/] as of the newest event (point-in-time, segments stored per date)")
    snaps = features_flow(config_path=cfg)
    summary["features"] = snaps
    for s in snaps:
        console.print(f"    {s['task']}: {s['entities']:,} entities x {s['features']} features"
                      + (f", {s['positive_rate']:.1%} positive" if s.get("positive_rate") is not None else ""))
        for name, counts in s["segments"].items():
            console.print(f"      {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

    console.print("\n[bold]4/5 train[/] one calibrated model per segment + a pooled global model; "
                  "promote only if better than production on the same holdout")
    trained = train_flow(config_path=cfg)
    summary["training"] = trained
    console.print(leaderboard(trained))

    console.print("\n[bold]5/5 score[/] every prospect and customer: probability, band, reasons, next-best action")
    scored = score_flow(config_path=cfg)
    summary["scoring"] = scored
    from datetime import datetime as _dt

    from journey_ml.runtime import Runtime

    rt = Runtime.load(config_path=cfg)
    for r in scored:
        modes = ", ".join(f"{k} {v}" for k, v in r["modes"].items())
        console.print(f"    {r['task']}: {r['rows_written']:,} scores ({modes})")
        console.print(top_scores_table(rt.engine, r["task"], _dt.fromisoformat(r["as_of"]), 5))

    unknown: dict[str, int] = {}
    for r in runs:
        for k, v in (r["unknown_event_types"] or {}).items():
            unknown[k] = unknown.get(k, 0) + v
    top_unknown = ", ".join(f"{k} ({v})" for k, v in sorted(unknown.items(), key=lambda kv: -kv[1])[:4])

    elapsed = time.perf_counter() - t0
    console.rule("[bold]summary")
    console.print(f"[bold]{loaded:,}[/] rows loaded of {read:,} read: {dupes:,} duplicates skipped, "
                  f"{rejected:,} rejected to quarantine with a reason -- "
                  + ("[green]every row accounted for[/]" if balanced else "[red]COUNTS DO NOT ADD UP[/]"))
    if top_unknown:
        console.print(f"unknown event names kept and reported: {top_unknown}")
    console.print(f"warehouse: {settings.warehouse_url}")
    console.print(f"rejects:   sqlite3 {home / 'warehouse.db'} "
                  "\"select source, reason, count(*) from quarantine group by 1, 2\"")
    promoted = [f"{r['task']}/{r['segment']} v{r['version']}" for r in trained if r["status"] == "promoted"]
    pooled = [f"{r['task']}/{r['segment']}" for r in trained if r["status"] == "pooled"]
    console.print(f"promoted to production: {', '.join(promoted) or 'none'}")
    if pooled:
        console.print(f"too small for their own model (scored by the global model): {', '.join(pooled)}")
    console.print(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}")
    console.print("alias ledger: .venv/bin/journey-ml models history")
    console.print(f"finished in {elapsed:.0f} s")
    return summary
