"""Seeded simulator of B2B customer journeys that writes realistic source exports.

Accounts are simulated in fixed blocks of ``_BLOCK_ACCOUNTS``; each block draws from its
own generator, seeded from ``(seed, block index)``, so the data do not depend on
``chunk_accounts`` (which only sets how many blocks are written at once and how often
``progress`` is called). Same parameters give byte-identical files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from journey_ml.simulate import _events as ev
from journey_ml.simulate import _shift
from journey_ml.simulate import _tables as tb
from journey_ml.simulate import _vocab as v
from journey_ml.simulate._dirty import DirtySpec, corrupt
from journey_ml.simulate._format import Calendar
from journey_ml.simulate._population import build_population
from journey_ml.simulate._writers import EVENT_SOURCES, Sink, remove_stale

_BLOCK_ACCOUNTS = 500
_SCHEDULE_STREAM = 0
_BLOCK_STREAM = 1
_SHIFT_STREAM = 2  # the conversion shift's own draws (so every other stream stays as it was)
_OUTAGE_STREAM = 3  # the tracking outage's own draws
TRACKING_OUTAGE_SHARE = 0.9  # of the web events from the outage on that are never recorded
_MAX_DIRTY_SHARE = 0.9  # of the rows that may be damaged in a block

_DIRTY_SPECS = {
    "web": DirtySpec("timestamp", ("visitor_id", "account"), "event", "duration_s"),
    "email": DirtySpec("ts", ("recipient_id",), "action"),
    "webinars": DirtySpec("event_time", ("contact_id", "account_id"), "status", tail="+00:00"),
    "sales": DirtySpec("date", ("account_id", "contact_id"), "type", "amount"),
    "support": DirtySpec("event_time", ("contact_id", "account_id"), "event"),
}


@dataclass(frozen=True)
class SimulationParams:
    """What to simulate: how many accounts, over which period, with which seed."""

    accounts: int = 600
    seed: int = 7
    start: date = date(2025, 1, 1)  # first day of the simulated period
    end: date = date(2026, 6, 30)  # last day (inclusive)
    drift_from: date | None = None  # behaviour shift from this date on
    # what converts changes from this date on: sales-led deals stall, a free workspace converts
    # on its own (journey_ml/simulate/_shift.py); None: off
    conversion_shift_from: date | None = None
    # the website's tracking breaks from this date on: TRACKING_OUTAGE_SHARE of the web events
    # from then on are never recorded (behaviour is unchanged, only what the data show); None: off
    tracking_outage_from: date | None = None
    dirty_rate: float = 0.002  # share of event rows made bad on purpose
    # accounts generated per chunk (bounded memory); rounded down to whole generation
    # blocks of 500 accounts, at least one, so the data never depend on it
    chunk_accounts: int = 5_000


@dataclass(frozen=True)
class SimulationResult:
    """What was written."""

    out_dir: Path
    files: dict[str, int]  # relative path -> rows written
    events: int  # total event rows written (all event sources)
    accounts: int
    contacts: int
    dirty_rows: int  # rows made bad on purpose


def _as_date(value: date | str, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{name} must be a date (or YYYY-MM-DD), got {value!r}")


def validate_params(params: SimulationParams) -> None:
    """Check ``params``; raises ValueError naming the first bad parameter."""
    if not isinstance(params.accounts, int | np.integer) or params.accounts <= 0:
        raise ValueError(f"accounts must be a positive integer, got {params.accounts!r}")
    if not isinstance(params.seed, int | np.integer) or params.seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {params.seed!r}")
    if not isinstance(params.chunk_accounts, int | np.integer) or params.chunk_accounts <= 0:
        raise ValueError(
            f"chunk_accounts must be a positive integer, got {params.chunk_accounts!r}"
        )
    start, end = _as_date(params.start, "start"), _as_date(params.end, "end")
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    if params.drift_from is not None:
        drift = _as_date(params.drift_from, "drift_from")
        if not start <= drift <= end:
            raise ValueError(
                f"drift_from ({drift}) must lie within [start, end] = [{start}, {end}]"
            )
    if params.conversion_shift_from is not None:
        shift = _as_date(params.conversion_shift_from, "conversion_shift_from")
        if not start <= shift <= end:
            raise ValueError(
                f"conversion_shift_from ({shift}) must lie within [start, end] = [{start}, {end}]"
            )
    if params.tracking_outage_from is not None:
        outage = _as_date(params.tracking_outage_from, "tracking_outage_from")
        if not start <= outage <= end:
            raise ValueError(
                f"tracking_outage_from ({outage}) must lie within [start, end] = [{start}, {end}]"
            )
    if not isinstance(params.dirty_rate, int | float) or not 0.0 <= params.dirty_rate <= 0.5:
        raise ValueError(f"dirty_rate must be within [0, 0.5], got {params.dirty_rate!r}")


def simulate(
    params: SimulationParams,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Simulate ``params.accounts`` accounts and write their source exports under ``out_dir``.

    Writes the CRM, web (monthly JSON lines), email, webinar, sales, support, billing and
    product (monthly Parquet) exports plus ``truth/accounts_truth.csv``; existing files of
    the same names are replaced, and stale monthly files from an earlier run are removed.
    ``progress(done_accounts, total_accounts)`` is called after each chunk.
    Returns the rows written per file. Raises ValueError for invalid parameters.
    """
    validate_params(params)
    start, end = _as_date(params.start, "start"), _as_date(params.end, "end")
    drift_t = (
        None
        if params.drift_from is None
        else float((_as_date(params.drift_from, "drift_from") - start).days)
    )
    shift_t = (
        None
        if params.conversion_shift_from is None
        else float((_as_date(params.conversion_shift_from, "conversion_shift_from") - start).days)
    )
    outage_t = (
        None
        if params.tracking_outage_from is None
        else float((_as_date(params.tracking_outage_from, "tracking_outage_from") - start).days)
    )
    cal = Calendar(start=start, end=end, drift_t=drift_t)
    sched = _schedule(np.random.default_rng([params.seed, _SCHEDULE_STREAM]), cal)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale(out)

    total = int(params.accounts)
    n_blocks = -(-total // _BLOCK_ACCOUNTS)
    per_chunk = max(1, params.chunk_accounts // _BLOCK_ACCOUNTS)
    counters: Counter = Counter()
    dirty = 0
    with Sink(out, cal) as sink:
        for first_block in range(0, n_blocks, per_chunk):
            pending: dict[str, list[pa.Table]] = {}
            for b in range(first_block, min(first_block + per_chunk, n_blocks)):
                rng = np.random.default_rng([params.seed, _BLOCK_STREAM, b])
                first = b * _BLOCK_ACCOUNTS
                n = min(_BLOCK_ACCOUNTS, total - first)
                shift_rng = (
                    None
                    if shift_t is None
                    else np.random.default_rng([params.seed, _SHIFT_STREAM, b])
                )
                outage = (
                    None
                    if outage_t is None
                    else (np.random.default_rng([params.seed, _OUTAGE_STREAM, b]), outage_t)
                )
                tables, bad = _simulate_block(
                    rng, first, n, cal, sched, counters, params.dirty_rate, shift_rng, shift_t, outage
                )
                dirty += bad
                for name, table in tables.items():
                    pending.setdefault(name, []).append(table)
            for name, parts in pending.items():
                sink.write(name, pa.concat_tables(parts))
            if progress is not None:
                progress(min(total, (first_block + per_chunk) * _BLOCK_ACCOUNTS), total)
        files = dict(sink.rows)
        events = sink.event_rows()
    return SimulationResult(
        out_dir=out,
        files=files,
        events=events,
        accounts=total,
        contacts=counters["contacts"],
        dirty_rows=dirty,
    )


def _simulate_block(
    rng: np.random.Generator,
    first: int,
    n: int,
    cal: Calendar,
    sched: ev.Schedule,
    counters: Counter,
    dirty_rate: float,
    shift_rng: np.random.Generator | None = None,
    shift_t: float | None = None,
    outage: tuple[np.random.Generator, float] | None = None,
) -> tuple[dict[str, pa.Table], int]:
    pop = build_population(rng, first, n, counters["contacts"], cal.days, cal.drift_t)
    shift = None if shift_rng is None else _shift.shift_conversion(shift_rng, pop, shift_t)
    counters["contacts"] += pop.nc
    ids = tb.Ids(pop)
    raw = {
        "web": ev.web(rng, pop),
        "email": ev.email(rng, pop, sched),
        "webinars": ev.webinars(rng, pop, sched),
        "sales": ev.sales(rng, pop),
        "support": ev.support(rng, pop),
        "billing": ev.billing(rng, pop),
        "product": ev.product(rng, pop),
    }
    if shift is not None:
        raw["product"] = _shift.append(raw["product"], _shift.free_usage(shift_rng, pop, shift))
        raw["sales"] = _shift.append(raw["sales"], _shift.self_serve_wins(pop, shift))
    # its own stream (spawned, so the block's main stream and everything else stay as they were)
    raw, visit_t, dark_t = ev.dead_end(np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]), pop, raw)
    if outage is not None:  # what the tracker lost (after everything that acts on visits)
        outage_rng, outage_t = outage
        w = raw["web"]
        lost = (w["t"] >= outage_t) & (outage_rng.random(w["t"].size) < TRACKING_OUTAGE_SHARE)
        raw = {**raw, "web": {k: a[~lost] for k, a in w.items()}}
    tables = {
        "accounts": tb.accounts(pop, ids, cal),
        "contacts": tb.contacts(pop, ids, cal),
        "truth": tb.truth(pop, ids, cal, visit_t, dark_t),
        "web": tb.web(rng, raw["web"], pop, ids, cal),
        "email": tb.email(raw["email"], ids, cal, sched, counters),
        "webinars": tb.webinars(raw["webinars"], ids, cal, sched),
        "sales": tb.sales(raw["sales"], ids, cal, counters),
        "support": tb.support(raw["support"], ids, cal, counters),
        "billing": tb.billing(raw["billing"], ids, cal, counters),
        "product": tb.product(raw["product"], ids, cal),
    }
    return tables, _dirty(rng, tables, cal, dirty_rate)


def _dirty(
    rng: np.random.Generator, tables: dict[str, pa.Table], cal: Calendar, rate: float
) -> int:
    """Damage about ``rate`` of the block's event rows, spread over the text exports."""
    eligible = {}
    for name in _DIRTY_SPECS:
        ok = ~tables[name].column("_protect").to_numpy(zero_copy_only=False)
        if name == "web":
            # rows repeated in the next month's file stay clean, so each bad row is written once
            ok &= ~tables[name].column("_overlap").to_numpy(zero_copy_only=False)
        eligible[name] = ok
    total_rows = sum(tables[name].num_rows for name in EVENT_SOURCES)
    capacity = sum(int(m.sum()) for m in eligible.values())
    if rate <= 0 or capacity == 0:
        return 0
    share = min(_MAX_DIRTY_SHARE, rate * total_rows / capacity)
    bad = 0
    for name, spec in _DIRTY_SPECS.items():
        n_bad = int(rng.binomial(int(eligible[name].sum()), share))
        tables[name], k = corrupt(rng, tables[name], spec, eligible[name], n_bad, cal)
        bad += k
    return bad


def _schedule(rng: np.random.Generator, cal: Calendar) -> ev.Schedule:
    """Company-wide campaign and webinar calendar (every ~2 and ~3 weeks)."""
    d = cal.days
    campaign_t = np.arange(rng.uniform(0, 7), d, 14.0)
    campaign_t = np.floor(campaign_t) + rng.uniform(
        0.375, 0.625, campaign_t.size
    )  # 09:00-15:00 UTC
    campaign_t = campaign_t[campaign_t < d - 0.1]
    kind = rng.choice(len(v.CAMPAIGN_KINDS), size=campaign_t.size, p=[0.25, 0.4, 0.2, 0.15])
    topic = rng.integers(0, len(v.CAMPAIGN_TOPICS), campaign_t.size)
    webinar_t = np.floor(np.arange(rng.uniform(3, 14), d, 21.0)) + 2 / 3  # 16:00 UTC
    webinar_topic = rng.integers(0, len(v.WEBINAR_TOPICS), webinar_t.size)
    day = np.datetime64(cal.start, "D")
    campaign_name = tuple(
        f"{str(day + int(t))[:7]}-{v.CAMPAIGN_KINDS[k]}-{v.CAMPAIGN_TOPICS[p]}"
        for t, k, p in zip(campaign_t, kind, topic, strict=True)
    )
    webinar_name = tuple(
        f"{day + int(t)} {v.WEBINAR_TOPICS[p]}"
        for t, p in zip(webinar_t, webinar_topic, strict=True)
    )
    return ev.Schedule(
        campaign_t=campaign_t,
        campaign_kind=kind,
        campaign_share=rng.uniform(0.45, 0.8, campaign_t.size),
        campaign_name=campaign_name,
        webinar_t=webinar_t,
        webinar_name=webinar_name,
    )
