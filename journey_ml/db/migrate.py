"""Alembic migrations, driven from code (`journey-ml db upgrade`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    # No sqlalchemy.url: env.py runs on the connection passed in ``attributes``. A URL in the
    # main options would go through configparser interpolation, where a percent-encoded
    # password (p%40ss) is a syntax error whose message prints the URL, password included.
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


# pg_advisory_xact_lock key of "migrating this database" (any constant; the ingest run
# locks use the two-key form, a separate key space)
_MIGRATION_LOCK = 0x6A6D6C5F6D696772  # "jml_migr"


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One transaction that holds the database's migration lock until it commits.

    Two first-time commands used to race on a fresh database (both saw no
    ``alembic_version`` and both created it: UniqueViolation). Now the second waits for the
    first to commit, then finds the schema at head and does nothing. PostgreSQL: a
    transaction-level advisory lock; SQLite: ``BEGIN IMMEDIATE`` (the write lock, which also
    makes the migration's DDL one transaction instead of autocommitted statements).
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.connection.driver_connection.rollback()
                raise
            conn.connection.driver_connection.commit()
            return
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            yield conn


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision`` and return the revision now current.

    Safe to call from several processes at once (see ``_migrating``).
    """
    cfg = _config()
    with _migrating(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return current_revision(engine)


def downgrade(engine: Engine, revision: str) -> str | None:
    """Revert migrations down to ``revision`` ("base" for an empty database)."""
    cfg = _config()
    with _migrating(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this package."""
    return ScriptDirectory.from_config(_config()).get_current_head()
