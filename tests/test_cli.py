"""The console script: real subprocesses, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "JOURNEY_PROGRESS": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "journey_ml", *args], capture_output=True, text=True,
                          env=e, cwd=cwd or ROOT, timeout=120)


def test_bad_config_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("taxonomy: {x: {channel: web, stage: nowhere}}\nsurprise: 1\n")
    r = cli("config", "check", "--config", str(bad))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert f"{bad}: surprise: unknown key" in r.stderr
    assert f"{bad}: taxonomy.x.stage" in r.stderr


def test_ingest_and_forget_through_the_cli(tmp_path):
    data = tmp_path / "data"
    (data / "web").mkdir(parents=True)
    (data / "web" / "a.csv").write_text("id,ts,who,event\n1,2026-01-01T00:00:00Z,c1,page_view\n"
                                        "2,2026-01-02T00:00:00Z,c2,page_view\n3,bad,c2,page_view\n")
    cfg = tmp_path / "j.yaml"
    cfg.write_text(
        f"data_dir: {data}\n"
        "taxonomy: {page_view: {channel: web, stage: awareness}}\n"
        "sources:\n  - {name: web, kind: events, path: web, "
        "columns: {event_id: id, occurred_at: ts, contact_id: who, event_type: event}}\n")
    env = {"JOURNEY_HOME": str(tmp_path / "home")}
    # commands never migrate implicitly: the schema is an explicit step
    r = cli("ingest", "--config", str(cfg), "--json", env=env)
    assert r.returncode == 1 and "has no schema yet: run `journey-ml db upgrade`" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("db", "upgrade", "--config", str(cfg), env=env)
    assert r.returncode == 0, r.stderr
    r = cli("ingest", "--config", str(cfg), "--json", env=env)
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["runs"][0]
    assert (run["rows_read"], run["rows_loaded"], run["rows_rejected"], run["balanced"]) == (3, 2, 1, True)

    r = cli("forget", "--config", str(cfg), "--contact", "c2", "--json", env=env)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["rows_deleted"]["events"] == 1 and res["rows_deleted"]["quarantine"] == 1

    r = cli("ingest", "--config", str(cfg), "--source", "nope", env=env)
    assert r.returncode == 1 and "unknown source 'nope' (configured: web)" in r.stderr


@pytest.mark.parametrize("args", [["forget"], ["forget", "--contact", "a", "--account", "b"]])
def test_forget_needs_exactly_one_subject(args, tmp_path):
    r = cli(*args, env={"JOURNEY_HOME": str(tmp_path)})
    assert r.returncode == 1 and "exactly one of --contact or --account" in r.stderr


def test_missing_source_folder_is_a_clear_error(tmp_path):
    cfg = tmp_path / "j.yaml"
    cfg.write_text(f"data_dir: {tmp_path}/nothing-here\nsources: [{{name: web, kind: events, path: web}}]\n")
    env = {"JOURNEY_HOME": str(tmp_path / "h")}
    assert cli("db", "upgrade", "--config", str(cfg), env=env).returncode == 0
    r = cli("ingest", "--config", str(cfg), env=env)
    assert r.returncode == 1
    assert "no source files found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--tsak", "x"], "No such option: --tsak"),
    (["bogus"], "No such command 'bogus'"),
])
def test_usage_errors_are_two_lines_and_exit_2(args, message, tmp_path):
    r = cli(*args, env={"JOURNEY_HOME": str(tmp_path)})
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 4  # usage, hint, blank, error


def test_quarantine_list_shows_rejects_with_line_and_reason(tmp_path):
    """Issue #9 case 23: the demo printed a sqlite3 command even on PostgreSQL; the CLI lists
    rejects on any backend, filtered by source and reason."""
    data = tmp_path / "data"
    (data / "web").mkdir(parents=True)
    (data / "web" / "a.csv").write_text("id,ts,who,event\n1,2026-01-01T00:00:00Z,c1,page_view\n"
                                        "2,31/02/2025,c2,page_view\n3,2026-01-03T00:00:00Z,,page_view\n")
    cfg = tmp_path / "j.yaml"
    cfg.write_text(
        f"data_dir: {data}\n"
        "taxonomy: {page_view: {channel: web, stage: awareness}}\n"
        "sources:\n  - {name: web, kind: events, path: web, "
        "columns: {event_id: id, occurred_at: ts, contact_id: who, event_type: event}}\n")
    env = {"JOURNEY_HOME": str(tmp_path / "home")}
    assert cli("db", "upgrade", "--config", str(cfg), env=env).returncode == 0
    assert cli("ingest", "--config", str(cfg), env=env).returncode == 0
    r = cli("quarantine", "list", "--config", str(cfg), "--json", env=env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["total"] == 2
    by_line = {row["line_number"]: row for row in got["rows"]}
    assert set(by_line) == {3, 4}
    assert "occurred_at (column 'ts') '31/02/2025'" in by_line[3]["reason"]
    assert by_line[3]["contact_id"] == "c2" and by_line[4]["contact_id"] is None
    r = cli("quarantine", "list", "--config", str(cfg), "--reason", "TIMESTAMP", "--json", env=env)
    assert [row["line_number"] for row in json.loads(r.stdout)["rows"]] == [3]
    r = cli("quarantine", "list", "--config", str(cfg), env=env, )
    assert r.returncode == 0 and "a.csv:3" in r.stdout
    r = cli("quarantine", "list", "--config", str(cfg), "--source", "nope", env=env)
    assert r.returncode == 1 and "unknown source 'nope'" in r.stderr
