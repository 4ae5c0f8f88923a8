"""The simulator's web tracking outage (``tracking_outage_from``), on the files it writes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from journey_ml.simulate import SimulationParams, simulate
from journey_ml.simulate.generator import TRACKING_OUTAGE_SHARE

OUTAGE = date(2026, 3, 1)
PARAMS = SimulationParams(accounts=500, seed=4, end=date(2026, 6, 30), dirty_rate=0.0)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("outage")
    simulate(PARAMS, root / "before")
    simulate(SimulationParams(**{**PARAMS.__dict__, "tracking_outage_from": OUTAGE}), root / "after")
    return root / "before", root / "after"


def _web(out: Path) -> pd.DataFrame:
    w = pd.concat([pd.read_json(p, lines=True, dtype=False) for p in sorted((out / "web").glob("*.jsonl"))])
    w["at"] = pd.to_datetime(w["timestamp"], utc=True, format="ISO8601")
    return w


def test_web_events_from_the_outage_on_are_mostly_lost_and_history_before_is_kept(worlds) -> None:
    before, after = worlds
    t = pd.Timestamp(OUTAGE, tz="UTC")
    wb, wa = _web(before), _web(after)
    keep = sorted(wb.loc[wb["at"] < t, "id"].astype(str))
    assert keep and keep == sorted(wa.loc[wa["at"] < t, "id"].astype(str))
    n_b, n_a = (wb["at"] >= t).sum(), (wa["at"] >= t).sum()
    assert n_b >= 500
    assert abs(1 - n_a / n_b - TRACKING_OUTAGE_SHARE) < 0.03, (n_a, n_b)
    # recorded events are a subset of what happened (the tracker lost rows, it made none up)
    assert set(wa["id"].astype(str)) <= set(wb["id"].astype(str))


def test_other_sources_are_untouched(worlds) -> None:
    before, after = worlds
    for name in ("crm/accounts.csv", "crm/contacts.csv", "sales/activities.csv"):
        assert (before / name).read_bytes() == (after / name).read_bytes(), name


def test_an_outage_outside_the_period_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="tracking_outage_from"):
        simulate(SimulationParams(**{**PARAMS.__dict__, "tracking_outage_from": date(2027, 1, 1)}), tmp_path)
