"""Personal data handling: keyed hashing and dropping, before anything is stored."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import pandas as pd

from journey_ml.config import PiiConfig


def keyed_hash(value: str, salt: str) -> str:
    """HMAC-SHA256 of a normalised (trimmed, lower-cased) value, as 64 hex characters.

    Keyed so that a leaked table cannot be reversed by hashing a list of known emails.
    """
    return hmac.new(salt.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()


def hash_series(values: pd.Series, salt: str) -> pd.Series:
    """Keyed hash of every non-null value (each distinct value is hashed once)."""
    present = values.dropna()
    if present.empty:
        return pd.Series([None] * len(values), index=values.index, dtype=object)
    uniques = present.astype(str).unique()
    table = {u: keyed_hash(u, salt) for u in uniques}
    keys = values.astype(object).where(values.notna(), None)
    return keys.map(lambda v: None if v is None else table[str(v)])


def subject_hash(kind: str, subject_id: str, salt: str) -> str:
    """The tombstone key of an erased contact or account (no personal data in clear)."""
    return keyed_hash(f"{kind}:{subject_id}", salt)


def pii_columns(configs: Iterable[PiiConfig]) -> tuple[set[str], set[str]]:
    """Union of the columns to hash and to drop over several PII configurations."""
    to_hash: set[str] = set()
    to_drop: set[str] = set()
    for c in configs:
        to_hash |= set(c.hash)
        to_drop |= set(c.drop)
    return to_hash - to_drop, to_drop


def apply_pii(frame: pd.DataFrame, to_hash: set[str], to_drop: set[str], salt: str) -> pd.DataFrame:
    """Return ``frame`` with configured columns dropped and hashed (a new frame)."""
    out = frame.drop(columns=[c for c in frame.columns if c in to_drop])
    for c in out.columns:
        if c in to_hash:
            out[c] = hash_series(out[c], salt)
    return out
