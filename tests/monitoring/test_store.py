"""Monitor runs and decisions round-trip through the warehouse (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from journey_ml.monitoring import store

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _run(engine, as_of, drifted=True, version=3, status="ok"):
    return store.save_run(engine, run_key="k", task="conversion", segment="smb", as_of=as_of,
                          model_name="journey-conversion-smb", model_version=version, model_kind="model",
                          status=status, drift_detected=drifted, matured_as_of=as_of - timedelta(days=91),
                          contract={"ok": True}, drift={"share_drifted": float("nan"), "cols": ("a", "b")},
                          performance={"roc_auc": 0.7}, reports={"drift_html": "/r/d.html"}, error=None,
                          created_at=as_of)


def test_runs_decisions_roundtrip(engine):
    rid = _run(engine, T0)
    did = store.save_decision(engine, monitor_run_id=rid, task="conversion", segment="smb", as_of=T0,
                              kind="retrain", reasons=["16 of 40 columns drifted"], figures={"share": 0.4},
                              decided_at=T0)
    store.mark_executed(engine, did, executed=True, outcome="promoted v4", alias_move_id=12)
    [run] = store.runs(engine, "conversion", "smb")
    assert run.drift == {"share_drifted": None, "cols": ["a", "b"]}  # NaN stored as null
    assert run.as_of == T0 and run.matured_as_of == T0 - timedelta(days=91)
    [d] = run.decisions
    assert (d.kind, d.executed, d.outcome, d.alias_move_id, d.reasons) == (
        "retrain", True, "promoted v4", 12, ["16 of 40 columns drifted"])
    assert store.last_action_at(engine, "conversion", "smb", T0 + timedelta(days=1)) == T0
    assert store.last_action_at(engine, "conversion", "smb", T0 - timedelta(days=1)) is None
    assert store.last_action_at(engine, "conversion", "mid_market", T0 + timedelta(days=1)) is None


def test_drift_streak_counts_consecutive_runs_of_one_version(engine):
    for i, (drifted, version) in enumerate([(True, 2), (False, 3), (True, 3), (True, 3)]):
        _run(engine, T0 + timedelta(days=30 * i), drifted, version)
    later = T0 + timedelta(days=200)
    assert store.drift_streak(engine, "conversion", "smb", "journey-conversion-smb", 3, later) == 2
    assert store.drift_streak(engine, "conversion", "smb", "journey-conversion-smb", 4, later) == 0
    # only runs before the given time count
    assert store.drift_streak(engine, "conversion", "smb", "journey-conversion-smb", 3,
                              T0 + timedelta(days=61)) == 1
    assert store.drift_streak(engine, "conversion", "smb", "journey-conversion-smb", 3,
                              T0 + timedelta(days=31)) == 0
    _run(engine, T0 + timedelta(days=120), True, 3, status="error")  # a failed run is not evidence
    assert store.drift_streak(engine, "conversion", "smb", "journey-conversion-smb", 3, later) == 2


def test_alert_sinks_file_and_apprise_failures_do_not_raise(tmp_path):
    from journey_ml.monitoring.alerts import Alert, read_file_alerts, send

    alert = Alert(task="conversion", segment="smb", as_of=T0, decision="fallback",
                  reasons=["v3 on 400 matured labels: AUC 0.520 < floor 0.600"], figures={"roc_auc": 0.52, "n": 400},
                  model="journey-conversion-smb v3", report="/r/drift.html", outcome="production v3 -> v2 (fallback)")
    sink = tmp_path / "a" / "alerts.jsonl"
    got = send([f"file://{sink}", "notaservice://x", "json://127.0.0.1:9/hook?token=s3cret"], alert)
    assert [d.ok for d in got] == [True, False, False]
    assert "not a valid Apprise URL" in got[1].error
    assert "s3cret" not in got[2].url  # credentials never echoed
    [line] = read_file_alerts(sink)
    assert line["decision"] == "fallback" and line["segment"] == "smb" and line["report"] == "/r/drift.html"
    assert line["title"] == "journey-ml [critical] fallback: conversion/smb as of 2026-03-01"
    assert "AUC 0.520 < floor" in alert.body() and "roc_auc=0.520" in alert.body()
