"""Journey-mapping flow: the journeys job (maps per task and segment, lift), then a summary.

Runs daily after scoring and monitoring: each task's journey map (HTML under the reports
folder, logged to MLflow as a journey run) and the lift of the next-best actions whose
horizon has passed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from journey_ml.jobs import JourneysJobResult, JourneysParams, run_journeys
from journey_ml.runtime import Runtime


# a re-run rewrites the same pages and replaces the same lift rows: retrying is safe
@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=30)
def journeys(rt: Runtime, params: JourneysParams) -> JourneysJobResult:
    result = run_journeys(rt, params)
    log = get_run_logger()
    for m in result.maps:
        top = m.top_friction
        log.info("%s/%s: %d journeys, %d conversions; top friction %s; map %s", m.task, m.segment, m.journeys,
                 m.conversions, top["sentence"] if top else "-", m.report_html)
    log.info("lift rows stored: %d", result.lift_rows_written)
    return result


@flow(name="journey-journeys")
def journeys_flow(tasks: list[str] | None = None, as_of: datetime | None = None, segments: list[str] | None = None,
                  config_path: str | None = None) -> JourneysJobResult:
    """Journey maps (paths, friction, attribution, next step, lift) per task and segment."""
    rt = Runtime.load(config_path=config_path)
    return journeys(rt, JourneysParams(computed_at=datetime.now(UTC), tasks=tuple(tasks or ()), as_of=as_of,
                                       segments=tuple(segments or ())))


if __name__ == "__main__":
    journeys_flow()
