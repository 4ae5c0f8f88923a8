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

Peers run in their own virtual environments (made on first use under
``.journey/bench/peers``, see ``tests/bench/peer_env.py``; ``JOURNEY_BENCH_PEER_PYTHON`` and
``JOURNEY_BENCH_CLICKSTREAM_PYTHON`` name others), fed the same data through a Parquet
file, so they never enter the project's dependencies.

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

from tests.bench.peer_env import peer_python

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
    type_names = [f"{c}_{i}" for c in CHANNELS for i in range(TYPES_PER_CHANNEL)] + ["closed_won"]
    # integer entity ids and categoricals: 10M rows stay small in memory
    frame = pd.DataFrame({
        "entity_id": np.concatenate([jid, cj]),
        "occurred_at": base + pd.to_timedelta(np.concatenate([t_days, last_t[cj] + 1.0]), unit="D"),
        "event_type": pd.Categorical.from_codes(np.concatenate([etype, np.full(cj.size, len(type_names) - 1)]),
                                                type_names),
        "channel": pd.Categorical.from_codes(np.concatenate([ch, np.full(cj.size, CHANNELS.index("sales"))]),
                                             list(CHANNELS)),
        "stage": pd.Categorical.from_codes(np.concatenate([stage, np.full(cj.size, STAGES.index("purchase"))]),
                                           list(STAGES)),
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
    attribute(jc, orders=(1, 2, 3), bootstrap=0, pt=pt)
    times["all attribution (point)"] = time.perf_counter() - t
    t = time.perf_counter()
    if bootstrap:
        attribute(jc, orders=(1, 2, 3), bootstrap=bootstrap, pt=pt)
    times[f"all attribution + {bootstrap} bootstraps"] = time.perf_counter() - t
    from journey_ml.journeys.attribution import removal_effects

    markov, markov_s = {}, {}
    for o in (1, 2, 3):
        t = time.perf_counter()
        _, eff = removal_effects(pt, len(jc.labels), o)
        markov_s[o] = time.perf_counter() - t
        markov[o] = dict(zip(jc.labels, eff / eff.sum() * jc.conversions, strict=True))
    core = times["transition matrix"] + times["friction table"] + times["path dedupe"] + \
        times["all attribution (point)"]
    dense_gap = _dense_check(jc, markov[1])
    return {"times": times, "core": core, "dense_check": dense_gap, "journeys": je.n, "events": len(frame), "distinct_paths": len(pt.paths),
            "markov": markov, "markov_seconds": markov_s, "transitions": tr, "jc": jc, "pt": pt, "je": je}


def _dense_check(jc, credit: dict[str, float]) -> float:
    """Largest relative gap between our order-1 figures and an independent dense solve
    (numpy, from the journeys' consecutive steps, no path dedupe): the exactness check."""
    k = len(jc.labels)
    code = jc.steps["code"].to_numpy()
    first, stop = jc.bounds()
    conv = jc.table["converted"].to_numpy()
    s = k + 1  # 0 = start, 1..k channels
    counts = np.zeros((s, s + 2))  # + conversion, null
    np.add.at(counts, (np.zeros(jc.n, int), code[first] + 1), 1)
    inner = np.ones(code.size, bool)
    inner[first] = False
    idx = np.flatnonzero(inner)
    np.add.at(counts, (code[idx - 1] + 1, code[idx] + 1), 1)
    np.add.at(counts, (code[stop - 1] + 1, np.where(conv, s, s + 1)), 1)
    p = counts / counts.sum(axis=1, keepdims=True)

    def solve(dead: int | None) -> float:
        q, r = p[:, :s].copy(), p[:, s].copy()
        if dead is not None:
            q[dead], r[dead] = 0, 0
        return float(np.linalg.solve(np.eye(s) - q, r)[0])

    base = solve(None)
    eff = np.array([1 - solve(i + 1) / base for i in range(k)])
    dense = eff / eff.sum() * jc.conversions
    return max(abs(dense[i] - credit[ch]) / credit[ch] for i, ch in enumerate(jc.labels) if credit[ch])


MARKOV_PEER = ["ChannelAttribution", "matplotlib", "pandas", "pyarrow"]
CLICKSTREAM_PEER = ["retentioneering", "pyarrow"]


PEER_SCRIPT = r'''
import json, sys, time
from importlib.metadata import version
import pandas as pd
kind, src = sys.argv[1], sys.argv[2]
paths = pd.read_parquet(src)
out = {}
if kind == "markov":
    from ChannelAttribution import markov_model
    out["version"] = version("ChannelAttribution")
    # its default number of simulations (nsim_start=1e5), then ten times that: the peer
    # estimates removal effects by simulation, so the gap to the exact figure should shrink
    for tag, nsim in (("", 1e5), ("_10x", 1e6)):
        for order in (1, 2, 3):
            t = time.perf_counter()
            r = markov_model(paths, "path", "total_conversions", var_null="total_null", order=order, sep=">",
                             verbose=0, nsim_start=nsim)
            out[f"seconds_{order}{tag}"] = time.perf_counter() - t
            out[f"credit_{order}{tag}"] = dict(zip(r["channel_name"], r["total_conversions"]))
print(json.dumps(out))
'''


def peer(kind: str, paths: pd.DataFrame) -> dict | None:
    py, why = peer_python("markov", MARKOV_PEER, "JOURNEY_BENCH_PEER_PYTHON")
    if py is None:
        return {"error": f"not run: {why}"}
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "paths.parquet"
        paths.to_parquet(src)
        script = Path(d) / "peer.py"
        script.write_text(PEER_SCRIPT)
        r = subprocess.run([py, str(script), kind, str(src)], capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
        return json.loads(r.stdout.strip().splitlines()[-1])


def clickstream_peer(je, tr: pd.DataFrame) -> dict | None:
    """retentioneering's transition counts against ours on the same event-type steps."""
    py, why = peer_python("clickstream", CLICKSTREAM_PEER, "JOURNEY_BENCH_CLICKSTREAM_PYTHON")
    if py is None:
        return {"error": f"not run: {why}"}
    names = np.asarray(je.labels, dtype=object)
    steps = pd.DataFrame({"user_id": je.steps["journey"].to_numpy(), "event": names[je.steps["code"].to_numpy()],
                          "timestamp": pd.to_datetime(je.steps["at"].to_numpy(), utc=True).tz_localize(None)})
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "steps.parquet"
        steps.to_parquet(src)
        script = Path(d) / "peer.py"
        script.write_text(CLICKSTREAM_SCRIPT)
        r = subprocess.run([py, str(script), str(src)], capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            return {"error": (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]}
        got = json.loads(r.stdout.strip().splitlines()[-1])
    ours_inner = tr[~tr["from"].str.startswith("(") & ~tr["to"].str.startswith("(")]
    ours_map = {(a, b): int(c) for a, b, c in zip(ours_inner["from"], ours_inner["to"], ours_inner["count"],
                                                  strict=True)}
    peer_map = {(a, b): int(c) for a, b, c in got["edges"]}
    same = sum(1 for k, v in ours_map.items() if peer_map.get(k) == v)
    return {"version": got.get("version"), "seconds": got["seconds"], "pairs_ours": len(ours_map),
            "pairs_peer": len(peer_map), "pairs_identical": same,
            "total_ours": sum(ours_map.values()), "total_peer": sum(peer_map.values())}


CLICKSTREAM_SCRIPT = r'''
import json, os, sys, time
os.environ["RETENTIONEERING_NO_TRACK"] = "1"  # no analytics from the benchmark
os.environ["DO_NOT_TRACK"] = "1"
import pandas as pd
import retentioneering
steps = pd.read_parquet(sys.argv[1])
t = time.perf_counter()
stream = retentioneering.Eventstream(steps)
m = stream.transition_graph_data(edge_weight="count")
seconds = time.perf_counter() - t
inner = [c for c in m.columns if c not in ("path_start", "path_end")]
m = m.loc[[i for i in m.index if i not in ("path_start", "path_end")], inner]
edges = [[a, b, int(m.at[a, b])] for a in m.index for b in inner if m.at[a, b]]
print(json.dumps({"version": retentioneering.__version__, "seconds": seconds, "edges": edges}))
'''


def run(journeys: int = 1_000_000, events: int = 10_000_000, bootstrap: int = 20) -> dict:
    load_before = os.getloadavg()
    frame = synthetic_events(journeys, events)
    res = ours(frame, bootstrap)
    jc, pt, je = res.pop("jc"), res.pop("pt"), res.pop("je")
    paths = pd.DataFrame({
        "path": [" > ".join(jc.labels[c] for c in pt.codes(i)) for i in range(len(pt.paths))],
        "total_conversions": pt.paths["conversions"].to_numpy(),
        "total_null": (pt.paths["n"] - pt.paths["conversions"]).to_numpy(),
    })
    res["markov_peer"] = peer("markov", paths)
    tr = res.pop("transitions")
    res["clickstream_peer"] = clickstream_peer(je, tr)
    res["load"] = (load_before, os.getloadavg())
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
    if "load" in r:
        lines.append("Machine load average (1 / 5 / 15 min) " + " before, ".join(
            " / ".join(f"{x:.1f}" for x in la) for la in r["load"]) + " after (2 cores).")
        lines.append("")
    lines.append(f"Exactness check: an independent dense solve of the order-1 chain (numpy, from the raw consecutive "
                 f"steps) agrees with our figures to {r['dense_check']:.1e} (largest relative gap).")
    lines.append("")
    peer_r = r.get("markov_peer")
    if peer_r is None:
        lines.append("Markov peer: not run (set JOURNEY_BENCH_PEER_PYTHON to a venv with ChannelAttribution).")
    elif "error" in peer_r:
        lines.append(f"Markov peer: {peer_r['error']}")
    else:
        lines += _markov_peer_lines(r, peer_r)
    cs = r.get("clickstream_peer")
    lines.append("")
    if cs is None:
        lines.append("Clickstream peer: not run (set JOURNEY_BENCH_CLICKSTREAM_PYTHON to a venv with retentioneering).")
    elif "error" in cs:
        lines.append(f"Clickstream peer: {cs['error']}")
    else:
        lines += [f"Transition counts (event-type steps) against retentioneering {cs['version']}: "
                  f"{cs['pairs_identical']:,} of {cs['pairs_ours']:,} step pairs identical "
                  f"(peer has {cs['pairs_peer']:,} pairs; totals {cs['total_ours']:,} ours, {cs['total_peer']:,} "
                  f"peer); peer {cs['seconds']:.2f} s vs ours {r['times']['transition matrix']:.2f} s "
                  f"({cs['seconds'] / max(r['times']['transition matrix'], 1e-9):.1f}x)."]
    lines.append("")
    return "\n".join(lines)


def _markov_peer_lines(r: dict, peer_r: dict) -> list[str]:
    """Per channel: our exact figure, the peer's gap at its default simulation count and at
    ten times it, per order; then the largest gaps and the times."""
    total = sum(r["markov"][1].values())
    runs = [("", "default"), ("_10x", "10x")] if "credit_1_10x" in peer_r else [("", "default")]

    def gap(o: int, tag: str, ch: str) -> float:
        ours_v, pv = r["markov"][o][ch], peer_r[f"credit_{o}{tag}"].get(ch)
        return (pv - ours_v) / ours_v if pv is not None and ours_v else float("nan")

    head = " | ".join(f"ours o{o}" + "".join(f" | {name} o{o}" for _, name in runs) for o in (1, 2, 3))
    lines = [f"Markov attribution per channel: ours (exact, from the absorbing chain's fundamental matrix) "
             f"against ChannelAttribution {peer_r.get('version', '')} `markov_model` on the same deduplicated "
             "paths with their counts. The peer estimates removal effects by simulation: it ran at its default "
             "(`nsim_start=1e5`)" + (" and at ten times that (`nsim_start=1e6`)" if len(runs) > 1 else "")
             + "; each peer cell is its gap to our exact figure.", "",
             f"| channel | share | {head} |", "|---|---:|" + "---:|" * (3 * (1 + len(runs)))]
    worst = {(o, tag): 0.0 for o in (1, 2, 3) for tag, _ in runs}
    for ch, v in sorted(r["markov"][1].items(), key=lambda kv: -kv[1]):
        cells = []
        for o in (1, 2, 3):
            cells.append(f"{r['markov'][o][ch]:,.1f}")
            for tag, _ in runs:
                d = gap(o, tag, ch)
                if v / total >= 0.01 and d == d:
                    worst[o, tag] = max(worst[o, tag], abs(d))
                cells.append(f"{d:+.2%}" if d == d else "")
        lines.append(f"| {ch} | {v / total:.1%} | " + " | ".join(cells) + " |")
    lines += ["", "| | order 1 | order 2 | order 3 |", "|---|---:|---:|---:|"]
    for tag, name in runs:
        lines.append(f"| largest gap, channels >= 1% share: peer {name} | "
                     + " | ".join(f"{worst[o, tag]:.2%}" for o in (1, 2, 3)) + " |")
    lines.append("| ours: seconds (exact, all channels' removal effects) | "
                 + " | ".join(f"{r['markov_seconds'][o]:.2f}" for o in (1, 2, 3)) + " |")
    for tag, name in runs:
        lines.append(f"| ChannelAttribution {name}: seconds | "
                     + " | ".join(f"{peer_r[f'seconds_{o}{tag}']:.2f}" for o in (1, 2, 3)) + " |")
        lines.append(f"| time ratio (peer {name} / ours) | " + " | ".join(
            f"{peer_r[f'seconds_{o}{tag}'] / max(r['markov_seconds'][o], 1e-9):.1f}x" for o in (1, 2, 3)) + " |")
    return lines


__all__ = ["synthetic_events", "ours", "run", "markdown"]
