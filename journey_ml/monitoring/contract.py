"""The data contract that runs before drift: schema, nulls, infinities, unseen categories, size.

Evidently drops nulls and infinities before testing a column (so a 50% null spike reads as
no drift) and raises on a missing column, a numeric column arriving as text or an all-null
column. Each of those is measured here as its own metric, per column, and the columns drift
can safely be computed on are listed in `ContractResult.usable_columns`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journey_ml.features.declaration import FeatureSet, FeatureSpec

# status values, most severe first; only the first four make a column unusable for drift
STATUSES = ("missing", "type_mismatch", "all_null", "all_infinite", "null_spike", "inf_spike",
            "unseen_categories", "constant", "ok")
UNUSABLE = frozenset({"missing", "type_mismatch", "all_null", "all_infinite"})


@dataclass
class ColumnContract:
    """The contract metrics of one column; ``status`` is the most severe problem found."""

    column: str
    kind: str  # numeric | categorical
    status: str  # one of STATUSES
    null_share: float
    ref_null_share: float
    inf_share: float
    unseen_share: float
    problems: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)  # every problem found, not only the worst
    unseen_examples: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Whether drift can be computed on this column."""
        return self.status not in UNUSABLE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class ContractResult:
    """The contract of one batch against its reference."""

    rows: int
    reference_rows: int
    min_rows: int
    enough_rows: bool
    ok: bool
    columns: dict[str, ColumnContract]
    problems: list[str]
    usable_columns: list[str]  # columns drift can be computed on

    def by_status(self) -> dict[str, list[str]]:
        """Column names per status (only statuses that occur)."""
        out: dict[str, list[str]] = {}
        for c in self.columns.values():
            out.setdefault(c.status, []).append(c.column)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"rows": self.rows, "reference_rows": self.reference_rows, "min_rows": self.min_rows,
                "enough_rows": self.enough_rows, "ok": self.ok, "problems": list(self.problems),
                "usable_columns": list(self.usable_columns),
                "columns": {k: v.to_dict() for k, v in self.columns.items()}}


def _share(part: int, whole: int) -> float:
    return float(part) / whole if whole else 0.0


def _is_numeric(s: pd.Series) -> bool:
    # bool counts as numeric (0/1); an all-null object column is not text, it is empty
    return pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _text_example(s: pd.Series) -> str:
    """A non-numeric value of ``s`` (for the message), or ''."""
    vals = s.dropna().iloc[:1000]
    if vals.empty:
        return ""
    bad = vals[pd.to_numeric(vals, errors="coerce").isna()]
    return repr((bad if len(bad) else vals).iloc[0])[:40]


@dataclass
class NumericProfile:
    """A numeric column's counts of nulls, infinities and distinct finite values (0, 1, or 2 = more)."""

    nulls: int
    infs: int
    distinct: int


@dataclass
class CategoricalProfile:
    """A categorical column's value counts (nulls and infinities left out) and null count."""

    counts: dict[Any, int]
    nulls: int

    @property
    def values(self) -> int:
        """Rows with a value."""
        return sum(self.counts.values())


class ColumnProfiles:
    """Per-column summaries of one frame, computed once, shared by the contract and drift.

    A 1M-row text column costs a hash pass; doing it once (value counts with nulls) instead
    of once for nulls, once for unseen values and once for the test halves the run time.
    """

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self._num: dict[str, NumericProfile] = {}
        self._cat: dict[str, CategoricalProfile] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def has(self, name: str) -> bool:
        """Whether the frame has the column."""
        return name in self.frame.columns

    def values(self, name: str) -> np.ndarray:
        """The column as float64 (nulls as NaN); raises TypeError when it holds text."""
        s = self.frame[name]
        if not _is_numeric(s) and not s.isna().all():
            raise TypeError(f"numeric column {name!r} is {s.dtype}, not numbers (e.g. {_text_example(s)})")
        return s.to_numpy(dtype="float64", na_value=np.nan)

    def finite(self, name: str) -> np.ndarray:
        """The finite values, in row order (not cached: one column in memory at a time)."""
        a = self.values(name)
        return a[np.isfinite(a)]

    def numeric(self, name: str) -> NumericProfile:
        """The numeric profile; raises TypeError when the column holds text."""
        if name not in self._num:
            a = self.values(name)
            nan = np.isnan(a)
            inf = np.isinf(a)
            f = a[~(nan | inf)]
            distinct = 0 if f.size == 0 else 1 if bool(np.all(f == f[0])) else 2
            self._num[name] = NumericProfile(nulls=int(nan.sum()), infs=int(inf.sum()), distinct=distinct)
        return self._num[name]

    def categorical(self, name: str) -> CategoricalProfile:
        """Value counts without nulls (and without infinities, as Evidently drops them); raises TypeError."""
        if name not in self._cat:
            vc = self.frame[name].value_counts(dropna=False, sort=False)
            counts: dict[Any, int] = {}
            nulls = 0
            for k, v in vc.items():
                if v == 0:  # a pandas Categorical lists unused categories
                    continue
                if k is None or (isinstance(k, float) and not math.isfinite(k)) or k is pd.NaT or k is pd.NA:
                    nulls += int(v)
                else:
                    counts[k] = int(v)
            self._cat[name] = CategoricalProfile(counts=counts, nulls=nulls)
        return self._cat[name]


def _check_column(spec: FeatureSpec, ref: ColumnProfiles, cur: ColumnProfiles, max_null_increase: float,
                  max_inf_share: float, max_unseen_share: float) -> ColumnContract:
    name, kind = spec.name, spec.kind
    n_ref, n_cur = len(ref), len(cur)
    cc = ColumnContract(column=name, kind=kind, status="ok", null_share=0.0, ref_null_share=0.0,
                        inf_share=0.0, unseen_share=0.0)

    def flag(status: str, message: str) -> None:
        cc.statuses.append(status)
        cc.problems.append(message)

    if not cur.has(name):
        flag("missing", f"column {name!r} is missing from the current data")
    if not ref.has(name):
        flag("missing", f"column {name!r} is missing from the reference data")
    if cc.statuses:
        cc.status = "missing"
        return cc

    if kind == "numeric":
        profiles = {}
        for side, prof in (("current", cur), ("reference", ref)):
            try:
                profiles[side] = prof.numeric(name)
            except TypeError:
                s = prof.frame[name]
                flag("type_mismatch", f"numeric column {name!r} arrived as {s.dtype} in the {side} data "
                                      f"(e.g. {_text_example(s)}); drift skipped")
        if cc.statuses:
            cc.status = "type_mismatch"
            return cc
        c, r = profiles["current"], profiles["reference"]
        nulls, infs, r_nulls, r_infs = c.nulls, c.infs, r.nulls, r.infs
        cc.null_share, cc.ref_null_share = _share(nulls, n_cur), _share(r_nulls, n_ref)
        cc.inf_share = _share(infs, n_cur)
        if n_cur and nulls == n_cur:
            flag("all_null", f"column {name!r} is null in every current row; drift skipped")
        elif n_cur and nulls + infs == n_cur:
            flag("all_infinite", f"column {name!r} has no finite value in the current data "
                                 f"({infs} infinite, {nulls} null); drift skipped")
        if n_ref and r_nulls == n_ref:
            flag("all_null", f"column {name!r} is null in every reference row; drift skipped")
        elif n_ref and r_nulls + r_infs == n_ref:
            flag("all_infinite", f"column {name!r} has no finite value in the reference data; drift skipped")
        if cc.inf_share > max_inf_share:
            flag("inf_spike", f"column {name!r} is infinite in {cc.inf_share:.1%} of current rows "
                              f"(allowed {max_inf_share:.1%}); infinities are left out of drift")
        if c.distinct == 1 and r.distinct > 1:
            flag("constant", f"column {name!r} is constant in the current data (it varies in the reference)")
    else:
        try:
            c, r = cur.categorical(name), ref.categorical(name)
        except TypeError as e:  # unhashable values (lists, dicts): nothing can be counted
            flag("type_mismatch", f"categorical column {name!r} holds values that cannot be counted ({e}); "
                                  "drift skipped")
            cc.status = "type_mismatch"
            return cc
        cc.null_share = _share(n_cur - c.values, n_cur)
        cc.ref_null_share = _share(n_ref - r.values, n_ref)
        if n_cur and not c.counts:
            flag("all_null", f"column {name!r} is null in every current row; drift skipped")
        if n_ref and not r.counts:
            flag("all_null", f"column {name!r} is null in every reference row; drift skipped")
        if c.counts and r.counts:
            known = set(r.counts) | set(spec.categories)
            unseen = sorted(((v, k) for k, v in c.counts.items() if k not in known), key=lambda t: -t[0])
            cc.unseen_share = _share(sum(v for v, _ in unseen), c.values)
            cc.unseen_examples = [str(k) for _, k in unseen[:5]]
            if cc.unseen_share > max_unseen_share:
                flag("unseen_categories",
                     f"column {name!r} has {cc.unseen_share:.1%} values never seen in the reference "
                     f"(allowed {max_unseen_share:.1%}), e.g. {', '.join(cc.unseen_examples[:3])}")
            if len(c.counts) == 1 and len(r.counts) > 1:
                flag("constant", f"column {name!r} is constant in the current data (it varies in the reference)")

    # a null spike is measured even when the rest is fine: Evidently would drop these rows silently
    if n_cur and "all_null" not in cc.statuses and cc.null_share - cc.ref_null_share > max_null_increase:
        flag("null_spike", f"column {name!r} is null in {cc.null_share:.1%} of current rows "
                           f"vs {cc.ref_null_share:.1%} in the reference (allowed +{max_null_increase:.0%})")
    if cc.statuses:
        cc.status = min(cc.statuses, key=STATUSES.index)
    return cc


def check_contract(reference: pd.DataFrame, current: pd.DataFrame, feature_set: FeatureSet, *,
                   min_rows: int = 100, max_null_increase: float = 0.1, max_inf_share: float = 0.0,
                   max_unseen_share: float = 0.1, columns: list[str] | None = None,
                   profiles: tuple[ColumnProfiles, ColumnProfiles] | None = None) -> ContractResult:
    """Check ``current`` against ``reference`` column by column, for the declared features.

    ``columns`` restricts the check to those declared features (default: all); ``profiles``
    (reference, current) reuses column summaries `check_drift` also needs. Never raises
    on bad data: every problem is a metric and a sentence. A batch smaller than ``min_rows``
    (or an empty reference) is not ok and has no usable columns, so drift is not computed on
    noise; the per-column metrics are still measured.
    """
    names = columns if columns is not None else feature_set.names()
    n_cur, n_ref = len(current), len(reference)
    ref_p, cur_p = profiles or (ColumnProfiles(reference), ColumnProfiles(current))
    cols: dict[str, ColumnContract] = {}
    problems: list[str] = []
    for name in names:
        spec = feature_set.spec(name)
        try:
            cols[name] = _check_column(spec, ref_p, cur_p, max_null_increase, max_inf_share, max_unseen_share)
        except Exception as e:  # one column's oddity must not sink the check of the others
            cols[name] = ColumnContract(column=name, kind=spec.kind, status="type_mismatch", null_share=0.0,
                                        ref_null_share=0.0, inf_share=0.0, unseen_share=0.0,
                                        problems=[f"column {name!r} could not be checked "
                                                  f"({type(e).__name__}: {e}); drift skipped"],
                                        statuses=["type_mismatch"])
        problems.extend(cols[name].problems)
    enough = n_cur >= min_rows and n_cur > 0
    head: list[str] = []
    if n_cur == 0:
        head.append("the current window is empty (0 rows); drift not computed")
    elif not enough:
        head.append(f"the current batch has {n_cur} rows, fewer than the minimum {min_rows}; drift not computed")
    if n_ref == 0:
        head.append("the reference sample is empty; drift not computed")
    usable = [n for n in names if cols[n].usable] if enough and n_ref > 0 else []
    return ContractResult(rows=n_cur, reference_rows=n_ref, min_rows=min_rows, enough_rows=enough,
                          ok=not head and not problems, columns=cols, problems=head + problems,
                          usable_columns=usable)
