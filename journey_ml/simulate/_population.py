"""Accounts, buying committees and their latent state (intent, health, timeline).

A block of accounts is drawn in one go; everything else in the simulation reads these
arrays. Times are float days since the period start (negative = before the period).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journey_ml.simulate import _vocab as v

# Calibration: about a third of prospects would eventually buy, ~25% within an 18-month
# period; customers churn at ~15% a year.
_CONV_BASE = -1.4
_CONV_SEGMENT = np.array([0.25, 0.0, -0.35])
_CONV_ARCHETYPE = np.array([0.0, 0.35, -0.1])
_CYCLE_ARCHETYPE = np.array([110.0, 30.0, 60.0])
_CYCLE_SEGMENT = np.array([0.8, 1.2, 1.8])
_CHURN_BASE = -2.0
_CHURN_SEGMENT = np.array([0.3, 0.0, -0.4])
CUSTOMER_SHARE = 0.30
DRIFT_SHARE = 0.60


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def time_of_day(rng: np.random.Generator, n: int, spread: float = 0.14) -> np.ndarray:
    """Fraction of a day, clustered around 14:00 UTC (business hours across EMEA/NA)."""
    # wrap around midnight rather than clip, which would pile events up at 23:59
    return np.minimum(np.mod(rng.normal(0.58, spread, n), 1.0), 0.99999)


def retime(rng: np.random.Generator, t: np.ndarray, spread: float = 0.14) -> np.ndarray:
    """Keep the day of ``t`` but draw a realistic time of day."""
    return np.floor(t) + time_of_day(rng, t.size, spread)


def choose_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows need not be normalised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((cum <= u[:, None]).sum(axis=1), probs.shape[1] - 1)


@dataclass
class Population:
    """Latent and observable state of one block of accounts and their contacts."""

    first: int  # global index of the block's first account
    first_contact: int  # global number of its first contact
    days: int
    drift_t: float | None
    # accounts
    seg: np.ndarray
    arch: np.ndarray
    employees: np.ndarray
    revenue: np.ndarray
    industry: np.ndarray
    country: np.ndarray
    plan: np.ndarray
    contract: np.ndarray
    acv: np.ndarray
    cust0: np.ndarray  # customer at the start of the period
    intent: np.ndarray
    p_conv: np.ndarray
    converts: np.ndarray  # prospect who eventually buys (maybe after the period)
    cycle: np.ndarray
    entry: np.ndarray  # start of the active evaluation
    first_touch: np.ndarray  # first known touch (earlier than entry for long-dormant leads)
    t_c: np.ndarray  # closed_won time (NaN if never)
    t_l: np.ndarray  # closed_lost time of prospects whose deal is lost (NaN otherwise)
    energy: np.ndarray  # how loudly an account evaluates (multiplies its deal-phase activity)
    conv_in: np.ndarray  # converts within the period
    cf: np.ndarray  # customer from (NaN if never within the period)
    health: np.ndarray
    p_churn: np.ndarray
    t_ch: np.ndarray  # cancellation time (NaN if none near the period)
    decline: np.ndarray  # length of the pre-churn decline, days
    created: np.ndarray
    drifted: np.ndarray
    tau_ramp: np.ndarray
    tau_decay: np.ndarray
    net: np.ndarray  # (n, 3) first octets of the company network
    name_parts: np.ndarray  # (n, 3) indices into the company name word lists
    # contacts
    c_acc: np.ndarray
    c_pos: np.ndarray
    c_role: np.ndarray
    c_join: np.ndarray
    c_created: np.ndarray
    c_opted: np.ndarray
    c_first: np.ndarray
    c_last: np.ndarray
    c_title: np.ndarray
    c_phone: np.ndarray  # (nc, 3) phone number groups
    committee: np.ndarray  # (n, MAX_COMMITTEE) contact index per seat, -1 if empty

    @property
    def n(self) -> int:
        return self.seg.size

    @property
    def nc(self) -> int:
        return self.c_acc.size

    @property
    def stop(self) -> np.ndarray:
        """End of the customer relationship inside the period (churn or period end)."""
        return np.fmin(self.t_ch, self.days)

    def is_customer(self, acc: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Whether account ``acc`` is a paying customer at ``t`` (elementwise)."""
        cf, ch = self.cf[acc], self.t_ch[acc]
        return (cf <= t) & ~(ch <= t)

    def drift_on(self, acc: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Whether the behaviour shift applies to account ``acc`` at ``t`` (elementwise)."""
        if self.drift_t is None:
            return np.zeros(acc.size, dtype=bool)
        return self.drifted[acc] & (t >= self.drift_t)

    def heat(self, acc: np.ndarray, t: np.ndarray) -> np.ndarray:
        """How close an account is to buying at ``t``, 0..1 (latent; drives behaviour).

        Converters heat up exponentially towards closed_won, lost deals towards
        closed_lost (less); other prospects show an early burst of interest that fades,
        dormant leads barely register, customers sit at a low constant level.
        """
        h = np.zeros(acc.size)
        tc = self.t_c[acc]
        ramp = self.converts[acc] & (t < tc)
        h[ramp] = np.exp(-(tc[ramp] - t[ramp]) / self.tau_ramp[acc[ramp]])
        fade = ~self.converts[acc] & ~self.cust0[acc]
        a = acc[fade]
        h[fade] = (
            0.35
            * sigmoid(self.intent[a])
            * np.exp(-np.maximum(t[fade] - self.entry[a], 0) / self.tau_decay[a])
        )
        h[~self.cust0[acc] & (t < self.entry[acc])] = 0.05
        # lost deals heat up too (a real evaluation), just less: the noise a model must see through
        tl = self.t_l[acc]
        lost = t < tl
        h[lost] = np.maximum(
            h[lost], 0.7 * np.exp(-(tl[lost] - t[lost]) / self.tau_ramp[acc[lost]])
        )
        h[self.is_customer(acc, t)] = 0.1
        return h

    def engagement(self, acc: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Standardised latent engagement: intent for prospects, health for customers."""
        return np.where(self.is_customer(acc, t), self.health[acc], self.intent[acc])

    def pick_contacts(
        self, rng: np.random.Generator, acc: np.ndarray, t: np.ndarray, role_w: np.ndarray
    ) -> np.ndarray:
        """A committee member per event: joined by ``t``, drawn with weights by role.

        ``role_w`` is one weight per role, or one row of weights per event. Falls back to
        the first contact (who joined at entry) when nobody else qualifies.
        """
        seats = self.committee[acc]
        valid = seats >= 0
        safe = np.where(valid, seats, 0)
        ok = valid & (self.c_join[safe] <= t[:, None])
        roles = self.c_role[safe]
        w = role_w[roles] if role_w.ndim == 1 else np.take_along_axis(role_w, roles, axis=1)
        w = np.where(ok, w, 0.0)
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1]
        u = rng.random(acc.size) * total
        k = np.minimum((cum <= u[:, None]).sum(axis=1), seats.shape[1] - 1)
        chosen = safe[np.arange(acc.size), k]
        return np.where(total > 0, chosen, self.committee[acc, 0])


def build_population(
    rng: np.random.Generator,
    first: int,
    n: int,
    first_contact: int,
    days: int,
    drift_t: float | None,
) -> Population:
    """Draw ``n`` accounts (global indices from ``first``) and their buying committees."""
    d = float(days)
    seg = rng.choice(3, size=n, p=v.SEGMENT_SHARE)
    lo, hi = v.EMPLOYEES_LO[seg], v.EMPLOYEES_HI[seg]
    employees = np.clip(np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi + 1)))), lo, hi).astype(
        np.int64
    )
    revenue = np.round(employees * np.exp(rng.normal(np.log(150_000), 0.45, n)), -3)
    industry = rng.integers(0, len(v.INDUSTRIES), n)
    country = rng.choice(len(v.COUNTRIES), size=n, p=v.COUNTRY_SHARE)
    arch = choose_rows(rng, v.ARCHETYPE_SHARE[seg])
    plan = choose_rows(rng, v.PLAN_SHARE[seg])
    contract = choose_rows(rng, v.CONTRACT_SHARE[seg])
    acv = np.round(
        v.PLAN_ACV[plan] * np.exp(rng.normal(0, 0.3, n)) * (1 + 0.1 * np.log10(employees)), -2
    )

    cust0 = rng.random(n) < CUSTOMER_SHARE
    intent = rng.standard_normal(n)
    p_conv = sigmoid(_CONV_BASE + 1.6 * intent + _CONV_SEGMENT[seg] + _CONV_ARCHETYPE[arch])
    converts = (rng.random(n) < p_conv) & ~cust0
    cycle = _CYCLE_ARCHETYPE[arch] * _CYCLE_SEGMENT[seg] * np.exp(rng.normal(0, 0.3, n))
    # some deals are already in the pipeline at the start; the latest arrive three weeks
    # before the end
    entry = rng.uniform(-np.minimum(60.0, 0.6 * cycle), d - min(21.0, 0.1 * d))
    t_c = np.where(converts, np.floor(entry + cycle) + time_of_day(rng, n), np.nan)
    # a third of leads were known long before they start evaluating, so time in the
    # pipeline alone does not give the outcome away
    dormant = ~cust0 & (rng.random(n) < 0.35)
    first_touch = np.where(dormant, entry - rng.uniform(30, 300, n), entry)
    conv_in = converts & (t_c < d)
    lost = ~cust0 & ~converts & (rng.random(n) < sigmoid(-0.4 + 0.9 * intent))
    t_l = np.where(
        lost, np.floor(entry + cycle * rng.uniform(0.7, 1.5, n)) + rng.uniform(0.3, 0.8, n), np.nan
    )
    energy = np.exp(rng.normal(0.0, 0.5, n))
    delay = rng.uniform(0.01, 0.9, n)
    cf_new = np.minimum(t_c + delay, t_c + 0.5 * (d - t_c))
    cf_old = np.floor(-rng.uniform(30, 900, n)) + time_of_day(rng, n)
    cf = np.where(cust0, cf_old, np.where(conv_in, cf_new, np.nan))

    health = rng.standard_normal(n)
    p_churn = sigmoid(_CHURN_BASE - 1.2 * health + _CHURN_SEGMENT[seg])
    t_ch = _churn_times(rng, cf, p_churn, d)
    decline = rng.uniform(60, 90, n)

    created = np.where(
        cust0,
        cf - rng.uniform(20, 400, n),
        np.floor(first_touch) - rng.integers(1, 31, n) + time_of_day(rng, n),
    )
    drifted = (rng.random(n) < DRIFT_SHARE) & (drift_t is not None)
    tau_ramp = np.clip(cycle / 3.0, 7.0, 60.0)
    tau_decay = rng.uniform(25, 70, n)
    net = np.stack(
        [rng.integers(23, 222, n), rng.integers(0, 256, n), rng.integers(0, 256, n)], axis=1
    )

    # buying committees
    size = rng.integers(v.COMMITTEE_LO[seg], v.COMMITTEE_HI[seg] + 1)
    c_acc = np.repeat(np.arange(n), size)
    nc = c_acc.size
    c_pos = np.arange(nc) - np.repeat(np.cumsum(size) - size, size)
    u = rng.random(nc)
    extra = choose_rows(rng, np.broadcast_to(v.EXTRA_ROLE_SHARE, (nc, 5)))
    role = np.select(
        [c_pos == 0, c_pos == 1, c_pos == 2, c_pos == 3],
        [
            v.END_USER,
            np.where(u < 0.8, v.ECO, v.CHAMPION),
            np.where(u < 0.85, v.TECH, v.END_USER),
            np.where(u < 0.8, v.PROC, v.END_USER),
        ],
        extra,
    )
    committee = np.full((n, v.MAX_COMMITTEE), -1, dtype=np.int64)
    committee[c_acc, c_pos] = np.arange(nc)

    # when each member first engages: economic buyers and technical evaluators join late
    # in deals that close, so their appearance is itself a buying signal
    e, cyc = entry[c_acc], cycle[c_acc]
    tc = np.where(converts, t_c, t_l)[c_acc]  # the deal's decision date
    late = (role == v.ECO) | (role == v.TECH)
    proc = role == v.PROC
    w = rng.random(nc)
    join_conv = np.where(
        late, tc - (10 + 35 * w), np.where(proc, tc - (3 + 22 * w), e + 0.6 * w * cyc)
    )
    join_other = np.where(late | proc, e + (0.4 + 1.2 * w) * cyc, e + 0.8 * w * cyc)
    join = np.where(np.isfinite(tc), join_conv, join_other)
    join = np.where(c_pos == 0, first_touch[c_acc], np.maximum(join, e))
    join = np.minimum(join, d - 0.1)
    acc_created = created[c_acc]
    c_created = np.maximum(acc_created + 1.0 / 86_400, np.floor(join) - rng.uniform(0.05, 2.0, nc))
    old = cust0[c_acc]
    # existing customers' contacts were all in the CRM before the period
    c_created_old = acc_created + rng.uniform(0.05, 0.95, nc) * (-1.0 - acc_created)
    c_created = np.where(old, c_created_old, c_created)
    join = np.where(old, c_created_old + 0.01, join)

    first_name = (rng.integers(0, len(v.FIRST_NAMES), n)[c_acc] + 7 * c_pos) % len(v.FIRST_NAMES)
    title_pick = rng.random(nc)
    n_titles = np.array([len(t) for t in v.TITLES])
    title = np.minimum((title_pick * n_titles[role]).astype(np.int64), n_titles[role] - 1)
    return Population(
        first=first,
        first_contact=first_contact,
        days=days,
        drift_t=drift_t,
        seg=seg,
        arch=arch,
        employees=employees,
        revenue=revenue,
        industry=industry,
        country=country,
        plan=plan,
        contract=contract,
        acv=acv,
        cust0=cust0,
        intent=intent,
        p_conv=p_conv,
        converts=converts,
        cycle=cycle,
        entry=entry,
        first_touch=first_touch,
        t_c=t_c,
        t_l=t_l,
        energy=energy,
        conv_in=conv_in,
        cf=cf,
        health=health,
        p_churn=p_churn,
        t_ch=t_ch,
        decline=decline,
        created=created,
        drifted=drifted,
        tau_ramp=tau_ramp,
        tau_decay=tau_decay,
        net=net,
        name_parts=np.stack(
            [
                rng.integers(0, len(x), n)
                for x in (v.COMPANY_WORDS, v.COMPANY_NOUNS, v.COMPANY_FORMS)
            ],
            axis=1,
        ),
        c_acc=c_acc,
        c_pos=c_pos,
        c_role=role,
        c_join=join,
        c_created=c_created,
        c_opted=rng.random(nc) < 0.03,
        c_first=first_name,
        c_last=rng.integers(0, len(v.LAST_NAMES), nc),
        c_title=title,
        c_phone=np.stack(
            [rng.integers(200, 999, nc), rng.integers(100, 999, nc), rng.integers(0, 10_000, nc)],
            axis=1,
        ),
        committee=committee,
    )


def _churn_times(
    rng: np.random.Generator, cf: np.ndarray, p_churn: np.ndarray, d: float
) -> np.ndarray:
    """Cancellation times: at each yearly renewal inside the period a customer leaves with
    probability ``p_churn``, usually in the month before the renewal date."""
    n = cf.size
    k = int((d + 1_100) // 365) + 1
    renewal = cf[:, None] + 365.0 * np.arange(1, k + 1)[None, :]
    off_cycle = rng.random((n, k)) < 0.2
    notice = np.where(off_cycle, rng.uniform(30, 300, (n, k)), rng.uniform(1, 30, (n, k)))
    candidate = renewal - notice
    leaves = (rng.random((n, k)) < p_churn[:, None]) & (
        candidate > np.maximum(cf[:, None] + 20, 1.0)
    )
    leaves &= np.isfinite(cf)[:, None]
    first = np.argmax(leaves, axis=1)
    t = np.where(leaves.any(axis=1), candidate[np.arange(n), first], np.nan)
    t = np.floor(t) + time_of_day(rng, n)
    return np.where(t > d + 120, np.nan, t)
