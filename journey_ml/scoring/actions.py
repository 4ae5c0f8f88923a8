"""Next-best actions from the playbook, with a deterministic holdout.

The first ``config.scoring.playbook`` rule of the task whose conditions all hold wins
(bands, furthest stage reached, segments, top-reason features, missing committee roles,
minimum and maximum feature values; an
empty condition always holds; a missing value never satisfies a value condition);
otherwise ``config.scoring.default_actions[task]``.

`choose_actions` evaluates the same rules as boolean masks over a whole segment's rows
(the batch path); `choose_action` is the one-row form and gives the same answer.

Holdout: ``holdout_share`` of the entities of every action form a control group. An entity
is in it when ``SipHash-2-4(entity_id as UTF-8)`` keyed by the first 16 hex digits of
``sha256(f"{holdout_seed}\x1f{action}")`` (``pandas.util.hash_array``), divided by 2**64,
is below the share: deterministic, seeded, independent per action, stable across runs and
vectorised. Holdout rows keep the action text (so lift can be measured against the group
that got it) and carry ``action_holdout = True``:
**consumers (CRM sync, sellers' lists, campaigns) must not act on holdout rows.**
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from journey_ml.config import JourneyConfig, PlayRule
from journey_ml.features.declaration import VALUE_DAYS, sanitize
from journey_ml.schemas import STAGES


def stage_name(furthest_stage: Any) -> str | None:
    """The stage name of a ``furthest_stage`` feature (an index into STAGES; None when none)."""
    try:
        i = float(furthest_stage)
    except (TypeError, ValueError):
        return None
    if math.isnan(i) or i < 0 or int(i) >= len(STAGES):
        return None
    return STAGES[int(i)]


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def rule_holds(rule: PlayRule, *, band: str, stage: str | None, segment: str | None,
               reason_features: Iterable[str], features: Mapping[str, Any]) -> bool:
    """Whether every condition of ``rule`` holds for one score."""
    if rule.bands and band not in rule.bands:
        return False
    if rule.stages and stage not in rule.stages:
        return False
    if rule.segments and segment not in rule.segments:
        return False
    if rule.reasons and not set(rule.reasons) & set(reason_features):
        return False
    if rule.missing_roles:
        engaged = [_num(features.get(f"role_{sanitize(r)}_engaged_{VALUE_DAYS}d")) for r in rule.missing_roles]
        if not any(e == 0 for e in engaged):
            return False
    for name, minimum in rule.min_features.items():
        v = _num(features.get(name))
        if v is None or v < minimum:
            return False
    for name, maximum in rule.max_features.items():
        v = _num(features.get(name))
        if v is None or v > maximum:
            return False
    return True


def choose_action(config: JourneyConfig, task_name: str, *, band: str, segment: str | None,
                  reason_features: Iterable[str], features: Mapping[str, Any]) -> str | None:
    """The playbook's action for one score (the task's default when no rule matches)."""
    stage = stage_name(features.get("furthest_stage"))
    reasons = list(reason_features)
    for rule in config.scoring.playbook:
        if rule.task == task_name and rule_holds(rule, band=band, stage=stage, segment=segment,
                                                 reason_features=reasons, features=features):
            return rule.action
    return config.scoring.default_actions.get(task_name)


def stage_names(furthest_stage: np.ndarray) -> np.ndarray:
    """`stage_name` of every value (object array; None where there is no stage)."""
    v = pd.to_numeric(pd.Series(furthest_stage, dtype=object), errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(v) & (v >= 0) & (v < len(STAGES))
    names = np.array([*STAGES, None], dtype=object)
    return names[np.where(ok, np.trunc(np.where(ok, v, 0)).astype(int), len(STAGES))]


def _numeric(values: np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    if values.dtype.kind in "fbiu":  # already numbers: what to_numeric would give, as floats
        return values.astype(float)
    return pd.to_numeric(pd.Series(values, dtype=object if values.dtype == object else None),
                         errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _isin(values: np.ndarray, allowed) -> np.ndarray:
    """Which (object) values are among ``allowed`` (equal and hashing alike, as pandas'
    isin compares them; None only matches None)."""
    keep = set(allowed)
    return np.fromiter((v in keep for v in values.ravel().tolist()), dtype=bool, count=values.size
                       ).reshape(values.shape)


def choose_actions(config: JourneyConfig, task_name: str, *, bands: np.ndarray, segment: str | None,
                   reason_features: np.ndarray, values_of: Callable[[str], np.ndarray | None]) -> np.ndarray:
    """The playbook's action for n scores of one segment at once (object array).

    ``bands`` (n,) band names, ``reason_features`` (n, k) the top reasons' feature names
    (None in empty slots), ``values_of(name)`` the feature's n values (None when absent).
    Same rules and order as `choose_action`.
    """
    n = len(bands)
    bands = np.asarray(bands, dtype=object)
    out = np.full(n, config.scoring.default_actions.get(task_name), dtype=object)
    open_ = np.ones(n, dtype=bool)
    cache: dict[str, np.ndarray] = {}

    def num(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = _numeric(values_of(name), n)
        return cache[name]

    stages = None
    reasons = np.asarray(reason_features, dtype=object).reshape(n, -1)
    for rule in config.scoring.playbook:
        if rule.task != task_name or not open_.any():
            continue
        if rule.segments and segment not in rule.segments:
            continue
        m = open_.copy()
        if rule.bands:
            m &= np.isin(bands, rule.bands)
        if rule.stages:
            if stages is None:
                fs = values_of("furthest_stage")
                stages = stage_names(fs) if fs is not None else np.full(n, None, dtype=object)
            m &= _isin(stages, rule.stages)
        if rule.reasons:
            m &= _isin(reasons, rule.reasons).any(axis=1) if reasons.shape[1] else False
        if rule.missing_roles:
            m &= np.logical_or.reduce([num(f"role_{sanitize(r)}_engaged_{VALUE_DAYS}d") == 0
                                       for r in rule.missing_roles])
        for name, minimum in rule.min_features.items():
            m &= num(name) >= minimum  # NaN compares False: a missing value does not hold
        for name, maximum in rule.max_features.items():
            m &= num(name) <= maximum
        out[m] = rule.action
        open_ &= ~m
    return out


def _holdout_key(seed: int, action: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{action}".encode()).hexdigest()[:16]


def holdout_mask(entity_ids: np.ndarray, actions: np.ndarray, seed: int, share: float) -> np.ndarray:
    """Whether each (entity, action) is in the holdout (vectorised; see the module doc)."""
    ids = np.asarray(entity_ids, dtype=object)
    actions = np.asarray(actions, dtype=object)
    out = np.zeros(len(ids), dtype=bool)
    if share <= 0 or not len(ids):
        return out
    codes, uniques = pd.factorize(actions, use_na_sentinel=True)
    for c, action in enumerate(uniques):
        rows = np.flatnonzero(codes == c)
        h = pd.util.hash_array(ids[rows].astype(str).astype(object), hash_key=_holdout_key(seed, str(action)),
                               categorize=False)
        out[rows] = h.astype(np.float64) / 2.0**64 < share
    return out


def in_holdout(entity_id: str, action: str | None, seed: int, share: float) -> bool:
    """Deterministic: whether this entity is in the holdout of this action."""
    if action is None:
        return False
    return bool(holdout_mask(np.array([str(entity_id)], dtype=object), np.array([action], dtype=object),
                             seed, share)[0])


__all__ = ["stage_name", "stage_names", "rule_holds", "choose_action", "choose_actions", "holdout_mask",
           "in_holdout"]
