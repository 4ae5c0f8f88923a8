"""Configuration: the packaged default loads; every error names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from journey_ml.config import ConfigError, load_config, parse_config
from journey_ml.settings import Settings


def test_packaged_default_config_is_valid():
    cfg, base = load_config(None)
    assert base is None
    assert {s.name for s in cfg.sources} >= {"crm_accounts", "crm_contacts", "web", "billing"}
    assert cfg.outcomes["conversion"] == ["closed_won"]
    # every outcome event is in the taxonomy
    for events in cfg.outcomes.values():
        assert set(events) <= set(cfg.taxonomy)


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("sourcez: []\n", "cfg.yaml: sourcez: unknown key"),
    ("ingest: {max_future_skew_minutes: -5}\n", "cfg.yaml: ingest.max_future_skew_minutes: Input should be greater than or equal to 0"),
    ("taxonomy: {page_view: {channel: web, stage: awarenes}}\n", "cfg.yaml: taxonomy.page_view.stage: Value error, unknown stage 'awarenes'"),
    ("sources: [{name: web, kind: events, path: x, columns: {occured_at: ts}}]\n",
     "'occured_at' is not a field of the events contract"),
    ("sources: [{name: web, kind: clicks, path: x}]\n", "cfg.yaml: sources.0.kind: Input should be"),
    ("sources: [{name: a, kind: events, path: x}, {name: a, kind: events, path: y}]\n", "source names must be unique"),
    ("pii: {hash: [email], drop: [email]}\n", "columns both hashed and dropped: ['email']"),
    ("sources: [{name: web, kind: events, path: x, timezone: America/Newyork}]\n",
     "cfg.yaml: sources.0.timezone: Value error, unknown timezone 'America/Newyork'"),
    ("sources: [{name: web, kind: events, path: x, timestamp_format: unix}]\n",
     "cfg.yaml: sources.0.timestamp_format: Input should be 'iso', 'epoch_s' or 'epoch_ms'"),
    ("sources: [{name: web, kind: events, path: x, identical_rows: drop}]\n",
     "cfg.yaml: sources.0.identical_rows: Input should be 'merge' or 'keep'"),
    ("- just\n- a list\n", "cfg.yaml: the top level must be a mapping"),
    ("taxonomy: [unclosed\n", "cfg.yaml: not valid YAML"),
])
def test_bad_config_names_file_and_key(tmp_path: Path, yaml_text: str, message: str):
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert message in str(e.value)
    assert str(p) in str(e.value)


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_source_lists_known_ones():
    cfg = parse_config({"sources": [{"name": "web", "kind": "events", "path": "w"}]})
    with pytest.raises(ConfigError, match=r"unknown source 'crm' \(configured: web\)"):
        cfg.source("crm")


def test_settings_from_environment_keep_secrets_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path))
    monkeypatch.setenv("JOURNEY_PII_SALT", "s3cret-salt")
    monkeypatch.setenv("JOURNEY_DATABASE_URL", "postgresql+psycopg://u:hunter2@db/journey")
    s = Settings(_env_file=None)
    assert s.home == tmp_path
    assert s.warehouse_url.endswith("@db/journey")
    assert "hunter2" not in repr(s) and "s3cret" not in repr(s)
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_settings_default_to_embedded_stores(monkeypatch, tmp_path):
    monkeypatch.delenv("JOURNEY_DATABASE_URL", raising=False)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path))
    s = Settings(_env_file=None)
    assert s.warehouse_url == f"sqlite:///{tmp_path / 'warehouse.db'}"


def test_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv("JOURNEY_INGEST_BATCH_ROWS", "-3")
    with pytest.raises(Exception, match="ingest_batch_rows"):
        Settings(_env_file=None)


def test_monitoring_paths_are_absolute_for_a_relative_home():
    """The default home is relative (.journey); report links are file URIs, which need absolute paths."""
    cfg, _ = load_config(None)
    d = cfg.monitoring.resolve_dir(Path(".journey"))
    assert d.is_absolute() and d == (Path(".journey") / "reports").resolve()
    assert all(u.startswith("file:///") for u in cfg.monitoring.alert_urls(Path(".journey")) if u.startswith("file:"))


def test_column_names_in_the_config_are_normalised_like_the_exports():
    """Issue #9 case 1: a BOM or spaces around a name match the export's cleaned header."""
    cfg = parse_config({"pii": {"hash": [" Email"], "drop": ["\ufeffnotes "]},
                        "sources": [{"name": "web", "kind": "events", "path": "x",
                                     "columns": {"event_id": "\ufeffid ", "occurred_at": " ts"},
                                     "pii": {"hash": ["Phone "]}}]}, "cfg.yaml")
    src = cfg.source("web")
    assert (src.column_for("event_id"), src.column_for("occurred_at")) == ("id", "ts")
    assert (cfg.pii.hash, cfg.pii.drop, src.pii.hash) == (["Email"], ["notes"], ["Phone"])
