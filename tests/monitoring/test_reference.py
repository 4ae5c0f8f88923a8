"""Which population a run's drift is judged against (`reference_as_of`), on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from journey_ml.config import load_config
from journey_ml.db import make_engine, upgrade
from journey_ml.monitoring import store
from journey_ml.monitoring.runner import TRAINED_AS_OF_TAG, reference_as_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
INFO = SimpleNamespace(name="journey-conversion-global", version=3, tags={TRAINED_AS_OF_TAG: T0.isoformat()})


@pytest.fixture
def engine(tmp_path):
    e = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(e)
    yield e
    e.dispose()


def _run(engine, as_of, version=3, status="ok"):
    store.save_run(engine, run_key=f"k{as_of:%Y%m%d}{version}{status}", task="conversion", segment="global",
                   as_of=as_of, model_name=INFO.name, model_version=version, model_kind="xgboost", status=status,
                   drift_detected=False, matured_as_of=None, contract=None, drift=None, performance=None,
                   reports=None, error=None, created_at=as_of)


def _policy(**kw):
    return load_config(None)[0].monitoring.policy("conversion", "global").model_copy(update=kw)


def test_shipped_default_is_the_newest_run_at_least_28_days_earlier(engine):
    p = _policy()
    assert (p.drift_reference, p.drift_reference_lag_days) == ("previous_run", 28.0)
    for d in (7, 14, 21, 28, 35, 42):
        _run(engine, T0 + d * DAY)
    _run(engine, T0 + 40 * DAY, version=2)  # another version's run never counts
    _run(engine, T0 + 41 * DAY, status="error")  # nor a failed run
    at, why = reference_as_of(engine, "conversion", "global", INFO, p, T0 + 70 * DAY)
    assert at == T0 + 42 * DAY and "at least 28 days earlier" in why
    at, _ = reference_as_of(engine, "conversion", "global", INFO, p, T0 + 69 * DAY)
    assert at == T0 + 35 * DAY  # 42 is only 27 days back
    at, _ = reference_as_of(engine, "conversion", "global", INFO, p, T0 + 56 * DAY)
    assert at == T0 + 28 * DAY  # exactly the lag counts


def test_lag_zero_is_the_previous_run_never_the_run_itself(engine):
    _run(engine, T0 + 7 * DAY)
    _run(engine, T0 + 14 * DAY)
    at, _ = reference_as_of(engine, "conversion", "global", INFO, _policy(drift_reference_lag_days=0.0), T0 + 14 * DAY)
    assert at == T0 + 7 * DAY


def test_no_run_old_enough_falls_back_to_the_training_as_of_then_to_the_training_window(engine):
    _run(engine, T0 + 7 * DAY)
    at, why = reference_as_of(engine, "conversion", "global", INFO, _policy(), T0 + 14 * DAY)
    assert at == T0 and "training as-of" in why
    # trained as of T itself: never compared with its own population (no reference rows stored
    # here, so the date is unknown and the caller uses the stored training sample)
    at, _ = reference_as_of(engine, "conversion", "global", INFO, _policy(), T0)
    assert at != T0
