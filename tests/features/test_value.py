"""Value features by hand: lifetime and average value, and numeric event properties named
in config summed over the windows and the lifetime (text numbers read, non-numbers ignored)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from journey_ml.config import parse_config
from journey_ml.features import build_features
from tests.features.test_features import ingest, write

T = datetime(2026, 3, 1, tzinfo=UTC)
CONFIG = {
    "taxonomy": {"visit": {"channel": "web", "stage": "awareness"},
                 "purchase": {"channel": "sales", "stage": "purchase"}},
    "outcomes": {"purchase": ["purchase"]},
    "sources": [
        {"name": "orders", "kind": "events", "path": "orders.csv",
         "columns": {"event_id": "id", "occurred_at": "day", "contact_id": "customer", "event_type": "event",
                     "value": "amount"}},
        {"name": "app", "kind": "events", "path": "app.jsonl",
         "columns": {"event_id": "id", "occurred_at": "day", "contact_id": "customer", "event_type": "event",
                     "value": "amount"}},
    ],
    "tasks": {"rebuy": {"entity": "contact", "outcome": "purchase", "horizon_days": 30, "population": "all"}},
    "features": {"windows_days": [30, 90], "numeric_properties": ["items"], "attributes": "none"},
}
# the window span is 90 days (T - 90 d = 2025-12-01): o1 is in the older part of the history
ORDERS = """id,day,customer,event,amount,items
o1,2025-10-01,c1,purchase,100,2
o2,2026-01-15,c1,purchase,50,1
o3,2026-02-20,c1,purchase,30, 3
v1,2026-02-25,c1,visit,,lots
o4,2026-03-01,c1,purchase,999,9
v2,2026-02-10,c2,visit,,
"""
APP = '{"id": "j1", "day": "2026-02-01", "customer": "c3", "event": "purchase", "amount": 10, "items": 4}\n' \
      '{"id": "j2", "day": "2025-06-01", "customer": "c3", "event": "purchase", "amount": 5, "items": 0.5}\n'


def test_lifetime_average_and_property_aggregates_by_hand(engine, tmp_path: Path):
    cfg = parse_config(CONFIG, "test-value")
    write(tmp_path / "orders.csv", ORDERS)
    write(tmp_path / "app.jsonl", APP)
    ingest(engine, cfg, tmp_path)
    f = build_features(engine, cfg, "rebuy", T).frame
    c1, c2, c3 = f.loc["c1"], f.loc["c2"], f.loc["c3"]
    # c1: o1 + o2 + o3 (o4 is at T: the label's); v1 has no value
    assert (c1["value_lifetime"], c1["value_avg"], c1["value_sum_90d"]) == (180.0, 60.0, 80.0)
    # items: 3 (o3) in 30 d, + 1 (o2) in 90 d, + 2 (o1) lifetime; "lots" is not a number
    assert (c1["prop_items_30d"], c1["prop_items_90d"], c1["prop_items_lifetime"], c1["prop_items_avg"]) == \
        (3.0, 4.0, 6.0, 2.0)
    # c2: one visit without value or items
    assert c2["value_lifetime"] == 0 and np.isnan(c2["value_avg"])
    assert (c2["prop_items_30d"], c2["prop_items_lifetime"]) == (0.0, 0.0) and np.isnan(c2["prop_items_avg"])
    # c3: JSON numbers; j2 is in the older part
    assert (c3["value_lifetime"], c3["value_avg"]) == (15.0, 7.5)
    assert (c3["prop_items_30d"], c3["prop_items_90d"], c3["prop_items_lifetime"], c3["prop_items_avg"]) == \
        (4.0, 4.0, 4.5, 2.25)
    labels = {s.name: s.label for s in build_features(engine, cfg, "rebuy", T).feature_set.features}
    assert labels["prop_items_30d"] == "items summed over the last 30 days"
