"""#11.2 on the simulator, small enough for CI: the new drift rule's false-alarm rate on a
stable world is at most 1 in 10, and drift injected at a known date is detected within 2 runs.

The same harness as `python -m tests.bench.run --only monitoring` (which also runs the rule
before #11 side by side), on a smaller world and fewer dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.bench.monitoring import Scenario, run

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]

SMALL = Scenario(accounts=500, seed=5, end=date(2026, 9, 30), train_at=datetime(2025, 12, 1, tzinfo=UTC),
                 first=datetime(2025, 12, 8, tzinfo=UTC), every=14, dates=20, drift_from=date(2026, 5, 1),
                 drift_runs_before_onset=2)


@pytest.fixture(scope="module")
def walked() -> dict:
    """The scenario run, outside the test: a world that fails to train is an error, never
    the expected failure below."""
    return run(SMALL, log=lambda *_: None, rules=("now",))


@pytest.mark.xfail(strict=True, reason="not met yet: the stable simulated world ages away from any months-old "
                   "reference, both rules alarm on every run (BENCHMARKS.md, monitoring section)")
def test_false_alarms_and_detection_delay_within_bounds(walked):
    r = walked
    m = r["rules"]["now"]["summary"]
    walks = r["rules"]["now"]["walks"]
    assert m["runs"] >= 20
    assert m["false_alarm_rate"] <= 0.1, [(w["as_of"].date(), w["kinds"], w["reasons"]) for w in walks["stable"]]
    assert m["detection_delay_runs"] is not None and m["detection_delay_runs"] <= 2, \
        [(w["as_of"].date(), w["drift"], w["weighted"]) for w in walks["drift"]]
