"""The fallback ladder: a score for every entity, whatever state the registry is in.

For each segment, in order:

1. ``segment_model``  the segment's ``@production`` model (skipped for the pooled segment);
2. ``global_model``   the pooled ``global`` model's ``@production``;
3. ``rules_model``    the registered rules version (tag ``journey.rules_hash``: the current
                      rules first, then any), of the segment, then of the global model;
4. ``builtin_rules``  the task's ``rules:`` with a fixed logistic mapping (no registry), or a
                      constant base rate when the task has no rules.

A step is skipped when the model is missing (no model / no alias), does not load
(CorruptModel or any error), does not fit the features (SchemaMismatch) or fails to score.
A ``production`` alias on a rules version means monitoring has engaged the fallback: that
segment is scored by it with mode ``rules_model``. When the registry itself cannot be
reached (any error from a registry read), every segment goes straight to built-in rules.
Each result names its mode and why (``mode_reason``), and every skipped step's reason.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journey_ml.config import JourneyConfig
from journey_ml.features.spec import FeatureSet, feature_set_key
from journey_ml.models.scorer import check_input
from journey_ml.registry._types import model_name
from journey_ml.scoring.builtin_rules import builtin_scorer
from journey_ml.segments import GLOBAL

log = logging.getLogger(__name__)

RULES_HASH_TAG = "journey.rules_hash"
SEGMENT_MODEL, GLOBAL_MODEL, RULES_MODEL, BUILTIN_RULES = "segment_model", "global_model", "rules_model", "builtin_rules"
MODES = (SEGMENT_MODEL, GLOBAL_MODEL, RULES_MODEL, BUILTIN_RULES)
RULES_ENGAGED = "production is the rules model (fallback engaged)"


def one_line(e: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


class RegistryUnreachable(RuntimeError):
    """A registry read failed: the whole run scores with built-in rules."""


@dataclass
class Model:
    """A loaded, verified model version (what the cache holds)."""

    name: str
    version: int
    kind: str | None
    scorer: Any
    feature_set: dict | None  # the version's stored feature_set.json (None for rules versions)

    @functools.cached_property
    def features(self) -> FeatureSet | None:
        """``feature_set`` as a FeatureSet, parsed once per loaded model (not per request).
        Raises ValueError on a malformed one."""
        return FeatureSet.from_dict(self.feature_set) if self.feature_set else None

    @functools.cached_property
    def feature_set_key(self) -> str | None:
        """``feature_set`` as the JSON text `compute_scores` files feature frames under."""
        return feature_set_key(self.feature_set) if self.feature_set else None


class ModelCache:
    """Loaded models keyed by (tracking URI, name, version); a small thread-safe LRU.
    ``threads``: the prediction threads of every model loaded (None: as trained)."""

    def __init__(self, size: int = 32, threads: int | None = None):
        self.size = size
        self.threads = threads
        self._items: OrderedDict[tuple, Model] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, registry, task: str, segment: str, version: int, kind: str | None) -> Model:
        key = (getattr(registry, "tracking_uri", id(registry)), model_name(task, segment), int(version))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        loaded = registry.load(task, segment, version=int(version))
        fs = None
        try:
            fs = getattr(loaded.pyfunc.unwrap_python_model(), "feature_set", None)
        except Exception:  # noqa: BLE001 - a model without a stored feature set scores the main frame
            fs = None
        prepare = getattr(loaded.scorer, "prepare_explanations", None)
        if callable(prepare):  # the XGBoost scorer's TreeSHAP tables, before the first request
            prepare()
        if self.threads is not None and callable(getattr(loaded.scorer, "set_threads", None)):
            loaded.scorer.set_threads(self.threads)
        m = Model(name=loaded.info.name, version=int(loaded.info.version),
                  kind=loaded.info.kind or getattr(loaded.scorer, "kind", None), scorer=loaded.scorer,
                  feature_set=fs)
        with self._lock:
            self._items[key] = m
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return m

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


MODEL_CACHE = ModelCache()


def clear_model_cache() -> None:
    """Forget every loaded model (e.g. after an artifact store was repaired)."""
    MODEL_CACHE.clear()


@dataclass
class Explained:
    """Probabilities and top contributions of n rows, column-wise."""

    probability: np.ndarray  # (n,)
    names: list[str]  # feature names indexed by ``idx``
    idx: np.ndarray  # (n, k) int, -1 = empty slot (e.g. fewer rules fired)
    val: np.ndarray  # (n, k) signed contribution (SHAP value or rule points)


@dataclass
class SegmentScores:
    """The scores of one segment's rows and how they were produced."""

    segment: str
    index: pd.Index
    probability: np.ndarray
    names: list[str]  # feature names indexed by ``idx``
    idx: np.ndarray  # (n, k) the top reasons' feature indices, -1 = none
    val: np.ndarray  # (n, k) their signed contributions
    frame: pd.DataFrame  # the feature values the scorer saw (for reason values)
    labels: dict[str, str]
    mode: str
    model_name: str | None
    model_version: int | None
    mode_reason: str
    skipped: list[str] = field(default_factory=list)  # reason of every step not taken

    @property
    def explanations(self) -> list[list[tuple[str, float]]]:
        """Per row: [(feature, contribution), ...] (the list form of ``idx``/``val``)."""
        return [[(self.names[j], float(v)) for j, v in zip(i, c, strict=True) if j >= 0]
                for i, c in zip(self.idx.tolist(), self.val.tolist(), strict=True)]


def score_and_explain(scorer, X: pd.DataFrame, top_k: int) -> Explained:
    """P(outcome) and the top-``top_k`` contributions of every row, from any Scorer.

    Uses the scorer's one-pass ``score_explain`` or column-wise ``explain_matrix`` when it
    has them, else ``predict_proba`` + ``explain``.
    """
    from journey_ml.scoring.reasons import order_reasons

    if hasattr(scorer, "score_explain"):
        p, idx, val = scorer.score_explain(X, top_k)
        return Explained(np.asarray(p, dtype=float), list(scorer.feature_names), idx, val)
    p = np.asarray(scorer.predict_proba(X), dtype=float)
    if hasattr(scorer, "explain_matrix"):
        idx, val = scorer.explain_matrix(X, top_k)
        return Explained(p, list(scorer.feature_names), idx, val)
    expl = scorer.explain(X, top_k=top_k)
    names = list(dict.fromkeys([*getattr(scorer, "feature_names", []), *(f for r in expl for f, _ in r)]))
    pos = {n: i for i, n in enumerate(names)}
    idx = np.full((len(expl), top_k), -1, dtype=np.int32)
    val = np.zeros((len(expl), top_k))
    for i, r in enumerate(expl):
        for s, (f, c) in enumerate(r[:top_k]):
            idx[i, s], val[i, s] = pos[f], float(c)
    idx, val = order_reasons(idx, val)
    return Explained(p, names, idx, val)


class _RegistryReader:
    """Registry reads with one failure switch: the first error marks the registry unreachable."""

    def __init__(self, registry):
        self.registry = registry
        self.down: str | None = None

    def call(self, fn: str, *args, **kwargs):
        if self.down is not None:
            raise RegistryUnreachable(self.down)
        if self.registry is None:
            self.down = "registry unreachable: no registry configured"
            raise RegistryUnreachable(self.down)
        try:
            return getattr(self.registry, fn)(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any failure to read the registry
            self.down = f"registry unreachable ({one_line(e)})"
            log.warning("%s: scoring with built-in rules", self.down)
            raise RegistryUnreachable(self.down) from e


class UnreachableRegistry:
    """Stands in for a registry that could not even be constructed: every call raises its error."""

    tracking_uri = "unreachable://"

    def __init__(self, error: BaseException):
        self.error = error

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise self.error
        return fail


def open_registry(factory: Callable[[], Any]):
    """``factory()`` (e.g. ``lambda: runtime.registry``), or an UnreachableRegistry holding
    the error it raised, so that scoring degrades to built-in rules instead of failing."""
    try:
        return factory()
    except Exception as e:  # noqa: BLE001 - a bad tracking URI must not stop scoring
        log.warning("model registry unavailable (%s): scoring falls back to built-in rules", one_line(e))
        return UnreachableRegistry(e)


# (a stored feature set or None for the main one, optionally its JSON key) -> (frame, labels)
FrameFor = Callable[..., tuple[pd.DataFrame, dict[str, str]]]


def _rows(frame: pd.DataFrame, rows: pd.Index) -> pd.DataFrame:
    if len(rows) == len(frame) and rows.equals(frame.index):
        return frame
    return frame.loc[rows]


def _try(model: Model, rows: pd.Index, frame_for: FrameFor, top_k: int):
    frame, labels = frame_for(model.feature_set, model.feature_set_key)
    sub = _rows(frame, rows)
    X = check_input(model.scorer, sub)
    e = score_and_explain(model.scorer, X, top_k)
    p = e.probability
    if p.shape != (len(rows),) or not np.isfinite(p).all():
        raise ValueError(f"scorer returned {p.shape} values (non-finite: {int((~np.isfinite(p)).sum())}) "
                         f"for {len(rows)} rows")
    e.probability = np.clip(p, 0.0, 1.0)
    return e, sub, labels


def score_segment(reader: _RegistryReader, config: JourneyConfig, task: str, segment: str, rows: pd.Index,
                  frame_for: FrameFor, cache: ModelCache, rules_hash: str | None, top_k: int) -> SegmentScores:
    """Walk the ladder for one segment's rows; never raises for a model problem."""
    skipped: list[str] = []

    def done(model: Model, mode: str, why: str, result) -> SegmentScores:
        e, frame, labels = result
        return SegmentScores(segment, rows, e.probability, e.names, e.idx, e.val, frame, labels, mode, model.name,
                             model.version, why, skipped)

    def attempt(seg: str, version: int, kind: str | None, what: str):
        """(model, result) or None with the reason appended to ``skipped``."""
        name = model_name(task, seg)
        try:
            model = cache.get(reader.registry, task, seg, version, kind)
        except RegistryUnreachable:
            raise
        except Exception as e:  # noqa: BLE001 - CorruptModel, ModelNotFound, unpickling errors...
            skipped.append(f"{what} {name} v{version} failed to load ({one_line(e)})")
            return None
        try:
            return model, _try(model, rows, frame_for, top_k)
        except Exception as e:  # noqa: BLE001 - SchemaMismatch or a failing scorer
            skipped.append(f"{what} {name} v{version} cannot score these features ({one_line(e)})")
            return None

    def via(model: Model) -> str:
        return f"scored by {model.name} v{model.version}"

    def because(model: Model) -> str:
        return "; ".join([*skipped, via(model)]) if skipped else f"{model.name} v{model.version} @production"

    try:
        # 1 and 2: the segment's production model, then the global one
        steps = [(segment, SEGMENT_MODEL)] if segment != GLOBAL else []
        steps.append((GLOBAL, GLOBAL_MODEL))
        for seg, mode in steps:
            name = model_name(task, seg)
            info = reader.call("production", task, seg)
            if info is None:
                skipped.append(f"no production model for {name}")
                continue
            rules = info.kind == "rules"
            got = attempt(seg, info.version, info.kind, "production")
            if got is None:
                continue
            model, result = got
            if rules:
                why = f"{name} v{info.version}: {RULES_ENGAGED}"
                return done(model, RULES_MODEL, "; ".join([*skipped, why]), result)
            return done(model, mode, because(model), result)
        # 3: the registered rules version (current rules first, then any)
        tried: set[tuple[str, int]] = set()
        for seg in dict.fromkeys([segment, GLOBAL]):
            for tags in ([{RULES_HASH_TAG: rules_hash}] if rules_hash else []) + [{RULES_HASH_TAG: None}]:
                info = reader.call("find_version", task, seg, tags)
                if info is None or (seg, info.version) in tried:
                    continue
                tried.add((seg, info.version))
                got = attempt(seg, info.version, info.kind, "registered rules")
                if got is not None:
                    model, result = got
                    return done(model, RULES_MODEL,
                                "; ".join([*skipped, f"scored by the registered rules {model.name} v{model.version}"]),
                                result)
        if not tried:
            skipped.append(f"no registered rules version for {model_name(task, segment)} or the global model")
    except RegistryUnreachable as e:
        skipped.append(str(e))
    # 4: built-in rules, no registry
    scorer, what = builtin_scorer(config, task)
    frame, labels = frame_for(None)
    X = _rows(frame, rows)
    e = score_and_explain(scorer, X, top_k)
    return SegmentScores(segment, rows, e.probability, e.names, e.idx, e.val, X, labels, BUILTIN_RULES, None, None,
                         "; ".join([*skipped, f"scored by {what}"]), skipped)


__all__ = ["MODES", "SEGMENT_MODEL", "GLOBAL_MODEL", "RULES_MODEL", "BUILTIN_RULES", "RULES_ENGAGED",
           "ModelCache", "MODEL_CACHE", "clear_model_cache", "SegmentScores", "Explained", "score_and_explain", "RegistryUnreachable",
           "score_segment", "one_line", "open_registry", "UnreachableRegistry"]
