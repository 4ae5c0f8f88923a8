"""The one boundary rule on date-only data: features see events before T, labels those in
[T, T + H); an event dated exactly T is counted once (in the label) and none is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from journey_ml.config import parse_config
from journey_ml.features import build_features, labels
from journey_ml.features.boundary import label_matured, label_window
from tests.features.test_features import ingest, write

D = datetime(2026, 3, 10, tzinfo=UTC)  # the purchase date of p1 (a date, no time)
H = 7

CONFIG = {
    "taxonomy": {"visit": {"channel": "web", "stage": "awareness"},
                 "purchase": {"channel": "sales", "stage": "purchase"}},
    "outcomes": {"purchase": ["purchase"]},
    "sources": [{"name": "events", "kind": "events", "path": "events.csv",
                 "columns": {"event_id": "id", "occurred_at": "day", "contact_id": "customer",
                             "event_type": "event"}}],
    "tasks": {"buy": {"entity": "contact", "outcome": "purchase", "horizon_days": H, "population": "prospects",
                      "customer_events": ["subscription"], "lookback_days": 365}},
    "features": {"windows_days": [7, 30], "key_events": ["purchase"], "attributes": "none"},
}
# p1 buys once on D; b1..b5 all buy on the same day T0 (the "purchases on the as-of date")
T0 = datetime(2026, 4, 1, tzinfo=UTC)
ROWS = [("v1", "2026-02-01", "p1", "visit"), ("p1", "2026-03-10", "p1", "purchase")]
ROWS += [(f"w{i}", "2026-03-01", f"b{i}", "visit") for i in range(1, 6)]
ROWS += [(f"q{i}", "2026-04-01", f"b{i}", "purchase") for i in range(1, 6)]
ROWS += [("v9", "2026-03-01", "n1", "visit")]  # never buys


def _load(engine, tmp_path: Path):
    cfg = parse_config(CONFIG, "test-boundary")
    write(tmp_path / "events.csv", "id,day,customer,event\n" + "".join(f"{','.join(r)}\n" for r in ROWS))
    ingest(engine, cfg, tmp_path)
    return cfg


def test_every_event_is_in_exactly_one_window_on_date_only_data(engine, tmp_path):
    cfg = _load(engine, tmp_path)
    # p1's purchase, for every daily as-of date around it: history or label, never both, never neither
    for k in range(-H + 1, H + 1):
        t = D + timedelta(days=k)
        f = build_features(engine, cfg, "buy", t).frame.loc["p1"]
        in_history = f["purchase_30d"] == 1
        in_label = labels(engine, cfg, "buy", t, pd.Index(["p1"])).iloc[0] == 1
        assert in_history != in_label, (t, in_history, in_label)
        assert in_label == (t <= D), t  # dated exactly T: the label's
    # the window closing exactly on the purchase date does not hold it: it is the next one's
    assert labels(engine, cfg, "buy", D - timedelta(days=H), pd.Index(["p1"])).tolist() == [0]


def test_purchases_on_the_as_of_date_are_labels_not_lost(engine, tmp_path):
    cfg = _load(engine, tmp_path)
    ff = build_features(engine, cfg, "buy", T0)
    buyers = [f"b{i}" for i in range(1, 6)]
    # they are in the population at T0 (their purchase is not history yet) ...
    assert set(buyers) <= set(ff.frame.index)
    assert ff.frame.loc[buyers, "purchase_7d"].sum() == 0
    # ... and all five are positive: no label flipped to 0
    y = labels(engine, cfg, "buy", T0, ff.frame.index)
    assert y[buyers].tolist() == [1] * 5 and y["n1"] == 0
    # a day later the same five purchases are history, counted once each
    later = build_features(engine, cfg, "buy", T0 + timedelta(days=1)).frame
    assert later.loc[buyers, "purchase_7d"].tolist() == [1.0] * 5
    assert labels(engine, cfg, "buy", T0 + timedelta(days=1), pd.Index(buyers)).sum() == 0


def test_matured_is_the_end_of_the_label_window():
    start, end = label_window(T0, H)
    assert (start, end) == (T0, T0 + timedelta(days=H))
    assert label_matured(T0, H, end) and not label_matured(T0, H, end - timedelta(seconds=1))


def test_features_build_says_when_labels_mature(engine, tmp_path):
    from rich.console import Console

    from journey_ml.cli.render import features_table
    from journey_ml.jobs import FeaturesJobResult
    from journey_ml.snapshots import build_and_store

    cfg = _load(engine, tmp_path)
    end = T0 + timedelta(days=3)
    snap = build_and_store(engine, cfg, "buy", T0, data_end=end)
    assert not snap.labelled and snap.labels_mature_at == T0 + timedelta(days=H)
    console = Console(width=200, record=True)
    console.print(features_table(FeaturesJobResult(T0, end, (snap,))))
    assert "not yet (horizon not closed: labels mature on 2026-04-08" in console.export_text()
    # once the data reaches the window's end the labels are attached
    assert build_and_store(engine, cfg, "buy", T0, data_end=T0 + timedelta(days=H)).labelled
