"""Trend: activity in the last 30 days against the 30 before, and the decline of product usage.

``trend_30d`` = (last - prev) / (prev + 1); ``usage_decline_30d`` = max(0, (prev - last) /
max(prev, 1)) over product-channel events.
"""

from __future__ import annotations

import numpy as np

from journey_ml.features.families._base import DeclareContext, Parts, Specs

GROUP = "trend"
TREND_DAYS = 30  # whatever windows_days says


def declare(ctx: DeclareContext) -> Specs:
    out = Specs(GROUP)
    out.add(f"trend_{TREND_DAYS}d", f"change in activity, last {TREND_DAYS} days vs the {TREND_DAYS} before")
    out.add(f"usage_decline_{TREND_DAYS}d",
            f"decline in product usage, last {TREND_DAYS} days vs the {TREND_DAYS} before")
    return out


def compute(parts: Parts) -> dict[str, np.ndarray]:
    lt, pt = parts.count("_last"), parts.count("_prev")
    pl, pp = parts.count("_product_last"), parts.count("_product_prev")
    return {f"trend_{TREND_DAYS}d": (lt - pt) / (pt + 1.0),
            f"usage_decline_{TREND_DAYS}d": np.maximum(0.0, (pp - pl) / np.maximum(pp, 1.0))}
