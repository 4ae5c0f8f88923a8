"""Training dates as the user thinks of them, and their split into train / validation / test.

A task's as-of dates are, in this order of precedence:

* ``training_dates``: an explicit list (midnight UTC of each date);
* ``training_frequency: weekly | monthly`` with ``training_anchor``: calendar dates (the
  anchor's weekday every week, its day of the month every month, clamped to the month's
  end; default anchor Monday / the 1st), the newest ``training_as_of_count`` of them whose
  label window has matured;
* ``training_frequency: days`` (the default): ``training_as_of_count`` dates
  ``training_every_days`` apart ending at the newest matured date (``data_end`` - horizon,
  floored to midnight UTC).

The newest dates are held out (`split_dates`): ``training.holdout`` / ``training.validation``
given as explicit dates, as a fraction of the rows (newest dates first, at least one date),
or else as ``holdout_as_of_count`` / ``validation_as_of_count`` dates.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from journey_ml.config import JourneyConfig, TrainingConfig
from journey_ml.features.boundary import label_matured

_DAY = timedelta(days=1)


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got {value!r}")
    return value.astimezone(UTC)


def _month_date(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, min(day, calendar.monthrange(year, month)[1]), tzinfo=UTC)


def _calendar_dates(frequency: str, anchor: date | None, newest: datetime, n: int) -> list[datetime]:
    """The ``n`` newest dates of the calendar frequency on or before ``newest``, oldest first."""
    out: list[datetime] = []
    if frequency == "weekly":
        weekday = (anchor or date(2000, 1, 3)).weekday()  # default Monday
        d = newest.replace(hour=0, minute=0, second=0, microsecond=0)
        d -= ((d.weekday() - weekday) % 7) * _DAY
        out = [d - 7 * i * _DAY for i in range(n)]
    else:  # monthly
        day = (anchor or date(2000, 1, 1)).day
        y, m = newest.year, newest.month
        while len(out) < n:
            d = _month_date(y, m, day)
            if d <= newest:
                out.append(d)
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return sorted(out)


def training_dates(config: JourneyConfig, task_name: str, data_end: datetime,
                   data_start: datetime | None = None) -> list[datetime]:
    """The task's training as-of dates, oldest first (see the module docstring for the rules).

    Every date's label window has matured by ``data_end``. Raises ValueError naming the
    task when an explicit date has not matured, when there are fewer than three dates, or
    (with ``data_start``, the oldest event) when the oldest date would not be after the
    data's start. Raises ConfigError for an unknown task.
    """
    task = config.task(task_name)
    end = _utc(data_end, "data_end")
    h = task.horizon_days
    if task.training_dates:
        dates = sorted({_midnight(d) for d in task.training_dates})
        late = [d for d in dates if not label_matured(d, h, end)]
        if late:
            raise ValueError(f"task {task_name!r}: training date {late[0]:%Y-%m-%d} has no matured labels: its "
                             f"{h}-day label window ends {late[0] + h * _DAY:%Y-%m-%d}, after the data's end "
                             f"({end:%Y-%m-%d %H:%M} UTC)")
        if len(dates) < 3:
            raise ValueError(f"task {task_name!r}: training_dates needs at least 3 dates (train, validation, "
                             f"test), got {len(dates)}")
        what = f"{len(dates)} explicit training dates"
    else:
        newest = end - h * _DAY
        n = task.training_as_of_count
        if task.training_frequency == "days":
            newest = newest.replace(hour=0, minute=0, second=0, microsecond=0)
            every = task.training_every_days
            dates = [newest - i * every * _DAY for i in range(n - 1, -1, -1)]
            what = f"{n} training dates {every} days apart"
        else:
            dates = _calendar_dates(task.training_frequency, task.training_anchor, newest, n)
            what = f"{n} {task.training_frequency} training dates"
    if data_start is not None:
        start = _utc(data_start, "data_start")
        if dates[0] <= start:
            need = h + (dates[-1] - dates[0]) / _DAY
            have = (end - start) / _DAY
            raise ValueError(
                f"task {task_name!r}: {what} with a {h}-day horizon need more than {need:.0f} days of data; "
                f"the data spans {have:.0f} days ({start:%Y-%m-%d} to {end:%Y-%m-%d})")
    return dates


@dataclass(frozen=True)
class DateSplit:
    """The training as-of dates split by time, each part oldest first."""

    train: tuple[datetime, ...]
    valid: tuple[datetime, ...]
    test: tuple[datetime, ...]


def _part(spec: float | list[date] | None, count: int, remaining: list[datetime], total_rows: int,
          rows: Mapping[datetime, int], what: str) -> list[datetime]:
    """The newest dates of ``remaining`` that form one held-out part."""
    if isinstance(spec, list):
        want = {_midnight(d) for d in spec}
        missing = sorted(want - set(remaining))
        if missing:
            raise ValueError(f"training.{what}: {missing[0]:%Y-%m-%d} is not one of the remaining training dates "
                             f"({', '.join(f'{d:%Y-%m-%d}' for d in remaining) or 'none'})")
        return sorted(want)
    if spec is None:
        return remaining[-count:] if count <= len(remaining) else list(remaining)
    target = math.ceil(spec * total_rows)
    picked: list[datetime] = []
    got = 0
    for d in reversed(remaining):
        if picked and got >= target:
            break
        picked.append(d)
        got += int(rows.get(d, 0))
    return sorted(picked)


def split_dates(training: TrainingConfig, dates: list[datetime], rows: Mapping[datetime, int] | None = None
                ) -> DateSplit:
    """Split ``dates`` (oldest first) into train / validation / test by time.

    ``rows``: rows per date (for fractions; default one each). The test part is taken
    first (newest), then validation from the dates before it. Raises ValueError when a
    named date is not a training date, when a part would be empty, or when a training
    date is not older than every held-out date (it would see their future).
    """
    dates = sorted(dates)
    counts = rows if rows is not None else {d: 1 for d in dates}
    counts = {(_utc(k, "date") if isinstance(k, datetime) else k): v for k, v in counts.items()}
    total = sum(int(counts.get(d, 0)) for d in dates)
    test = _part(training.holdout, training.holdout_as_of_count, dates, total, counts, "holdout")
    rest = [d for d in dates if d not in set(test)]
    valid = _part(training.validation, training.validation_as_of_count, rest, total, counts, "validation")
    train = [d for d in rest if d not in set(valid)]
    for name, part in (("train", train), ("validation", valid), ("test", test)):
        if not part:
            raise ValueError(f"the {len(dates)} training dates leave no {name} dates (holdout "
                             f"{training.holdout or training.holdout_as_of_count}, validation "
                             f"{training.validation or training.validation_as_of_count})")
    if max(train) >= min(valid + test):
        raise ValueError(f"training date {max(train):%Y-%m-%d} is not before the held-out dates "
                         f"(from {min(valid + test):%Y-%m-%d}): hold out the newest dates")
    return DateSplit(tuple(train), tuple(valid), tuple(test))
