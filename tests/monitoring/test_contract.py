"""The data contract: each edge input is reported as its own metric with a clear message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from journey_ml.features.declaration import FeatureSet, FeatureSpec
from journey_ml.monitoring.contract import check_contract

FS = FeatureSet("test", "account", (
    FeatureSpec("visits", "numeric", "visits", "activity"),
    FeatureSpec("revenue", "numeric", "revenue", "value"),
    FeatureSpec("industry", "categorical", "industry", "firmographic", categories=("tech", "retail", "health")),
))


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"visits": rng.poisson(3, n).astype(float), "revenue": rng.lognormal(3, 1, n),
                         "industry": rng.choice(["tech", "retail", "health"], n)})


REF = frame(2000, seed=1)


def _all_null(df):
    df["revenue"] = np.nan
    return df


def _all_inf(df):
    df["revenue"] = np.inf
    return df


def _missing(df):
    return df.drop(columns=["revenue"])


def _text(df):
    df["revenue"] = df["revenue"].map(lambda v: f"{v:.2f} EUR")
    return df


def _unseen(df):
    df.loc[df.index[:300], "industry"] = "crypto"
    return df


def _constant(df):
    df["visits"] = 4.0
    return df


def _null_spike(df):
    df.loc[df.index[::2], "visits"] = np.nan
    return df


def _some_inf(df):
    df.loc[df.index[:10], "revenue"] = -np.inf
    return df


@pytest.mark.parametrize("edit, column, status, usable, words", [
    (_all_null, "revenue", "all_null", False, "null in every current row"),
    (_all_inf, "revenue", "all_infinite", False, "no finite value"),
    (_missing, "revenue", "missing", False, "missing from the current data"),
    (_text, "revenue", "type_mismatch", False, "arrived as object"),
    (_unseen, "industry", "unseen_categories", True, "never seen in the reference"),
    (_constant, "visits", "constant", True, "constant in the current data"),
    (_null_spike, "visits", "null_spike", True, "null in 50.0% of current rows"),
    (_some_inf, "revenue", "inf_spike", True, "infinite in 1.0% of current rows"),
])
def test_edge_inputs_are_reported_per_column(edit, column, status, usable, words):
    cur = edit(frame(1000, seed=2))
    res = check_contract(REF, cur, FS)
    cc = res.columns[column]
    assert cc.status == status
    assert (column in res.usable_columns) is usable
    assert any(words in p and repr(column) in p for p in cc.problems), cc.problems
    assert not res.ok
    assert set(cc.problems) <= set(res.problems)
    # the other columns are untouched by one bad column
    others = [c for c in FS.names() if c != column]
    assert all(res.columns[c].status == "ok" for c in others)
    assert all(c in res.usable_columns for c in others)


def test_clean_batch_is_ok():
    res = check_contract(REF, frame(1000, seed=3), FS)
    assert res.ok and res.enough_rows and res.problems == []
    assert res.usable_columns == FS.names()
    assert all(c.status == "ok" for c in res.columns.values())


@pytest.mark.parametrize("rows, words", [(0, "empty (0 rows)"), (1, "has 1 rows, fewer than the minimum 100"),
                                         (99, "has 99 rows")])
def test_small_or_empty_batch_has_no_usable_column(rows, words):
    cur = frame(rows, seed=4)
    res = check_contract(REF, cur, FS)
    assert not res.enough_rows and not res.ok
    assert res.usable_columns == []
    assert words in res.problems[0]
    assert res.rows == rows


def test_empty_reference_is_a_problem():
    res = check_contract(REF.iloc[:0], frame(500), FS)
    assert res.usable_columns == [] and not res.ok
    assert any("reference sample is empty" in p for p in res.problems)


def test_null_share_is_measured_against_the_reference():
    ref = REF.copy()
    ref.loc[ref.index[::2], "visits"] = np.nan  # the reference itself is half null
    cur = _null_spike(frame(1000, seed=5))
    res = check_contract(ref, cur, FS)
    cc = res.columns["visits"]
    assert cc.null_share == pytest.approx(0.5) and cc.ref_null_share == pytest.approx(0.5)
    assert cc.status == "ok"


def test_unseen_share_counts_declared_categories_as_known():
    ref = REF[REF["industry"] != "health"]  # the declaration knows health even if the sample does not
    cur = frame(1000, seed=6)
    cc = check_contract(ref, cur, FS).columns["industry"]
    assert cc.unseen_share == 0.0 and cc.status == "ok"
    cur.loc[cur.index[:50], "industry"] = "energy"
    cc = check_contract(ref, cur, FS, max_unseen_share=0.01).columns["industry"]
    assert cc.unseen_share == pytest.approx(0.05)
    assert cc.unseen_examples == ["energy"] and cc.status == "unseen_categories"


def test_worst_status_wins_and_every_problem_is_kept():
    cur = frame(1000, seed=7)
    cur.loc[cur.index[:600], "revenue"] = np.nan
    cur.loc[cur.index[600:], "revenue"] = np.inf  # no finite value left, and a null spike
    cc = check_contract(REF, cur, FS).columns["revenue"]
    assert cc.status == "all_infinite"
    assert {"all_infinite", "inf_spike", "null_spike"} <= set(cc.statuses)


def test_numeric_text_in_the_reference_is_a_mismatch_too():
    ref = _text(REF.copy())
    cc = check_contract(ref, frame(500), FS).columns["revenue"]
    assert cc.status == "type_mismatch" and "reference" in cc.problems[0]


def test_to_dict_is_json_ready():
    import json

    res = check_contract(REF, _all_inf(frame(300)), FS)
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["columns"]["revenue"]["status"] == "all_infinite"


@pytest.mark.parametrize("column, convert", [
    ("industry", lambda s: s.astype(pd.CategoricalDtype(["tech", "retail", "health", "unused"]))),
    ("visits", lambda s: s.astype("Int64").mask(s.index % 10 == 0, pd.NA)),
    ("visits", lambda s: (s > 2).astype(bool)),
    ("revenue", lambda s: s.astype("float32")),
])
def test_other_dtypes_are_understood(column, convert):
    from journey_ml.monitoring.drift import check_drift

    ref, cur = REF.copy(), frame(1000, seed=8)
    ref[column], cur[column] = convert(ref[column]), convert(cur[column])
    res = check_drift(ref, cur, FS)
    assert res.contract.columns[column].status == "ok", res.contract.columns[column].problems
    assert res.columns[column].skipped is None
    assert res.contract.columns[column].null_share == pytest.approx(cur[column].isna().mean())


@pytest.mark.parametrize("ref_filled, cur_rows, alerts", [
    (0.02, 130, False),  # a sparse column (2% filled) null in all 130 rows: (0.98)^130 = 7%, chance
    (0.02, 1000, True),  # ... in 1000 rows: (0.98)^1000 ~ 2e-9, a break
    (0.5, 130, True),  # a half-filled column suddenly empty: a break
    (0.0, 130, False),  # null in the reference too: nothing new
])
def test_an_all_null_column_alerts_only_when_the_reference_makes_it_unlikely(ref_filled, cur_rows, alerts):
    from journey_ml.monitoring.policy import _alerting_problems

    ref = frame(2000, seed=1)
    ref["revenue"] = np.where(np.random.default_rng(2).random(2000) < ref_filled, ref["revenue"], np.nan)
    cur = _all_null(frame(cur_rows, seed=3))
    contract = check_contract(ref, cur, FS)
    assert contract.columns["revenue"].status == "all_null"  # reported either way
    problems = _alerting_problems(contract)
    assert bool(problems) is alerts, problems
