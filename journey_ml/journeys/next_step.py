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
        status = j.table["status"].to_numpy()
        counts: dict[tuple[int, ...], np.ndarray] = {}
        for seq, st in self._sequences(j, status):
            targets = list(seq[1:])
            if st == "converted":
                targets.append(k)
            elif st == "exited":
                targets.append(k + 1)
            for i, y in enumerate(targets):
                for o in range(self.order + 1):
                    if o > i + 1:
                        break
                    ctx = tuple(seq[i + 1 - o:i + 1])
                    counts.setdefault(ctx, np.zeros(c))[y] += 1
        self.counts_ = counts
        at = j.steps["at"].to_numpy(np.int64)
        code = j.steps["code"].to_numpy()
        _, stop = j.bounds()
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


def predict_current(model: NextStepModel, j: Journeys) -> pd.DataFrame:
    """For every ongoing journey at T: its last step, the most likely next step with its
    probability, each next step's probability (columns ``p_<class>``), and its predicted
    current stage: the next step when the journey has been silent for longer than the
    median time spent at its last step, else the last step."""
    model._check()
    ongoing = np.flatnonzero(j.table["status"].to_numpy() == "ongoing")
    code = j.steps["code"].to_numpy()
    first, stop = j.bounds()
    as_of_ns = pd.Timestamp(j.as_of).value
    at = j.steps["at"].to_numpy(np.int64)
    rows = []
    for i in ongoing:
        seq = code[first[i]:stop[i]].tolist()
        p = model.proba_codes(seq)
        last = j.labels[seq[-1]]
        top = int(np.argmax(p[:len(j.labels)])) if len(j.labels) else 0
        silent_h = (as_of_ns - at[stop[i] - 1]) / 3.6e12
        dwell = model.dwell_hours_.get(last, math.inf)
        rows.append({"entity_id": j.table["entity_id"].iat[i], "last_step": last,
                     "next_step": model.classes_[int(np.argmax(p))], "next_probability": float(p.max()),
                     "predicted_current": j.labels[top] if silent_h > dwell else last,
                     "hours_silent": silent_h,
                     **{f"p_{c}": float(v) for c, v in zip(model.classes_, p, strict=True)}})
    return pd.DataFrame(rows)


__all__ = ["NextStepModel", "NextStepAccuracy", "evaluate_next_step", "predict_current"]
