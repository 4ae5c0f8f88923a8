"""Training dates as the user thinks of them: an explicit list, weekly / monthly calendar
dates with an anchor, validation and holdout as dates or as a share of the rows, and an
as-of past the end of the data refused with where the data ends."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import yaml

from journey_ml.config import parse_config
from journey_ml.features import split_dates, training_dates
from journey_ml.jobs import TrainingParams, run_training
from journey_ml.jobs._common import AsOfPastData
from journey_ml.runtime import Runtime
from journey_ml.settings import Settings
from tests.features.test_features import CONFIG, load

END = datetime(2026, 6, 30, 17, 45, tzinfo=UTC)


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def cfg_with(task: dict | None = None, training: dict | None = None):
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["tasks"]["conversion"].update(task or {})
    data["training"] = training or {}
    return parse_config(data, "test-dates")


def test_explicit_training_dates():
    cfg = cfg_with({"training_dates": [date(2026, 3, 15), date(2026, 1, 1), date(2026, 2, 1), date(2026, 5, 31)]})
    assert training_dates(cfg, "conversion", END) == [utc(2026, 1, 1), utc(2026, 2, 1), utc(2026, 3, 15),
                                                      utc(2026, 5, 31)]
    # a date whose 30-day label window has not closed by the data's end is refused by name
    late = cfg_with({"training_dates": [date(2026, 1, 1), date(2026, 2, 1), date(2026, 6, 1)]})
    with pytest.raises(ValueError, match=r"training date 2026-06-01 has no matured labels: its 30-day label "
                                         r"window ends 2026-07-01, after the data's end \(2026-06-30 17:45 UTC\)"):
        training_dates(late, "conversion", END)
    with pytest.raises(ValueError, match="at least 3 dates"):
        training_dates(cfg_with({"training_dates": [date(2026, 1, 1), date(2026, 2, 1)]}), "conversion", END)


def test_monthly_frequency():
    # newest matured date: 2026-05-31 17:45 -> the 1st of May; three months back from it
    cfg = cfg_with({"training_frequency": "monthly"})
    assert training_dates(cfg, "conversion", END) == [utc(2026, 3, 1), utc(2026, 4, 1), utc(2026, 5, 1)]
    # the anchor's day of the month, clamped to the month's end
    cfg = cfg_with({"training_frequency": "monthly", "training_anchor": date(2025, 1, 31), "training_as_of_count": 4})
    assert training_dates(cfg, "conversion", END) == [utc(2026, 2, 28), utc(2026, 3, 31), utc(2026, 4, 30),
                                                      utc(2026, 5, 31)]
    # not enough data for them: the error names the span
    with pytest.raises(ValueError, match=r"3 monthly training dates with a 30-day horizon need more than 91 days"):
        training_dates(cfg_with({"training_frequency": "monthly"}), "conversion", END, data_start=utc(2026, 4, 1))


def test_weekly_frequency_on_the_anchor_weekday():
    cfg = cfg_with({"training_frequency": "weekly", "training_anchor": date(2026, 1, 7)})  # a Wednesday
    assert training_dates(cfg, "conversion", END) == [utc(2026, 5, 13), utc(2026, 5, 20), utc(2026, 5, 27)]


def test_validation_and_holdout_as_dates_or_shares():
    dates = [utc(2026, m, 1) for m in (1, 2, 3, 4, 5)]
    rows = {d: n for d, n in zip(dates, (10, 10, 10, 30, 10), strict=True)}
    # the defaults (one date each) still hold
    s = split_dates(cfg_with().training, dates, rows)
    assert (s.train, s.valid, s.test) == (tuple(dates[:3]), (dates[3],), (dates[4],))
    # shares of the rows, newest dates first: 25% of 70 rows -> May (10) + Apr (30); 10% -> Mar
    s = split_dates(cfg_with(training={"holdout": 0.25, "validation": 0.1}).training, dates, rows)
    assert (s.train, s.valid, s.test) == (tuple(dates[:2]), (dates[2],), tuple(dates[3:]))
    # explicit dates
    s = split_dates(cfg_with(training={"holdout": [date(2026, 5, 1)], "validation": [date(2026, 3, 1),
                                                                                   date(2026, 4, 1)]}).training,
                    dates, rows)
    assert (s.train, s.valid, s.test) == (tuple(dates[:2]), tuple(dates[2:4]), (dates[4],))
    with pytest.raises(ValueError, match="training.holdout: 2026-06-01 is not one of the remaining training dates"):
        split_dates(cfg_with(training={"holdout": [date(2026, 6, 1)]}).training, dates, rows)
    with pytest.raises(ValueError, match="training date 2026-04-01 is not before the held-out dates"):
        split_dates(cfg_with(training={"holdout": [date(2026, 1, 1)]}).training, dates, rows)
    with pytest.raises(Exception, match="between 0 and 1"):
        cfg_with(training={"holdout": 1.5})


def test_as_of_past_the_end_of_the_data_is_an_error(engine, tmp_path):
    cfg = load(engine, tmp_path)
    rt = Runtime(settings=Settings(home=tmp_path / "home"), config=cfg, _engine=engine)
    rt.__dict__["engine"] = engine  # the cached property, as the CLI's runtime would build it
    with pytest.raises(AsOfPastData, match=r"--as-of 2026-09-01 00:00 UTC is after the end of the data "
                                           r"\(2026-03-31 00:00 UTC, the newest event\)"):
        run_training(rt, TrainingParams(tasks=("conversion",), as_of=utc(2026, 9, 1)))
