"""Batch scoring with the TreeSHAP tables gives what it gave with XGBoost's ``pred_contribs``.

The whole path (registry load, ladder, probabilities, top-3 reasons in words, playbook actions,
holdout) is run twice on the trained small world: once as shipped, once with the scorer's
contributions computed by ``booster.predict(..., pred_contribs=True)`` (the implementation
before the tables). Both are real XGBoost models loaded from the real MLflow registry.
"""

from __future__ import annotations

import numpy as np
import pytest

from journey_ml.models.xgb import XGBScorer
from journey_ml.scoring import ModelCache
from journey_ml.scoring.batch import compute_scores
from journey_ml.training import GLOBAL
from tests.scoring.conftest import SCORED_AT

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
TASK = "conversion"


def _pred_contribs(self: XGBScorer, A: np.ndarray) -> np.ndarray:
    return self.booster_.predict(self._array_dmatrix(A), pred_contribs=True,
                                 iteration_range=(0, self.best_iteration_ + 1))


def _batch(world, cache: ModelCache | None = None):
    return compute_scores(world.engine, world.registry, world.config, TASK, world.as_of, scored_at=SCORED_AT,
                          cache=cache or ModelCache())


def test_reasons_and_actions_are_those_of_pred_contribs(world, monkeypatch):
    tables = _batch(world)
    monkeypatch.setattr(XGBScorer, "_contribs", _pred_contribs)
    before = _batch(world)
    a, b = tables.columns, before.columns
    modes = {blk.mode for blk in a.blocks}
    assert {"segment_model", "global_model"} <= modes  # both kinds of XGBoost model explained
    assert np.array_equal(a.entity_id, b.entity_id)
    assert np.array_equal(a.probability, b.probability)
    assert np.array_equal(a.band, b.band)
    ra, rb = a.reasons, b.reasons
    assert a.reasons.idx.shape == (len(a.entity_id), world.config.scoring.top_reasons)
    assert [ra.names[j] if j >= 0 else None for j in ra.idx.ravel()] == \
        [rb.names[j] if j >= 0 else None for j in rb.idx.ravel()]
    assert np.abs(ra.contribution - rb.contribution).max() <= 1e-5
    # the sentences ("... (+0.42)") match unless a value sits within 1e-5 of a rounding edge
    edge = np.abs(np.abs(rb.contribution * 100) % 1 - 0.5) < 1e-3
    assert np.array_equal(ra.text[~edge], rb.text[~edge])
    assert np.array_equal(a.action, b.action)
    assert np.array_equal(a.action_holdout, b.action_holdout)
    assert [r.mode_reason for r in tables.results] == [r.mode_reason for r in before.results]


def test_models_loaded_for_scoring_have_their_tables_and_keep_their_digest(world):
    cache = ModelCache()
    info = world.registry.production(TASK, GLOBAL)
    model = cache.get(world.registry, TASK, GLOBAL, info.version, info.kind)  # digest checked on download
    built = getattr(model.scorer, "_shap_tables", None)
    assert built is not None  # built at load, before the first request needs them
    scored = _batch(world, cache)
    assert any(r.model_name == info.name for r in scored.results)
    assert model.scorer.prepare_explanations() is built[2]  # reused by scoring, not rebuilt
    # explaining wrote nothing into the artifact: its digest still verifies
    assert world.registry.verify(TASK, GLOBAL, info.version).version == info.version
