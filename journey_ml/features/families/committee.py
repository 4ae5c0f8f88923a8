"""The buying committee (account tasks only): known and engaged contacts, each key role's
engagement in the last 90 days and recency, and the decision roles not engaged.

``contacts_known``: the account's contacts not opted out and created before T (or
undated); ``contacts_engaged_90d``: distinct contacts with events in the last 90 days;
``key_roles_missing``: decision roles (`DECISION_ROLES` among ``features.key_roles``) with
no engagement in the last 90 days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journey_ml.features.families._base import DeclareContext, Parts, Specs
from journey_ml.features.families.value import VALUE_DAYS
from journey_ml.features.spec import sanitize, words

GROUP = "committee"
# roles whose absence from the last 90 days counts in `key_roles_missing`
DECISION_ROLES: tuple[str, ...] = ("economic_buyer", "technical_evaluator", "procurement")


def declare(ctx: DeclareContext) -> Specs:
    out = Specs(GROUP)
    if ctx.task.entity != "account":
        return out
    out.add("contacts_known", "known contacts at the account")
    out.add(f"contacts_engaged_{VALUE_DAYS}d", f"contacts engaged in the last {VALUE_DAYS} days")
    for r in ctx.config.features.key_roles:
        out.add(f"role_{sanitize(r)}_engaged_{VALUE_DAYS}d", f"{words(r)} engaged in the last {VALUE_DAYS} days")
        out.add(f"days_since_role_{sanitize(r)}", f"days since the {words(r)} last engaged")
    out.add("key_roles_missing", "decision roles not engaged in the last 90 days")
    return out


def _lookup(index: pd.Index, values: np.ndarray, pop: pd.Index) -> np.ndarray:
    """``values`` (aligned with ``index``, unique) for the population, 0 when absent or NaN
    (what ``Series(values, index).reindex(pop).fillna(0)`` gives, without the Series)."""
    at = index.get_indexer(pop)
    if not len(values):
        return np.zeros(len(pop))
    got = np.where(at >= 0, values[np.maximum(at, 0)], 0.0)
    return np.where(np.isnan(got), 0.0, got)


def compute(parts: Parts) -> dict[str, np.ndarray]:
    if parts.plan.entity != "account":
        return {}
    pop, got = parts.pop, parts.fetched
    out: dict[str, np.ndarray] = {}
    for i, r in enumerate(parts.plan.roles):
        out[f"role_{sanitize(r)}_engaged_{VALUE_DAYS}d"] = (parts.count(f"_role_{i}") > 0) * 1.0
        out[f"days_since_role_{sanitize(r)}"] = parts.days_since(parts.time(f"role_last_{i}"))
    eng = got["engaged"]
    out[f"contacts_engaged_{VALUE_DAYS}d"] = _lookup(eng.index, eng.iloc[:, 0].to_numpy(dtype="float64"), pop)
    known = got["known"]
    out["contacts_known"] = _lookup(pd.Index(known["entity_id"].astype(str)),
                                    known["contacts_known"].to_numpy(dtype="float64"), pop)
    missing = np.zeros(len(pop))
    for r in parts.plan.roles:
        if r in DECISION_ROLES:
            missing += out[f"role_{sanitize(r)}_engaged_{VALUE_DAYS}d"] == 0
    out["key_roles_missing"] = missing
    return out
