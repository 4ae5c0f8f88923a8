"""The recent-matured gate (#11.4) on its own: which rows it compares on, and its verdict.

A small simulated world in SQLite; the two "models" are scorers whose scores are fixed per
row (a perfect ranking, a noisy one, a reversed one), so each case's AUCs are known from the
rows and the labels alone and the verdict can be checked against a hand computation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from journey_ml.db import make_engine, upgrade
from journey_ml.features import feature_set_for
from journey_ml.features.boundary import label_matured
from journey_ml.ingest import ingest_all
from journey_ml.monitoring.recent_gate import comparison_dates, recent_gate, recent_rows
from journey_ml.segments import GLOBAL
from journey_ml.simulate import SimulationParams, simulate
from tests.scoring.conftest import small_config

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

TASK = "conversion"
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("recent_gate")
    simulate(SimulationParams(accounts=300, seed=5), root / "exports")
    cfg = small_config()
    engine = make_engine(f"sqlite:///{root / 'warehouse.db'}")
    upgrade(engine)
    ingest_all(engine, cfg, data_dir=root / "exports", salt="t", received_at=datetime(2026, 7, 1, tzinfo=UTC))
    fs = feature_set_for(engine, cfg, TASK)
    x, y = recent_rows(engine, cfg, TASK, GLOBAL, comparison_dates(cfg, TASK, AS_OF), fs)
    yield cfg, engine, fs, y
    engine.dispose()


class _Fixed:
    """A scorer returning given scores, row by row, for the frame of the comparison."""

    def __init__(self, scores: np.ndarray, names: list[str]):
        self.scores, self.feature_names = scores, names

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        assert len(x) == len(self.scores), "scored on other rows than the comparison's"
        return self.scores


@dataclass
class _Loaded:
    scorer: _Fixed
    feature_set: dict


def _scores(kind: str, y: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    if kind == "perfect":
        return y.astype(float)
    if kind == "reversed":
        return 1.0 - y
    if kind == "noisy":  # ranks most positives above most negatives, not all
        return np.clip(0.3 * y + rng.normal(0.35, 0.2, y.size), 0, 1)
    if kind == "noisy+":  # the noisy ranking with its lowest positive moved past one negative:
        s = _scores("noisy", y)  # better by one pair in P x N, below the margin
        worst = int(np.flatnonzero(y == 1)[np.argmin(s[y == 1])])
        above = np.sort(s[(y == 0) & (s > s[worst])])
        s[worst] = (above[0] + above[1]) / 2
        return s
    raise ValueError(kind)


CASES = [  # candidate, production, promoted
    ("beats", "perfect", "noisy", True),
    ("ties", "noisy", "noisy", False),
    ("loses", "noisy", "perfect", False),
    ("reversed loses", "reversed", "noisy", False),
    ("better by less than the margin", "noisy+", "noisy", False),
]


@pytest.mark.parametrize(("case", "cand", "prod", "promoted"), CASES, ids=[c[0] for c in CASES])
def test_candidate_vs_production_on_the_newest_matured_dates(warehouse, case, cand, prod, promoted):
    cfg, engine, fs, y = warehouse
    names = fs.names()
    c, p = _scores(cand, y), _scores(prod, y)
    g = recent_gate(engine, cfg, TASK, GLOBAL, _Loaded(_Fixed(c, names), fs.to_dict()),
                    _Loaded(_Fixed(p, names), fs.to_dict()), AS_OF, min_positives=5)
    # the newest three dates 14 days apart whose horizon closed by AS_OF, newest first
    horizon = cfg.task(TASK).horizon_days
    assert g.dates == [datetime(2026, 3, 3, tzinfo=UTC) - timedelta(days=14 * i) for i in range(3)]
    assert all(label_matured(d, horizon, AS_OF) for d in g.dates)
    assert not label_matured(g.dates[0] + timedelta(days=1), horizon, AS_OF)
    assert g.rows == len(y) and g.positives == int(y.sum()) > 5
    assert g.candidate_roc_auc == pytest.approx(roc_auc_score(y, c), abs=1e-12)
    assert g.production_roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert g.promote is promoted, g.reason
    gain = roc_auc_score(y, c) - roc_auc_score(y, p)
    if case == "better by less than the margin":
        assert gain == pytest.approx(1 / (y.sum() * (len(y) - y.sum()))) and gain < cfg.registry.promotion_margin
    assert g.reason.startswith("on recent matured data 2026-02-03..2026-03-03")
    assert ("promoted: " if promoted else "not promoted: ") in g.reason


def test_no_matured_data_promotes_nothing(warehouse):
    cfg, engine, fs, _ = warehouse
    early = datetime(2025, 3, 1, tzinfo=UTC)  # the horizon reaches back before the simulated period
    never = _Fixed(np.array([]), fs.names())
    g = recent_gate(engine, cfg, TASK, GLOBAL, _Loaded(never, fs.to_dict()), _Loaded(never, fs.to_dict()), early)
    assert g.promote is False and g.rows == 0 and g.positives == 0
    assert g.candidate_roc_auc is None and g.production_roc_auc is None
    assert "0 rows, 0 positive: too few to compare" in g.reason


def test_too_few_positives_promotes_nothing(warehouse):
    cfg, engine, fs, y = warehouse
    names = fs.names()
    g = recent_gate(engine, cfg, TASK, GLOBAL, _Loaded(_Fixed(_scores("perfect", y), names), fs.to_dict()),
                    _Loaded(_Fixed(_scores("noisy", y), names), fs.to_dict()), AS_OF,
                    min_positives=int(y.sum()) + 1)
    assert g.promote is False and g.candidate_roc_auc is None
    assert f"{len(y)} rows, {int(y.sum())} positive: too few to compare" in g.reason
