"""The rule-based scorer, input checking and the pyfunc wrapper (no tracking store needed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from journey_ml.config import RulesConfig
from journey_ml.models.rules import RulesScorer
from journey_ml.models.scorer import SchemaMismatch, Scorer, check_input

# MLflow warns (UserWarning) at import time about type hints in its own code; the pyfunc
# round trip below imports it.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*")

POINTS = {"demo": 5.0, "trial": 4.0, "pricing": 2.0, "webinar": 1.0}


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(POINTS)).astype(float)


def labelled(n: int = 400, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Counts per feature; the outcome is likelier the more rules fire."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({k: rng.poisson(0.6, n) for k in POINTS})
    score = RulesScorer(POINTS).rule_score(X)
    y = (rng.random(n) < 1 / (1 + np.exp(-(score - 5) / 2))).astype(int)
    return X, y


@pytest.mark.parametrize(("row", "cap", "expected"), [
    ({"demo": 0, "trial": 0, "pricing": 0, "webinar": 0}, None, 0.0),
    ({"demo": 1, "trial": 0, "pricing": 0, "webinar": 0}, None, 5.0),
    ({"demo": 3, "trial": 1, "pricing": 0, "webinar": 0}, None, 9.0),      # counts don't multiply
    ({"demo": 1, "trial": 1, "pricing": 7, "webinar": 2}, None, 12.0),
    ({"demo": np.nan, "trial": 1, "pricing": np.nan, "webinar": 0}, None, 4.0),  # NaN counts as 0
    ({"demo": -1, "trial": 0.5, "pricing": 0, "webinar": 0}, None, 4.0),   # > 0 fires, <= 0 doesn't
    ({"demo": 1, "trial": 1, "pricing": 1, "webinar": 1}, 8.0, 8.0),       # capped
    ({"demo": 0, "trial": 0, "pricing": 1, "webinar": 1}, 8.0, 3.0),       # under the cap
])
def test_rule_score_table(row, cap, expected):
    assert RulesScorer(POINTS, cap=cap).rule_score(frame([row]))[0] == pytest.approx(expected)


def test_calibrated_probability_is_monotone_in_the_score():
    X, y = labelled()
    r = RulesScorer(POINTS).fit(X, y)
    grid = frame([{"demo": d, "trial": t, "pricing": p, "webinar": w}
                  for d in (0, 1) for t in (0, 1) for p in (0, 1) for w in (0, 1)])
    score = r.rule_score(grid)
    p = r.predict_proba(grid)
    order = np.argsort(score, kind="stable")
    assert np.all(np.diff(p[order]) >= -1e-12)
    assert p[score.argmax()] > p[score.argmin()]
    assert p.shape == (16,) and np.all((p > 0) & (p < 1))
    # fitted attributes end in _, fit returns self, params survive clone
    assert r.calibrator_ is not None and list(r.classes_) == [0, 1]
    assert clone(r).get_params() == {"points": POINTS, "cap": None, "random_state": 0}
    # seeded: the same fit twice gives the same probabilities
    assert np.array_equal(RulesScorer(POINTS).fit(X, y).predict_proba(grid), p)


def test_integer_and_extra_columns_are_fine():
    X, y = labelled()
    r = RulesScorer(POINTS).fit(X, y)
    Xi = X.astype("int64").assign(extra="x", other=1.5)[["extra", *reversed(list(POINTS)), "other"]]
    assert np.allclose(r.predict_proba(Xi), r.predict_proba(X.astype(float)))


def test_fit_errors_name_the_problem():
    X, y = labelled()
    with pytest.raises(ValueError, match="single class"):
        RulesScorer(POINTS).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match=r"missing column\(s\): trial, webinar"):
        RulesScorer(POINTS).fit(X.drop(columns=["trial", "webinar"]), y)
    with pytest.raises(ValueError, match="0 or 1"):
        RulesScorer(POINTS).fit(X, np.full(len(X), 2))
    with pytest.raises(ValueError, match="rows but y has"):
        RulesScorer(POINTS).fit(X, y[:-1])
    with pytest.raises(NotFittedError, match="call fit"):
        RulesScorer(POINTS).predict_proba(X)


def test_explain_lists_fired_rules_largest_first():
    r = RulesScorer(POINTS)
    X = frame([{"demo": 1, "trial": 0, "pricing": 3, "webinar": 1},
               {"demo": 0, "trial": 0, "pricing": 0, "webinar": 0},
               {"demo": 1, "trial": 1, "pricing": 1, "webinar": 1}])
    assert r.explain(X) == [[("demo", 5.0), ("pricing", 2.0), ("webinar", 1.0)], [],
                            [("demo", 5.0), ("trial", 4.0), ("pricing", 2.0)]]
    assert r.explain(X, top_k=1)[0] == [("demo", 5.0)]


def test_from_config_and_protocol():
    r = RulesScorer.from_config(RulesConfig(points={"a": 2, "b": 1}, cap=2.5))
    assert r.points == {"a": 2, "b": 1} and r.cap == 2.5 and r.kind == "rules"
    assert r.feature_names == ["a", "b"]
    assert isinstance(r, Scorer)


def test_check_input_names_missing_and_wrong_kind_columns():
    r = RulesScorer(POINTS)
    X = pd.DataFrame({"webinar": [1, 0], "demo": ["yes", "no"], "x": [1, 2]})
    with pytest.raises(SchemaMismatch) as e:
        check_input(r, X)
    msg = str(e.value)
    assert "missing column(s): trial, pricing" in msg
    assert "wrong kind: demo (expected numeric, got object)" in msg
    assert e.value.missing == ["trial", "pricing"] and list(e.value.wrong_kind) == ["demo"]
    # object columns holding numbers are converted; all-missing columns fit any kind
    ok = pd.DataFrame({"pricing": ["1", None], "z": 0, "demo": [None, None], "trial": [1, 0],
                       "webinar": [True, False]})
    out = check_input(r, ok)
    assert list(out.columns) == list(POINTS)
    assert out["pricing"].tolist()[0] == 1
    with pytest.raises(SchemaMismatch, match="DataFrame"):
        check_input(r, np.zeros((2, 4)))
    dup = pd.DataFrame([[1, 2, 3, 4, 5]], columns=["webinar", "demo", "trial", "pricing", "demo"])
    with pytest.raises(SchemaMismatch, match="demo \\(a duplicated column\\)"):
        check_input(r, dup)


def test_pyfunc_round_trip_serves_the_scorer(tmp_path):
    import mlflow.pyfunc

    from journey_ml.models.pyfunc import pinned_requirements, save_pyfunc, unwrap_scorer

    X, y = labelled()
    r = RulesScorer(POINTS, cap=9).fit(X, y)
    path = save_pyfunc(r, tmp_path / "model", feature_set={"version": "fs1", "features": list(POINTS)})
    assert (path / "artifacts" / "scorer.joblib").is_file()
    assert json.loads((path / "artifacts" / "feature_set.json").read_text())["version"] == "fs1"
    reqs = (path / "requirements.txt").read_text().split()
    assert reqs == pinned_requirements()
    assert {q.split("==")[0] for q in reqs} >= {"mlflow", "scikit-learn", "pandas", "numpy"}
    # the input example is synthetic: one row of zeros
    example = json.loads((path / "input_example.json").read_text())
    assert example["columns"] == list(POINTS) and example["data"] == [[0.0] * len(POINTS)]
    model = mlflow.pyfunc.load_model(str(path))
    assert [c.name for c in model.metadata.get_input_schema().inputs] == list(POINTS)
    assert {c.type.name for c in model.metadata.get_input_schema().inputs} == {"double"}
    Xf = X.astype(float)
    assert np.allclose(model.predict(Xf), r.predict_proba(Xf))
    back = unwrap_scorer(model)
    assert back.explain(Xf.head(5)) == r.explain(Xf.head(5))
