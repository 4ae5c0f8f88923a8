"""Terminal rendering of the jobs' typed results: the one place output is formatted.

Tables fit 80 columns where they can; flows never import this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from rich import box
from rich.table import Table


def _f(v, fmt: str = "{:.3f}") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else ""  # UTC


def _v(v: int | None) -> str:
    return f"v{v}" if v is not None else "-"


# --- ingest -------------------------------------------------------------------------------


def ingest_table(runs) -> Table:
    """One row per source run: files, rows read / loaded / duplicate / rejected / erased."""
    t = Table(title="ingestion", title_justify="left")
    for col in ("source", "files", "read", "loaded", "dup", "rejected", "erased", "unknown"):
        t.add_column(col, justify="left" if col == "source" else "right")
    for r in runs:
        unknown = sum((r.unknown_event_types or {}).values())
        t.add_row(r.source, str(r.files), f"{r.rows_read:,}", f"{r.rows_loaded:,}", f"{r.rows_duplicate:,}",
                  f"{r.rows_rejected:,}", f"{r.rows_suppressed:,}", f"{unknown:,}")
    return t


def quarantine_table(listing) -> Table:
    """Rejected rows: source, file and line, reason, raw text (PII already scrubbed)."""
    t = Table(title=f"quarantine: {len(listing.rows)} of {listing.total} rows (newest ingestion first)",
              title_justify="left")
    for col in ("source", "file:line", "reason", "raw"):
        t.add_column(col, overflow="fold")
    for r in listing.rows:
        where = f"{r.file}:{r.line_number if r.line_number is not None else f'row {r.row_number}'}"
        raw = r.raw if len(r.raw) <= 120 else r.raw[:117] + "..."
        t.add_row(r.source, where, r.reason, raw)
    return t


# --- features / training ---------------------------------------------------------------------


def features_table(result) -> Table:
    """One row per task snapshot: entities, features, labels, segments."""
    tb = Table(title=f"feature snapshots as of {result.as_of:%Y-%m-%d %H:%M}", title_justify="left")
    for col in ("task", "entities", "features", "labelled", "positive rate", "segments"):
        tb.add_column(col)
    for r in result.snapshots:
        segs = "; ".join(f"{k}: " + ", ".join(f"{s} {n}" for s, n in sorted(v.items()))
                         for k, v in r.segments.items())
        tb.add_row(r.task, f"{r.entities:,}", str(r.features), "yes" if r.labelled else "not yet",
                   _f(r.positive_rate, "{:.1%}"), segs)
    return tb


def leaderboard(result) -> Table:
    """Per-segment results: held-out metrics, production, the gate's decision."""
    dates = sorted({d for ds in result.holdout_dates.values() for d in ds})
    held = (f"test holdout = as-of date{'s' if len(dates) > 1 else ''} "
            + ", ".join(f"{d:%Y-%m-%d}" for d in dates)) if dates else "test holdout"
    t = Table(title=f"leaderboard ({held})", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for col in ("model", "status", "ver", "rows", "pos", "AUC", "Brier", "lift", "prod"):
        t.add_column(col, justify="left" if col in ("model", "status") else "right", no_wrap=True)
    for o in result.outcomes:
        m, pm = o.metrics or {}, o.production_metrics or {}
        style = {"promoted": "green", "staged": "yellow", "pooled": "dim", "failed": "red"}.get(o.status, "")
        prod = _f(pm.get("roc_auc")) + (f" v{o.production_version}" if o.production_version else "")
        t.add_row(f"{o.task}/{o.segment}", f"[{style}]{o.status}[/]", _f(o.version, "v{}"),
                  f"{sum(o.rows.values()):,}", f"{sum(o.positives.values()):,}", _f(m.get("roc_auc")),
                  _f(m.get("brier")), _f(m.get("lift_top_decile"), "{:.1f}x"), prod)
    return t


# --- scoring -------------------------------------------------------------------------------


def score_summary_table(run) -> Table:
    """One scoring run of a task: one row per segment (entities, mode, model, why)."""
    title = (f"{run.task} as of {run.as_of:%Y-%m-%d %H:%M} UTC: {run.rows_written} scores in "
             f"{run.seconds:.1f}s; bands {', '.join(f'{k} {v}' for k, v in run.bands.items())}; "
             f"holdout {run.holdout}")
    table = Table(title=title)
    for col in ("segment", "entities", "mode", "model", "why"):
        table.add_column(col, justify="right" if col == "entities" else "left",
                         overflow="fold" if col == "why" else "ellipsis")
    for s in run.segments:
        model = f"{s.model_name} v{s.model_version}" if s.model_name else "-"
        table.add_row(s.segment, str(s.entities), s.mode, model, s.mode_reason)
    return table


def top_scores_table(rows, task: str) -> Table:
    """The highest stored scores of a task, with their reasons and action."""
    t = Table(title=f"top {task} scores", title_justify="left", show_lines=True)
    for col in ("entity", "p", "band", "why", "next action"):
        t.add_column(col, justify="right" if col == "p" else "left")
    for r in rows:
        why = "\n".join(x.get("text", "") for x in (r["reasons"] or [])[:3])
        action = (r["action"] or "") + (" [dim](holdout)[/]" if r["action_holdout"] else "")
        t.add_row(r["entity_id"], f"{r['probability']:.2f}", r["band"], why, action)
    return t


# --- monitoring ------------------------------------------------------------------------------


def _drift_cell(d: dict | None, marker: str = " [bold red]drift[/]") -> str:
    if not d:
        return "-"
    return f"{len(d.get('drifted_columns') or [])}/{d.get('tested_columns', '?')} cols" + \
        (marker if d.get("detected") else "")


def monitor_table(run) -> Table:
    """One monitoring run of a task: one row per segment."""
    t = Table(title=f"monitoring {run.task} as of {run.as_of:%Y-%m-%d %H:%M} UTC ({run.seconds:.1f}s)",
              title_justify="left")
    for col in ("segment", "model", "drift", "performance", "decisions"):
        t.add_column(col, overflow="fold")
    for s in run.segments:
        p = (s.performance or {}).get("production") or {}
        perf = "-" if p.get("roc_auc") is None else \
            f"AUC {p['roc_auc']:.3f}, acc {p.get('accuracy') or 0:.3f} on {p['n']} ({(s.performance or {}).get('source')})"
        est = (getattr(s, "estimated", None) or {}).get("roc_auc")
        if est is not None:  # CBPE: no labels needed
            perf = ("" if perf == "-" else perf + "; ") + f"estimated AUC {est:.3f}"
        t.add_row(s.segment, f"{s.model_name} v{s.model_version} ({s.model_kind})", _drift_cell(s.drift), perf,
                  ", ".join(s.kinds))
    return t


def decision_lines(run, *, width: int | None = None, skip_ok: bool = False) -> list[str]:
    """Each decision of a run with its reasons and outcome (markup), then report paths."""
    lines = []
    for s in run.segments:
        for d in s.decisions:
            if skip_ok and d.kind == "ok":
                continue
            style = {"ok": "green", "alert": "yellow", "error": "red"}.get(d.kind, "bold magenta")
            why = "; ".join(d.reasons)
            if width and len(why) > width:
                why = why[:width - 3] + "..."
            lines.append(f"[{style}]{s.segment}: {d.kind}[/] {why}"
                         + (f" [dim]-> {d.outcome}[/]" if d.outcome and d.kind not in ("ok", "alert") else ""))
        for k, v in s.reports.items():
            if k.endswith("_html") and not skip_ok:
                lines.append(f"  [dim]{k.split('_')[0]} report: {v}[/]")
            if k.endswith("_error"):  # the page exists but Evidently's sections do not: say so
                lines.append(f"  [red]{s.segment}: {k.split('_')[0]} report without Evidently's sections: {v}[/]")
    return lines


def monitoring_runs_table(rows) -> Table:
    t = Table(title="monitoring runs (newest first)", title_justify="left")
    for col in ("id", "as of", "segment", "model", "drift", "decisions", "reports"):
        t.add_column(col, overflow="fold")
    for r in rows:
        files = "\n".join(v for k, v in (r.reports or {}).items() if k.endswith("_html"))
        t.add_row(str(r.id), f"{r.as_of:%Y-%m-%d}", f"{r.task}/{r.segment}", f"{r.model_name} v{r.model_version}",
                  "yes" if r.drift_detected else "no", ", ".join(d.kind for d in r.decisions), files or "-")
    return t


# --- registry --------------------------------------------------------------------------------


def models_table(summaries) -> Table:
    t = Table(title="registered models (times UTC)", title_justify="left")
    t.add_column("model", no_wrap=True, overflow="fold")
    for col in ("production", "since", "staging", "versions", "kind"):
        t.add_column(col, justify="right" if col == "versions" else "left")
    for s in summaries:
        kinds = ", ".join(sorted(set(s.kinds.values()))) or "-"
        prod = _v(s.production_version) + (f" ({s.production_kind})" if s.production_kind else "")
        t.add_row(s.name, prod, _when(s.production_since), _v(s.staging_version), str(len(s.versions)), kinds)
    return t


def history_table(moves) -> Table:
    t = Table(title="alias ledger (newest first, times UTC)", title_justify="left")
    for col in ("at", "model", "alias", "move", "action", "reason", "actor"):
        t.add_column(col, no_wrap=col in ("at", "move"), overflow="fold")
    for m in moves:
        t.add_row(_when(m.at), m.model_name, m.alias, f"{_v(m.from_version)} -> {_v(m.to_version)}",
                  m.action, m.reason, m.actor)
    return t


def move_line(m) -> str:
    return (f"[bold]{m.model_name}@{m.alias}[/]: {_v(m.from_version)} -> {_v(m.to_version)} "
            f"({m.action}: {m.reason})")


def timeline_tables(entries: Iterable, limit: int | None = None) -> list[Table]:
    """One table per task/segment: alias moves, monitoring runs and decisions, newest first."""
    groups: dict[tuple, list] = {}
    for e in entries:
        groups.setdefault((e.task, e.segment), []).append(e)
    tables = []
    style = {"ledger": "bold cyan", "decision": "magenta", "monitor": ""}
    for (task, segment), rows in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        t = Table(title=f"{task}/{segment}: timeline (newest first, times UTC)", title_justify="left")
        for col in ("at", "source", "event", "version", "detail"):
            t.add_column(col, no_wrap=col in ("at", "version"), overflow="fold")
        for e in rows[:limit]:
            s = style.get(e.source, "")
            t.add_row(_when(e.at), e.source, f"[{s}]{e.event}[/]" if s else e.event, e.version, e.detail)
        tables.append(t)
    return tables


# --- simulation ------------------------------------------------------------------------------


def simulation_table(result) -> Table:
    t = Table(title=f"simulated exports in {result.out_dir}")
    t.add_column("file")
    t.add_column("rows", justify="right")
    for f, n in sorted(result.files.items()):
        t.add_row(f, f"{n:,}")
    return t


def erasure_table(kind: str, res) -> Table:
    t = Table(title=f"erased {kind} (tombstone {res.subject_hash[:12]}...)")
    t.add_column("table")
    t.add_column("rows deleted", justify="right")
    for k, v in sorted(res.rows_deleted.items()):
        t.add_row(k, str(v))
    return t
