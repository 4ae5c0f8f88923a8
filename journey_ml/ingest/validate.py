"""Validation against the contract: a pure function from raw rows to loadable rows.

``prepare_batch`` takes a batch of raw values and returns the rows to load (typed, in the
table's shape) and the rejected rows (with a reason that names the field and the column,
and the raw row with personal data already hashed or dropped). Every input row ends up in
exactly one of: loaded rows, in-batch duplicates, rejects, or suppressed (erased subjects).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journey_ml.config import SourceConfig, TaxonomyEntry
from journey_ml.db.models import Account, Contact, Event, Outcome
from journey_ml.ingest.pii import Tombstones, apply_pii, hash_series
from journey_ml.ingest.readers import STRING, BadRow, RawBatch
from journey_ml.schemas import CONTRACTS, Contract, DType, Kind

TABLES = {Kind.events: Event.__table__, Kind.outcomes: Outcome.__table__,
          Kind.accounts: Account.__table__, Kind.contacts: Contact.__table__}

FALSE_VALUES = ("false", "0", "no", "n", "f")
# a time of day followed by a UTC offset or Z (a date's "-05" is not an offset)
_HAS_OFFSET = r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_UTC_SUFFIX = r"\s*(?:[Uu][Tt][Cc]|[Gg][Mm][Tt])$"
_DATE_ONLY = r"\d{4}-\d{2}-\d{2}|\d{8}"
_NUMBER = r"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?"
_EXACT_FLOAT = 2 ** 53  # float64 holds every integer up to here, and not all beyond
_EPOCH = {"epoch_s": ("s", "seconds"), "epoch_ms": ("ms", "milliseconds")}


@dataclass(frozen=True)
class ValidationContext:
    """Everything ``prepare_batch`` needs besides the rows (no I/O, no clock)."""

    source: SourceConfig
    taxonomy: Mapping[str, TaxonomyEntry]
    salt: str
    received_at: datetime  # ingestion time, UTC-aware; the reference for "in the future"
    max_future_skew: timedelta = timedelta(hours=1)
    unknown_event_types: str = "keep"
    pii_hash: frozenset[str] = frozenset()
    pii_drop: frozenset[str] = frozenset()
    tombstones: Tombstones | None = None

    @property
    def contract(self) -> Contract:
        return CONTRACTS[self.source.kind]


@dataclass
class PreparedBatch:
    """The outcome of validating one batch."""

    rows: pd.DataFrame  # in the target table's columns
    rejects: pd.DataFrame  # REJECT_COLUMNS
    rows_read: int
    duplicates: int = 0  # dropped inside the batch
    suppressed: int = 0  # rows of erased subjects, dropped without a trace
    unknown_event_types: Counter = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return len(self.rejects)


REJECT_COLUMNS = ["row_number", "line_number", "reason", "raw", "contact_id", "account_id"]


def prepare_batch(batch: RawBatch, ctx: ValidationContext) -> PreparedBatch:
    """Validate and shape one batch; never raises for bad rows (they become rejects)."""
    src = ctx.source
    contract = ctx.contract
    frame = batch.frame.reset_index(drop=True)
    n = len(frame)
    to_hash = (ctx.pii_hash | set(src.pii.hash)) - (ctx.pii_drop | set(src.pii.drop))
    to_drop = ctx.pii_drop | set(src.pii.drop)
    safe = apply_pii(frame, to_hash, to_drop, ctx.salt)
    reasons = np.full(n, None, dtype=object)

    def reject(mask: np.ndarray | pd.Series, reason: str | Callable[[np.ndarray], list[str]]) -> None:
        """Give rows in ``mask`` that have no reason yet this one (built only for them)."""
        m = _as_mask(mask) & pd.isna(reasons)
        if m.any():
            reasons[m] = reason(m) if callable(reason) else reason

    # --- map export columns onto contract fields -------------------------------------
    out: dict[str, pd.Series] = {}
    used: set[str] = set()
    for spec in contract.fields:
        col = src.column_for(spec.name)
        if col in safe.columns:
            out[spec.name] = safe[col]
            used.add(col)
        elif spec.name in src.defaults:
            out[spec.name] = pd.Series(np.full(n, src.defaults[spec.name], dtype=object))
        else:
            out[spec.name] = _nones(n)

    def where(name: str) -> str:
        col = src.column_for(name)
        return f" (column {col!r})" if col != name else ""

    # one value per field: a JSON object or array is no id, no name, no time
    for spec in contract.fields:
        s = out[spec.name]
        if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True).startswith("mixed"):
            nested = s.map(_json_container)
            if nested.notna().any():
                reject(nested.notna(), lambda m, nested=nested, spec=spec: [
                    f"{spec.name}{where(spec.name)} is a JSON {k}, not a single value" for k in nested[m]])
                out[spec.name] = s.where(nested.isna(), None)
    # ids are text: a float above 2^53 has already lost digits (two ids would merge)
    for spec in contract.fields:
        if spec.name.endswith("_id"):
            lossy = _lossy_float(out[spec.name])
            reject(lossy, _value_reason(out[spec.name], spec.name, where(spec.name),
                                        "is a floating-point number above 2^53: the export lost the "
                                        "id's exact digits (export ids as text or integers)"))

    # text: trimmed, empty means missing (typed Parquet columns are left as they are)
    for spec in contract.fields:
        s = out[spec.name]
        if spec.dtype == DType.string or not (pd.api.types.is_numeric_dtype(s)
                                              or pd.api.types.is_datetime64_any_dtype(s)
                                              or pd.api.types.is_bool_dtype(s)):
            out[spec.name] = _clean_strings(s)

    # erased subjects leave no trace: dropped before anything else looks at them
    suppressed = np.zeros(n, dtype=bool)
    if ctx.tombstones:
        for kind in ("contact", "account"):
            name = f"{kind}_id"
            if name in out:
                ids = out[name].dropna()
                erased = [u for u in ids.unique() if ctx.tombstones.erased(kind, u)]
                if erased:
                    suppressed[ids.index[ids.isin(erased)]] = True

    for spec in contract.fields:
        if spec.required:
            reject(out[spec.name].isna(), f"missing {spec.name}{where(spec.name)}")
    if contract.one_of:
        none = np.logical_and.reduce([out[f].isna().to_numpy() for f in contract.one_of])
        reject(none, f"missing {' and '.join(contract.one_of)}: at least one is required")

    table = TABLES[contract.kind]
    for spec in contract.fields:
        s = out[spec.name]
        if spec.dtype == DType.string:
            length = getattr(table.c[_column_name(spec.name)].type, "length", None)
            if length:
                too_long = s.str.len() > length
                reject(too_long, f"{spec.name}{where(spec.name)} longer than {length} characters")
            reject(s.str.contains("\x00", regex=False),
                   f"NUL byte in {spec.name}{where(spec.name)}")
        elif spec.dtype == DType.timestamp:
            parsed, problems = _parse_timestamps(s, src.timezone, src.timestamp_format)
            reject(problems.notna().to_numpy(), lambda m, s=s, p=problems, name=spec.name: [
                f"{name}{where(name)} {_short(v if isinstance(v, str | int | float) else str(v))} {why}"
                for v, why in zip(s[m], p[m], strict=True)])
            limit = ctx.received_at + ctx.max_future_skew
            future = parsed > limit
            reject(future, f"{spec.name}{where(spec.name)} is in the future "
                   f"(after ingestion time + {ctx.max_future_skew})")
            out[spec.name] = parsed
        elif spec.dtype in (DType.float, DType.integer):
            num = pd.to_numeric(s, errors="coerce").astype(float)
            bad = (num.isna() & s.notna()) | np.isinf(num.fillna(0))
            reject(bad, _value_reason(s, spec.name, where(spec.name), "is not a finite number"))
            if spec.dtype == DType.integer:
                frac = (num.notna() & (num.fillna(0) % 1 != 0)).to_numpy()
                reject(frac, _value_reason(s, spec.name, where(spec.name), "is not a whole number"))
            out[spec.name] = num.where(~bad, np.nan)
        elif spec.dtype == DType.boolean:
            low = s.astype(STRING).str.lower() if not pd.api.types.is_bool_dtype(s) else s.map(str).str.lower()
            trues = low.isin([t.lower() for t in src.true_values]).fillna(False).astype(bool)
            falses = low.isin(FALSE_VALUES).fillna(False).astype(bool)
            bad = low.notna() & ~trues & ~falses
            reject(bad, _value_reason(s, spec.name, where(spec.name), "is not true/false"))
            out[spec.name] = pd.Series(np.where(trues, True, False), dtype=bool)

    unknown: Counter = Counter()
    if contract.kind == Kind.events:
        et = out["event_type"]
        known = et.isin(list(ctx.taxonomy))
        unk = ~known & et.notna() & pd.isna(reasons)
        if unk.any():
            unknown.update(et[unk].tolist())
            if ctx.unknown_event_types == "reject":
                reject(unk, _value_reason(et, "event_type", where("event_type"),
                                                     "is not in the taxonomy"))
        stage = et.map({k: v.stage for k, v in ctx.taxonomy.items()})
        tax_channel = et.map({k: v.channel for k, v in ctx.taxonomy.items()})
        if "channel" in src.columns:  # the export says; else the taxonomy, else the default
            channel = out["channel"].where(out["channel"].notna(), tax_channel)
        else:
            channel = tax_channel.where(tax_channel.notna(), out["channel"])
        out["channel"] = channel.astype(object).where(channel.notna(), None)
        out["stage"] = stage.astype(object).where(stage.notna(), None)

    # extras become a JSON document (properties / attributes)
    extras_name = contract.extras_column
    extra_cols = [c for c in safe.columns if c not in used] if src.extra_columns == "keep" else []
    out[extras_name] = _json_documents(safe[extra_cols]) if extra_cols else _nones(n)

    if contract.kind == Kind.contacts:
        email = out.pop("email")
        email_col = src.column_for("email")
        out["email_hash"] = email if email_col in to_hash else hash_series(email, ctx.salt)

    if contract.kind in (Kind.events, Kind.outcomes):
        id_field = contract.key[1]
        out["source"] = pd.Series([src.name] * n, dtype=object)
        missing_id = out[id_field].isna().to_numpy() & pd.isna(reasons)
        if missing_id.any():
            out[id_field] = out[id_field].astype(object)
            idx = np.flatnonzero(missing_id)
            ordinals = batch.row_numbers[idx] if src.identical_rows == "keep" else None
            derived = _derive_ids(out, contract, idx, src.name, ordinals)
            if len(idx) == n:  # no row has an id of its own: the column is the derived ids
                out[id_field] = pd.Series(pd.arrays.ArrowStringArray(pa.array(derived, type=pa.large_string())))
            else:
                out[id_field].iloc[idx] = derived
    else:
        out["source"] = pd.Series([src.name] * n, dtype=object)
        out["updated_at"] = pd.Series([pd.Timestamp(ctx.received_at)] * n)

    rows = pd.DataFrame(out)
    rejected = pd.notna(reasons) & ~suppressed
    keep = ~pd.notna(reasons) & ~suppressed

    reject_frame = _rejects_frame(batch, safe, rows, reasons, rejected, ctx, to_hash, to_drop)
    good = rows[keep]
    # later rows of an entity export describe its newer state; events keep the first copy
    dup = good.duplicated(subset=list(contract.key), keep="first" if contract.kind in (Kind.events, Kind.outcomes) else "last")
    good = good[~dup]
    columns = [c.name for c in table.columns if c.name != "ingest_run_id"]
    return PreparedBatch(
        rows=good[columns].reset_index(drop=True),
        rejects=reject_frame,
        rows_read=batch.rows_read,
        duplicates=int(dup.sum()),
        # unparsable rows of erased subjects are dropped too (never quarantined)
        suppressed=int(suppressed.sum()) + len(batch.bad_rows) - (len(reject_frame) - int(rejected.sum())),
        unknown_event_types=unknown,
    )


def _nones(n: int) -> pd.Series:
    """A column of ``n`` missing values (object dtype)."""
    return pd.Series(np.full(n, None, dtype=object))


def _as_mask(mask: np.ndarray | pd.Series) -> np.ndarray:
    """A plain bool array; missing (nullable booleans from Arrow strings) counts as False."""
    if isinstance(mask, pd.Series):
        return mask.to_numpy(dtype=bool, na_value=False)
    return np.asarray(mask, dtype=bool)


def _column_name(field_name: str) -> str:
    return "email_hash" if field_name == "email" else field_name


def _clean_strings(s: pd.Series) -> pd.Series:
    """Arrow-backed strings, trimmed, with empty values as missing."""
    if pd.api.types.is_float_dtype(s) and not isinstance(s.dtype, pd.StringDtype):
        # integer ids stored as float because of nulls: 12.0 -> "12"
        s = s.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    if s.dtype != STRING:
        s = s.astype(STRING)  # vectorised; numbers become their text
    # in Arrow directly (what ``.str.strip()`` and ``.mask(s == "")`` do, without the copies)
    text = pc.utf8_trim_whitespace(s.array._pa_array)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
    return pd.Series(pd.arrays.ArrowStringArray(text), index=s.index, name=s.name)


def _json_container(v: object) -> str | None:
    return "object" if isinstance(v, dict) else "array" if isinstance(v, list) else None


def _lossy_float(s: pd.Series) -> np.ndarray:
    """Rows holding a float too large to stand for an integer id exactly."""
    if pd.api.types.is_float_dtype(s) and not isinstance(s.dtype, pd.StringDtype):
        return (s.abs() >= _EXACT_FLOAT).to_numpy(dtype=bool, na_value=False)
    if s.dtype == object and "float" in pd.api.types.infer_dtype(s, skipna=True):
        return s.map(lambda v: isinstance(v, float) and abs(v) >= _EXACT_FLOAT).to_numpy(dtype=bool)
    return np.zeros(len(s), dtype=bool)


def _parse_timestamps(s: pd.Series, tz: str, fmt: str = "iso") -> tuple[pd.Series, pd.Series]:
    """Parse to UTC: (timestamps, why each unparsable value was refused, or None).

    ISO 8601 text (``timestamp_format: iso``): an offset, ``Z`` or a ``UTC`` suffix is
    honoured; a value without one is local time in the source's ``tz``; a date alone is
    local midnight. Refused, each with its own reason: a bare year or year-month, a number
    (epoch times must be declared), a local time that DST makes ambiguous or non-existent.
    ``epoch_s`` / ``epoch_ms``: numbers of seconds / milliseconds since 1970-01-01 UTC.
    """
    result = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    problems = pd.Series(None, index=s.index, dtype=object)
    if pd.api.types.is_datetime64_any_dtype(s):  # typed (Parquet): only the zone to settle
        ts = pd.Series(s)
        if ts.dt.tz is not None:
            return ts.dt.tz_convert("UTC"), problems
        return _localize(ts, tz, problems)
    if fmt in _EPOCH:
        unit, word = _EPOCH[fmt]
        has = s.notna()
        num = pd.to_numeric(s if pd.api.types.is_numeric_dtype(s) else _clean_strings(s), errors="coerce")
        problems[has & num.isna()] = (f"is not a number of {word} since 1970-01-01 UTC "
                                      f"(the source declares timestamp_format: {fmt})")
        ok = num.notna()
        if ok.any():
            result[ok] = pd.to_datetime(num[ok].astype(float), unit=unit, utc=True, errors="coerce")
        problems[ok & result.isna()] = f"is out of range for timestamp_format: {fmt}"
        return result, problems
    text = s if s.dtype == STRING else _clean_strings(s)
    has = text.notna().to_numpy()
    if not has.any():
        return result, problems
    text = text.str.replace(_UTC_SUFFIX, "+00:00", regex=True)
    aware = has & text.str.contains(_HAS_OFFSET, regex=True).to_numpy(dtype=bool, na_value=False)
    if aware.any():
        result[aware] = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
    rest = has & ~aware
    if rest.any():
        t = text[rest]
        year = t.str.fullmatch(r"\d{4}").to_numpy(dtype=bool, na_value=False)
        month = t.str.fullmatch(r"\d{4}-\d{2}").to_numpy(dtype=bool, na_value=False)
        date = t.str.fullmatch(_DATE_ONLY).to_numpy(dtype=bool, na_value=False)
        number = ~year & ~date & t.str.fullmatch(_NUMBER).to_numpy(dtype=bool, na_value=False)
        sub = pd.Series(None, index=t.index, dtype=object)
        sub[year] = "is a year without a month and day"
        sub[month] = "has no day (a month is not a point in time)"
        sub[number] = ("is a number, not a date; if the source sends epoch times, set "
                       "timestamp_format: epoch_s or epoch_ms")
        problems[sub.index] = sub
        local = ~(year | month | number)
        if local.any():
            idx = t.index[local]
            naive = pd.Series(pd.to_datetime(t[local], format="ISO8601", errors="coerce"), index=idx)
            parsed, why = _localize(naive, tz, problems[idx], midnight=pd.Series(date[local], index=idx))
            result[idx] = parsed
            problems[idx] = why
    problems[has & result.isna().to_numpy() & problems.isna().to_numpy()] = "is not a valid timestamp"
    return result, problems


def _localize(naive: pd.Series, tz: str, problems: pd.Series,
              midnight: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
    """Naive local times in ``tz`` to UTC; a DST gap or fold is a problem that says which.

    ``midnight`` marks dates without a time: a day whose midnight is skipped by DST (e.g.
    America/Santiago) starts at the first valid instant instead.
    """
    problems = problems.copy()
    if tz.upper() == "UTC":
        return naive.dt.tz_localize("UTC"), problems
    out = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").copy()
    failed = out.isna() & naive.notna()
    if failed.any():
        forward = naive[failed].dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        gap = forward.notna()
        if midnight is not None:
            start = gap & midnight[failed]
            out[start[start].index] = forward[start]
            gap &= ~start
        problems[gap[gap].index] = f"does not exist in {tz} (the clocks went forward)"
        fold = ~forward.notna()
        problems[fold[fold].index] = (f"is ambiguous in {tz} (the clocks went back: it happened "
                                      "twice); add a UTC offset")
    return out.dt.tz_convert("UTC"), problems


def _value_reason(values: pd.Series, name: str, where: str, what: str) -> Callable[[np.ndarray], list[str]]:
    """A reason naming the offending value, built only for the rejected rows."""
    return lambda m: [f"{name}{where} {_short(v)} {what}" for v in values[m]]


def _short(v: object) -> str:
    text = repr(v if not isinstance(v, str) else v)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_documents(frame: pd.DataFrame) -> pd.Series:
    """One compact JSON object per row, null keys left out (vectorised per null pattern).

    Rows are grouped by which columns are present, and each group is written by pandas'
    C writer with just those columns; only a frame with very many patterns (a sparse, wide
    attribute table) falls back to row-by-row.
    """
    if frame.empty:
        return pd.Series([], dtype=object)
    present = frame.notna().to_numpy()
    k = present.shape[1]
    if k <= 62:
        codes = (present.astype(np.int64) << np.arange(k, dtype=np.int64)).sum(axis=1)
        patterns = np.unique(codes)
        if len(patterns) <= 64:
            out = np.full(len(frame), None, dtype=object)
            for code in patterns:
                cols = [c for i, c in enumerate(frame.columns) if (code >> i) & 1]
                if not cols:
                    continue
                rows = codes == code
                part = frame[cols] if len(patterns) == 1 else frame.loc[rows, cols]
                text = part.to_json(orient="records", lines=True, date_format="iso",
                                    force_ascii=False, double_precision=15)
                out[rows] = text.rstrip("\n").split("\n")
            return pd.Series(out, index=frame.index)
    text = frame.to_json(orient="records", lines=True, date_format="iso", force_ascii=False,
                         double_precision=15)
    docs = pd.Series(text.rstrip("\n").split("\n"), index=frame.index, dtype=object)
    docs = docs.map(lambda d: json.dumps({k: v for k, v in json.loads(d).items() if v is not None},
                                         ensure_ascii=False, separators=(",", ":")))
    return docs.where(docs != "{}", None)


_ID_KEYS = ("journey-ml-ids-1", "journey-ml-ids-2")  # 16 bytes each (SipHash keys)


def _derive_ids(out: dict[str, pd.Series], contract: Contract, idx: np.ndarray, source: str,
                ordinals: np.ndarray | None = None) -> list[str]:
    """Deterministic ids from a row's content, so re-reading an export is idempotent.

    128 bits: two keyed SipHash-2-4 digests (pandas' vectorised ``hash_array``) of the
    row's canonical text. Same content, same id, on every machine and in every run. With
    ``ordinals`` (``identical_rows: keep``) each row's ordinal in its file joins the text,
    so exact copies within a file stay separate rows (and the same file still maps to the
    same ids).
    """
    fields = [f for f in contract.names if f not in contract.key] + [contract.extras_column]
    parts = [pa.scalar(source)]
    for f in fields:
        s = out[f].iloc[idx]
        present = s.notna().to_numpy()
        if pd.api.types.is_datetime64_any_dtype(s):
            # the integer time since the epoch, UTC (in the column's unit): canonical, cheap
            ticks = s.dt.tz_convert("UTC").astype("int64") if s.dt.tz is not None else s.astype("int64")
            text = pa.array(ticks.to_numpy(), mask=~present).cast(pa.string())
        elif pd.api.types.is_float_dtype(s):
            shown = np.full(len(s), None, dtype=object)  # pandas' text of each present value
            shown[present] = s[present].astype(str).to_numpy(dtype=object)
            text = pa.array(shown, type=pa.string())
        elif isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
            text = pa.array(s.array).cast(pa.string())  # already text: no per-value conversion
        elif s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
            text = pa.array(s.to_numpy(), type=pa.string(), from_pandas=True)  # str(v) is v
        else:
            text = pa.array(s.astype(object).where(s.notna(), None).map(str, na_action="ignore")
                            .to_numpy(dtype=object), type=pa.string())
        # a missing value is the empty text (what these ids have always been made of)
        parts.append(pc.fill_null(text, ""))
    if ordinals is not None:
        parts.append(pc.binary_join_element_wise(pa.scalar("#"), pa.array(ordinals).cast(pa.string()), ""))
    values = pc.binary_join_element_wise(*parts, "\x1f").to_numpy(zero_copy_only=False)
    digests = np.empty((len(idx), 2), dtype=">u8")  # big-endian: .hex() reads like %016x
    digests[:, 0] = pd.util.hash_array(values, hash_key=_ID_KEYS[0], categorize=False)
    digests[:, 1] = pd.util.hash_array(values, hash_key=_ID_KEYS[1], categorize=False)
    hexed = digests.tobytes().hex()
    return ["h:" + hexed[i:i + 32] for i in range(0, len(hexed), 32)]


def _canon(v: object) -> object:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


_PII_JSON = r'("{key}"\s*:\s*)("(?:[^"\\]|\\.)*"|[^,}}]*)'


def _rejects_frame(batch: RawBatch, safe: pd.DataFrame, rows: pd.DataFrame, reasons: np.ndarray,
                   rejected: np.ndarray, ctx: ValidationContext, to_hash: set[str],
                   to_drop: set[str]) -> pd.DataFrame:
    parts = []
    if rejected.any():
        raw = safe[rejected].to_json(orient="records", lines=True, date_format="iso",
                                     force_ascii=False).rstrip("\n").split("\n")
        parts.append(pd.DataFrame({
            "row_number": batch.row_numbers[rejected],
            "line_number": batch.line_numbers[rejected] if batch.line_numbers is not None else None,
            "reason": reasons[rejected],
            "raw": raw,
            "contact_id": rows["contact_id"][rejected].to_numpy() if "contact_id" in rows else None,
            "account_id": rows["account_id"][rejected].to_numpy() if "account_id" in rows else None,
        }))
    if batch.bad_rows:
        columns = list(batch.frame.columns)
        bad = [_bad_row(b, ctx, columns, to_hash, to_drop) for b in batch.bad_rows]
        parts.append(pd.DataFrame([b for b in bad if not _erased(b, ctx)], columns=REJECT_COLUMNS))
    if not parts:
        return pd.DataFrame(columns=REJECT_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def _erased(row: dict, ctx: ValidationContext) -> bool:
    return bool(ctx.tombstones) and any(
        row.get(f"{k}_id") and ctx.tombstones.erased(k, str(row[f"{k}_id"])) for k in ("contact", "account"))


def _bad_row(b: BadRow, ctx: ValidationContext, columns: list[str], to_hash: set[str],
             to_drop: set[str]) -> dict:
    """A row the reader could not parse, with personal data removed as far as can be told."""
    src = ctx.source
    if b.values is not None:
        frame = apply_pii(pd.DataFrame([b.values]), to_hash, to_drop, ctx.salt)
        raw = frame.iloc[0].to_dict()
        return {"row_number": b.row_number, "line_number": b.line_number, "reason": b.reason,
                "raw": json.dumps(raw, ensure_ascii=False),
                "contact_id": raw.get(src.column_for("contact_id")),
                "account_id": raw.get(src.column_for("account_id"))}
    raw = b.raw
    pii = to_hash | to_drop
    if b.fields is not None:
        # a CSV row with the wrong number of fields: its fields, minus any that may be personal
        raw = json.dumps(_scrub_fields(b.fields, columns, pii), ensure_ascii=False)
    elif raw.lstrip().startswith("{"):
        # unparsable JSON: blank the values of personal keys wherever they can be found
        for key in pii:
            raw = re.sub(_PII_JSON.format(key=re.escape(key)), r'\1"<removed>"', raw)
    elif pii:
        raw = "<withheld: unparsable row from a source with personal-data columns>"
    ids = {}
    for name in ("contact_id", "account_id"):
        col = src.column_for(name)
        m = re.search(rf'"{re.escape(col)}"\s*:\s*"?([^",}}]*)"?', b.raw)
        if m:
            ids[name] = m.group(1).strip() or None
        elif b.fields and col in columns and columns.index(col) < len(b.fields):
            ids[name] = b.fields[columns.index(col)].strip() or None
        else:
            ids[name] = None
    return {"row_number": b.row_number, "line_number": b.line_number, "reason": b.reason, "raw": raw, **ids}


def _scrub_fields(fields: list[str], columns: list[str], pii: set[str]) -> list[str]:
    """A misaligned row's fields with every one that may hold a personal column removed.

    With ``d`` extra fields, field ``j`` is one of columns ``j-d .. j``; with ``d`` missing
    fields, one of ``j .. j+d``. A field is kept only if none of those columns is personal.
    """
    personal = [i for i, c in enumerate(columns) if c in pii]
    if not personal:
        return fields
    d = len(fields) - len(columns)
    lo, hi = (-d, 0) if d > 0 else (0, -d)
    return ["<removed>" if any(j + lo <= p <= j + hi for p in personal) else f
            for j, f in enumerate(fields)]
