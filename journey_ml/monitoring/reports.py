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


@dataclass
class ReportFiles:
    """Where a report was written, and what it says in a few figures."""

    html: Path
    json: Path
    summary: dict


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


def sample_frame(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """A seeded uniform sample of ``rows`` rows (the frame itself when it is no bigger)."""
    if len(frame) <= rows:
        return frame
    idx = np.sort(np.random.default_rng(seed).choice(len(frame), size=rows, replace=False))
    return frame.iloc[idx]


def _placeholder(out_dir: Path, name: str, title: str, reason: str, summary: dict) -> ReportFiles:
    """An HTML page and a JSON file saying why there is no Evidently report."""
    h, j = out_dir / f"{name}.html", out_dir / f"{name}.json"
    h.write_text(f"<html><head><title>{html.escape(title or name)}</title></head><body>"
                 f"<h1>{html.escape(title or name)}</h1><p>No Evidently report: {html.escape(reason)}</p>"
                 "</body></html>")
    summary = jsonable({**summary, "report": None, "reason": reason})
    j.write_text(json.dumps({"summary": summary}, indent=1, default=str, allow_nan=False))
    return ReportFiles(html=h, json=j, summary=summary)


def _save(snapshot, out_dir: Path, name: str, summary: dict) -> ReportFiles:
    h, j = out_dir / f"{name}.html", out_dir / f"{name}.json"
    page = snapshot.get_html_str(as_iframe=False)
    title = summary.get("title")
    if title:  # Evidently's page has no title of its own: say which task, segment and window this is
        page = page.replace("<body>", f"<body><h2 style='font-family:sans-serif'>{html.escape(title)}</h2>", 1)
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
    ref = sample_frame(reference, rows, seed)[columns]
    cur = sample_frame(current, rows, seed + 1)[columns]
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
                         "label": pd.to_numeric(frame["label"], errors="coerce")}).dropna()
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
