"""Drift: Evidently's tests and verdicts, computed exactly; bad inputs never sink the run."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from journey_ml.features.declaration import FeatureSet, FeatureSpec
from journey_ml.monitoring.drift import (
    DriftOptions,
    check_drift,
    explanation_drift,
    feature_drift,
    prediction_drift,
    wasserstein_sorted,
)

NUM = ["n_norm", "n_logn", "n_pois", "n_bin", "n_tri"]
CAT = ["c_many", "c_two"]
FS = FeatureSet("test", "account", tuple(
    [FeatureSpec(c, "numeric", c, "g") for c in NUM] + [FeatureSpec(c, "categorical", c, "g") for c in CAT]))


def make(n: int, rng: np.random.Generator, shift: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per customer; ``shift`` moves named columns by a known amount."""
    s = {c: 0.0 for c in NUM + CAT} | (shift or {})
    return pd.DataFrame({
        "n_norm": rng.normal(s["n_norm"], 1, n),
        "n_logn": rng.lognormal(s["n_logn"], 1, n),
        "n_pois": rng.poisson(2 + s["n_pois"], n).astype(float),
        "n_bin": rng.binomial(1, 0.3 + s["n_bin"], n).astype(float),
        "n_tri": rng.choice([0.0, 1.0, 2.0], n, p=[0.5 - s["n_tri"], 0.3, 0.2 + s["n_tri"]]),
        "c_many": rng.choice(list("abcdefg"), n),
        "c_two": rng.choice(["yes", "no"], n, p=[0.5 - s["c_two"], 0.5 + s["c_two"]]),
    })


def evidently_verdicts(reference: pd.DataFrame, current: pd.DataFrame, fs: FeatureSet) -> dict:
    """Evidently's own DataDriftPreset on the same data: column -> summary."""
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    from journey_ml.monitoring.reports import data_definition, evidently_drift_summary

    dd = data_definition(fs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = Report([DataDriftPreset()], include_tests=True).run(
            Dataset.from_pandas(current, data_definition=dd), Dataset.from_pandas(reference, data_definition=dd))
    return evidently_drift_summary(snap.dict())


@pytest.mark.parametrize("n", [400, 5000])
def test_no_drift_on_two_samples_of_one_distribution(n):
    rng = np.random.default_rng(11)
    res = check_drift(make(n, rng), make(n, rng), FS)
    assert res.contract.ok
    assert res.tested_columns == len(FS.features)
    if n > 1000:  # distances: no false alarm at all
        assert res.drifted_columns == []
    else:  # p-values at 5%: an occasional false alarm is the test's nature, not more
        assert len(res.drifted_columns) <= 1
    assert not res.dataset_drift


@pytest.mark.parametrize("n", [500, 5000])
@pytest.mark.parametrize("column, amount", [("n_norm", 0.5), ("n_logn", 0.5), ("n_pois", 1.5), ("n_bin", 0.3),
                                            ("n_tri", 0.3), ("c_two", 0.3)])
def test_drift_detected_on_a_shifted_column(n, column, amount):
    rng = np.random.default_rng(12)
    res = check_drift(make(n, rng), make(n, rng, {column: amount}), FS)
    assert column in res.drifted_columns
    assert res.columns[column].drifted
    if n > 1000:
        assert res.drifted_columns == [column]


@pytest.mark.parametrize("n_ref, n_cur", [(300, 400), (900, 5000), (1000, 1000), (1001, 700), (6000, 20000)])
def test_same_tests_and_verdicts_as_evidently(n_ref, n_cur):
    rng = np.random.default_rng(n_ref)
    ref = make(n_ref, rng)
    cur = make(n_cur, rng, {"n_norm": 0.15, "n_logn": 0.3, "n_pois": 0.5, "c_two": 0.1, "n_tri": 0.1})
    cur.loc[cur.index[: n_cur // 20], "n_norm"] = np.nan  # Evidently drops these; so must we
    cur.loc[cur.index[-5:], "n_logn"] = np.inf
    ours = check_drift(ref, cur, FS, contract_kwargs={"max_inf_share": 0.01})
    ev = evidently_verdicts(ref, cur, FS)
    assert sorted(ours.drifted_columns) == sorted(ev["drifted_columns"])
    names = {"ks": "K-S p_value", "chisquare": "chi-square p_value", "z": "Z-test p_value",
             "wasserstein": "Wasserstein distance (normed)", "jensenshannon": "Jensen-Shannon distance"}
    for c in NUM + CAT:
        o, e = ours.columns[c], ev["columns"][c]
        assert names[o.method] == e["method"], c
        assert o.statistic == pytest.approx(e["score"], rel=1e-9, abs=1e-12), c
        assert o.threshold == pytest.approx(e["threshold"]), c
    # the share of Evidently's column tests; its DriftedColumnsCount keeps infinities (Wasserstein NaN,
    # "no drift") where its column test drops them, so it is compared below on data without any
    assert ours.share_drifted == pytest.approx(ev["share_drifted"])


def test_evidently_dataset_count_agrees_without_infinities():
    rng = np.random.default_rng(21)
    ref, cur = make(3000, rng), make(2000, rng, {"n_norm": 0.3, "c_two": 0.2})
    ev = evidently_verdicts(ref, cur, FS)
    ours = check_drift(ref, cur, FS)
    assert ours.share_drifted == pytest.approx(ev["evidently_count_share"]) == pytest.approx(2 / 7)


@pytest.mark.parametrize("n, m", [(1, 1), (3, 7), (1000, 1000), (5000, 3001), (20000, 123)])
def test_wasserstein_matches_scipy(n, m):
    rng = np.random.default_rng(n + m)
    a, b = rng.lognormal(0, 1, n), rng.normal(1, 2, m)
    ours = wasserstein_sorted(np.sort(a), np.sort(b))
    assert ours == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def _edge(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    ref, cur = make(3000, rng), make(800, rng)
    if name == "empty current window":
        cur = cur.iloc[:0]
    elif name == "one-row batch":
        cur = cur.iloc[:1]
    elif name == "all-null column":
        cur["n_norm"] = np.nan
    elif name == "all-infinite column":
        cur["n_logn"] = np.inf
    elif name == "missing column":
        cur = cur.drop(columns=["n_pois"])
    elif name == "numeric column as text":
        cur["n_norm"] = cur["n_norm"].map(lambda v: f"{v:.3f}")
    elif name == "new categorical values":
        cur["c_many"] = rng.choice(["x", "y", "z"], len(cur))
    elif name == "constant column":
        cur["n_pois"] = 2.0
    elif name == "50% null spike":
        cur.loc[cur.index[::2], "n_norm"] = np.nan
    return ref, cur


EDGES = [  # (case, column, status, tested, words in the reason)
    ("empty current window", None, None, False, "empty (0 rows)"),
    ("one-row batch", None, None, False, "has 1 rows"),
    ("all-null column", "n_norm", "all_null", False, "null in every current row"),
    ("all-infinite column", "n_logn", "all_infinite", False, "no finite value"),
    ("missing column", "n_pois", "missing", False, "missing from the current data"),
    ("numeric column as text", "n_norm", "type_mismatch", False, "arrived as object"),
    ("new categorical values", "c_many", "unseen_categories", True, "never seen"),
    ("constant column", "n_pois", "constant", True, "constant"),
    ("50% null spike", "n_norm", "null_spike", True, "null in 50.0% of current rows"),
]


@pytest.mark.parametrize("case, column, status, tested, words", EDGES, ids=[e[0] for e in EDGES])
def test_edge_inputs_never_crash_and_are_reported(case, column, status, tested, words):
    ref, cur = _edge(case)
    res = check_drift(ref, cur, FS, reference_scores=np.full(len(ref), 0.3), current_scores=np.full(len(cur), 0.3))
    json.dumps(res.to_dict(), allow_nan=False)  # every result serialises, NaN included
    assert not res.contract.ok
    assert any(words in p for p in res.contract.problems), res.contract.problems
    if column is None:  # the whole batch is unusable: nothing tested, nothing flagged
        assert res.tested_columns == 0 and res.drifted_columns == [] and not res.dataset_drift
        assert all(words in c.skipped for c in res.columns.values())
        assert res.prediction is not None and res.prediction.skipped
        return
    assert res.contract.columns[column].status == status
    col = res.columns[column]
    if tested:
        assert col.skipped is None
    else:
        assert col.skipped and words in col.skipped and repr(column) in col.skipped
        assert column in res.skipped_columns
    # the other columns are still tested
    assert res.tested_columns >= len(FS.features) - 1


def test_a_50pct_null_spike_reads_as_no_drift_but_the_contract_catches_it():
    ref, cur = _edge("50% null spike")
    res = check_drift(ref, cur, FS)
    assert not res.columns["n_norm"].drifted  # Evidently's test, on the non-null half: no drift
    assert "n_norm" not in evidently_verdicts(ref, cur, FS)["drifted_columns"]
    assert res.contract.columns["n_norm"].status == "null_spike"
    assert res.contract.columns["n_norm"].null_share == pytest.approx(0.5, abs=0.01)


def test_new_categories_are_drift_too():
    ref, cur = _edge("new categorical values")
    res = check_drift(ref, cur, FS)
    assert "c_many" in res.drifted_columns
    assert res.contract.columns["c_many"].unseen_share == 1.0


@pytest.mark.parametrize("column, bad, words", [
    ("n_norm", ["1", "2", "x"] * 400, "not numbers"),  # text in a numeric column
    ("n_norm", [np.nan] * 1200, "no finite value in the current data"),
    ("c_many", [None] * 1200, "no value in the current data"),
    ("c_many", [[1], [2]] * 600, "unhashable"),  # values no test can count
])
def test_feature_drift_guards_each_column(column, bad, words):
    rng = np.random.default_rng(5)
    ref, cur = make(1200, rng), make(1200, rng)
    cur[column] = pd.Series(bad, index=cur.index, dtype=object)
    out = feature_drift(ref, cur, FS)  # no contract in front: the guard alone must hold
    assert out[column].skipped and words in out[column].skipped and not out[column].drifted
    assert all(out[c].skipped is None for c in FS.names() if c != column)


def test_feature_drift_unknown_column_is_skipped():
    rng = np.random.default_rng(5)
    out = feature_drift(make(50, rng), make(50, rng), FS, columns=["nope", "n_norm"])
    assert "not in feature set" in out["nope"].skipped
    assert out["n_norm"].skipped is None


def test_share_threshold_and_critical_columns():
    rng = np.random.default_rng(6)
    ref = make(4000, rng)
    cur = make(4000, rng, {"n_norm": 1.0, "n_pois": 1.5, "n_bin": 0.3, "c_two": 0.3})
    res = check_drift(ref, cur, FS, options=DriftOptions(critical_columns=["n_bin", "c_many"]))
    assert sorted(res.drifted_columns) == ["c_two", "n_bin", "n_norm", "n_pois"]
    assert res.share_drifted == pytest.approx(4 / 7)
    assert res.dataset_drift  # 4/7 >= 0.5
    assert res.critical_drifted == ["n_bin"]
    res = check_drift(ref, cur, FS, options=DriftOptions(share_threshold=0.6))
    assert not res.dataset_drift


def test_critical_column_made_untestable_is_named():
    ref, cur = _edge("missing column")
    res = check_drift(ref, cur, FS, options=DriftOptions(critical_columns=["n_pois"]))
    assert res.critical_skipped == ["n_pois"] and res.critical_drifted == []


@pytest.mark.parametrize("n_ref, n_cur, shift, drifted, method", [
    (5000, 5000, 0.0, False, "wasserstein"),
    (5000, 5000, 0.1, True, "wasserstein"),
    (500, 3000, 0.0, False, "ks"),
    (500, 3000, 0.1, True, "ks"),
])
def test_prediction_drift(n_ref, n_cur, shift, drifted, method):
    rng = np.random.default_rng(8)
    ref = rng.beta(2, 5, n_ref)
    cur = np.clip(rng.beta(2, 5, n_cur) + shift, 0, 1)
    res = prediction_drift(ref, cur)
    assert res.method == method and res.drifted is drifted and res.column == "prediction"


def test_prediction_drift_on_nothing_is_skipped():
    res = prediction_drift(np.array([0.2, 0.3]), np.array([]))
    assert res.skipped and "no finite value in the current data" in res.skipped


FEATS = [f"f{i}" for i in range(30)]


@pytest.mark.parametrize("change, drifted", [
    ("same", False),
    ("noise", False),  # small jitter of the importances: rankings barely move
    ("tail", False),  # the long tail reshuffles: not a shift of what drives the model
    ("swap_top", True),  # the top of the ranking is replaced
    ("reverse", True),
])
def test_explanation_drift(change, drifted):
    rng = np.random.default_rng(9)
    ref = {f: float(v) for f, v in zip(FEATS, np.geomspace(1.0, 1e-4, len(FEATS)), strict=True)}
    cur = dict(ref)
    if change == "noise":
        cur = {f: v * rng.uniform(0.9, 1.1) for f, v in ref.items()}
    elif change == "tail":
        tail = FEATS[20:]
        cur.update(dict(zip(tail, rng.permutation([ref[f] for f in tail]), strict=True)))
    elif change == "swap_top":
        for a, b in zip(FEATS[:8], FEATS[-8:], strict=True):
            cur[a], cur[b] = ref[b], ref[a]
    elif change == "reverse":
        cur = dict(zip(FEATS, reversed(list(ref.values())), strict=True))
    res = explanation_drift(ref, cur, top_k=10)
    assert res.drifted is drifted, (res.rank_correlation, res.top_k_overlap)
    if change == "same":
        assert res.rank_correlation == 1.0 and res.top_k_overlap == 1.0
        assert res.entered_top_k == [] and res.left_top_k == []
    if change == "swap_top":
        assert set(res.left_top_k) == set(FEATS[:8]) and set(res.entered_top_k) == set(FEATS[-8:])


def test_explanation_drift_degenerate_inputs():
    res = explanation_drift({}, {"a": 1.0})
    assert not res.drifted and "no feature" in res.skipped
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["rank_correlation"] is None
    res = explanation_drift({"a": 1.0, "b": float("nan")}, {"a": 2.0, "b": 1.0})
    assert res.reference_ranking == ["a"] and not res.drifted


def test_check_drift_takes_per_row_shap_frames():
    rng = np.random.default_rng(10)
    ref, cur = make(2000, rng), make(2000, rng)
    shap_ref = pd.DataFrame({c: rng.normal(0, w, 500) for c, w in zip(NUM + CAT, range(7, 0, -1), strict=True)})
    shap_cur = pd.DataFrame({c: rng.normal(0, w, 500) for c, w in zip(NUM + CAT, range(1, 8), strict=True)})
    res = check_drift(ref, cur, FS, reference_shap=shap_ref, current_shap=shap_cur,
                      options=DriftOptions(top_k=3))
    assert res.explanation.reference_ranking[0] == "n_norm"
    assert res.explanation.current_ranking[0] == "c_two"
    assert res.explanation.drifted


def test_result_to_dict_round_trips_through_json():
    rng = np.random.default_rng(13)
    ref, cur = make(1500, rng), make(1500, rng, {"n_norm": 1.0})
    cur["n_logn"] = np.nan
    res = check_drift(ref, cur, FS, reference_scores=rng.random(1500), current_scores=rng.random(1500),
                      reference_shap={"a": 1.0, "b": 0.5}, current_shap={"a": 0.4, "b": 0.5})
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["drifted_columns"] == ["n_norm"]
    assert d["columns"]["n_logn"]["skipped"] and d["columns"]["n_logn"]["statistic"] is None
    assert d["contract"]["columns"]["n_logn"]["status"] == "all_null"
    assert d["prediction"]["method"] == "wasserstein"
    assert d["explanation"]["current_ranking"] == ["b", "a"]


def test_a_broken_explanation_input_is_reported_not_raised():
    rng = np.random.default_rng(14)
    ref, cur = make(500, rng), make(500, rng)
    res = check_drift(ref, cur, FS, reference_shap={"a": "high"}, current_shap={"a": 1.0})
    assert res.explanation is not None and not res.explanation.drifted
    assert "explanation drift not computed" in res.explanation.skipped


def test_effect_floor_and_importance_weighted_share():
    from journey_ml.features.declaration import FeatureSet, FeatureSpec
    from journey_ml.monitoring.drift import DriftOptions

    fs = FeatureSet("t", "account", (FeatureSpec("flag", "numeric", "flag", "g"),
                                     FeatureSpec("amount", "numeric", "amount", "g"),
                                     FeatureSpec("other", "numeric", "other", "g")))
    rng = np.random.default_rng(3)
    n = 900  # a small reference: Evidently's p-value tests
    ref = pd.DataFrame({"flag": (rng.random(n) < 0.40).astype(float), "amount": rng.normal(10, 2, n),
                        "other": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"flag": (rng.random(n) < 0.48).astype(float), "amount": rng.normal(13, 2, n),
                        "other": rng.normal(0, 1, n)})
    r = check_drift(ref, cur, fs, options=DriftOptions(min_effect=0.1,
                                                      importance={"flag": 0.7, "amount": 0.2, "other": 0.1}))
    # the z-test flags an 8-point shift of a flag, but its Jensen-Shannon effect is small
    assert r.columns["flag"].drifted and r.columns["flag"].effect < 0.1
    assert r.columns["amount"].drifted and r.columns["amount"].effect == pytest.approx(1.5, abs=0.2)
    assert r.drifted_columns == ["flag", "amount"] and r.counted_columns == ["amount"]
    assert r.weighted_share == pytest.approx(0.2)
