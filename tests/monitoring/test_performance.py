"""Performance on matured labels, and the minimum counts that make it worth judging."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from journey_ml.monitoring.performance import performance

BANDS = [("high", 0.5), ("medium", 0.2), ("low", 0.0)]


def calibrated(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.5, 4, n)
    return p, (rng.random(n) < p).astype(int)


def test_calibrated_scores():
    p, y = calibrated(20000)
    r = performance(p, y, bands=BANDS)
    assert r.enough and r.reason is None and r.n == 20000 and r.positives == int(y.sum())
    assert r.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert r.accuracy == pytest.approx(((p >= 0.5) == y).mean())
    assert r.brier == pytest.approx(np.mean((p - y) ** 2))
    top = np.argsort(-p)[:2000]
    assert r.top_decile_precision == pytest.approx(y[top].mean())
    assert [c["band"] for c in r.calibration] == ["high", "medium", "low"]
    assert sum(c["n"] for c in r.calibration) == r.n
    for c in r.calibration:  # calibrated by construction: observed close to predicted in every band
        assert c["observed_rate"] == pytest.approx(c["mean_predicted"], abs=0.03)


def test_perfect_and_inverted_rankings():
    y = np.array([0] * 300 + [1] * 100)
    p = np.where(y == 1, 0.9, 0.1)
    r = performance(p, y, bands=BANDS)
    assert r.roc_auc == 1.0 and r.accuracy == 1.0 and r.top_decile_precision == 1.0
    assert r.brier == pytest.approx(0.01)
    r = performance(1 - p, y, bands=BANDS)
    assert r.roc_auc == 0.0 and r.top_decile_precision == 0.0


def test_auc_handles_ties_like_sklearn():
    rng = np.random.default_rng(1)
    p = rng.choice([0.1, 0.2, 0.5, 0.7], 1000)
    y = (rng.random(1000) < p).astype(int)
    assert performance(p, y, bands=BANDS).roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_band_edges_belong_to_the_band_they_start():
    p = np.array([0.0, 0.19999, 0.2, 0.49999, 0.5, 1.0] * 50)
    y = np.array([0, 1] * 150)
    r = performance(p, y, bands=BANDS, min_labels=10)
    assert {c["band"]: c["n"] for c in r.calibration} == {"high": 100, "medium": 100, "low": 100}


def test_empty_band_has_no_rates():
    p, y = calibrated(1000)
    r = performance(p * 0.4, y, bands=BANDS)
    high = next(c for c in r.calibration if c["band"] == "high")
    assert high == {"band": "high", "min": 0.5, "n": 0, "mean_predicted": None, "observed_rate": None}


@pytest.mark.parametrize("n, positives, kwargs, words", [
    (0, 0, {}, "only 0 matured labels, fewer than the minimum 200"),
    (150, 40, {}, "only 150 matured labels"),
    (1000, 5, {}, "only 5 positive labels among 1000, fewer than the minimum 10"),
    (1000, 995, {}, "only 5 negative labels"),
    (1000, 0, {}, "only 0 positive labels"),
    (300, 40, {"min_labels": 500}, "fewer than the minimum 500"),
])
def test_too_few_labels(n, positives, kwargs, words):
    y = np.array([1] * positives + [0] * (n - positives))
    p = np.linspace(0, 1, n)
    r = performance(p, y, bands=BANDS, **kwargs)
    assert not r.enough and words in r.reason
    assert (r.accuracy, r.roc_auc, r.top_decile_precision, r.brier) == (None, None, None, None)
    assert r.calibration == [] and r.n == n and r.positives == positives


def test_single_class_when_allowed():
    y = np.zeros(500, dtype=int)
    r = performance(np.full(500, 0.1), y, bands=BANDS, min_positives=0)
    assert r.enough and r.roc_auc is None and "ROC AUC is undefined" in r.reason
    assert r.accuracy == 1.0 and r.brier == pytest.approx(0.01)


def test_missing_values_are_dropped_and_counted():
    p, y = calibrated(1000)
    p = p.copy()
    y = y.astype(float)
    p[:30] = np.nan
    y[30:50] = np.nan
    r = performance(p, y, bands=BANDS)
    assert r.dropped == 50 and r.n == 950 and r.enough


@pytest.mark.parametrize("p, y, words", [
    (np.full(300, 0.5), np.array([0, 1, 2] * 100), "labels must be 0 or 1"),
    (np.full(300, 1.5), np.array([0, 1, 1] * 100), "probabilities must be within [0, 1]"),
])
def test_bad_inputs_are_reasons_not_crashes(p, y, words):
    r = performance(p, y, bands=BANDS)
    assert not r.enough and words in r.reason


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="3 probabilities but 2 labels"):
        performance([0.1, 0.2, 0.3], [0, 1], bands=BANDS)


def test_to_dict_is_json_ready():
    p, y = calibrated(500)
    d = json.loads(json.dumps(performance(p, y, bands=BANDS).to_dict(), allow_nan=False))
    assert d["enough"] and len(d["calibration"]) == 3
    d = json.loads(json.dumps(performance([], [], bands=BANDS).to_dict(), allow_nan=False))
    assert d["enough"] is False and d["roc_auc"] is None


# --- #11.3: performance estimated before labels mature (CBPE) ------------------------------------

def test_expected_auc_by_hand():
    # rows 0.2, 0.6, 0.9: pairs (i positive, j negative, i != j) weighted p_i (1 - p_j)
    from journey_ml.monitoring.performance import expected_auc

    p = [0.2, 0.6, 0.9]
    num = den = 0.0
    for i, pi in enumerate(p):
        for j, pj in enumerate(p):
            if i != j:
                w = pi * (1 - pj)
                den += w
                num += w * (1.0 if pi > pj else 0.5 if pi == pj else 0.0)
    assert expected_auc(np.array(p)) == pytest.approx(num / den)
    assert expected_auc(np.array([0.3, 0.3, 0.3])) == pytest.approx(0.5)  # no spread, no ranking


def test_cbpe_matches_realised_figures_on_calibrated_scores():
    from journey_ml.monitoring.performance import estimate_performance

    rng = np.random.default_rng(21)
    p = rng.beta(1.2, 6, 20_000)
    y = (rng.random(p.size) < p).astype(int)  # calibrated by construction
    est = estimate_performance(p)
    real = performance(p, y, bands=[("all", 0.0)])
    assert est.roc_auc == pytest.approx(real.roc_auc, abs=0.01)
    assert est.accuracy == pytest.approx(real.accuracy, abs=0.01)
    c = est.confusion
    assert sum(c.values()) == pytest.approx(p.size)
    assert c["tp"] + c["fn"] == pytest.approx(p.sum())
    few = estimate_performance(p[:10])
    assert few.roc_auc is None and "only 10 scored rows" in few.reason
