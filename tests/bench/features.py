"""Point-in-time feature benchmark: `build_features` on PostgreSQL vs a pandas peer.

Synthetic data straight into PostgreSQL (numpy -> Arrow CSV -> COPY; the simulator is far
too slow for 20M events): `contacts` contacts in contacts/5 accounts, `events` events spread
over 2025-01-01 .. 2026-06-30 with a skewed activity per contact, taxonomy event types with
realistic weights (customer events rare), email events carrying only the contact, ~1% of
contacts opted out. The task is a contact-level prospects task (`contact_conversion`, added
to an in-memory copy of the packaged configuration); features as of 2026-06-01.

* ours: `build_features(engine, config, "contact_conversion", T)` - two aggregate queries
  over the warehouse plus small look-ups, results fetched by COPY into pandas;
* peer: a straightforward pandas implementation: `pd.read_sql` of the events before T
  (window columns for the last 90 days, (entity, time, type) for all history), groupby
  entity, the same definitions for: events/active days/channel/stage/key-event counts per
  window, days since last/first event and per key event, trend_30d and usage_decline_30d
  (124 of our 147 contact features: no committee/stage-duration/value/renewal/firmographic).

Both run in child processes (peak RSS is theirs) against the same freshly loaded database.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from journey_ml.db.copy import copy_arrow
from tests.bench.common import ROOT, Measure, conninfo, drop_database, fresh_database, median

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 6, 30, tzinfo=UTC)
TASK = "contact_conversion"
ROLES = ["economic_buyer", "technical_evaluator", "procurement", "champion", "end_user", "influencer"]
INDUSTRIES = ["Software", "Media", "Retail", "Manufacturing", "Financial Services", "Healthcare",
              "Education", "Logistics", "Energy", "Telecom"]
COUNTRIES = ["United States", "United Kingdom", "Germany", "France", "Japan", "Canada", "Brazil",
             "India", "Australia", "Spain"]
# relative frequency of each taxonomy event type (customer events rare: most contacts stay prospects)
WEIGHTS = {
    "page_view": 30, "blog_view": 8, "pricing_page_view": 3, "comparison_page_view": 1.5,
    "case_study_view": 1.5, "content_download": 1, "demo_request": 0.3, "trial_signup": 0.2,
    "docs_view": 4, "email_sent": 15, "email_open": 7, "email_click": 2, "email_unsubscribe": 0.1,
    "webinar_registered": 0.5, "webinar_attended": 0.3, "sales_call": 0.5, "meeting": 0.4,
    "demo_held": 0.2, "proposal_sent": 0.1, "negotiation": 0.05, "closed_won": 0.02,
    "closed_lost": 0.03, "ticket_opened": 0.6, "ticket_escalated": 0.1, "ticket_closed": 0.5,
    "subscription_started": 0.02, "invoice_paid": 0.05, "payment_failed": 0.02, "renewal": 0.01,
    "upgrade": 0.02, "downgrade": 0.01, "cancellation": 0.01, "login": 10, "feature_used": 8,
    "onboarding_completed": 0.05,
}


def bench_config():
    """The packaged configuration plus a contact-level prospects task."""
    from journey_ml.config import TaskConfig, load_config

    cfg, _ = load_config()
    task = TaskConfig(entity="contact", outcome="conversion", horizon_days=90, population="prospects",
                      customer_events=["closed_won", "subscription_started", "invoice_paid", "renewal"],
                      lookback_days=180)
    return cfg.model_copy(update={"tasks": {**cfg.tasks, TASK: task}})


def _ids(prefix: str, idx: np.ndarray, width: int):
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.utf8_lpad(pa.array(idx.astype(np.int64)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def generate(db: str, events: int, contacts: int, seed: int = 11, log=print) -> dict:
    """Load a migrated database with synthetic accounts, contacts and events; returns counts."""
    import psycopg
    import pyarrow as pa
    import pyarrow.compute as pc

    from journey_ml.db import make_engine, upgrade

    cfg = bench_config()
    engine = make_engine(db)
    upgrade(engine)
    engine.dispose()
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    n_acc = max(contacts // 5, 1)
    now = pa.scalar(datetime(2026, 7, 1, tzinfo=UTC), pa.timestamp("us", tz="UTC"))
    span_s = int((END - START).total_seconds())
    start_us = int(START.timestamp() * 1_000_000)

    with psycopg.connect(conninfo(db)) as conn:
        conn.execute("SET synchronous_commit = off")
        acc = pa.table({
            "account_id": _ids("A", np.arange(n_acc), 8),
            "name": _ids("Company ", np.arange(n_acc), 8),
            "industry": pa.array(np.array(INDUSTRIES)[rng.integers(0, len(INDUSTRIES), n_acc)]),
            "employees": pa.array(np.round(rng.lognormal(4.5, 1.5, n_acc)).astype(np.int64) + 1),
            "annual_revenue": pa.array(np.round(rng.lognormal(16, 1.5, n_acc), -3)),
            "country": pa.array(np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n_acc)]),
            "source": pa.array(["bench"] * n_acc),
            "updated_at": pa.array([now.as_py()] * n_acc, pa.timestamp("us", tz="UTC")),
        })
        copy_arrow(conn, "accounts", acc, chunk_rows=500_000)
        con_acc = rng.integers(0, n_acc, contacts)
        created = start_us + rng.integers(0, span_s, contacts) * 1_000_000
        con = pa.table({
            "contact_id": _ids("C", np.arange(contacts), 9),
            "account_id": _ids("A", con_acc, 8),
            "role": pa.array(np.array(ROLES)[rng.integers(0, len(ROLES), contacts)]),
            "opted_out": pa.array(rng.random(contacts) < 0.01),
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
            "source": pa.array(["bench"] * contacts),
            "updated_at": pa.array([now.as_py()] * contacts, pa.timestamp("us", tz="UTC")),
        })
        copy_arrow(conn, "contacts", con, chunk_rows=500_000)
        conn.commit()

        # drop the events indexes for the load, rebuild them afterwards (as a bulk load would)
        conn.execute("ALTER TABLE events DROP CONSTRAINT pk_events")
        for ix in ("ix_events_contact_time", "ix_events_account_time", "ix_events_occurred_at"):
            conn.execute(f"DROP INDEX {ix}")
        conn.commit()

        types = list(WEIGHTS)
        p = np.array([WEIGHTS[t] for t in types])
        p = p / p.sum()
        channel = np.array([cfg.taxonomy[t].channel for t in types], dtype=object)
        stage = np.array([cfg.taxonomy[t].stage for t in types], dtype=object)
        type_arr = np.array(types, dtype=object)
        # activity per contact: heavy-tailed (a few very active people, many occasional)
        activity = rng.pareto(1.5, contacts) + 0.2
        cdf = np.cumsum(activity / activity.sum())
        # activity grows over time (sqrt-shaped density); rows arrive roughly in time order,
        # as appended exports do (what the BRIN index on occurred_at relies on)
        all_sec = np.sort((np.sqrt(rng.random(events)) * span_s).astype(np.int64))
        chunk = 1_000_000
        done = 0
        while done < events:
            n = min(chunk, events - done)
            who = np.minimum(np.searchsorted(cdf, rng.random(n)), contacts - 1)
            ti = rng.choice(len(types), n, p=p)
            sec = all_sec[done:done + n]
            ch = channel[ti]
            email = ch == "email"
            acc_ids = pc.if_else(pa.array(email), pa.scalar(None, pa.string()), _ids("A", con_acc[who], 8))
            billing = ch == "billing"
            value = np.where(billing, np.round(rng.lognormal(7, 1, n), 2),
                             np.where(type_arr[ti] == "page_view", rng.integers(1, 600, n), np.nan))
            renew = billing & (rng.random(n) < 0.5)
            renew_day = (START.date().toordinal() + sec // 86400 + 365 - 719163).astype("datetime64[D]")
            props = np.where(renew, np.char.add(np.char.add('{"renewal_date": "', renew_day.astype(str)), '"}'),
                             None)
            tbl = pa.table({
                "source": pa.array(ch),
                "event_id": _ids("e", np.arange(done, done + n), 10),
                "occurred_at": pa.array(start_us + sec * 1_000_000 + rng.integers(0, 1_000_000, n),
                                        pa.timestamp("us", tz="UTC")),
                "contact_id": _ids("C", who, 9),
                "account_id": acc_ids,
                "event_type": pa.array(type_arr[ti]),
                "channel": pa.array(ch),
                "stage": pa.array(stage[ti]),
                "value": pa.array(value, mask=np.isnan(value)),
                "properties": pa.array(props, pa.string()),
            })
            copy_arrow(conn, "events", tbl, chunk_rows=500_000)
            conn.commit()
            done += n
            log(f"  features: loaded {done:,} events ({time.perf_counter() - t0:.0f} s)")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (source, event_id)")
        conn.execute("CREATE INDEX ix_events_contact_time ON events (contact_id, occurred_at)")
        conn.execute("CREATE INDEX ix_events_account_time ON events (account_id, occurred_at)")
        conn.execute("CREATE INDEX ix_events_occurred_at ON events USING brin (occurred_at)")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE events")
        conn.execute("VACUUM ANALYZE contacts")
        conn.execute("VACUUM ANALYZE accounts")
    return {**_counts(db), "load_seconds": time.perf_counter() - t0}


def _counts(db: str) -> dict:
    """What a generated database holds (events, contacts, accounts; events before T and in
    the last 90 days)."""
    import psycopg

    one = lambda conn, sql, *a: conn.execute(sql, a).fetchone()[0]  # noqa: E731
    with psycopg.connect(conninfo(db)) as conn:
        return {"events": one(conn, "SELECT count(*) FROM events"),
                "contacts": one(conn, "SELECT count(*) FROM contacts"),
                "accounts": one(conn, "SELECT count(*) FROM accounts"),
                "events_before_t": one(conn, "SELECT count(*) FROM events WHERE occurred_at < %s", AS_OF),
                "events_in_90d": one(conn, "SELECT count(*) FROM events WHERE occurred_at >= %s AND occurred_at < %s",
                                     AS_OF.replace(month=3, day=3), AS_OF)}


def _kept_database(name: str, events: int, contacts: int, log=print) -> tuple[str, dict]:
    """A database kept between runs (``name``): reused when it holds exactly ``events``
    events and ``contacts`` contacts, else (re)created and generated (about 15 minutes at
    20M events on a loaded 2-core machine)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from tests.bench.common import PG_ADMIN_URL

    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists:
        try:
            got = _counts(url)
            if got["events"] == events and got["contacts"] == contacts:
                log(f"features: reusing database {name} ({events:,} events, {contacts:,} contacts)")
                return url, {**got, "load_seconds": 0.0}
        except psycopg.Error:
            pass  # not a generated database (no tables): make it again
    drop_database(url)
    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return url, generate(url, events, contacts, log=log)


def _agree(ours: Path, peer: Path) -> bool:
    """Do the two contenders' frames match on the shared columns (rows, order, values)?"""
    import pandas as pd

    a, b = pd.read_parquet(ours), pd.read_parquet(peer)
    if list(a.index) != list(b.index) or list(a.columns) != list(b.columns):
        return False
    x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
    return bool(np.allclose(x, y, rtol=1e-9, atol=1e-6, equal_nan=True))


def run(events: int = 20_000_000, contacts: int = 1_000_000, repeat: int = 3, peer: bool = True,
        small_events: int | None = 2_000_000, peer_max_events: int = 5_000_000, keep: str | None = None,
        log=print) -> dict:
    """Run the feature benchmark at ``events`` (and at ``small_events``, same events per
    contact); returns the figures for BENCHMARKS.md. The peer runs where the data has at
    most ``peer_max_events`` events (it holds all of them in memory). ``keep``: name of a
    database kept for the largest scale between runs (generated once, never dropped)."""
    import os
    import tempfile

    out: dict = {"repeat": repeat, "as_of": AS_OF.isoformat(), "peer_max_events": peer_max_events}
    scales = [("large", events, contacts)]
    if small_events and small_events < events:
        scales.append(("small", small_events, max(contacts * small_events // events, 1000)))
    for name, n_ev, n_con in scales:
        kept = keep is not None and name == "large"
        if kept:
            db, info = _kept_database(keep, n_ev, n_con, log=log)
        else:
            db = fresh_database("journey_bench_features")
        try:
            if not kept:
                log(f"features ({name}): generating {n_ev:,} events for {n_con:,} contacts ...")
                info = generate(db, n_ev, n_con, log=log)
                log(f"  loaded and indexed in {info['load_seconds']:.0f} s")
            ours, theirs = [], []
            load = os.getloadavg()[0]
            with tempfile.TemporaryDirectory() as tmp:
                for i in range(repeat):
                    m = _run_child("ours", db, Path(tmp) / "ours.parquet" if i == 0 else None)
                    ours.append(m)
                    log(f"  ours  run {i + 1}: {m.output['rows']:,} x {m.output['columns']} in {m.seconds:.1f} s, "
                        f"peak {m.peak_rss_mb:,.0f} MB")
                if peer and n_ev <= peer_max_events:
                    for i in range(repeat):
                        m = _run_child("pandas", db, Path(tmp) / "peer.parquet" if i == 0 else None)
                        theirs.append(m)
                        log(f"  peer  run {i + 1}: {m.output['rows']:,} x {m.output['columns']} in "
                            f"{m.seconds:.1f} s, peak {m.peak_rss_mb:,.0f} MB")
                agree = _agree(Path(tmp) / "ours.parquet", Path(tmp) / "peer.parquet") if theirs else None
            out[name] = {
                **info,
                "rows": ours[0].output["rows"], "columns": ours[0].output["columns"],
                "ours_seconds": median([m.seconds for m in ours]),
                "ours_runs": [round(m.seconds, 1) for m in ours],
                "ours_peak_rss_mb": max(m.peak_rss_mb for m in ours),
                "ours_phases": ours[0].output.get("phases", {}),
                "peer_seconds": median([m.seconds for m in theirs]) if theirs else None,
                "peer_runs": [round(m.seconds, 1) for m in theirs],
                "peer_peak_rss_mb": max(m.peak_rss_mb for m in theirs) if theirs else None,
                "peer_columns": theirs[0].output["columns"] if theirs else None,
                "peer_agrees": agree,
                "load_before": round(load, 2),
                "load_after": round(os.getloadavg()[0], 2),
            }
            if theirs:
                out[name]["x_peer"] = out[name]["peer_seconds"] / out[name]["ours_seconds"]
        finally:
            if not kept:
                drop_database(db)
    return out


def _row(name: str, r: dict) -> str:
    peer = (f"{r['peer_seconds']:.1f} s ({r['peer_peak_rss_mb']:,.0f} MB)" if r.get("peer_seconds") else "not run")
    ratio = f"{r['x_peer']:.1f}x" if r.get("x_peer") else "-"
    return (f"| {name} | {r['events']:,} | {r['contacts']:,} | {r['events_in_90d']:,} | {r['rows']:,} | "
            f"{r['ours_seconds']:.1f} s ({r['ours_peak_rss_mb']:,.0f} MB) | {peer} | {ratio} |")


def markdown(r: dict) -> str:
    ok = lambda c: "met" if c else "**not met**"  # noqa: E731
    scales = [n for n in ("large", "small") if n in r]
    rows = [_row(n, r[n]) for n in scales]
    big = r["large"]
    full = big["events"] >= 20_000_000 and big["contacts"] >= 1_000_000
    target = (f"| features as of one date, {big['contacts']:,} contacts / {big['events']:,} events, "
              f"under 30 s | {big['ours_seconds']:.1f} s | "
              + (ok(big["ours_seconds"] < 30) if full else "not measured at full size") + " |")
    agree = [f"{n}: {'identical' if r[n].get('peer_agrees') else 'DIFFERENT'}"
             for n in scales if r[n].get("peer_agrees") is not None]
    peer_cols = next((r[n]["peer_columns"] for n in scales if r[n].get("peer_columns")), None)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in big.get("ours_phases", {}).items())
    loads = ", ".join(f"{n}: {r[n].get('load_before', '?')} before / {r[n].get('load_after', '?')} after"
                      for n in scales)
    return f"""## Point-in-time features on PostgreSQL (issue #3)

Synthetic contact-level data loaded straight into PostgreSQL (numpy -> Arrow CSV -> COPY,
then indexed as the migrations define); a prospects task over contacts, features as of
{r['as_of'][:10]} ({big['columns']} features; medians of {r['repeat']} run(s), each in a fresh child process).
The pandas peer reads the events before T with `pd.read_sql` and groups by contact with the
same definitions for the windowed counts (events, active days, per channel / stage / key
event), recency (last, first, per key event) and trend features ({peer_cols or '-'} columns; committee,
stage durations, value, renewal and firmographics are ours only). It holds every event in
memory, so it runs only up to {r.get('peer_max_events', 0):,} events.
Peer and ours agree on the shared columns: {', '.join(agree) or 'not compared'}.

| scale | events | contacts | events in last 90 d | entities scored | journey-ml `build_features` | pandas peer | peer / ours |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Where our time goes (largest scale; the two `fetch.` streams run at once on two connections
sharing one snapshot: older history | recent window + pivot + renewal + firmographics):
{phases or '-'}.
Machine load (1-minute load average) around the runs: {loads}.

| target | figure | status |
|---|---|---|
{target}
"""


# --- child-process contenders ----------------------------------------------------------------

def _run_child(kind: str, db: str, frame_out: Path | None = None) -> Measure:
    """One contender in a fresh child process: its time, peak RSS and output."""
    import os
    import subprocess
    import sys

    args = [sys.executable, "-m", "tests.bench.features", "--child", kind, "--db", db]
    if frame_out is not None:
        args += ["--frame-out", str(frame_out)]
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    if p.returncode != 0:
        raise RuntimeError(f"features benchmark child {kind} failed:\n{p.stderr[-3000:]}")
    report = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
    return Measure(seconds=report["output"].pop("seconds"), peak_rss_mb=report["peak_rss_mb"],
                   output=report["output"])


def child_ours(db: str, frame_out: str | None = None) -> dict:
    """Our contender: `build_features` for the contact task as of AS_OF."""
    import logging

    from journey_ml.db import make_engine
    from journey_ml.features import build_features

    phases: dict = {}

    class _Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            phases.update(getattr(record, "phases", {}))

    lg = logging.getLogger("journey_ml.features.builder")
    lg.setLevel(logging.DEBUG)
    lg.addHandler(_Grab())
    cfg = bench_config()
    engine = make_engine(db)
    t = time.perf_counter()
    ff = build_features(engine, cfg, TASK, AS_OF)
    seconds = time.perf_counter() - t
    if frame_out:
        ff.frame[_peer_columns(cfg)].to_parquet(frame_out)
    return {"seconds": seconds, "rows": len(ff.frame), "columns": ff.frame.shape[1],
            "phases": {k: round(v, 2) for k, v in phases.items()}}


def _peer_columns(cfg) -> list[str]:
    from journey_ml.schemas import STAGES

    f = cfg.features
    chans = list(dict.fromkeys(t.channel for t in cfg.taxonomy.values()))
    cols = []
    for w in f.windows_days:
        cols += [f"events_{w}d", f"active_days_{w}d", *(f"ch_{c}_{w}d" for c in chans),
                 *(f"stage_{s}_{w}d" for s in STAGES), *(f"{k}_{w}d" for k in f.key_events)]
    cols += ["days_since_last_event", "days_since_first_event", *(f"days_since_{k}" for k in f.key_events),
             "trend_30d", "usage_decline_30d"]
    return cols


def child_pandas(db: str, frame_out: str | None = None) -> dict:
    """The straightforward pandas implementation of the shared features."""
    import pandas as pd
    import sqlalchemy as sa

    from journey_ml.db import make_engine
    from journey_ml.schemas import STAGES

    cfg = bench_config()
    task = cfg.tasks[TASK]
    f = cfg.features
    engine = make_engine(db)
    T = pd.Timestamp(AS_OF)
    day = pd.Timedelta(days=1)
    t = time.perf_counter()
    hist = pd.read_sql(sa.text(
        "SELECT e.contact_id AS entity_id, e.occurred_at, e.event_type, e.channel, e.stage "
        "FROM events e LEFT JOIN contacts c ON c.contact_id = e.contact_id "
        "WHERE e.occurred_at < :t AND e.contact_id IS NOT NULL AND NOT coalesce(c.opted_out, false)"),
        engine, params={"t": AS_OF})
    hist["occurred_at"] = pd.to_datetime(hist["occurred_at"], utc=True)
    # population: an event in the lookback, no customer event ever before T
    g = hist.groupby("entity_id")
    recent = hist.loc[hist["occurred_at"] >= T - task.lookback_days * day, "entity_id"].unique()
    customers = hist.loc[hist["event_type"].isin(task.customer_events), "entity_id"].unique()
    pop = pd.Index(np.setdiff1d(recent, customers), name="entity_id")
    cols: dict[str, pd.Series] = {}
    last, first = g["occurred_at"].max(), g["occurred_at"].min()
    chans = list(dict.fromkeys(t.channel for t in cfg.taxonomy.values()))
    win = hist[hist["occurred_at"] >= T - max(max(f.windows_days), 60) * day]
    win_day = win["occurred_at"].dt.floor("D")
    zero = pd.Series(0.0, index=pop)
    for w in f.windows_days:
        m = win["occurred_at"] >= T - w * day
        ww = win[m]
        cols[f"events_{w}d"] = ww.groupby("entity_id").size()
        cols[f"active_days_{w}d"] = win_day[m].groupby(ww["entity_id"]).nunique()
        by_ch = ww.groupby(["entity_id", "channel"]).size().unstack()
        by_st = ww.groupby(["entity_id", "stage"]).size().unstack()
        by_ev = ww[ww["event_type"].isin(f.key_events)].groupby(["entity_id", "event_type"]).size().unstack()
        for c in chans:
            cols[f"ch_{c}_{w}d"] = by_ch.get(c, zero)
        for s in STAGES:
            cols[f"stage_{s}_{w}d"] = by_st.get(s, zero)
        for k in f.key_events:
            cols[f"{k}_{w}d"] = by_ev.get(k, zero)
    out = pd.DataFrame({k: v.reindex(pop) for k, v in cols.items()}).fillna(0.0)
    more: dict[str, pd.Series] = {}
    more["days_since_last_event"] = (T - last.reindex(pop)).dt.total_seconds() / 86400
    more["days_since_first_event"] = (T - first.reindex(pop)).dt.total_seconds() / 86400
    key_last = hist[hist["event_type"].isin(f.key_events)].groupby(["entity_id", "event_type"])["occurred_at"].max()
    key_last = key_last.unstack()
    for k in f.key_events:
        col = key_last[k].reindex(pop) if k in key_last else pd.Series(pd.NaT, index=pop, dtype=key_last.dtypes.iloc[0])
        more[f"days_since_{k}"] = (T - col).dt.total_seconds() / 86400
    recent30 = win["occurred_at"] >= T - 30 * day
    before30 = (win["occurred_at"] < T - 30 * day) & (win["occurred_at"] >= T - 60 * day)
    last30 = win[recent30].groupby("entity_id").size().reindex(pop).fillna(0)
    prev30 = win[before30].groupby("entity_id").size().reindex(pop).fillna(0)
    more["trend_30d"] = (last30 - prev30) / (prev30 + 1)
    prod = win["channel"] == "product"
    pl = win[recent30 & prod].groupby("entity_id").size().reindex(pop).fillna(0)
    pp = win[before30 & prod].groupby("entity_id").size().reindex(pop).fillna(0)
    more["usage_decline_30d"] = ((pp - pl) / np.maximum(pp, 1)).clip(lower=0)
    out = pd.concat([out, pd.DataFrame(more)], axis=1)
    out = out[_peer_columns(cfg)].astype("float64")
    seconds = time.perf_counter() - t
    if frame_out:
        out.to_parquet(frame_out)
    return {"seconds": seconds, "rows": len(out), "columns": out.shape[1]}


if __name__ == "__main__":  # pragma: no cover - manual use and child processes
    import argparse
    import resource

    ap = argparse.ArgumentParser()
    ap.add_argument("--child", choices=["ours", "pandas"])
    ap.add_argument("--db")
    ap.add_argument("--frame-out")
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--small-events", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--peer-max-events", type=int, default=5_000_000)
    a = ap.parse_args()
    if a.child:
        result = (child_ours if a.child == "ours" else child_pandas)(a.db, a.frame_out)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"peak_rss_mb": peak, "output": result}))
        raise SystemExit(0)
    t0 = time.perf_counter()
    res = run(events=a.events, contacts=a.contacts, repeat=a.repeat, peer=not a.no_peer,
              small_events=a.small_events or None, peer_max_events=a.peer_max_events)
    print(json.dumps(res, indent=1, default=str))
    print(markdown(res))
    print(f"benchmark took {time.perf_counter() - t0:.0f} s")
