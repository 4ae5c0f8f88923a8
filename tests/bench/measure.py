"""Child-process entry for benchmarks: run one contender, print JSON with time and peak RSS.

    python -m tests.bench.measure ingest-ours   --db URL --config PATH [--loaders N]
    python -m tests.bench.measure ingest-copy   --db URL --csv PATH [--streams N]
    python -m tests.bench.measure ingest-pandas --db URL --csv PATH --rows N
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import UTC, datetime


def _ingest_ours(a: argparse.Namespace) -> dict:
    from journey_ml.config import load_config
    from journey_ml.db import make_engine, upgrade
    from journey_ml.ingest import ingest_all

    cfg, base = load_config(a.config)
    engine = make_engine(a.db)
    upgrade(engine)
    t = time.perf_counter()
    runs = ingest_all(engine, cfg, data_dir=cfg.resolve_data_dir(base, base), salt="bench",
                      received_at=datetime(2026, 7, 1, tzinfo=UTC), batch_rows=a.batch_rows,
                      loaders=a.loaders)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "rows": sum(r.rows_read for r in runs), "loaders": a.loaders,
            "loaded": sum(r.rows_loaded for r in runs),
            "rejected": sum(r.rows_rejected for r in runs),
            "duplicate": sum(r.rows_duplicate for r in runs),
            "balanced": all(r.balanced for r in runs)}


def _events_table(db: str):
    from journey_ml.db import make_engine, upgrade

    engine = make_engine(db)
    upgrade(engine)
    return engine


def _ingest_copy(a: argparse.Namespace) -> dict:
    """The floor: raw COPY of already-clean rows into the final, indexed events table, on
    ``--streams`` connections at once (stream i takes every i-th 1 MiB block of whole lines)."""
    import threading

    import psycopg

    from tests.bench.common import conninfo

    _events_table(a.db)
    with open(a.csv, "rb") as f:
        header = f.readline().decode().strip()

    def chunks(i: int):
        """Every ``streams``-th block of about 1 MiB of whole lines, from the ``i``-th on."""
        with open(a.csv, "rb") as f:
            f.readline()
            k = 0
            while block := f.read(1 << 20):
                block += f.readline()  # CSV fields of these rows hold no line breaks
                if k % a.streams == i:
                    yield block
                k += 1

    def stream(i: int) -> None:
        with psycopg.connect(conninfo(a.db)) as c:
            with c.cursor().copy(f"COPY events ({header}) FROM STDIN (FORMAT csv)") as cp:
                for chunk in chunks(i):
                    cp.write(chunk)
            c.commit()

    t = time.perf_counter()
    threads = [threading.Thread(target=stream, args=(i,)) for i in range(a.streams)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    seconds = time.perf_counter() - t
    with psycopg.connect(conninfo(a.db)) as c:
        rows = c.execute("SELECT count(*) FROM events").fetchone()[0]
    return {"seconds": seconds, "rows": rows, "streams": a.streams}


def _ingest_pandas(a: argparse.Namespace) -> dict:
    """The peer: pandas read_csv + DataFrame.to_sql(method="multi"), no validation."""
    import pandas as pd

    engine = _events_table(a.db)
    t = time.perf_counter()
    df = pd.read_csv(a.csv, nrows=a.rows, dtype=str)
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], utc=True, format="ISO8601")
    df["value"] = pd.to_numeric(df["value"])
    df["properties"] = df["properties"].map(lambda v: json.loads(v) if isinstance(v, str) else None)
    from sqlalchemy.dialects.postgresql import JSONB

    df.to_sql("events", engine, if_exists="append", index=False, method="multi", chunksize=1000,
              dtype={"properties": JSONB()})
    return {"seconds": time.perf_counter() - t, "rows": len(df)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what")
    p.add_argument("--db")
    p.add_argument("--config")
    p.add_argument("--csv")
    p.add_argument("--rows", type=int)
    p.add_argument("--batch-rows", type=int, default=100_000)
    p.add_argument("--loaders", type=int, default=2)
    p.add_argument("--streams", type=int, default=1)
    a = p.parse_args()
    fn = {"ingest-ours": _ingest_ours, "ingest-copy": _ingest_copy, "ingest-pandas": _ingest_pandas}[a.what]
    out = fn(a)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # this process, every thread
    print(json.dumps({"seconds": out.pop("seconds"), "peak_rss_mb": usage.ru_maxrss / 1024, "output": out}))


if __name__ == "__main__":
    main()
