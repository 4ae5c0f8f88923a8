"""Recency: days since the last and the first event (tenure), and since the last of each
key event, over the whole history before T (NaN when never)."""

from __future__ import annotations

import numpy as np

from journey_ml.features.families._base import DeclareContext, Parts, Specs
from journey_ml.features.spec import sanitize, words

GROUP = "recency"


def declare(ctx: DeclareContext) -> Specs:
    out = Specs(GROUP)
    out.add("days_since_last_event", "days since the last interaction")
    out.add("days_since_first_event", "days since the first interaction (tenure)")
    for k in ctx.config.features.key_events:
        out.add(f"days_since_{sanitize(k)}", f"days since the last {words(k)}")
    return out


def compute(parts: Parts) -> dict[str, np.ndarray]:
    out = {"days_since_last_event": parts.days_since(parts.time("last_at")),
           "days_since_first_event": parts.days_since(parts.time("first"))}
    for i, k in enumerate(parts.plan.key_events):
        out[f"days_since_{sanitize(k)}"] = parts.days_since(parts.time(f"event_last_{i}"))
    return out
