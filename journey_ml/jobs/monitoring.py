"""The monitoring job: drift and performance per segment, the policy's decisions, executed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from journey_ml.features import build_features
from journey_ml.jobs._common import require_schema, resolve_as_of, resolve_tasks, utc
from journey_ml.monitoring.runner import MonitorRunResult, monitor_task
from journey_ml.runtime import Runtime

RetrainMode = Literal["inline", "request"]


@dataclass(frozen=True)
class MonitoringParams:
    """``retrain``: ``inline`` retrains inside the run (through the promotion gate);
    ``request`` only records the request (a deployment triggered by the flow's event
    retrains). ``now`` is the decision time (cooldowns, persistence)."""

    now: datetime
    tasks: tuple[str, ...] = ()
    as_of: datetime | None = None
    retrain: RetrainMode = "inline"


@dataclass(frozen=True)
class MonitoringJobResult:
    as_of: datetime
    runs: tuple[MonitorRunResult, ...]

    def actions(self) -> list[tuple[str, str, str]]:
        """(task, segment, decision kind) of every decision other than ok / alert."""
        return [(r.task, seg, d.kind) for r in self.runs for seg, d in r.decisions()
                if d.kind not in ("ok", "alert")]


def run_monitoring(rt: Runtime, params: MonitoringParams, *, build=build_features) -> MonitoringJobResult:
    """Monitor every requested task as of T; decisions are stored and executed (alias moves
    through the ledger, retraining per ``retrain``), alerts sent to the configured URLs.
    ``build``: the feature builder (the cycle's `FeatureMemo`). Raises ConfigError for an
    unknown task and SchemaNotCurrent."""
    require_schema(rt.engine)
    names = resolve_tasks(rt.config, params.tasks)
    as_of, _ = resolve_as_of(rt.engine, params.as_of)
    home = rt.settings.home
    extra = {"retrain": None} if params.retrain == "request" else {}
    runs = tuple(monitor_task(rt.engine, rt.registry, rt.config, n, as_of,
                              reports_dir=rt.config.monitoring.resolve_dir(home), now=utc(params.now, "now"),
                              alert_urls=rt.config.monitoring.alert_urls(home), build=build, **extra)
                 for n in names)
    return MonitoringJobResult(as_of, runs)
