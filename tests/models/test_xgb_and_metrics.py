"""The XGBoost scorer and the metrics: behaviour on data with a known signal."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from journey_ml.models.metrics import better, calibration_table, evaluate
from journey_ml.models.xgb import Column, XGBScorer


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1 = rng.poisson(2, n).astype(float)
    x2 = rng.normal(size=n)
    cat = rng.choice(["a", "b", "c"], n)
    logit = -2.5 + 0.8 * x1 + 1.0 * (cat == "b")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"x1": x1, "x2": x2, "cat": cat})
    X.loc[X.sample(frac=0.05, random_state=seed).index, "x2"] = np.nan
    return X, y


COLS = [Column("x1", "numeric"), Column("x2", "numeric"), Column("cat", "categorical", ("a", "b"))]


@pytest.fixture(scope="module")
def fitted():
    X, y = _data(4000, 1)
    Xv, yv = _data(1500, 2)
    return XGBScorer(COLS, n_estimators=150, random_state=3).fit(X, y, Xv, yv)


def test_learns_the_signal_and_is_calibrated(fitted):
    Xt, yt = _data(3000, 3)
    m = evaluate(yt, fitted.predict_proba(Xt))
    assert m.roc_auc > 0.75
    # calibrated: mean prediction close to the observed rate, and per populated bin
    assert abs(fitted.predict_proba(Xt).mean() - yt.mean()) < 0.03
    assert all(abs(b["mean_predicted"] - b["observed"]) < 0.15 for b in m.calibration if b["n"] > 200)


def test_unseen_category_and_missing_values_are_handled(fitted):
    X = pd.DataFrame({"x1": [1.0, 1.0], "x2": [np.nan, 0.0], "cat": ["zzz", None]})
    p = fitted.predict_proba(X)
    assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))


def test_explanations_are_shap_values_that_add_up(fitted):
    Xt, _ = _data(50, 4)
    c = fitted.contributions(Xt)
    assert list(c.columns) == ["x1", "x2", "cat"]
    top = fitted.explain(Xt, top_k=2)
    assert len(top) == 50 and all(len(r) == 2 for r in top)
    assert top[0][0][0] in {"x1", "x2", "cat"}
    # x1 drives the outcome: it is the most important feature
    assert max(fitted.importance(), key=fitted.importance().get) == "x1"


def test_same_seed_same_model():
    X, y = _data(1500, 5)
    Xv, yv = _data(600, 6)
    a = XGBScorer(COLS, n_estimators=50, random_state=1).fit(X, y, Xv, yv).predict_proba(Xv)
    b = XGBScorer(COLS, n_estimators=50, random_state=1).fit(X, y, Xv, yv).predict_proba(Xv)
    assert np.array_equal(a, b)


@pytest.mark.parametrize(("y", "yv", "message"), [
    (np.zeros(100), np.r_[np.zeros(50), np.ones(50)], "training set has a single class"),
    (np.r_[np.zeros(50), np.ones(50)], np.ones(100), "validation set has a single class"),
])
def test_single_class_is_refused(y, yv, message):
    X, _ = _data(100, 7)
    with pytest.raises(ValueError, match=message):
        XGBScorer(COLS, n_estimators=5).fit(X, y, X, yv)


def test_missing_feature_column_is_named(fitted):
    with pytest.raises(ValueError, match="input lacks feature column\\(s\\): cat"):
        fitted.predict_proba(pd.DataFrame({"x1": [1.0], "x2": [0.0]}))


def test_metrics_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    m = evaluate(y, p)
    assert (m.n, m.positives) == (10, 3)
    assert m.precision_top_decile == 1.0 and math.isclose(m.lift_top_decile, 1 / 0.3)
    assert math.isclose(m.roc_auc, 13 / 21)  # 0.9 beats 7 negatives, 0.7 beats 6, 0.05 none
    one_class = evaluate(np.zeros(5), np.full(5, 0.1))
    assert math.isnan(one_class.roc_auc) and math.isnan(one_class.lift_top_decile)
    with pytest.raises(ValueError, match="differ in length"):
        evaluate([1, 0], [0.5])
    with pytest.raises(ValueError, match="empty set"):
        evaluate([], [])
    assert calibration_table([1, 0], [0.95, 0.05]) == [
        {"bin": "0.0-0.1", "mean_predicted": 0.05, "observed": 0.0, "n": 1},
        {"bin": "0.9-1.0", "mean_predicted": 0.95, "observed": 1.0, "n": 1}]
    assert better("roc_auc", 0.8, 0.7) > 0 and better("log_loss", 0.3, 0.4) > 0


def test_isotonic_falls_back_to_platt_on_few_validation_positives():
    X, y = _data(3000, 8)
    Xv, yv = _data(1500, 9)
    few = np.zeros_like(yv)
    few[np.flatnonzero(yv)[:12]] = 1  # 12 positives: isotonic would step to the top
    m = XGBScorer(COLS, n_estimators=60, random_state=2).fit(X, y, Xv, few)
    assert m.calibration_ == "sigmoid"
    p = m.predict_proba(Xv)
    assert p.max() < 0.99 and np.all(np.isfinite(p))
    # enough positives: isotonic as configured
    # enough positives and a fit that passes the check (no certain top step, no big tie): isotonic
    raw = np.linspace(0.01, 0.99, 3000)
    lab = (np.random.default_rng(3).random(3000) < 0.8 * raw).astype(float)
    lab[-50:] = np.tile([1.0, 0.0], 25)  # the top rows are not all positive
    method, _, note = XGBScorer(COLS, min_isotonic_positives=30)._fit_calibrator(raw, lab)
    assert method == "isotonic", note
    assert m.calibration_note_ == "Platt scaling: 12 validation positives (isotonic needs 200)"


def test_score_explain_matches_predict_and_contributions(fitted):
    from journey_ml.scoring.reasons import top_contributions

    Xt, _ = _data(120, 10)
    p, idx, val = fitted.score_explain(Xt, top_k=2, chunk_rows=50)  # several chunks
    assert np.allclose(p, fitted.predict_proba(Xt))
    c = fitted.contributions(Xt)
    for i in range(len(Xt)):
        ref = top_contributions(list(zip(c.columns, c.iloc[i].astype(float), strict=True)), 2)
        got = [(fitted.feature_names[j], float(v)) for j, v in zip(idx[i], val[i], strict=True)]
        assert [f for f, _ in got] == [f for f, _ in ref] or sorted(abs(v) for _, v in got) == \
            pytest.approx(sorted(abs(v) for _, v in ref))


def test_array_path_equals_the_categorical_frame_path(fitted):
    """Scoring builds the DMatrix from one float32 array; it must equal the frame path
    training uses, for known, unseen and missing categories and text numbers."""
    Xt, _ = _data(400, 5)
    Xt.loc[Xt.index[:5], "cat"] = ["zzz", None, "c", np.nan, "a"]  # unseen, missing, "c" is outside a/b
    Xt["x1"] = Xt["x1"].astype(object)  # numbers arriving as objects convert the same way
    Xt.loc[Xt.index[5], "x1"] = "3"
    b = fitted.booster_
    frame = b.predict(fitted._dmatrix(Xt), pred_contribs=True)
    array = b.predict(fitted._predict_dmatrix(Xt), pred_contribs=True)
    assert np.array_equal(frame, array)
    assert np.array_equal(b.predict(fitted._dmatrix(Xt)), b.predict(fitted._predict_dmatrix(Xt)))
    codes = fitted._array(Xt.iloc[:5])[:, 2]
    assert codes[0] == codes[2] == 2 and np.isnan(codes[1]) and np.isnan(codes[3]) and codes[4] == 0  # a, b, other


@pytest.mark.parametrize("rows", [1, 3, 64])
def test_small_array_equals_the_column_wise_encoding(fitted, rows):
    """A few rows (the API's one-row frames) are encoded from their values; the array must
    equal the column-wise one bit for bit: missing, unseen and "other" categories, boolean
    and float32 columns, values that do not fit float32 exactly."""
    Xt, _ = _data(rows, 6)
    Xt["cat"] = Xt["cat"].astype(object)
    Xt.loc[Xt.index[0], "cat"] = ["zzz", None, np.nan][rows % 3]
    Xt.loc[Xt.index[-1], "x2"] = np.nan
    Xt["x1"] = Xt["x1"] + 1 / 3  # not a float32 value: both paths round it alike
    cases = [Xt, Xt.assign(x1=Xt["x1"] > 1.5), Xt.assign(x2=Xt["x2"].astype("float32"))]
    for X in cases:
        small = fitted._small_array(X)
        assert small is not None
        assert np.array_equal(small, fitted._frame_array(X), equal_nan=True)
        assert np.array_equal(fitted._array(X), small, equal_nan=True)


def test_small_array_leaves_integers_objects_and_other_columns_to_the_frame_path(fitted):
    X, _ = _data(2, 7)
    assert fitted._small_array(X.assign(x1=X["x1"].astype("int64"))) is None  # int -> float32 rounds once
    assert fitted._small_array(X.assign(x1=X["x1"].astype(object))) is None
    assert fitted._small_array(X[["x2", "x1", "cat"]]) is None  # another column order
    reordered = X[["x2", "x1", "cat"]].assign(x1=X["x1"].astype("int64"))
    assert np.array_equal(fitted._array(reordered), fitted._frame_array(X), equal_nan=True)


def test_check_input_returns_a_fitting_frame_as_it_is(fitted):
    from journey_ml.models.scorer import SchemaMismatch, check_input

    X, _ = _data(3, 8)
    assert check_input(fitted, X) is X
    extra = X.assign(extra=1.0)[["extra", "cat", "x2", "x1"]]
    got = check_input(fitted, extra)
    assert got.columns.tolist() == ["x1", "x2", "cat"] and got.equals(X)
    with pytest.raises(SchemaMismatch, match=r"x1 \(expected numeric, got object\)"):
        check_input(fitted, X.assign(x1=["a", "b", "c"]))


def test_few_rows_predict_in_place_as_through_a_dmatrix(fitted):
    """A few rows skip the DMatrix (inplace_predict): the same raw scores, categorical
    splits, unseen and missing categories and missing numbers included."""
    Xt, _ = _data(64, 9)
    Xt["cat"] = Xt["cat"].astype(object)
    Xt.loc[Xt.index[:4], "cat"] = ["zzz", None, "c", np.nan]
    Xt.loc[Xt.index[4:8], "x1"] = np.nan
    A = fitted._array(Xt)
    via_dmatrix = fitted._raw(fitted._array_dmatrix(A))
    for rows in (slice(0, 1), slice(0, 7), slice(0, 64)):
        assert np.array_equal(fitted._raw_array(A[rows]), via_dmatrix[rows])


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_calibration_equals_the_calibrators_own_prediction(calibration):
    X, y = _data(3000, 10)
    Xv, yv = _data(1500, 11)
    s = XGBScorer(COLS, n_estimators=40, calibration=calibration, min_isotonic_positives=1,
                  random_state=3).fit(X, y, Xv, yv)
    raw = np.concatenate([s._raw(s._dmatrix(Xv)), [1e-9, 0.5, 1 - 1e-9]])
    if s.calibration_ == "sigmoid":
        ref = s.calibrator_.predict_proba(np.log(np.clip(raw, 1e-6, 1 - 1e-6) / (1 - np.clip(raw, 1e-6, 1 - 1e-6)))
                                          .reshape(-1, 1))[:, 1]
    else:
        ref = np.clip(s.calibrator_.predict(raw), 0.0, 1.0)
    assert np.array_equal(s._calibrate(raw), ref)
    assert all(np.array_equal(s._calibrate(raw[i:i + 1]), ref[i:i + 1]) for i in range(0, len(raw), 97))
