"""A warehouse URL with a password (#9 case 11) and the PII salt outside the demo (#9 case 13).

A real PostgreSQL role whose password needs percent-encoding in a URL (``@`` and ``%``): the
commands must parse it (no configparser interpolation on the way into Alembic) and no
command's output or error may contain it. The local server trusts loopback, so the password
is not checked; what is tested is that every command handles the URL, not the login.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from journey_ml.settings import DEV_PII_SALT, MissingSecret, Settings
from tests.conftest import PG_ADMIN_URL, _admin_conninfo

PASSWORD = "p@ss%w0rd"  # in a URL: p%40ss%25w0rd
ENCODED = "p%40ss%25w0rd"
LEAKS = (PASSWORD, ENCODED, "p%40ss", "%25w0rd")


@pytest.fixture(scope="module")
def pw_url() -> Iterator[str]:
    """A database owned by a role with a password that URL-encoding changes."""
    name = f"jml_pw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
        admin.execute(f'CREATE DATABASE "{name}" OWNER {name}')
    u = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", username=name, password=PASSWORD,
                                   database=name)
    url = u.render_as_string(hide_password=False)
    assert ENCODED in url
    yield url
    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
def run(monkeypatch, tmp_path: Path):
    """Invoke a command in-process with JOURNEY_* set as given; returns (exit code, output)."""
    from typer.testing import CliRunner

    from journey_ml.cli.app import app

    for k in list(os.environ):
        if k.startswith("JOURNEY_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)

    def _run(args: list[str], url: str, **env: str) -> tuple[int, str]:
        with monkeypatch.context() as m:
            m.setenv("JOURNEY_HOME", str(tmp_path / "home"))
            m.setenv("JOURNEY_DATABASE_URL", url)
            for k, v in env.items():
                m.setenv(k, v)
            r = CliRunner().invoke(app, args)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return r.exit_code, r.output
    return _run


def _no_leak(text: str, where: str) -> None:
    for s in LEAKS:
        assert s not in text, f"{where} shows the database password ({s!r}):\n{text}"


def test_percent_encoded_password_works_and_is_never_shown(pw_url: str, tmp_path: Path, run):
    salt = "s" * 32
    outputs = []
    steps = [
        ["db", "upgrade"],
        ["db", "current"],
        ["simulate", "--accounts", "8", "--start", "2025-01-01", "--end", "2025-03-31"],
        ["ingest"],
    ]
    for args in steps:
        rc, text = run(args, pw_url, JOURNEY_PII_SALT=salt)
        outputs.append((args, text))
        assert rc == 0, f"{args}: {text}"
    assert "revision" in outputs[0][1] and "***" in outputs[0][1]

    eng = sa.create_engine(make_url(pw_url))
    with eng.connect() as c:
        loaded = c.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
        contact = c.execute(sa.text("SELECT contact_id FROM contacts ORDER BY contact_id LIMIT 1")).scalar_one()
    assert loaded > 0
    rc, text = run(["forget", "--contact", contact], pw_url, JOURNEY_PII_SALT=salt)
    outputs.append((["forget"], text))
    assert rc == 0, text
    with eng.connect() as c:
        left = c.execute(sa.text("SELECT count(*) FROM contacts WHERE contact_id = :c"), {"c": contact}).scalar_one()
    eng.dispose()
    assert left == 0

    # an error that names the warehouse: a database that does not exist, same credentials
    missing = make_url(pw_url).set(database="jml_pw_no_such_db").render_as_string(hide_password=False)
    rc, text = run(["db", "upgrade"], missing, JOURNEY_PII_SALT=salt)
    outputs.append((["db", "upgrade", "(missing db)"], text))
    assert rc != 0
    assert "jml_pw_no_such_db" in text, text  # it says which database

    for args, text in outputs:
        _no_leak(text, " ".join(args))
    for log in (tmp_path / "home").rglob("*.log"):
        _no_leak(log.read_text(errors="replace"), str(log))


def test_postgresql_warehouse_without_salt_refuses_with_how_to_set_it(pw_url: str, run):
    rc, text = run(["ingest"], pw_url)
    assert rc == 1
    err = text.strip()
    assert err.count("\n") == 0, err  # one line
    assert "JOURNEY_PII_SALT is not set" in err and "export JOURNEY_PII_SALT=" in err
    _no_leak(text, "ingest without salt")


def test_salt_rules(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("JOURNEY_PII_SALT", raising=False)
    monkeypatch.delenv("JOURNEY_DATABASE_URL", raising=False)
    embedded = Settings(home=tmp_path, _env_file=None)
    assert embedded.uses_dev_salt and embedded.pii_salt_value() == DEV_PII_SALT
    pg = Settings(home=tmp_path, database_url="postgresql+psycopg://u@h/db", _env_file=None)
    with pytest.raises(MissingSecret, match="JOURNEY_PII_SALT is not set"):
        pg.pii_salt_value()
    with pytest.raises(MissingSecret):  # an empty salt is no salt
        Settings(home=tmp_path, database_url="postgresql+psycopg://u@h/db", pii_salt="", _env_file=None).pii_salt_value()
    assert Settings(home=tmp_path, database_url="postgresql+psycopg://u@h/db", pii_salt="k",
                    _env_file=None).pii_salt_value() == "k"


def test_serve_on_postgresql_without_salt_fails_at_start_up(pw_url: str, run):
    rc, text = run(["serve", "--port", "1"], pw_url, JOURNEY_API_TOKEN="t" * 32)
    assert rc == 1
    assert text.strip().count("\n") == 0 and "JOURNEY_PII_SALT is not set" in text
