"""Evidently reports: written as HTML and parseable JSON, on the usable columns, on a sound sample."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from journey_ml.features.declaration import FeatureSet, FeatureSpec
from journey_ml.monitoring.contract import check_contract
from journey_ml.monitoring.drift import check_drift
from journey_ml.monitoring.performance import performance
from journey_ml.monitoring.reports import classification_report, data_definition, drift_report

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
