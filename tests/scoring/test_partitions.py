"""Partitioned batch scoring: the population split by entity hash, each partition scored
apart, written together: the same stored rows as scoring it in one piece."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from journey_ml.jobs import ScoringParams, run_scoring, serial
from journey_ml.runtime import Runtime
from journey_ml.scoring.batch import partition_features, population_features
from journey_ml.settings import Settings
from tests.scoring.conftest import world  # noqa: F401 - the shared trained world

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
SCORED = datetime(2026, 7, 2, tzinfo=UTC)


def _stored(engine) -> list[tuple]:
    """Every stored score, without the run id (a new one per run)."""
    with engine.connect() as conn:
        cols = [c for c in sa.inspect(engine).get_columns("scores") if c["name"] not in ("id", "run_id")]
        names = ", ".join(c["name"] for c in cols)
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT {names} FROM scores ORDER BY task, entity_id"))]


def _runtime(w, tmp_path, partitions: int | None) -> Runtime:
    execution = w.config.execution.model_copy(update={"scoring_partitions": partitions})
    rt = Runtime(settings=Settings(home=tmp_path, pii_salt="t"), config=w.config.model_copy(update={"execution": execution}),
                 _engine=w.engine)
    rt.__dict__["registry"] = w.registry  # the cached_property's slot: the world's registry
    return rt


class _Recording:
    """A fan-out that records what it was given (and runs it here)."""

    def __init__(self):
        self.items = []

    def __call__(self, fn, items):
        self.items.extend(items)
        return serial(fn, items)


def test_partitioned_scoring_stores_the_rows_of_one_piece(world, tmp_path):  # noqa: F811
    one = run_scoring(_runtime(world, tmp_path, None), ScoringParams(scored_at=SCORED, as_of=world.as_of)).runs[0]
    whole = _stored(world.engine)
    each = _Recording()
    three = run_scoring(_runtime(world, tmp_path, 3), ScoringParams(scored_at=SCORED, as_of=world.as_of),
                        each=each).runs[0]
    assert [str(p) for p in each.items] == ["conversion 1/3", "conversion 2/3", "conversion 3/3"]
    assert all(len(p.features.frame) > 0 for p in each.items)
    # one atomic replacement of the (task, as_of) rows: the same rows, value for value
    assert _stored(world.engine) == whole and len(whole) == one.entities
    assert (three.entities, three.rows_written, three.modes, three.bands, three.holdout) == \
           (one.entities, one.rows_written, one.modes, one.bands, one.holdout)
    assert [(s.segment, s.entities, s.mode, s.model_version) for s in three.segments] == \
           [(s.segment, s.entities, s.mode, s.model_version) for s in one.segments]


def test_partitions_are_disjoint_stable_and_cover_the_population(world):  # noqa: F811
    ff, _ = population_features(world.engine, world.registry, world.config, "conversion", world.as_of)
    parts = partition_features(ff, 4)
    ids = [set(p.frame.index) for p in parts]
    assert sum(map(len, ids)) == len(ff.frame) and set().union(*ids) == set(ff.frame.index)
    # an entity's partition depends on its id alone, not on who else is in the population
    half = partition_features(type(ff)(ff.task, ff.as_of, ff.feature_set, ff.frame.iloc[::2]), 4)
    for whole, part in zip(parts, half, strict=True):
        assert set(part.frame.index) <= set(whole.frame.index)
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        partition_features(ff, 0)
