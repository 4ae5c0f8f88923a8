"""Value: the total value of interactions and the billed revenue in the last 90 days, the
days until the renewal date (the ``renewal_date`` property of the latest event before T
carrying one; negative once passed, NaN when none), the lifetime value (every event before
T) and the average value per event carrying one; and each numeric event property named in
``features.numeric_properties`` summed over each window, over the lifetime and averaged
over the events carrying it (non-numbers ignored; the average is NaN when none)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journey_ml.features.families._base import DAY_S, DeclareContext, Parts, Specs
from journey_ml.features.spec import sanitize

GROUP = "value"
VALUE_DAYS = 90  # whatever windows_days says


def declare(ctx: DeclareContext) -> Specs:
    out = Specs(GROUP)
    out.add(f"value_sum_{VALUE_DAYS}d", f"total value of interactions in the last {VALUE_DAYS} days")
    out.add(f"revenue_{VALUE_DAYS}d", f"billed revenue in the last {VALUE_DAYS} days")
    out.add("days_to_renewal", "days until the renewal date")
    out.add("value_lifetime", "total value of interactions before T (lifetime)")
    out.add("value_avg", "average value per interaction carrying one (lifetime)")
    f = ctx.config.features
    for k in dict.fromkeys(f.numeric_properties):
        for w in dict.fromkeys(f.windows_days):
            out.add(f"prop_{sanitize(k)}_{w}d", f"{k} summed over the last {w} days")
        out.add(f"prop_{sanitize(k)}_lifetime", f"{k} summed over the lifetime")
        out.add(f"prop_{sanitize(k)}_avg", f"average {k} per event carrying it (lifetime)")
    return out


def _mean(total: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _renewal_seconds(renew: pd.DataFrame, pop: pd.Index) -> np.ndarray:
    if not len(renew):
        return np.full(len(pop), np.nan)
    dates = pd.to_datetime(renew["renewal_date"].astype(str), utc=True, format="ISO8601", errors="coerce")
    secs = (dates - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return pd.Series(secs.to_numpy(dtype="float64"), index=renew["entity_id"].astype(str)).reindex(pop) \
        .to_numpy(dtype="float64")


def compute(parts: Parts) -> dict[str, np.ndarray]:
    total = parts.lifetime("value_all")
    out = {f"value_sum_{VALUE_DAYS}d": parts.count(f"value_sum_{VALUE_DAYS}d"),
           f"revenue_{VALUE_DAYS}d": parts.count(f"revenue_{VALUE_DAYS}d"),
           "days_to_renewal": (_renewal_seconds(parts.fetched["renew"], parts.pop) - parts.as_of_s) / DAY_S,
           "value_lifetime": total, "value_avg": _mean(total, parts.lifetime("value_n"))}
    p = parts.plan
    for i, k in enumerate(p.properties):
        for w in p.windows:
            out[f"prop_{sanitize(k)}_{w}d"] = parts.count(f"_prop_{i}_{w}")
        lt = parts.lifetime(f"prop_{i}_all")
        out[f"prop_{sanitize(k)}_lifetime"] = lt
        out[f"prop_{sanitize(k)}_avg"] = _mean(lt, parts.lifetime(f"prop_{i}_n"))
    return out
