"""Event generation per source, vectorised over a block of accounts.

Each generator returns plain numpy columns (``acc`` account index in the block, ``con``
contact index or -1, ``t`` simulation time in days, ``ev`` event code, plus
source-specific fields). Point processes are sampled exactly: counts are Poisson with the
integrated rate, times come from the inverse CDF of the rate's shape (uniform, rising
exponential ramp, fading exponential), or from thinning where the rate is piecewise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journey_ml.simulate import _vocab as v
from journey_ml.simulate._population import Population, choose_rows, retime, sigmoid

Columns = dict[str, np.ndarray]

_WEB_ARCHETYPE = np.array([1.6, 0.6, 1.1])
_WEB_RAMP = np.array([1.4, 0.6, 1.1])
_WEB_SEGMENT = np.array([0.8, 1.0, 1.5])
_WEBINAR_ARCHETYPE = np.array([1.3, -0.5, 0.2])
_SALES_SEGMENT = np.array([0.7, 1.0, 1.6])
_NEGOTIATION = np.array([0.3, 0.7, 0.9])
_SUPPORT_SEGMENT = np.array([0.7, 1.0, 1.8])
_CATEGORY_SHARE = np.array(
    [[0.25, 0.25, 0.1, 0.15, 0.1, 0.05, 0.1], [0.3, 0.1, 0.2, 0.1, 0.05, 0.2, 0.05]]
)
_USAGE_SEGMENT = np.array([0.9, 1.0, 1.1])
_LOGIN_RATE = 0.06  # per active user per day
_FEATURE_RATE = 0.075
_DRIFT_LOGIN = 0.5  # logins fall to half after the drift (e.g. longer SSO sessions)
_DRIFT_PRICING = 0.35  # share of drifted accounts' web events turned into pricing views
_DRIFT_OPEN = 0.3  # email opens fall to 30% (privacy changes in mail clients)
_MONTH = 365.25 / 12


@dataclass(frozen=True)
class Schedule:
    """Company-wide calendar shared by all blocks: email campaigns and webinars."""

    campaign_t: np.ndarray
    campaign_kind: np.ndarray
    campaign_share: np.ndarray
    campaign_name: tuple[str, ...]
    webinar_t: np.ndarray
    webinar_name: tuple[str, ...]


def _length(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(hi - lo, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


def _uniform(
    rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Homogeneous Poisson process on [lo, hi) per owner: (owner, time)."""
    length = _length(lo, hi)
    own = np.repeat(np.arange(lo.size), rng.poisson(rate * length))
    return own, np.nan_to_num(lo)[own] + rng.random(own.size) * length[own]


def _ramp(
    rng: np.random.Generator, lo: np.ndarray, end: np.ndarray, tau: np.ndarray, total: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rate proportional to exp((t - end) / tau) on [lo, end]; ``total`` events on (-inf, end]."""
    mass = -np.expm1(-_length(lo, end) / tau)
    own = np.repeat(np.arange(lo.size), rng.poisson(total * mass))
    u = rng.random(own.size) * mass[own]
    return own, end[own] + tau[own] * np.log1p(-u)


def _fade(
    rng: np.random.Generator, start: np.ndarray, hi: np.ndarray, tau: np.ndarray, total: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rate proportional to exp(-(t - start) / tau) on [start, hi); ``total`` on [start, inf)."""
    mass = -np.expm1(-_length(start, hi) / tau)
    own = np.repeat(np.arange(start.size), rng.poisson(total * mass))
    u = rng.random(own.size) * mass[own]
    return own, start[own] - tau[own] * np.log1p(-u)


def _spread(
    rng: np.random.Generator, owners: np.ndarray, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``counts`` events per owner, uniform on [lo, hi): (owner, time)."""
    k = np.repeat(np.arange(owners.size), counts)
    return owners[k], lo[k] + rng.random(k.size) * (hi[k] - lo[k])


def _ranges(first: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All integers k with first <= k < stop, per owner: (owner, k)."""
    counts = np.maximum(stop - first, 0)
    own = np.repeat(np.arange(first.size), counts)
    return own, first[own] + np.arange(own.size) - np.repeat(np.cumsum(counts) - counts, counts)


def _take(cols: Columns, keep: np.ndarray) -> Columns:
    return {k: a[keep] for k, a in cols.items()}


def _concat(parts: list[Columns]) -> Columns:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def web(rng: np.random.Generator, pop: Population) -> Columns:
    """Website events of prospects (intent-driven) and customers (mostly docs)."""
    d = float(pop.days)
    pros = np.flatnonzero(~pop.cust0)
    arch, seg = pop.arch[pros], pop.seg[pros]
    conv = pop.converts[pros]
    scale = _WEB_ARCHETYPE[arch] * _WEB_SEGMENT[seg]
    lo = np.maximum(pop.entry[pros], 0.0)
    hi = np.where(conv, np.minimum(pop.t_c[pros], d), d)
    rate = 0.06 * scale * np.exp(0.25 * pop.intent[pros]) * np.where(conv, 1.0, 0.35)
    o1, t1 = _uniform(rng, lo, hi, rate)
    # long-dormant leads: a trickle of visits before the evaluation starts
    o0, t0 = _uniform(
        rng, np.maximum(pop.first_touch[pros], 0.0), np.minimum(pop.entry[pros], d), 0.02 * scale
    )

    # deal phase: activity ramps up towards the decision, won or lost
    di = pros[np.isfinite(pop.t_c[pros]) | np.isfinite(pop.t_l[pros])]
    decision = np.fmin(pop.t_c[di], pop.t_l[di])
    total = (
        22
        * _WEB_RAMP[pop.arch[di]]
        * _WEB_SEGMENT[pop.seg[di]]
        * np.exp(0.2 * pop.intent[di])
        * pop.energy[di]
    )
    total *= np.where(pop.converts[di], 1.0, 0.6)
    o2, t2 = _ramp(rng, np.maximum(pop.entry[di], 0.0), decision, pop.tau_ramp[di], total)

    ni = pros[~conv]
    total = (
        10 * _WEB_ARCHETYPE[pop.arch[ni]] * _WEB_SEGMENT[pop.seg[ni]] * np.exp(0.4 * pop.intent[ni])
    )
    o3, t3 = _fade(rng, pop.entry[ni], np.full(ni.size, d), pop.tau_decay[ni], total)

    # fast-track buyers ask for a demo early on
    fi = pros[pop.arch[pros] == v.FAST]
    asks = rng.random(fi.size) < np.where(pop.converts[fi], 0.8, 0.35)
    t4 = pop.entry[fi] + rng.exponential(5.0, fi.size)
    fi, t4 = fi[asks], t4[asks]

    cu = np.flatnonzero(np.isfinite(pop.cf))
    o5, t5 = _uniform(
        rng, np.maximum(pop.cf[cu], 0.0), pop.stop[cu], 0.04 * _WEB_SEGMENT[pop.seg[cu]]
    )

    acc = np.concatenate([pros[o0], pros[o1], di[o2], ni[o3], fi, cu[o5]])
    t = np.concatenate([t0, t1, t2, t3, t4, t5])
    forced = np.concatenate(
        [
            np.full(o0.size + o1.size + o2.size + o3.size, -1),
            np.full(fi.size, v.DEMO_REQUEST),
            np.full(o5.size, -1),
        ]
    )
    keep = (
        (t >= 0) & (t < d) & ~(pop.converts[acc] & (t >= pop.t_c[acc]) & ~pop.is_customer(acc, t))
    )
    acc, t, forced = acc[keep], retime(rng, t[keep], 0.2), forced[keep]

    h = pop.heat(acc, t)
    cust = pop.is_customer(acc, t)
    mix = np.where(
        cust[:, None],
        v.WEB_CUSTOMER[None, :],
        v.WEB_BASE[pop.arch[acc]] + h[:, None] * v.WEB_BOOST[pop.arch[acc]],
    )
    ev = np.where(forced >= 0, forced, choose_rows(rng, mix))
    redesign = pop.drift_on(acc, t) & (rng.random(acc.size) < _DRIFT_PRICING)
    ev = np.where(redesign, v.PRICING, ev)

    con = pop.pick_contacts(
        rng, acc, t, v.WEB_ROLE_BASE[None, :] + h[:, None] * v.WEB_ROLE_LATE[None, :]
    )
    dur = np.clip(
        np.round(v.WEB_MEDIAN_SECONDS[ev] * np.exp(rng.normal(0, 0.8, acc.size))), 1, 3_600
    )
    n_urls = np.array([len(u) for u in v.WEB_URLS])
    url = np.minimum((rng.random(acc.size) * n_urls[ev]).astype(np.int64), n_urls[ev] - 1)
    octet = rng.integers(1, 255, acc.size)
    local = rng.random(acc.size) < 0.10
    return {
        "acc": acc,
        "con": con,
        "t": t,
        "ev": ev,
        "dur": dur,
        "url": url,
        "octet": octet,
        "local": local,
    }


def email(rng: np.random.Generator, pop: Population, sched: Schedule) -> Columns:
    """Campaign sends to committee members on the matching list, with opens, clicks and
    unsubscribes that track engagement."""
    d = float(pop.days)
    ct, kind = sched.campaign_t, sched.campaign_kind
    ca = pop.c_acc
    joined = pop.c_join[:, None] <= ct[None, :]
    alive = ~(pop.t_ch[ca][:, None] <= ct[None, :])
    cust = pop.cf[ca][:, None] <= ct[None, :]
    everyone = (kind == 0) | (kind == 3)
    audience = everyone[None, :] | np.where(kind[None, :] == 1, ~cust, cust & (kind[None, :] == 2))
    send = joined & alive & audience & ~pop.c_opted[:, None]
    send &= rng.random(send.shape) < sched.campaign_share[None, :]
    ci, ki = np.nonzero(send)
    acc = ca[ci]
    ts = ct[ki] + rng.uniform(0.0, 0.08, ci.size)
    h, z = pop.heat(acc, ts), pop.engagement(acc, ts)

    unsub = rng.random(ci.size) < 0.002 + 0.006 * (z < -1)
    stop = np.full(pop.nc, np.iinfo(np.int64).max)
    hit = np.flatnonzero(unsub)
    first_contacts, first_at = np.unique(ci[hit], return_index=True)
    stop[first_contacts] = ki[hit[first_at]]
    keep = (ki <= stop[ci]) & (ts < d)
    ci, ki, acc, ts, h, z = ci[keep], ki[keep], acc[keep], ts[keep], h[keep], z[keep]
    unsub = ki == stop[ci]

    p_open = sigmoid(-1.2 + 0.35 * z + 2.2 * h) * np.where(pop.drift_on(acc, ts), _DRIFT_OPEN, 1.0)
    opened = rng.random(ci.size) < p_open
    t_open = ts + rng.exponential(0.5, ci.size)
    clicked = opened & (rng.random(ci.size) < sigmoid(-2.0 + 0.4 * z + 2.5 * h))
    t_click = t_open + rng.exponential(0.01, ci.size)
    t_unsub = np.where(opened, t_open, ts) + rng.exponential(0.05, ci.size)

    parts = []
    for code, mask, t in (
        (0, np.ones(ci.size, bool), ts),
        (1, opened, t_open),
        (2, clicked, t_click),
        (3, unsub, t_unsub),
    ):
        m = mask & (t < d)
        parts.append(
            {
                "acc": acc[m],
                "con": ci[m],
                "t": t[m],
                "ev": np.full(m.sum(), code),
                "campaign": ki[m],
            }
        )
    return _concat(parts)


def webinars(rng: np.random.Generator, pop: Population, sched: Schedule) -> Columns:
    """Registrations (days before) and attendance (at the start) of company webinars."""
    d = float(pop.days)
    tw = sched.webinar_t
    nc, nw = pop.nc, tw.size
    ca = pop.c_acc
    acc = np.repeat(ca, nw)
    t_at = np.tile(tw, nc)
    h = pop.heat(acc, t_at).reshape(nc, nw)
    cust = pop.is_customer(acc, t_at).reshape(nc, nw)
    arch_eff = _WEBINAR_ARCHETYPE[pop.arch[ca]][:, None]
    p_reg = np.where(
        cust,
        sigmoid(-4.5 + 0.3 * pop.health[ca])[:, None],
        sigmoid(-4.2 + arch_eff + 2.5 * h + 0.3 * pop.intent[ca][:, None]),
    )
    eligible = (pop.c_join[:, None] <= tw[None, :] - 1) & ~(pop.t_ch[ca][:, None] <= tw[None, :])
    reg = eligible & (rng.random((nc, nw)) < p_reg)
    ci, wi = np.nonzero(reg)
    t_reg = np.maximum(tw[wi] - rng.uniform(1, 14, ci.size), pop.c_join[ci] + 0.01)
    t_reg = retime(rng, t_reg, 0.2)
    attend = rng.random(ci.size) < 0.35 + 0.4 * h[ci, wi]
    t_att = tw[wi] + rng.uniform(0, 0.01, ci.size)
    parts = []
    for code, mask, t in ((0, np.ones(ci.size, bool), t_reg), (1, attend, t_att)):
        m = mask & (t >= 0) & (t < d)
        parts.append(
            {
                "acc": ca[ci[m]],
                "con": ci[m],
                "t": t[m],
                "ev": np.full(m.sum(), code),
                "webinar": wi[m],
            }
        )
    return _concat(parts)


def sales(rng: np.random.Generator, pop: Population) -> Columns:
    """Deal activities: converters move from calls to demo, proposal, negotiation and
    closed_won; some other prospects get as far as closed_lost; customers get account
    management meetings."""
    d = float(pop.days)
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []

    def add(
        owners: np.ndarray, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray, code: int
    ) -> None:
        a, t = _spread(rng, owners, counts, lo, hi)
        parts.append((a, t, code))

    ci = np.flatnonzero(pop.converts)
    tc, span, sm = pop.t_c[ci], 0.6 * pop.cycle[ci], _SALES_SEGMENT[pop.seg[ci]]
    m = ci.size
    sm = sm * pop.energy[ci]
    add(ci, 1 + rng.poisson(1.2 * sm), tc - span, tc - 0.1 * span, v.CALL)
    add(ci, rng.poisson(1.0 * sm), tc - 0.8 * span, tc, v.MEETING)
    add(ci, 1 + (rng.random(m) < 0.4), tc - 0.7 * span, tc - 0.2 * span, v.DEMO_HELD)
    add(ci, np.ones(m, np.int64), tc - 0.25 * span - 3, tc - 2, v.PROPOSAL)
    neg = (rng.random(m) < _NEGOTIATION[pop.seg[ci]]) * (1 + rng.poisson(0.4, m))
    add(ci, neg, tc - 0.2 * span - 1, tc - 0.5, v.NEGOTIATION)

    li = np.flatnonzero(np.isfinite(pop.t_l))
    tl, span, sm = pop.t_l[li], 0.5 * pop.cycle[li], _SALES_SEGMENT[pop.seg[li]]
    k = li.size
    add(li, 1 + rng.poisson(1.0 * sm), tl - span, tl - 0.05 * span, v.CALL)
    add(li, rng.poisson(0.6 * sm), tl - 0.8 * span, tl, v.MEETING)
    add(li, (rng.random(k) < 0.6).astype(np.int64), tl - 0.8 * span, tl - 0.1 * span, v.DEMO_HELD)
    add(li, (rng.random(k) < 0.5).astype(np.int64), tl - 0.3 * span - 4, tl - 3, v.PROPOSAL)
    add(
        li,
        (rng.random(k) < 0.2 * _NEGOTIATION[pop.seg[li]]).astype(np.int64),
        tl - 0.2 * span - 1,
        tl - 1,
        v.NEGOTIATION,
    )
    oi = np.flatnonzero(~pop.cust0 & ~pop.converts & ~np.isfinite(pop.t_l))
    add(oi, rng.poisson(0.6, oi.size), pop.entry[oi], pop.entry[oi] + pop.cycle[oi], v.CALL)

    cu = np.flatnonzero(np.isfinite(pop.cf))
    lo, hi = np.maximum(pop.cf[cu], 0.0), pop.stop[cu]
    for code, per_year in ((v.MEETING, 3.0), (v.CALL, 2.0)):
        o, t = _uniform(rng, lo, hi, np.full(cu.size, per_year / 365))
        parts.append((cu[o], t, code))

    acc = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    ev = np.concatenate([np.full(p[0].size, p[2]) for p in parts])
    prospect_phase = ~pop.is_customer(acc, t)
    t = np.where(prospect_phase, np.maximum(t, pop.entry[acc] + 0.01), t)
    t = retime(rng, t)
    # the outcomes keep their exact times (truth refers to them)
    acc = np.concatenate([acc, ci, li])
    t = np.concatenate([t, tc, tl])
    ev = np.concatenate([ev, np.full(ci.size, v.WON), np.full(li.size, v.LOST)])
    keep = (t >= 0) & (t < d)
    acc, t, ev = acc[keep], t[keep], ev[keep]

    con = pop.pick_contacts(rng, acc, t, v.SALES_ROLE_WEIGHT[ev])
    amount = np.full(acc.size, np.nan)
    amount[ev == v.WON] = pop.acv[acc[ev == v.WON]]
    prop = ev == v.PROPOSAL
    amount[prop] = np.round(pop.acv[acc[prop]] * rng.uniform(0.95, 1.3, prop.sum()), -2)
    n_notes = np.array([len(x) for x in v.SALES_NOTES])
    note = np.minimum((rng.random(acc.size) * n_notes[ev]).astype(np.int64), n_notes[ev] - 1)
    return {"acc": acc, "con": con, "t": t, "ev": ev, "amount": amount, "note": note}


def support(rng: np.random.Generator, pop: Population) -> Columns:
    """Tickets of customers (opened, sometimes escalated, mostly closed with a CSAT);
    they pile up and escalate more in the weeks before a cancellation."""
    d = float(pop.days)
    cu = np.flatnonzero(np.isfinite(pop.cf))
    lo, hi = np.maximum(pop.cf[cu], 0.0), pop.stop[cu]
    rate = 0.012 * _SUPPORT_SEGMENT[pop.seg[cu]] * np.exp(-0.4 * pop.health[cu])
    o1, t1 = _uniform(rng, lo, hi, rate)
    ch = cu[np.isfinite(pop.t_ch[cu])]
    start = np.maximum(np.maximum(pop.cf[ch], 0.0), pop.t_ch[ch] - pop.decline[ch])
    o2, t2 = _ramp(rng, start, pop.t_ch[ch], pop.decline[ch] / 2, rng.uniform(2, 5, ch.size))
    acc = np.concatenate([cu[o1], ch[o2]])
    t = np.concatenate([t1, t2])
    hot = np.concatenate([np.zeros(o1.size, bool), np.ones(o2.size, bool)])
    keep = (t >= 0) & (t < np.fmin(pop.stop[acc], d))
    acc, t, hot = acc[keep], retime(rng, t[keep]), hot[keep]
    order = np.argsort(t, kind="stable")
    acc, t, hot = acc[order], t[order], hot[order]
    n = acc.size
    ticket = np.arange(n)
    con = pop.pick_contacts(rng, acc, t, v.SUPPORT_ROLE_WEIGHT)
    priority = choose_rows(rng, v.PRIORITY_SHARE[hot.astype(np.int64)])
    category = choose_rows(rng, _CATEGORY_SHARE[hot.astype(np.int64)])
    escalated = rng.random(n) < np.where(hot, 0.45, 0.12) + 0.1 * (priority == 3)
    t_esc = t + rng.exponential(0.5, n)
    closed = rng.random(n) < 0.93
    t_close = np.where(escalated, t_esc, t) + rng.exponential(np.where(priority >= 2, 1.0, 2.5), n)
    answered = rng.random(n) < 0.6
    score = np.clip(
        np.round(3.8 + 0.6 * pop.health[acc] + rng.normal(0, 1, n) - escalated - 0.8 * hot), 1, 5
    )
    csat = np.where(answered, score, np.nan)
    parts = []
    for code, mask, tt, c in (
        (0, np.ones(n, bool), t, np.full(n, np.nan)),
        (1, escalated, t_esc, np.full(n, np.nan)),
        (2, closed, t_close, csat),
    ):
        m = mask & (tt < d)
        parts.append({"acc": acc[m], "con": con[m], "t": tt[m], "ev": np.full(m.sum(), code),
                      "ticket": ticket[m], "priority": priority[m], "category": category[m], "csat": c[m]})  # fmt: skip
    return _concat(parts)


def billing(rng: np.random.Generator, pop: Population) -> Columns:
    """Subscription lifecycle: start, monthly invoices (some failing), yearly renewals,
    up/downgrades and cancellations."""
    d = float(pop.days)
    cu = np.flatnonzero(np.isfinite(pop.cf))
    cf, stop = pop.cf[cu], pop.stop[cu]
    in_decline = np.isfinite(pop.t_ch[cu])
    parts: list[Columns] = []

    def add(acc: np.ndarray, t: np.ndarray, code: int, amount: np.ndarray) -> None:
        parts.append({"acc": acc, "t": t, "ev": np.full(acc.size, code), "amount": amount})

    mrr = pop.acv / 12
    first = np.maximum(0, np.ceil(-cf / _MONTH)).astype(np.int64)
    k_own, k = _ranges(first, np.ceil(_length(cf, stop) / _MONTH).astype(np.int64))
    acc = cu[k_own]
    t_inv = cf[k_own] + k * _MONTH
    declining = in_decline[k_own] & (t_inv >= pop.t_ch[acc] - pop.decline[acc])
    failed = rng.random(acc.size) < np.where(declining, 0.3, 0.015)
    recovered = ~failed | (rng.random(acc.size) < 0.85)
    t_paid = t_inv + np.where(failed, rng.uniform(2, 8, acc.size), rng.uniform(0, 0.5, acc.size))
    add(acc[failed], t_inv[failed], v.PAYMENT_FAILED, mrr[acc[failed]])
    add(acc[recovered], t_paid[recovered], v.INVOICE_PAID, mrr[acc[recovered]])

    starts = cu[(cf >= 0) & (cf < d)]
    add(starts, pop.cf[starts], v.SUB_STARTED, mrr[starts])
    years = int(np.ceil(d / 365)) + 3
    r_own = np.repeat(np.arange(cu.size), years)
    t_ren = cf[r_own] + 365.0 * np.tile(np.arange(1, years + 1), cu.size)
    ok = (t_ren >= 0) & (t_ren < stop[r_own])
    add(cu[r_own[ok]], t_ren[ok], v.RENEWAL, pop.acv[cu[r_own[ok]]])

    lo = np.maximum(cf, 0.0)
    healthy = ~in_decline & (pop.health[cu] > 0)
    o, t = _uniform(rng, lo, stop, np.where(healthy, 0.25 / 365, 0.02 / 365))
    add(cu[o], t, v.UPGRADE, np.round(mrr[cu[o]] * rng.uniform(0.2, 0.6, o.size), 2))
    ch = cu[in_decline]
    down = rng.random(ch.size) < 0.45
    t_down = pop.t_ch[ch] - (5 + rng.random(ch.size) * (pop.decline[ch] - 5))
    ch_d, t_down = ch[down], t_down[down]
    add(ch_d, t_down, v.DOWNGRADE, -np.round(mrr[ch_d] * rng.uniform(0.2, 0.5, ch_d.size), 2))
    ends = cu[in_decline & (pop.t_ch[cu] >= 0) & (pop.t_ch[cu] < d)]
    add(ends, pop.t_ch[ends], v.CANCELLATION, np.full(ends.size, np.nan))

    out = _concat(parts)
    a, t = out["acc"], out["t"]
    keep = (t >= 0) & (t < d) & (t >= pop.cf[a]) & ((t <= pop.t_ch[a]) | np.isnan(pop.t_ch[a]))
    out = _take(out, keep)
    a, t, ev = out["acc"], out["t"], out["ev"]
    years_in = np.floor((t - pop.cf[a]) / 365 + 1e-9) + 1
    out["renewal_t"] = pop.cf[a] + 365 * years_in
    plan = pop.plan[a].copy()
    plan[ev == v.UPGRADE] = np.minimum(plan[ev == v.UPGRADE] + 1, len(v.PLANS) - 1)
    plan[ev == v.DOWNGRADE] = np.maximum(plan[ev == v.DOWNGRADE] - 1, 0)
    out["plan"] = plan
    return out


def product(rng: np.random.Generator, pop: Population) -> Columns:
    """Logins and feature use of customer users, at a rate set by account health; it
    declines over the 60-90 days before a cancellation."""
    d = float(pop.days)
    users = np.flatnonzero(np.isfinite(pop.cf[pop.c_acc]))
    a = pop.c_acc[users]
    lo = np.maximum(np.maximum(pop.cf[a], pop.c_join[users]), 0.0)
    hi = pop.stop[a]
    base = (
        v.USAGE_ROLE_RATE[pop.c_role[users]]
        * np.exp(0.45 * pop.health[a])
        * _USAGE_SEGMENT[pop.seg[a]]
    )
    parts = []
    for code, rate in ((0, _LOGIN_RATE), (1, _FEATURE_RATE)):
        o, t = _uniform(rng, lo, hi, rate * base)
        con, acc = users[o], a[o]
        # thinning: churners fade out linearly to 8% of their usual level by cancellation
        t_ch, length = pop.t_ch[acc], pop.decline[acc]
        level = np.where(
            np.isfinite(t_ch), np.clip((t_ch - t) / length, 0.0, 1.0) * 0.92 + 0.08, 1.0
        )
        if code == 0:
            level = level * np.where(pop.drift_on(acc, t), _DRIFT_LOGIN, 1.0)
        keep = rng.random(o.size) < level
        parts.append(
            {"acc": acc[keep], "con": con[keep], "t": t[keep], "ev": np.full(keep.sum(), code)}
        )
    onboarded = np.flatnonzero(pop.conv_in)
    t_on = pop.cf[onboarded] + rng.uniform(2, 25, onboarded.size)
    ok = t_on < pop.stop[onboarded]
    onboarded, t_on = onboarded[ok], t_on[ok]
    parts.append(
        {
            "acc": onboarded,
            "con": pop.committee[onboarded, 0],
            "t": t_on,
            "ev": np.full(onboarded.size, 2),
        }
    )
    out = _concat(parts)
    out["t"] = np.where(out["ev"] == 2, out["t"], retime(rng, out["t"], 0.18))
    out = _take(out, (out["t"] >= 0) & (out["t"] < d))
    feature = np.where(
        out["ev"] == 1, rng.choice(len(v.FEATURES), size=out["acc"].size, p=v.FEATURE_SHARE), -1
    )
    out["feature"] = feature
    return out


def dead_end(rng: np.random.Generator, pop: Population, raw: dict[str, Columns]) -> tuple[dict[str, Columns], np.ndarray,
                                                                                      np.ndarray]:
    """Add the integrations-page visits and make the dead-enders go dark after theirs.

    A share of prospects with two or more prospect web visits visit the integrations page
    just before one of their later visits (so the visit is never their last step unless
    they go dark); of the visitors who never convert, ``DEAD_END_EXIT`` have every event
    after the visit removed. Returns the sources and, per account, the visit time and the
    time it went dark (NaN when none)."""
    w = raw["web"]
    visit_t = np.full(pop.n, np.nan)
    dark_t = np.full(pop.n, np.nan)
    prospect = ~pop.is_customer(w["acc"], w["t"]) & ~pop.cust0[w["acc"]]
    rows = np.flatnonzero(prospect)
    if rows.size == 0:
        return raw, visit_t, dark_t
    order = rows[np.lexsort((w["t"][rows], w["acc"][rows]))]
    acc = w["acc"][order]
    starts = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])
    counts = np.diff(np.r_[starts, acc.size])
    eligible = counts >= 2
    visits = eligible & (rng.random(starts.size) < v.DEAD_END_VISIT)
    vi = np.flatnonzero(visits)
    # before one of the visits after the first: index 1..count-1 within the account
    pick_i = starts[vi] + 1 + np.floor(rng.random(vi.size) * (counts[vi] - 1)).astype(np.int64)
    before = order[pick_i]
    a = w["acc"][before]
    t_v = w["t"][before] - rng.uniform(0.001, 0.02, vi.size)
    visit_t[a] = t_v
    dark = ~pop.converts[a] & ~np.isfinite(pop.cf[a]) & (rng.random(vi.size) < v.DEAD_END_EXIT)
    dark_t[a[dark]] = t_v[dark]
    n = vi.size
    added = {"acc": a, "con": w["con"][before], "t": t_v, "ev": np.full(n, v.INTEGRATIONS),
             "dur": np.clip(np.round(v.WEB_MEDIAN_SECONDS[v.INTEGRATIONS] * np.exp(rng.normal(0, 0.8, n))), 1, 3_600),
             "url": rng.integers(0, len(v.WEB_URLS[v.INTEGRATIONS]), n), "octet": rng.integers(1, 255, n),
             "local": np.zeros(n, bool)}
    raw = {**raw, "web": _concat([w, {k: added[k].astype(w[k].dtype) for k in w}])}
    out = {}
    for name, cols in raw.items():
        gone = cols["t"] > np.nan_to_num(dark_t, nan=np.inf)[cols["acc"]]
        out[name] = _take(cols, ~gone) if gone.any() else cols
    return out, visit_t, dark_t
