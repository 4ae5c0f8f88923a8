"""The registry adapter against real MLflow stores (SQLite and PostgreSQL) and warehouses."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import joblib
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from journey_ml.registry import (
    CorruptModel,
    ModelNotFound,
    NothingToRollBack,
    evaluate_gate,
    model_name,
)
from tests.conftest import count
from tests.registry.conftest import POINTS, unique

# MLflow warns (UserWarning) at import time about type hints in its own code; nothing from
# journey_ml is silenced.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*")

SEG = "global"


def scorer_file(info) -> Path:
    """The stored scorer.joblib of a version in the (local) artifact store."""
    return Path(unquote(urlparse(info.source).path)) / "artifacts" / "scorer.joblib"


def production_chain(registry, task: str) -> list:
    """Production moves of a model, oldest first (in the order they were written)."""
    return sorted((m for m in registry.history(task, SEG) if m.alias == "production"), key=lambda m: m.id)


# --- the gate (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(("cand", "prod", "metric", "margin", "promote", "says"), [
    (0.80, None, "roc_auc", 0.005, True, "no production model"),
    (0.80, 0.78, "roc_auc", 0.005, True, "improvement +0.0200 >= margin 0.0050"),
    (0.80, 0.78, "roc_auc", 0.05, False, "improvement +0.0200 < margin 0.0500"),
    (0.70, 0.78, "pr_auc", 0.005, False, "candidate pr_auc 0.7000 vs production 0.7800"),
    (0.78, 0.78, "roc_auc", 0.005, False, "+0.0000 < margin"),  # a tie never promotes
    (0.7801, 0.78, "roc_auc", 0.005, False, "+0.0001 < margin"),
    (0.20, 0.25, "log_loss", 0.01, True, "lower is better"),
    (0.30, 0.25, "brier", 0.005, False, "improvement -0.0500"),
    (float("nan"), 0.7, "roc_auc", 0.005, False, "not a number"),
    (0.7, float("nan"), "roc_auc", 0.005, True, "production roc_auc is nan"),
])
def test_gate(cand, prod, metric, margin, promote, says):
    d = evaluate_gate(cand, prod, metric, margin)
    assert d.promote is promote
    assert says in d.reason, d.reason


@pytest.mark.parametrize(("cand", "prod", "base", "glob", "metric", "promote", "says"), [
    # below the best baseline: refused whatever production is (none here), the baseline named
    (0.60, None, {"rules": 0.58, "recency": 0.70, "logistic": 0.66}, None, "roc_auc", False,
     "below the best baseline, recency (roc_auc 0.6000 vs recency 0.7000 on the same holdout; "
     "rules 0.5800, logistic 0.6600)"),
    (0.60, 0.50, {"logistic": 0.61}, None, "roc_auc", False, "below the best baseline, logistic"),
    (0.30, None, {"recency": 0.25}, None, "brier", False, "below the best baseline, recency"),
    # equal to the best baseline (the logistic regression won selection): not below it
    (0.66, None, {"recency": 0.60, "logistic": 0.66}, None, "roc_auc", True,
     "promoted: no production model; candidate roc_auc 0.6600 (baselines: recency 0.6000, logistic 0.6600)"),
    (0.80, 0.78, {"recency": 0.70, "rules": float("nan")}, None, "roc_auc", True, "baselines: recency 0.7000"),
    # a segment model must beat the global model on its rows by the margin
    (0.80, None, {"recency": 0.70}, 0.798, "roc_auc", False, "the global model serves this segment"),
    (0.80, None, {"recency": 0.70}, 0.79, "roc_auc", True, "global model on this segment 0.7900"),
    # ties with production still never promote
    (0.80, 0.80, {"recency": 0.70}, None, "roc_auc", False, "+0.0000 < margin"),
])
def test_gate_against_baselines_and_the_global_model(cand, prod, base, glob, metric, promote, says):
    d = evaluate_gate(cand, prod, metric, 0.005, baselines=base, global_metric=glob)
    assert d.promote is promote
    assert says in d.reason, d.reason
    assert d.global_serves is ("global model serves" in d.reason)


def test_gate_refuses_when_the_rules_scorer_won_selection():
    d = evaluate_gate(0.9, None, "roc_auc", 0.005, selection="rules won on validation roc_auc 0.7100 vs xgboost 0.6000")
    assert not d.promote and d.reason.startswith("not promoted: the rules scorer won model selection (rules won")


def test_gate_rejects_unknown_metric_and_bad_margin():
    with pytest.raises(ValueError, match="unknown promotion metric 'f1'"):
        evaluate_gate(0.5, 0.4, "f1", 0.0)
    with pytest.raises(ValueError, match="margin"):
        evaluate_gate(0.5, 0.4, "roc_auc", -1)
    with pytest.raises(ValueError, match="a tie must never be promoted"):
        evaluate_gate(0.5, 0.4, "roc_auc", 0.0)


# --- against real stores ---------------------------------------------------------------------


def test_log_model_registers_a_staging_version_with_digest(env, good_rules):
    reg = env.registry()
    task = unique()
    info = reg.log_model(good_rules, task=task, segment=SEG, metrics={"test_roc_auc": 0.81},
                         params={"kind": "rules"}, feature_set={"version": "fs1"},
                         tags={"journey.data_window": "2026-01-01..2026-03-01"})
    assert info.name == model_name(task, SEG) == f"journey-{task}-global"
    assert (info.version, info.kind, info.aliases) == (1, "rules", ["staging"])
    assert len(info.digest) == 64 and info.tags["journey.digest"] == info.digest
    assert info.tags["journey.data_window"] == "2026-01-01..2026-03-01"
    assert info.tags["journey.feature_set_version"] == "fs1"
    assert info.created_at.tzinfo is not None and info.run_id
    # the run has the metric, linked to the logged model; the run was closed
    run = reg.client.get_run(info.run_id)
    assert run.data.metrics["test_roc_auc"] == pytest.approx(0.81) and run.info.status == "FINISHED"
    # artifacts: scorer, pinned requirements, synthetic example, under the test's folder
    model_dir = scorer_file(info).parent.parent
    assert model_dir.is_relative_to(env.artifacts)
    assert "scorer.joblib" in {p.name for p in (model_dir / "artifacts").iterdir()}
    reqs = (model_dir / "requirements.txt").read_text().split()
    assert all("==" in r for r in reqs) and any(r.startswith("mlflow==") for r in reqs)
    assert json.loads((model_dir / "input_example.json").read_text())["data"] == [[0.0] * len(POINTS)]
    # staging is in the ledger; production does not exist yet
    [move] = reg.history(task, SEG)
    assert (move.alias, move.from_version, move.to_version, move.action) == ("staging", None, 1, "stage")
    assert move.actor == "tester" and move.run_id == info.run_id
    assert reg.production(task, SEG) is None
    # a second version moves staging on
    info2 = reg.log_model(good_rules, task=task, segment=SEG, set_staging=True)
    assert info2.version == 2 and reg.staging(task, SEG).version == 2
    assert [v.aliases for v in reg.versions(task, SEG)] == [["staging"], []]


def test_gate_keeps_a_worse_candidate_in_staging_then_promotes_a_better_one_and_rolls_back(
        env, labelled, good_rules, weak_rules):
    X, y = labelled
    reg = env.registry()
    task = unique()

    def gate_and_maybe_promote(scorer):
        info = reg.log_model(scorer, task=task, segment=SEG)
        cand = roc_auc_score(y, scorer.predict_proba(X))
        prod = reg.production(task, SEG)
        prod_auc = (roc_auc_score(y, reg.load(task, SEG).scorer.predict_proba(X))
                    if prod is not None else None)
        gate = reg.evaluate_gate(cand, prod_auc, "roc_auc", 0.01)
        if gate.promote:
            reg.promote(task, SEG, info.version, reason=gate.reason, run_id=info.run_id)
        else:
            reg.tag_version(info.name, info.version, {"journey.gate": gate.reason})
        return info, gate

    v1, g1 = gate_and_maybe_promote(weak_rules)  # first model: nothing to beat
    assert g1.promote and "no production model" in g1.reason
    v2, g2 = gate_and_maybe_promote(weak_rules)  # no better than production: stays staging
    assert not g2.promote and "< margin 0.0100" in g2.reason
    assert reg.production(task, SEG).version == v1.version
    assert reg.staging(task, SEG).version == v2.version
    assert reg.version(task, SEG, v2.version).tags["journey.gate"] == g2.reason
    v3, g3 = gate_and_maybe_promote(good_rules)  # clearly better: promoted
    assert g3.promote and "improvement +" in g3.reason
    prod = reg.production(task, SEG)
    assert prod.version == v3.version and prod.tags["journey.promotion_reason"] == g3.reason
    assert "journey.promoted_at" in prod.tags

    back = reg.rollback(task, SEG, reason="bad scores in the field")
    assert (back.from_version, back.to_version, back.action) == (v3.version, v1.version, "rollback")
    assert reg.production(task, SEG).version == v1.version
    # rolling back again goes further back, not forward: v1 replaced nothing
    with pytest.raises(NothingToRollBack, match="nothing to roll back"):
        reg.rollback(task, SEG)

    chain = production_chain(reg, task)
    assert [(m.from_version, m.to_version, m.action) for m in chain] == [
        (None, 1, "promote"), (1, 3, "promote"), (3, 1, "rollback")]
    assert chain[1].reason == g3.reason and chain[2].reason == "bad scores in the field"
    assert {m.actor for m in chain} == {"tester"} and chain[1].run_id == v3.run_id
    assert all(m.at.tzinfo is not None for m in chain)
    # newest first, staging moves included
    hist = reg.history(task, SEG)
    assert hist[0].action == "rollback" and [m.id for m in hist] == sorted((m.id for m in hist), reverse=True)
    assert sum(m.alias == "staging" for m in hist) == 3


def test_concurrent_promotions_are_serialised(env, good_rules, monkeypatch):
    from journey_ml.registry import Registry

    reg = env.registry()
    task = unique()
    for _ in range(3):
        reg.log_model(good_rules, task=task, segment=SEG, set_staging=False)
    reg.promote(task, SEG, 1, reason="base")

    # widen the window between reading the current alias and writing the new one: without
    # the lock both threads would read v1 and the ledger would interleave
    real_set_alias = Registry._set_alias

    def slow_set_alias(self, name, alias, version):
        time.sleep(0.3)
        real_set_alias(self, name, alias, version)

    monkeypatch.setattr(Registry, "_set_alias", slow_set_alias)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(version: int) -> None:
        r = env.registry(experiment=reg.experiment, actor=f"thread-{version}")  # like another process
        barrier.wait()
        try:
            r.promote(task, SEG, version, reason=f"thread {version}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(v,)) for v in (2, 3)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.perf_counter() - t0
    assert not errors, errors
    chain = production_chain(reg, task)
    assert len(chain) == 3
    for prev, row in zip(chain, chain[1:], strict=False):
        assert row.from_version == prev.to_version, [(m.from_version, m.to_version) for m in chain]
    assert {chain[1].to_version, chain[2].to_version} == {2, 3}
    assert reg.production(task, SEG).version == chain[-1].to_version
    assert elapsed >= 0.6  # one after the other


def test_corrupt_artifact_is_refused(env, good_rules, weak_rules):
    reg = env.registry()
    task = unique()
    v1 = reg.log_model(good_rules, task=task, segment=SEG)
    reg.promote(task, SEG, 1, reason="first")
    v2 = reg.log_model(good_rules, task=task, segment=SEG)
    assert reg.verify(task, SEG, 2).version == 2
    joblib.dump(weak_rules, scorer_file(v2))  # tampered: a different (valid) pickle
    joblib.dump(weak_rules, scorer_file(v1))
    moves_before = count(env.engine, "alias_ledger")

    with pytest.raises(CorruptModel, match=rf"model {v2.name} version 2 is corrupt") as e:
        reg.load(task, SEG, "staging")
    assert (e.value.name, e.value.version) == (v2.name, 2)
    with pytest.raises(CorruptModel, match="version 1 is corrupt"):
        reg.load(task, SEG)  # production
    with pytest.raises(CorruptModel):
        reg.promote(task, SEG, 2, reason="should be refused")
    assert reg.production(task, SEG).version == 1
    assert count(env.engine, "alias_ledger") == moves_before
    # a missing artifact is corrupt too
    scorer_file(v2).unlink()
    with pytest.raises(CorruptModel):
        reg.verify(task, SEG, 2)


def test_rules_version_loads_through_the_models_uri(env, labelled, good_rules):
    import mlflow
    import mlflow.pyfunc

    from journey_ml.models.pyfunc import unwrap_scorer

    X, _ = labelled
    reg = env.registry()
    task = unique()
    info = reg.log_model(good_rules, task=task, segment=SEG)
    reg.promote(task, SEG, info.version, reason="rules first")

    loaded = reg.load(task, SEG)
    assert loaded.info.version == info.version and loaded.info.kind == "rules"
    assert np.allclose(loaded.predict_proba(X.astype("int64")), good_rules.predict_proba(X))
    assert np.allclose(loaded.pyfunc.predict(X), good_rules.predict_proba(X))

    old_tracking, old_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(env.tracking_uri)
    mlflow.set_registry_uri(env.tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/journey-{task}-global@production")
    finally:
        mlflow.set_tracking_uri(old_tracking)
        mlflow.set_registry_uri(old_registry)
    assert np.allclose(model.predict(X), good_rules.predict_proba(X))
    scorer = unwrap_scorer(model)
    assert scorer.explain(X.head(20), top_k=2) == good_rules.explain(X.head(20), top_k=2)


def test_not_found_and_nothing_to_roll_back(env, good_rules):
    reg = env.registry()
    task = unique()
    assert reg.production(task, SEG) is None
    assert reg.versions(task, SEG) == []
    assert reg.find_version(task, SEG, {"journey.kind": None}) is None
    with pytest.raises(ModelNotFound, match=rf"journey-{task}-global has no @production"):
        reg.load(task, SEG)
    with pytest.raises(ModelNotFound, match="has no version 1"):
        reg.promote(task, SEG, 1, reason="x")
    info = reg.log_model(good_rules, task=task, segment=SEG, tags={"journey.rules_hash": "abc"})
    with pytest.raises(ModelNotFound, match="has no version 7"):
        reg.promote(task, SEG, 7, reason="x")
    with pytest.raises(NothingToRollBack, match="no production version"):
        reg.rollback(task, SEG)
    reg.promote(task, SEG, 1, reason="first")
    with pytest.raises(NothingToRollBack, match="no version before production v1"):
        reg.rollback(task, SEG)
    with pytest.raises(NothingToRollBack, match="already production"):
        reg.rollback(task, SEG, to_version=1)
    assert reg.find_version(task, SEG, {"journey.rules_hash": None}).version == info.version
    assert reg.find_version(task, SEG, {"journey.rules_hash": "other"}) is None
    # an explicit target works even without history, and takes a given time
    reg.log_model(good_rules, task=task, segment=SEG)
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    move = reg.rollback(task, SEG, to_version=2, reason="pin v2", at=at)
    assert (move.from_version, move.to_version, move.at) == (1, 2, at)


def test_list_models_and_history_filters(env, good_rules, weak_rules):
    reg = env.registry()
    task = unique("t_") + "_x"  # underscores must not act as LIKE wildcards:
    twin = task.replace("_", "q")  # ...or "journey-t_..._x-%" would match this one too
    reg.log_model(good_rules, task=twin, segment=SEG)
    reg.log_model(good_rules, task=task, segment=SEG)
    reg.log_model(weak_rules, task=task, segment="smb")
    reg.log_model(good_rules, task=task, segment="smb")
    reg.promote(task, "smb", 1, reason="rules baseline", action="fallback")

    mine = {s.name: s for s in reg.list_models() if s.task == task}
    assert set(mine) == {f"journey-{task}-global", f"journey-{task}-smb"}
    smb = mine[f"journey-{task}-smb"]
    assert (smb.versions, smb.production_version, smb.staging_version) == ([1, 2], 1, 2)
    assert smb.kinds == {1: "rules", 2: "rules"} and smb.segment == "smb"
    assert smb.production_since == reg.history(task, "smb")[0].at
    g = mine[f"journey-{task}-global"]
    assert (g.production_version, g.production_since, g.staging_version) == (None, None, 1)

    assert {m.model_name for m in reg.history(task)} == set(mine)
    assert [m.action for m in reg.history(task, "smb")] == ["fallback", "stage", "stage"]
    assert all(m.model_name.endswith("-smb") for m in reg.history(segment="smb"))
    assert {m.model_name for m in reg.history(twin)} == {f"journey-{twin}-global"}


def test_transient_errors_are_retried(env):
    from mlflow.exceptions import MlflowException

    reg = env.registry()
    reg.backoff = 0.01
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise MlflowException("database is locked", error_code="TEMPORARILY_UNAVAILABLE")
        return "ok"

    assert reg._retry(flaky) == "ok" and len(calls) == 3

    def broken():
        calls.append(1)
        raise MlflowException("no such thing", error_code="RESOURCE_DOES_NOT_EXIST")

    calls.clear()
    with pytest.raises(MlflowException):
        reg._retry(broken)
    assert len(calls) == 1


def test_xgboost_and_rules_are_versions_of_one_model(env, labelled, good_rules):
    """Any Scorer goes through the same adapter and URI; categorical inputs are strings."""
    import pandas as pd

    from journey_ml.models.xgb import Column, XGBScorer

    X, y = labelled
    X = X.assign(industry=np.where(np.arange(len(X)) % 3 == 0, "saas", "retail"))
    cols = [Column(n, "numeric") for n in POINTS] + [Column("industry", "categorical", ("saas", "retail"))]
    xgb = XGBScorer(cols, n_estimators=20, max_depth=2, early_stopping_rounds=5, n_jobs=1)
    xgb.fit(X.iloc[:400], y[:400], X.iloc[400:], y[400:])
    reg = env.registry()
    task = unique()
    r1 = reg.log_model(good_rules, task=task, segment=SEG)
    x2 = reg.log_model(xgb, task=task, segment=SEG, feature_set={"version": "fs2"})
    assert (r1.kind, x2.kind) == ("rules", "xgboost")
    reg.promote(task, SEG, x2.version, reason="xgboost beats rules")
    loaded = reg.load(task, SEG)
    assert loaded.info.kind == "xgboost" and loaded.pyfunc.metadata.get_input_schema().input_names()[-1] == "industry"
    assert [c.type.name for c in loaded.pyfunc.metadata.get_input_schema().inputs][-1] == "string"
    example = pd.read_json(Path(scorer_file(x2).parent.parent / "input_example.json"), orient="split")
    assert example.iloc[0].tolist() == [0, 0, 0, 0, "saas"]  # synthetic: zeros, first category
    assert np.allclose(loaded.pyfunc.predict(X.head(50)), xgb.predict_proba(X.head(50)))
    assert loaded.scorer.explain(X.head(3)) == xgb.explain(X.head(3))
    fell_back = reg.promote(task, SEG, r1.version, reason="drift: fall back to rules", action="fallback")
    assert (fell_back.from_version, fell_back.to_version, fell_back.action) == (2, 1, "fallback")
    assert reg.load(task, SEG).info.kind == "rules"


def test_warehouse_and_tracking_store_must_be_different_sqlite_files(tmp_path):
    from journey_ml.db import make_engine
    from journey_ml.registry import Registry

    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    with pytest.raises(ValueError, match="must be different SQLite files"):
        Registry(f"sqlite:///{tmp_path / 'one.db'}", engine)
    engine.dispose()
