"""Feature families: every family computes exactly the columns it declares, no column is
silently all-NaN, and the family-based builder gives the frames the builder before it gave
(reference frames pickled from that code by `tests.features.reference_frames`)."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from journey_ml.features import build_features, feature_set_for
from journey_ml.features import builder as B
from journey_ml.features.families import FAMILIES
from tests.features import reference_frames as R
from tests.features.test_features import T

REFERENCE = Path(__file__).parent / "data" / "reference_frames.pkl"


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {"fixture": (*R.fixture_warehouse(root), R.FIXTURE_DATES),
            "simulated": (*R.simulated_warehouse(root), R.SIM_DATES)}


def test_frames_equal_the_builder_before_families(warehouses):
    with open(REFERENCE, "rb") as f:
        reference = pickle.load(f)
    compared = 0
    for name, (engine, cfg, _dates) in warehouses.items():
        for (task, when), ref in reference[name].items():
            got = build_features(engine, cfg, task, datetime.fromisoformat(when)).frame
            # columns added since (new features) are extra; the old ones are identical, in order
            assert [c for c in got.columns if c in set(ref.columns)] == list(ref.columns), (name, task, when)
            pd.testing.assert_frame_equal(got[list(ref.columns)], ref, check_exact=True, obj=f"{name} {task} {when}")
            compared += 1
    assert compared == 18
    assert max(len(r) for r in reference["simulated"].values()) > B._SMALL  # both assembly paths covered


def _by_family(engine, cfg, task: str, when: datetime):
    _, plan = B._plan(cfg, task)
    fs = feature_set_for(engine, cfg, task)
    older, recent = B._fetch(engine, plan, fs, when)
    pop, computed = B._assemble(plan, fs, when, older, recent)
    assert len(pop), (task, when)
    return fs, computed


@pytest.mark.parametrize("task", ["conversion", "churn", "lead"])
def test_every_family_computes_what_it_declares(warehouses, task):
    engine, cfg, _ = warehouses["fixture"]
    fs, computed = _by_family(engine, cfg, task, T)
    assert set(computed) == {f.GROUP for f in FAMILIES}
    for family in FAMILIES:
        declared = [s.name for s in fs.features if s.group == family.GROUP]
        assert set(computed[family.GROUP]) == set(declared), family.__name__
        n = len(B.population(engine, cfg, task, T))
        assert all(len(v) == n for v in computed[family.GROUP].values()), family.__name__
    assert len(fs.features) == sum(len(computed[f.GROUP]) for f in FAMILIES)


def test_no_column_is_silently_missing(warehouses, caplog):
    """Counts and sums are never NaN (0 without events); NaN only means "never" (recency,
    stage durations, renewal, averages); a declared column nothing computes is reported."""
    engine, cfg, dates = warehouses["simulated"]
    never = {"recency", "stage"}
    for task in ("conversion", "churn", "contact_conversion"):
        ff = build_features(engine, cfg, task, dates[-1])
        for spec in ff.feature_set.features:
            may_be_nan = (spec.group in never or not spec.point_in_time or spec.name.startswith("days_")
                          or spec.name.endswith("_avg") or spec.name == "days_to_renewal")
            if not may_be_nan:
                assert ff.frame[spec.name].notna().all(), (task, spec.name)
    # a stored feature set with a column this configuration does not compute: said, not silent
    ff = build_features(engine, cfg, "conversion", dates[-1])
    fs = dataclasses.replace(ff.feature_set, features=(*ff.feature_set.features, dataclasses.replace(
        ff.feature_set.features[0], name="events_365d")))
    with caplog.at_level("WARNING", logger="journey_ml.features.builder"):
        got = build_features(engine, cfg, "conversion", dates[-1], feature_set=fs)
    assert got.frame["events_365d"].isna().all()
    assert "1 declared feature(s) not computed by this configuration, left empty: events_365d" in caplog.text
