"""What every job shares: the schema check, name and time resolution, the fan-out hook."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine

from journey_ml.config import JourneyConfig

T = TypeVar("T")
R = TypeVar("R")

# How a job runs independent pieces of work (one per segment, say): ``each(fn, items)``
# returns ``[fn(i) for i in items]`` in order. Jobs default to `serial`; a flow passes one
# that submits each call as a Prefect task (thread pool, Dask), the CLI keeps `serial`.
Each = Callable[[Callable[[T], R], Sequence[T]], list[R]]


def serial(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """Run ``fn`` over ``items`` one after the other, in this process."""
    return [fn(i) for i in items]


def slots_of(each: Each) -> int:
    """How many calls ``each`` runs at once in this process: its ``slots`` attribute (a
    flow's fan-out sets it; None when they run elsewhere, e.g. on a Dask cluster), else 1."""
    slots = getattr(each, "slots", 1)
    return 1 if slots is None else max(1, int(slots))


def width_of(each: Each) -> int:
    """How many calls ``each`` runs at once anywhere (a cluster's worker threads): its
    ``width`` attribute, else its slots."""
    width = getattr(each, "width", None)
    return max(1, int(width)) if width else slots_of(each)


class JobFailed(RuntimeError):
    """A job finished with problems (a source that failed, a task that could not train).

    Raised by flows, so Prefect marks the run failed (and retries it where configured);
    ``result`` is the job's typed result with what did succeed."""

    def __init__(self, message: str, result: object):
        super().__init__(message)
        self.result = result


class SchemaNotCurrent(RuntimeError):
    """The warehouse schema is not at the revision this journey-ml needs."""


def require_schema(engine: Engine) -> str:
    """Return the warehouse's revision when it is the newest one shipped, else raise
    SchemaNotCurrent naming `journey-ml db upgrade`. Nothing is changed: upgrading a
    production schema is an explicit step (the demo and `make up` do it themselves)."""
    from journey_ml.db.migrate import current_revision, head_revision

    current, head = current_revision(engine), head_revision()
    if current == head:
        return current
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaNotCurrent(f"the warehouse at {where} has no schema yet: run `journey-ml db upgrade`")
    raise SchemaNotCurrent(f"the warehouse at {where} is at schema revision {current}, this journey-ml "
                           f"needs {head}: run `journey-ml db upgrade`")


def resolve_tasks(config: JourneyConfig, tasks: Sequence[str] | None) -> list[str]:
    """The named tasks (every configured task when none are named), validated before any
    work starts; ConfigError names an unknown one."""
    names = list(tasks) if tasks else list(config.tasks)
    for n in names:
        config.task(n)
    return names


def resolve_sources(config: JourneyConfig, sources: Sequence[str] | None) -> list[str]:
    """The named sources (every configured source, in config order, when none are named),
    validated before any work starts; ConfigError names an unknown one."""
    names = list(sources) if sources else [s.name for s in config.sources]
    for n in names:
        config.source(n)
    return names


def utc(t: datetime, what: str) -> datetime:
    """``t`` in UTC; a naive datetime is taken as UTC (ISO times on the command line and in
    flow parameters often carry no offset)."""
    if not isinstance(t, datetime):
        raise ValueError(f"{what} must be a datetime, got {t!r}")
    return t.replace(tzinfo=UTC) if t.tzinfo is None or t.utcoffset() is None else t.astimezone(UTC)


class AsOfPastData(ValueError):
    """An ``as_of`` after the newest event where a run needs data up to it (training)."""


def resolve_as_of(engine: Engine, as_of: datetime | None, *, past_end_ok: bool = True) -> tuple[datetime, datetime]:
    """(as_of, data_end): ``as_of`` defaults to the newest event in the warehouse.

    With ``past_end_ok=False`` (training: its dates end where labels have matured, so a
    later as-of would invent matured labels) an ``as_of`` after the newest event raises
    AsOfPastData naming where the data ends."""
    from journey_ml.training import data_end

    end = data_end(engine)
    t = end if as_of is None else utc(as_of, "as_of")
    if t > end and not past_end_ok:
        raise AsOfPastData(f"--as-of {t:%Y-%m-%d %H:%M} UTC is after the end of the data ({end:%Y-%m-%d %H:%M} UTC, "
                           "the newest event): leave --as-of out to train on everything, or pass a date "
                           "up to the data's end; to place training dates, set the task's training_dates")
    return t, end


def empty_population(engine: Engine, config: JourneyConfig, task: str, as_of: datetime, data_end: datetime) -> str:
    """Why a task has no entity as of T, in one line (for commands that refuse an empty
    run): the population rule and the entities left after each of its steps."""
    from journey_ml.features import population_steps
    from journey_ml.features.population import describe

    t = config.task(task)
    why = f"task {task!r}: no entity is in the {t.population!r} population as of {as_of:%Y-%m-%d %H:%M} UTC"
    if as_of > data_end:
        why += f" (the data ends at {data_end:%Y-%m-%d %H:%M} UTC: nothing happens after it)"
    else:
        why += f" (lookback {t.lookback_days} days; data ends at {data_end:%Y-%m-%d %H:%M} UTC)"
    steps = population_steps(engine, config, task, as_of)
    return (why + f"; rule {describe(t)}; entities left: "
            + " -> ".join(f"{s.rule}: {s.entities:,}" for s in steps))
