"""Alerts people can act on (#11.6): one per segment and condition until its state changes,
a severity, the decision and its figures, a link to the report, a recovery message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journey_ml.monitoring import alerts as alerting
from journey_ml.monitoring.alerts import plan, read_file_alerts, send
from journey_ml.monitoring.runner import ExecutedDecision, SegmentMonitorResult, _alerts
from journey_ml.monitoring.store import StoredDecision, StoredRun

T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("previous, current, send_, unchanged, recovered", [
    ({}, {"drift": "alert"}, ["drift"], [], []),  # new: sent
    ({"drift": "alert"}, {"drift": "alert"}, [], ["drift"], []),  # same state: not sent again
    ({"drift": "alert"}, {"drift": "retrain"}, ["drift"], [], []),  # escalated: sent
    ({"drift": "retrain"}, {}, [], [], ["drift"]),  # cleared: recovery
    ({"restore": "restore"}, {}, [], [], []),  # a one-off move does not "recover"
    ({"rollback": "rollback"}, {"rollback": "rollback"}, ["rollback"], [], []),  # every move is news
    ({"drift": "alert", "contract": "alert"}, {"contract": "alert", "performance": "fallback"},
     ["performance"], ["contract"], ["drift"]),
])
def test_plan(previous, current, send_, unchanged, recovered):
    p = plan(previous, current)
    assert (p.send, p.unchanged, p.recovered) == (send_, unchanged, recovered)


def _seg(as_of, decisions, version=3, page=None):
    return SegmentMonitorResult("conversion", "smb", as_of, "journey-conversion-smb", version, "model", 1, None, None,
                                None, {"drift_html": str(page)} if page else {}, decisions)


def _stored(as_of, seg, version=3):
    decs = [StoredDecision(i, 1, "conversion", "smb", as_of, d.kind, d.reasons, d.figures, d.executed, d.outcome,
                           None, as_of) for i, d in enumerate(seg.decisions)]
    return StoredRun(1, "k", "conversion", "smb", as_of, "journey-conversion-smb", version, "model", "ok", False, None,
                     None, None, None, None, None, as_of, decs)


def _d(kind, condition, reason, **figures):
    return ExecutedDecision(kind, [reason], {"condition": condition, **figures}, kind != "alert", "")


def test_drift_alerts_once_until_it_changes_then_recovers(tmp_path):
    page = tmp_path / "drift.html"
    page.write_text("<html></html>")
    sink = f"file://{tmp_path / 'alerts.jsonl'}"
    runs = [
        [_d("alert", "drift", "drift 40% of importance", weighted_share=0.4)],
        [_d("alert", "drift", "drift 41% of importance", weighted_share=0.41)],  # same state: nothing sent
        [_d("alert", "drift", "drift persisted", weighted_share=0.42), _d("retrain", "drift", "drift persisted")],
        [ExecutedDecision("ok", ["no drift: 3% of importance < 30%"], {"condition": "ok"}, False, "")],
        [ExecutedDecision("ok", ["no drift"], {"condition": "ok"}, False, "")],
    ]
    previous = None
    for i, decisions in enumerate(runs):
        seg = _seg(T0 + timedelta(days=7 * i), decisions, page=page)
        for a in _alerts(seg, previous):
            assert all(dl.ok for dl in send([sink], a))
        previous = _stored(seg.as_of, seg)
    sent = read_file_alerts(tmp_path / "alerts.jsonl")
    assert [(a["condition"], a["decision"], a["state"], a["as_of"][:10]) for a in sent] == [
        ("drift", "alert", "firing", "2026-05-01"),
        ("drift", "retrain", "firing", "2026-05-15"),
        ("drift", "recovered", "recovered", "2026-05-22"),
    ]
    first, escalated, recovered = sent
    assert first["severity"] == "warning" and first["figures"] == {"weighted_share": 0.4}
    assert first["report"] == page.resolve().as_uri()
    assert escalated["reasons"] == ["drift persisted"] and "[warning] retrain (drift)" in escalated["title"]
    assert recovered["severity"] == "info" and "drift cleared since the run of 2026-05-15" in recovered["reasons"][0]
    assert "no drift: 3% of importance < 30%" in recovered["reasons"]


def test_fallback_is_critical_and_supersedes_the_models_conditions(tmp_path):
    fb = _seg(T0, [_d("fallback", "performance", "AUC 0.52 < floor 0.60", roc_auc=0.52, labels=400),
                   _d("retrain", "performance", "AUC 0.52 < floor 0.60")])
    a, cleared = _alerts(fb, _stored(T0 - timedelta(days=7), _seg(T0, [_d("alert", "drift", "drift")])))
    assert (cleared.condition, cleared.state) == ("drift", "recovered")  # same version, drift gone
    assert (a.decision, a.severity, a.condition) == ("fallback", "critical", "performance")
    assert a.figures["roc_auc"] == 0.52 and "[critical] fallback (performance)" in a.title
    # next run: production is the rules version; the model's conditions get no "recovered"
    rules = _seg(T0 + timedelta(days=7), [_d("alert", "rules_mode", "in rules mode (production is v2)")], version=2)
    got = _alerts(rules, _stored(T0, fb))
    assert [(x.condition, x.state) for x in got] == [("rules_mode", "firing")]
    assert alerting.severity("restore") == "info"
