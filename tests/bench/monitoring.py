"""Monitoring alarms on the simulator: false-alarm rate, detection delay and the CBPE estimate.

Simulated worlds from the same seed: one stable (no drift injected), one with the simulator's
behaviour drift and one with a web tracking outage, both from a known date. One pooled
conversion model trained once; then, at ``dates`` dates ``every`` days apart, scoring as of T
and `monitor_task` as of T (retraining only requested, so the model stays and the persistence
counts), once per rule (`RULES`): the rule before #11 (share of drifted columns against the
pooled training sample, no effect floor), the importance-weighted rule with an effect floor
against several references, and the shipped defaults.

An alarm is a run whose decisions include anything but ``ok`` (alert, retrain, ...). False-alarm
rate: alarms per run on the stable world. Detection delay: runs from the injected date to the
first run whose drift is detected (1 = the first run after it). Estimation error: the CBPE
ROC AUC estimated when a date was scored against the realised ROC AUC once its labels matured.

    python -m tests.bench.run --only monitoring
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

TASK = "conversion"


@dataclass(frozen=True)
class Scenario:
    accounts: int = 1500
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
    "previous": {"drift_rule": "weighted", "drift_reference": "previous_run", "drift_reference_lag_days": 0.0,
                 "min_effect": 0.1},
    "now": {},  # the shipped defaults
}
NAMES = {"before": "before #11: share of columns, pooled training sample, no effect floor",
         "window": "importance-weighted, effect floor 0.1, newest date of the training window",
         "trained": "importance-weighted, effect floor 0.1, population at the training as-of",
         "previous": "importance-weighted, effect floor 0.1, population of the previous run",
         "now": "importance-weighted, effect floor 0.1, population of the newest run >= 28 days earlier (shipped)"}


def scenario_config(rule: str):
    """The monitoring scenario's small world (one task, pooled model), with ``rule``'s drift settings."""
    from journey_ml.config import load_config
    from tests.monitoring.test_scenario import scenario_config as small_world

    cfg = small_world(Path("/dev/null"))
    defaults = load_config(None)[0].monitoring.defaults  # the shipped thresholds, not the scenario's
    return cfg.model_copy(update={"monitoring": cfg.monitoring.model_copy(update={
        "alerts": [], "evidently_reports": False, "defaults": defaults.model_copy(update=RULES[rule])})})


WORLDS = {"stable": "no drift injected",
          "behaviour": "the simulator's behaviour drift (more pricing views, fewer email opens and logins)",
          "outage": "a web tracking outage (90% of web events never recorded)"}


def _world(root: Path, s: Scenario, kind: str):
    from journey_ml.db import make_engine, upgrade
    from journey_ml.ingest import ingest_all
    from journey_ml.registry import Registry
    from journey_ml.simulate import SimulationParams, simulate
    from journey_ml.training import GLOBAL, prepare_training, train_segment

    simulate(SimulationParams(accounts=s.accounts, seed=s.seed, end=s.end,
                              drift_from=s.drift_from if kind == "behaviour" else None,
                              tracking_outage_from=s.drift_from if kind == "outage" else None), root / "exports")
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
    from journey_ml.db.models import MonitorDecision, MonitorRun, Score
    from journey_ml.monitoring.runner import monitor_task
    from journey_ml.scoring import score_task

    with engine.begin() as conn:  # each rule starts from no monitoring or scoring history
        for table in (MonitorDecision.__table__, MonitorRun.__table__, Score.__table__):
            conn.execute(sa.delete(table))
    cfg = scenario_config(rule)
    rows = []
    for i in range(skip, s.dates):
        t = s.first + timedelta(days=i * s.every)
        # the loop as deployed: score as of T, then monitor (matured scores give realised
        # performance and the estimation error of the estimate made on their date)
        score_task(engine, registry, cfg, TASK, t, scored_at=t)
        r = monitor_task(engine, registry, cfg, TASK, t, reports_dir=root / f"reports-{rule}", now=t, retrain=None)
        seg = r.segments[0]
        kinds = seg.kinds
        d = seg.drift or {}
        est = (seg.performance or {}).get("estimate")
        rows.append({"as_of": t, "kinds": kinds, "alarm": any(k != "ok" for k in kinds),
                     "drift": bool(d.get("detected")), "share": d.get("share_drifted"),
                     "weighted": d.get("weighted_share"),
                     "estimated_auc": (seg.estimated or {}).get("roc_auc"), "estimate": est,
                     "reasons": [x for dd in seg.decisions for x in dd.reasons][:2]})
    return rows


def summarise(rows_stable: list[dict], drifted: dict[str, list[dict]], s: Scenario) -> dict:
    """False-alarm rate on the stable world; per drifted world, alarms before the onset and the
    detection delay (runs) after it; the CBPE estimation error on the stable world."""
    onset = datetime.combine(s.drift_from, datetime.min.time(), UTC)
    errors = [r["estimate"]["error"] for r in rows_stable if r.get("estimate")]
    out = {"estimation_errors": errors,
           "max_abs_estimation_error": max(map(abs, errors)) if errors else None,
           "median_abs_estimation_error": float(np.median(np.abs(errors))) if errors else None,
           "runs": len(rows_stable), "false_alarms": sum(r["alarm"] for r in rows_stable),
           "false_alarm_rate": sum(r["alarm"] for r in rows_stable) / len(rows_stable), "drifted": {}}
    def realised_after(rows):  # realised AUC of the scores made on or after the onset, once matured
        v = [r["estimate"]["realised_roc_auc"] for r in rows if r.get("estimate")
             and datetime.fromisoformat(str(r["estimate"]["as_of"])) >= onset]
        return float(np.median(v)) if v else None

    out["realised_auc_after_onset"] = realised_after(rows_stable)
    for world, rows in drifted.items():
        realised = realised_after(rows)
        rows = [r for r in rows if not r.get("warmup")]
        after = [r for r in rows if r["as_of"] >= onset]
        before = [r for r in rows if r["as_of"] < onset]
        out["drifted"][world] = {
            "false_alarms_before_onset": sum(r["alarm"] for r in before), "runs_before_onset": len(before),
            "detection_delay_runs": next((i + 1 for i, r in enumerate(after) if r["drift"]), None),
            "runs_after_onset": len(after), "realised_auc_after_onset": realised}
    return out


def run(s: Scenario | None = None, log=print, rules: tuple[str, ...] = tuple(RULES),
        worlds_to_walk: tuple[str, ...] = tuple(WORLDS)) -> dict:
    s = s or Scenario()
    out: dict = {"scenario": s, "rules": {}, "worlds": worlds_to_walk}
    onset = (datetime.combine(s.drift_from, datetime.min.time(), UTC) - s.first).days // s.every
    with tempfile.TemporaryDirectory(prefix="jml_bench_mon_") as tmp:
        worlds = {}
        for name in worlds_to_walk:
            root = Path(tmp) / name
            root.mkdir()
            log(f"monitoring bench: world {name} ({s.accounts} accounts)")
            worlds[name] = (*_world(root, s, name), root)
        for rule in rules:
            walks = {}
            # a drifted world is walked from a few runs before its onset; its first runs (before
            # the rule's reference run exists, so judged against the training as-of) are a
            # warm-up and not counted
            d = scenario_config(rule).monitoring.defaults
            warmup = max(1, math.ceil(d.drift_reference_lag_days / s.every)) if d.drift_reference == "previous_run" else 1
            for name, (engine, registry, root) in worlds.items():
                log(f"monitoring bench: rule {rule}, world {name}")
                skip = max(0, onset - s.drift_runs_before_onset - warmup) if name != "stable" else 0
                walks[name] = _walk(engine, registry, s, rule, root, skip)
                if name != "stable" and skip > 0:
                    for row in walks[name][:warmup]:
                        row["warmup"] = True
            out["rules"][rule] = {"summary": summarise(walks["stable"], {k: v for k, v in walks.items()
                                                                          if k != "stable"}, s),
                                  "walks": walks}
        for engine, _, _ in worlds.values():
            engine.dispose()
    return out


def markdown(r: dict) -> str:
    s = r["scenario"]
    drifted = [w for w in r["worlds"] if w != "stable"]
    lines = ["## monitoring: false alarms and detection delay (simulator)", "",
             f"Simulated worlds of {s.accounts} accounts (seed {s.seed}), one pooled conversion model trained as "
             f"of {s.train_at:%Y-%m-%d}, monitored {s.dates} times every {s.every} days from {s.first:%Y-%m-%d}, "
             "each run after scoring the population (as deployed). Worlds: "
             + "; ".join(f"`{w}`: {WORLDS[w]}" for w in r["worlds"])
             + f". Drift starts {s.drift_from}; a drifted world is walked from {s.drift_runs_before_onset} runs "
             "before it (plus warm-up runs until the rule's reference run exists, not counted). Retraining is only requested, so one model is judged "
             "throughout. An alarm is any decision other than `ok`; detection is the first run after the onset "
             "whose drift is detected.", "",
             "| rule | false alarms, stable world (target <= 1 in 10) | "
             + " | ".join(f"`{w}`: alarms before onset | `{w}`: detection delay, runs (target <= 2)" for w in drifted)
             + " |", "|---|---|" + "---|---|" * len(drifted)]
    for rule, v in r["rules"].items():
        m = v["summary"]
        cells = [f"{NAMES[rule]}", f"{m['false_alarms']} of {m['runs']} ({m['false_alarm_rate']:.0%})"]
        for w in drifted:
            d = m["drifted"][w]
            delay = d["detection_delay_runs"] if d["detection_delay_runs"] is not None else "not detected"
            cells += [f"{d['false_alarms_before_onset']} of {d['runs_before_onset']}",
                      f"{delay} (of {d['runs_after_onset']} runs)"]
        lines.append("| " + " | ".join(cells) + " |")
    now = r["rules"].get("now", {}).get("summary")
    if now:
        def auc(x):
            return f"{x:.3f}" if x is not None else "n/a"
        lines += ["", f"Shipped rule against the targets: false alarms {now['false_alarms']} of {now['runs']} "
                  f"({'met' if now['false_alarm_rate'] <= 0.1 else 'not met'}); "
                  + "; ".join(f"`{w}` detected after {d['detection_delay_runs']} run(s) "
                              f"({'met' if d['detection_delay_runs'] is not None and d['detection_delay_runs'] <= 2 else 'not met'})"
                              if d["detection_delay_runs"] is not None else f"`{w}` not detected (not met)"
                              for w, d in now["drifted"].items()) + ".",
                  "", "Does the drift matter to the model? Median realised ROC AUC of the scores made on or after the "
                  f"onset, once their labels matured: stable {auc(now['realised_auc_after_onset'])}, "
                  + ", ".join(f"{w} {auc(d['realised_auc_after_onset'])}" for w, d in now["drifted"].items())
                  + ". A drift that leaves the model's accuracy where it was is one an importance-weighted rule "
                  "is meant to stay quiet about."]
    lines += ["", "Performance estimated before labels mature (CBPE, ROC AUC) against the realised ROC AUC of the "
              "same scores once their labels matured, stable world (target: within 0.03):", "",
              "| rule | estimates checked | median abs. error | largest abs. error |", "|---|---:|---:|---:|"]
    for rule, v in r["rules"].items():
        m = v["summary"]
        if m["estimation_errors"]:
            within = sum(abs(e) <= 0.03 for e in m["estimation_errors"])
            lines.append(f"| `{rule}` | {len(m['estimation_errors'])} ({within} within 0.03) | "
                         f"{m['median_abs_estimation_error']:.3f} | {m['max_abs_estimation_error']:.3f} |")
        else:
            lines.append(f"| `{rule}` | 0 (no date with enough matured labels) | - | - |")
    lines.append("")
    for rule, v in r["rules"].items():
        lines.append(f"Per run, rule `{rule}` (A: alarm, D: drift detected, w: importance-weighted drifted share):")
        lines.append("")
        for world, rows in v["walks"].items():
            cells = " ".join(
                f"{row['as_of']:%m-%d}:{'D' if row['drift'] else 'A' if row['alarm'] else '.'}"
                f"({row['weighted'] if row['weighted'] is not None else float('nan'):.2f})"
                for row in rows if not row.get("warmup"))
            lines.append(f"- {world}: {cells}")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    print(markdown(run()))


if __name__ == "__main__":
    main()
