"""Evidently reports: written as HTML and parseable JSON, on the usable columns, on a sound sample."""

from __future__ import annotations

import html as html_mod
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from journey_ml.features.declaration import FeatureSet, FeatureSpec
from journey_ml.monitoring.contract import check_contract
from journey_ml.monitoring.drift import check_drift
from journey_ml.monitoring.performance import performance
from journey_ml.monitoring.reports import (
    add_summary,
    classification_report,
    data_definition,
    drift_report,
    evidently_frame,
)

FS = FeatureSet("test", "account", (
    FeatureSpec("visits", "numeric", "visits", "activity"),
    FeatureSpec("revenue", "numeric", "revenue", "value"),
    FeatureSpec("tenure", "numeric", "tenure", "recency"),
    FeatureSpec("industry", "categorical", "industry", "firmographic"),
    FeatureSpec("plan", "categorical", "plan", "firmographic"),
))


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "visits": rng.poisson(3 + 2 * shift, n).astype(float), "revenue": rng.lognormal(3 + shift, 1, n),
        "tenure": rng.normal(100, 20, n), "industry": rng.choice(["tech", "retail", "health"], n),
        "plan": rng.choice(["free", "pro"], n, p=[0.6 - 0.3 * shift, 0.4 + 0.3 * shift])})


def _read(files):
    assert files.html.exists() and files.json.exists()
    assert files.html.read_text().lstrip().lower().startswith(("<!doctype html", "<html"))
    def strict(token):
        raise AssertionError(f"not strict JSON: {token}")

    return json.loads(files.json.read_text(), parse_constant=strict)


def test_data_definition_is_derived_from_the_declaration():
    dd = data_definition(FS)
    assert dd.numerical_columns == FS.numeric() and dd.categorical_columns == FS.categorical()
    dd = data_definition(FS, ["plan", "visits"])
    assert dd.numerical_columns == ["visits"] and dd.categorical_columns == ["plan"]


def test_drift_report_written_and_agrees_with_check_drift(tmp_path):
    ref, cur = frame(3000, 1), frame(2500, 2, shift=1.0)
    files = drift_report(ref, cur, FS, tmp_path, title="conversion / smb")
    doc = _read(files)
    s = doc["summary"]
    assert s == files.summary and "evidently" in doc and doc["evidently"]["metrics"]
    assert s["reference_rows_sampled"] == 3000 and s["current_rows_sampled"] == 2500  # no sampling needed
    ours = check_drift(ref, cur, FS)
    assert sorted(s["drifted_columns"]) == sorted(ours.drifted_columns) == ["plan", "revenue", "visits"]
    assert "conversion / smb" in files.html.read_text()


def test_drift_report_samples_soundly(tmp_path):
    ref, cur = frame(20000, 3), frame(30000, 4, shift=1.0)
    files = drift_report(ref, cur, FS, tmp_path, sample_rows=5000, seed=7)
    s = files.summary
    assert (s["reference_rows"], s["current_rows"]) == (20000, 30000)
    assert (s["reference_rows_sampled"], s["current_rows_sampled"]) == (5000, 5000)
    # same verdicts as on the full data: the shifts are well beyond the sampling noise
    assert sorted(s["drifted_columns"]) == sorted(check_drift(ref, cur, FS).drifted_columns)
    files = drift_report(ref, cur, FS, tmp_path / "exact", sample_rows=5000, exact=check_drift(ref, cur, FS))
    assert files.summary["differs_from_exact"] == [] and files.summary["exact_drifted_columns"]
    # the same seed gives the same report figures
    again = drift_report(ref, cur, FS, tmp_path / "again", sample_rows=5000, seed=7).summary
    assert again["columns"] == s["columns"]


def test_sample_never_drops_the_reference_into_the_small_sample_tests(tmp_path):
    ref, cur = frame(5000, 5), frame(5000, 6)
    s = drift_report(ref, cur, FS, tmp_path, sample_rows=200).summary
    assert s["reference_rows_sampled"] == 1001
    assert s["columns"]["tenure"]["method"] == "Wasserstein distance (normed)"  # not K-S on a small sample


def test_drift_report_leaves_out_unusable_columns(tmp_path):
    ref, cur = frame(2000, 7), frame(2000, 8)
    cur["revenue"] = cur["revenue"].map(lambda v: f"{v:.0f} EUR")  # Evidently would raise on these
    cur["tenure"] = np.nan
    cur = cur.drop(columns=["plan"])
    files = drift_report(ref, cur, FS, tmp_path)  # default: the contract picks the columns
    s = _read(files)["summary"]
    assert s["columns_tested"] == ["visits", "industry"]
    assert set(s["columns"]) == {"visits", "industry"}
    usable = check_contract(ref, cur, FS).usable_columns
    assert drift_report(ref, cur, FS, tmp_path / "b", columns=usable).summary["columns_tested"] == usable


@pytest.mark.parametrize("rows, columns, words", [(0, None, "no usable column"), (500, [], "no usable column")])
def test_drift_report_placeholder(tmp_path, rows, columns, words):
    files = drift_report(frame(2000, 9), frame(rows, 10), FS, tmp_path, columns=columns)
    doc = _read(files)
    assert doc["summary"]["report"] is None and words in doc["summary"]["reason"]
    assert words in files.html.read_text()


def test_classification_report_matches_our_figures(tmp_path):
    rng = np.random.default_rng(11)
    p = rng.beta(2, 3, 2000)
    y = (rng.random(2000) < p).astype(int)
    files = classification_report(pd.DataFrame({"probability": p, "label": y}), tmp_path, title="perf")
    doc = _read(files)
    ours = performance(p, y, bands=[("high", 0.5), ("low", 0.0)])
    assert doc["summary"]["Accuracy"] == pytest.approx(ours.accuracy)
    assert doc["summary"]["RocAuc"] == pytest.approx(ours.roc_auc)
    assert files.html.name == "classification.html"


@pytest.mark.parametrize("frame_, words", [
    (pd.DataFrame({"probability": [0.1, 0.2] * 50, "label": [0] * 100}), "labels must include both 0 and 1"),
    (pd.DataFrame({"probability": [0.1] * 10}), "missing column(s) label"),
    (pd.DataFrame({"probability": [np.nan] * 10, "label": [1] * 10}), "no row with both"),
])
def test_classification_report_placeholder(tmp_path, frame_, words):
    files = classification_report(frame_, tmp_path)
    doc = _read(files)
    assert words in doc["summary"]["reason"]


# --- #11.1: reports that render, on frames shaped like the warehouse's, with our summary on top ---

def warehouse_like(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """A frame as the runner hands it over: entity ids (strings) as the index, nulls in a
    categorical column."""
    f = frame(n, seed, shift)
    f.index = [f"A{seed}{i:07d}" for i in range(n)]
    f["industry"] = f["industry"].astype(object)
    f.iloc[::7, f.columns.get_loc("industry")] = None
    return f


def test_drift_report_renders_on_an_entity_id_index(tmp_path):
    # before #11.1 every report on real data was "Evidently failed: DTypePromotionError" (Evidently
    # bins the frame's index for its plots; ours holds entity ids)
    ref, cur = warehouse_like(3000, 1), warehouse_like(2500, 2, shift=1.0)
    ours = check_drift(ref, cur, FS)
    files = drift_report(ref, cur, FS, tmp_path, exact=ours)
    assert files.error is None, files.error
    doc = _read(files)
    assert "evidently" in doc and doc["summary"].get("reason") is None
    assert sorted(doc["summary"]["drifted_columns"]) == sorted(ours.drifted_columns) == ["plan", "revenue", "visits"]
    assert doc["summary"]["differs_from_exact"] == []
    assert "No Evidently report" not in files.html.read_text()


def test_evidently_frame_has_one_dtype_per_declared_kind():
    raw = warehouse_like(50, 3)
    raw["tenure"] = raw["tenure"].astype(object)  # a numeric column read back as objects
    raw.iloc[3, raw.columns.get_loc("tenure")] = "n/a"
    f = evidently_frame(raw, FS, FS.names())
    assert np.isnan(f["tenure"][3]) and f["tenure"][4] == raw["tenure"].iloc[4]
    assert list(f.index) == list(range(50))
    assert all(f[c].dtype == np.float64 for c in FS.numeric())
    for c in FS.categorical():
        assert f[c].dtype == object and {type(v) for v in f[c]} <= {str, type(None)}


def _summary_rows(page: str, table_class: str) -> list[list[str]]:
    body = page[page.index(f"class='{table_class}'"):]
    body = body[:body.index("</table>")]
    return [[html_mod.unescape(re.sub("<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S) if "<td>" in row]


def _page_summary(ours, decisions):
    from journey_ml.monitoring.runner import ExecutedDecision, page_summary

    info = SimpleNamespace(name="journey-conversion-smb", version=3)
    drift_dict = {**ours.to_dict(), "detected": True,
                  "importance": {"revenue": 0.5, "plan": 0.3, "visits": 0.05, "tenure": 0.15}}
    perf = {"matured_as_of": "2026-03-01T00:00:00+00:00", "production": {"roc_auc": 0.81, "accuracy": 0.9, "n": 512}}
    executed = [ExecutedDecision(k, [r], {}, True, "") for k, r in decisions]
    return page_summary("conversion", "smb", info, datetime(2026, 6, 1, tzinfo=UTC), drift_dict, perf, executed,
                        {}, "drift")


def test_report_page_opens_with_our_summary(tmp_path):
    ref, cur = warehouse_like(3000, 1), warehouse_like(2500, 2, shift=1.0)
    ours = check_drift(ref, cur, FS)
    files = drift_report(ref, cur, FS, tmp_path, exact=ours)
    reports = {"drift_html": str(files.html), "drift_json": str(files.json)}
    add_summary(reports, _page_summary(ours, [("alert", "drift in plan, revenue, visits"), ("retrain", "drift")]),
                "drift")
    page = files.html.read_text()
    body = page[page.index("<body>"):]
    assert body.index("id='journey-summary'") < body.index("<script")  # above Evidently's sections
    rows = _summary_rows(page, "journey-drifted")
    # the drifted columns of the page are check_drift's, ranked by the model's importance
    assert [r[1] for r in rows] == ["revenue", "plan", "visits"]
    assert sorted(r[1] for r in rows) == sorted(ours.drifted_columns)
    assert "conversion / smb: journey-conversion-smb v3 as of 2026-06-01" in page
    assert "retrain" in page and "0.810" in page
    doc = _read(files)
    assert [c["column"] for c in doc["journey"]["drift"]["drifted"]] == ["revenue", "plan", "visits"]
    assert doc["journey"]["drift"]["share_text"] == "3 of 5 columns (60.0%)"


def test_evidently_failure_is_carried_and_shown(tmp_path, monkeypatch):
    import evidently

    def boom(self, *a, **k):  # an Evidently bug we cannot provoke on purpose
        raise TypeError("cannot render this")

    monkeypatch.setattr(evidently.Report, "run", boom)
    ref, cur = warehouse_like(2000, 1), warehouse_like(2000, 2, shift=1.0)
    ours = check_drift(ref, cur, FS)
    files = drift_report(ref, cur, FS, tmp_path, exact=ours)
    assert files.error == "Evidently failed: TypeError: cannot render this"
    reports = {"drift_html": str(files.html), "drift_json": str(files.json), "drift_error": files.error}
    from journey_ml.monitoring.runner import ExecutedDecision, page_summary

    s = page_summary("conversion", "smb", SimpleNamespace(name="m", version=1), datetime(2026, 6, 1, tzinfo=UTC),
                     {**ours.to_dict(), "detected": True}, None, [ExecutedDecision("alert", ["x"], {}, False, "")],
                     reports, "drift")
    add_summary(reports, s, "drift")
    page = files.html.read_text()
    assert "Evidently&#x27;s sections are missing" in page or "Evidently's sections are missing" in page
    assert sorted(r[1] for r in _summary_rows(page, "journey-drifted")) == sorted(ours.drifted_columns)
    # the CLI and the demo print it (the flow's artifact uses summary_markdown, below)
    from journey_ml.cli.render import decision_lines
    from journey_ml.monitoring.runner import (
        MonitorRunResult,
        SegmentMonitorResult,
        summary_markdown,
    )

    seg = SegmentMonitorResult("conversion", "smb", datetime(2026, 6, 1, tzinfo=UTC), "m", 1, "model", 1, None,
                               {"drifted_columns": [], "tested_columns": 5}, None, reports, [])
    run = MonitorRunResult("conversion", seg.as_of, "k", [seg], [], [], 0.1)
    assert any("TypeError: cannot render this" in line for line in decision_lines(run, skip_ok=True))
    assert "TypeError: cannot render this" in summary_markdown(run)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render_dom(page: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium."""
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                          "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (.ci/run installs it)")
def test_headless_render_shows_the_drift_table(tmp_path):
    ref, cur = warehouse_like(3000, 1), warehouse_like(2500, 2, shift=1.0)
    ours = check_drift(ref, cur, FS)
    files = drift_report(ref, cur, FS, tmp_path, exact=ours)
    add_summary({"drift_html": str(files.html)}, _page_summary(ours, [("alert", "drift")]), "drift")
    assert "<table class=\"MuiTable" not in files.html.read_text()  # Evidently draws its table in the browser
    dom = render_dom(files.html)
    assert "No Evidently report" not in dom and "Evidently failed" not in dom
    tables = re.findall(r"<table class=\"MuiTable.*?</table>", dom, re.S)
    drift_table = next(t for t in tables if "Stat Test" in t)
    rows = [[re.sub("<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in re.findall(r"<tr class=\"MuiTableRow-root(?! MuiTableRow-head).*?</tr>", drift_table, re.S)]
    verdict = {r[1]: r[5] for r in rows if len(r) > 5}
    assert set(verdict) == set(FS.names())
    assert sorted(c for c, v in verdict.items() if v == "Detected") == sorted(ours.drifted_columns)
    assert "journey-drifted" in dom  # our summary is rendered too
