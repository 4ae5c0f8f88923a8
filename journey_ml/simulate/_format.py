"""Time axis and fast, vectorised text building (timestamps, ids, CSV and JSON lines).

Simulation time is a float number of days since ``start`` 00:00 UTC; it becomes whole
epoch seconds only when written. Text is built as fixed-width byte matrices in numpy (or
with Arrow compute) because per-row Python formatting does not scale to millions of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DAY = 86_400
_ZERO = ord("0")


@dataclass(frozen=True)
class Calendar:
    """The simulated period: ``days`` whole days starting at ``start``."""

    start: date
    end: date
    drift_t: float | None  # days since start, or None without drift

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_s(self) -> int:
        return int(
            datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp()
        )

    @property
    def months(self) -> list[date]:
        """First day of every calendar month touched by the period."""
        out, y, m = [], self.start.year, self.start.month
        while date(y, m, 1) <= self.end:
            out.append(date(y, m, 1))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def month_bounds_s(self) -> np.ndarray:
        """Epoch seconds of each month start, plus the start of the month after the last."""
        firsts = [*self.months]
        last = firsts[-1]
        firsts.append(
            date(last.year + 1, 1, 1) if last.month == 12 else date(last.year, last.month + 1, 1)
        )
        return np.array(
            [int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) for d in firsts]
        )

    def seconds(self, t: np.ndarray) -> np.ndarray:
        """Epoch seconds for simulation times (floor to the second)."""
        return self.start_s + np.floor(np.asarray(t) * DAY).astype(np.int64)

    def micros(self, t: np.ndarray) -> np.ndarray:
        """Epoch microseconds for simulation times (product analytics keep sub-seconds)."""
        return self.start_s * 1_000_000 + np.floor(np.asarray(t) * DAY * 1_000_000).astype(np.int64)

    def future_seconds(self, sec: np.ndarray) -> np.ndarray:
        """Same day-of-year, moved to a year well after the period (the "2031" rows)."""
        year = max(2031, self.end.year + 2)
        base = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
        return base + (sec - self.start_s) % (365 * DAY)


def _put(mat: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    v = values.astype(np.int64)
    for i in range(width - 1, -1, -1):
        mat[:, col + i] = _ZERO + v % 10
        v = v // 10


def _from_matrix(mat: np.ndarray) -> pa.Array:
    n, w = mat.shape
    offsets = np.arange(0, w * (n + 1), w, dtype=np.int32)
    data = np.ascontiguousarray(mat).tobytes()
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def iso(sec: np.ndarray, tail: str = "Z", offset_min: np.ndarray | None = None) -> pa.Array:
    """ISO 8601 strings ``YYYY-MM-DDTHH:MM:SS`` + ``tail`` for epoch seconds.

    With ``offset_min`` the local wall time at that UTC offset is written and ``tail`` is
    ignored: each row ends in its own ``+HH:MM``.
    """
    sec = np.asarray(sec, dtype=np.int64)
    local = sec if offset_min is None else sec + offset_min.astype(np.int64) * 60
    dt = local.astype("datetime64[s]")
    months = dt.astype("datetime64[M]")
    days = dt.astype("datetime64[D]")
    year = months.astype(np.int64) // 12 + 1970
    month = months.astype(np.int64) % 12 + 1
    dom = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    sod = local - days.astype(np.int64) * DAY
    suffix = tail.encode() if offset_min is None else b"+00:00"
    mat = np.empty((sec.size, 19 + len(suffix)), dtype=np.uint8)
    mat[:, :19] = np.frombuffer(b"0000-00-00T00:00:00", dtype=np.uint8)
    mat[:, 19:] = np.frombuffer(suffix, dtype=np.uint8)
    _put(mat, 0, year, 4)
    _put(mat, 5, month, 2)
    _put(mat, 8, dom, 2)
    _put(mat, 11, sod // 3600, 2)
    _put(mat, 14, sod // 60 % 60, 2)
    _put(mat, 17, sod % 60, 2)
    if offset_min is not None:
        off = offset_min.astype(np.int64)
        mat[:, 19] = np.where(off < 0, ord("-"), ord("+"))
        _put(mat, 20, np.abs(off) // 60, 2)
        _put(mat, 23, np.abs(off) % 60, 2)
    return _from_matrix(mat)


def numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``numbers`` (fixed width, e.g. ``A0000042``)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    head = prefix.encode()
    mat = np.empty((numbers.size, len(head) + width), dtype=np.uint8)
    if head:
        mat[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    _put(mat, len(head), numbers, width)
    return _from_matrix(mat)


def hashed_hex(*keys: np.ndarray, width: int = 16) -> pa.Array:
    """Opaque, deterministic lowercase hex ids mixed from integer ``keys`` (splitmix64)."""
    h = np.zeros(np.asarray(keys[0]).size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for key in keys:
            h = (h ^ np.asarray(key).astype(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(30)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(27)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    mat = np.empty((h.size, width), dtype=np.uint8)
    for i in range(width):
        mat[:, width - 1 - i] = hexd[((h >> np.uint64(4 * i)) & np.uint64(15)).astype(np.int64)]
    return _from_matrix(mat)


def uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """Random version-4 UUID strings (from ``rng``, so reproducible)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2] = hexd[raw >> 4]
    chars[:, 1::2] = hexd[raw & 15]
    mat = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        mat[:, dst : dst + width] = chars[:, src : src + width]
    return _from_matrix(mat)


def pick(vocab: tuple[str, ...] | list[str], idx: np.ndarray) -> pa.Array:
    """Strings from ``vocab`` by index; a negative index gives null."""
    idx = np.asarray(idx)
    return pc.take(pa.array(list(vocab), pa.string()), pa.array(idx, mask=idx < 0, type=pa.int32()))


def number_text(values: np.ndarray, decimals: int = 0) -> pa.Array:
    """Numbers as text; NaN gives null. Whole numbers print without a decimal point."""
    values = np.asarray(values, dtype=np.float64)
    mask = np.isnan(values)
    if decimals == 0:
        arr = pa.array(np.where(mask, 0, np.round(values)).astype(np.int64), mask=mask)
    else:
        arr = pa.array(np.round(np.where(mask, 0, values), decimals), mask=mask)
    return pc.cast(arr, pa.string())


def bool_text(values: np.ndarray) -> pa.Array:
    """``true`` / ``false`` strings."""
    return pick(("false", "true"), np.asarray(values, dtype=np.int8))


def _csv_field(col: pa.Array) -> pa.Array:
    # quote only where a reader needs it, like most CRM exports
    needs = pc.fill_null(pc.match_substring_regex(col, '[",\n]'), False)
    if not pc.any(needs).as_py():
        return col
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(col, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, col)


def csv_lines(table: pa.Table) -> pa.ChunkedArray | pa.Array:
    """One CSV line (with trailing newline) per row; nulls become empty fields."""
    cols = [_csv_field(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    if not cols or table.num_rows == 0:
        return pa.array([], pa.string())
    joined = pc.binary_join_element_wise(*cols, ",", null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise(joined, "\n", "")


def csv_header(names: list[str] | tuple[str, ...]) -> bytes:
    return (",".join(names) + "\n").encode()


def json_lines(table: pa.Table, numeric: frozenset[str] = frozenset()) -> pa.Array:
    """One JSON object per row (with trailing newline).

    Values are written as JSON strings, except columns in ``numeric`` whose values are
    written bare when they parse as numbers. Null gives ``null``. The simulator's strings
    contain no quotes or backslashes, so no escaping is needed.
    """
    parts: list[pa.Array | str] = []
    for i, name in enumerate(table.column_names):
        col = table.column(i).combine_chunks()
        quoted = pc.binary_join_element_wise('"', col, '"', "")
        if name in numeric:
            bare = pc.match_substring_regex(col, r"^-?[0-9]+(\.[0-9]+)?$")
            quoted = pc.if_else(pc.fill_null(bare, False), col, quoted)
        parts.append(("{" if i == 0 else ",") + f'"{name}":')
        parts.append(pc.fill_null(quoted, "null"))
    parts.append("}\n")
    return pc.binary_join_element_wise(*parts, "")


def text_bytes(lines: pa.Array | pa.ChunkedArray) -> bytes:
    """Concatenation of all strings in ``lines`` (a text file's content)."""
    chunks = lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]
    out = []
    for arr in chunks:
        if len(arr) == 0:
            continue
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[
            arr.offset : arr.offset + len(arr) + 1
        ]
        data = arr.buffers()[2]
        out.append(bytes(memoryview(data)[offsets[0] : offsets[-1]]))
    return b"".join(out)
