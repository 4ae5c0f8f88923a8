"""Ingestion benchmark (issue #2): simulated events into PostgreSQL, ours vs the floor vs pandas.

* ours: `ingest_all` over every simulated source (validation, de-duplication, quarantine,
  ledger), events via the COPY fast path;
* floor: a raw COPY of the very rows we loaded, already clean, straight into the same final,
  indexed events table (no validation, no de-duplication);
* peer: pandas `read_csv` + `DataFrame.to_sql(method="multi")` of the same rows, on a sample
  (at ~5k rows/s the full set would take a quarter of an hour), reported as a rate.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import psycopg
import yaml

from tests.bench.common import ROOT, conninfo, drop_database, fresh_database, median, run_child

CACHE = ROOT / ".journey" / "bench"


def _simulate(events: int) -> tuple[Path, int]:
    from journey_ml.simulate import SimulationParams, simulate

    accounts = max(events // 175, 100)
    out = CACHE / f"sim-{accounts}"
    marker = out / "_done.json"
    if marker.exists():
        return out, json.loads(marker.read_text())["events"]
    res = simulate(SimulationParams(accounts=accounts, seed=11), out)
    marker.write_text(json.dumps({"events": res.events}))
    return out, res.events


def _config(data_dir: Path) -> Path:
    text = resources.files("journey_ml").joinpath("default_config.yaml").read_text()
    cfg = yaml.safe_load(text)
    cfg["data_dir"] = str(data_dir)
    path = data_dir / "_bench_config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _dump_events(db: str, path: Path) -> int:
    cols = "source, event_id, occurred_at, contact_id, account_id, event_type, channel, stage, value, properties"
    with psycopg.connect(conninfo(db)) as c, open(path, "wb") as f:
        f.write((cols.replace(" ", "") + "\n").encode())
        with c.cursor().copy(f"COPY (SELECT {cols} FROM events) TO STDOUT (FORMAT csv)") as cp:
            for chunk in cp:
                f.write(chunk)
        return c.execute("SELECT count(*) FROM events").fetchone()[0]


def run(events: int = 5_000_000, repeat: int = 3, peer_rows: int = 100_000, log=print) -> dict:
    """Run the ingestion benchmark; returns the figures for BENCHMARKS.md."""
    CACHE.mkdir(parents=True, exist_ok=True)
    log(f"ingest: simulating ~{events:,} events ...")
    data_dir, simulated = _simulate(events)
    config = _config(data_dir)
    clean_csv = CACHE / f"clean-{simulated}.csv"

    ours, floor, peer = [], [], []
    out = {}
    for i in range(repeat):
        db = fresh_database()
        try:
            m = run_child(["ingest-ours", "--db", db, "--config", str(config)])
            ours.append(m)
            log(f"  ours   run {i + 1}: {m.output['rows']:,} rows in {m.seconds:.1f} s "
                f"({m.output['rows'] / m.seconds:,.0f} rows/s), peak {m.peak_rss_mb:,.0f} MB")
            if i == 0:
                out["loaded"] = _dump_events(db, clean_csv)
                out.update({k: m.output[k] for k in ("rows", "loaded", "rejected", "duplicate", "balanced")})
        finally:
            drop_database(db)
        db = fresh_database()
        try:
            f = run_child(["ingest-copy", "--db", db, "--csv", str(clean_csv)])
            floor.append(f)
            log(f"  floor  run {i + 1}: {f.output['rows']:,} rows in {f.seconds:.1f} s "
                f"({f.output['rows'] / f.seconds:,.0f} rows/s)")
        finally:
            drop_database(db)
    db = fresh_database()
    try:
        p = run_child(["ingest-pandas", "--db", db, "--csv", str(clean_csv), "--rows", str(peer_rows)])
        peer.append(p)
        log(f"  pandas (sample): {p.output['rows']:,} rows in {p.seconds:.1f} s "
            f"({p.output['rows'] / p.seconds:,.0f} rows/s)")
    finally:
        drop_database(db)

    ours_rate = median([m.output["rows"] / m.seconds for m in ours])
    floor_rate = median([f.output["rows"] / f.seconds for f in floor])
    peer_rate = median([p.output["rows"] / p.seconds for p in peer])
    out.update({
        "events_in_exports": simulated,
        "ours_seconds": median([m.seconds for m in ours]),
        "ours_rows_per_s": ours_rate,
        "ours_peak_rss_mb": max(m.peak_rss_mb for m in ours),
        "floor_seconds": median([f.seconds for f in floor]),
        "floor_rows_per_s": floor_rate,
        "peer_rows_per_s": peer_rate,
        "peer_rows": peer_rows,
        "x_peer": ours_rate / peer_rate,
        "floor_ratio": floor_rate / ours_rate,
        "repeat": repeat,
    })
    return out


def markdown(r: dict) -> str:
    ok = lambda c: "met" if c else "**not met**"  # noqa: E731
    return f"""## Ingestion into PostgreSQL (issue #2)

{r['rows']:,} simulated source rows (all nine sources of `journey-ml simulate`, {r['events_in_exports']:,}
event rows in the exports plus accounts and contacts), medians of {r['repeat']} runs, each into a fresh database.
Ours loaded {r['loaded']:,}, rejected {r['rejected']:,} to quarantine and skipped {r['duplicate']:,} duplicates
(counts balanced: {r['balanced']}).

| contender | what it does | rows/s | time | ratio |
|---|---|---:|---:|---:|
| **journey-ml** `ingest_all` | read, validate, PII, dedup, quarantine, ledger, COPY | {r['ours_rows_per_s']:,.0f} | {r['ours_seconds']:.1f} s | 1.00 |
| floor: raw `COPY` | the same clean rows straight into the indexed events table | {r['floor_rows_per_s']:,.0f} | {r['floor_seconds']:.1f} s | floor is {r['floor_ratio']:.2f}x ours |
| peer: pandas `to_sql(method="multi")` | the same rows, no validation ({r['peer_rows']:,}-row sample) | {r['peer_rows_per_s']:,.0f} | - | ours is {r['x_peer']:.1f}x |

Peak memory of our ingest process: {r['ours_peak_rss_mb']:,.0f} MB (streaming in 100k-row batches).

| target | figure | status |
|---|---|---|
| at least 120k events/s end to end | {r['ours_rows_per_s']:,.0f} rows/s | {ok(r['ours_rows_per_s'] >= 120_000)} |
| at least 20x the pandas peer | {r['x_peer']:.1f}x | {ok(r['x_peer'] >= 20)} |
| within 1.5x of the raw COPY floor | {r['floor_ratio']:.2f}x | {ok(r['floor_ratio'] <= 1.5)} |
"""
