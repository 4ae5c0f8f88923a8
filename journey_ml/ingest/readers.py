"""Reading exports in bounded batches: CSV, Parquet and JSON lines.

Readers never judge content (that is :mod:`journey_ml.ingest.validate`); they only turn
bytes into frames of raw values and report rows that cannot even be parsed (wrong column
count, invalid JSON, invalid UTF-8) so those are quarantined rather than lost.

Every reader: strips a UTF-8 byte-order mark, gives column names in the normalised form
(:func:`journey_ml.schemas.column_key`), keeps ids exact (integers are never read through
float64), and numbers each row twice: its ordinal among the file's rows and the physical
line where it starts (what a user looks up in an editor).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import mmap
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from journey_ml.schemas import column_key

STRING = pd.StringDtype("pyarrow")
BOM = b"\xef\xbb\xbf"
# Arrow integer types -> pandas nullable integers: a null must not turn 2^53 + 1 into a float
_NULLABLE_INTS = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                  pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                  pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype()}
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".ndjson": "jsonl", ".json": "jsonl"}


class SourceFileError(ValueError):
    """A file cannot be read at all (missing, empty, unknown format, bad header)."""


@dataclass
class BadRow:
    """A row that could not be parsed into columns."""

    row_number: int  # 1-based ordinal among the file's rows
    reason: str
    raw: str
    # the row's values by column when the row was aligned with the header
    values: dict[str, str | None] | None = None
    # the row split into fields when it was not aligned with the header
    fields: list[str] | None = None
    line_number: int | None = None  # 1-based line where the row starts (None: Parquet)


@dataclass
class RawBatch:
    """A batch of raw rows: source column names, values as read (strings for text formats)."""

    frame: pd.DataFrame
    row_numbers: np.ndarray  # 1-based ordinal of each row among its file's rows
    bad_rows: list[BadRow] = field(default_factory=list)
    # 1-based line of the file where each row starts (a CSV's header is line 1); None when
    # the format has no lines (Parquet)
    line_numbers: np.ndarray | None = None

    @property
    def rows_read(self) -> int:
        return len(self.frame) + len(self.bad_rows)


def detect_format(path: Path, declared: str = "auto") -> str:
    """The format of ``path`` (declared, or from its extension); raises SourceFileError."""
    if declared != "auto":
        return declared
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceFileError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            f"set `format:` on the source (csv, parquet or jsonl)"
        )
    return fmt


def list_files(path: Path, declared: str = "auto") -> list[Path]:
    """Files of a source: a file, every readable file in a folder (recursively), or a glob.

    Sorted by name so runs are deterministic. Raises SourceFileError if nothing matches.
    """
    if path.is_file():
        return [path]
    if path.is_dir():
        exts = {e for e, f in FORMATS.items() if declared in ("auto", f)}
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    else:
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not files:
        raise SourceFileError(f"{path}: no {declared if declared != 'auto' else 'source'} files found")
    return files


def file_digest(path: Path) -> str:
    """Content digest of a file (BLAKE2b-128, hex); the identity of an export."""
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_columns(path: Path, fmt: str) -> list[str]:
    """Column names of a file without reading it all; raises SourceFileError when empty."""
    if path.stat().st_size == 0:
        raise SourceFileError(f"{path}: empty file (no header row)")
    if fmt == "csv":
        with path.open("rb") as f:
            head = f.read(1 << 16).decode("utf-8-sig", errors="replace")
        first = next(csv.reader(io.StringIO(head, newline=None)), None)
        if not first or all(not column_key(c) for c in first):
            raise SourceFileError(f"{path}: empty header row")
        return _unique(path, [column_key(c) for c in first], "in header")
    if fmt == "parquet":
        try:
            names = list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowInvalid, OSError) as e:
            raise SourceFileError(f"{path}: not a readable Parquet file: {e}") from None
        return _unique(path, [column_key(n) for n in names], "in the Parquet schema")
    if fmt == "jsonl":
        keys: dict[str, None] = {}
        with path.open("rb") as f:
            for i, line in enumerate(f):
                if i >= 1000:
                    break
                try:
                    obj = json.loads(line.removeprefix(BOM) if i == 0 else line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    keys.update(dict.fromkeys(column_key(k) for k in obj))
        return list(keys)
    raise SourceFileError(f"{path}: unsupported format {fmt!r}")


def _unique(path: Path, names: list[str], where: str) -> list[str]:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SourceFileError(f"{path}: repeated column names {where} (after removing spaces and "
                              f"byte-order marks): {dupes}")
    return names


def read_batches(
    path: Path, fmt: str, batch_rows: int, null_values: list[str] | None = None
) -> Iterator[RawBatch]:
    """Yield batches of about ``batch_rows`` rows from one file."""
    if fmt == "csv":
        yield from _csv_batches(path, batch_rows, null_values or [""])
    elif fmt == "parquet":
        yield from _parquet_batches(path, batch_rows)
    elif fmt == "jsonl":
        yield from _jsonl_batches(path, batch_rows)
    else:
        raise SourceFileError(f"{path}: unsupported format {fmt!r}")


def _csv_batches(path: Path, batch_rows: int, null_values: list[str]) -> Iterator[RawBatch]:
    names = read_columns(path, "csv")
    with path.open("rb") as f:
        sample = f.read(1 << 20)
    lines = max(sample.count(b"\n"), 1)
    row_bytes = max(len(sample) / lines, 16)
    block = int(min(max(row_bytes * batch_rows, 1 << 16), 1 << 30))

    pending_bad: list[BadRow] = []

    def _invalid(row: pacsv.InvalidRow) -> str:
        fields = next(csv.reader(io.StringIO(row.text, newline=None)), [])
        pending_bad.append(BadRow(
            row_number=0,  # numbered by _CsvLines: Arrow does not know it
            reason=f"expected {row.expected_columns} columns, got {row.actual_columns}",
            raw=row.text,
            # unaligned: position i is only *probably* column i
            fields=fields,
        ))
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block, column_names=names, skip_rows=1),
        parse_options=pacsv.ParseOptions(invalid_row_handler=_invalid, newlines_in_values=True),
        # binary, not string: invalid UTF-8 must fail one row, not the whole file
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.binary() for n in names},
            null_values=null_values,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    positions = _CsvLines(path, len(names))
    for rb in reader:
        frame, bad = _decode_utf8(rb)
        n = rb.num_rows
        numbers, line_numbers, batch_bad = positions.take(frame, pending_bad)
        keep = np.ones(n, dtype=bool)
        for idx in bad:
            keep[idx] = False
        for idx, col in bad.items():
            values = {c: _text(rb.column(c)[idx].as_py()) for c in rb.schema.names}
            batch_bad.append(BadRow(int(numbers[idx]), f"invalid UTF-8 in column {col!r}",
                                    json.dumps(values, ensure_ascii=False), values,
                                    line_number=int(line_numbers[idx])))
        if not keep.all():
            frame = frame[keep].reset_index(drop=True)
            numbers, line_numbers = numbers[keep], line_numbers[keep]
        yield RawBatch(frame, numbers, batch_bad, line_numbers)
    rest = positions.finish(pending_bad)
    if rest:
        yield RawBatch(pd.DataFrame({n: pd.Series(dtype=STRING) for n in names}),
                       np.array([], dtype=np.int64), rest, np.array([], dtype=np.int64))


_LONE_CR = re.compile(rb"\r(?!\n)")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_LINE_BREAK = r"\r\n|\r|\n"


class _CsvLines:
    """Each CSV row's ordinal and starting line, in step with Arrow's batches.

    Arrow reports neither: a skipped malformed row has no number and shifts the rows after
    it. Most files take the cheap path: no malformed row, no blank line and no lone CR, so
    the ordinal is a count and the line is ``ordinal + 1`` plus the line breaks inside the
    values of earlier rows (counted from the values themselves). Otherwise, from the first
    batch that needs it, Python's csv module (C; about a second per million rows) walks the
    file's records beside Arrow and gives the exact numbers; malformed rows are paired with
    Arrow's reports in file order.
    """

    def __init__(self, path: Path, width: int) -> None:
        self.path, self.width = path, width
        self.valid_done = 0  # rows of the file handed out so far
        self.breaks = 0  # cheap path: line breaks inside values so far
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            end = len(m)
            while end and m[end - 1] in b"\r\n":
                end -= 1  # blank lines at the very end shift nothing
            self.has_quotes = m.find(b'"') != -1
            self.irregular = bool(_BLANK_LINE.search(m, 0, end) or _LONE_CR.search(m, 0, end))
        self._walk: Iterator[tuple[bool, int]] | None = None
        self._ordinal = 0  # exact path: records walked so far
        self._unpaired: list[tuple[int, int]] = []  # malformed records not yet reported by Arrow

    def take(self, frame: pd.DataFrame, pending: list[BadRow]) -> tuple[np.ndarray, np.ndarray, list[BadRow]]:
        """Ordinals and lines of the next ``len(frame)`` rows, and the malformed rows among them."""
        n = len(frame)
        if self._walk is None and (pending or self.irregular):
            self._start()
        if self._walk is None:
            numbers = np.arange(self.valid_done + 1, self.valid_done + n + 1, dtype=np.int64)
            inner = _line_breaks(frame) if self.has_quotes else np.zeros(n, dtype=np.int64)
            lines = numbers + 1 + self.breaks + (np.cumsum(inner) - inner)
            self.breaks += int(inner.sum())
            self.valid_done += n
            return numbers, lines, []
        numbers, lines = self._advance(n)
        return numbers, lines, self._pair(pending)

    def _advance(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Walk to the next ``n`` well-formed rows; malformed ones met on the way wait to be paired."""
        assert self._walk is not None
        numbers = np.empty(n, dtype=np.int64)
        lines = np.empty(n, dtype=np.int64)
        for i in range(n):
            for valid, line in self._walk:
                self._ordinal += 1
                if valid:
                    numbers[i], lines[i] = self._ordinal, line
                    break
                self._unpaired.append((self._ordinal, line))
            else:  # the csv module saw fewer rows than Arrow (should not happen): count on
                self._ordinal += 1
                numbers[i], lines[i] = self._ordinal, (lines[i - 1] + 1 if i else self._ordinal + 1)
        self.valid_done += n
        return numbers, lines

    def finish(self, pending: list[BadRow]) -> list[BadRow]:
        """The malformed rows after the last parsed one, numbered."""
        if not pending:
            return []
        if self._walk is None:
            self._start()
        assert self._walk is not None
        for valid, line in self._walk:
            self._ordinal += 1
            if not valid:
                self._unpaired.append((self._ordinal, line))
        return self._pair(pending)

    def _pair(self, pending: list[BadRow]) -> list[BadRow]:
        k = min(len(pending), len(self._unpaired))
        out = pending[:k]
        for b, (ordinal, line) in zip(out, self._unpaired[:k], strict=True):
            b.row_number, b.line_number = ordinal, line
        del pending[:k], self._unpaired[:k]
        return out

    def _start(self) -> None:
        """Walk from the start of the file to where the cheap path stopped (no malformed rows)."""
        self._walk = self._records()
        done, self.valid_done = self.valid_done, 0
        self._advance(done)

    def _records(self) -> Iterator[tuple[bool, int]]:
        """(has the header's width, starting line) of every row after the header."""
        if csv.field_size_limit() < 1 << 30:
            csv.field_size_limit(min(sys.maxsize, 1 << 31))  # a cell as large as Arrow allows
        # universal newlines: \n, \r\n and a lone \r each end one line, as for Arrow (values
        # are not kept, only fields counted, so translating their line breaks is harmless)
        with self.path.open(encoding="utf-8-sig", errors="surrogateescape") as f:
            reader = csv.reader(f)
            end = 0
            header = True
            for row in reader:
                start, end = end + 1, reader.line_num
                if not row:  # a blank line: Arrow skips it too
                    continue
                if header:
                    header = False
                    continue
                yield len(row) == self.width, start


def _line_breaks(frame: pd.DataFrame) -> np.ndarray:
    """Line breaks inside each row's values (quoted multi-line cells)."""
    out = np.zeros(len(frame), dtype=np.int64)
    for name in frame.columns:
        col = frame[name]
        if col.str.contains(r"[\r\n]", regex=True).any():
            out += col.str.count(_LINE_BREAK).fillna(0).to_numpy(dtype=np.int64)
    return out


def _text(v: bytes | None) -> str | None:
    return None if v is None else v.decode("utf-8", errors="replace")


def _decode_utf8(rb: pa.RecordBatch) -> tuple[pd.DataFrame, dict[int, str]]:
    """Binary columns to str; rows with invalid UTF-8 reported as {row index: column}."""
    cols: dict[str, object] = {}
    bad: dict[int, str] = {}
    for name in rb.schema.names:
        arr = rb.column(name)
        try:
            # Arrow-backed strings: pandas' .str methods then run in Arrow's C++ kernels
            cols[name] = pd.Series(pd.arrays.ArrowStringArray(arr.cast(pa.string())))
        except pa.ArrowInvalid:
            values = arr.to_pylist()
            out = []
            for i, v in enumerate(values):
                if v is None:
                    out.append(None)
                    continue
                try:
                    out.append(v.decode("utf-8"))
                except UnicodeDecodeError:
                    bad.setdefault(i, name)
                    out.append(None)
            cols[name] = pd.Series(out, dtype=STRING)
    return pd.DataFrame(cols), bad


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise SourceFileError(f"{path}: not a readable Parquet file: {e}") from None
    done = 0
    mapping = {pa.string(): STRING, pa.large_string(): STRING, **_NULLABLE_INTS}
    for rb in pf.iter_batches(batch_size=batch_rows):
        frame = rb.to_pandas(types_mapper=mapping.get)
        frame.columns = [column_key(c) for c in frame.columns]
        n = len(frame)
        yield RawBatch(frame, np.arange(done + 1, done + n + 1, dtype=np.int64))
        done += n


def _jsonl_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    records: list[dict] = []
    numbers: list[int] = []
    lines: list[int] = []
    bad: list[BadRow] = []
    ordinal = 0
    with path.open("rb") as f:
        for i, line in enumerate(f, start=1):
            if i == 1:
                line = line.removeprefix(BOM)
            if not line.strip():
                continue
            ordinal += 1
            try:
                obj = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                bad.append(BadRow(ordinal, "invalid UTF-8", line.decode("utf-8", errors="replace"),
                                  line_number=i))
                obj = None
            except ValueError as e:
                bad.append(BadRow(ordinal, f"invalid JSON: {e}", line.decode("utf-8", errors="replace"),
                                  line_number=i))
                obj = None
            else:
                if not isinstance(obj, dict):
                    bad.append(BadRow(ordinal, f"expected a JSON object, got {type(obj).__name__}",
                                      line.decode("utf-8", errors="replace"), line_number=i))
                    obj = None
            if obj is not None:
                records.append(obj)
                numbers.append(ordinal)
                lines.append(i)
            if len(records) + len(bad) >= batch_rows:
                yield RawBatch(_records_frame(records), np.array(numbers, dtype=np.int64), bad,
                               np.array(lines, dtype=np.int64))
                records, numbers, lines, bad = [], [], [], []
    if records or bad:
        yield RawBatch(_records_frame(records), np.array(numbers, dtype=np.int64), bad,
                       np.array(lines, dtype=np.int64))


def _records_frame(records: list[dict]) -> pd.DataFrame:
    """JSON objects as a frame of the values as parsed (object columns).

    Not ``DataFrame.from_records``: its type inference turns an integer column with a
    missing key into float64 (2^53 + 1 becomes 2^53). Nested objects and arrays stay
    Python dicts and lists, so they are stored as JSON, not as JSON text inside JSON.
    """
    keys: dict[str, None] = {}
    for r in records:
        keys.update(dict.fromkeys(r))
    names = {k: column_key(k) for k in keys}
    if len(set(names.values())) < len(names):  # "Email" and " Email": the first present wins
        merged: dict[str, list] = {}
        for k, name in names.items():
            col = [r.get(k) for r in records]
            merged[name] = col if name not in merged else [a if a is not None else b
                                                          for a, b in zip(merged[name], col, strict=True)]
        return pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in merged.items()})
    return pd.DataFrame({names[k]: pd.Series([r.get(k) for r in records], dtype=object) for k in keys},
                        index=pd.RangeIndex(len(records)))
