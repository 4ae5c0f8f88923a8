"""`make bench`: run our code and the named peers side by side, write BENCHMARKS.md.

    python -m tests.bench.run                 # everything, default sizes
    python -m tests.bench.run --only ingest --events 1000000 --repeat 1

Timings are medians over repeats on a noisy 2-core machine: read ratios, not absolutes.
Nothing here is asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import UTC, datetime

from tests.bench.common import ROOT

SECTIONS = ("ingest",)


def _machine() -> str:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as c:
        pg = c.execute("SHOW server_version").fetchone()[0]
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, PostgreSQL {pg}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=SECTIONS, action="append")
    p.add_argument("--events", type=int, default=5_000_000, help="ingest: simulated events")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    a = p.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    parts = []
    for section in a.only or SECTIONS:
        if section == "ingest":
            from tests.bench import ingest

            parts.append(ingest.markdown(ingest.run(events=a.events, repeat=a.repeat)))
    text = (f"# Benchmarks\n\nWritten by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
            f"{_machine()}.\nThese machines are noisy: figures are medians, compare the ratios.\n\n"
            + "\n".join(parts))
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
