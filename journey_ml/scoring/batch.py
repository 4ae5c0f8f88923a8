"""Batch scoring: one row per entity of a task's population in ``scores``.

``score_task`` builds the population's features as of T with the same code as training
(`build_features` with the production model's stored feature set), assigns segments, walks
the fallback ladder per segment (see `ladder`), explains every score, picks the next-best
action (with a deterministic holdout, see `actions`) and replaces the (task, as_of) rows
of ``scores`` in one transaction. Nothing is skipped: every entity of the population gets
a row saying which ladder step scored it and why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from journey_ml.config import JourneyConfig
from journey_ml.db.models import Contact, Score
from journey_ml.features import FeatureSet, build_features, feature_set_for
from journey_ml.scoring.actions import choose_action, in_holdout
from journey_ml.scoring.ladder import (
    BUILTIN_RULES,
    GLOBAL,
    MODEL_CACHE,
    MODES,
    ModelCache,
    RegistryUnreachable,
    SegmentScores,
    _RegistryReader,
    one_line,
    score_segment,
)
from journey_ml.scoring.reasons import build_reasons
from journey_ml.segments import assign_segments

log = logging.getLogger(__name__)
_BATCH = 2_000


@dataclass
class SegmentRun:
    """How one segment was scored."""

    segment: str
    entities: int
    mode: str
    model_name: str | None
    model_version: int | None
    mode_reason: str
    fallback_steps: list[str] = field(default_factory=list)


@dataclass
class ScoreRunResult:
    """What one scoring run of a task did."""

    task: str
    as_of: datetime
    run_id: str
    scored_at: datetime
    entities: int
    rows_written: int
    seconds: float
    feature_set_version: str | None
    modes: dict[str, int]
    bands: dict[str, int]
    segments: list[SegmentRun]
    fallbacks: list[str]  # the reason of every fallback step taken (all segments)
    holdout: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def entities_per_second(self) -> float:
        return self.entities / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        d["scored_at"] = self.scored_at.isoformat()
        return d


def _utc(t: datetime, what: str) -> datetime:
    if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware (UTC) datetime, got {t!r}")
    return t.astimezone(UTC)


def rules_hash(config: JourneyConfig, task_name: str) -> str | None:
    """The ``journey.rules_hash`` tag training gives the task's current rules version."""
    if task_name not in config.rules:
        return None
    return hashlib.sha256(config.rules[task_name].model_dump_json().encode()).hexdigest()[:16]


def band_of(p: float, config: JourneyConfig) -> str:
    """The highest band whose min <= p."""
    for b in sorted(config.scoring.bands, key=lambda b: -b.min):
        if p >= b.min:
            return b.name
    return min(config.scoring.bands, key=lambda b: b.min).name


def _candidate_segments(config: JourneyConfig, task_name: str) -> list[str]:
    task = config.task(task_name)
    out = [GLOBAL]
    if task.segment_by:
        seg = config.segments[task.segment_by]
        out += [r.name for r in seg.rules] + ([seg.default] if seg.kind == "rules" else [])
    return list(dict.fromkeys(out))


def _main_feature_set(reader: _RegistryReader, cache: ModelCache, engine: Engine, config: JourneyConfig,
                      task_name: str, notes: list[str]) -> FeatureSet:
    """The production models' stored feature set (global first); declared when none has one."""
    try:
        for seg in _candidate_segments(config, task_name):
            info = reader.call("production", task_name, seg)
            if info is None or info.kind == "rules":
                continue
            try:
                fs = cache.get(reader.registry, task_name, seg, info.version, info.kind).feature_set
                if fs:
                    return FeatureSet.from_dict(fs)
            except Exception as e:  # noqa: BLE001 - the ladder reports it per segment
                notes.append(f"feature set of {info.name} v{info.version} unavailable ({one_line(e)})")
    except RegistryUnreachable as e:
        notes.append(str(e))
    notes.append("no production model with a stored feature set: features declared from the configuration")
    return feature_set_for(engine, config, task_name)


def _assert_no_opted_out(engine: Engine, ids: pd.Index) -> None:
    with engine.connect() as conn:
        opted = {str(r[0]) for r in conn.execute(sa.select(Contact.contact_id).where(Contact.opted_out.is_(True)))}
    bad = sorted(set(map(str, ids)) & opted)
    if bad:
        raise AssertionError(f"opted-out contacts in the scoring population: {bad[:5]}")


def _segments(frame: pd.DataFrame, config: JourneyConfig, task_name: str, notes: list[str]) -> pd.Series:
    task = config.task(task_name)
    if not task.segment_by or frame.empty:
        return pd.Series(GLOBAL, index=frame.index, dtype=object)
    try:
        seg = assign_segments(frame, config.segments[task.segment_by], random_state=config.training.seed)
        return seg.reindex(frame.index).fillna(GLOBAL).astype(str)
    except Exception as e:  # noqa: BLE001 - unsegmented entities are scored by the global model
        notes.append(f"segments not assigned ({one_line(e)}): every entity uses the global model")
        return pd.Series(GLOBAL, index=frame.index, dtype=object)


def _write(engine: Engine, task_name: str, as_of: datetime, rows: list[dict[str, Any]]) -> int:
    table = Score.__table__
    with engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.task == task_name, table.c.as_of == as_of))
        for i in range(0, len(rows), _BATCH):
            conn.execute(table.insert(), rows[i:i + _BATCH])
    return len(rows)


@dataclass
class ScoreBatch:
    """The score records of one task as of T, computed but not yet written.

    ``records()`` gives one JSON-ready dict per entity (the ``scores`` row without
    ``run_id``/``scored_at`` bookkeeping filled by the caller); the batch flow writes them,
    the HTTP API returns them. Both go through `compute_scores`, so they cannot disagree.
    """

    task: str
    as_of: datetime
    entity_kind: str
    feature_set_version: str | None
    rows: list[dict[str, Any]]
    results: list[SegmentScores]
    notes: list[str]
    entities: int

    def records(self) -> list[dict[str, Any]]:
        return self.rows


def compute_scores(engine: Engine, registry, config: JourneyConfig, task_name: str, as_of: datetime, *,
                   run_id: str | None = None, scored_at: datetime, cache: ModelCache | None = None,
                   build: Callable[..., Any] = build_features) -> ScoreBatch:
    """Score the population of ``task_name`` as of ``as_of`` without writing anything.

    ``engine`` is any warehouse holding the entities' data (the real one for batch
    scoring, a per-request in-memory one for the API). ``registry`` may be None or
    unreachable: built-in rules then score everyone. Raises ConfigError for an unknown
    task, ValueError for a naive datetime.
    """
    task = config.task(task_name)
    t = _utc(as_of, "as_of")
    scored = _utc(scored_at, "scored_at")
    cache = cache or MODEL_CACHE
    reader = _RegistryReader(registry)
    notes: list[str] = []
    sc = config.scoring

    fs = _main_feature_set(reader, cache, engine, config, task_name, notes)
    ff = build(engine, config, task_name, t, feature_set=fs)
    main = ff.frame
    if task.entity == "contact":
        _assert_no_opted_out(engine, main.index)
    labels = {f.name: f.label for f in ff.feature_set.features}
    main_key = json.dumps(ff.feature_set.to_dict(), sort_keys=True, default=str)
    frames: dict[str, tuple[pd.DataFrame, dict[str, str]]] = {main_key: (main, labels)}

    def frame_for(fs_dict: dict | None) -> tuple[pd.DataFrame, dict[str, str]]:
        if not fs_dict:
            return frames[main_key]
        key = json.dumps(fs_dict, sort_keys=True, default=str)
        if key not in frames:
            other = FeatureSet.from_dict(fs_dict)
            f = build(engine, config, task_name, t, feature_set=other).frame.reindex(main.index)
            frames[key] = (f, {s.name: s.label for s in other.features})
        return frames[key]

    segments = _segments(main, config, task_name, notes)
    rh = rules_hash(config, task_name)
    k = sc.top_reasons
    results: list[SegmentScores] = []
    for seg in sorted(segments.unique()):
        rows = segments.index[segments.to_numpy() == seg]
        results.append(score_segment(reader, config, task_name, seg, rows, frame_for, cache, rh, k))

    out_rows: list[dict[str, Any]] = []
    for r in results:
        feats = r.frame.to_dict(orient="index")
        main_feats = main.loc[r.index].to_dict(orient="index") if r.frame is not main else feats
        for eid, p, expl in zip(r.index, r.probability, r.explanations, strict=True):
            p = float(p)
            band = band_of(p, config)
            row = {**main_feats[eid], **feats[eid]}
            reasons = build_reasons(list(expl), row, sc.reason_templates, labels | r.labels, k)
            action = choose_action(config, task_name, band=band, segment=r.segment,
                                   reason_features=[x["feature"] for x in reasons], features=row)
            hold = in_holdout(str(eid), action, sc.holdout_seed, sc.holdout_share)
            out_rows.append({
                "task": task_name, "entity_id": str(eid), "as_of": t, "entity_kind": task.entity,
                "probability": p, "band": band, "segment": r.segment, "model_name": r.model_name,
                "model_version": r.model_version, "mode": r.mode, "mode_reason": r.mode_reason,
                "reasons": reasons, "action": action, "action_holdout": bool(hold), "run_id": run_id,
                "scored_at": scored,
            })
    if len(out_rows) != len(main):  # pragma: no cover - the ladder always produces a score
        raise AssertionError(f"{len(main)} entities but {len(out_rows)} scores")
    return ScoreBatch(task=task_name, as_of=t, entity_kind=task.entity, feature_set_version=ff.feature_set.version,
                      rows=out_rows, results=results, notes=notes, entities=len(main))


def score_task(engine: Engine, registry, config: JourneyConfig, task_name: str, as_of: datetime, *,
               run_id: str | None = None, scored_at: datetime, cache: ModelCache | None = None,
               build: Callable[..., Any] = build_features) -> ScoreRunResult:
    """Score the population of ``task_name`` as of ``as_of`` into ``scores`` (a re-run
    replaces the (task, as_of) rows in one transaction). See `compute_scores`.

    Raises ConfigError for an unknown task, ValueError for a naive datetime.
    """
    t0 = time.perf_counter()
    run_id = run_id or str(uuid.uuid4())
    batch = compute_scores(engine, registry, config, task_name, as_of, run_id=run_id, scored_at=scored_at,
                           cache=cache, build=build)
    written = _write(engine, task_name, batch.as_of, batch.rows)
    modes = Counter(r["mode"] for r in batch.rows)
    bands = Counter(r["band"] for r in batch.rows)
    holdouts = sum(1 for r in batch.rows if r["action_holdout"])
    results = batch.results
    fallbacks = [f"{r.segment}: {s}" for r in results for s in r.skipped]
    result = ScoreRunResult(
        task=task_name, as_of=batch.as_of, run_id=run_id, scored_at=_utc(scored_at, "scored_at"),
        entities=batch.entities, rows_written=written, seconds=time.perf_counter() - t0,
        feature_set_version=batch.feature_set_version,
        modes={m: modes[m] for m in MODES if modes[m]}, bands=dict(sorted(bands.items())),
        segments=[SegmentRun(r.segment, len(r.index), r.mode, r.model_name, r.model_version, r.mode_reason,
                             list(r.skipped)) for r in results],
        fallbacks=fallbacks, holdout=holdouts, notes=batch.notes)
    log.info("scored %s as of %s: %d entities in %.1fs (%s)", task_name, batch.as_of.isoformat(), result.entities,
             result.seconds, result.modes)
    if modes.get(BUILTIN_RULES):
        log.warning("%s: %d entities scored by built-in rules", task_name, modes[BUILTIN_RULES])
    return result


def score_summary_table(result: ScoreRunResult):
    """A rich Table of a run: one row per segment (entities, mode, model, why)."""
    from rich.table import Table

    title = (f"{result.task} as of {result.as_of:%Y-%m-%d %H:%M} UTC: {result.rows_written} scores in "
             f"{result.seconds:.1f}s; bands {', '.join(f'{k} {v}' for k, v in result.bands.items())}; "
             f"holdout {result.holdout}")
    table = Table(title=title)
    for col in ("segment", "entities", "mode", "model", "why"):
        table.add_column(col, justify="right" if col == "entities" else "left",
                         overflow="fold" if col == "why" else "ellipsis")
    for s in result.segments:
        model = f"{s.model_name} v{s.model_version}" if s.model_name else "-"
        table.add_row(s.segment, str(s.entities), s.mode, model, s.mode_reason)
    return table


__all__ = ["ScoreRunResult", "SegmentRun", "ScoreBatch", "compute_scores", "score_task", "score_summary_table", "band_of", "rules_hash"]
