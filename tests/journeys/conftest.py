"""A tiny journey table whose paths, transitions and friction are computed by hand.

as of 2026-03-01, gap 30 days, stage level (taxonomy of tests/conftest.py):
  a1: awareness 01-01, consideration 01-02, decision 01-05, closed_won 01-10 (1000)  -> converted
  a2: awareness 01-01, consideration 01-03, consideration 01-04                      -> exited
  a3: awareness 01-01 | 45 days | consideration 02-15, decision 02-20                -> exited | ongoing
  a4: awareness 01-01, consideration 01-02, decision 01-03 (+ an event after T)      -> exited
  a5: email_sent only (not a journey step)
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)

STAGE = {"page_view": ("web", "awareness"), "pricing_page_view": ("web", "consideration"),
         "case_study_view": ("web", "consideration"), "demo_request": ("web", "decision"),
         "closed_won": ("sales", "purchase"), "email_sent": ("email", "awareness")}

TINY = [
    ("a1", "2026-01-01", "page_view", None), ("a1", "2026-01-02", "pricing_page_view", None),
    ("a1", "2026-01-05", "demo_request", None), ("a1", "2026-01-10", "closed_won", 1000.0),
    ("a2", "2026-01-01", "page_view", None), ("a2", "2026-01-03", "pricing_page_view", None),
    ("a2", "2026-01-04", "case_study_view", None),
    ("a3", "2026-01-01", "page_view", None), ("a3", "2026-02-15", "pricing_page_view", None),
    ("a3", "2026-02-20", "demo_request", None),
    ("a4", "2026-01-01", "page_view", None), ("a4", "2026-01-02", "pricing_page_view", None),
    ("a4", "2026-01-03", "demo_request", None), ("a4", "2026-03-05", "closed_won", 500.0),
    ("a5", "2026-01-01", "email_sent", None),
]


def tiny_rows():
    for i, (acc, day, etype, value) in enumerate(TINY):
        channel, stage = STAGE[etype]
        yield {"source": "test", "event_id": f"e{i}", "occurred_at": datetime.fromisoformat(day).replace(tzinfo=UTC),
               "account_id": acc, "contact_id": None, "event_type": etype, "channel": channel, "stage": stage,
               "value": value}


@pytest.fixture
def tiny_frame():
    import pandas as pd

    f = pd.DataFrame(list(tiny_rows()))
    return f.rename(columns={"account_id": "entity_id"})[
        ["entity_id", "occurred_at", "event_type", "channel", "stage", "value"]]


@pytest.fixture(scope="session")
def sim_world(tmp_path_factory):
    """600 simulated accounts ingested into a SQLite warehouse (no models): (root, config, engine)."""
    from journey_ml.config import load_config
    from journey_ml.db import make_engine, upgrade
    from journey_ml.ingest import ingest_all
    from journey_ml.simulate import SimulationParams, simulate

    root = tmp_path_factory.mktemp("journeys_world")
    simulate(SimulationParams(accounts=600, seed=5), root / "exports")
    cfg, _ = load_config(None)
    engine = make_engine(f"sqlite:///{root / 'warehouse.db'}")
    upgrade(engine)
    ingest_all(engine, cfg, data_dir=root / "exports", salt="t", received_at=datetime(2026, 7, 1, tzinfo=UTC))
    yield root, cfg, engine
    engine.dispose()
