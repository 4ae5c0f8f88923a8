"""Personal data handling: keyed hashing and dropping, before anything is stored.

How values are compared before they are hashed is decided here, once:

* personal values (emails and every configured PII column) are **case-folded**: trimmed and
  lower-cased, so ``Jane.Doe@Example.com`` and ``jane.doe@example.com`` hash alike;
* identifiers (contact and account ids, the subjects of erasure tombstones) are **exact**:
  trimmed only, because ids such as Salesforce's ``0035e00000ABCDE`` are case-sensitive.

Ingestion, erasure, the tombstone check and the scoring API all go through
:func:`normalise`, :func:`keyed_hash` and :class:`Tombstones`; nothing else lower-cases.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from journey_ml.config import PiiConfig


class Match(StrEnum):
    """How a kind of value is compared (and so hashed)."""

    casefold = "casefold"  # personal values: trimmed, lower-cased
    exact = "exact"  # identifiers: trimmed only


def normalise(value: str, match: Match) -> str:
    """``value`` as it is compared under ``match`` (the one definition of both rules)."""
    value = value.strip()
    return value.lower() if match is Match.casefold else value


def _hmac(text: str, salt: str) -> str:
    return hmac.new(salt.encode(), text.encode(), hashlib.sha256).hexdigest()


def keyed_hash(value: str, salt: str) -> str:
    """HMAC-SHA256 of a personal value, case-folded (see module docstring), 64 hex characters.

    Keyed so that a leaked table cannot be reversed by hashing a list of known emails.
    """
    return _hmac(normalise(value, Match.casefold), salt)


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
    """The tombstone key of an erased contact or account: the id compared exactly."""
    return _hmac(f"{kind}:{normalise(subject_id, Match.exact)}", salt)


def legacy_subject_hash(kind: str, subject_id: str, salt: str) -> str:
    """The tombstone key written before ids were compared exactly (lower-cased).

    Tombstones of that form (``hash_form = 'casefold'``, from migration 0005) stay in force:
    the id they were written for is gone, so they keep matching every letter case of it.
    """
    return _hmac(normalise(f"{kind}:{subject_id}", Match.casefold), salt)


TOMBSTONE_HASHES = {Match.exact: subject_hash, Match.casefold: legacy_subject_hash}


@dataclass(frozen=True)
class Tombstones:
    """The erased subjects' keys, by hash form; answers "is this id erased?" without the ids."""

    salt: str
    exact: frozenset[str] = frozenset()
    casefold: frozenset[str] = frozenset()  # legacy tombstones (written before 0005)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]], salt: str) -> Tombstones:
        """From (subject_hash, hash_form) rows of the tombstones table."""
        by_form: dict[str, set[str]] = {m.value: set() for m in Match}
        for h, form in rows:
            by_form[form].add(h)
        return cls(salt, frozenset(by_form[Match.exact]), frozenset(by_form[Match.casefold]))

    def __bool__(self) -> bool:
        return bool(self.exact or self.casefold)

    def erased(self, kind: str, subject_id: str) -> bool:
        """Whether a tombstone (of either form) covers this contact or account id."""
        return ((bool(self.exact) and subject_hash(kind, subject_id, self.salt) in self.exact)
                or (bool(self.casefold) and legacy_subject_hash(kind, subject_id, self.salt) in self.casefold))


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
