"""The feature frames a warehouse gives, for comparing two implementations of the builder.

`python -m tests.features.reference_frames OUT.pkl` (run from a checkout) writes them; the
equality test in test_families.py rebuilds them with the current code. Data: the
hand-computed fixture of test_features (every task, three dates) and a small seeded
simulation (150 accounts, the packaged tasks plus a contact task, three dates).

data/reference_frames.pkl was written by the builder before the feature families (main at
7c986ce) over the simulator and ingest of main at b377dd2: a change to the simulator or to
ingestion changes the data, not the builder, and needs a new pickle from that builder.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

SIM_DATES = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 15, 12, tzinfo=UTC),
             datetime(2026, 6, 1, tzinfo=UTC)]
FIXTURE_T = datetime(2026, 3, 1, tzinfo=UTC)
FIXTURE_DATES = [FIXTURE_T - timedelta(days=40), FIXTURE_T, FIXTURE_T + timedelta(days=2, hours=5)]


def simulated_warehouse(root: Path):
    from journey_ml.db import make_engine, upgrade
    from journey_ml.ingest import ingest_all
    from journey_ml.simulate import SimulationParams, simulate
    from tests.bench.features import bench_config

    simulate(SimulationParams(accounts=150, seed=3, end=date(2026, 6, 30), dirty_rate=0.0), root / "exports")
    cfg = bench_config()  # the packaged tasks plus a contact-level one (hundreds of rows)
    engine = make_engine(f"sqlite:///{root / 'sim.db'}")
    upgrade(engine)
    ingest_all(engine, cfg, data_dir=root / "exports", salt="t", received_at=datetime(2026, 7, 1, tzinfo=UTC))
    return engine, cfg


def fixture_warehouse(root: Path):
    from journey_ml.db import make_engine, upgrade
    from tests.features.test_features import load

    engine = make_engine(f"sqlite:///{root / 'fixture.db'}")
    upgrade(engine)
    return engine, load(engine, root / "fixture")


def frames(engine, cfg, dates) -> dict:
    from journey_ml.features import build_features

    return {(task, d.isoformat()): build_features(engine, cfg, task, d).frame for task in cfg.tasks for d in dates}


def main(out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        got = {"fixture": frames(*fixture_warehouse(root), FIXTURE_DATES),
               "simulated": frames(*simulated_warehouse(root), SIM_DATES)}
    with open(out, "wb") as f:
        pickle.dump(got, f)
    print({k: {kk: v.shape for kk, v in d.items()} for k, d in got.items()})


if __name__ == "__main__":
    main(sys.argv[1])
