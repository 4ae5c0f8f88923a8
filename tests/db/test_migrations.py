"""Migrations: they build exactly the schema the models declare, up and down, on both backends."""

from __future__ import annotations

import subprocess
import sys

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


# --- issue #9 case 8: migrations race on a fresh database -----------------------------------

_UPGRADE_WHEN_TOLD = """
import sys
from journey_ml.db import make_engine, upgrade
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # both processes are imported and connected: go at the same moment
print(upgrade(engine), flush=True)
"""


def test_case08_concurrent_first_upgrades_of_a_fresh_database(fresh_db_url):
    for _ in range(2):  # a race: two rounds, each on a database that has never been migrated
        procs = [subprocess.Popen([sys.executable, "-c", _UPGRADE_WHEN_TOLD, fresh_db_url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, err
            assert out.split()[-1] == head_revision()
            assert "Traceback" not in err
        eng = make_engine(fresh_db_url)
        try:
            assert current_revision(eng) == head_revision()
            with eng.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
            downgrade(eng, "base")  # the next round starts from nothing again
        finally:
            eng.dispose()


# --- issue #9 case 3: existing tombstones survive the change of hash -------------------------

def test_case03_migration_keeps_existing_tombstones_effective(fresh_db_url, tmp_path):
    from datetime import UTC, datetime

    from journey_ml.erasure import forget, is_erased
    from journey_ml.ingest.pii import legacy_subject_hash
    from tests.conftest import SALT, count, make_config
    from tests.ingest.test_pipeline import CONTACTS, run, write

    eng = make_engine(fresh_db_url)
    try:
        upgrade(eng, "0004")
        # a tombstone written by the old code: the keyed hash of the lower-cased id
        old = legacy_subject_hash("contact", "0035e00000ABCDE", SALT)
        with eng.begin() as conn:
            conn.execute(sa.text("INSERT INTO tombstones (subject_hash, subject_kind, erased_at) "
                                 "VALUES (:h, 'contact', :t)"), {"h": old, "t": datetime(2026, 1, 1, tzinfo=UTC)})
        upgrade(eng)
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT hash_form FROM tombstones")).scalar_one() == "casefold"
        # the erased person stays erased (whatever the case the old request used) ...
        assert is_erased(eng, "contact", "0035e00000ABCDE", salt=SALT)
        write(tmp_path / "contacts.csv", "ContactId,AccountId,Email,FullName,BuyingRole,OptedOut\n"
              "0035e00000ABCDE,acme,u@x.com,U,end_user,false\n"
              "0035e00000AbCdE,acme,m@x.com,M,end_user,false\n"
              "other,acme,o@x.com,O,end_user,false\n")
        res = run(eng, make_config(CONTACTS), tmp_path, source="crm_contacts")
        # ... and, as before the fix, a legacy tombstone covers every letter case of the id
        assert (res.rows_loaded, res.rows_suppressed) == (1, 2)
        # new erasures are exact
        forget(eng, "contact", "other", salt=SALT, actor="dpo", at=datetime(2026, 7, 2, tzinfo=UTC))
        with eng.connect() as conn:
            forms = sorted(conn.execute(sa.text("SELECT hash_form FROM tombstones")).scalars())
        assert forms == ["casefold", "exact"] and count(eng, "contacts") == 0
        assert downgrade(eng, "0004") == "0004" and upgrade(eng) == head_revision()
    finally:
        eng.dispose()
