"""#11.2 and #11.3 on the simulator, as the bench measures them (BENCHMARKS.md, monitoring):
the shipped drift rule's false-alarm rate on a stable world is at most 1 in 10, a web tracking
outage injected at a known date is detected within 2 runs, and the CBPE estimate of the ROC AUC
is within 0.03 of the realised one (median over the dates whose labels matured).

The same harness and world as `python -m tests.bench.run --only monitoring`, with only the
shipped rule and the two worlds the targets are about.
"""

from __future__ import annotations

import pytest

from tests.bench.monitoring import Scenario, run

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")]


@pytest.fixture(scope="module")
def walked() -> dict:
    """The scenario run, outside the tests: a world that fails to train is an error."""
    return run(Scenario(), log=lambda *_: None, rules=("now",), worlds_to_walk=("stable", "outage"))


def test_false_alarms_on_the_stable_world_are_at_most_one_in_ten(walked):
    m = walked["rules"]["now"]["summary"]
    walks = walked["rules"]["now"]["walks"]
    assert m["runs"] >= 20
    assert m["false_alarm_rate"] <= 0.1, [(w["as_of"].date(), w["kinds"], w["reasons"]) for w in walks["stable"]]


def test_the_tracking_outage_is_detected_within_two_runs_and_not_before(walked):
    d = walked["rules"]["now"]["summary"]["drifted"]["outage"]
    walks = walked["rules"]["now"]["walks"]["outage"]
    trace = [(w["as_of"].date(), w["drift"], w["weighted"], w["reasons"][:1]) for w in walks]
    assert d["false_alarms_before_onset"] == 0, trace
    assert d["detection_delay_runs"] is not None and d["detection_delay_runs"] <= 2, trace


def test_estimated_auc_tracks_the_realised_auc_on_the_stable_world(walked):
    m = walked["rules"]["now"]["summary"]
    assert len(m["estimation_errors"]) >= 10  # dates whose labels matured within the walk
    assert m["median_abs_estimation_error"] <= 0.03, m["estimation_errors"]
    assert m["max_abs_estimation_error"] <= 0.05, m["estimation_errors"]
