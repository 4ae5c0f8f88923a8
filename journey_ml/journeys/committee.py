"""Account journeys: the buying committee's contacts rolled up, which role did what, and when."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journey_ml.journeys.sessions import Journeys


def account_roles(events: pd.DataFrame, j: Journeys) -> pd.DataFrame:
    """One row per (account, role) of the journeys' accounts: contacts, events, first and last
    touch, days from the account's first event to the role's first touch, the stages the role
    touched (in order of first touch), and whether the account converted. ``events`` as read
    by `journey_ml.journeys.read.read_events` (columns entity_id, contact_id, role,
    occurred_at, stage); events before an account's first journey start or after its last
    journey end are left out; a contact without a role counts as ``unknown``."""
    need = ["entity_id", "contact_id", "role", "occurred_at", "stage"]
    missing = [c for c in need if c not in events.columns]
    if missing:
        raise ValueError(f"account roles need column(s) {', '.join(missing)}")
    span = j.table.groupby("entity_id").agg(start=("start", "min"), end=("end", "max"),
                                            converted=("converted", "any"))
    e = events[events["contact_id"].notna()].merge(span, left_on="entity_id", right_index=True)
    e = e[(e["occurred_at"] >= e["start"]) & (e["occurred_at"] <= e["end"])].copy()
    e["role"] = e["role"].fillna("unknown")
    e = e.sort_values(["entity_id", "occurred_at"], kind="stable")
    g = e.groupby(["entity_id", "role"], sort=True)
    out = g.agg(contacts=("contact_id", "nunique"), events=("occurred_at", "size"), first_touch=("occurred_at", "min"),
                last_touch=("occurred_at", "max"), start=("start", "first"), converted=("converted", "first"))
    out["stages"] = g["stage"].agg(lambda s: " > ".join(dict.fromkeys(s.dropna().astype(str))))
    out["days_to_first_touch"] = (out["first_touch"] - out["start"]).dt.total_seconds() / 86400
    return out.drop(columns="start").reset_index().rename(columns={"entity_id": "account_id"})


def role_summary(roles: pd.DataFrame, accounts: int, converted_accounts: int) -> pd.DataFrame:
    """Per role: accounts where it was engaged (and their share of ``accounts``), conversion
    rate of accounts with the role engaged against those without, median days from the
    account's first event to the role's first touch, and its most common stage sequence."""
    rows = []
    for role, g in roles.groupby("role", sort=True):
        n = g["account_id"].nunique()
        conv = int(g.groupby("account_id")["converted"].first().sum())
        rest_n, rest_c = accounts - n, converted_accounts - conv
        rows.append({"role": role, "accounts": n, "share": n / accounts if accounts else np.nan,
                     "conversion_with": conv / n if n else np.nan,
                     "conversion_without": rest_c / rest_n if rest_n > 0 else np.nan,
                     "median_days_to_first_touch": float(g["days_to_first_touch"].median()),
                     "typical_stages": g["stages"].mode().iat[0] if len(g) else ""})
    return pd.DataFrame(rows).sort_values("accounts", ascending=False, kind="stable").reset_index(drop=True)


__all__ = ["account_roles", "role_summary"]
