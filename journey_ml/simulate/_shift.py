"""A change in what converts (``SimulationParams.conversion_shift_from``; off by default).

From the shift on, the company's go-to-market changes under the models' feet:

* sales-led deals that would have closed stall: ``STALL_SHARE`` of them end as closed_lost
  at the date they would have been won (their whole evaluation still happens, so they look
  as hot as ever);
* a free workspace opens: ``FREE_SHARE`` of the prospects that were not going to buy start
  using the product (logins, feature use) at a time after the shift, and ``FREE_BUY`` of them
  buy on their own (closed_won, then a normal subscription) ``FREE_DAYS`` later, without a
  sales process.

A model trained before the shift ranks the self-serve buyers as the cold leads they were and
the stalled deals as near-certain wins: its accuracy on matured labels collapses. Product
usage by prospects is new, so a model retrained on post-shift outcomes can learn it.

Everything here draws from its own generator (seeded per block), and nothing runs when the
option is off, so the worlds of every other parameter set stay byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journey_ml.simulate import _vocab as v
from journey_ml.simulate._events import Columns, _uniform
from journey_ml.simulate._population import Population, retime

STALL_SHARE = 0.6  # of the sales-led wins due after the shift
FREE_SHARE = 0.35  # of the prospects that were not going to buy
FREE_BUY = 0.7  # of the free-workspace users
FREE_DAYS = (30.0, 100.0)  # from the first login to the purchase
FREE_TRIAL_DAYS = (20.0, 60.0)  # usage of the free users who never buy
_LOGIN_RATE = 0.15  # per day, the workspace owner
_FEATURE_RATE = 0.1


@dataclass(frozen=True)
class Shift:
    """Per account of the block: when its free workspace started and when it bought (NaN: never)."""

    free_t: np.ndarray
    buy_t: np.ndarray
    stalled: np.ndarray


def shift_conversion(rng: np.random.Generator, pop: Population, shift_t: float) -> Shift:
    """Apply the change to ``pop`` in place (before any event is drawn); returns who changed."""
    d = float(pop.days)
    n = pop.n
    u_stall, u_free, u_buy = rng.random(n), rng.random(n), rng.random(n)
    at, days = rng.random(n), rng.uniform(*FREE_DAYS, n)
    delay = rng.uniform(0.01, 0.9, n)

    stalled = pop.converts & (pop.t_c >= shift_t) & (u_stall < STALL_SHARE)
    pop.t_l[stalled] = pop.t_c[stalled]
    pop.converts[stalled] = False
    pop.conv_in[stalled] = False
    pop.t_c[stalled] = np.nan
    pop.cf[stalled] = np.nan
    pop.t_ch[stalled] = np.nan

    cold = ~pop.cust0 & ~pop.converts & ~stalled & ~np.isfinite(pop.t_l)
    lo = np.maximum(np.maximum(pop.first_touch, 0.0), shift_t)
    free = cold & (lo < d - 1) & (u_free < FREE_SHARE)
    free_t = np.where(free, lo + at * (d - lo), np.nan)
    buy_t = np.where(free & (u_buy < FREE_BUY), free_t + days, np.nan)
    buy_t[buy_t >= d] = np.nan  # after the period: not seen
    bought = np.isfinite(buy_t)
    pop.cf[bought] = buy_t[bought] + delay[bought]
    pop.t_ch[bought] = np.nan
    return Shift(free_t=free_t, buy_t=buy_t, stalled=stalled)


def free_usage(rng: np.random.Generator, pop: Population, shift: Shift) -> Columns:
    """Logins and feature use of the free workspaces, until the purchase (then the account's
    normal customer usage takes over) or the end of the trial; product columns."""
    d = float(pop.days)
    acc = np.flatnonzero(np.isfinite(shift.free_t))
    lo = shift.free_t[acc]
    trial = lo + rng.uniform(*FREE_TRIAL_DAYS, acc.size)
    hi = np.minimum(np.where(np.isfinite(shift.buy_t[acc]), shift.buy_t[acc], trial), d)
    parts = []
    for code, rate in ((0, _LOGIN_RATE), (1, _FEATURE_RATE)):
        o, t = _uniform(rng, lo, hi, np.full(acc.size, rate))
        parts.append((acc[o], t, code))
    a = np.concatenate([p[0] for p in parts])
    t = retime(rng, np.concatenate([p[1] for p in parts]), 0.18)
    ev = np.concatenate([np.full(p[0].size, p[2]) for p in parts])
    keep = (t >= 0) & (t < d)
    a, t, ev = a[keep], t[keep], ev[keep]
    feature = np.where(ev == 1, rng.choice(len(v.FEATURES), size=a.size, p=v.FEATURE_SHARE), -1)
    return {"acc": a, "con": pop.committee[a, 0], "t": t, "ev": ev, "feature": feature}


def self_serve_wins(pop: Population, shift: Shift) -> Columns:
    """The self-serve purchases as closed_won rows of the sales export (sales columns)."""
    acc = np.flatnonzero(np.isfinite(shift.buy_t))
    return {"acc": acc, "con": pop.committee[acc, 0], "t": shift.buy_t[acc], "ev": np.full(acc.size, v.WON),
            "amount": pop.acv[acc], "note": np.zeros(acc.size, dtype=np.int64)}


def append(cols: Columns, extra: Columns) -> Columns:
    """``cols`` with ``extra``'s rows after them (same columns, cast to ``cols``' dtypes)."""
    return {k: np.concatenate([a, extra[k].astype(a.dtype)]) for k, a in cols.items()}
