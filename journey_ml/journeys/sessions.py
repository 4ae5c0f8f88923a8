"""Journeys: each entity's events as of T, cut into sessions by inactivity, at one level.

Input is an event frame (one row per event, the warehouse read as of T at the edge, see
`journey_ml.journeys.read`). Everything here is numpy over integer codes, so a journey
table of millions of events is cut, coded and deduplicated in seconds.

A journey ends when the entity has been silent for ``gap`` or at an outcome event (the
outcome is not a step: it marks the journey converted). Events after an entity's first
outcome belong to another story (a customer's) and are left out. Status at T:
``converted``, ``exited`` (silent for at least ``gap`` at T), or ``ongoing``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

Level = Literal["event_type", "channel", "stage"]
LEVELS: tuple[str, ...] = ("event_type", "channel", "stage")
EVENT_COLUMNS: tuple[str, ...] = ("entity_id", "occurred_at", "event_type", "channel", "stage", "value")
START, CONVERSION, EXIT, ONGOING = "(start)", "(conversion)", "(exit)", "(ongoing)"
STATUSES = ("converted", "exited", "ongoing")


class JourneyDataError(ValueError):
    """The event frame cannot be read as journeys (a missing column, a bad value)."""


@dataclass(frozen=True)
class Journeys:
    """Journeys at one level.

    ``steps``: one row per step, sorted by (journey, pos): ``journey`` (0..n-1), ``pos``
    (0-based), ``code`` (index into ``labels``), ``at`` (int64 ns since the epoch, UTC).
    ``table``: one row per journey (index = journey): ``entity_id``, ``start``, ``end``,
    ``n_steps``, ``converted``, ``value``, ``converted_at`` (ns, -1 when not converted),
    ``status``, and ``segment`` when one was attached.
    """

    level: str
    as_of: datetime
    gap: timedelta
    labels: tuple[str, ...]
    steps: pd.DataFrame
    table: pd.DataFrame
    outcome_types: tuple[str, ...] = field(default=())

    @property
    def n(self) -> int:
        return len(self.table)

    @property
    def conversions(self) -> int:
        return int(self.table["converted"].sum())

    @property
    def total_value(self) -> float:
        return float(self.table["value"].sum())

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(first, stop) row offsets of each journey's steps in ``steps``."""
        n = self.table["n_steps"].to_numpy(np.int64)
        stop = np.cumsum(n)
        return stop - n, stop

    def subset(self, mask: np.ndarray | pd.Series) -> Journeys:
        """The journeys where ``mask`` (one bool per journey) holds, renumbered 0..m-1."""
        keep = np.asarray(mask, dtype=bool)
        if keep.size != self.n:
            raise ValueError(f"mask has {keep.size} values for {self.n} journeys")
        new_id = np.cumsum(keep) - 1
        j = self.steps["journey"].to_numpy()
        rows = keep[j]
        steps = self.steps.loc[rows].copy()
        steps["journey"] = new_id[j[rows]]
        table = self.table.loc[keep].reset_index(drop=True)
        return Journeys(self.level, self.as_of, self.gap, self.labels, steps.reset_index(drop=True), table,
                        self.outcome_types)

    def with_segments(self, segment_of_entity: pd.Series, default: str = "global") -> Journeys:
        """A copy whose table has a ``segment`` column (entity id -> segment; else ``default``)."""
        table = self.table.copy()
        table["segment"] = table["entity_id"].map(segment_of_entity).fillna(default).astype(str)
        return Journeys(self.level, self.as_of, self.gap, self.labels, self.steps, table, self.outcome_types)

    def path_strings(self) -> pd.Series:
        """Each journey's path as ``a > b > c`` (for display; slow on millions of journeys)."""
        names = np.asarray(self.labels, dtype=object)
        s = pd.Series(names[self.steps["code"].to_numpy()]).groupby(self.steps["journey"].to_numpy()).agg(" > ".join)
        return s.reindex(range(self.n), fill_value="")


def _check(events: pd.DataFrame, level: str) -> None:
    if level not in LEVELS:
        raise JourneyDataError(f"unknown journey level {level!r}; expected one of {', '.join(LEVELS)}")
    missing = [c for c in ("entity_id", "occurred_at", "event_type", level) if c not in events.columns]
    if missing:
        raise JourneyDataError(f"the event frame has no column {', '.join(missing)} "
                               f"(columns: {', '.join(map(str, events.columns))})")
    bad = events["occurred_at"].isna() | events["entity_id"].isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        col = "occurred_at" if pd.isna(events["occurred_at"].iloc[i]) else "entity_id"
        raise JourneyDataError(f"row {i}: column {col} is empty (every event needs an entity and a time)")


def _ns(values: pd.Series) -> np.ndarray:
    t = pd.to_datetime(values, utc=True)
    return t.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _utc_times(ns: np.ndarray) -> pd.DatetimeIndex:
    """int64 ns since the epoch as UTC times (without pandas' slow path for integers)."""
    return pd.DatetimeIndex(np.asarray(ns, np.int64).view("datetime64[ns]")).tz_localize("UTC")


def _order(ent: np.ndarray, t: np.ndarray, is_out: np.ndarray, code: np.ndarray, n_labels: int) -> np.ndarray:
    """The stable order by (entity, time, outcome last, label): ``np.lexsort`` of the four,
    as two stable sorts of int64 keys (time's dense rank, then one combined key), which is
    2-3x faster on millions of events. Falls back to lexsort when the key would overflow."""
    n = t.size
    if n == 0:
        return np.zeros(0, np.int64)
    by_t = np.argsort(t)  # the dense rank of each time does not depend on how ties are ordered
    ts = t[by_t]
    new = np.ones(n, bool)
    new[1:] = ts[1:] != ts[:-1]
    rank = np.empty(n, np.int64)
    rank[by_t] = np.cumsum(new) - 1
    half = max(n_labels, int(code.max()) + 1) + 1  # label codes are >= -1 (an outcome's may be -1)
    times = int(rank[by_t[-1]]) + 1
    if float(int(ent.max()) + 1) * times * 2 * half >= 2.0 ** 62:
        return np.lexsort((code, is_out, t, ent))
    key = (ent.astype(np.int64) * times + rank) * (2 * half) + is_out.astype(np.int64) * half + (code + 1)
    return np.argsort(key, kind="stable")


def _as_ns(t: datetime) -> int:
    return int(pd.Timestamp(t).tz_convert("UTC").value) if pd.Timestamp(t).tzinfo else int(
        pd.Timestamp(t).tz_localize("UTC").value)


def sessionise(events: pd.DataFrame, *, as_of: datetime, level: Level = "stage", gap: timedelta = timedelta(days=30),
               outcome_types: Iterable[str] = (), exclude_event_types: Iterable[str] = (),
               collapse_repeats: bool = True, max_steps: int | None = None,
               labels: Iterable[str] | None = None) -> Journeys:
    """Cut each entity's events strictly before ``as_of`` into journeys at ``level``.

    ``events``: columns entity_id, occurred_at (UTC), event_type, the level's column
    (channel / stage; a missing label becomes ``unknown``), value (optional: the outcome
    event's value is the journey's value). ``outcome_types``: event types that mean the
    outcome happened. ``collapse_repeats``: a step equal to the one before is not a new
    step (it keeps the first arrival time). ``max_steps``: keep the last N steps.
    ``labels``: a fixed label order (others are appended), so codes agree across calls.
    Raises JourneyDataError naming a missing column or the first row without entity/time.
    """
    _check(events, level)
    gap_ns = int(gap.total_seconds() * 1e9)
    if gap_ns <= 0:
        raise JourneyDataError(f"the inactivity gap must be positive, got {gap}")
    t = _ns(events["occurred_at"])
    asof_ns = _as_ns(as_of)
    outcome_set = set(outcome_types)
    # factorize once, then test the few distinct names (isin on millions of strings is slow)
    et_code, et_names = pd.factorize(events["event_type"], use_na_sentinel=False)
    et_names = np.asarray(et_names, dtype=object).astype(str)
    excluded = np.isin(et_names, list(set(exclude_event_types) - outcome_set))
    keep = (t < asof_ns) & ~excluded[et_code]
    # factorize whole columns (cheap for categoricals), then keep the rows: no object copies
    ent_all, ent_names = pd.factorize(events["entity_id"])
    ent_codes = ent_all[keep]
    ent_names = np.asarray(ent_names, dtype=object).astype(str)
    t = t[keep]
    et_code = et_code[keep]
    is_out = np.isin(et_names, list(outcome_set))[et_code] if outcome_set else np.zeros(t.size, bool)
    if level == "event_type":
        lab_code, lab_names = et_code, et_names
    else:
        lab_code, lab_names = pd.factorize(events[level], use_na_sentinel=True)
        lab_code = lab_code[keep]
        lab_names = np.asarray(lab_names, dtype=object).astype(str)
        if (lab_code < 0).any():
            lab_names = np.append(lab_names, "unknown")
            lab_code = np.where(lab_code < 0, lab_names.size - 1, lab_code)
    value = (pd.to_numeric(events["value"], errors="coerce").to_numpy(float)[keep] if "value" in events.columns
             else np.zeros(t.size))
    # order: entity, time, then the outcome last among ties (it closes the journey), then label
    fixed = list(labels or ())
    step_names = set(lab_names[np.bincount(lab_code[~is_out], minlength=lab_names.size) > 0].tolist()) \
        if t.size else set()
    names = fixed + sorted(step_names - set(fixed))  # an outcome is not a step
    code_of = {n: i for i, n in enumerate(names)}
    remap = np.array([code_of.get(n, -1) for n in lab_names], np.int64)
    code = remap[lab_code] if lab_code.size else lab_code.astype(np.int64)
    order = _order(ent_codes, t, is_out, code, len(names))
    ent, t, is_out, code, value = ent_codes[order], t[order], is_out[order], code[order], value[order]

    n = t.size
    new_ent = np.ones(n, bool)
    new_ent[1:] = ent[1:] != ent[:-1]
    # drop everything after an entity's first outcome
    outs_before = np.cumsum(is_out) - is_out
    ent_start = np.maximum.accumulate(np.where(new_ent, np.arange(n), 0))
    first_out_seen = outs_before - outs_before[ent_start] if n else outs_before
    alive = first_out_seen == 0
    if not alive.all():
        ent, t, is_out, code, value = ent[alive], t[alive], is_out[alive], code[alive], value[alive]
    n = t.size
    new_ent = np.ones(n, bool)
    new_ent[1:] = ent[1:] != ent[:-1]
    gap_cut = np.zeros(n, bool)
    gap_cut[1:] = (t[1:] - t[:-1]) > gap_ns
    new_j = new_ent | (gap_cut & ~is_out)  # an outcome never starts a journey: it closes one
    jid = np.cumsum(new_j) - 1
    n_j = int(jid[-1]) + 1 if n else 0

    conv = np.zeros(n_j, bool)
    conv_at = np.full(n_j, -1, np.int64)
    val = np.zeros(n_j)
    if is_out.any():
        oj = jid[is_out]
        conv[oj] = True
        conv_at[oj] = t[is_out]
        val[oj] = np.nan_to_num(value[is_out])

    step = ~is_out
    sj, st, sc = jid[step], t[step], code[step]
    if collapse_repeats and sj.size:
        rep = np.zeros(sj.size, bool)
        rep[1:] = (sj[1:] == sj[:-1]) & (sc[1:] == sc[:-1])
        sj, st, sc = sj[~rep], st[~rep], sc[~rep]
    counts = np.bincount(sj, minlength=n_j)
    if max_steps is not None and sj.size:
        first = np.cumsum(counts) - counts
        pos_full = np.arange(sj.size) - first[sj]
        keep_s = pos_full >= (counts[sj] - max_steps)
        sj, st, sc = sj[keep_s], st[keep_s], sc[keep_s]
        counts = np.bincount(sj, minlength=n_j)
    # journeys without a step (only an outcome, or only excluded events) are not journeys
    has = counts > 0
    renum = np.cumsum(has) - 1
    sj = renum[sj]
    counts = counts[has]
    first = np.cumsum(counts) - counts
    pos = np.arange(sj.size) - first[sj]

    j_ent = np.zeros(n_j, np.int64)
    j_ent[jid] = ent
    first_t = t[new_j]
    ends = np.ones(n, bool)
    ends[:-1] = new_j[1:]
    last_t = t[ends]
    conv, conv_at, val, j_ent, last_t, first_t = (a[has] for a in (conv, conv_at, val, j_ent, last_t, first_t))
    status = np.where(conv, "converted", np.where(asof_ns - last_t >= gap_ns, "exited", "ongoing"))
    steps = pd.DataFrame({"journey": sj.astype(np.int64), "pos": pos.astype(np.int32),
                          "code": sc.astype(np.int32), "at": st})
    table = pd.DataFrame({
        "entity_id": ent_names[j_ent] if len(ent_names) else np.array([], object),
        "start": _utc_times(first_t), "end": _utc_times(last_t),
        "n_steps": counts.astype(np.int64), "converted": conv, "value": val,
        "converted_at": conv_at, "status": status,
    })
    return Journeys(level, as_of, gap, tuple(names), steps, table, tuple(sorted(outcome_set)))


__all__ = ["Journeys", "JourneyDataError", "sessionise", "LEVELS", "EVENT_COLUMNS", "START", "CONVERSION", "EXIT",
           "ONGOING", "STATUSES"]
