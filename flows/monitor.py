"""Monitoring flow: drift + performance per segment, the policy's decisions, events, a summary artifact.

Each task calls one library function (`journey_ml.monitoring.runner.monitor_task`); this
flow only turns its result into Prefect events (``journey.drift.detected``,
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

from journey_ml.monitoring.runner import monitor_task, summary_markdown
from journey_ml.runtime import Runtime
from journey_ml.training import data_end


def _inline(rt: Runtime) -> bool:
    """Retrain inside the run unless configured for events and a Prefect server is set."""
    from prefect.settings import PREFECT_API_URL

    return rt.config.monitoring.retrain == "inline" or not PREFECT_API_URL.value()


@task(cache_policy=NO_CACHE)
def monitor_one(rt: Runtime, task_name: str, as_of: datetime, now: datetime) -> dict:
    home = rt.settings.home
    kwargs = {} if _inline(rt) else {"retrain": None}
    result = monitor_task(rt.engine, rt.registry, rt.config, task_name, as_of,
                          reports_dir=rt.config.monitoring.resolve_dir(home), now=now,
                          alert_urls=rt.config.monitoring.alert_urls(home), **kwargs)
    return {**result.to_dict(), "markdown": summary_markdown(result)}


@task(cache_policy=NO_CACHE)
def publish(result: dict) -> int:
    for e in result["events"]:
        emit_event(event=e["event"], resource=e["resource"], payload=e["payload"])
    key = re.sub(r"[^a-z0-9-]+", "-", f"journey-monitor-{result['task']}".lower())
    create_markdown_artifact(markdown=result["markdown"], key=key,
                             description=f"monitoring of {result['task']} as of {result['as_of']}")
    return len(result["events"])


@flow(name="journey-monitor")
def monitor_flow(tasks: list[str] | None = None, as_of: datetime | None = None,
                 config_path: str | None = None) -> list[dict]:
    """Monitor every task (or ``tasks``) as of ``as_of`` (default: the newest event)."""
    rt = Runtime.load(config_path=config_path)
    as_of = as_of or data_end(rt.engine)
    out = []
    for name in tasks or list(rt.config.tasks):
        r = monitor_one(rt, name, as_of, datetime.now(UTC))
        n = publish(r)
        for s in r["segments"]:
            kinds = ", ".join(d["kind"] for d in s["decisions"])
            get_run_logger().info("%s/%s v%s: %s", name, s["segment"], s["model_version"], kinds)
        get_run_logger().info("%s: %d events emitted", name, n)
        out.append(r)
    return out


if __name__ == "__main__":
    monitor_flow()
