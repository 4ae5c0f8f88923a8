"""Activity counts: events, active days, and events per channel, journey stage and key
event over each window ``[T - w days, T)`` of ``features.windows_days``.

Computed from the recent aggregate (`_queries.window_query`): counts per (entity,
event_type, channel, stage) pivoted per entity; active days are UTC calendar days (day bit
masks). 0, not NaN, for members without events in a window.
"""

from __future__ import annotations

import numpy as np

from journey_ml.features.families._base import DeclareContext, Parts, Specs
from journey_ml.features.spec import sanitize, words
from journey_ml.schemas import STAGES

GROUP = "activity"


def _names(windows, chans, keys) -> list[tuple[int, str, str]]:
    out = []
    for w in windows:
        out.append((w, f"events_{w}d", f"events in the last {w} days"))
        out.append((w, f"active_days_{w}d", f"active days in the last {w} days"))
        out += [(w, f"ch_{sanitize(c)}_{w}d", f"{words(c)} interactions in the last {w} days") for c in chans]
        out += [(w, f"stage_{s}_{w}d", f"{s} stage events in the last {w} days") for s in STAGES]
        out += [(w, f"{sanitize(k)}_{w}d", f"{words(k)} events in the last {w} days") for k in keys]
    return out


def declare(ctx: DeclareContext) -> Specs:
    f = ctx.config.features
    out = Specs(GROUP)
    for _, name, label in _names(f.windows_days, ctx.channels, f.key_events):
        out.add(name, label)
    return out


def compute(parts: Parts) -> dict[str, np.ndarray]:
    p = parts.plan
    return {name: parts.count(name) for _, name, _ in _names(p.windows, p.channels, p.key_events)}
