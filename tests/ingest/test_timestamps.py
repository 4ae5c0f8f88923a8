"""Case 4 of issue #9: every timestamp form, table-driven, through the validation function."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from journey_ml.config import SourceConfig
from journey_ml.ingest.readers import RawBatch
from journey_ml.ingest.validate import ValidationContext, prepare_batch
from tests.conftest import SALT, make_config

NY = "America/New_York"
T = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
EPOCH_S = int(T.timestamp())

# (case, source timezone, timestamp_format, value, expected UTC time or reason fragment)
TIMESTAMP_CASES = [
    ("Z suffix", "UTC", "iso", "2026-01-05T10:00:00Z", "2026-01-05T10:00:00+00:00"),
    ("offset with colon", "UTC", "iso", "2026-01-05T12:00:00+02:00", "2026-01-05T10:00:00+00:00"),
    ("offset without colon", "UTC", "iso", "2026-01-05T12:00:00+0200", "2026-01-05T10:00:00+00:00"),
    ("offset hours only", "UTC", "iso", "2026-01-05T05:00:00-05", "2026-01-05T10:00:00+00:00"),
    ("UTC suffix", "UTC", "iso", "2026-01-05 10:00:00 UTC", "2026-01-05T10:00:00+00:00"),
    ("fraction", "UTC", "iso", "2026-01-05T10:00:00.123456Z", "2026-01-05T10:00:00.123456+00:00"),
    ("fraction and offset", "UTC", "iso", "2026-01-05T05:00:00.5-05:00", "2026-01-05T10:00:00.500000+00:00"),
    ("date only, UTC", "UTC", "iso", "2026-01-05", "2026-01-05T00:00:00+00:00"),
    ("naive, UTC", "UTC", "iso", "2026-01-05 10:00", "2026-01-05T10:00:00+00:00"),
    ("date only, local midnight", NY, "iso", "2026-01-05", "2026-01-05T05:00:00+00:00"),
    ("date only in summer", NY, "iso", "2026-07-05", "2026-07-05T04:00:00+00:00"),
    ("naive local time", NY, "iso", "2026-01-05 10:00:00", "2026-01-05T15:00:00+00:00"),
    ("naive local time, DST", NY, "iso", "2026-06-05T10:00:00", "2026-06-05T14:00:00+00:00"),
    ("offset wins over the timezone", NY, "iso", "2026-01-05T10:00:00-05", "2026-01-05T15:00:00+00:00"),
    ("Z wins over the timezone", NY, "iso", "2026-01-05T10:00:00Z", "2026-01-05T10:00:00+00:00"),
    ("UTC suffix wins over the timezone", NY, "iso", "2026-01-05 10:00 UTC", "2026-01-05T10:00:00+00:00"),
    ("bare year", "UTC", "iso", "2026", "'2026' is a year without a month and day"),
    ("bare year, local", NY, "iso", "2026", "'2026' is a year without a month and day"),
    ("year and month", NY, "iso", "2026-01", "'2026-01' has no day"),
    ("epoch seconds undeclared", "UTC", "iso", str(EPOCH_S),
     f"'{EPOCH_S}' is a number, not a date; if the source sends epoch times, set "
     "timestamp_format: epoch_s or epoch_ms"),
    ("garbage", NY, "iso", "yesterday", "'yesterday' is not a valid timestamp"),
    ("DST ambiguous", NY, "iso", "2025-11-02 01:30:00",
     "'2025-11-02 01:30:00' is ambiguous in America/New_York (the clocks went back: it happened "
     "twice); add a UTC offset"),
    ("DST non-existent", NY, "iso", "2025-03-09 02:30:00",
     "'2025-03-09 02:30:00' does not exist in America/New_York (the clocks went forward)"),
    ("epoch seconds", NY, "epoch_s", str(EPOCH_S), "2026-01-05T10:00:00+00:00"),
    ("epoch seconds, fraction", "UTC", "epoch_s", f"{EPOCH_S}.25", "2026-01-05T10:00:00.250000+00:00"),
    ("epoch milliseconds", "UTC", "epoch_ms", str(EPOCH_S * 1000), "2026-01-05T10:00:00+00:00"),
    ("ISO text when epoch declared", "UTC", "epoch_s", "2026-01-05T10:00:00Z",
     "'2026-01-05T10:00:00Z' is not a number of seconds since 1970-01-01 UTC "
     "(the source declares timestamp_format: epoch_s)"),
    ("ISO text when epoch ms declared", "UTC", "epoch_ms", "2026-01-05",
     "is not a number of milliseconds since 1970-01-01 UTC (the source declares "
     "timestamp_format: epoch_ms)"),
]


def _prepare(values: list, tz: str, fmt: str):
    src = {"name": "s", "kind": "events", "path": "x.csv", "timezone": tz,
           "columns": {"occurred_at": "ts"}}
    if fmt != "iso":
        src["timestamp_format"] = fmt
    cfg = make_config(src)
    frame = pd.DataFrame({"event_id": [f"e{i}" for i in range(len(values))], "ts": values,
                          "contact_id": ["c1"] * len(values), "event_type": ["page_view"] * len(values)})
    ctx = ValidationContext(source=cfg.source("s"), taxonomy=cfg.taxonomy, salt=SALT,
                            received_at=datetime(2027, 1, 1, tzinfo=UTC))
    return prepare_batch(RawBatch(frame, np.arange(1, len(values) + 1)), ctx)


@pytest.mark.parametrize(("case", "tz", "fmt", "value", "expected"), TIMESTAMP_CASES,
                         ids=[c[0] for c in TIMESTAMP_CASES])
def test_case04_timestamp_forms(case, tz, fmt, value, expected):
    text = pd.Series([value], dtype=pd.StringDtype("pyarrow"))
    prepared = _prepare(text, tz, fmt)
    if expected[:4].isdigit() and expected[4] == "-":
        assert prepared.rejected == 0, prepared.rejects.reason.tolist()
        assert prepared.rows.occurred_at[0].isoformat() == expected
    else:
        assert prepared.rejected == 1 and len(prepared.rows) == 0
        reason = prepared.rejects.reason[0]
        assert reason.startswith("occurred_at (column 'ts') ") and expected in reason, reason


def test_case04_all_forms_in_one_batch_match_one_by_one():
    """The vectorised parser gives each row the result it gets alone (mixed batches)."""
    for tz in ("UTC", NY):
        for fmt in ("iso", "epoch_s"):
            cases = [c for c in TIMESTAMP_CASES if c[1] == tz and c[2] == fmt]
            if not cases:
                continue
            together = _prepare(pd.Series([c[3] for c in cases], dtype=pd.StringDtype("pyarrow")), tz, fmt)
            ok = {r.event_id: r.occurred_at.isoformat() for r in together.rows.itertuples()}
            bad = dict(zip(together.rejects.row_number, together.rejects.reason, strict=True))
            for i, c in enumerate(cases):
                got = ok.get(f"e{i}") or bad.get(i + 1)
                assert c[4] in got, (c, got)


def test_case04_typed_epoch_numbers_and_naive_typed_timestamps():
    # JSON-lines / Parquet deliver numbers as numbers
    prepared = _prepare(pd.Series([EPOCH_S, None], dtype="Int64"), "UTC", "epoch_s")
    assert prepared.rows.occurred_at[0] == pd.Timestamp(T)
    # a naive typed timestamp in a DST gap is rejected with the same message as text
    typed = pd.Series(pd.to_datetime(["2025-03-09 02:30:00", "2026-01-05 05:00:00"]))
    prepared = _prepare(typed, NY, "iso")
    assert prepared.rows.occurred_at.tolist() == [pd.Timestamp(T)]
    assert "does not exist in America/New_York" in prepared.rejects.reason[0]


def test_case04_unknown_timestamp_format_is_a_config_error():
    with pytest.raises(ValueError, match="timestamp_format"):
        SourceConfig(name="s", kind="events", path="x", timestamp_format="epoch_us")
