"""Seller-readable reasons: (feature, value, contribution) -> a sentence.

XGBoost scores are explained by their per-row TreeSHAP contributions (log-odds), rule
scores by the rules that fired (their points). Each feature is turned into text through
``config.scoring.reason_templates``: the exact feature name first, then the first pattern
with ``*`` (fnmatch, in configuration order) that matches. ``{value}`` is the feature's
value and ``{label}`` its label from the feature set; the signed contribution is appended:
``visited the pricing page 4 times in the last 30 days (+0.21)``. A template that does
not format (a text value under ``{value:.0f}``, an unknown placeholder...) falls back to
``{label}: {value}``; reasons never make scoring fail.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

FALLBACK_TEMPLATE = "{label}: {value}"


def template_for(feature: str, templates: Mapping[str, str]) -> str | None:
    """The template of ``feature``: exact name, else the first matching ``*`` pattern."""
    if feature in templates:
        return templates[feature]
    for pattern, text in templates.items():
        if "*" in pattern and fnmatchcase(feature, pattern):
            return text
    return None


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        with contextlib.suppress(ValueError, AttributeError):
            value = value.item()
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def reason_text(feature: str, value: Any, contribution: float, templates: Mapping[str, str],
                label: str | None = None) -> str:
    """The sentence of one reason, with the signed contribution appended."""
    value = _plain(value)
    label = label or feature.replace("_", " ")
    if _missing(value):
        # a missing value means "never happened" for recency, "none" otherwise; no template
        # is written for it, and "nan" must never reach a seller
        word = "never" if feature.startswith(("days_since", "stage_")) else "none"
        return f"{label}: {word} ({contribution:+.2f})"
    if isinstance(value, float) and not value.is_integer() and abs(value) >= 1:
        value = round(value)
    tmpl = template_for(feature, templates) or FALLBACK_TEMPLATE
    try:
        text = tmpl.format(value=value, label=label, feature=feature)
    except Exception:  # noqa: BLE001 - a bad template must never stop scoring
        shown = "unknown" if _missing(value) else value
        text = FALLBACK_TEMPLATE.format(value=shown, label=label)
    return f"{text} ({contribution:+.2f})"


def top_contributions(pairs: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    """The ``k`` largest |contribution|, then ordered positive (towards the outcome) first."""
    ranked = sorted(pairs, key=lambda fc: -abs(fc[1]))[:k]
    return sorted(ranked, key=lambda fc: (fc[1] <= 0, -abs(fc[1])))


def build_reasons(pairs: list[tuple[str, float]], row: Mapping[str, Any], templates: Mapping[str, str],
                  labels: Mapping[str, str], k: int) -> list[dict[str, Any]]:
    """JSON-ready reasons of one row: [{feature, value, contribution, text}, ...]."""
    out = []
    for feature, contribution in top_contributions(pairs, k):
        value = _plain(row.get(feature))
        c = float(contribution)
        out.append({
            "feature": feature,
            "value": None if _missing(value) else value,
            "contribution": round(c, 6),
            "text": reason_text(feature, value, c, templates, labels.get(feature)),
        })
    return out


__all__ = ["template_for", "reason_text", "top_contributions", "build_reasons", "FALLBACK_TEMPLATE"]
