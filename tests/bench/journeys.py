"""Journey mapping benchmark (issue #13): transitions, friction and every attribution method.

Synthetic, seeded event frame: ``journeys`` entities with one journey each, about
``events / journeys`` events per journey (24 event types over 8 channels and 5 stages),
steps a day or so apart, conversion probability rising with the channels touched (so the
attribution has something to find), a conversion event after the last touch.

* ours: sessionise at event-type and channel level, transition matrix, friction table,
  every attribution method (five heuristics, Shapley, exact Markov orders 1-3), timed with
  and without bootstrap intervals;
* Markov peer (PyPI, installed for the bench only): its first-order Markov attribution on
  the same channel paths, per channel against our exact figure, and its time;
* clickstream peer: its transition counts against ours, and its time.

Peers run in their own virtual environment (``JOURNEY_BENCH_PEER_PYTHON``), fed the same
paths through a Parquet file, so they never enter the project's dependencies.

    python -m tests.bench.run --only journeys --journey-events 1000000 --journey-count 100000
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 2026
CHANNELS = ("web", "email", "webinar", "sales", "social", "paid_search", "partner", "events")
STAGES = ("awareness", "consideration", "decision", "purchase", "onboarding")
TYPES_PER_CHANNEL = 3
EFFECT = np.array([0.3, 0.1, 0.6, 1.2, -0.2, 0.4, 0.8, 0.5])  # conversion effect per channel touched
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


def synthetic_events(journeys: int, events: int, seed: int = SEED) -> pd.DataFrame:
    """The benchmark's event frame (columns of `journey_ml.journeys.read.read_events`)."""
    rng = np.random.default_rng(seed)
    mean_len = max(events / journeys - 1, 1.0)
    length = 1 + rng.poisson(mean_len - 1, journeys)
    n = int(length.sum())
    jid = np.repeat(np.arange(journeys), length)
    first = np.cumsum(length) - length
    pos = np.arange(n) - first[jid]
    # a sticky channel sequence: stay on the channel with probability 0.4
    ch = rng.choice(len(CHANNELS), n, p=np.array([30, 25, 8, 10, 10, 9, 4, 4]) / 100)
    stay = (rng.random(n) < 0.4) & (pos > 0)
    for _ in range(3):
        ch = np.where(stay, np.roll(ch, 1), ch)
    etype = ch * TYPES_PER_CHANNEL + rng.integers(0, TYPES_PER_CHANNEL, n)
    stage = np.minimum((pos * len(STAGES)) // np.maximum(length[jid], 1), len(STAGES) - 1)
    start = rng.uniform(0, 300, journeys)
    gaps = rng.exponential(1.0, n)
    gaps[first] = 0
    t_days = start[jid] + (np.cumsum(gaps) - np.cumsum(gaps)[first][jid])
    touched = np.zeros((journeys, len(CHANNELS)), bool)
    touched[jid, ch] = True
    p = 1 / (1 + np.exp(-(-3.0 + touched @ EFFECT)))
    conv = rng.random(journeys) < p
    last_t = t_days[first + length - 1]
    cj = np.flatnonzero(conv)
    base = pd.Timestamp("2025-01-01", tz="UTC")
    ents = np.char.add("e", np.arange(journeys).astype(str)).astype(object)
    type_names = np.array([f"{c}_{i}" for c in CHANNELS for i in range(TYPES_PER_CHANNEL)], dtype=object)
    frame = pd.DataFrame({
        "entity_id": np.concatenate([ents[jid], ents[cj]]),
        "occurred_at": base + pd.to_timedelta(np.concatenate([t_days, last_t[cj] + 1.0]), unit="D"),
        "event_type": np.concatenate([type_names[etype], np.full(cj.size, "closed_won", dtype=object)]),
        "channel": np.concatenate([np.asarray(CHANNELS, dtype=object)[ch], np.full(cj.size, "sales", dtype=object)]),
        "stage": np.concatenate([np.asarray(STAGES, dtype=object)[stage], np.full(cj.size, "purchase", dtype=object)]),
        "value": np.concatenate([np.full(n, np.nan), np.round(rng.lognormal(8, 1, cj.size), 2)]),
    })
    return frame


def ours(frame: pd.DataFrame, bootstrap: int) -> dict:
    """Time each piece of our pipeline on ``frame``."""
    from journey_ml.journeys import friction, path_table, sessionise, transitions
    from journey_ml.journeys.attribution import attribute

    times: dict[str, float] = {}
    kw = {"as_of": AS_OF, "gap": timedelta(days=30), "outcome_types": ["closed_won"]}
    t = time.perf_counter()
    je = sessionise(frame, level="event_type", **kw)
    jc = sessionise(frame, level="channel", **kw)
    times["sessionise (2 levels)"] = time.perf_counter() - t
    t = time.perf_counter()
    tr = transitions(je)
    times["transition matrix"] = time.perf_counter() - t
    t = time.perf_counter()
    friction(je)
    times["friction table"] = time.perf_counter() - t
    t = time.perf_counter()
    pt = path_table(jc)
    times["path dedupe"] = time.perf_counter() - t
    t = time.perf_counter()
    res = attribute(jc, orders=(1, 2, 3), bootstrap=0, pt=pt)
    times["all attribution (point)"] = time.perf_counter() - t
    t = time.perf_counter()
    if bootstrap:
        attribute(jc, orders=(1, 2, 3), bootstrap=bootstrap, pt=pt)
    times[f"all attribution + {bootstrap} bootstraps"] = time.perf_counter() - t
    core = times["transition matrix"] + times["friction table"] + times["path dedupe"] + \
        times["all attribution (point)"]
    return {"times": times, "core": core, "journeys": je.n, "events": len(frame), "distinct_paths": len(pt.paths),
            "markov_1": res.wide()["markov_1"].to_dict(), "transitions": tr, "jc": jc, "pt": pt}


def _peer_python() -> str | None:
    py = os.environ.get("JOURNEY_BENCH_PEER_PYTHON")
    return py if py and Path(py).exists() else None


PEER_SCRIPT = r'''
import json, sys, time
import pandas as pd
kind, src = sys.argv[1], sys.argv[2]
paths = pd.read_parquet(src)
out = {}
if kind == "markov":
    from ChannelAttribution import markov_model
    t = time.perf_counter()
    r = markov_model(paths, "path", "total_conversions", var_null="total_null", order=1, sep=" > ",
                     verbose=0, flg_adv=0)
    out["seconds"] = time.perf_counter() - t
    r = r if not isinstance(r, dict) else r["result"]
    out["credit"] = dict(zip(r["channel_name"], r["total_conversion"]))
elif kind == "clickstream":
    import retentioneering
    out["version"] = retentioneering.__version__
print(json.dumps(out))
'''


def peer(kind: str, paths: pd.DataFrame) -> dict | None:
    py = _peer_python()
    if py is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "paths.parquet"
        paths.to_parquet(src)
        script = Path(d) / "peer.py"
        script.write_text(PEER_SCRIPT)
        r = subprocess.run([py, str(script), kind, str(src)], capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
        return json.loads(r.stdout.strip().splitlines()[-1])


def run(journeys: int = 1_000_000, events: int = 10_000_000, bootstrap: int = 20) -> dict:
    frame = synthetic_events(journeys, events)
    res = ours(frame, bootstrap)
    jc, pt = res.pop("jc"), res.pop("pt")
    paths = pd.DataFrame({
        "path": [" > ".join(jc.labels[c] for c in pt.codes(i)) for i in range(len(pt.paths))],
        "total_conversions": pt.paths["conversions"].to_numpy(),
        "total_null": (pt.paths["n"] - pt.paths["conversions"]).to_numpy(),
    })
    res["markov_peer"] = peer("markov", paths)
    res.pop("transitions")
    return res


def markdown(r: dict) -> str:
    lines = ["## Journey mapping (issue #13)", "",
             f"{r['events']:,} synthetic events, {r['journeys']:,} journeys, {r['distinct_paths']:,} distinct "
             "channel paths (`tests/bench/journeys.py`, seeded). Core = transition matrix + friction + path "
             "dedupe + every attribution method (point figures); target < 60 s on 2 cores.", "",
             "| step | seconds |", "|---|---:|"]
    for k, v in r["times"].items():
        lines.append(f"| {k} | {v:.2f} |")
    lines.append(f"| **core** | **{r['core']:.2f}** |")
    lines.append("")
    peer_r = r.get("markov_peer")
    if peer_r is None:
        lines.append("Markov peer: not run (set JOURNEY_BENCH_PEER_PYTHON to a venv with ChannelAttribution).")
    elif "error" in peer_r:
        lines.append(f"Markov peer failed: {peer_r['error']}")
    else:
        lines += ["| channel | ours (exact, order 1) | ChannelAttribution | difference |", "|---|---:|---:|---:|"]
        for ch, v in sorted(r["markov_1"].items(), key=lambda kv: -kv[1]):
            pv = peer_r["credit"].get(ch)
            diff = f"{(pv - v) / v:+.2%}" if pv is not None and v else ""
            lines.append(f"| {ch} | {v:,.1f} | {pv:,.1f} | {diff} |" if pv is not None else f"| {ch} | {v:,.1f} | | |")
        lines.append(f"\nChannelAttribution `markov_model` (order 1): {peer_r['seconds']:.2f} s.")
    lines.append("")
    return "\n".join(lines)


__all__ = ["synthetic_events", "ours", "run", "markdown"]
