"""Paths, transitions, the step matrix and friction, computed over a `Journeys` table.

Identical paths are deduplicated (with their counts) before any per-path work: a million
journeys usually hold a few tens of thousands of distinct paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from journey_ml.journeys.sessions import CONVERSION, EXIT, ONGOING, START, Journeys

_END_OF = {"converted": CONVERSION, "exited": EXIT, "ongoing": ONGOING}


@dataclass(frozen=True)
class PathTable:
    """Distinct paths: ``path_of`` (one path id per journey); ``paths``: one row per path
    (``n`` journeys, ``conversions``, ``value``, ``exited``, ``ongoing``, ``length``);
    ``flat``: the distinct paths' step codes end to end, path ``i`` at
    ``flat[starts[i]:starts[i] + length[i]]``."""

    path_of: np.ndarray
    paths: pd.DataFrame
    flat: np.ndarray
    starts: np.ndarray

    def codes(self, i: int) -> tuple[int, ...]:
        s = int(self.starts[i])
        return tuple(int(c) for c in self.flat[s:s + int(self.paths["length"].iat[i])])


def path_table(j: Journeys) -> PathTable:
    """Deduplicate the journeys' paths (a polynomial hash of the codes and the length,
    64 bits: for a million distinct paths a collision has odds of about 1 in 30 million)."""
    codes = j.steps["code"].to_numpy(np.uint64) + np.uint64(1)
    pos = j.steps["pos"].to_numpy(np.int64)
    length = j.table["n_steps"].to_numpy(np.int64)
    first_row, _ = j.bounds()
    key = np.zeros(j.n, np.uint64)
    if j.n:
        with np.errstate(over="ignore"):  # the hash wraps modulo 2**64 on purpose
            base = np.uint64(0x9E3779B97F4A7C15)
            powers = np.ones(int(pos.max()) + 1, np.uint64)
            for i in range(1, powers.size):
                powers[i] = powers[i - 1] * base
            key = np.add.reduceat(codes * powers[pos], first_row) ^ (length.astype(np.uint64) * np.uint64(
                0xC2B2AE3D27D4EB4F))
    path_of, uniq = pd.factorize(key)
    n_p = len(uniq)
    # factorize numbers paths in order of first appearance: a path starts where the id is new
    seen = np.r_[-1, np.maximum.accumulate(path_of)[:-1]] if j.n else np.array([], np.int64)
    first = np.flatnonzero(path_of > seen)
    t = j.table
    conv = t["converted"].to_numpy()
    st = t["status"].to_numpy()
    paths = pd.DataFrame({
        "n": np.bincount(path_of, minlength=n_p),
        "conversions": np.bincount(path_of, weights=conv, minlength=n_p).astype(np.int64),
        "value": np.bincount(path_of, weights=t["value"].to_numpy(float), minlength=n_p),
        "exited": np.bincount(path_of, weights=st == "exited", minlength=n_p).astype(np.int64),
        "ongoing": np.bincount(path_of, weights=st == "ongoing", minlength=n_p).astype(np.int64),
        "length": length[first],
    })
    plen = length[first]
    starts = np.cumsum(plen) - plen
    src = np.repeat(first_row[first], plen) + (np.arange(int(plen.sum())) - np.repeat(starts, plen))
    flat = j.steps["code"].to_numpy(np.int64)[src]
    return PathTable(path_of.astype(np.int64), paths, flat, starts)


def _names(j: Journeys, codes) -> str:
    return " > ".join(j.labels[c] for c in codes)


def top_paths(j: Journeys, pt: PathTable | None = None, n: int = 10) -> dict[str, pd.DataFrame]:
    """The most common paths to conversion and to drop-off (exit): path, journeys, share of
    that outcome, conversions / journeys on the path overall."""
    pt = pt or path_table(j)
    p = pt.paths
    out = {}
    for kind, col in (("conversion", "conversions"), ("drop_off", "exited")):
        total = int(p[col].sum())
        top = p[p[col] > 0].sort_values([col, "n"], ascending=False, kind="stable").head(n)
        out[kind] = pd.DataFrame({
            "path": [_names(j, pt.codes(i)) for i in top.index],
            "journeys": top[col].to_numpy(np.int64),
            "share": top[col].to_numpy() / total if total else np.zeros(len(top)),
            "all_journeys_on_path": top["n"].to_numpy(np.int64),
            "conversion_rate": top["conversions"].to_numpy() / top["n"].to_numpy(),
        })
    return out


def _edges(j: Journeys) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Every transition (from, to, seconds) including (start) -> first and last -> end."""
    k = len(j.labels)
    states = [*j.labels, START, CONVERSION, EXIT, ONGOING]
    s_start, s_end = k, {"converted": k + 1, "exited": k + 2, "ongoing": k + 3}
    code = j.steps["code"].to_numpy(np.int64)
    at = j.steps["at"].to_numpy(np.int64)
    first, stop = j.bounds()
    inner = np.ones(code.size, bool)
    inner[first] = False  # a journey's first step has no predecessor
    frm = np.concatenate([np.full(j.n, s_start), code[np.flatnonzero(inner) - 1], code[stop - 1]])
    end_state = pd.Series(j.table["status"].to_numpy()).map(s_end).to_numpy(np.int64)
    to = np.concatenate([code[first], code[inner], end_state])
    conv_at = j.table["converted_at"].to_numpy(np.int64)
    dt_end = np.where(conv_at >= 0, conv_at - at[stop - 1], -1)
    dt = np.concatenate([np.full(j.n, -1), at[inner] - at[np.flatnonzero(inner) - 1], dt_end])
    return frm, to, dt, states


def transitions(j: Journeys) -> pd.DataFrame:
    """The transition matrix as a long table: from, to, count, probability (of ``to``
    given ``from``), median hours between the two steps (empty for (start) and for the
    exit / ongoing ends, which have no second time)."""
    frm, to, dt, states = _edges(j)
    s = len(states)
    key = frm * s + to
    counts = np.bincount(key, minlength=s * s)
    nz = np.flatnonzero(counts)
    out_of = np.bincount(frm, minlength=s)
    timed = dt >= 0
    med = pd.Series(dt[timed] / 3.6e12).groupby(key[timed]).median()
    names = np.asarray(states, dtype=object)
    return pd.DataFrame({
        "from": names[nz // s], "to": names[nz % s], "count": counts[nz],
        "probability": counts[nz] / out_of[nz // s],
        "median_hours": med.reindex(nz).to_numpy(),
    }).sort_values(["from", "count"], ascending=[True, False], kind="stable").reset_index(drop=True)


def transition_matrix(trans: pd.DataFrame, value: str = "probability") -> pd.DataFrame:
    """The long transition table pivoted to a from x to matrix of ``value`` (0 where none)."""
    return trans.pivot_table(index="from", columns="to", values=value, aggfunc="sum", fill_value=0)


def flows(j: Journeys, steps: int = 5) -> pd.DataFrame:
    """Links of a Sankey: (``step``, ``source``) -> (``step + 1``, ``target``) with the
    number of journeys, for the first ``steps`` steps; a journey's last step links to its
    end, (conversion) / (exit) / (ongoing). Journeys longer than ``steps`` flow on to
    ``(more steps)``."""
    code = j.steps["code"].to_numpy(np.int64)
    pos = j.steps["pos"].to_numpy(np.int64)
    jn = j.steps["journey"].to_numpy(np.int64)
    n = j.table["n_steps"].to_numpy(np.int64)[jn]
    status = j.table["status"].to_numpy()[jn]
    names = np.asarray(j.labels, dtype=object)
    sel = pos < steps
    last = sel & (pos == n - 1)
    cont = sel & (pos < n - 1) & (pos < steps - 1)
    more = sel & (pos == steps - 1) & (pos < n - 1)
    idx = np.flatnonzero(cont)
    parts = [
        pd.DataFrame({"step": pos[idx] + 1, "source": names[code[idx]], "target": names[code[idx + 1]]}),
        pd.DataFrame({"step": pos[last] + 1, "source": names[code[last]],
                      "target": pd.Series(status[last]).map(_END_OF).to_numpy()}),
        pd.DataFrame({"step": pos[more] + 1, "source": names[code[more]], "target": "(more steps)"}),
    ]
    links = pd.concat(parts, ignore_index=True)
    return (links.groupby(["step", "source", "target"], sort=True).size().rename("journeys").reset_index())


def step_matrix(j: Journeys, steps: int = 10) -> pd.DataFrame:
    """Share of all journeys at each step position (columns 1..steps): rows are the labels,
    then (conversion) / (exit) / (ongoing) for journeys that ended before that position.
    Every column sums to 1."""
    k = len(j.labels)
    rows = [*j.labels, CONVERSION, EXIT, ONGOING]
    m = np.zeros((k + 3, steps))
    if j.n == 0:
        return pd.DataFrame(m, index=rows, columns=range(1, steps + 1))
    pos = j.steps["pos"].to_numpy()
    code = j.steps["code"].to_numpy()
    sel = pos < steps
    np.add.at(m, (code[sel], pos[sel]), 1)
    n_steps = j.table["n_steps"].to_numpy()
    end_row = pd.Series(j.table["status"].to_numpy()).map({"converted": k, "exited": k + 1, "ongoing": k + 2})
    end_row = end_row.to_numpy(np.int64)
    for col in range(steps):
        ended = n_steps <= col
        m[:, col] += np.bincount(end_row[ended], minlength=k + 3)
    return pd.DataFrame(m / j.n, index=rows, columns=range(1, steps + 1))


def friction(j: Journeys) -> pd.DataFrame:
    """Per step: journeys that reach it, exits there (journeys silent since that step),
    exit rate, conversion rate of journeys through it vs not through it, median time stuck
    (hours to the next step), lost conversions (exits x the conversion rate of the journeys
    that reached it and went on), ranked by lost conversions, each with a sentence."""
    k = len(j.labels)
    jn = j.steps["journey"].to_numpy(np.int64)
    code = j.steps["code"].to_numpy(np.int64)
    at = j.steps["at"].to_numpy(np.int64)
    conv = j.table["converted"].to_numpy()
    status = j.table["status"].to_numpy()
    first, stop = j.bounds()
    reach, conv_reach = _reach(jn, code, first, conv, k)
    last_code = code[stop - 1]
    exited = status == "exited"
    exits = np.bincount(last_code[exited], minlength=k)
    nxt = np.ones(code.size, bool)
    nxt[stop - 1] = False
    idx = np.flatnonzero(nxt)
    stuck = pd.Series((at[idx + 1] - at[idx]) / 3.6e12).groupby(code[idx]).median().reindex(range(k)).to_numpy()
    total, total_conv = j.n, int(conv.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        exit_rate = exits / reach
        conv_through = conv_reach / reach
        conv_not = (total_conv - conv_reach) / (total - reach)
        went_on = reach - exits
        lost = np.where(went_on > 0, exits * conv_reach / went_on, 0.0)
    f = pd.DataFrame({
        "step": list(j.labels), "journeys": reach, "exits": exits, "exit_rate": exit_rate,
        "conversion_through": conv_through, "conversion_not_through": conv_not,
        "median_hours_stuck": stuck, "lost_conversions": lost,
    })
    f = f[f["journeys"] > 0].sort_values(["lost_conversions", "exits"], ascending=False, kind="stable")
    f["rank"] = np.arange(1, len(f) + 1)
    f["sentence"] = [_sentence(r) for r in f.itertuples()]
    return f.reset_index(drop=True)


def _reach(jn: np.ndarray, code: np.ndarray, first: np.ndarray, conv: np.ndarray, k: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per label: journeys whose path contains it, and how many of those converted."""
    if k == 0 or code.size == 0:
        return np.zeros(k, np.int64), np.zeros(k)
    if k <= 63:  # one bit per label per journey: no sort of millions of pairs
        mask = np.bitwise_or.reduceat(np.left_shift(np.uint64(1), code.astype(np.uint64)), first)
        bits = np.array([(mask >> np.uint64(b)) & np.uint64(1) for b in range(k)], dtype=bool)
        return bits.sum(axis=1), (bits & conv[None, :]).sum(axis=1).astype(float)
    pair = np.unique(jn * k + code)
    pj, pc = pair // k, pair % k
    return np.bincount(pc, minlength=k), np.bincount(pc, weights=conv[pj], minlength=k)


def _sentence(r) -> str:
    s = (f"{r.exit_rate:.0%} of journeys that reach {r.step} end there "
         f"({r.exits:,} of {r.journeys:,})")
    if r.lost_conversions > 0:
        lost = f"{r.lost_conversions:.1f}" if r.lost_conversions < 10 else f"{r.lost_conversions:,.0f}"
        s += f"; about {lost} conversions lost"
    return s


# --- comparisons ---------------------------------------------------------------------------


def two_proportion_test(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float]:
    """Pooled two-proportion z test: (z, two-sided p). (nan, nan) when either n is 0 or the
    pooled rate is 0 or 1 (no variance to test against)."""
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return math.nan, math.nan
    z = (x1 / n1 - x2 / n2) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def compare(a: Journeys, b: Journeys, names: tuple[str, str] = ("a", "b"), alpha: float = 0.05) -> pd.DataFrame:
    """Two journey sets side by side: the conversion rate, then each step's exit rate, with
    the difference (a - b), a two-proportion z test and whether it is significant at ``alpha``.
    Labels are matched by name, so the two sets may code them differently."""
    na, nb = names
    rows = [{"metric": "conversion_rate", "step": "", f"{na}_n": a.n, f"{na}_rate": a.conversions / a.n if a.n else
             math.nan, f"{nb}_n": b.n, f"{nb}_rate": b.conversions / b.n if b.n else math.nan,
             "_x": (a.conversions, a.n, b.conversions, b.n)}]
    fa, fb = friction(a).set_index("step"), friction(b).set_index("step")
    for step in sorted(set(fa.index) | set(fb.index)):
        xa, ra = (int(fa.at[step, "exits"]), int(fa.at[step, "journeys"])) if step in fa.index else (0, 0)
        xb, rb = (int(fb.at[step, "exits"]), int(fb.at[step, "journeys"])) if step in fb.index else (0, 0)
        rows.append({"metric": "exit_rate", "step": step, f"{na}_n": ra, f"{na}_rate": xa / ra if ra else math.nan,
                     f"{nb}_n": rb, f"{nb}_rate": xb / rb if rb else math.nan, "_x": (xa, ra, xb, rb)})
    out = []
    for r in rows:
        z, p = two_proportion_test(*r.pop("_x"))
        out.append({**r, "difference": r[f"{na}_rate"] - r[f"{nb}_rate"], "z": z, "p_value": p,
                    "significant": bool(p < alpha) if not math.isnan(p) else False})
    return pd.DataFrame(out)


def compare_segments(j: Journeys, alpha: float = 0.05) -> dict[str, pd.DataFrame]:
    """Each segment (``table.segment``) against all other journeys (see `compare`)."""
    if "segment" not in j.table.columns:
        raise ValueError("these journeys carry no segment: attach one with Journeys.with_segments")
    seg = j.table["segment"].to_numpy()
    return {s: compare(j.subset(seg == s), j.subset(seg != s), (s, "rest"), alpha)
            for s in sorted(set(seg.tolist()))}


def compare_periods(j: Journeys, split_at, alpha: float = 0.05) -> pd.DataFrame:
    """Journeys that started before ``split_at`` against those that started at or after it."""
    start = j.table["start"]
    after = (start >= pd.Timestamp(split_at)).to_numpy()
    return compare(j.subset(~after), j.subset(after), ("before", "after"), alpha)


__all__ = ["PathTable", "path_table", "flows", "top_paths", "transitions", "transition_matrix", "step_matrix", "friction",
           "compare", "compare_segments", "compare_periods", "two_proportion_test"]
