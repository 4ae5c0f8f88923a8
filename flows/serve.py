"""Serve the flows as Prefect deployments with the schedules of the configuration.

``python -m flows.serve`` (the compose worker) runs until stopped: Prefect's ``serve``
polls for scheduled and on-demand runs of every deployment and executes them in this
process. It first checks what it needs (`startup_problems`) and exits 1 naming each
missing piece before serving anything. `deployments` builds the list without starting anything (tested on its own).
``journey-cycle`` is the daily cycle, ``journey-train`` the weekly retrain of every
segment, ``journey-retrain`` the event-triggered retrain of one segment.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval

from flows.cycle import cycle_flow
from flows.features import features_flow
from flows.ingest import ingest_flow
from flows.journeys import journeys_flow
from flows.monitor import monitor_flow
from flows.score import score_flow
from flows.train import retrain_flow, train_flow
from journey_ml.config import ConfigError, JourneyConfig
from journey_ml.monitoring.runner import EVENTS
from journey_ml.runtime import Runtime

TAGS = ["journey-ml"]


def flows() -> dict[str, Any]:
    """Flow name (the key of ``schedules.flows``) -> Prefect flow."""
    return {"ingest": ingest_flow, "features": features_flow, "train": train_flow, "score": score_flow,
            "monitor": monitor_flow, "journeys": journeys_flow, "cycle": cycle_flow,
            "retrain": retrain_flow}


RETRAIN_TRIGGER = "journey-retrain: the segment that asked"
# a template of the triggering event's resource labels (set by `segment_resource`)
RETRAIN_PARAMETERS = {"task": "{{ event.resource['journey.task'] }}",
                      "segment": "{{ event.resource['journey.segment'] }}"}


def _triggers(config: JourneyConfig, name: str, params: dict[str, Any]) -> list | None:
    """``journey-retrain`` runs on ``journey.retrain.requested`` (monitoring with
    ``monitoring.retrain: event``) for exactly the event's task and segment: one bucket per
    resource id, firing on the first event and absorbing the rest of the cooldown."""
    if name != "retrain":
        return None
    cooldown = timedelta(minutes=config.schedules.retrain_cooldown_minutes)
    return [DeploymentEventTrigger(name=RETRAIN_TRIGGER, expect={EVENTS["retrain"]},
                                   match={"prefect.resource.id": "journey.segment.*"},
                                   for_each={"prefect.resource.id"}, posture="Reactive", threshold=1,
                                   within=cooldown, parameters={**params, **RETRAIN_PARAMETERS})]


# one cycle at a time (a late one waits for the one running); the steps inside hold
# per-task slots too (flows/_locks.py)
CONCURRENCY = {"cycle": ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)}


def _schedules(config: JourneyConfig, name: str) -> list | None:
    sched = config.schedules.flows.get(name)
    if sched is None:
        return None
    if sched.cron:
        return [Cron(sched.cron, timezone=config.schedules.timezone)]
    if sched.interval_seconds:
        return [Interval(timedelta(seconds=sched.interval_seconds), timezone=config.schedules.timezone)]
    return None


def deployments(config: JourneyConfig, config_path: str | None = None) -> list:
    """One RunnerDeployment per flow, named ``journey-<flow>``, with its cron or interval schedule.

    ``config_path`` is passed to every run so workers read the same configuration. Raises
    ConfigError naming a scheduled flow that does not exist.
    """
    known = flows()
    unknown = sorted(set(config.schedules.flows) - set(known))
    if unknown:
        raise ConfigError(f"schedules.flows: unknown flow(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known))})")
    out = []
    for name, fl in known.items():
        sched = config.schedules.flows.get(name)
        params = dict(sched.parameters) if sched else {}
        if config_path:
            params.setdefault("config_path", config_path)
        out.append(fl.to_deployment(name=f"journey-{name}", schedules=_schedules(config, name), parameters=params,
                                    tags=TAGS, triggers=_triggers(config, name, params),
                                    concurrency_limit=CONCURRENCY.get(name),
                                    description=(fl.description or "").strip().splitlines()[0] or None))
    return out


def startup_problems(config_path: str | None) -> tuple[list[str], list]:
    """Everything that stops the worker from serving, one line each (the configuration and
    its schedules, the PII salt, the warehouse and its schema, the tracking server, the
    Prefect API: `journey_ml.jobs.status.startup_checks`), and the deployments to serve."""
    from journey_ml.jobs.status import startup_checks

    try:
        rt = Runtime.load(config_path=config_path)
        path = config_path or (str(rt.settings.config_path) if rt.settings.config_path else None)
        deps = deployments(rt.config, path)
    except (ValueError, OSError) as e:  # ConfigError names the file and key; settings errors the variable
        return [f"configuration: {e}"], []
    problems = [f"{h.component}: {h.detail}" for h in startup_checks(rt) if not h.ok]
    return problems, deps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.splitlines()[0])
    p.add_argument("--config", "-c", help="YAML configuration (default: JOURNEY_CONFIG_PATH or the packaged one)")
    p.add_argument("--limit", type=int, default=None, help="most flow runs at the same time")
    a = p.parse_args(argv)
    problems, deps = startup_problems(a.config)
    if problems:  # before anything is registered or served
        print("python -m flows.serve: cannot start, nothing served:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        sys.exit(1)
    serve(*deps, limit=a.limit)


if __name__ == "__main__":
    main()
