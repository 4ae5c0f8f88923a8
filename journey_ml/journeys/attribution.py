"""Multi-touch attribution over channels (or touchpoint types), for conversions and value.

Every method works on deduplicated paths (one row per distinct path, with its journeys,
conversions and value), so the cost grows with the number of distinct paths, not journeys:

- heuristics: first touch, last touch, linear, time decay (half-life; needs touch times,
  so it is computed per step, then summed per path) and position based;
- Markov removal effects of order 1 to 3, **exact**: the conversion probability from the
  start is solved from the absorbing chain, ``x = (I - Q)^-1 r`` (the fundamental matrix
  times the one-step conversion probabilities), once as fitted and once per channel with
  the channel's states sent to the null end. Null paths count (they are the chain's
  non-converting ends);
- Shapley values of the coalition game v(S) = conversions (value) of the journeys whose
  channels all lie in S. That game is the sum of one unanimity game per distinct channel
  set (Harsanyi dividend = its conversions), so its Shapley value is exact in closed form
  for any number of channels: each converting journey's credit split equally between its
  distinct channels. `shapley_by_enumeration` computes the same from the coalition
  formula (exact, up to 15 channels) and checks it in the tests.

Each method's credits sum to the total conversions and the total value. Bootstrap
intervals resample journeys (seeded): a multinomial draw over (path, converted) cells,
every method recomputed on each draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from journey_ml.journeys.paths import PathTable, path_table
from journey_ml.journeys.sessions import Journeys

HEURISTICS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
MAX_EXACT_ENUMERATION = 15


@dataclass(frozen=True)
class AttributionResult:
    """``table``: one row per (method, channel): conversions, value, their bootstrap
    interval (``*_low`` / ``*_high``), share of conversions. ``removal_effects``: Markov
    removal effect per (order, channel). ``totals``: conversions and value attributed."""

    table: pd.DataFrame
    removal_effects: pd.DataFrame
    conversions: int
    value: float
    journeys: int
    distinct_paths: int
    bootstrap: int
    confidence: float

    def wide(self, what: str = "conversions") -> pd.DataFrame:
        """channel x method of ``what`` (conversions, value or share)."""
        return self.table.pivot(index="channel", columns="method", values=what)


@dataclass(frozen=True)
class _Paths:
    """Distinct paths as arrays: cells (path, converted) for the bootstrap."""

    pt: PathTable
    k: int  # channels
    conv_credit: dict[str, np.ndarray]  # method -> (paths x k) credit of one converting journey, mean
    value_credit: dict[str, np.ndarray]  # method -> (paths x k) value credit per converting journey, mean


def _heuristic_step_weights(j: Journeys, half_life_days: float, first_w: float, last_w: float
                            ) -> dict[str, np.ndarray]:
    """Weight of every step of every journey (each journey's weights sum to 1), per method."""
    pos = j.steps["pos"].to_numpy(np.int64)
    jn = j.steps["journey"].to_numpy(np.int64)
    n = j.table["n_steps"].to_numpy(np.int64)[jn]
    last = pos == n - 1
    first = pos == 0
    w = {"first_touch": first.astype(float), "last_touch": last.astype(float), "linear": 1.0 / n}
    middle = np.where(n > 2, (1 - first_w - last_w) / np.maximum(n - 2, 1), 0.0)
    two = np.where(first, first_w / (first_w + last_w), last_w / (first_w + last_w)) if first_w + last_w > 0 \
        else np.full(pos.size, 0.5)
    pb = np.where(n == 1, 1.0, np.where(n == 2, two, np.where(first, first_w, np.where(last, last_w, middle))))
    w["position_based"] = pb
    conv_at = j.table["converted_at"].to_numpy(np.int64)[jn]
    ref = np.where(conv_at >= 0, conv_at, j.steps["at"].to_numpy(np.int64))
    age_days = (ref - j.steps["at"].to_numpy(np.int64)) / 8.64e13
    raw = np.exp2(-np.clip(age_days, 0, None) / half_life_days)
    w["time_decay"] = raw / np.bincount(jn, weights=raw, minlength=j.n)[jn]
    return w


def _prepare(j: Journeys, pt: PathTable, half_life_days: float, first_w: float, last_w: float) -> _Paths:
    k = len(j.labels)
    n_p = len(pt.paths)
    conv = j.table["converted"].to_numpy()
    val = j.table["value"].to_numpy(float)
    jn = j.steps["journey"].to_numpy(np.int64)
    code = j.steps["code"].to_numpy(np.int64)
    cj = conv[jn]
    pid = pt.path_of[jn]
    conv_n = pt.paths["conversions"].to_numpy(float)
    conv_v = pt.paths["value"].to_numpy(float)
    cc, vc = {}, {}
    weights = _heuristic_step_weights(j, half_life_days, first_w, last_w)
    flat = pid[cj] * k + code[cj]
    for m, w in weights.items():
        c = np.bincount(flat, weights=w[cj], minlength=n_p * k).reshape(n_p, k)
        v = np.bincount(flat, weights=(w * val[jn])[cj], minlength=n_p * k).reshape(n_p, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            cc[m] = np.nan_to_num(c / conv_n[:, None])
            vc[m] = np.nan_to_num(v / conv_n[:, None])
    # Shapley (closed form): equal split between the distinct channels of the path
    member = np.zeros((n_p, k))
    member[np.repeat(np.arange(n_p), pt.paths["length"].to_numpy(np.int64)), pt.flat] = 1.0
    share = member / np.maximum(member.sum(axis=1, keepdims=True), 1)
    cc["shapley"] = share
    with np.errstate(invalid="ignore", divide="ignore"):
        vc["shapley"] = share * np.nan_to_num(conv_v / conv_n)[:, None]
    return _Paths(pt, k, cc, vc)


# --- Markov -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chain:
    """A path set as an order-k chain: transition incidence per path, state membership."""

    n_states: int  # transient states, 0 = start
    incidence: sp.csr_matrix  # paths x (transient transitions); value = times the path takes it
    t_from: np.ndarray
    t_to: np.ndarray
    last_state: np.ndarray  # per path: the state it ends in
    has_channel: np.ndarray  # states x k bool: the state's memory contains the channel


def _chain(pt: PathTable, k: int, order: int) -> _Chain:
    """States are the last ``order`` channels (shorter at the start of a path)."""
    lengths = pt.paths["length"].to_numpy(np.int64)
    n_p = lengths.size
    flat = pt.flat
    pid = np.repeat(np.arange(n_p), lengths)
    first = np.cumsum(lengths) - lengths
    pos = np.arange(flat.size) - first[pid]
    base = k + 1
    key = np.zeros(flat.size, np.int64)
    for lag in range(order):  # the state remembers code(pos - lag) + 1, 0 before the start
        ok = pos >= lag
        src = np.where(ok, np.arange(flat.size) - lag, 0)
        key += np.where(ok, flat[src] + 1, 0) * base ** lag
    uniq, state = np.unique(key, return_inverse=True)
    state = state.reshape(-1) + 1  # 0 is the start
    n_states = uniq.size + 1
    prev = np.where(pos == 0, 0, np.roll(state, 1))
    t_from, t_to = prev, state
    tkey = t_from * n_states + t_to
    tu, tinv = np.unique(tkey, return_inverse=True)
    incidence = sp.csr_matrix((np.ones(flat.size), (pid, tinv.reshape(-1))), shape=(n_p, tu.size))
    has = np.zeros((n_states, k), bool)
    digits = uniq.copy()
    for _ in range(order):
        d = digits % base
        rows = np.flatnonzero(d > 0)
        has[rows + 1, d[rows] - 1] = True
        digits //= base
    last_state = state[first + lengths - 1]
    return _Chain(n_states, incidence, tu // n_states, tu % n_states, last_state, has)


def _conversion_probability(ch: _Chain, n: np.ndarray, c: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """P(conversion from the start) as fitted, and with each channel removed."""
    w = ch.incidence.T @ n  # journeys taking each transient transition
    s = ch.n_states
    to_conv = np.bincount(ch.last_state, weights=c, minlength=s)
    to_null = np.bincount(ch.last_state, weights=n - c, minlength=s)
    out = np.bincount(ch.t_from, weights=w, minlength=s) + to_conv + to_null
    inv = np.divide(1.0, out, out=np.zeros(s), where=out > 0)
    q = sp.csr_matrix((w * inv[ch.t_from], (ch.t_from, ch.t_to)), shape=(s, s))
    r = to_conv * inv

    def solve(dead: np.ndarray | None) -> float:
        qq, rr = q, r
        if dead is not None:  # a removed channel's states lead straight to the null end
            keep = sp.diags((~dead).astype(float))
            qq, rr = keep @ q, r * ~dead
        a = (sp.identity(s, format="csc") - qq.tocsc())
        return float(splu(a).solve(rr)[0])

    base = solve(None)
    removed = np.array([solve(ch.has_channel[:, i]) if ch.has_channel[:, i].any() else base for i in range(k)])
    return base, removed


def removal_effects(pt: PathTable, k: int, order: int, n: np.ndarray | None = None,
                    c: np.ndarray | None = None, chain: _Chain | None = None) -> tuple[float, np.ndarray]:
    """(P(conversion), removal effect per channel) of the order-``order`` chain of the paths
    (``n`` journeys and ``c`` conversions per path; default the table's)."""
    n = pt.paths["n"].to_numpy(float) if n is None else n
    c = pt.paths["conversions"].to_numpy(float) if c is None else c
    base, removed = _conversion_probability(chain or _chain(pt, k, order), n, c, k)
    eff = np.where(base > 0, 1 - removed / base, 0.0) if base > 0 else np.zeros(k)
    return base, np.clip(eff, 0, None)


def _markov_credit(effects: np.ndarray, total: float) -> np.ndarray:
    s = effects.sum()
    return effects / s * total if s > 0 else np.zeros_like(effects)


# --- Shapley by enumeration (the check) -----------------------------------------------------


def shapley_by_enumeration(pt: PathTable, k: int, weight: str = "conversions") -> np.ndarray:
    """Exact Shapley values of v(S) = ``weight`` of the journeys whose channels all lie in S,
    from the coalition formula over all 2^k coalitions. Raises ValueError above 15 channels
    (use the closed form in `attribute`)."""
    if k > MAX_EXACT_ENUMERATION:
        raise ValueError(f"{k} channels: enumeration is exact up to {MAX_EXACT_ENUMERATION}")
    w = pt.paths[weight].to_numpy(float)
    masks = np.bitwise_or.reduceat(np.left_shift(1, pt.flat), pt.starts) if len(pt.paths) else np.zeros(0, np.int64)
    v = np.zeros(1 << k)
    np.add.at(v, masks, w)
    for b in range(k):  # v(S) = sum over subsets: the zeta transform
        bit = 1 << b
        idx = np.arange(1 << k)
        has = (idx & bit) != 0
        v[idx[has]] += v[idx[has] ^ bit]
    phi = np.zeros(k)
    popcount = np.array([bin(s).count("1") for s in range(1 << k)])
    fact = [math.factorial(i) for i in range(k + 1)]
    coef = np.array([fact[s] * fact[k - s - 1] / fact[k] if s < k else 0.0 for s in range(k + 1)])
    idx = np.arange(1 << k)
    for c in range(k):
        bit = 1 << c
        without = idx[(idx & bit) == 0]
        phi[c] = float(np.sum(coef[popcount[without]] * (v[without | bit] - v[without])))
    return phi


# --- the whole table ----------------------------------------------------------------------------


def _point(pp: _Paths, n: np.ndarray, c: np.ndarray, value_per_conv: np.ndarray, chains: dict[int, _Chain], k: int
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[int, np.ndarray]]:
    conv, val, effects = {}, {}, {}
    for m in (*HEURISTICS, "shapley"):
        conv[m] = c @ pp.conv_credit[m]
        val[m] = c @ pp.value_credit[m]
    total_c, total_v = float(c.sum()), float((c * value_per_conv).sum())
    for o, chain in chains.items():
        _, eff = removal_effects(pp.pt, k, o, n, c, chain)
        effects[o] = eff
        conv[f"markov_{o}"] = _markov_credit(eff, total_c)
        val[f"markov_{o}"] = _markov_credit(eff, total_v)
    return conv, val, effects


def attribute(j: Journeys, *, orders=(1, 2, 3), half_life_days: float = 7.0, position_first: float = 0.4,
              position_last: float = 0.4, bootstrap: int = 100, confidence: float = 0.95, seed: int = 7,
              pt: PathTable | None = None) -> AttributionResult:
    """Attribute every conversion (and its value) of ``j`` (journeys at the channel or
    event-type level) to its touchpoints by every method, with bootstrap intervals.
    Journeys that did not convert (null paths) count in the Markov chains."""
    pt = pt or path_table(j)
    k = len(j.labels)
    pp = _prepare(j, pt, half_life_days, position_first, position_last)
    n = pt.paths["n"].to_numpy(float)
    c = pt.paths["conversions"].to_numpy(float)
    vpc = np.divide(pt.paths["value"].to_numpy(float), c, out=np.zeros_like(c), where=c > 0)
    chains = {o: _chain(pt, k, o) for o in orders}
    conv, val, effects = _point(pp, n, c, vpc, chains, k)
    methods = list(conv)
    lo_c = {m: np.full(k, np.nan) for m in methods}
    hi_c, lo_v, hi_v = ({m: np.full(k, np.nan) for m in methods} for _ in range(3))
    if bootstrap > 0 and j.n > 0:
        rng = np.random.default_rng(seed)
        cells = np.concatenate([c, n - c])  # (path, converted) then (path, not converted)
        probs = cells / cells.sum()
        draws_c = {m: np.empty((bootstrap, k)) for m in methods}
        draws_v = {m: np.empty((bootstrap, k)) for m in methods}
        for b in range(bootstrap):
            x = rng.multinomial(j.n, probs).astype(float)
            cb, nb = x[:c.size], x[:c.size] + x[c.size:]
            bc, bv, _ = _point(pp, nb, cb, vpc, chains, k)
            for m in methods:
                draws_c[m][b], draws_v[m][b] = bc[m], bv[m]
        a = (1 - confidence) / 2
        for m in methods:
            lo_c[m], hi_c[m] = np.quantile(draws_c[m], [a, 1 - a], axis=0)
            lo_v[m], hi_v[m] = np.quantile(draws_v[m], [a, 1 - a], axis=0)
    total = float(c.sum())
    rows = []
    for m in methods:
        for i, ch in enumerate(j.labels):
            rows.append({"method": m, "channel": ch, "conversions": conv[m][i], "conversions_low": lo_c[m][i],
                         "conversions_high": hi_c[m][i], "share": conv[m][i] / total if total else 0.0,
                         "value": val[m][i], "value_low": lo_v[m][i], "value_high": hi_v[m][i]})
    re = pd.DataFrame([{"order": o, "channel": ch, "removal_effect": effects[o][i]}
                       for o in orders for i, ch in enumerate(j.labels)])
    return AttributionResult(pd.DataFrame(rows), re, int(total), float(pt.paths["value"].sum()), j.n,
                             len(pt.paths), bootstrap, confidence)


__all__ = ["AttributionResult", "attribute", "removal_effects", "shapley_by_enumeration", "HEURISTICS",
           "MAX_EXACT_ENUMERATION"]
