"""Next-step prediction: a Markov chain of configurable order over journey steps.

`NextStepModel.fit(journeys)` counts, for every context (the last ``order`` steps, shorter
at a journey's start), what came next: a step, ``(conversion)`` or ``(exit)`` (ongoing
journeys' last step has no observed next and is not counted). Probabilities back off
smoothly to shorter contexts: P_k(x | c) = (n(c, x) + beta * P_{k-1}(x | c')) / (n(c) + beta),
down to order 0 with add-one smoothing, so an unseen context still gets a distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from journey_ml.journeys.sessions import CONVERSION, EXIT, Journeys


@dataclass
class NextStepModel:
    """scikit-learn style: parameters in ``__init__``, ``fit`` returns self, fitted
    attributes end in ``_``."""

    order: int = 2
    beta: float = 1.0
    classes_: tuple[str, ...] = field(default=(), init=False)
    counts_: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict, init=False, repr=False)
    dwell_hours_: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def fit(self, j: Journeys) -> NextStepModel:
        if self.order < 0:
            raise ValueError(f"order must be >= 0, got {self.order}")
        k = len(j.labels)
        self.classes_ = (*j.labels, CONVERSION, EXIT)
        c = len(self.classes_)
        code = j.steps["code"].to_numpy(np.int64)
        pos = j.steps["pos"].to_numpy(np.int64)
        first, stop = j.bounds()
        # the target of each step: the next step of its journey, or at the last step the
        # journey's end (conversion / exit; an ongoing journey's last step has none yet)
        y = np.empty(code.size, np.int64)
        y[:-1] = code[1:]
        status = j.table["status"].to_numpy()
        y[stop - 1] = np.where(status == "converted", k, np.where(status == "exited", k + 1, -1))
        has = y >= 0
        base = max(k, 1)
        counts: dict[tuple[int, ...], np.ndarray] = {}
        key = np.zeros(code.size, np.int64)  # the context of the last o steps, as one integer
        for o in range(self.order + 1):
            if o:
                key = key * base + np.where(pos >= o - 1, np.roll(code, o - 1), 0)
            rows = has & (pos >= o - 1)
            if not rows.any():
                break
            pair, n = np.unique(key[rows] * c + y[rows], return_counts=True)
            ctx, target = np.divmod(pair, c)  # sorted by context
            uniq, start = np.unique(ctx, return_index=True)
            table = np.zeros((uniq.size, c))
            table[np.repeat(np.arange(uniq.size), np.diff(np.append(start, ctx.size))), target] = n
            for kv, arr in zip(uniq.tolist(), table, strict=True):
                counts[tuple(kv // base ** i % base for i in range(o))] = arr
        self.counts_ = counts
        at = j.steps["at"].to_numpy(np.int64)
        nxt = np.ones(code.size, bool)
        nxt[stop - 1] = False
        idx = np.flatnonzero(nxt)
        med = pd.Series((at[idx + 1] - at[idx]) / 3.6e12).groupby(code[idx]).median()
        self.dwell_hours_ = {j.labels[i]: float(v) for i, v in med.items()}
        return self

    @staticmethod
    def _sequences(j: Journeys, status: np.ndarray):
        code = j.steps["code"].to_numpy()
        first, stop = j.bounds()
        for i in range(j.n):
            yield code[first[i]:stop[i]].tolist(), status[i]

    def _check(self) -> None:
        if not self.classes_:
            raise ValueError("the model is not fitted yet (call fit)")

    def proba_codes(self, prefix: list[int]) -> np.ndarray:
        """P(next class) after a prefix of step codes (the model's own coding)."""
        self._check()
        c = len(self.classes_)
        base = self.counts_.get((), np.zeros(c))
        p = (base + 1.0) / (base.sum() + c)
        for o in range(1, min(self.order, len(prefix)) + 1):
            n = self.counts_.get(tuple(prefix[-o:]))
            if n is None:
                break
            p = (n + self.beta * p) / (n.sum() + self.beta)
        return p

    def predict_proba(self, prefix: list[str]) -> dict[str, float]:
        """P(next step) for a journey so far given by its step names (unknown names are
        treated as unseen contexts)."""
        self._check()
        idx = {n: i for i, n in enumerate(self.classes_)}
        codes = [idx.get(s, -1) for s in prefix]
        return dict(zip(self.classes_, self.proba_codes(codes).tolist(), strict=True))


@dataclass(frozen=True)
class NextStepAccuracy:
    order: int
    predictions: int
    top1: float
    log_loss: float
    baseline_top1: float  # order 0: always the overall most common next step
    baseline_log_loss: float
    train_journeys: int
    test_journeys: int


def _score(model: NextStepModel, j: Journeys) -> tuple[int, float, float]:
    k = len(j.labels)
    status = j.table["status"].to_numpy()
    n, hits, loss = 0, 0, 0.0
    for seq, st in NextStepModel._sequences(j, status):
        targets = list(seq[1:]) + ([k] if st == "converted" else [k + 1] if st == "exited" else [])
        for i, y in enumerate(targets):
            p = model.proba_codes(seq[:i + 1])
            n += 1
            hits += int(np.argmax(p) == y)
            loss -= math.log(max(p[y], 1e-15))
    return n, hits / n if n else math.nan, loss / n if n else math.nan


def evaluate_next_step(j: Journeys, order: int = 2, holdout_share: float = 0.2, seed: int = 7) -> NextStepAccuracy:
    """Fit on a seeded share of the journeys (split by entity, so one entity's journeys
    stay together) and score every next step of the held-out ones: top-1 accuracy and log
    loss, beside the order-0 baseline fitted on the same training journeys."""
    ents = j.table["entity_id"].astype(str).to_numpy()
    uniq, inv = np.unique(ents, return_inverse=True)
    held = np.random.default_rng(seed).random(uniq.size) < holdout_share
    test = held[inv]
    if test.all() or not test.any():
        raise ValueError(f"{j.n} journeys of {uniq.size} entities are too few to hold out {holdout_share:.0%}")
    train_j, test_j = j.subset(~test), j.subset(test)
    # the same label coding on both sides: subset keeps the labels
    m = NextStepModel(order=order).fit(train_j)
    b = NextStepModel(order=0).fit(train_j)
    n, top1, ll = _score(m, test_j)
    _, btop1, bll = _score(b, test_j)
    return NextStepAccuracy(order, n, top1, ll, btop1, bll, train_j.n, test_j.n)


def _step_labels(model: NextStepModel) -> tuple[str, ...]:
    return model.classes_[:-2]  # the steps (then conversion, exit)


def _context_proba(model: NextStepModel, j: Journeys, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(next class) after the steps so far of journeys ``rows``: (one row per distinct
    context, the context of each journey). A distribution depends only on the last
    ``order`` steps, so it is computed once per distinct context, not once per journey."""
    steps = _step_labels(model)
    if tuple(j.labels[:len(steps)]) != steps:
        raise ValueError("the journeys are coded differently from the chain (cut them with labels= its steps)")
    code = j.steps["code"].to_numpy(np.int64)
    first, stop = j.bounds()
    ctx = np.full((rows.size, model.order), -1, np.int64)  # last step first; -1 = before the start
    for o in range(model.order):
        at = stop[rows] - 1 - o
        ok = at >= first[rows]
        ctx[ok, o] = code[at[ok]]
    uniq, inverse = np.unique(ctx, axis=0, return_inverse=True)
    proba = np.array([model.proba_codes([int(v) for v in u[::-1] if v >= 0]) for u in uniq]).reshape(
        len(uniq), len(model.classes_))
    return proba, inverse.reshape(-1)


def _current_stage(model: NextStepModel, j: Journeys, rows: np.ndarray, proba: np.ndarray) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """(last step, predicted current stage, hours silent at T) of journeys ``rows`` whose
    next-class probabilities are ``proba``: the most likely next step when the journey has
    been silent for longer than the median time spent at its last step, else the last step."""
    names = np.asarray(j.labels, dtype=object)
    code = j.steps["code"].to_numpy(np.int64)
    at = j.steps["at"].to_numpy(np.int64)
    _, stop = j.bounds()
    last_code = code[stop[rows] - 1]
    last = names[last_code]
    steps = np.asarray(_step_labels(model), dtype=object)
    top = steps[np.argmax(proba[:, :steps.size], axis=1)] if steps.size else last
    silent_h = (pd.Timestamp(j.as_of).value - at[stop[rows] - 1]) / 3.6e12
    dwell = np.array([model.dwell_hours_.get(n, math.inf) for n in names])[last_code] if rows.size else \
        np.zeros(0)
    return last, np.where(silent_h > dwell, top, last), silent_h


def predict_current(model: NextStepModel, j: Journeys) -> pd.DataFrame:
    """For every ongoing journey at T: its last step, the most likely next step with its
    probability, each next step's probability (columns ``p_<class>``), and its predicted
    current stage: the next step when the journey has been silent for longer than the
    median time spent at its last step, else the last step."""
    model._check()
    ongoing = np.flatnonzero(j.table["status"].to_numpy() == "ongoing")
    cols = ["entity_id", "last_step", "next_step", "next_probability", "predicted_current", "hours_silent",
            *(f"p_{c}" for c in model.classes_)]
    if not ongoing.size:
        return pd.DataFrame(columns=cols)
    proba, inverse = _context_proba(model, j, ongoing)
    p = proba[inverse]
    last, current, silent_h = _current_stage(model, j, ongoing, p)
    classes = np.asarray(model.classes_, dtype=object)
    return pd.DataFrame({"entity_id": j.table["entity_id"].to_numpy()[ongoing], "last_step": last,
                         "next_step": classes[np.argmax(p, axis=1)], "next_probability": p.max(axis=1),
                         "predicted_current": current, "hours_silent": silent_h,
                         **{f"p_{c}": p[:, i] for i, c in enumerate(model.classes_)}})


@dataclass(frozen=True)
class CurrentSteps:
    """Where each entity's latest journey stands at T (what a score stores beside it).

    ``stage``: the predicted current stage when the journey is ongoing (see
    `predict_current`), else the step it ended at. ``dist``: index into ``distributions``
    ({next step: p}, each next stage plus ``(conversion)`` and ``(exit)``), -1 when the
    journey has ended (converted, or silent for the whole gap): it has no next step.
    """

    entity_id: np.ndarray  # (n,) str
    stage: np.ndarray  # (n,) object
    dist: np.ndarray  # (n,) int64
    distributions: tuple[dict[str, float], ...]

    def lookup(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(stage, dist) of each id in ``ids`` (None / -1 for an entity without a journey)."""
        at = pd.Index(self.entity_id).get_indexer(np.asarray(ids, dtype=object).astype(str))
        found = at >= 0
        stage = np.full(at.size, None, dtype=object)
        dist = np.full(at.size, -1, np.int64)
        stage[found] = self.stage[at[found]]
        dist[found] = self.dist[at[found]]
        return stage, dist

    def of(self, entity_id: str) -> tuple[str | None, dict[str, float] | None]:
        """(stage, {next step: p} or None) of one entity."""
        stage, dist = self.lookup([entity_id])
        return stage[0], (dict(self.distributions[dist[0]]) if dist[0] >= 0 else None)


def current_steps(model: NextStepModel, j: Journeys) -> CurrentSteps:
    """Each entity's latest journey in ``j`` (cut with the chain's step labels first, as
    `sessionise(labels=...)` does): its predicted current stage and, while it is ongoing,
    the probability of each next step under ``model``. Raises ValueError when ``model`` is
    not fitted or ``j`` is coded differently."""
    model._check()
    if not j.n:
        return CurrentSteps(np.zeros(0, object), np.zeros(0, object), np.zeros(0, np.int64), ())
    ent = j.table["entity_id"].to_numpy(dtype=object).astype(str)
    start = j.table["start"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    order = np.lexsort((np.arange(j.n), start, ent))
    latest = order[np.r_[ent[order][1:] != ent[order][:-1], True]]  # each entity's last journey
    ongoing = j.table["status"].to_numpy()[latest] == "ongoing"
    names = np.asarray(j.labels, dtype=object)
    _, stop = j.bounds()
    stage = names[j.steps["code"].to_numpy(np.int64)[stop[latest] - 1]].astype(object)
    dist = np.full(latest.size, -1, np.int64)
    distributions: tuple[dict[str, float], ...] = ()
    if ongoing.any():
        rows = latest[ongoing]
        proba, inverse = _context_proba(model, j, rows)
        stage[ongoing] = _current_stage(model, j, rows, proba[inverse])[1]
        dist[ongoing] = inverse
        distributions = tuple(dict(zip(model.classes_, map(float, p), strict=True)) for p in proba)
    return CurrentSteps(ent[latest], stage, dist, distributions)


__all__ = ["NextStepModel", "NextStepAccuracy", "CurrentSteps", "current_steps", "evaluate_next_step",
           "predict_current"]
