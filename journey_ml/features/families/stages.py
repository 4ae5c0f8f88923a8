"""Journey stages: the furthest stage reached (index in schemas.STAGES, -1 when none) and
the days spent in each stage (its last event - its first, NaN when never reached)."""

from __future__ import annotations

import numpy as np

from journey_ml.features.families._base import DAY_S, DeclareContext, Parts, Specs
from journey_ml.schemas import STAGES

GROUP = "stage"


def declare(ctx: DeclareContext) -> Specs:
    out = Specs(GROUP)
    out.add("furthest_stage", "furthest journey stage reached")
    for s in STAGES:
        out.add(f"stage_{s}_days", f"days spent in the {s} stage")
    return out


def compute(parts: Parts) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    furthest = np.full(len(parts.pop), -1.0)
    for i, s in enumerate(STAGES):
        first = parts.time(f"first:{s}")
        furthest = np.where(np.isnan(first), furthest, float(i))
        out[f"stage_{s}_days"] = (parts.time(f"last:{s}") - first) / DAY_S
    out["furthest_stage"] = furthest
    return out
