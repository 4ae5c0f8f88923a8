"""Evidently 0.7 reports (HTML + JSON) for drift and classification quality.

The `DataDefinition` comes from the feature-set declaration. Drift reports run only on the
columns the data contract found usable (Evidently raises on the others) and on a seeded
sample, so they stay fast on big batches. The sample keeps more than 1000 reference rows
whenever the reference has them, so Evidently picks the same test as on the full data; our
drift decision itself (`drift.check_drift`) uses every row.
"""

from __future__ import annotations

import html
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journey_ml.features.declaration import FeatureSet
from journey_ml.monitoring.drift import DriftResult, jsonable

# a reference sample must keep more rows than this for Evidently to choose the large-sample tests
_SMALL_REFERENCE_ROWS = 1000


# where our own summary goes: the first thing in the page's body, filled once the policy decided
SUMMARY_MARK = "<!--journey-summary-->"


@dataclass
class ReportFiles:
    """Where a report was written, and what it says in a few figures.

    ``error`` says why Evidently's sections are missing (None when they rendered).
    """

    html: Path
    json: Path
    summary: dict
    error: str | None = None


def _no_telemetry() -> None:
    # Evidently reads DO_NOT_TRACK when it is imported: off unless the user asked for it
    os.environ.setdefault("DO_NOT_TRACK", "1")


def data_definition(feature_set: FeatureSet, columns: list[str] | None = None):
    """Evidently's DataDefinition for the declared features (optionally only ``columns``)."""
    _no_telemetry()
    from evidently import DataDefinition

    keep = set(feature_set.names() if columns is None else columns)
    return DataDefinition(numerical_columns=[n for n in feature_set.numeric() if n in keep],
                          categorical_columns=[n for n in feature_set.categorical() if n in keep])


def evidently_frame(frame: pd.DataFrame, feature_set: FeatureSet, columns: list[str]) -> pd.DataFrame:
    """``columns`` of ``frame`` as Evidently 0.7 can read them: one dtype per column, a plain index.

    Numeric features become float64 (anything unparsable is null), categorical ones object
    columns of strings with nulls as None, from the feature set's declared kinds. The index
    is reset: Evidently bins the index for its plots, and ours holds entity ids (strings),
    which fails with ``DTypePromotionError`` (float vs str).
    """
    out: dict[str, Any] = {}
    for name in columns:
        s = frame[name]
        if feature_set.spec(name).kind == "numeric":
            out[name] = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
        else:
            out[name] = np.array([None if _missing(v) else str(v) for v in s.tolist()], dtype=object)
    return pd.DataFrame(out, columns=list(columns))


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA or v is pd.NaT


def sample_frame(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """A seeded uniform sample of ``rows`` rows (the frame itself when it is no bigger)."""
    if len(frame) <= rows:
        return frame
    idx = np.sort(np.random.default_rng(seed).choice(len(frame), size=rows, replace=False))
    return frame.iloc[idx]


def _placeholder(out_dir: Path, name: str, title: str, reason: str, summary: dict) -> ReportFiles:
    """An HTML page and a JSON file saying why there is no Evidently report."""
    h, j = out_dir / f"{name}.html", out_dir / f"{name}.json"
    h.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title or name)}</title>"
                 f"</head><body>{SUMMARY_MARK}<h1>{html.escape(title or name)}</h1>"
                 f"<p class='journey-error'>No Evidently report: {html.escape(reason)}</p></body></html>",
                 encoding="utf-8")
    summary = jsonable({**summary, "report": None, "reason": reason})
    j.write_text(json.dumps({"summary": summary}, indent=1, default=str, allow_nan=False))
    return ReportFiles(html=h, json=j, summary=summary, error=reason)


def _save(snapshot, out_dir: Path, name: str, summary: dict) -> ReportFiles:
    h, j = out_dir / f"{name}.html", out_dir / f"{name}.json"
    page = snapshot.get_html_str(as_iframe=False)
    title = summary.get("title")
    head = f"<h2 style='font-family:sans-serif'>{html.escape(title)}</h2>" if title else ""
    # Evidently's page has no title of its own: say which task, segment and window this is
    page = page.replace("<body>", f"<body>{SUMMARY_MARK}{head}", 1)
    if title:
        page = page.replace("<head>", f"<head><title>{html.escape(title)}</title>", 1)
    h.write_text(page, encoding="utf-8")
    # one JSON file: our summary first, then Evidently's own snapshot dict; strict JSON (NaN -> null)
    doc = jsonable({"summary": summary, "evidently": snapshot.dict()})
    j.write_text(json.dumps(doc, indent=1, default=str, allow_nan=False))
    return ReportFiles(html=h, json=j, summary=summary)


def evidently_drift_summary(snapshot_dict: dict) -> dict[str, Any]:
    """Per-column method, score, threshold and verdict from a DataDriftPreset snapshot dict.

    The verdict is Evidently's own test status (FAIL = drifted), not a re-reading of the score.
    """
    cols: dict[str, dict[str, Any]] = {}
    share = None
    for m in snapshot_dict.get("metrics", []):
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            cols[cfg["column"]] = {"method": cfg.get("method"), "threshold": cfg.get("threshold"),
                                   "score": m.get("value"), "drifted": None}
        elif cfg.get("type", "").endswith("DriftedColumnsCount"):
            share = (m.get("value") or {}).get("share")
    for t in snapshot_dict.get("tests", []):
        params = (t.get("metric_config") or {}).get("params") or {}
        if params.get("type", "").endswith("ValueDrift") and params.get("column") in cols:
            cols[params["column"]]["drifted"] = t.get("status") == "FAIL"
    drifted = [c for c, v in cols.items() if v["drifted"]]
    # DriftedColumnsCount runs Evidently's legacy path, which keeps infinities (score NaN, "no
    # drift") where the per-column test drops them; the share of the column tests is kept apart
    return {"columns": cols, "drifted_columns": drifted,
            "share_drifted": len(drifted) / len(cols) if cols else 0.0, "evidently_count_share": share}


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, feature_set: FeatureSet, out_dir: Path, *,
                 columns: list[str] | None = None, sample_rows: int = 10_000, seed: int = 7, title: str = "",
                 drift_share: float = 0.5, name: str = "drift", exact: DriftResult | None = None) -> ReportFiles:
    """Evidently's DataDriftPreset on a sample of the usable columns, saved as HTML and JSON.

    ``columns`` should be `ContractResult.usable_columns` (default: check the contract here).
    ``exact``, the `check_drift` result on every row, puts the columns where the sampled
    report's verdict differs into the summary (``differs_from_exact``: near-threshold columns).
    Writes ``<name>.html`` and ``<name>.json`` under ``out_dir``; the JSON holds our summary
    and Evidently's snapshot. When Evidently cannot run (no usable column, empty batch, an
    Evidently error) a placeholder page says why; never raises on data.
    """
    _no_telemetry()
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    if columns is None:
        from journey_ml.monitoring.contract import check_contract

        columns = check_contract(reference, current, feature_set).usable_columns
    columns = [c for c in feature_set.names() if c in set(columns)]
    # never sample the reference down into the small-sample regime Evidently treats differently
    rows = max(int(sample_rows), _SMALL_REFERENCE_ROWS + 1)
    ref = evidently_frame(sample_frame(reference, rows, seed), feature_set, columns)
    cur = evidently_frame(sample_frame(current, rows, seed + 1), feature_set, columns)
    summary: dict[str, Any] = {"title": title, "columns_tested": columns, "reference_rows": len(reference),
                               "current_rows": len(current), "reference_rows_sampled": len(ref),
                               "current_rows_sampled": len(cur), "seed": seed}
    if not columns or cur.empty or ref.empty:
        reason = "no usable column" if not columns else "empty current or reference data"
        return _placeholder(out_dir, name, title, reason, summary)
    try:
        definition = data_definition(feature_set, columns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Evidently/plotly warn on every degenerate histogram
            snapshot = Report([DataDriftPreset(columns=columns, drift_share=drift_share)], include_tests=True,
                              metadata={"title": title} if title else None).run(
                Dataset.from_pandas(cur, data_definition=definition),
                Dataset.from_pandas(ref, data_definition=definition))
            d = snapshot.dict()
            summary.update(evidently_drift_summary(d))
            if exact is not None:
                summary["exact_drifted_columns"] = list(exact.drifted_columns)
                summary["differs_from_exact"] = sorted(set(summary["drifted_columns"]) ^ set(
                    c for c in exact.drifted_columns if c in summary["columns"]))
            summary["seconds"] = time.perf_counter() - t
            return _save(snapshot, out_dir, name, summary)
    except Exception as e:  # an Evidently failure must not sink the monitoring run
        return _placeholder(out_dir, name, title, f"Evidently failed: {type(e).__name__}: {e}", summary)


def classification_report(frame: pd.DataFrame, out_dir: Path, *, title: str = "", name: str = "classification",
                          threshold: float = 0.5) -> ReportFiles:
    """Evidently's ClassificationPreset on matured labels (columns ``probability``, ``label``).

    Writes ``<name>.html`` and ``<name>.json``; a placeholder says why when Evidently cannot
    run (no rows, one class only, bad columns). Never raises on data.
    """
    _no_telemetry()
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"title": title, "rows": len(frame)}
    missing = [c for c in ("probability", "label") if c not in frame.columns]
    if missing:
        return _placeholder(out_dir, name, title, f"missing column(s) {', '.join(missing)}", summary)
    data = pd.DataFrame({"probability": pd.to_numeric(frame["probability"], errors="coerce"),
                         "label": pd.to_numeric(frame["label"], errors="coerce")}).dropna().reset_index(drop=True)
    summary["rows_used"] = len(data)
    if data.empty:
        return _placeholder(out_dir, name, title, "no row with both a probability and a label", summary)
    data["label"] = data["label"].astype(int)
    classes = sorted(data["label"].unique().tolist())
    if classes != [0, 1]:
        return _placeholder(out_dir, name, title, f"labels must include both 0 and 1, found {classes}", summary)
    t = time.perf_counter()
    try:
        definition = DataDefinition(
            classification=[BinaryClassification(target="label", prediction_probas="probability", pos_label=1)],
            numerical_columns=["probability"], categorical_columns=["label"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snapshot = Report([ClassificationPreset(probas_threshold=threshold)], include_tests=True,
                              metadata={"title": title} if title else None).run(
                Dataset.from_pandas(data, data_definition=definition), None)
            d = snapshot.dict()
            for m in d.get("metrics", []):
                value = m.get("value")
                if isinstance(value, int | float):
                    summary[m["metric_name"].split("(")[0]] = value
            summary["seconds"] = time.perf_counter() - t
            return _save(snapshot, out_dir, name, summary)
    except Exception as e:
        return _placeholder(out_dir, name, title, f"Evidently failed: {type(e).__name__}: {e}", summary)


# --- our own summary, at the top of every report page -------------------------------------------

def ranked_by_importance(columns: list[str], importance: dict[str, float]) -> list[str]:
    """``columns`` with the model's most important first (ties, and unused features, by name)."""
    return sorted(columns, key=lambda c: (-float(importance.get(c, 0.0)), c))


def _fig(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def summary_html(s: dict[str, Any]) -> str:
    """Our summary block (HTML) from a page summary dict (see `add_summary`)."""
    e = html.escape
    rows = []
    for d in s.get("decisions") or []:
        rows.append(f"<li><b class='kind-{e(d['kind'])}'>{e(d['kind'])}</b>: {e('; '.join(d.get('reasons') or []))}"
                    + (f" <i>&rarr; {e(d['outcome'])}</i>" if d.get("outcome") else "") + "</li>")
    drift = s.get("drift") or {}
    drifted = drift.get("drifted") or []
    table = ""
    if drifted:
        body = "".join(
            f"<tr><td>{i}</td><td>{e(c['column'])}</td><td>{_fig(c.get('importance'))}</td><td>{e(c.get('method') or '')}"
            f"</td><td>{_fig(c.get('statistic'), 4)}</td><td>{_fig(c.get('threshold'))}</td>"
            f"<td>{_fig(c.get('effect'))}</td></tr>"
            for i, c in enumerate(drifted, 1))
        table = ("<table class='journey-drifted'><thead><tr><th>#</th><th>drifted column</th><th>model importance"
                 "</th><th>test</th><th>statistic</th><th>threshold</th><th>effect size</th></tr></thead>"
                 f"<tbody>{body}</tbody></table>")
    line = ""
    if drift:
        line = (f"<p>Drift: {e(drift.get('share_text') or '')} drifted"
                + (f"; importance-weighted share {_fig(drift.get('weighted_share'))}"
                   if drift.get("weighted_share") is not None else "")
                + (f"; score distribution drifted: {'yes' if drift.get('prediction_drifted') else 'no'}"
                   if drift.get("prediction_drifted") is not None else "")
                + f"; detected: <b>{'yes' if drift.get('detected') else 'no'}</b></p>"
                + (f"<p class='journey-reference'>Reference: {e(drift['reference'])}</p>" if drift.get("reference") else "")
                + (f"<p><i>Evidently's sections below cover {drift['report_columns']} of {drift.get('tested_columns')} "
                   "columns (the drifted ones by model importance first, then the most important others; "
                   "monitoring.report_max_columns)</i></p>"
                   if drift.get("report_columns") and drift["report_columns"] < (drift.get("tested_columns") or 0)
                   else ""))
    perf_rows = []
    for label, p in (("realised (matured labels)", s.get("realised")), ("estimated (CBPE, no labels)", s.get("estimated"))):
        if p:
            perf_rows.append(f"<tr><td>{e(label)}</td><td>{e(str(p.get('as_of') or ''))[:10]}</td><td>{_fig(p.get('roc_auc'))}"
                             f"</td><td>{_fig(p.get('accuracy'))}</td><td>{_fig(p.get('n'))}</td></tr>")
    perf = ("<table class='journey-performance'><thead><tr><th>performance</th><th>as of</th><th>ROC AUC</th>"
            "<th>accuracy</th><th>rows</th></tr></thead><tbody>" + "".join(perf_rows) + "</tbody></table>") \
        if perf_rows else "<p>Performance: no matured labels and no estimate yet.</p>"
    chart = s.get("chart_svg") or ""
    err = s.get("report_error")
    return (
        "<section id='journey-summary' style='font-family:sans-serif;margin:16px;padding:12px;"
        "border:1px solid #ccc;border-radius:6px;background:#fafafa'>"
        "<style>#journey-summary table{border-collapse:collapse;margin:6px 0}#journey-summary td,"
        "#journey-summary th{border:1px solid #ddd;padding:2px 8px;font-size:13px;text-align:left}</style>"
        f"<h2>{e(s.get('task', ''))} / {e(s.get('segment', ''))}: {e(s.get('model') or '')} v{_fig(s.get('version'))}"
        f" as of {e(str(s.get('as_of', ''))[:10])}</h2>"
        + (f"<p class='journey-error' style='color:#b00'><b>Evidently's sections are missing</b>: {e(err)} "
           "(the decision used journey-ml's exact statistics)</p>" if err else "")
        + "<h3>Decision</h3><ul class='journey-decisions'>" + "".join(rows) + "</ul>"
        + line + table + "<h3>Performance</h3>" + perf + chart + "</section>")


def add_summary(files: dict[str, str], summary: dict[str, Any], prefix: str) -> None:
    """Put our summary at the top of the ``<prefix>_html`` page and into its JSON (``journey``)."""
    h, j = files.get(f"{prefix}_html"), files.get(f"{prefix}_json")
    if h and Path(h).exists():
        page = Path(h).read_text(encoding="utf-8")
        block = summary_html(summary)
        page = page.replace(SUMMARY_MARK, block, 1) if SUMMARY_MARK in page else \
            page.replace("<body>", "<body>" + block, 1)
        Path(h).write_text(page, encoding="utf-8")
    if j and Path(j).exists():
        doc = json.loads(Path(j).read_text(encoding="utf-8"))
        doc = {"journey": jsonable(summary), **doc}
        Path(j).write_text(json.dumps(doc, indent=1, default=str, allow_nan=False), encoding="utf-8")


def performance_chart_svg(estimated: list[tuple[Any, float]], realised: list[tuple[Any, float]],
                          width: int = 640, height: int = 220) -> str:
    """An inline SVG: estimated ROC AUC per monitoring date (CBPE) and realised AUC per scoring
    date whose labels matured, on one time axis. Empty string when there is nothing to plot."""
    pts = [(pd.Timestamp(t), float(v)) for t, v in [*estimated, *realised]]
    if not pts:
        return ""
    t0, t1 = min(p[0] for p in pts), max(p[0] for p in pts)
    lo = min(0.5, min(p[1] for p in pts))
    span = max((t1 - t0).total_seconds(), 1.0)
    pad = 40

    def xy(t, v) -> tuple[float, float]:
        x = pad + (pd.Timestamp(t) - t0).total_seconds() / span * (width - 2 * pad)
        y = height - pad - (float(v) - lo) / (1.0 - lo) * (height - 2 * pad)
        return x, y

    def series(points, colour, name) -> str:
        if not points:
            return ""
        coords = [xy(t, v) for t, v in points]
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        dots = "".join(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{colour}'><title>{name} "
                       f"{pd.Timestamp(t):%Y-%m-%d}: {v:.3f}</title></circle>" for (x, y), (t, v) in zip(coords, points, strict=True))
        return f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{line}'/>{dots}"

    grid = "".join(f"<line x1='{pad}' x2='{width - pad}' y1='{xy(t0, g)[1]:.1f}' y2='{xy(t0, g)[1]:.1f}' "
                   f"stroke='#eee'/><text x='4' y='{xy(t0, g)[1] + 4:.1f}' font-size='10'>{g:.1f}</text>"
                   for g in np.arange(np.ceil(lo * 10) / 10, 1.01, 0.1))
    return (f"<svg class='journey-auc-chart' width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg'>"
            f"{grid}{series(estimated, '#1f77b4', 'estimated AUC')}{series(realised, '#d62728', 'realised AUC')}"
            f"<text x='{pad}' y='14' font-size='12' fill='#1f77b4'>estimated AUC (CBPE, per monitoring date)</text>"
            f"<text x='{pad + 300}' y='14' font-size='12' fill='#d62728'>realised AUC (per scoring date, matured)</text>"
            f"<text x='{pad}' y='{height - 8}' font-size='10'>{t0:%Y-%m-%d}</text>"
            f"<text x='{width - pad - 60}' y='{height - 8}' font-size='10'>{t1:%Y-%m-%d}</text></svg>")
