"""Reading exports in bounded batches: CSV, Parquet and JSON lines.

Readers never judge content (that is :mod:`journey_ml.ingest.validate`); they only turn
bytes into frames of raw values and report rows that cannot even be parsed (wrong column
count, invalid JSON, invalid UTF-8) so those are quarantined rather than lost.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

STRING = pd.StringDtype("pyarrow")
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".ndjson": "jsonl", ".json": "jsonl"}


class SourceFileError(ValueError):
    """A file cannot be read at all (missing, empty, unknown format, bad header)."""


@dataclass
class BadRow:
    """A row that could not be parsed into columns."""

    row_number: int
    reason: str
    raw: str
    # the row's values by column when the row was aligned with the header
    values: dict[str, str | None] | None = None
    # the row split into fields when it was not aligned with the header
    fields: list[str] | None = None


@dataclass
class RawBatch:
    """A batch of raw rows: source column names, values as read (strings for text formats)."""

    frame: pd.DataFrame
    row_numbers: np.ndarray  # 1-based ordinal of each row in its file
    bad_rows: list[BadRow] = field(default_factory=list)

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
            head = f.read(1 << 16).decode("utf-8", errors="replace")
        first = next(csv.reader(io.StringIO(head)), None)
        if not first or all(not c.strip() for c in first):
            raise SourceFileError(f"{path}: empty header row")
        names = [c.strip() for c in first]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SourceFileError(f"{path}: repeated column names in header: {dupes}")
        return names
    if fmt == "parquet":
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowInvalid, OSError) as e:
            raise SourceFileError(f"{path}: not a readable Parquet file: {e}") from None
    if fmt == "jsonl":
        keys: dict[str, None] = {}
        with path.open("rb") as f:
            for i, line in enumerate(f):
                if i >= 1000:
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    keys.update(dict.fromkeys(obj))
        return list(keys)
    raise SourceFileError(f"{path}: unsupported format {fmt!r}")


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
        fields = next(csv.reader(io.StringIO(row.text)), [])
        pending_bad.append(BadRow(
            row_number=(row.number - 1) if row.number else -1,
            reason=f"expected {row.expected_columns} columns, got {row.actual_columns}",
            raw=row.text,
            # unaligned: position i is only *probably* column i; used to find ids, never stored
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
    done = 0
    for rb in reader:
        frame, bad = _decode_utf8(rb)
        n = rb.num_rows
        numbers = np.arange(done + 1, done + n + 1, dtype=np.int64)
        done += n
        keep = np.ones(n, dtype=bool)
        for idx in bad:
            keep[idx] = False
        batch_bad = pending_bad[:]
        pending_bad.clear()
        for idx, col in bad.items():
            values = {c: _text(rb.column(c)[idx].as_py()) for c in rb.schema.names}
            batch_bad.append(BadRow(int(numbers[idx]), f"invalid UTF-8 in column {col!r}",
                                    json.dumps(values, ensure_ascii=False), values))
        if not keep.all():
            frame = frame[keep].reset_index(drop=True)
            numbers = numbers[keep]
        yield RawBatch(frame, numbers, batch_bad)
    if pending_bad:
        yield RawBatch(pd.DataFrame({n: pd.Series(dtype=STRING) for n in names}),
                       np.array([], dtype=np.int64), pending_bad[:])


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
    mapping = {pa.string(): STRING, pa.large_string(): STRING}
    for rb in pf.iter_batches(batch_size=batch_rows):
        frame = rb.to_pandas(types_mapper=mapping.get)
        n = len(frame)
        yield RawBatch(frame, np.arange(done + 1, done + n + 1, dtype=np.int64))
        done += n


def _jsonl_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    records: list[dict] = []
    numbers: list[int] = []
    bad: list[BadRow] = []
    with path.open("rb") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                bad.append(BadRow(i, "invalid UTF-8", line.decode("utf-8", errors="replace")))
                obj = None
            except ValueError as e:
                bad.append(BadRow(i, f"invalid JSON: {e}", line.decode("utf-8", errors="replace")))
                obj = None
            else:
                if not isinstance(obj, dict):
                    bad.append(BadRow(i, f"expected a JSON object, got {type(obj).__name__}",
                                      line.decode("utf-8", errors="replace")))
                    obj = None
            if obj is not None:
                records.append(obj)
                numbers.append(i)
            if len(records) + len(bad) >= batch_rows:
                yield RawBatch(_records_frame(records), np.array(numbers, dtype=np.int64), bad)
                records, numbers, bad = [], [], []
    if records or bad:
        yield RawBatch(_records_frame(records), np.array(numbers, dtype=np.int64), bad)


def _records_frame(records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    # nested values are kept as JSON text so every cell is a scalar
    for c in frame.columns:
        if frame[c].dtype == object and frame[c].map(lambda v: isinstance(v, dict | list)).any():
            frame[c] = frame[c].map(lambda v: json.dumps(v) if isinstance(v, dict | list) else v)
    return frame
