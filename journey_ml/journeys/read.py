"""The warehouse edge of journey mapping: events strictly before T, as a plain frame."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from journey_ml.db.models import Contact, Event

_COLUMNS = ["entity_id", "occurred_at", "event_type", "channel", "stage", "value", "contact_id", "role"]


def read_events(engine: Engine, as_of: datetime, *, entity: str = "account", lookback_days: int | None = None,
                event_types: list[str] | None = None) -> pd.DataFrame:
    """Events with ``occurred_at < as_of`` (and within ``lookback_days`` before it), one row
    each: entity_id (the account, through the contact when the event names only a
    contact; or the contact), occurred_at (UTC), event_type, channel, stage, value,
    contact_id, role (the contact's buying role). Events with no entity are left out."""
    if entity not in ("account", "contact"):
        raise ValueError(f"unknown entity {entity!r}; expected account or contact")
    e, c = Event.__table__, Contact.__table__
    ent = sa.func.coalesce(e.c.account_id, c.c.account_id) if entity == "account" else e.c.contact_id
    q = (sa.select(ent.label("entity_id"), e.c.occurred_at, e.c.event_type, e.c.channel, e.c.stage, e.c.value,
                   e.c.contact_id, c.c.role)
         .select_from(e.outerjoin(c, c.c.contact_id == e.c.contact_id))
         .where(e.c.occurred_at < as_of, ent.is_not(None)))
    if lookback_days is not None:
        q = q.where(e.c.occurred_at >= as_of - timedelta(days=lookback_days))
    if event_types:
        q = q.where(e.c.event_type.in_(event_types))
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            return _copied(conn, q)
        rows = conn.execute(q).all()
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    for col in ("channel", "stage", "role"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


def _copied(conn, q: sa.Select) -> pd.DataFrame:
    """``q``'s rows through ``COPY ... TO STDOUT``, parsed by Arrow: the same frame as the
    row path (millions of events in seconds rather than minutes). ``occurred_at`` travels
    as exact epoch microseconds."""
    import pyarrow as pa

    from journey_ml.features._queries import copy_table

    sub = q.subquery("ev")
    micros = sa.cast(sa.func.floor(sa.extract("epoch", sub.c.occurred_at) * 1_000_000), sa.BigInteger)
    stmt = sa.select(*[micros.label(c) if c == "occurred_at" else sub.c[c] for c in _COLUMNS])
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    types = {c: pa.int64() if c == "occurred_at" else pa.float64() if c == "value" else pa.string()
             for c in _COLUMNS}
    table = copy_table(conn, str(compiled), compiled.params, types)
    if table is None:
        table = pa.table({c: pa.array([], t) for c, t in types.items()})
    frame = table.to_pandas()
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"].to_numpy(), unit="us", utc=True).as_unit("ns")
    for col in ("entity_id", "event_type", "channel", "stage", "contact_id", "role"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame[_COLUMNS]


__all__ = ["read_events"]


def matured_scores(engine: Engine, *, task: str, outcome_types: list[str], horizon_days: int, as_of: datetime,
                   entity: str = "account") -> pd.DataFrame:
    """Stored scores of ``task`` whose horizon has passed by ``as_of`` (score as_of + horizon
    <= as_of), one row each: score_as_of, entity_id, action, band, segment, holdout, and
    outcome (1 when an outcome event happened in (score as_of, score as_of + horizon])."""
    from journey_ml.db.models import Score

    s = Score.__table__
    q = (sa.select(s.c.as_of, s.c.entity_id, s.c.action, s.c.band, s.c.segment, s.c.action_holdout)
         .where(s.c.task == task, s.c.as_of <= as_of - timedelta(days=horizon_days), s.c.action.is_not(None)))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    scores = pd.DataFrame(rows, columns=["score_as_of", "entity_id", "action", "band", "segment", "holdout"])
    scores["score_as_of"] = pd.to_datetime(scores["score_as_of"], utc=True)
    scores["segment"] = scores["segment"].fillna("global")
    if scores.empty:
        return scores.assign(outcome=pd.Series(dtype=int))
    ev = read_events(engine, as_of, entity=entity, event_types=outcome_types)
    first_after = scores[["score_as_of", "entity_id"]].merge(ev[["entity_id", "occurred_at"]], on="entity_id")
    hit = first_after[(first_after["occurred_at"] > first_after["score_as_of"])
                      & (first_after["occurred_at"] <= first_after["score_as_of"] + timedelta(days=horizon_days))]
    won = set(zip(hit["score_as_of"], hit["entity_id"], strict=True))
    scores["outcome"] = [int((a, e) in won) for a, e in zip(scores["score_as_of"], scores["entity_id"], strict=True)]
    return scores


def store_lift(engine: Engine, task: str, score_as_of: datetime, table: pd.DataFrame, *, horizon_days: int,
               measured_as_of: datetime, computed_at: datetime) -> int:
    """Replace the lift rows of (task, scoring date) with ``table`` (see `lift_table`), in
    one transaction. Returns the rows written."""
    from journey_ml.db.models import Lift

    lt = Lift.__table__

    def num(v):
        return None if v is None or (isinstance(v, float) and v != v) else float(v)

    rows = [{"task": task, "score_as_of": score_as_of, "action": r.action, "band": r.band, "segment": r.segment,
             "treated_n": int(r.treated_n), "treated_rate": num(r.treated_rate), "holdout_n": int(r.holdout_n),
             "holdout_rate": num(r.holdout_rate), "difference": num(r.difference), "ci_low": num(r.ci_low),
             "ci_high": num(r.ci_high), "p_value": num(r.p_value), "status": r.status, "horizon_days": horizon_days,
             "measured_as_of": measured_as_of, "computed_at": computed_at} for r in table.itertuples()]
    with engine.begin() as conn:
        conn.execute(sa.delete(lt).where(lt.c.task == task, lt.c.score_as_of == score_as_of))
        if rows:
            conn.execute(sa.insert(lt), rows)
    return len(rows)


def stored_lift(engine: Engine, task: str | None = None) -> pd.DataFrame:
    """The lift table (optionally one task), newest scoring date first."""
    from journey_ml.db.models import Lift

    lt = Lift.__table__
    q = sa.select(lt).order_by(lt.c.task, lt.c.score_as_of.desc(), lt.c.action, lt.c.band, lt.c.segment)
    if task:
        q = q.where(lt.c.task == task)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in lt.columns])


def entity_segments(engine: Engine, segmentation: str | None, seg_config, entity: str, as_of: datetime) -> pd.Series:
    """entity id -> segment as of T: the newest stored membership at or before T (written
    by `features build`), else, for a rules/column segmentation on an account column, the
    rule applied to the accounts table. Empty when the task is not segmented."""
    from journey_ml.db.models import Account, SegmentMembership
    from journey_ml.segments import assign_segments

    if not segmentation:
        return pd.Series(dtype=object)
    m = SegmentMembership.__table__
    newest = (sa.select(sa.func.max(m.c.as_of)).where(m.c.segmentation == segmentation, m.c.as_of <= as_of)
              .scalar_subquery())
    with engine.connect() as conn:
        rows = conn.execute(sa.select(m.c.entity_id, m.c.segment).where(
            m.c.segmentation == segmentation, m.c.as_of == newest)).all()
        if rows:
            return pd.Series({e: s for e, s in rows}, dtype=object)
        col = getattr(seg_config, "column", None)
        a = Account.__table__
        if entity != "account" or seg_config.kind == "clusters" or col not in a.c:
            return pd.Series(dtype=object)
        acc = conn.execute(sa.select(a.c.account_id, a.c[col])).all()
    frame = pd.DataFrame(acc, columns=["account_id", col]).set_index("account_id")
    return assign_segments(frame, seg_config)
