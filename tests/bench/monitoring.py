"""Monitoring alarms on the simulator: false-alarm rate and detection delay, today's rule vs #11's.

Two simulated worlds from the same seed: one stable, one with the simulator's behaviour drift
injected at a known date. One pooled conversion model trained once; then `monitor_task` at
``dates`` dates ``every`` days apart (retraining only requested, so the model stays and the
persistence counts), once per rule:

* ``before``: the rule before #11: share of drifted columns >= drift_share against the pooled
  training sample, no effect-size floor;
* ``now``: #11: drift weighted by the production model's feature importance, effect-size floor,
  reference from the newest date of the training window.

An alarm is a run whose decisions include anything but ``ok`` (alert, retrain, ...). False-alarm
rate: alarms per run on the stable world. Detection delay: runs from the injected date to the
first run whose drift is detected (1 = the first run after it).

    python -m tests.bench.run --only monitoring
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

TASK = "conversion"


@dataclass(frozen=True)
class Scenario:
    accounts: int = 500
    seed: int = 5
    end: date = date(2026, 12, 31)
    train_at: datetime = datetime(2025, 12, 1, tzinfo=UTC)
    first: datetime = datetime(2025, 12, 8, tzinfo=UTC)  # first monitoring date
    every: int = 14
    dates: int = 22
    drift_from: date = date(2026, 6, 1)
    drift_runs_before_onset: int = 3  # the drifted world is walked from a few runs before the onset


RULES = {
    "before": {"drift_rule": "share", "drift_reference": "training_sample", "min_effect": 0.0},
    "window": {"drift_rule": "weighted", "drift_reference": "recent_window", "min_effect": 0.1},
    "trained": {"drift_rule": "weighted", "drift_reference": "training_population", "min_effect": 0.1},
    "now": {"drift_rule": "weighted", "drift_reference": "previous_run", "min_effect": 0.1},
}
NAMES = {"before": "before #11: share of columns, pooled training sample, no effect floor",
         "window": "importance-weighted, effect floor 0.1, newest date of the training window",
         "trained": "importance-weighted, effect floor 0.1, population at the training as-of",
         "now": "importance-weighted, effect floor 0.1, population of the previous run (shipped)"}


def scenario_config(rule: str):
    """The monitoring scenario's small world (one task, pooled model), with ``rule``'s drift settings."""
    from journey_ml.config import load_config
    from tests.monitoring.test_scenario import scenario_config as small_world

    cfg = small_world(Path("/dev/null"))
    defaults = load_config(None)[0].monitoring.defaults  # the shipped thresholds, not the scenario's
    return cfg.model_copy(update={"monitoring": cfg.monitoring.model_copy(update={
        "alerts": [], "evidently_reports": False, "defaults": defaults.model_copy(update=RULES[rule])})})


def _world(root: Path, s: Scenario, drift: bool):
    from journey_ml.db import make_engine, upgrade
    from journey_ml.ingest import ingest_all
    from journey_ml.registry import Registry
    from journey_ml.simulate import SimulationParams, simulate
    from journey_ml.training import GLOBAL, prepare_training, train_segment

    simulate(SimulationParams(accounts=s.accounts, seed=s.seed, end=s.end,
                              drift_from=s.drift_from if drift else None), root / "exports")
    cfg = scenario_config("now")
    engine = make_engine(f"sqlite:///{root / 'warehouse.db'}")
    upgrade(engine)
    ingest_all(engine, cfg, data_dir=root / "exports", salt="bench",
               received_at=datetime.combine(s.end, datetime.min.time(), UTC) + timedelta(days=1))
    registry = Registry(f"sqlite:///{root / 'mlflow.db'}", engine, experiment="bench-monitoring",
                        artifact_location=str(root / "artifacts"))
    out = train_segment(prepare_training(engine, cfg, TASK, s.train_at), GLOBAL, cfg, registry, engine)
    assert out.status == "promoted", out.reason
    return engine, registry


def _walk(engine, registry, s: Scenario, rule: str, root: Path, skip: int = 0) -> list[dict]:
    from journey_ml.db.models import MonitorDecision, MonitorRun
    from journey_ml.monitoring.runner import monitor_task

    with engine.begin() as conn:  # each rule starts from no monitoring history
        conn.execute(sa.delete(MonitorDecision.__table__))
        conn.execute(sa.delete(MonitorRun.__table__))
    cfg = scenario_config(rule)
    rows = []
    for i in range(skip, s.dates):
        t = s.first + timedelta(days=i * s.every)
        r = monitor_task(engine, registry, cfg, TASK, t, reports_dir=root / f"reports-{rule}", now=t, retrain=None)
        seg = r.segments[0]
        kinds = seg.kinds
        d = seg.drift or {}
        rows.append({"as_of": t, "kinds": kinds, "alarm": any(k != "ok" for k in kinds),
                     "drift": bool(d.get("detected")), "share": d.get("share_drifted"),
                     "weighted": d.get("weighted_share"),
                     "reasons": [x for dd in seg.decisions for x in dd.reasons][:2]})
    return rows


def summarise(rows_stable: list[dict], rows_drift: list[dict], s: Scenario) -> dict:
    """False-alarm rate on the stable world; detection delay (runs) on the drifted one."""
    onset = datetime.combine(s.drift_from, datetime.min.time(), UTC)
    after = [r for r in rows_drift if r["as_of"] >= onset]
    before = [r for r in rows_drift if r["as_of"] < onset]
    delay = next((i + 1 for i, r in enumerate(after) if r["drift"]), None)
    return {"runs": len(rows_stable), "false_alarms": sum(r["alarm"] for r in rows_stable),
            "false_alarm_rate": sum(r["alarm"] for r in rows_stable) / len(rows_stable),
            "false_alarms_before_onset": sum(r["alarm"] for r in before), "runs_before_onset": len(before),
            "detection_delay_runs": delay, "runs_after_onset": len(after)}


def run(s: Scenario | None = None, log=print, rules: tuple[str, ...] = tuple(RULES)) -> dict:
    s = s or Scenario()
    out: dict = {"scenario": s, "rules": {}}
    with tempfile.TemporaryDirectory(prefix="jml_bench_mon_") as tmp:
        worlds = {}
        for name, drift in (("stable", False), ("drift", True)):
            root = Path(tmp) / name
            root.mkdir()
            log(f"monitoring bench: world {name} ({s.accounts} accounts)")
            worlds[name] = (*_world(root, s, drift), root)
        for rule in rules:
            walks = {}
            for name, (engine, registry, root) in worlds.items():
                log(f"monitoring bench: rule {rule}, world {name}, {s.dates} dates")
                onset = (datetime.combine(s.drift_from, datetime.min.time(), UTC) - s.first).days // s.every
                skip = max(0, onset - s.drift_runs_before_onset) if name == "drift" else 0
                walks[name] = _walk(engine, registry, s, rule, root, skip)
            out["rules"][rule] = {"summary": summarise(walks["stable"], walks["drift"], s), "walks": walks}
        for engine, _, _ in worlds.values():
            engine.dispose()
    return out


def markdown(r: dict) -> str:
    s = r["scenario"]
    lines = ["## monitoring: false alarms and detection delay (simulator)", "",
             f"Simulated worlds of {s.accounts} accounts (seed {s.seed}), one pooled conversion model trained as "
             f"of {s.train_at:%Y-%m-%d}, monitored {s.dates} times every {s.every} days from {s.first:%Y-%m-%d}; "
             f"the drifted world has the simulator's behaviour drift from {s.drift_from}. Retraining is only "
             "requested, so one model is judged throughout. An alarm is any decision other than `ok`.", "",
             "| rule | false alarms, stable world (target <= 1 in 10) | false alarms before onset, drifted world "
             "| detection delay, runs (target <= 2) |", "|---|---|---|---|"]
    names = NAMES
    for rule, v in r["rules"].items():
        m = v["summary"]
        lines.append(f"| {names[rule]} | {m['false_alarms']} of {m['runs']} ({m['false_alarm_rate']:.0%}) | "
                     f"{m['false_alarms_before_onset']} of {m['runs_before_onset']} | "
                     f"{m['detection_delay_runs'] if m['detection_delay_runs'] is not None else 'not detected'} "
                     f"(of {m['runs_after_onset']} runs after onset) |")
    lines.append("")
    for rule, v in r["rules"].items():
        lines.append(f"Per run, rule `{rule}` (share of drifted columns / importance-weighted share, decisions):")
        lines.append("")
        for world, rows in v["walks"].items():
            cells = " ".join(
                f"{row['as_of']:%m-%d}:{'A' if row['alarm'] else '.'}" for row in rows)
            lines.append(f"- {world}: {cells}")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    print(markdown(run()))


if __name__ == "__main__":
    main()
