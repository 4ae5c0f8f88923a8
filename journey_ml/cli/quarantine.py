"""`journey-ml quarantine list`: the rows ingestion rejected, with their reasons, on any backend."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from journey_ml.cli import render
from journey_ml.cli._common import ConfigOpt, JsonOpt, emit_json, guarded, out, runtime

quarantine_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                             help="Rejected rows: what was rejected, where, and why.")


@quarantine_app.command("list")
@guarded
def quarantine_list(
    config: ConfigOpt = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Only reasons containing this "
                      "text (case-insensitive).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.", min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Quarantined rows, newest ingestion first: source, file, line, reason, raw (PII scrubbed)."""
    from journey_ml.ingest import list_quarantine
    from journey_ml.jobs import require_schema

    rt = runtime(config)
    require_schema(rt.engine)
    if source is not None:
        rt.config.source(source)  # an unknown source is an error, not an empty list
    listing = list_quarantine(rt.engine, source=source, reason=reason, limit=limit)
    if as_json:
        emit_json({"total": listing.total, "rows": [asdict(r) for r in listing.rows]})
        return
    if not listing.rows:
        out.print("no quarantined rows" + (" matching" if source or reason else ""))
        return
    out.print(render.quarantine_table(listing))


__all__ = ["quarantine_app"]
