"""Populations as declarations: prospects, customers, active, all, a filter on attributes
or segments, empty populations that explain themselves, and `config check` warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from journey_ml.config import ConfigError, parse_config
from journey_ml.features import (
    build_features,
    event_types_in_data,
    labels,
    population,
    population_steps,
)
from journey_ml.jobs import empty_population
from tests.features.test_features import ingest, write

T = datetime(2026, 3, 1, tzinfo=UTC)

CONFIG = {
    "taxonomy": {"visit": {"channel": "web", "stage": "awareness"},
                 "purchase": {"channel": "sales", "stage": "purchase"}},
    "outcomes": {"repurchase": ["purchase"]},
    "sources": [
        {"name": "customers", "kind": "contacts", "path": "contacts.csv",
         "columns": {"contact_id": "id"}},
        {"name": "orders", "kind": "events", "path": "orders.csv",
         "columns": {"event_id": "id", "occurred_at": "day", "contact_id": "customer", "event_type": "event",
                     "value": "amount"}},
    ],
    "segments": {"tier": {"kind": "column", "column": "attributes.tier"}},
    "tasks": {
        "rebuy": {"entity": "contact", "outcome": "repurchase", "horizon_days": 30, "population": "active",
                  "lookback_days": 180},
        "first_buy": {"entity": "contact", "outcome": "repurchase", "horizon_days": 30,
                      "population": "prospects", "customer_events": ["purchase"], "lookback_days": 180},
        "everyone": {"entity": "contact", "outcome": "repurchase", "horizon_days": 30, "population": "all"},
        "gold": {"entity": "contact", "outcome": "repurchase", "horizon_days": 30, "population": "active",
                 "lookback_days": 180, "population_filter": {"attributes": {"tier": ["gold"]}}},
        "gold_segment": {"entity": "contact", "outcome": "repurchase", "horizon_days": 30, "population": "active",
                         "lookback_days": 180, "population_filter": {"segments": {"tier": ["gold"]}}},
    },
    "features": {"windows_days": [30, 90], "key_events": ["purchase"]},
}
CONTACTS = "id,tier\nr1,gold\nr2,silver\nr3,gold\nr4,gold\nq1,\n"
# r1: three purchases before T and a repurchase at T + 4 d; r2: one purchase, none after;
# r3: bought long ago (outside the lookback); r4: in the contacts table, no event at all;
# q1: visits only, buys inside the horizon (a first purchase)
ORDERS = """id,day,customer,event,amount
o1,2025-12-01,r1,purchase,20
o2,2026-01-05,r1,purchase,30
o3,2026-02-10,r1,purchase,25
o4,2026-03-05,r1,purchase,40
o5,2026-01-20,r2,purchase,15
o6,2025-01-10,r3,purchase,50
v1,2026-02-20,q1,visit,
o7,2026-03-20,q1,purchase,60
"""


@pytest.fixture
def shop(engine, tmp_path: Path):
    cfg = parse_config(CONFIG, "test-population")
    write(tmp_path / "contacts.csv", CONTACTS)
    write(tmp_path / "orders.csv", ORDERS)
    ingest(engine, cfg, tmp_path)
    return engine, cfg


def test_active_population_keeps_repeat_buyers_with_a_repurchase_label(shop):
    engine, cfg = shop
    ff = build_features(engine, cfg, "rebuy", T)
    # every entity with an event in the 180-day lookback, whatever it bought before
    assert list(ff.frame.index) == ["q1", "r1", "r2"] == list(population(engine, cfg, "rebuy", T))
    assert ff.frame.loc["r1", "purchase_90d"] == 3 and ff.frame.loc["r2", "purchase_90d"] == 1
    # the outcome is any purchase in [T, T + 30 d), a repeat one included
    assert labels(engine, cfg, "rebuy", T, ff.frame.index).to_dict() == {"q1": 1, "r1": 1, "r2": 0}
    # the prospects rule drops the repeat buyers: only q1, who had not bought yet
    assert list(population(engine, cfg, "first_buy", T)) == ["q1"]
    # after r1's repurchase it is still in the active population (repeat outcomes allowed)
    assert "r1" in population(engine, cfg, "rebuy", T + timedelta(days=10))


def test_all_population_includes_entities_without_events(shop):
    engine, cfg = shop
    ff = build_features(engine, cfg, "everyone", T)
    assert list(ff.frame.index) == ["q1", "r1", "r2", "r3", "r4"] == list(population(engine, cfg, "everyone", T))
    assert ff.frame.loc["r4", "events_90d"] == 0 and pd.isna(ff.frame.loc["r4", "days_since_last_event"])


def test_population_filter_on_attributes_and_segments(shop):
    engine, cfg = shop
    assert list(build_features(engine, cfg, "gold", T).frame.index) == ["r1"]
    assert list(population(engine, cfg, "gold", T)) == ["r1"]
    assert list(build_features(engine, cfg, "gold_segment", T).frame.index) == ["r1"]
    assert list(population(engine, cfg, "gold_segment", T)) == ["r1"]
    steps = population_steps(engine, cfg, "gold_segment", T)
    assert [(s.rule, s.entities) for s in steps] == [
        ("entities with an event before T", 4), ("with an event in the 180-day lookback", 3),
        ("and segment tier in ['gold']", 1)]


def test_an_empty_population_explains_itself_step_by_step(shop):
    engine, cfg = shop
    later = datetime(2026, 3, 10, tzinfo=UTC)  # r1 bought at Mar 5: everyone active has bought
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["tasks"]["first_buy"]["lookback_days"] = 10
    cfg = parse_config(data, "test-population-short")
    assert len(population(engine, cfg, "first_buy", later)) == 0
    steps = [(s.rule, s.entities) for s in population_steps(engine, cfg, "first_buy", later)]
    assert steps == [("entities with an event before T", 4), ("with an event in the 10-day lookback", 1),
                     ("and no customer event (purchase) before T", 0),
                     ("and no 'repurchase' outcome row before T", 0)]
    why = empty_population(engine, cfg, "first_buy", later, datetime(2026, 3, 20, tzinfo=UTC))
    assert why.startswith("task 'first_buy': no entity is in the 'prospects' population as of 2026-03-10")
    assert "rule prospects: an event in the 10-day lookback, no customer event (purchase)" in why
    assert ("entities with an event before T: 4 -> with an event in the 10-day lookback: 1 -> "
            "and no customer event (purchase) before T: 0") in why


def test_config_rules_for_populations():
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["tasks"]["first_buy"]["customer_events"] = []
    with pytest.raises(ConfigError, match="first_buy.*customer_events must name.*population 'prospects'"):
        parse_config(data, "x")
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["tasks"]["gold"]["population_filter"] = {"segments": {"size": ["smb"]}}
    with pytest.raises(ConfigError, match=r"population_filter.segments: 'size' is not in segments \(tier\)"):
        parse_config(data, "x")
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["tasks"]["rebuy"]["population"] = "anyone"
    with pytest.raises(ConfigError, match="tasks.rebuy.population"):
        parse_config(data, "x")


def test_unknown_event_types_are_warned_about(shop):
    engine, _ = shop
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["tasks"]["first_buy"]["customer_events"] = ["purchase", "never_happens"]
    data["outcomes"]["repurchase"] = ["purchase", "order_placed"]
    data["taxonomy"].pop("visit")
    cfg = parse_config(data, "x")
    seen = event_types_in_data(engine)
    assert seen == {"purchase", "visit"}
    warnings = cfg.unknown_event_types(seen)
    assert "tasks.first_buy: customer_events names event type 'never_happens', found in neither the " \
           "taxonomy nor the data: it matches nothing" in warnings
    assert sum("outcomes.repurchase names event type 'order_placed'" in w for w in warnings) == 5  # every task
    assert not any("'visit'" in w for w in warnings)  # in the data, not in the taxonomy: fine


def test_config_check_prints_the_warnings(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["tasks"] = {"rebuy": {**data["tasks"]["rebuy"], "population": "prospects",
                               "customer_events": ["never_happens"]}}
    data.pop("segments")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    r = subprocess.run([sys.executable, "-m", "journey_ml", "config", "check", "--config", str(path)],
                       capture_output=True, text=True, env={**os.environ,
                                                            "JOURNEY_HOME": str(tmp_path / "h")}, timeout=600)
    assert r.returncode == 0, r.stderr
    text = " ".join((r.stdout + r.stderr).split())
    assert "tasks.rebuy: customer_events names event type 'never_happens'" in text


def test_features_build_explains_an_empty_population_on_the_command_line(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["data_dir"] = str(tmp_path / "data")
    data["tasks"] = {"first_buy": {**data["tasks"]["first_buy"], "lookback_days": 10}}
    data.pop("segments")
    write(tmp_path / "data" / "contacts.csv", CONTACTS)
    write(tmp_path / "data" / "orders.csv", ORDERS)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path / "h"), "JOURNEY_PROGRESS": ""}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "journey_ml", *args, "--config", str(path)],
                              capture_output=True, text=True, env=env, timeout=600)

    for args in (("db", "upgrade"), ("ingest",)):
        r = cli(*args)
        assert r.returncode == 0, r.stderr
    r = cli("features", "build", "--as-of", "2026-03-10")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    line = " ".join(r.stderr.split())
    assert "task 'first_buy': no entity is in the 'prospects' population as of 2026-03-10" in line
    assert ("entities with an event before T: 4 -> with an event in the 10-day lookback: 1 -> "
            "and no customer event (purchase) before T: 0") in line
