"""flows/serve.py: the deployment list (names, schedules, parameters), built without a server."""

from __future__ import annotations

import pytest

from flows.serve import deployments, flows
from journey_ml.config import ConfigError, load_config, parse_config


def _crons(dep) -> list[tuple[str, str]]:
    return [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules or []]


def test_default_schedules():
    cfg, _ = load_config(None)
    deps = {d.name: d for d in deployments(cfg, "/etc/journey.yaml")}
    assert set(deps) == {f"journey-{n}" for n in flows()}
    assert {"journey-cycle", "journey-retrain", "journey-train", "journey-ingest"} <= set(deps)
    assert _crons(deps["journey-ingest"]) == [("15 * * * *", "UTC")]
    assert _crons(deps["journey-cycle"]) == [("0 5 * * *", "UTC")]  # once a day
    assert _crons(deps["journey-train"]) == [("0 3 * * 0", "UTC")]  # weekly
    assert _crons(deps["journey-score"]) == [] and _crons(deps["journey-retrain"]) == []
    assert deps["journey-ingest"].parameters == {"incremental": True, "config_path": "/etc/journey.yaml"}
    assert deps["journey-score"].parameters == {"config_path": "/etc/journey.yaml"}
    assert all("journey-ml" in d.tags for d in deps.values())
    # one cycle at a time, a late one queued
    assert deps["journey-cycle"].concurrency_limit == 1
    assert deps["journey-cycle"].concurrency_options.collision_strategy == "ENQUEUE"
    # monitoring's retrain requests run journey-retrain for the event's task and segment only,
    # once per segment per cooldown
    (trigger,) = deps["journey-retrain"].triggers
    assert trigger.expect == {"journey.retrain.requested"}
    assert trigger.for_each == {"prefect.resource.id"} and trigger.threshold == 1
    assert trigger.within.total_seconds() == 360 * 60
    assert trigger.parameters == {"task": "{{ event.resource['journey.task'] }}",
                                  "segment": "{{ event.resource['journey.segment'] }}",
                                  "config_path": "/etc/journey.yaml"}
    assert not deps["journey-train"].triggers and not deps["journey-score"].triggers


def test_retrain_parameters_render_from_a_monitoring_event():
    """The trigger's templates, rendered by Prefect's own template engine against the event
    monitoring emits for one segment, give exactly that task and segment."""
    from prefect.server.utilities.user_templates import render_user_template_sync

    from flows.serve import RETRAIN_PARAMETERS
    from journey_ml.monitoring.runner import segment_resource

    class Event:  # what the template context calls ``event``
        resource = segment_resource("conversion", "mid_market", "journey-conversion-mid_market", 3)

    got = {k: render_user_template_sync(v, {"event": Event()}) for k, v in RETRAIN_PARAMETERS.items()}
    assert got == {"task": "conversion", "segment": "mid_market"}


def test_schedules_from_config_and_on_demand_flows():
    cfg = parse_config({"schedules": {"timezone": "Europe/Paris",
                                      "flows": {"score": {"cron": "*/10 * * * *", "parameters": {"tasks": ["churn"]}}}}},
                       "my.yaml")
    deps = {d.name: d for d in deployments(cfg)}
    assert _crons(deps["journey-score"]) == [("*/10 * * * *", "Europe/Paris")]
    assert deps["journey-score"].parameters == {"tasks": ["churn"]}
    assert _crons(deps["journey-train"]) == []  # deployed, run on demand


def test_interval_schedule():
    cfg = parse_config({"schedules": {"flows": {"ingest": {"interval_seconds": 20}}}}, "my.yaml")
    (sched,) = {d.name: d for d in deployments(cfg)}["journey-ingest"].schedules
    assert sched.schedule.interval.total_seconds() == 20 and sched.schedule.timezone == "UTC"


def test_cron_and_interval_together_are_refused():
    with pytest.raises(ConfigError, match=r"schedules.flows.ingest.*either cron or interval_seconds"):
        parse_config({"schedules": {"flows": {"ingest": {"cron": "* * * * *", "interval_seconds": 20}}}}, "my.yaml")


def test_unknown_flow_is_named():
    cfg = parse_config({"schedules": {"flows": {"retrain_everything": {"cron": "0 1 * * *"}}}}, "my.yaml")
    with pytest.raises(ConfigError, match="unknown flow.*retrain_everything"):
        deployments(cfg)


def test_bad_cron_names_the_key():
    with pytest.raises(ConfigError, match=r"my.yaml: schedules.flows.score.cron.*'daily'"):
        parse_config({"schedules": {"flows": {"score": {"cron": "daily"}}}}, "my.yaml")
