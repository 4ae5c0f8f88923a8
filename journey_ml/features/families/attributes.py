"""Attributes: the entity's own columns of a wide export (``accounts.attributes`` /
``contacts.attributes``, latest export), as discovered by `builder.discover_attributes`:
numeric keys as numbers, the others categorical (their most frequent values). Named
``attr_<key>`` (sanitised; a clash with another feature gets ``_2``, ``_3`` ...)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journey_ml.features.families._base import DeclareContext, Parts, Specs
from journey_ml.features.spec import sanitize
from journey_ml.features.values import as_number, attr_text, is_missing

GROUP = "attribute"


def declare(ctx: DeclareContext) -> Specs:
    out = Specs(GROUP)
    taken = set(ctx.taken)
    for key in sorted(ctx.attributes, key=lambda k: (sanitize(k), k)):
        base = f"attr_{sanitize(key)}"
        name, i = base, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        values = ctx.attributes[key]
        if values is None:
            out.add(name, f"{key} (attribute)", point_in_time=False, source=key)
        else:
            out.add(name, f"{key} (attribute)", "categorical", categories=tuple(values),
                    point_in_time=False, source=key)
    return out


def compute(parts: Parts) -> dict[str, np.ndarray]:
    specs = parts.specs(GROUP)
    if not specs:
        return {}
    ids, recs = parts.fetched["attrs"]
    cols = sorted({s.source for s in specs})
    if recs:
        frame = pd.DataFrame.from_records(recs, index=pd.Index(ids, dtype=object), columns=cols)
        frame = frame[~frame.index.duplicated()].reindex(parts.pop)
    else:  # no entity has attributes (e.g. a posted body without them): every value missing
        frame = pd.DataFrame(None, index=parts.pop, columns=cols, dtype=object)
    out: dict[str, np.ndarray] = {}
    for s in specs:
        col = frame[s.source]
        if s.kind == "numeric":
            out[s.name] = np.array([as_number(v) for v in col], dtype="float64")
        else:
            out[s.name] = np.array([None if is_missing(v) else attr_text(v) for v in col], dtype=object)
    return out
