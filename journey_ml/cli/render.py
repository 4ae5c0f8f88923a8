"""Terminal rendering of the jobs' typed results: the one place output is formatted.

Tables fit 80 columns where they can; flows never import this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from rich import box
from rich.markup import escape
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
        tb.add_row(r.task, f"{r.entities:,}", str(r.features), "yes" if r.labelled else _not_yet(r),
                   _f(r.positive_rate, "{:.1%}"), segs)
    return tb


def _not_yet(r) -> str:
    why = getattr(r, "not_labelled_because", "")
    return f"not yet ({why})" if why else "not yet"


def holdout_title(result) -> str:
    """``test holdout = newest N as-of date(s) (dates)`` for event-based tasks, and how a
    snapshot task's random holdout was drawn: what the metrics were measured on."""
    per_task = {t: sorted(ds) for t, ds in result.holdout_dates.items() if ds}
    parts = []
    if per_task:
        dates = sorted({d for ds in per_task.values() for d in ds})
        n = max(len(ds) for ds in per_task.values())
        newest = "newest as-of date" if n == 1 else f"newest {n} as-of dates"
        parts.append(f"test holdout = {newest} ({', '.join(f'{d:%Y-%m-%d}' for d in dates)})")
    notes = getattr(result, "holdout_notes", None) or {}
    if notes:
        parts.append("test holdout = " + "; ".join(notes.values()))
    return "; ".join(parts) or "test holdout"


def leaderboard(result) -> Table:
    """Per-segment results: the selected model's held-out metrics beside the baselines' AUC on
    the same rows (rules, recency alone, logistic regression; the global model on a segment's
    rows), cross-validated AUC for snapshot tasks, production, the gate's decision."""
    t = Table(title=f"leaderboard ({holdout_title(result)})", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    cv = any(getattr(o, "cv", None) for o in result.outcomes)
    cols = ["model", "status", "kind", "ver", "rows", "pos", "AUC", *(["CV AUC"] if cv else []),
            "rules / recency / LR", "global", "Brier", "prod"]
    for col in cols:
        t.add_column(col, justify="left" if col in ("model", "status", "kind") else "right",
                     no_wrap=col == "model")
    for o in result.outcomes:
        m, pm = o.metrics or {}, o.production_metrics or {}
        b = {k: v.get("roc_auc") for k, v in (getattr(o, "baselines", None) or {}).items()}
        g = (getattr(o, "global_metrics", None) or {}).get("roc_auc")
        style = {"promoted": "green", "staged": "yellow", "pooled": "dim", "unchanged": "dim", "failed": "red"}.get(o.status, "")
        prod = _f(pm.get("roc_auc")) + (f" v{o.production_version}" if o.production_version else "")
        base = " / ".join(_f(b.get(k)) or "-" for k in ("rules", "recency", "logistic")) if b else ""
        cv_auc = (getattr(o, "cv", None) or {}).get("roc_auc_mean")
        t.add_row(f"{o.task}/{o.segment}", f"[{style}]{o.status}[/]", getattr(o, "model_kind", None) or "-",
                  _f(o.version, "v{}"), f"{sum(o.rows.values()):,}", f"{sum(o.positives.values()):,}",
                  _f(m.get("roc_auc")), *([_f(cv_auc)] if cv else []), base, _f(g), _f(m.get("brier")), prod)
    return t


def leaderboard_reasons(result) -> list[str]:
    """One line per segment: what won model selection and the gate's reason."""
    lines = []
    for o in result.outcomes:
        sel = getattr(o, "selection", "")
        cv = getattr(o, "cv_summary", "")
        lines.append(f"{o.task}/{o.segment}: {o.reason}" + (f" | selection: {sel}" if sel else "")
                     + (f" | {cv}" if cv else ""))
    return lines


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
    for col in ("entity", "p", "band", "why", "next action", "journey: stage > likely next"):
        t.add_column(col, justify="right" if col == "p" else "left")
    for r in rows:
        why = "\n".join(x.get("text", "") for x in (r["reasons"] or [])[:3])
        action = (r["action"] or "") + (" [dim](holdout)[/]" if r["action_holdout"] else "")
        t.add_row(r["entity_id"], f"{r['probability']:.2f}", r["band"], why, action, _journey_cell(r))
    return t


def _journey_cell(r) -> str:
    """The score's journey: its predicted stage, then the likeliest next step (ongoing only)."""
    stage, nxt = r.get("stage"), r.get("next_steps")
    if not stage:
        return "-"
    if not nxt:
        return f"{escape(stage)} [dim](ended)[/]"
    step, p = max(nxt.items(), key=lambda kv: kv[1])
    return f"{escape(stage)} > {escape(step)} {p:.2f}"


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


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def walk_lines(run, *, width: int = 150) -> list[str]:
    """One line per segment of a monitoring run, for a walk over many dates: the as-of,
    the production version, the figures, and each decision (alerts with their first
    reason, actions with what executing them did)."""
    lines = []
    for s in run.segments:
        p = (s.performance or {}).get("production") or {}
        est = (s.estimated or {}).get("roc_auc")
        figures = ", ".join(x for x in (
            f"AUC {p['roc_auc']:.3f} matured" if p.get("roc_auc") is not None else "",
            f"{est:.3f} estimated" if est is not None else "") if x)
        head = f"{s.as_of:%Y-%m-%d} {s.task}/{s.segment} v{s.model_version}" + (f" ({figures})" if figures else "")
        parts = []
        for d in s.decisions:
            style = {"ok": "green", "alert": "yellow", "error": "red"}.get(d.kind, "bold magenta")
            if d.kind == "ok":
                parts.append(f"[{style}]ok[/]")
            elif d.kind in ("alert", "error"):
                what = d.figures.get("condition", d.kind)
                parts.append(f"[{style}]{d.kind}[/] ({what}) {_cut(d.reasons[0] if d.reasons else '', width)}")
            else:
                parts.append(f"[{style}]{d.kind}[/] -> {_cut(d.outcome or 'not executed', width)}")
        lines.append(head + ": " + "; ".join(parts))
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
    for col in ("production", "since", "staging", "versions", "kind", "holdout AUC (vs baselines)"):
        t.add_column(col, justify="right" if col == "versions" else "left")
    for s in summaries:
        kinds = ", ".join(sorted(set(s.kinds.values()))) or "-"
        prod = _v(s.production_version) + (f" ({s.production_kind})" if s.production_kind else "")
        t.add_row(s.name, prod, _when(s.production_since), _v(s.staging_version), str(len(s.versions)), kinds,
                  _auc_line(s))
    return t


def _auc_line(s) -> str:
    """The production version's (else the newest version's) holdout AUC beside its baselines'."""
    auc = getattr(s, "holdout_auc", {}) or {}
    v = s.production_version if s.production_version in auc else (max(auc) if auc else None)
    if v is None:
        return "-"
    a = dict(auc[v])
    model = a.pop("model", "-")
    rest = ", ".join(f"{BASELINE_LABELS.get(k, k)} {x}" for k, x in a.items())
    return f"v{v} {model}" + (f" ({rest})" if rest else "")


BASELINE_LABELS = {"rules": "rules", "recency": "recency", "logistic": "LR", "global": "global"}


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


# --- journeys --------------------------------------------------------------------------------


def journey_maps_table(result) -> Table:
    """One row per map: journeys, conversions, the top friction point, the report."""
    t = Table(title=f"journey maps as of {result.as_of:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for col in ("map", "journeys", "conv.", "rate", "top friction", "report"):
        t.add_column(col, justify="right" if col in ("journeys", "conv.", "rate") else "left", overflow="fold")
    for m in result.maps:
        top = m.top_friction
        t.add_row(f"{m.task}/{m.segment}", f"{m.journeys:,}", f"{m.conversions:,}",
                  _f(m.conversions / m.journeys if m.journeys else None, "{:.1%}"),
                  f"{top['step']} ({top['exit_rate']:.0%} exit)" if top else "-", m.report_html or "-")
    return t


def friction_table(m, top: int = 10) -> Table:
    """The friction table of one map, ranked by lost conversions, with its sentence."""
    t = Table(title=f"friction: {m.task}/{m.segment} ({m.journeys:,} journeys, {m.level} level)",
              title_justify="left", show_lines=False)
    for col in ("#", "step", "journeys", "exit rate", "conv. through", "not through", "h stuck", "lost"):
        t.add_column(col, justify="left" if col == "step" else "right")
    for r in m.friction.head(top).itertuples():
        t.add_row(str(r.rank), r.step, f"{r.journeys:,}", f"{r.exit_rate:.0%}", f"{r.conversion_through:.0%}",
                  _f(r.conversion_not_through, "{:.0%}"), _f(r.median_hours_stuck, "{:.0f}"),
                  f"{r.lost_conversions:.1f}")
    return t


def paths_tables(m, top: int = 10) -> list[Table]:
    """Top paths to conversion and to drop-off."""
    out = []
    for title, df in (("to conversion", m.paths_to_conversion), ("to drop-off", m.paths_to_drop_off)):
        t = Table(title=f"top paths {title}: {m.task}/{m.segment}", title_justify="left")
        for col in ("path", "journeys", "share", "conv. rate on path"):
            t.add_column(col, justify="left" if col == "path" else "right", overflow="fold")
        for r in df.head(top).itertuples():
            t.add_row(r.path, f"{r.journeys:,}", f"{r.share:.0%}", f"{r.conversion_rate:.0%}")
        out.append(t)
    return out


def attribution_table(m, what: str = "conversions", top_friction: dict | None = None) -> Table:
    """channel x method; each cell the figure and its bootstrap interval. ``top_friction``
    adds the map's top friction point as the title's second line (the demo's one table)."""
    a = m.attribution
    methods = list(dict.fromkeys(a.table["method"]))
    title = (f"attribution of {a.conversions:,} conversions" if what == "conversions"
             else f"attribution of {a.value:,.0f} value") + f": {m.task}/{m.segment} ({a.bootstrap} bootstraps)"
    if top_friction:
        title += f"\ntop friction: {top_friction['sentence']}"
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False,
              caption="second line: bootstrap interval; Markov: exact removal effects of order k",
              caption_justify="left")
    channels = list(dict.fromkeys(a.table["channel"]))
    t.add_column("method", no_wrap=True, min_width=14)
    for ch in channels:
        t.add_column(ch, justify="right", overflow="fold", min_width=max(len(ch), 7))
    wide = a.table.set_index(["method", "channel"])
    for meth in methods:
        cells = []
        for ch in channels:
            r = wide.loc[(meth, ch)]
            lo, hi = r[f"{what}_low"], r[f"{what}_high"]
            cell = f"{r[what]:,.1f}" if abs(r[what]) < 1000 else f"{r[what]:,.0f}"
            cells.append(cell if math.isnan(lo) else f"{cell}\n[dim]\\[{lo:,.0f},{hi:,.0f}][/]")
        t.add_row(meth.replace("_", " "), *cells)
    return t


def next_step_tables(m, top: int = 10) -> list[Table]:
    """Held-out accuracy beside the order-0 baseline, then ongoing journeys' next step."""
    out = []
    n = m.next_step
    if n is not None:
        t = Table(title=f"next-step prediction: {m.task}/{m.segment} ({n.predictions:,} held-out next steps)",
                  title_justify="left")
        for col in ("model", "top-1", "log loss"):
            t.add_column(col, justify="left" if col == "model" else "right")
        t.add_row(f"Markov order {n.order}", f"{n.top1:.1%}", f"{n.log_loss:.3f}")
        t.add_row("order 0 (baseline)", f"{n.baseline_top1:.1%}", f"{n.baseline_log_loss:.3f}")
        out.append(t)
    p = m.next_predictions
    t = Table(title=f"ongoing journeys: most likely next step (first {top} of {len(p):,})", title_justify="left")
    for col in ("entity", "last step", "next step", "p", "predicted current"):
        t.add_column(col, justify="right" if col == "p" else "left")
    for r in p.head(top).itertuples():
        t.add_row(str(r.entity_id), r.last_step, r.next_step, f"{r.next_probability:.2f}", r.predicted_current)
    out.append(t)
    return out


def lift_table(frame, min_n: int) -> Table:
    """Lift per action, band and segment (newest scoring date first)."""
    t = Table(title=f"lift against the holdout (no claim below {min_n} per arm)", title_justify="left")
    for col in ("scored", "action", "band", "segment", "treated", "holdout", "difference [CI]", "status"):
        t.add_column(col, justify="right" if col in ("treated", "holdout", "difference [CI]") else "left",
                     overflow="fold")
    for r in frame.itertuples():
        diff = "" if r.difference != r.difference else \
            f"{r.difference:+.1%} [{r.ci_low:+.1%}, {r.ci_high:+.1%}]"
        style = {"lift": "green", "harm": "red", "collecting": "dim"}.get(r.status, "")
        t.add_row(f"{r.score_as_of:%Y-%m-%d}", r.action, r.band, r.segment,
                  f"{r.treated_n:,} ({_f(r.treated_rate, '{:.0%}')})", f"{r.holdout_n:,} ({_f(r.holdout_rate, '{:.0%}')})",
                  diff, f"[{style}]{r.status}[/]" if style else r.status)
    return t


def journey_maps_files_table(files) -> Table:
    """Journey map pages found under the reports folder."""
    t = Table(title="journey maps (newest first)", title_justify="left")
    for col in ("task/segment", "as of", "report"):
        t.add_column(col, overflow="fold")
    for f in files:
        t.add_row(f"{f.task}/{f.segment}", f.as_of, str(f.html))
    return t


# --- status -------------------------------------------------------------------------------


def status_segments_table(segments) -> Table:
    """Per task and segment: production version and since when, scoring mode, last monitoring."""
    t = Table(title="models", title_justify="left")
    for col in ("model", "production", "since", "scoring", "monitored", "decisions"):
        t.add_column(col, no_wrap=col != "decisions")
    for s in segments:
        prod = f"{_v(s.production_version)} {s.production_kind or ''}".strip() if s.production_version else "-"
        mode = s.scoring_mode or "-"
        if len(s.scoring_modes) > 1:
            mode += f" (+{len(s.scoring_modes) - 1})"
        mon = "-" if s.monitored_as_of is None else _when(s.monitored_as_of) + (
            " [bold red]error[/]" if s.monitor_status == "error" else " [bold red]drift[/]" if s.drift_detected else "")
        t.add_row(f"{s.task}/{s.segment}", prod, _when(s.production_since) or "-", mode, mon,
                  ", ".join(s.decisions) or "-")
    return t


def status_deployments_table(deployments) -> Table:
    """Each deployment: schedule, last run (state), next run."""
    t = Table(title="deployments", title_justify="left")
    for col in ("deployment", "schedule", "last run", "state", "next run"):
        t.add_column(col, no_wrap=True)
    for d in deployments:
        state = d.last_run_state or "-"
        style = {"COMPLETED": "green", "FAILED": "red", "CRASHED": "red"}.get(state, "")
        t.add_row(d.name, (d.schedule or "on demand") + (" (paused)" if d.paused else ""),
                  _when(d.last_run_at) or "-", f"[{style}]{state}[/]" if style else state,
                  _when(d.next_run_at) or "-")
    return t


def status_health_table(health) -> Table:
    t = Table(title="stack", title_justify="left", box=box.SIMPLE)
    for col in ("component", "ok", "detail"):
        t.add_column(col)
    for h in health:
        t.add_row(h.component, "[green]yes[/]" if h.ok else "[bold red]no[/]", h.detail)
    return t
