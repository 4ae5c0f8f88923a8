"""The buying-committee view of an account: who engages, who is missing, the latest score.

Pure SQL + pandas over the warehouse. Opted-out contacts never appear (not as a
stakeholder, not in a role, not in a count); activity is strictly before ``as_of``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from journey_ml.config import JourneyConfig
from journey_ml.db.models import Contact, Event, Score

WINDOW_DAYS = 90


@dataclass
class StoredScore:
    task: str
    as_of: datetime
    probability: float
    band: str
    mode: str
    mode_reason: str | None
    reasons: list[dict[str, Any]]
    action: str | None
    action_holdout: bool


@dataclass
class CommitteeView:
    account_id: str
    as_of: datetime
    contacts: int  # known contacts, not opted out
    contacts_engaged_90d: int
    roles_engaged: list[str]
    key_roles_missing: list[str]
    most_engaged: dict[str, Any] | None  # {contact_id, role, events_90d, last_activity}
    role_last_activity: dict[str, datetime | None]  # every role seen + every key role
    events_by_contact_90d: dict[str, int] = field(default_factory=dict)
    latest_score: StoredScore | None = None
    scores: dict[str, StoredScore] = field(default_factory=dict)  # latest per task

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)

        def conv(v):
            if isinstance(v, datetime):
                return v.isoformat()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list):
                return [conv(x) for x in v]
            return v

        return conv(d)


def _ts(v) -> datetime | None:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def committee_view(engine: Engine, config: JourneyConfig, account_id: str, as_of: datetime) -> CommitteeView:
    """The committee of ``account_id`` as of ``as_of`` (engagement in the 90 days before)."""
    if as_of.tzinfo is None:
        raise ValueError(f"as_of must be timezone-aware (UTC), got {as_of!r}")
    t = as_of.astimezone(UTC)
    lo = t - timedelta(days=WINDOW_DAYS)
    c, e, s = Contact.__table__, Event.__table__, Score.__table__
    people = (sa.select(c.c.contact_id, c.c.role)
              .where(c.c.account_id == account_id, c.c.opted_out.is_not(sa.true()))
              .where(sa.or_(c.c.created_at.is_(None), c.c.created_at < t)))
    recent = sa.func.sum(sa.case((e.c.occurred_at >= lo, 1), else_=0))
    activity = (sa.select(e.c.contact_id, recent.label("events_90d"), sa.func.max(e.c.occurred_at).label("last"))
                .join(c, c.c.contact_id == e.c.contact_id)
                .where(c.c.account_id == account_id, c.c.opted_out.is_not(sa.true()), e.c.occurred_at < t)
                .group_by(e.c.contact_id))
    score_q = (sa.select(s).where(s.c.entity_id == account_id, s.c.entity_kind == "account", s.c.as_of <= t)
               .order_by(s.c.as_of.desc()))
    with engine.connect() as conn:
        ppl = pd.DataFrame(conn.execute(people).all(), columns=["contact_id", "role"])
        act = pd.DataFrame(conn.execute(activity).all(), columns=["contact_id", "events_90d", "last"])
        score_rows = conn.execute(score_q).mappings().all()
    ppl["contact_id"] = ppl["contact_id"].astype(str)
    act["contact_id"] = act["contact_id"].astype(str)
    df = ppl.merge(act, on="contact_id", how="left")
    df["events_90d"] = pd.to_numeric(df["events_90d"], errors="coerce").fillna(0).astype(int)
    df["last"] = [_ts(v) for v in df["last"]]
    engaged = df[df["events_90d"] > 0]
    roles_engaged = sorted({str(r) for r in engaged["role"].dropna()})
    key_roles = list(config.features.key_roles)
    missing = [r for r in key_roles if r not in roles_engaged]
    role_last: dict[str, datetime | None] = {r: None for r in key_roles}
    for role, grp in df.dropna(subset=["role"]).groupby("role"):
        lasts = [x for x in grp["last"] if x is not None]
        role_last[str(role)] = max(lasts) if lasts else None
    top = None
    if len(engaged):
        best = engaged.sort_values(["events_90d", "contact_id"], ascending=[False, True]).iloc[0]
        top = {"contact_id": best["contact_id"], "role": best["role"], "events_90d": int(best["events_90d"]),
               "last_activity": best["last"]}
    scores: dict[str, StoredScore] = {}
    for r in score_rows:
        if r["task"] in scores:
            continue
        scores[r["task"]] = StoredScore(task=r["task"], as_of=_ts(r["as_of"]), probability=float(r["probability"]),
                                        band=r["band"], mode=r["mode"], mode_reason=r["mode_reason"],
                                        reasons=list(r["reasons"] or []), action=r["action"],
                                        action_holdout=bool(r["action_holdout"]))
    latest = max(scores.values(), key=lambda x: x.as_of) if scores else None
    return CommitteeView(
        account_id=account_id, as_of=t, contacts=len(df), contacts_engaged_90d=len(engaged),
        roles_engaged=roles_engaged, key_roles_missing=missing, most_engaged=top,
        role_last_activity=role_last,
        events_by_contact_90d={str(k): int(v) for k, v in zip(df["contact_id"], df["events_90d"], strict=True)},
        latest_score=latest, scores=scores)


__all__ = ["CommitteeView", "StoredScore", "committee_view"]
