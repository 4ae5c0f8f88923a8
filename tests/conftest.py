"""Shared fixtures: real warehouses on SQLite and on the local PostgreSQL.

PostgreSQL is reached at JOURNEY_TEST_PG_URL (default: the machine's trust-auth server as
user postgres). Each test session creates its own database and drops it at the end; each
test starts from empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from journey_ml.config import JourneyConfig, parse_config
from journey_ml.db import make_engine, upgrade
from journey_ml.db.models import Base

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

PG_ADMIN_URL = os.environ.get("JOURNEY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
RECEIVED_AT = datetime(2026, 7, 1, tzinfo=UTC)
SALT = "test-salt"


def _admin_conninfo() -> str:
    u = make_url(PG_ADMIN_URL)
    return f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    name = f"journey_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(_admin_conninfo(), autocommit=True)
    except psycopg.OperationalError as e:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is required for the tests ({PG_ADMIN_URL}): {e}")
    admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _truncate(engine: sa.Engine) -> None:
    names = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY"))
        else:
            for n in names:
                conn.execute(sa.text(f"DELETE FROM {n}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty, migrated warehouse, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
        upgrade(eng)
    else:
        eng = make_engine(request.getfixturevalue("pg_url"))
        _truncate(eng)
    yield eng
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db_url(request, tmp_path: Path) -> Iterator[str]:
    """The URL of a brand-new, never-migrated warehouse (SQLite file or PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"journey_fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(pg_url)
    _truncate(eng)
    yield eng
    eng.dispose()


TAXONOMY = {
    "page_view": {"channel": "web", "stage": "awareness"},
    "pricing_page_view": {"channel": "web", "stage": "consideration"},
    "demo_request": {"channel": "web", "stage": "decision"},
    "closed_won": {"channel": "sales", "stage": "purchase"},
}


def make_config(*sources: dict, **extra) -> JourneyConfig:
    """A configuration with a small taxonomy and the given sources."""
    return parse_config({"taxonomy": TAXONOMY, "sources": list(sources), **extra}, "test-config")


def table_rows(engine: sa.Engine, table: str, order: str | None = None) -> list[tuple]:
    with engine.connect() as conn:
        q = f"SELECT * FROM {table}" + (f" ORDER BY {order}" if order else "")
        return [tuple(r) for r in conn.execute(sa.text(q))]


def count(engine: sa.Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one()


def snapshot(engine: sa.Engine, tables=("events", "accounts", "contacts", "outcomes", "quarantine",
                                         "ingest_batches", "tombstones")) -> dict[str, list]:
    """Every row of the data tables, for before/after comparisons."""
    order = {"events": "source, event_id", "accounts": "account_id", "contacts": "contact_id",
             "outcomes": "source, outcome_id", "quarantine": "id", "ingest_batches": "batch_key",
             "tombstones": "subject_hash"}
    return {t: table_rows(engine, t, order.get(t, "1")) for t in tables}


# every column but the ones that name the loading run (or a serial id), per warehouse table
_CHECKSUM_SKIP = {"ingest_run_id", "run_id", "id"}


def checksums(engine: sa.Engine, tables=("events", "outcomes", "accounts", "contacts", "quarantine")
              ) -> dict[tuple[str, str], tuple[int, str]]:
    """PostgreSQL: per (table, source), the row count and an order-independent checksum of
    every row (the sum of each row's md5 as a 60-bit number), ignoring which run loaded it.

    Two warehouses with equal checksums hold the same rows; it runs in the server, so it is
    cheap on millions of rows.
    """
    from journey_ml.db.models import Base

    out = {}
    with engine.connect() as conn:
        for t in tables:
            cols = [c.name for c in Base.metadata.tables[t].columns if c.name not in _CHECKSUM_SKIP]
            row = ", ".join(f"{c}::text" for c in cols)
            q = (f"SELECT source, count(*), sum(('x' || left(md5(row({row})::text), 15))::bit(60)::bigint::numeric)"
                 f" FROM {t} GROUP BY source")
            for source, n, s in conn.execute(sa.text(q)):
                out[(t, source)] = (n, str(s))
    return out


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's test harness (a real temporary Prefect server), once per test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
