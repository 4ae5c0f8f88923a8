"""Batch scoring: one row per entity of a task's population in ``scores``.

``score_task`` builds the population's features as of T with the same code as training
(`build_features` with the production model's stored feature set), assigns segments, walks
the fallback ladder per segment (see `ladder`), explains every score, picks the next-best
action (with a deterministic holdout, see `actions`) and replaces the (task, as_of) rows
of ``scores`` in one transaction. Nothing is skipped: every entity of the population gets
a row saying which ladder step scored it and why.

The work is column-wise: one pass per segment gives probabilities and the top-k
contributions (chunked, so the full SHAP matrix never exists), reason texts are formatted
once per distinct (feature, shown value), playbook rules are boolean masks, the holdout
is a vectorised keyed hash, and on PostgreSQL the rows go in with COPY (text format,
built from the columns, sent from a writer thread while the next chunk is built).
``ScoreRunResult.phases`` says where the time went. Reasons are exact path-dependent
TreeSHAP values, from tables precomputed once per model (`journey_ml.models.treeshap`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Engine

from journey_ml.config import JourneyConfig
from journey_ml.db.models import Contact, Score
from journey_ml.features import FeatureFrame, FeatureSet, build_features, feature_set_for
from journey_ml.features.memory import PostedRows
from journey_ml.features.spec import feature_set_key
from journey_ml.scoring.actions import choose_actions, holdout_mask
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
from journey_ml.scoring.reasons import ReasonColumns, concat_reasons, reason_columns
from journey_ml.segments import candidate_segments, task_segments

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
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step (features ... write)

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


def _main_feature_set(reader: _RegistryReader, cache: ModelCache, engine: Engine, config: JourneyConfig,
                      task_name: str, notes: list[str]) -> FeatureSet:
    """The production models' stored feature set (global first); declared when none has one."""
    try:
        for seg in candidate_segments(config, task_name):
            info = reader.call("production", task_name, seg)
            if info is None or info.kind == "rules":
                continue
            try:
                fs = cache.get(reader.registry, task_name, seg, info.version, info.kind).features
                if fs:
                    return fs
            except Exception as e:  # noqa: BLE001 - the ladder reports it per segment
                notes.append(f"feature set of {info.name} v{info.version} unavailable ({one_line(e)})")
    except RegistryUnreachable as e:
        notes.append(str(e))
    notes.append("no production model with a stored feature set: features declared from the configuration")
    return feature_set_for(engine, config, task_name)


def _assert_no_opted_out(engine: Engine | PostedRows, ids: pd.Index) -> None:
    if isinstance(engine, PostedRows):
        opted = engine.opted_out()
    else:
        with engine.connect() as conn:
            opted = {str(r[0]) for r in conn.execute(sa.select(Contact.contact_id)
                                                     .where(Contact.opted_out.is_(True)))}
    bad = sorted(set(map(str, ids)) & opted)
    if bad:
        raise AssertionError(f"opted-out contacts in the scoring population: {bad[:5]}")


def _segments(frame: pd.DataFrame, config: JourneyConfig, task_name: str, notes: list[str]) -> pd.Series:
    try:
        return task_segments(frame, config, task_name)
    except Exception as e:  # noqa: BLE001 - unsegmented entities are scored by the global model
        notes.append(f"segments not assigned ({one_line(e)}): every entity uses the global model")
        return pd.Series(GLOBAL, index=frame.index, dtype=object)


_SD = np.dtypes.StringDType()
_COPY_CHUNK = 50_000
_COPY_COLUMNS = ("task", "as_of", "entity_kind", "run_id", "scored_at", "segment", "model_name", "model_version",
                 "mode", "mode_reason", "entity_id", "probability", "band", "action", "action_holdout", "reasons",
                 "stage", "next_steps")


def _copy_escape(values: np.ndarray) -> np.ndarray:
    """Text values escaped for COPY's text format (StringDType array)."""
    v = np.asarray(values, dtype=_SD)
    for a, b in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        v = np.strings.replace(v, a, b)
    return v


def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        value = value.isoformat()
    return str(_copy_escape(np.array([str(value)], dtype=_SD))[0])


def _copy_coded(values: np.ndarray) -> np.ndarray:
    """A low-cardinality text column (None -> NULL), escaped once per distinct value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    table = np.array([*[_copy_field(u) for u in uniques], "\\N"], dtype=_SD)
    return table[np.where(codes < 0, len(uniques), codes)]


@dataclass
class _Block:
    """The rows [start, stop) of a ScoreBatch, all scored by one ladder step."""

    start: int
    stop: int
    segment: str
    model_name: str | None
    model_version: int | None
    mode: str
    mode_reason: str


@dataclass
class ScoreColumns:
    """The score records of a batch held column-wise (rows grouped by segment)."""

    entity_id: np.ndarray  # (n,) object str
    probability: np.ndarray  # (n,) float
    band: np.ndarray  # (n,) object
    action: np.ndarray  # (n,) object (None when the task has no default action)
    action_holdout: np.ndarray  # (n,) bool
    reasons: ReasonColumns
    blocks: list[_Block]
    # the entity's journey (see `add_next_steps`): predicted current stage (None: no journey),
    # index into ``next_table`` ({next step: p}; -1: none, the journey has ended)
    stage: np.ndarray | None = None
    next_code: np.ndarray | None = None
    next_table: tuple[dict[str, float], ...] = ()

    def next_steps(self, i: int) -> dict[str, float] | None:
        if self.next_code is None or self.next_code[i] < 0:
            return None
        return dict(self.next_table[self.next_code[i]])

    def next_columns(self, lo: int, hi: int) -> tuple[list[str], list[str]]:
        """COPY text of rows [lo, hi)'s stage and next_steps (each distinct value escaped once)."""
        n = hi - lo
        if self.stage is None:
            return ["\\N"] * n, ["\\N"] * n
        texts = np.array([*(_copy_field(json.dumps(d)) for d in self.next_table), "\\N"], dtype=_SD)
        code = self.next_code[lo:hi]
        return _copy_coded(self.stage[lo:hi]).tolist(), texts[np.where(code < 0, len(self.next_table), code)].tolist()


@dataclass
class ScoreBatch:
    """The score records of one task as of T, computed but not yet written.

    ``records()`` gives one JSON-ready dict per entity (the ``scores`` row); the batch flow
    writes them (COPY on PostgreSQL, straight from the columns), the HTTP API returns them.
    Both go through `compute_scores`, so they cannot disagree. ``phases`` holds the seconds
    spent per step (features, segments, models, reasons, actions, holdout).
    """

    task: str
    as_of: datetime
    entity_kind: str
    feature_set_version: str | None
    results: list[SegmentScores]
    notes: list[str]
    entities: int
    columns: ScoreColumns | None = None
    run_id: str | None = None
    scored_at: datetime | None = None
    phases: dict[str, float] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per entity, in the order of the batch."""
        c = self.columns
        if c is None:
            return []
        out = []
        ids, probs, bands = c.entity_id.tolist(), c.probability.tolist(), c.band.tolist()
        actions, holds = c.action.tolist(), c.action_holdout.tolist()
        for b in c.blocks:
            for i in range(b.start, b.stop):
                out.append({
                    "task": self.task, "entity_id": ids[i], "as_of": self.as_of, "entity_kind": self.entity_kind,
                    "probability": probs[i], "band": bands[i], "segment": b.segment, "model_name": b.model_name,
                    "model_version": b.model_version, "mode": b.mode, "mode_reason": b.mode_reason,
                    "reasons": c.reasons.row(i), "action": actions[i], "action_holdout": bool(holds[i]),
                    "run_id": self.run_id, "scored_at": self.scored_at,
                    "stage": None if c.stage is None else c.stage[i], "next_steps": c.next_steps(i),
                })
        return out

    def slim(self) -> ScoreBatch:
        """This batch without the feature frames and raw contributions its segments were
        scored from (`store_batch` needs neither): what a partition scored elsewhere sends back."""
        return replace(self, results=[replace(r, frame=r.frame.iloc[:0], probability=r.probability[:0],
                                              idx=r.idx[:0], val=r.val[:0]) for r in self.results])

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Same as `records` (kept for callers of the earlier list-of-rows form)."""
        return self.records()

    def copy_text(self, start: int, stop: int) -> str:
        """Rows [start, stop) as COPY text-format lines, columns in ``_COPY_COLUMNS`` order."""
        c = self.columns
        head = "\t".join(_copy_field(v) for v in (self.task, self.as_of, self.entity_kind, self.run_id,
                                                  self.scored_at)) + "\t"
        parts = []
        for b in c.blocks:
            lo, hi = max(start, b.start), min(stop, b.stop)
            if lo >= hi:
                continue
            prefix = head + "\t".join(_copy_field(v) for v in (b.segment, b.model_name, b.model_version, b.mode,
                                                               b.mode_reason)) + "\t"
            ids = c.entity_id[lo:hi].tolist()
            if any(ch in "".join(ids) for ch in "\\\t\n\r"):
                ids = _copy_escape(np.asarray(ids, dtype=object)).tolist()
            reasons = c.reasons.json(slice(lo, hi)).tolist()
            if "\\" in "".join(reasons):
                reasons = [r.replace("\\", "\\\\") for r in reasons]
            tab = repeat("\t")
            stage, nxt = c.next_columns(lo, hi)
            cols = [repeat(prefix), ids, tab, list(map(repr, c.probability[lo:hi].tolist())), tab,
                    _copy_coded(c.band[lo:hi]).tolist(), tab, _copy_coded(c.action[lo:hi]).tolist(), tab,
                    np.where(c.action_holdout[lo:hi], "t", "f").tolist(), tab, reasons, tab, stage, tab, nxt]
            parts.append("\n".join(map("".join, zip(*cols, strict=False))))
        return "\n".join(parts) + "\n" if parts else ""


def _write(engine: Engine, batch: ScoreBatch) -> int:
    """Replace the (task, as_of) rows of ``scores`` with the batch, in one transaction.

    PostgreSQL: DELETE + COPY (text format, built column-wise); other backends: executemany.
    """
    table = Score.__table__
    n = batch.entities
    with engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.task == batch.task, table.c.as_of == batch.as_of))
        if engine.dialect.name == "postgresql" and n:
            raw = conn.connection.driver_connection
            sql = f"COPY {table.name} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
            # the queued writer sends each chunk from a thread while the next one is built
            with raw.cursor() as cur, cur.copy(sql, writer=QueuedLibpqWriter(cur)) as cp:
                for lo in range(0, n, _COPY_CHUNK):
                    cp.write(batch.copy_text(lo, min(lo + _COPY_CHUNK, n)))
        else:
            rows = batch.records()
            for i in range(0, len(rows), _BATCH):
                conn.execute(table.insert(), rows[i:i + _BATCH])
    return n


def bands_of(p: np.ndarray, config: JourneyConfig) -> np.ndarray:
    """`band_of` of every probability (object array)."""
    bands = sorted(config.scoring.bands, key=lambda b: -b.min)
    lowest = min(config.scoring.bands, key=lambda b: b.min).name
    p = np.asarray(p, dtype=float)
    return np.select([p >= b.min for b in bands], [np.array(b.name, dtype=object) for b in bands],
                     default=np.array(lowest, dtype=object)).astype(object)


def compute_scores(engine: Engine, registry, config: JourneyConfig, task_name: str, as_of: datetime, *,
                   run_id: str | None = None, scored_at: datetime, cache: ModelCache | None = None,
                   build: Callable[..., Any] = build_features) -> ScoreBatch:
    """Score the population of ``task_name`` as of ``as_of`` without writing anything.

    ``engine`` is any warehouse holding the entities' data (the real one for batch
    scoring, a per-request in-memory one for the API). ``registry`` may be None or
    unreachable: built-in rules then score everyone. Raises ConfigError for an unknown
    task, ValueError for a naive datetime.
    """
    _utc(scored_at, "scored_at")
    clock = time.perf_counter()
    ff, notes = population_features(engine, registry, config, task_name, as_of, cache=cache, build=build)
    return score_features(engine, registry, config, ff, run_id=run_id, scored_at=scored_at, cache=cache,
                          build=build, notes=notes, phases={"features": time.perf_counter() - clock})


def population_features(engine: Engine, registry, config: JourneyConfig, task_name: str, as_of: datetime, *,
                        cache: ModelCache | None = None, build: Callable[..., Any] = build_features
                        ) -> tuple[FeatureFrame, list[str]]:
    """The features `compute_scores` scores: the population of ``task_name`` as of
    ``as_of`` with the production models' stored feature set; and the notes on how that set
    was chosen. Raises ConfigError for an unknown task, ValueError for a naive datetime."""
    task = config.task(task_name)
    t = _utc(as_of, "as_of")
    notes: list[str] = []
    fs = _main_feature_set(_RegistryReader(registry), cache or MODEL_CACHE, engine, config, task_name, notes)
    ff = build(engine, config, task_name, t, feature_set=fs)
    if task.entity == "contact":
        _assert_no_opted_out(engine, ff.frame.index)
    return ff, notes


def partition_features(ff: FeatureFrame, n: int) -> list[FeatureFrame]:
    """``ff`` split into ``n`` partitions by a hash of the entity id (the same entity is
    always in the same partition, whatever the population); each keeps the population's order."""
    if n < 1:
        raise ValueError(f"partitions must be >= 1, got {n}")
    ids = ff.frame.index.astype(str).to_numpy(dtype=object)
    part = pd.util.hash_array(ids, categorize=False) % np.uint64(n) if len(ids) else np.zeros(0, dtype=np.uint64)
    return [replace(ff, frame=ff.frame[part == i]) for i in range(n)]


def score_features(engine: Engine, registry, config: JourneyConfig, ff: FeatureFrame, *, run_id: str | None = None,
                   scored_at: datetime, cache: ModelCache | None = None, build: Callable[..., Any] = build_features,
                   notes: list[str] | tuple[str, ...] = (), phases: dict[str, float] | None = None) -> ScoreBatch:
    """Score the entities of ``ff`` (a population from `population_features`, or one of its
    partitions) without writing anything: segments, the fallback ladder, reasons, actions,
    holdout. A row's score depends on that entity alone, so partitions scored apart give the
    rows the whole population gives."""
    task_name = ff.task
    task = config.task(task_name)
    t = ff.as_of
    scored = _utc(scored_at, "scored_at")
    cache = cache or MODEL_CACHE
    reader = _RegistryReader(registry)
    notes = list(notes)
    sc = config.scoring
    phases = dict(phases or {})
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - clock
        clock = now

    main = ff.frame
    labels = {f.name: f.label for f in ff.feature_set.features}
    main_key = ff.feature_set.key
    frames: dict[str, tuple[pd.DataFrame, dict[str, str]]] = {main_key: (main, labels)}

    def frame_for(fs_dict: dict | None, key: str | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
        if not fs_dict:
            return frames[main_key]
        key = key or feature_set_key(fs_dict)
        if key not in frames:
            other = FeatureSet.from_dict(fs_dict)
            f = build(engine, config, task_name, t, feature_set=other).frame.reindex(main.index)
            frames[key] = (f, {s.name: s.label for s in other.features})
        return frames[key]

    segments = _segments(main, config, task_name, notes)
    seg_values = segments.to_numpy()
    lap("segments")
    rh = rules_hash(config, task_name)
    k = sc.top_reasons
    results: list[SegmentScores] = []
    for seg in sorted(segments.unique()):
        rows = segments.index[seg_values == seg]
        results.append(score_segment(reader, config, task_name, seg, rows, frame_for, cache, rh, k))
    lap("models")

    ids, probs, bands, actions, parts, blocks = [], [], [], [], [], []
    start = 0
    for r in results:
        n = len(r.index)
        main_rows: list[pd.DataFrame] = []

        def values_of(name: str, r=r, main_rows=main_rows) -> np.ndarray | None:
            if name in r.frame.columns:
                return r.frame[name].to_numpy()
            if name not in main.columns:
                return None
            if not main_rows:
                main_rows.append(main if r.frame is main else main.reindex(r.index))
            return main_rows[0][name].to_numpy()

        p = np.asarray(r.probability, dtype=float)
        band = bands_of(p, config)
        reasons = reason_columns(r.names, r.idx, r.val, values_of, sc.reason_templates, labels | r.labels)
        lap("reasons")
        names = np.array([*r.names, None], dtype=object)
        picked = names[np.where(reasons.idx >= 0, reasons.idx, len(r.names))]
        actions.append(choose_actions(config, task_name, bands=band, segment=r.segment, reason_features=picked,
                                      values_of=values_of))
        lap("actions")
        ids.append(r.index.astype(str).to_numpy(dtype=object))
        probs.append(p)
        bands.append(band)
        parts.append(reasons)
        blocks.append(_Block(start, start + n, r.segment, r.model_name, r.model_version, r.mode, r.mode_reason))
        start += n
    if start != len(main):  # pragma: no cover - the ladder always produces a score
        raise AssertionError(f"{len(main)} entities but {start} scores")
    entity_id = np.concatenate(ids) if ids else np.zeros(0, dtype=object)
    action = np.concatenate(actions) if actions else np.zeros(0, dtype=object)
    holdout = holdout_mask(entity_id, action, sc.holdout_seed, sc.holdout_share)
    lap("holdout")
    columns = ScoreColumns(entity_id=entity_id, probability=np.concatenate(probs) if probs else np.zeros(0),
                           band=np.concatenate(bands) if bands else np.zeros(0, dtype=object), action=action,
                           action_holdout=holdout, reasons=concat_reasons(parts, k), blocks=blocks)
    lap("reasons")
    return ScoreBatch(task=task_name, as_of=t, entity_kind=task.entity, feature_set_version=ff.feature_set.version,
                      results=results, notes=notes, entities=len(main), columns=columns, run_id=run_id,
                      scored_at=scored, phases=phases)


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
    return store_batch(engine, add_next_steps(engine, config, batch), started=t0)


def with_next_steps(batch: ScoreBatch, steps) -> ScoreBatch:
    """``batch`` with each entity's stage and next-step probabilities from ``steps`` (a
    `journey_ml.journeys.next_step.CurrentSteps`; an entity it does not know gets None)."""
    c = batch.columns
    if c is None:
        return batch
    stage, code = steps.lookup(c.entity_id)
    return replace(batch, columns=replace(c, stage=stage, next_code=code, next_table=steps.distributions))


def add_next_steps(engine: Engine, config: JourneyConfig, batch: ScoreBatch) -> ScoreBatch:
    """``batch`` with every entity's predicted current stage and next-step probabilities,
    from the task's chain fitted once on the warehouse's journeys strictly before T. A
    failure leaves both empty and says why in the notes (the scores are written anyway)."""
    from journey_ml.journeys.current import next_steps_as_of

    t0 = time.perf_counter()
    try:
        out = with_next_steps(batch, next_steps_as_of(engine, config, batch.task, batch.as_of))
    except Exception as e:  # noqa: BLE001 - the next step is an addition to the score, not a reason to lose it
        log.warning("%s: next step not predicted (%s)", batch.task, one_line(e))
        out = replace(batch, notes=[*batch.notes, f"next step not predicted ({one_line(e)})"])
    return replace(out, phases={**batch.phases, "next_step": time.perf_counter() - t0})


def merge_batches(batches: list[ScoreBatch]) -> ScoreBatch:
    """One batch from the batches of one population's partitions (`partition_features`,
    `score_features`; same task, as-of and run): rows one partition after the other, each
    note once. Raises ValueError for batches of different tasks, as-of times or runs."""
    if not batches:
        raise ValueError("no batch to merge")
    first = batches[0]
    if len(batches) == 1:
        return first
    keys = {(b.task, b.as_of, b.run_id, b.feature_set_version) for b in batches}
    if len(keys) > 1:
        raise ValueError(f"batches of different runs cannot be merged: {sorted(map(str, keys))}")
    cols = [b.columns for b in batches if b.columns is not None and b.entities]
    blocks, start = [], 0
    for c in cols:
        for b in c.blocks:
            blocks.append(replace(b, start=b.start + start, stop=b.stop + start))
        start += len(c.entity_id)
    k = first.columns.reasons.idx.shape[1] if first.columns is not None else 0

    def cat(attr: str) -> np.ndarray:
        arrs = [getattr(c, attr) for c in cols]
        return np.concatenate(arrs) if arrs else getattr(first.columns, attr)[:0]

    columns = first.columns if not cols else ScoreColumns(
        entity_id=cat("entity_id"), probability=cat("probability"), band=cat("band"), action=cat("action"),
        action_holdout=cat("action_holdout"), reasons=concat_reasons([c.reasons for c in cols], k), blocks=blocks)
    phases: dict[str, float] = {}
    for b in batches:
        for name, secs in b.phases.items():
            phases[name] = phases.get(name, 0.0) + secs
    return replace(first, results=[r for b in batches for r in b.results],
                   notes=list(dict.fromkeys(n for b in batches for n in b.notes)),
                   entities=sum(b.entities for b in batches), columns=columns, phases=phases)


def _segment_runs(results: list[SegmentScores]) -> list[SegmentRun]:
    """One SegmentRun per segment and ladder step (partitions scored alike are one run)."""
    runs: dict[tuple, SegmentRun] = {}
    for r in results:
        key = (r.segment, r.mode, r.model_name, r.model_version, r.mode_reason, tuple(r.skipped))
        if key in runs:
            runs[key].entities += len(r.index)
        else:
            runs[key] = SegmentRun(r.segment, len(r.index), r.mode, r.model_name, r.model_version, r.mode_reason,
                                   list(r.skipped))
    return sorted(runs.values(), key=lambda s: s.segment)


def store_batch(engine: Engine, batch: ScoreBatch, *, started: float | None = None) -> ScoreRunResult:
    """Write ``batch`` (replacing the (task, as_of) rows of ``scores`` in one transaction)
    and say what was written. ``started``: the `time.perf_counter` the run began at."""
    t0 = time.perf_counter() if started is None else started
    t1 = time.perf_counter()
    written = _write(engine, batch)
    phases = {**batch.phases, "write": time.perf_counter() - t1}
    c = batch.columns
    modes = Counter()
    for b in c.blocks:
        modes[b.mode] += b.stop - b.start
    bands = Counter(c.band.tolist())
    holdouts = int(c.action_holdout.sum())
    runs = _segment_runs(batch.results)
    fallbacks = [f"{r.segment}: {s}" for r in runs for s in r.fallback_steps]
    result = ScoreRunResult(
        task=batch.task, as_of=batch.as_of, run_id=batch.run_id, scored_at=_utc(batch.scored_at, "scored_at"),
        entities=batch.entities, rows_written=written, seconds=time.perf_counter() - t0,
        feature_set_version=batch.feature_set_version,
        modes={m: modes[m] for m in MODES if modes[m]}, bands=dict(sorted(bands.items())),
        segments=runs, fallbacks=fallbacks, holdout=holdouts, notes=batch.notes, phases=phases)
    log.info("scored %s as of %s: %d entities in %.1fs (%s)", batch.task, batch.as_of.isoformat(), result.entities,
             result.seconds, result.modes)
    if modes.get(BUILTIN_RULES):
        log.warning("%s: %d entities scored by built-in rules", batch.task, modes[BUILTIN_RULES])
    return result


__all__ = ["ScoreRunResult", "SegmentRun", "ScoreBatch", "ScoreColumns", "compute_scores", "bands_of", "score_task",
           "band_of", "rules_hash", "population_features", "partition_features", "score_features", "merge_batches",
           "store_batch", "add_next_steps", "with_next_steps"]
