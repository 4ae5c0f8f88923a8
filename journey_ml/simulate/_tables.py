"""Turn simulated columns into the exact export tables (column names and text formats).

Event tables carry internal columns (prefixed ``_``) used for routing and dirtying; the
writers drop them. Ids come from running counters so they are unique across blocks.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journey_ml.simulate import _vocab as v
from journey_ml.simulate._events import Columns, Schedule
from journey_ml.simulate._format import (
    DAY,
    Calendar,
    bool_text,
    hashed_hex,
    iso,
    number_text,
    numbered,
    pick,
    uuids,
)
from journey_ml.simulate._population import Population

ACCOUNT_COLUMNS = ("AccountId", "Company", "Industry", "Employees", "AnnualRevenue", "Country",
                   "CreatedDate", "Region", "Plan", "ContractType")  # fmt: skip
CONTACT_COLUMNS = ("ContactId", "AccountId", "Email", "FullName", "Phone", "Title", "BuyingRole",
                   "OptedOut", "CreatedDate")  # fmt: skip
WEB_COLUMNS = ("id", "timestamp", "visitor_id", "account", "event", "url", "session_id", "ip",
               "duration_s")  # fmt: skip
EMAIL_COLUMNS = ("activity_id", "ts", "recipient_id", "campaign", "action")
WEBINAR_COLUMNS = ("contact_id", "account_id", "webinar", "status", "event_time")
SALES_COLUMNS = ("activity_id", "account_id", "contact_id", "type", "date", "amount", "notes")
SUPPORT_COLUMNS = ("ticket_event_id", "ticket_id", "event_time", "contact_id", "account_id",
                   "priority", "category", "event", "csat")  # fmt: skip
TRUTH_COLUMNS = ("account_id", "segment", "archetype", "true_conversion_propensity",
                 "converted_at", "customer_from", "true_churn_propensity", "churned_at",
                 "drifted", "integrations_visit_at", "dead_end_at")  # fmt: skip
BILLING_SCHEMA = pa.schema(
    [
        ("billing_event_id", pa.string()),
        ("account_id", pa.string()),
        ("event", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("amount", pa.float64()),
        ("plan", pa.string()),
        ("renewal_date", pa.date32()),
    ]
)
PRODUCT_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("user_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("event", pa.string()),
        ("feature", pa.string()),
    ]
)


class Ids:
    """Entity id strings of one block (indexable by block-local index; -1 gives null)."""

    def __init__(self, pop: Population) -> None:
        self.account_no = pop.first + np.arange(pop.n) + 1
        self.contact_no = pop.first_contact + np.arange(pop.nc) + 1
        self.accounts = numbered("A", self.account_no, 7)
        self.contacts = numbered("C", self.contact_no, 8)

    def account(self, idx: np.ndarray) -> pa.Array:
        return self._take(self.accounts, idx)

    def contact(self, idx: np.ndarray) -> pa.Array:
        return self._take(self.contacts, idx)

    @staticmethod
    def _take(arr: pa.Array, idx: np.ndarray) -> pa.Array:
        idx = np.asarray(idx)
        return pc.take(arr, pa.array(idx, mask=idx < 0, type=pa.int64()))


def _sorted(cols: Columns) -> Columns:
    order = np.argsort(cols["t"], kind="stable")
    return {k: a[order] for k, a in cols.items()}


def _next_ids(counters: Counter, name: str, n: int) -> np.ndarray:
    start = counters[name]
    counters[name] += n
    return np.arange(start, start + n) + 1


def _iso_or_null(cal: Calendar, t: np.ndarray) -> pa.Array:
    known = np.isfinite(t)
    text = iso(cal.seconds(np.where(known, t, 0.0)))
    return pc.if_else(pa.array(known), text, pa.nulls(len(t), pa.string()))


def _flat(
    groups: tuple[tuple[str, ...], ...], prefix: tuple[str, ...] | None = None
) -> tuple[tuple[str, ...], np.ndarray]:
    """Flatten per-code vocabularies; returns (strings, offset of each code)."""
    flat: list[str] = []
    offsets = []
    for i, g in enumerate(groups):
        offsets.append(len(flat))
        flat.extend((prefix[i] if prefix else "") + s for s in g)
    return tuple(flat), np.array(offsets)


_URL_HOST = tuple(v.WEB_HOSTS[1] if e == "docs_view" else v.WEB_HOSTS[0] for e in v.WEB_EVENTS)
_URLS, _URL_OFFSET = _flat(v.WEB_URLS, _URL_HOST)
_NOTES, _NOTE_OFFSET = _flat(v.SALES_NOTES)
_TITLES, _TITLE_OFFSET = _flat(v.TITLES)


def accounts(pop: Population, ids: Ids, cal: Calendar) -> pa.Table:
    """CRM account export of the block."""
    words = np.array(v.COMPANY_WORDS)[pop.name_parts[:, 0]]
    nouns = np.array(v.COMPANY_NOUNS)[pop.name_parts[:, 1]]
    forms = np.array(v.COMPANY_FORMS)[pop.name_parts[:, 2]]
    company = [f"{w} {n} {f}" for w, n, f in zip(words, nouns, forms, strict=True)]
    regions = np.array([c[1] for c in v.COUNTRIES])
    return pa.table(
        {
            "AccountId": ids.accounts,
            "Company": pa.array(company, pa.string()),
            "Industry": pick(v.INDUSTRIES, pop.industry),
            "Employees": number_text(pop.employees),
            "AnnualRevenue": number_text(pop.revenue),
            "Country": pick([c[0] for c in v.COUNTRIES], pop.country),
            "CreatedDate": iso(cal.seconds(pop.created)),
            "Region": pa.array(regions[pop.country], pa.string()),
            "Plan": pick(v.PLANS, pop.plan),
            "ContractType": pick(v.CONTRACT_TYPES, pop.contract),
        }
    )


def contacts(pop: Population, ids: Ids, cal: Calendar) -> pa.Table:
    """CRM contact export of the block (buying committees)."""
    first = np.array(v.FIRST_NAMES)[pop.c_first]
    last = np.array(v.LAST_NAMES)[pop.c_last]
    company_no = ids.account_no[pop.c_acc]
    email = [
        f"{f.lower()}.{s.lower()}@company{n}.example"
        for f, s, n in zip(first, last, company_no, strict=True)
    ]
    cc = np.array([c[3] for c in v.COUNTRIES])[pop.country[pop.c_acc]]
    p = pop.c_phone
    phone = [
        f"+{c} {a} {b} {x:04d}" for c, a, b, x in zip(cc, p[:, 0], p[:, 1], p[:, 2], strict=True)
    ]
    return pa.table(
        {
            "ContactId": ids.contacts,
            "AccountId": ids.account(pop.c_acc),
            "Email": pa.array(email, pa.string()),
            "FullName": pa.array(
                [f"{f} {s}" for f, s in zip(first, last, strict=True)], pa.string()
            ),
            "Phone": pa.array(phone, pa.string()),
            "Title": pick(_TITLES, _TITLE_OFFSET[pop.c_role] + pop.c_title),
            "BuyingRole": pick(v.ROLES, pop.c_role),
            "OptedOut": bool_text(pop.c_opted),
            "CreatedDate": iso(cal.seconds(pop.c_created)),
        }
    )


def truth(pop: Population, ids: Ids, cal: Calendar, visit_t: np.ndarray | None = None,
          dark_t: np.ndarray | None = None) -> pa.Table:
    """Ground truth per account (for evaluating models later; never ingested); with the
    integrations-page visit and the time the account went dark after it (the dead end)."""
    d = float(pop.days)
    ever_customer = np.isfinite(pop.cf)
    churned = pop.t_ch < d
    return pa.table(
        {
            "account_id": ids.accounts,
            "segment": pick(v.SEGMENTS, pop.seg),
            "archetype": pick(v.ARCHETYPES, pop.arch),
            "true_conversion_propensity": number_text(np.where(pop.cust0, np.nan, pop.p_conv), 4),
            "converted_at": _iso_or_null(cal, np.where(pop.conv_in, pop.t_c, np.nan)),
            "customer_from": _iso_or_null(cal, pop.cf),
            "true_churn_propensity": number_text(np.where(ever_customer, pop.p_churn, np.nan), 4),
            "churned_at": _iso_or_null(cal, np.where(churned, pop.t_ch, np.nan)),
            "drifted": bool_text(pop.drifted),
            "integrations_visit_at": _iso_or_null(cal, np.full(pop.n, np.nan) if visit_t is None else visit_t),
            "dead_end_at": _iso_or_null(cal, np.full(pop.n, np.nan) if dark_t is None else dark_t),
        }
    )


def _internal(sec: np.ndarray, protect: np.ndarray | None = None) -> dict[str, pa.Array]:
    n = sec.size
    return {
        "_sec": pa.array(sec, pa.int64()),
        "_protect": pa.array(np.zeros(n, bool) if protect is None else protect),
    }


def web(
    rng: np.random.Generator, cols: Columns, pop: Population, ids: Ids, cal: Calendar
) -> pa.Table:
    """Web analytics export rows; ~10% of timestamps carry the visitor's UTC offset."""
    c = _sorted(cols)
    sec = cal.seconds(c["t"])
    n = sec.size
    offset = np.where(c["local"], v.COUNTRY_OFFSET_MIN[pop.country[c["acc"]]], 0)
    stamp = pc.if_else(pa.array(c["local"]), iso(sec, offset_min=offset), iso(sec))
    day = (sec - cal.start_s) // DAY
    session = hashed_hex(ids.contact_no[c["con"]], day)
    net = pop.net[c["acc"]]
    ip = pc.binary_join_element_wise(
        *(pc.cast(pa.array(x), pa.string()) for x in (net[:, 0], net[:, 1], net[:, 2], c["octet"])),
        ".",
    )
    bounds = cal.month_bounds_s()
    month = np.searchsorted(bounds, sec, side="right") - 1
    overlap = (sec >= bounds[month + 1] - 2 * DAY) & (month + 1 < len(bounds) - 1)
    return pa.table(
        {
            "id": uuids(rng, n),
            "timestamp": stamp,
            "visitor_id": ids.contact(c["con"]),
            "account": ids.account(c["acc"]),
            "event": pick(v.WEB_EVENTS, c["ev"]),
            "url": pick(_URLS, _URL_OFFSET[c["ev"]] + c["url"]),
            "session_id": session,
            "ip": ip,
            "duration_s": number_text(c["dur"]),
            **_internal(sec),
            "_month": pa.array(month, pa.int32()),
            "_overlap": pa.array(overlap),
        }
    )


def email(cols: Columns, ids: Ids, cal: Calendar, sched: Schedule, counters: Counter) -> pa.Table:
    c = _sorted(cols)
    sec = cal.seconds(c["t"])
    return pa.table(
        {
            "activity_id": numbered("EA", _next_ids(counters, "email", sec.size), 10),
            "ts": iso(sec),
            "recipient_id": ids.contact(c["con"]),
            "campaign": pick(sched.campaign_name, c["campaign"]),
            "action": pick(v.EMAIL_EVENTS, c["ev"]),
            **_internal(sec),
        }
    )


def webinars(cols: Columns, ids: Ids, cal: Calendar, sched: Schedule) -> pa.Table:
    c = _sorted(cols)
    sec = cal.seconds(c["t"])
    return pa.table(
        {
            "contact_id": ids.contact(c["con"]),
            "account_id": ids.account(c["acc"]),
            "webinar": pick(sched.webinar_name, c["webinar"]),
            "status": pick(v.WEBINAR_EVENTS, c["ev"]),
            "event_time": iso(sec, "+00:00"),
            **_internal(sec),
        }
    )


def sales(cols: Columns, ids: Ids, cal: Calendar, counters: Counter) -> pa.Table:
    c = _sorted(cols)
    sec = cal.seconds(c["t"])
    return pa.table(
        {
            "activity_id": numbered("SA", _next_ids(counters, "sales", sec.size), 9),
            "account_id": ids.account(c["acc"]),
            "contact_id": ids.contact(c["con"]),
            "type": pick(v.SALES_EVENTS, c["ev"]),
            "date": iso(sec),
            "amount": number_text(c["amount"], 2),
            "notes": pick(_NOTES, _NOTE_OFFSET[c["ev"]] + c["note"]),
            **_internal(sec, protect=c["ev"] == v.WON),
        }
    )


def support(cols: Columns, ids: Ids, cal: Calendar, counters: Counter) -> pa.Table:
    n_tickets = int(cols["ticket"].max()) + 1 if cols["ticket"].size else 0
    ticket_no = _next_ids(counters, "ticket", n_tickets)
    c = _sorted(cols)
    sec = cal.seconds(c["t"])
    return pa.table(
        {
            "ticket_event_id": numbered("TE", _next_ids(counters, "support", sec.size), 10),
            "ticket_id": numbered("TCK-", ticket_no[c["ticket"]], 8),
            "event_time": iso(sec),
            "contact_id": ids.contact(c["con"]),
            "account_id": ids.account(c["acc"]),
            "priority": pick(v.PRIORITIES, c["priority"]),
            "category": pick(v.CATEGORIES, c["category"]),
            "event": pick(v.SUPPORT_EVENTS, c["ev"]),
            "csat": number_text(c["csat"]),
            **_internal(sec),
        }
    )


def billing(cols: Columns, ids: Ids, cal: Calendar, counters: Counter) -> pa.Table:
    c = _sorted(cols)
    sec = cal.seconds(c["t"])
    renewal_day = (cal.seconds(c["renewal_t"]) // DAY).astype(np.int32)
    amount = np.round(c["amount"], 2)
    return pa.table(
        {
            "billing_event_id": numbered("bil_", _next_ids(counters, "billing", sec.size), 10),
            "account_id": ids.account(c["acc"]),
            "event": pick(v.BILLING_EVENTS, c["ev"]),
            "ts": pa.array(sec * 1_000_000, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount, pa.float64(), mask=np.isnan(amount)),
            "plan": pick(v.PLANS, c["plan"]),
            "renewal_date": pa.array(renewal_day, pa.date32()),
        },
        schema=BILLING_SCHEMA,
    )


def product(cols: Columns, ids: Ids, cal: Calendar) -> pa.Table:
    c = _sorted(cols)
    sec = cal.seconds(c["t"])
    month = np.searchsorted(cal.month_bounds_s(), sec, side="right") - 1
    table = pa.table(
        {
            "account_id": ids.account(c["acc"]),
            "user_id": ids.contact(c["con"]),
            "ts": pa.array(cal.micros(c["t"]), pa.timestamp("us", tz="UTC")),
            "event": pick(v.PRODUCT_EVENTS, c["ev"]),
            "feature": pick(v.FEATURES, c["feature"]),
        },
        schema=PRODUCT_SCHEMA,
    )
    return table.append_column("_month", pa.array(month, pa.int32()))
