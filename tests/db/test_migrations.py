"""Migrations: they build exactly the schema the models declare, up and down, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from journey_ml.db import make_engine, upgrade
from journey_ml.db.migrate import current_revision, downgrade, head_revision
from journey_ml.db.models import Base


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []
    assert current_revision(engine) == head_revision()


def test_upgrade_downgrade_roundtrip_sqlite(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    assert upgrade(eng) == head_revision()
    assert "events" in sa.inspect(eng).get_table_names()
    assert downgrade(eng, "base") is None
    assert set(sa.inspect(eng).get_table_names()) <= {"alembic_version"}
    assert upgrade(eng) == head_revision()


def test_events_table_is_indexed_for_time_windows(engine):
    idx = {i["name"]: i["column_names"] for i in sa.inspect(engine).get_indexes("events")}
    assert idx["ix_events_contact_time"] == ["contact_id", "occurred_at"]
    assert idx["ix_events_account_time"] == ["account_id", "occurred_at"]
    pk = sa.inspect(engine).get_pk_constraint("events")["constrained_columns"]
    assert pk == ["source", "event_id"]
