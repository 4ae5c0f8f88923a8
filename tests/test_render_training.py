"""What `journey-ml train` and `features build` print: the true holdout, the baselines' AUC
beside the model's, the gate's reason, and why a snapshot has no labels yet (#12.9)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from journey_ml.cli import render
from journey_ml.jobs.training import TrainingJobResult
from journey_ml.snapshots import SnapshotResult
from journey_ml.training import SegmentOutcome


def _text(renderable) -> str:
    c = Console(record=True, width=220, color_system=None)
    c.print(renderable)
    return c.export_text()


def _result() -> TrainingJobResult:
    o = SegmentOutcome(task="conversion", segment="global", status="staged",
                       reason="not promoted: below the best baseline, recency (roc_auc 0.5610 vs recency 0.6990 "
                              "on the same holdout)",
                       model_name="journey-conversion-global", version=3, rows={"train": 900, "valid": 300, "test": 300},
                       positives={"train": 20, "valid": 8, "test": 7}, metrics={"roc_auc": 0.561, "brier": 0.02,
                                                                                "lift_top_decile": 2.0},
                       model_kind="xgboost", selection="xgboost won on validation roc_auc 0.6100 vs logistic 0.6000",
                       baselines={"rules": {"roc_auc": 0.58}, "recency": {"roc_auc": 0.699},
                                  "logistic": {"roc_auc": 0.66}})
    dates = (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    return TrainingJobResult(datetime(2026, 9, 1, tzinfo=UTC), (o,), holdout_dates={"conversion": dates})


def test_leaderboard_names_the_true_holdout_and_shows_the_baselines():
    text = _text(render.leaderboard(_result()))
    assert "test holdout = newest 2 as-of dates (2026-05-01, 2026-06-01)" in text
    header = next(line for line in text.splitlines() if "AUC" in line)
    for col in ("AUC", "rules / recency / LR", "global"):
        assert col in header
    assert "CV AUC" not in header  # event-based task: no cross-validation column
    row = next(line for line in text.splitlines() if "conversion/global" in line)
    assert "xgboost" in row and "0.561" in row and "0.580 / 0.699 / 0.660" in row
    lines = render.leaderboard_reasons(_result())
    assert lines == ["conversion/global: not promoted: below the best baseline, recency (roc_auc 0.5610 vs "
                     "recency 0.6990 on the same holdout) | selection: xgboost won on validation roc_auc 0.6100 "
                     "vs logistic 0.6000"]


def test_one_holdout_date_is_said_in_the_singular():
    r = _result()
    r = TrainingJobResult(r.as_of, r.outcomes, holdout_dates={"conversion": r.holdout_dates["conversion"][1:]})
    assert "test holdout = newest as-of date (2026-06-01)" in _text(render.leaderboard(r))


def test_features_table_says_why_a_snapshot_is_not_labelled_yet():
    s = SnapshotResult("churn", datetime(2026, 6, 1, tzinfo=UTC), 120, 30, "v1",
                       labels_mature_at=datetime(2026, 8, 30, tzinfo=UTC), data_end=datetime(2026, 6, 1, tzinfo=UTC))

    class R:
        as_of = s.as_of
        snapshots = [s]

    text = _text(render.features_table(R()))
    assert "not yet (horizon not closed: labels mature on 2026-08-30 (data end 2026-06-01))" in text
    assert s.to_dict()["labels_mature_at"] == "2026-08-30T00:00:00+00:00"
