"""Deliberately bad rows, written into the text exports like a real pipeline receives them.

Kinds: an unparsable timestamp, a timestamp years in the future, no contact and no
account, an unknown event name, a non-numeric value, and an exact duplicate row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journey_ml.simulate import _vocab as v
from journey_ml.simulate._format import Calendar, iso, pick

BAD_TS, FUTURE, NO_IDS, UNKNOWN, NOT_NUMBER, DUPLICATE = range(6)
_KIND_SHARE = np.array([0.2, 0.15, 0.15, 0.15, 0.15, 0.2])


@dataclass(frozen=True)
class DirtySpec:
    """Which columns of a source the kinds of damage apply to."""

    timestamp: str
    ids: tuple[str, ...]
    event: str
    value: str | None = None
    tail: str = "Z"


def _replace(col: pa.ChunkedArray | pa.Array, mask: np.ndarray, values: pa.Array) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pc.replace_with_mask(arr, pa.array(mask), values.cast(arr.type))


def corrupt(
    rng: np.random.Generator,
    table: pa.Table,
    spec: DirtySpec,
    eligible: np.ndarray,
    n_bad: int,
    cal: Calendar,
) -> tuple[pa.Table, int]:
    """Damage ``n_bad`` of the ``eligible`` rows of ``table``; returns (table, rows made bad).

    Duplicates are added next to their original; every other kind edits the row in place.
    """
    candidates = np.flatnonzero(eligible)
    k = min(n_bad, candidates.size)
    if k == 0:
        return table, 0
    rows = np.sort(rng.choice(candidates, size=k, replace=False))
    kinds = rng.choice(len(_KIND_SHARE), size=k, p=_KIND_SHARE)
    if spec.value is None:
        kinds[kinds == NOT_NUMBER] = DUPLICATE
    n = table.num_rows
    columns = {name: table.column(name) for name in table.column_names}

    def mask_of(kind: int) -> tuple[np.ndarray, int]:
        m = np.zeros(n, dtype=bool)
        m[rows[kinds == kind]] = True
        return m, int((kinds == kind).sum())

    m, c = mask_of(BAD_TS)
    if c:
        columns[spec.timestamp] = _replace(
            columns[spec.timestamp],
            m,
            pick(v.BAD_TIMESTAMPS, rng.integers(0, len(v.BAD_TIMESTAMPS), c)),
        )
    m, c = mask_of(FUTURE)
    if c:
        sec = table.column("_sec").to_numpy()[m]
        columns[spec.timestamp] = _replace(
            columns[spec.timestamp], m, iso(cal.future_seconds(sec), spec.tail)
        )
    m, c = mask_of(NO_IDS)
    if c:
        for name in spec.ids:
            columns[name] = _replace(columns[name], m, pa.nulls(c, pa.string()))
    m, c = mask_of(UNKNOWN)
    if c:
        columns[spec.event] = _replace(
            columns[spec.event],
            m,
            pick(v.UNKNOWN_EVENTS, rng.integers(0, len(v.UNKNOWN_EVENTS), c)),
        )
    m, c = mask_of(NOT_NUMBER)
    if c and spec.value is not None:
        columns[spec.value] = _replace(
            columns[spec.value], m, pick(v.NOT_A_NUMBER, rng.integers(0, len(v.NOT_A_NUMBER), c))
        )
    out = pa.table(columns)
    dup = rows[kinds == DUPLICATE]
    if dup.size:
        order = np.sort(np.concatenate([np.arange(n), dup]), kind="stable")
        out = out.take(pa.array(order))
    return out, k
