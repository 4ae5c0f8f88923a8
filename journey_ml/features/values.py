"""How raw values of the entity exports (attribute JSON) are read: as text, as numbers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def attr_text(v: Any) -> str:
    """An attribute value as text (how categorical attributes and filters read it)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return str(v)


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def is_number(v: Any) -> bool:
    """A finite number, or text that parses as one (booleans are not numbers)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return bool(np.isfinite(v))
    if isinstance(v, str):
        try:
            return bool(np.isfinite(float(v)))
        except ValueError:
            return False
    return False


def as_number(v: Any) -> float:
    return float(v) if is_number(v) else np.nan
