"""Firmographics: the account's size, revenue, industry and country (a contact gets its
account's, plus its buying role), from the latest entity export (no history:
``point_in_time=False``). Categorical values outside the known ones become "other"."""

from __future__ import annotations

import numpy as np

from journey_ml.features.families._base import DeclareContext, Parts, Specs

GROUP = "firmographic"
# columns of the account: (feature name = column name, kind, label)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("employees", "numeric", "employees"),
    ("annual_revenue", "numeric", "annual revenue"),
    ("industry", "categorical", "industry"),
    ("country", "categorical", "country"),
)


def declare(ctx: DeclareContext) -> Specs:
    out = Specs(GROUP)
    for name, kind, label in COLUMNS:
        out.add(name, f"account {label}", kind,  # type: ignore[arg-type]
                categories=tuple(ctx.categories.get(name, ())) if kind == "categorical" else (),
                point_in_time=False)
    if ctx.task.entity == "contact":
        out.add("role", "buying role", "categorical", categories=tuple(ctx.categories.get("role", ())),
                point_in_time=False)
    return out


def compute(parts: Parts) -> dict[str, np.ndarray]:
    firm = parts.fetched["firm"].reindex(parts.pop)
    return {col: firm[col].to_numpy() for col in firm.columns}
