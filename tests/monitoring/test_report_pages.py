"""`monitoring.evidently_reports`: which runs write their report pages (the slow part of a run).

On the shared trained world (its warehouse copied, so the runs written here stay here):
``on_decision`` (the default) writes a segment's pages when its run decides anything but
ok, and on the run after (the recovery an alert's reader opens), not on a quiet run;
``always`` writes them every run. The decisions are the same either way.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from journey_ml.db import make_engine
from journey_ml.monitoring.runner import monitor_task
from tests.scoring.conftest import world  # noqa: F401 - the shared trained world fixture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

QUIET = {"drift_rule": "weighted", "weighted_drift_share": 1.0, "critical_columns": [], "prediction_drift": False,
         "explanation_drift": False, "auc_floor": 0.0, "accuracy_floor": 0.0, "estimated_auc_floor": 0.0,
         "drift_reference": "recent_window"}
LOUD = {**QUIET, "drift_rule": "share", "drift_share": 0.0001, "min_effect": 0.0, "drift_persistence_runs": 1,
        "cooldown_days": 0}


def _config(world, policy: dict, reports: str | bool = "on_decision"):  # noqa: F811
    m = world.config.monitoring
    return world.config.model_copy(update={"monitoring": m.model_copy(update={
        "evidently_reports": m.model_validate({"evidently_reports": reports}).evidently_reports, "alerts": [],
        "defaults": m.defaults.model_copy(update=policy), "tasks": {}})})


def test_pages_are_written_on_a_decision_and_on_the_recovery_only(world, tmp_path):  # noqa: F811
    shutil.copy(world.root / "warehouse.db", tmp_path / "w.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    t0 = world.as_of - timedelta(days=35)

    def run(k: int, policy: dict, reports: str | bool = "on_decision"):
        r = monitor_task(engine, world.registry, _config(world, policy, reports), "conversion",
                         t0 + timedelta(days=7 * k), reports_dir=tmp_path / "reports", now=t0 + timedelta(days=7 * k),
                         retrain=None, segments=["global"])
        [s] = r.segments
        return s

    try:
        quiet = run(0, QUIET)
        assert quiet.kinds == ["ok"], quiet.decisions
        assert "drift_html" not in quiet.reports and "performance_html" not in quiet.reports
        assert not list((tmp_path / "reports").rglob(f"*{quiet.as_of:%Y-%m-%d}*/*.html"))

        loud = run(1, LOUD)
        assert "alert" in loud.kinds, loud.decisions
        page = Path(loud.reports["drift_html"]).read_text()
        assert "id='journey-summary'" in page and "alert" in page  # our summary with the decision on top

        recovery = run(2, QUIET)
        assert recovery.kinds == ["ok"] and Path(recovery.reports["drift_html"]).exists()  # the all-clear page

        again = run(3, QUIET)
        assert again.kinds == ["ok"] and "drift_html" not in again.reports

        always = run(4, QUIET, reports=True)  # true means always (false: never)
        assert always.kinds == ["ok"] and Path(always.reports["drift_html"]).exists()
    finally:
        engine.dispose()
