"""Reason texts for missing values never show 'nan'."""

from journey_ml.scoring.reasons import reason_text


def test_missing_values_read_as_never_or_none():
    t = {"*": "{label}: {value}"}
    assert reason_text("days_since_email_click", float("nan"), -0.68, t, "days since the last email click") == \
        "days since the last email click: never (-0.68)"
    assert reason_text("attr_plan", None, 0.1, t, "plan") == "plan: none (+0.10)"
    assert reason_text("days_since_demo_request", 14.5, 0.71, t, "days since the last demo request") == \
        "days since the last demo request: 14 (+0.71)"
