"""What every command shares: consoles, option types, the runtime, time parsing, the guard
that turns a user error into one red line and exit code 1."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

# soft_wrap: an error line stays one line, whatever the terminal width
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration file "
                      "(default: JOURNEY_CONFIG_PATH, else the packaged default).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
TasksOpt = Annotated[list[str] | None, typer.Option("--task", "-t", help="Task (repeatable; default all).")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="As-of time, ISO 8601 (UTC if no "
                    "offset); default: the newest event in the warehouse.")]

F = TypeVar("F", bound=Callable[..., Any])


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors a user can fix (bad config, unknown name, schema not migrated, no data ...):
    shown as one line. Anything else is a bug and keeps its traceback."""
    from journey_ml.config import ConfigError
    from journey_ml.ingest import IngestError
    from journey_ml.jobs import JobFailed, SchemaNotCurrent
    from journey_ml.monitoring.runner import MonitorError
    from journey_ml.registry import RegistryError
    from journey_ml.training import TrainingError

    return (ConfigError, ValueError, FileNotFoundError, RegistryError, MonitorError, TrainingError,
            SchemaNotCurrent, IngestError, JobFailed)


def warehouse_unreachable(e: BaseException) -> str | None:
    """One line for a warehouse connection failure (the driver's reason: host, database,
    role; never the URL or its password), None for any other error."""
    from sqlalchemy.exc import OperationalError

    if not isinstance(e, OperationalError):
        return None
    first = (str(e.orig).strip().splitlines() or [""])[0]
    if not first.lower().startswith(("connection", "could not connect", "unable to open database")):
        return None
    return f"cannot connect to the warehouse: {first}"


def fail(msg: str) -> None:
    """Print ``error: msg`` on stderr and exit 1."""
    console.print(f"[bold red]error:[/] {msg}", highlight=False, markup=True)
    raise typer.Exit(1)


def guarded(fn: F) -> F:
    """Decorate a command: a user error becomes one red line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except user_errors() as e:
            fail(str(e))
        except Exception as e:
            line = warehouse_unreachable(e)
            if line is None:
                raise
            fail(line)

    return wrapper  # type: ignore[return-value]


def quiet_mlflow() -> None:
    """Command output is ours: no download progress bars, no MLflow INFO chatter (set before
    MLflow is first imported; an explicit environment setting wins)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def runtime(config: Path | None):
    """The resources of one command (settings, config, lazily the engine and registry)."""
    from journey_ml.runtime import Runtime

    quiet_mlflow()
    rt = Runtime.load(config_path=config)
    rt.settings.ensure_home()
    return rt


def now() -> datetime:
    return datetime.now(UTC)


def parse_utc(value: str, what: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC. ValueError naming ``what`` otherwise."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: not an ISO 8601 time: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def as_of_option(value: str | None) -> datetime | None:
    return None if value is None else parse_utc(value, "--as-of")


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def progress(bytes_: bool = False) -> Progress:
    """A progress display on stderr (shown on a terminal or with JOURNEY_PROGRESS set)."""
    cols = [TextColumn("{task.description}"), BarColumn()]
    cols.append(DownloadColumn() if bytes_ else TextColumn("{task.completed:,.0f}/{task.total:,.0f}"))
    cols.append(TimeElapsedColumn())
    return Progress(*cols, console=console, transient=False,
                    disable=not console.is_terminal and not os.environ.get("JOURNEY_PROGRESS"))
