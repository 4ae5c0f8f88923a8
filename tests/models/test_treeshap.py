"""Exact TreeSHAP from decision-pattern tables equals XGBoost's own ``pred_contribs``.

Every test compares with ``booster.predict(..., pred_contribs=True)`` on the same rows: models
trained by our scorer on random data with missing values, integer-valued and continuous
features and categorical features (partition and one-hot splits), depth 1 to 6; then the
cases that break a careless implementation: values exactly on (and a float64 hair below) a
split threshold, all-missing rows, unseen and out-of-range categories, one row, trees that
are a single leaf, the base score, the iteration range.

The bound is 1e-5 absolute on every value. XGBoost accumulates in float32 (errors of a few
1e-7 here); the tables are summed in float64.
"""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from journey_ml.models.treeshap import TreeShapTables
from journey_ml.models.xgb import Column, XGBScorer
from journey_ml.scoring.reasons import reason_columns, top_k_matrix

TOL = 1e-5
PLANS = tuple("abcdefghijkl")  # 12 categories (> max_cat_to_onehot): partition splits
CHANNELS = ("web", "email", "call")  # 3 categories: one-hot splits
COLS = [Column("visits", "numeric"), Column("ratio", "numeric"), Column("amount", "numeric"),
        Column("score", "numeric"), Column("plan", "categorical", PLANS),
        Column("channel", "categorical", CHANNELS)]


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "visits": rng.poisson(3, n).astype(float),  # integers: many rows sit exactly on a threshold
        "ratio": rng.random(n).round(2),  # two decimals: not exact in float32
        "amount": rng.lognormal(2, 1, n),
        "score": rng.normal(size=n),
        "plan": rng.choice(PLANS, n).astype(object),
        "channel": rng.choice(CHANNELS, n).astype(object),
    })
    logit = (0.4 * X["visits"] - 1.5 + 2 * (X["ratio"] > 0.6) + np.log(X["amount"]) / 3 - X["score"] * X["ratio"]
             + X["plan"].isin(["a", "d", "k"]) - (X["channel"] == "call"))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    for c in X.columns:  # about 20% missing in every column, after the label is drawn
        X.loc[rng.random(n) < 0.2, c] = None if X[c].dtype == object else np.nan
    return X, y


@pytest.fixture(scope="module")
def models() -> dict[int, XGBScorer]:
    X, y = _frame(3000, 1)
    Xv, yv = _frame(1000, 2)
    return {d: XGBScorer(COLS, n_estimators=40, max_depth=d, random_state=d).fit(X, y, Xv, yv)
            for d in range(1, 7)}


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    X, _ = _frame(1500, 3)
    X.loc[X.index[:3], "plan"] = ["zzz", "other", None]  # unseen (-> "other") and missing
    return X


def reference(scorer: XGBScorer, X: pd.DataFrame) -> np.ndarray:
    """XGBoost's own exact TreeSHAP on the same encoded rows (bias last)."""
    return scorer.booster_.predict(scorer._predict_dmatrix(X), pred_contribs=True,
                                   iteration_range=(0, scorer.best_iteration_ + 1))


def ours(scorer: XGBScorer, X: pd.DataFrame) -> np.ndarray:
    return scorer._contribs(scorer._array(X))


def _worst(a: np.ndarray, b: np.ndarray) -> str:
    diff = np.abs(a - b)
    i, j = np.unravel_index(diff.argmax(), diff.shape)
    return f"max |diff| {diff.max():.2e} at row {i}, column {j}"


def _raw_booster(params: dict, rounds: int, seed: int = 0) -> tuple[xgb.Booster, np.ndarray, list[str]]:
    """A booster on two numeric features and one categorical (codes 0..11), with missing values."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(800, 3)).astype(np.float32)
    X[:, 2] = rng.integers(0, 12, 800)
    y = ((X[:, 0] + (X[:, 2] % 4 == 1) + rng.normal(0, 0.5, 800)) > 0.6).astype(float)
    X[rng.random((800, 3)) < 0.15] = np.nan
    types = ["q", "q", "c"]
    d = xgb.DMatrix(X, y, feature_types=types, enable_categorical=True)
    return xgb.train({"max_depth": 3, "seed": seed, **params}, d, rounds), X, types


def _pred_contribs(b: xgb.Booster, X: np.ndarray, types: list[str], **kw) -> np.ndarray:
    return b.predict(xgb.DMatrix(X, feature_types=types, enable_categorical=True), pred_contribs=True, **kw)


# --- equality with pred_contribs -------------------------------------------------------------


@pytest.mark.parametrize("depth", range(1, 7))
def test_equals_pred_contribs_on_every_row(models, rows, depth):
    scorer = models[depth]
    ref, got = reference(scorer, rows), ours(scorer, rows)
    assert got.shape == ref.shape == (len(rows), len(COLS) + 1)
    assert np.abs(got - ref).max() <= TOL, _worst(got, ref)
    # local accuracy: the values and the bias add up to the model's margin
    margin = scorer.booster_.predict(scorer._predict_dmatrix(rows), output_margin=True,
                                     iteration_range=(0, scorer.best_iteration_ + 1))
    assert np.abs(got.sum(axis=1) - margin).max() <= TOL


@pytest.mark.parametrize("depth", [1, 3, 4, 6])
def test_top3_reasons_are_identical(models, rows, depth):
    """The reasons a seller reads: same three features, same signed 2-decimal texts."""
    scorer = models[depth]
    ref = reference(scorer, rows)[:, :-1]
    _, idx, val = scorer.score_explain(rows, top_k=3, chunk_rows=400)  # several chunks
    ref_idx, ref_val = top_k_matrix(ref.copy(), 3)
    # a row whose 3rd and 4th |SHAP| are within the tolerance could legitimately swap them
    mags = -np.sort(-np.abs(ref), axis=1)
    tie = np.abs(mags[:, 2] - mags[:, 3]) <= 2 * TOL
    assert tie.mean() < 0.01
    assert np.array_equal(idx[~tie], ref_idx[~tie]), np.flatnonzero((idx != ref_idx).any(axis=1) & ~tie)[:5]
    assert np.abs(val[~tie] - ref_val[~tie]).max() <= TOL
    names = scorer.feature_names

    def texts(i, v):
        def values_of(f):
            return rows[f].to_numpy()

        return reason_columns(names, i, v, values_of, {}, {}).text

    # "(+0.13)": only a value within the tolerance of a rounding edge may print differently
    edge = np.abs(np.abs(ref_val * 100) % 1 - 0.5) < TOL * 100
    same = ~tie[:, None] & ~edge
    assert np.array_equal(texts(idx, val)[same], texts(ref_idx, ref_val)[same])


def test_values_on_and_a_hair_below_each_threshold(models, rows):
    """XGBoost compares float32 values with float32 thresholds (``x < t``: equal goes right).

    A float64 value a hair below a threshold rounds *to* it in float32, so XGBoost sends it
    right; comparing in float64 would send it left. Rows are built on every split threshold
    of the model: exactly on it, one float32 step either side and a float64 hair below.
    """
    scorer = models[4]
    trees = json.loads(scorer.booster_.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    splits = {(scorer.feature_names[f], thr) for t in trees[:scorer.best_iteration_ + 1]
              for f, thr, kind, left in zip(t["split_indices"], t["split_conditions"], t["split_type"],
                                            t["left_children"], strict=True)
              if left >= 0 and kind == 0}
    assert len(splits) > 20
    base = rows.iloc[[7]]
    probes, trap = [], 0
    for name, thr in sorted(splits):
        t32 = np.float32(thr)
        below, above = np.nextafter(t32, np.float32(-np.inf)), np.nextafter(t32, np.float32(np.inf))
        hair = float(t32) - (float(t32) - float(below)) / 4  # rounds back to t32 in float32
        trap += hair < float(t32) and np.float32(hair) == t32
        for v in (float(t32), float(below), float(above), hair):
            r = base.copy()
            r[name] = v
            probes.append(r)
    X = pd.concat(probes, ignore_index=True)
    assert trap == len(splits)  # every hair value is the float64 trap
    got, ref = ours(scorer, X), reference(scorer, X)
    assert np.abs(got - ref).max() <= TOL, _worst(got, ref)


def test_missing_values_take_each_splits_default_side(models):
    scorer = models[6]
    trees = json.loads(scorer.booster_.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    defaults = {d for t in trees for d, left in zip(t["default_left"], t["left_children"], strict=True) if left >= 0}
    assert defaults == {0, 1}  # both directions occur, so sending NaN one way would fail
    X = pd.DataFrame({c.name: [np.nan] * 3 if c.kind == "numeric" else [None] * 3 for c in COLS})
    X.loc[1, "visits"] = 2.0
    X.loc[2, "plan"] = "d"
    got, ref = ours(scorer, X), reference(scorer, X)
    assert np.abs(got - ref).max() <= TOL, _worst(got, ref)


def test_categories_outside_every_split_go_left_as_xgboost_does():
    """Codes in no split's set, beyond the largest one, negative or fractional: XGBoost's
    rules (an invalid or absent category goes left; a fraction is truncated)."""
    b, X, types = _raw_booster({"objective": "binary:logistic", "max_cat_to_onehot": 1}, 30)
    probes = np.repeat(X[:1], 7, axis=0)
    probes[:, 2] = [0, 11, 12, 50, -1, 3.7, np.nan]
    trees = json.loads(b.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    assert any(size > 1 for t in trees for size in t["categories_sizes"])  # partition splits exist
    tables = TreeShapTables.from_booster(b)
    got, ref = tables.shap_values(probes), _pred_contribs(b, probes, types)
    assert np.abs(got - ref).max() <= TOL, _worst(got, ref)


@pytest.mark.parametrize("depth", [1, 4, 6])
def test_one_row(models, rows, depth):
    scorer = models[depth]
    one = rows.iloc[[11]]
    c = scorer.contributions(one)
    assert c.shape == (1, len(COLS)) and list(c.index) == list(one.index)
    assert np.abs(c.to_numpy() - reference(scorer, one)[:, :-1]).max() <= TOL
    p, idx, val = scorer.score_explain(one, top_k=3)
    assert p.shape == (1,) and idx.shape == val.shape == (1, 3)


def test_trees_that_are_a_single_leaf():
    # gamma prunes every split of the later trees: they are single leaves (bias only)
    b, X, types = _raw_booster({"objective": "binary:logistic", "gamma": 5.0}, 30)
    trees = json.loads(b.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    single = sum(len(t["left_children"]) == 1 for t in trees)
    assert 0 < single < len(trees)
    got, ref = TreeShapTables.from_booster(b).shap_values(X), _pred_contribs(b, X, types)
    assert np.abs(got - ref).max() <= TOL, _worst(got, ref)
    # a model of single leaves only: every value is 0 and the bias is the margin
    b, X, types = _raw_booster({"objective": "binary:logistic", "min_child_weight": 1e9}, 5)
    got = TreeShapTables.from_booster(b).shap_values(X)
    assert np.array_equal(got[:, :-1], np.zeros((len(X), 3)))
    assert np.abs(got[:, -1] - b.predict(xgb.DMatrix(X, feature_types=types, enable_categorical=True),
                                         output_margin=True)).max() <= TOL


@pytest.mark.parametrize(("params", "bias_of_empty_model"), [
    ({"objective": "binary:logistic", "base_score": 0.2}, np.log(0.2 / 0.8)),  # logit of the base score
    ({"objective": "reg:squarederror", "base_score": 0.3}, 0.3),  # the base score itself
    ({"objective": "binary:logitraw", "base_score": 0.3}, 0.3),  # a margin already
])
def test_base_score_is_in_the_bias_column(params, bias_of_empty_model):
    b, X, types = _raw_booster(params, 20)
    tables = TreeShapTables.from_booster(b)
    got, ref = tables.shap_values(X), _pred_contribs(b, X, types)
    assert np.abs(got - ref).max() <= TOL, _worst(got, ref)
    assert TreeShapTables.from_booster(b, 0).bias == pytest.approx(bias_of_empty_model, abs=1e-6)


def test_iteration_range_is_honoured():
    b, X, types = _raw_booster({"objective": "binary:logistic"}, 30)
    got = TreeShapTables.from_booster(b, 7).shap_values(X)
    ref = _pred_contribs(b, X, types, iteration_range=(0, 7))
    assert np.abs(got - ref).max() <= TOL
    assert np.abs(got - _pred_contribs(b, X, types)).max() > 1e-3  # 7 rounds differ from 30


def test_threads_and_chunks_do_not_change_a_value(models, rows):
    tables = models[4].prepare_explanations()
    A = models[4]._array(rows)
    one = tables.shap_values(A, n_threads=1)
    assert np.array_equal(one, tables.shap_values(A, n_threads=2, chunk_rows=97))
    assert tables.shap_values(A[:0]).shape == (0, len(COLS) + 1)


@pytest.mark.parametrize(("params", "message"), [
    ({"objective": "count:poisson"}, "unsupported objective 'count:poisson'"),
    ({"objective": "binary:logistic", "booster": "gblinear"}, "need a gbtree booster, got gblinear"),
    ({"objective": "multi:softprob", "num_class": 3}, "single-output models only"),
])
def test_models_it_cannot_explain_exactly_are_refused_by_name(params, message):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = rng.integers(0, 3 if "num_class" in params else 2, 200).astype(float)
    b = xgb.train(params, xgb.DMatrix(X, y), 3)
    with pytest.raises(ValueError, match=message):
        TreeShapTables.from_booster(b)


def test_wrong_input_shape_is_named(models):
    with pytest.raises(ValueError, match=r"expected an \(n, 6\) array of features, got shape \(2, 5\)"):
        models[2].prepare_explanations().shap_values(np.zeros((2, 5)))


# --- the tables on the scorer ------------------------------------------------------------------


def test_tables_are_built_once_kept_out_of_the_artifact_and_rebuilt_after_a_load(rows):
    X, y = _frame(1500, 4)
    scorer = XGBScorer(COLS, n_estimators=15, max_depth=3).fit(X, y, X, y)

    def dumped(s) -> bytes:
        buf = io.BytesIO()
        joblib.dump(s, buf)
        return buf.getvalue()

    before = dumped(scorer)
    tables = scorer.prepare_explanations()
    assert scorer.prepare_explanations() is tables  # cached, not recomputed per call
    values = scorer.contributions(rows)
    assert scorer.prepare_explanations() is tables
    # the artifact (and so its digest) does not depend on whether the tables were built
    assert dumped(scorer) == before
    loaded = joblib.load(io.BytesIO(before))
    assert getattr(loaded, "_shap_tables", None) is None
    pd.testing.assert_frame_equal(loaded.contributions(rows), values)
    # a refit is a new booster: new tables, equal to XGBoost's again
    scorer.fit(X.iloc[:800], y[:800], X, y)
    assert scorer.prepare_explanations() is not tables
    assert np.abs(ours(scorer, rows) - reference(scorer, rows)).max() <= TOL


def test_trees_deeper_than_the_tables_allow_are_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 8))
    b = xgb.train({"objective": "binary:logistic", "max_depth": 12, "min_child_weight": 0, "lambda": 0},
                  xgb.DMatrix(X, rng.integers(0, 2, 6000).astype(float)), 1)
    with pytest.raises(ValueError, match=r"trees of depth <= 10, got 1[12]"):
        TreeShapTables.from_booster(b)
