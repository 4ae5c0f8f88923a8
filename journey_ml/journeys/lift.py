"""Did the actions work? Lift of each next-best action against its random holdout.

Scoring keeps a seeded random holdout per action (``scores.action_holdout``): those
entities were scored and given the action, but the action was withheld. Once the horizon
has passed, the outcome rate of the treated is compared with the holdout's, per action,
band and segment: the difference with a Wald interval and a two-proportion z test. The
stopping rule: below ``min_n`` entities in either arm no lift is claimed (status
``collecting``), however large the difference looks.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from journey_ml.journeys.paths import two_proportion_test

LIFT_COLUMNS = ["action", "band", "segment", "treated_n", "treated_rate", "holdout_n", "holdout_rate",
                "difference", "ci_low", "ci_high", "p_value", "status"]


def lift_table(scores: pd.DataFrame, *, min_n: int = 100, confidence: float = 0.95) -> pd.DataFrame:
    """``scores``: one row per matured score with ``action``, ``band``, ``segment``,
    ``holdout`` (bool) and ``outcome`` (0/1: the outcome happened within the horizon).
    Returns one row per (action, band, segment) plus an ``(all)`` band/segment row per
    action: arm sizes and rates, difference (treated - holdout), its interval, p value and
    status: ``lift`` / ``harm`` (interval above / below 0), ``no difference``, or
    ``collecting`` (either arm below ``min_n``: nothing is claimed). Raises ValueError
    naming a missing column."""
    need = ["action", "band", "segment", "holdout", "outcome"]
    missing = [c for c in need if c not in scores.columns]
    if missing:
        raise ValueError(f"lift needs column(s) {', '.join(missing)} (have: {', '.join(scores.columns)})")
    if scores.empty:
        return pd.DataFrame(columns=LIFT_COLUMNS)
    s = scores[need].copy()
    s["holdout"] = s["holdout"].astype(bool)
    s["outcome"] = s["outcome"].astype(int)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    groups = [s.assign(band="(all)", segment="(all)"), s]
    rows = []
    for g in groups:
        for (action, band, segment), part in g.groupby(["action", "band", "segment"], sort=True):
            t, h = part[~part["holdout"]], part[part["holdout"]]
            nt, nh = len(t), len(h)
            xt, xh = int(t["outcome"].sum()), int(h["outcome"].sum())
            rt, rh = (xt / nt if nt else math.nan), (xh / nh if nh else math.nan)
            diff = rt - rh
            se = math.sqrt(rt * (1 - rt) / nt + rh * (1 - rh) / nh) if nt and nh else math.nan
            lo, hi = diff - z * se, diff + z * se
            _, p = two_proportion_test(xt, nt, xh, nh)
            if nt < min_n or nh < min_n:
                status = "collecting"
            elif lo > 0:
                status = "lift"
            elif hi < 0:
                status = "harm"
            else:
                status = "no difference"
            rows.append({"action": action, "band": band, "segment": segment, "treated_n": nt, "treated_rate": rt,
                         "holdout_n": nh, "holdout_rate": rh, "difference": diff, "ci_low": lo, "ci_high": hi,
                         "p_value": p, "status": status})
    out = pd.DataFrame(rows, columns=LIFT_COLUMNS)
    return out.drop_duplicates(["action", "band", "segment"]).reset_index(drop=True)


def needed_per_arm(base_rate: float, effect: float, confidence: float = 0.95, power: float = 0.8) -> int:
    """Entities per arm to detect an absolute ``effect`` on ``base_rate`` (two-sided)."""
    if effect == 0:
        raise ValueError("effect must be non-zero")
    za = NormalDist().inv_cdf(0.5 + confidence / 2)
    zb = NormalDist().inv_cdf(power)
    p1, p2 = base_rate, min(max(base_rate + effect, 0.0), 1.0)
    var = p1 * (1 - p1) + p2 * (1 - p2)
    return int(np.ceil((za + zb) ** 2 * var / effect ** 2))


__all__ = ["lift_table", "needed_per_arm", "LIFT_COLUMNS"]
