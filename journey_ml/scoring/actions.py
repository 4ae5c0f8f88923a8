"""Next-best actions from the playbook, with a deterministic holdout.

The first ``config.scoring.playbook`` rule of the task whose conditions all hold wins
(bands, furthest stage reached, segments, top-reason features, missing committee roles,
minimum feature values; an empty condition always holds); otherwise
``config.scoring.default_actions[task]``.

Holdout: a hash of (holdout_seed, entity, action) puts ``holdout_share`` of the entities
of every action into a control group. Holdout rows keep the action text (so lift can be
measured against the group that got it) and carry ``action_holdout = True``:
**consumers (CRM sync, sellers' lists, campaigns) must not act on holdout rows.**
The assignment is stable across runs for the same entity and action.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

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


def in_holdout(entity_id: str, action: str | None, seed: int, share: float) -> bool:
    """Deterministic: whether this entity is in the holdout of this action."""
    if action is None or share <= 0:
        return False
    h = hashlib.sha256(f"{seed}\x1f{entity_id}\x1f{action}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64 < share


__all__ = ["stage_name", "rule_holds", "choose_action", "in_holdout"]
