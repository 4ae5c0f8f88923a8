"""Monitoring flow: the monitoring job, then its events and a summary artifact per task.

The job (`journey_ml.jobs.run_monitoring`) measures, decides and executes; this flow turns
each task's typed result into Prefect events (``journey.drift.detected``,
``journey.retrain.requested``, ``journey.fallback.engaged``, ``journey.rollback``,
``journey.model.restored``, resource ``journey.segment.<task>.<segment>``) and a markdown
artifact with the summary and report links. With ``monitoring.retrain: inline`` (the
default, and whenever no Prefect server is configured) the run retrains itself; with
``event`` a deployment triggered by ``journey.retrain.requested`` does it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from journey_ml.jobs import MonitoringJobResult, MonitoringParams, run_monitoring
from journey_ml.monitoring.runner import MonitorRunResult, summary_markdown
from journey_ml.runtime import Runtime


def _retrain_mode(rt: Runtime) -> str:
    """Retrain inside the run unless configured for events and a Prefect server is set."""
    from prefect.settings import PREFECT_API_URL

    return "request" if rt.config.monitoring.retrain == "event" and PREFECT_API_URL.value() else "inline"


@task(cache_policy=NO_CACHE)
def monitor(rt: Runtime, params: MonitoringParams) -> MonitoringJobResult:
    return run_monitoring(rt, params)


@task(cache_policy=NO_CACHE)
def publish(run: MonitorRunResult) -> int:
    for e in run.events:
        emit_event(event=e["event"], resource=e["resource"], payload=e["payload"])
    key = re.sub(r"[^a-z0-9-]+", "-", f"journey-monitor-{run.task}".lower())
    create_markdown_artifact(markdown=summary_markdown(run), key=key,
                             description=f"monitoring of {run.task} as of {run.as_of:%Y-%m-%d %H:%M}")
    for s in run.segments:
        get_run_logger().info("%s/%s v%s: %s", run.task, s.segment, s.model_version, ", ".join(s.kinds))
    return len(run.events)


@flow(name="journey-monitor")
def monitor_flow(tasks: list[str] | None = None, as_of: datetime | None = None,
                 config_path: str | None = None, now: datetime | None = None) -> MonitoringJobResult:
    """Monitor every task (or ``tasks``) as of ``as_of`` (default: the newest event).
    ``now``: the clock of a replay over history (cooldowns, alias moves; default: the wall clock)."""
    rt = Runtime.load(config_path=config_path)
    result = monitor(rt, MonitoringParams(now=now or datetime.now(UTC), tasks=tuple(tasks or ()), as_of=as_of,
                                          retrain=_retrain_mode(rt)))
    for run in result.runs:
        publish(run)
    return result


if __name__ == "__main__":
    monitor_flow()
