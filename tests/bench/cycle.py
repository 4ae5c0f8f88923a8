"""The daily cycle benchmark (#10 Performance): wall time per step, and Prefect's overhead.

Setup (not timed): a simulated world of ``accounts`` companies; the newest day of web
events is held back from the exports, the rest ingested into a PostgreSQL warehouse, and
every task trained (MLflow on SQLite). That state is the template of two PostgreSQL
databases (``CREATE DATABASE ... TEMPLATE``) and two copies of the MLflow store, so both
runs start from the same stores. Then the held-back day is put into the exports and the
same cycle (`journey_ml.jobs.run_cycle`: ingest incremental -> features -> score with
reasons -> monitor, monitoring only requesting retraining) runs

* without Prefect: the job called directly;
* with Prefect: the ``journey-cycle`` flow (each step a Prefect task with its retries and
  concurrency slots, events and artifacts published) against a Prefect test server.

An untimed warm-up cycle (direct, on a third copy) runs first, so neither measured run
pays for first imports. Overhead = (flow wall time - direct wall time) / direct wall time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.bench.common import ROOT, conninfo, drop_database, fresh_database

BENCH_SALT = "bench-salt"
CACHE = ROOT / ".journey" / "bench"
RECEIVED_AT = datetime(2026, 6, 29, tzinfo=UTC)


def _hold_back_last_day(exports: Path) -> tuple[Path, int]:
    """Move the newest day's web events into their own file, outside ``exports``."""
    newest = sorted((exports / "web").glob("web-*.jsonl"))[-1]
    lines = [x for x in newest.read_text().splitlines() if x.strip()]

    def day_of(line: str) -> str:  # the exports carry dirty rows on purpose: "" for those
        try:
            ts = str(json.loads(line).get("timestamp", ""))[:10]
        except ValueError:
            return ""
        return ts if re.fullmatch(r"\d{4}-\d{2}-\d{2}", ts) else ""

    last_day = max(day_of(x) for x in lines)
    keep = [x for x in lines if day_of(x) != last_day]
    day = [x for x in lines if day_of(x) == last_day]
    newest.write_text("\n".join(keep) + "\n")
    held = exports.parent / f"web-{last_day}.jsonl"
    held.write_text("\n".join(day) + "\n")
    return held, len(day)


def _template(url: str, prefix: str) -> str:
    """A copy of the database at ``url`` (PostgreSQL's template copy)."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    from tests.bench.common import PG_ADMIN_URL

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(url).database}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def run(accounts: int = 2000, log=print) -> dict:
    from journey_ml.config import load_config
    from journey_ml.jobs import IngestParams, TrainingParams, run_ingest, run_training
    from journey_ml.runtime import Runtime
    from journey_ml.settings import Settings
    from journey_ml.simulate import SimulationParams, simulate

    tmp = Path(tempfile.mkdtemp(prefix="jml-bench-cycle-"))
    cached = CACHE / f"cycle-{accounts}"
    if not (cached / "truth").exists():
        log(f"cycle: simulating {accounts:,} accounts ...")
        simulate(SimulationParams(accounts=accounts, seed=13), cached)
    exports = tmp / "exports" / "data"
    shutil.copytree(cached, exports)
    held, new_events = _hold_back_last_day(exports)

    cfg, _ = load_config(None)
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["data_dir"] = str(exports)
    data["monitoring"].update({"retrain": "event", "alerts": [f"file://{tmp / 'alerts.jsonl'}"],
                               "reports_dir": str(tmp / "reports")})
    config = tmp / "journey.yaml"
    config.write_text(yaml.safe_dump(data))
    base_url = fresh_database("jml_ops_bench")
    urls: list[str] = [base_url]
    try:
        from journey_ml.db import upgrade

        base = Runtime.load(Settings(home=tmp / "base", database_url=base_url, pii_salt=BENCH_SALT,
                                     mlflow_tracking_uri=f"sqlite:///{tmp / 'mlflow-base.db'}"), config)
        upgrade(base.engine)
        log("cycle: ingesting the history, training every task ...")
        t0 = time.perf_counter()
        assert run_ingest(base, IngestParams(received_at=RECEIVED_AT)).ok
        trained = run_training(base, TrainingParams())
        log(f"cycle: setup {time.perf_counter() - t0:.0f}s ({len(trained.outcomes)} segment outcomes)")
        base.engine.dispose()
        shutil.copy(held, exports / "web" / held.name)  # the new day arrives
        results = _measure(base_url, tmp, config, ("warm-up", "direct", "prefect"), urls, log)
        return _figures(results, accounts=accounts, new_events=new_events, world="simulated")
    finally:
        for u in urls:
            drop_database(u)
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(base_url: str, tmp: Path, config: Path, modes: tuple[str, ...], urls: list[str], log,
             tasks: tuple[str, ...] = ()) -> dict:
    """Each mode's cycle on its own copy of the trained stores (database and MLflow)."""
    results = {}
    for mode in modes:
        url = _template(base_url, f"jml_ops_bench_{mode.replace('-', '_')}")
        urls.append(url)
        mlflow_db = tmp / f"mlflow-{mode}.db"
        shutil.copy(tmp / "mlflow-base.db", mlflow_db)
        env = {"JOURNEY_DATABASE_URL": url, "JOURNEY_MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_db}",
               "JOURNEY_PII_SALT": BENCH_SALT,  # required on a PostgreSQL warehouse
               "JOURNEY_HOME": str(tmp / "base")}  # the same artifact folder as the template's registry
        os.environ.update(env)
        log(f"cycle: {mode} ...")
        results[mode] = _one("direct" if mode == "warm-up" else mode, config, tasks)
        log(f"cycle: {mode} {results[mode]['total']:.1f}s {results[mode]['steps']}")
    return results


def _figures(results: dict, **about) -> dict:
    d, p = results["direct"], results["prefect"]
    return {**about, "entities": d["entities"], "direct": d, "prefect": p,
            "overhead": (p["total"] - d["total"]) / d["total"], "load": os.getloadavg(),
            "warm_up": "warm-up" in results}


def _new_day(path: Path, contacts: int, events: int, day: datetime, seed: int = 5) -> int:
    """One day of web events (the web export's JSONL shape) for the synthetic warehouse's contacts."""
    import numpy as np

    from tests.bench import features as fb

    rng = np.random.default_rng(seed)
    taxonomy = fb.bench_config().taxonomy
    web = [t for t in fb.WEIGHTS if taxonomy[t].channel == "web"]
    p = np.array([fb.WEIGHTS[t] for t in web])
    who = rng.integers(0, contacts, events)
    kind = rng.choice(len(web), events, p=p / p.sum())
    sec = np.sort(rng.integers(0, 86_400, events))
    t0 = int(day.timestamp())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i in range(events):
            ts = datetime.fromtimestamp(t0 + int(sec[i]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            f.write(json.dumps({"id": f"n{i:09d}", "timestamp": ts, "visitor_id": f"C{who[i]:09d}",
                                "account": None, "event": web[kind[i]],
                                "duration_s": int(rng.integers(1, 600))}) + "\n")
    return events


def run_synthetic(contacts: int = 1_000_000, events: int = 20_000_000, new_events: int = 60_000,
                  keep: str = "jml_bench_cycle_raw", warm_up: bool = False, log=print) -> dict:
    """The daily cycle at ``contacts`` entities: the features benchmark's synthetic
    warehouse (``events`` events up to 2026-06-30, kept between runs as ``keep``), the
    contact-level task ``contact_conversion`` trained on it (3 monthly as-of dates; the
    trained database ``<keep>_trained`` and its MLflow store under .journey/bench are kept
    too, so a re-run measures at once), then one new day of ``new_events`` web events
    through the cycle, job and flow, each on its own copy of the trained stores."""
    import psycopg
    from sqlalchemy.engine import make_url

    from tests.bench import features as fb
    from tests.bench.common import PG_ADMIN_URL

    raw_url, counts = fb._kept_database(keep, events, contacts, log=log)
    state = CACHE / f"cycle-synthetic-{contacts}-{events}"
    trained_name = f"{keep}_trained"
    trained_url = make_url(raw_url).set(database=trained_name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as c:
        have_db = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (trained_name,)).fetchone()
    if not (have_db and (state / "trained.json").exists()):
        drop_database(trained_url)
        shutil.rmtree(state, ignore_errors=True)
        _train_synthetic(raw_url, trained_name, state, log)
    config, exports = state / "journey.yaml", state / "exports" / "data"
    for f in (exports / "web").glob("*.jsonl"):
        f.unlink()
    n = _new_day(exports / "web" / "web-2026-06-30.jsonl", contacts, new_events, datetime(2026, 6, 30, tzinfo=UTC))
    modes = ("warm-up", "direct", "prefect") if warm_up else ("direct", "prefect")
    urls: list[str] = []
    try:
        results = _measure(trained_url, state, config, modes, urls, log, tasks=(fb.TASK,))
        return _figures(results, accounts=counts["accounts"], contacts=contacts, events=counts["events"],
                        new_events=n, world="synthetic",
                        trained=json.loads((state / "trained.json").read_text()))
    finally:
        for u in urls:
            drop_database(u)
        for m in modes:
            (state / f"mlflow-{m}.db").unlink(missing_ok=True)


def _train_synthetic(raw_url: str, trained_name: str, state: Path, log) -> None:
    """The kept trained state of `run_synthetic`: database ``trained_name`` (a copy of the
    raw warehouse, then trained) and, under ``state``, the config, the MLflow store and
    artifacts, and trained.json (what training did)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from journey_ml.jobs import TrainingParams, run_training
    from journey_ml.runtime import Runtime
    from journey_ml.settings import Settings
    from tests.bench import features as fb
    from tests.bench.common import PG_ADMIN_URL

    cfg = fb.bench_config()
    task = cfg.tasks[fb.TASK].model_copy(update={"training_as_of_count": 3})
    cfg = cfg.model_copy(update={"tasks": {**cfg.tasks, fb.TASK: task},
                                 "sources": [s for s in cfg.sources if s.name == "web"]})
    data = cfg.model_dump(mode="json", exclude_none=True)
    exports = state / "exports" / "data"
    (exports / "web").mkdir(parents=True)
    data["data_dir"] = str(exports)
    data["monitoring"].update({"retrain": "event", "alerts": [f"file://{state / 'alerts.jsonl'}"],
                               "reports_dir": str(state / "reports")})
    (state / "journey.yaml").write_text(yaml.safe_dump(data))
    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{trained_name}" TEMPLATE "{make_url(raw_url).database}"')
    url = make_url(raw_url).set(database=trained_name).render_as_string(hide_password=False)
    base = Runtime.load(Settings(home=state / "base", database_url=url, pii_salt=BENCH_SALT,
                                 mlflow_tracking_uri=f"sqlite:///{state / 'mlflow-base.db'}"), state / "journey.yaml")
    log(f"cycle: training {fb.TASK} on the synthetic warehouse ...")
    t0 = time.perf_counter()
    trained = run_training(base, TrainingParams(tasks=(fb.TASK,)))
    seconds = time.perf_counter() - t0
    log(f"cycle: trained in {seconds:.0f}s: " + "; ".join(
        f"{o.segment}: {o.status} {o.metrics.get('roc_auc', float('nan')):.3f}" for o in trained.outcomes))
    # The synthetic labels carry little signal, so the gate may stage the model below a
    # baseline (as it should). The cycle's cost does not depend on the model's quality:
    # an operator's promotion (`journey-ml models promote`) puts it in production.
    by_hand = []
    for o in trained.by_status("staged"):
        base.registry.promote(o.task, o.segment, o.version, reason="bench: the cycle needs a production model")
        by_hand.append(f"{o.model_name} v{o.version}: {o.reason}")
        log(f"cycle: promoted {o.model_name} v{o.version} by hand ({o.reason})")
    if not trained.by_status("promoted") + trained.by_status("staged"):
        raise RuntimeError(f"cycle: no model to score with: {trained}")
    base.engine.dispose()
    (state / "trained.json").write_text(json.dumps({
        "seconds": seconds, "promoted_by_hand": by_hand,
        "outcomes": [{"segment": o.segment, "status": o.status, "rows": o.rows, "positives": o.positives,
                      "roc_auc": o.metrics.get("roc_auc")} for o in trained.outcomes]}, indent=1))


def _one(mode: str, config: Path, tasks: tuple[str, ...] = ()) -> dict:
    from journey_ml.jobs import CycleParams, run_cycle
    from journey_ml.runtime import Runtime

    load0 = os.getloadavg()[0]
    if mode == "direct":
        t0 = time.perf_counter()
        res = run_cycle(Runtime.load(config_path=config), CycleParams(now=datetime.now(UTC), tasks=tasks,
                                                                    retrain="request"))
        total = time.perf_counter() - t0
    else:
        from prefect.testing.utilities import prefect_test_harness

        from flows.cycle import cycle_flow

        with prefect_test_harness(server_startup_timeout=180):
            t0 = time.perf_counter()
            res = cycle_flow(tasks=list(tasks) or None, config_path=str(config))
            total = time.perf_counter() - t0
    return {"total": total, "steps": {k: round(v, 2) for k, v in res.seconds.items()},
            "rows_loaded": res.ingest.total("rows_loaded"), "entities": res.scoring.rows_written,
            "monitored": len(res.monitoring.runs), "load_before": load0}


def markdown(r: dict) -> str:
    d, p = r["direct"], r["prefect"]
    rows = "\n".join(f"| {s} | {d['steps'][s]:.1f} | {p['steps'][s]:.1f} |" for s in d["steps"])
    if r.get("world") == "synthetic":
        t = r["trained"]
        about = (f"Synthetic warehouse of the features benchmark: {r['contacts']:,} contacts in {r['accounts']:,} "
                 f"accounts, {r['events']:,} events (2025-01-01 .. 2026-06-30), PostgreSQL; the contact-level task "
                 f"`contact_conversion` trained on it ({t['seconds']:.0f} s, not timed; "
                 + ("the gate staged it below a baseline, so it was promoted by hand: the cycle's cost does not "
                    "depend on the model's quality; " if t["promoted_by_hand"] else "")
                 + f"MLflow on SQLite). The cycle ingests one new day ({r['new_events']:,} web events), builds features, "
                 f"scores {r['entities']:,} entities with reasons, actions and next steps, and runs monitoring "
                 f"({d['monitored']} task run(s) in the job, {p['monitored']} in the flow). Each run starts from its own "
                 f"copy of the trained stores (template database); no warm-up cycle at this scale.")
    else:
        about = (f"{r['accounts']:,} simulated accounts; the cycle ingests the held-back newest day "
                 f"({r['new_events']:,} web events), builds features, scores {r['entities']:,} entities (every task, "
                 f"with reasons and actions) and runs monitoring ({d['monitored']} task run(s) in the job, "
                 f"{p['monitored']} in the flow); PostgreSQL warehouse, MLflow on SQLite. "
                 f"Same starting stores for both runs (template databases), after an untimed warm-up cycle.")
    title = "Daily cycle at 1M entities (`--only cycle`)" if r.get("world") == "synthetic" else \
        "Daily cycle (`--only cycle`)"
    return (f"## {title}\n\n{about} Load average before the job run {d['load_before']:.1f}, before the flow run "
            f"{p['load_before']:.1f}; {r['load'][0]:.1f} / {r['load'][1]:.1f} / {r['load'][2]:.1f} at the end.\n\n"
            f"| step | job, s | Prefect flow, s |\n|---|---:|---:|\n{rows}\n"
            f"| **cycle** | **{d['total']:.1f}** | **{p['total']:.1f}** |\n\n"
            f"Prefect's overhead: {r['overhead']:+.1%} of the cycle (target < 5%); "
            f"cycle {d['total'] / 60:.1f} min at {r['entities']:,} entities (target < 5 min at 1M entities)."
            + (" A negative overhead is run-to-run noise (the flow runs second, on a warmer server): one run "
               "each cannot resolve Prefect's cost below it." if r["overhead"] < 0 else "") + "\n")
