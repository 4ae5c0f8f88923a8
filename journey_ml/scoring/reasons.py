"""Seller-readable reasons: (feature, value, contribution) -> a sentence.

XGBoost scores are explained by their per-row TreeSHAP contributions (log-odds), rule
scores by the rules that fired (their points). Each feature is turned into text through
``config.scoring.reason_templates``: the exact feature name first, then the first pattern
with ``*`` (fnmatch, in configuration order) that matches. ``{value}`` is the feature's
value and ``{label}`` its label from the feature set; the signed contribution is appended:
``visited the pricing page 4 times in the last 30 days (+0.21)``. A template that does
not format (a text value under ``{value:.0f}``, an unknown placeholder...) falls back to
``{label}: {value}``; reasons never make scoring fail.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

FALLBACK_TEMPLATE = "{label}: {value}"


def template_for(feature: str, templates: Mapping[str, str]) -> str | None:
    """The template of ``feature``: exact name, else the first matching ``*`` pattern."""
    if feature in templates:
        return templates[feature]
    for pattern, text in templates.items():
        if "*" in pattern and fnmatchcase(feature, pattern):
            return text
    return None


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        with contextlib.suppress(ValueError, AttributeError):
            value = value.item()
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _missing_body(feature: str, label: str) -> str:
    # a missing value means "never happened" for recency, "none" otherwise; no template
    # is written for it, and "nan" must never reach a seller
    return f"{label}: {'never' if feature.startswith(('days_since', 'stage_')) else 'none'}"


def _format_body(tmpl: str, feature: str, label: str, value: Any) -> str:
    """``tmpl`` with a present, display-ready value (see `reason_body`)."""
    try:
        return tmpl.format(value=value, label=label, feature=feature)
    except Exception:  # noqa: BLE001 - a bad template must never stop scoring
        return FALLBACK_TEMPLATE.format(value=value, label=label)


def reason_body(feature: str, value: Any, templates: Mapping[str, str], label: str | None = None) -> str:
    """The sentence of one reason without its contribution (see `reason_text`)."""
    value = _plain(value)
    label = label or feature.replace("_", " ")
    if _missing(value):
        return _missing_body(feature, label)
    return _format_body(template_for(feature, templates) or FALLBACK_TEMPLATE, feature, label, _display(value))


def _display(value: Any) -> Any:
    """Non-integers of magnitude >= 1 are shown rounded (a seller reads 14, not 14.5)."""
    if isinstance(value, float) and math.isfinite(value) and not value.is_integer() and abs(value) >= 1:
        return round(value)
    return value


def reason_text(feature: str, value: Any, contribution: float, templates: Mapping[str, str],
                label: str | None = None) -> str:
    """The sentence of one reason, with the signed contribution appended."""
    return f"{reason_body(feature, value, templates, label)} ({contribution:+.2f})"


def top_contributions(pairs: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    """The ``k`` largest |contribution|, then ordered positive (towards the outcome) first."""
    ranked = sorted(pairs, key=lambda fc: -abs(fc[1]))[:k]
    return sorted(ranked, key=lambda fc: (fc[1] <= 0, -abs(fc[1])))


def build_reasons(pairs: list[tuple[str, float]], row: Mapping[str, Any], templates: Mapping[str, str],
                  labels: Mapping[str, str], k: int) -> list[dict[str, Any]]:
    """JSON-ready reasons of one row: [{feature, value, contribution, text}, ...]."""
    out = []
    for feature, contribution in top_contributions(pairs, k):
        value = _plain(row.get(feature))
        c = float(contribution)
        out.append({
            "feature": feature,
            "value": None if _missing(value) else value,
            "contribution": round(c, 6),
            "text": reason_text(feature, value, c, templates, labels.get(feature)),
        })
    return out


# --- columnar (batch) path: the same reasons for many rows at once -------------------------


def order_reasons(idx: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's picks ordered as `top_contributions` does: positive first, then by -|c|;
    empty picks (idx -1) last. ``idx`` int (n, k), ``val`` float (n, k)."""
    idx = np.asarray(idx)
    val = np.asarray(val, dtype=np.float64)
    if idx.size == 0:
        return idx, val
    empty = idx < 0
    a = np.where(empty, -1.0, np.abs(val))
    o = np.argsort(-a, axis=1, kind="stable")
    group = np.where(empty, 2, np.where(val > 0, 0, 1))
    o = np.take_along_axis(o, np.argsort(np.take_along_axis(group, o, axis=1), axis=1, kind="stable"), axis=1)
    return np.take_along_axis(idx, o, axis=1), np.take_along_axis(val, o, axis=1)


def top_k_matrix(contrib: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest |contribution| per row of an (n, f) matrix: (feature index, value),
    ordered by `order_reasons`."""
    contrib = np.asarray(contrib)
    n, f = contrib.shape
    k = max(0, min(int(k), f))
    if k == 0 or n == 0:
        return np.zeros((n, k), dtype=np.int32), np.zeros((n, k))
    a = np.abs(contrib)
    if k <= 8:  # a few argmax passes beat a partition of every row
        idx = np.empty((n, k), dtype=np.intp)
        rows = np.arange(n)
        for s in range(k):
            idx[:, s] = j = a.argmax(axis=1)
            a[rows, j] = -1.0
    else:
        idx = np.argpartition(-a, k - 1, axis=1)[:, :k] if k < f else np.tile(np.arange(f), (n, 1))
    return order_reasons(idx.astype(np.int32), np.take_along_axis(contrib, idx, axis=1))


def explanation_lists(idx: np.ndarray, val: np.ndarray, names: list[str]) -> list[list[tuple[str, float]]]:
    """The row form of a (feature index, value) pick matrix: per row [(name, value), ...],
    empty slots (index -1) left out. What every scorer's ``explain`` returns."""
    return [[(names[j], float(v)) for j, v in zip(i, c, strict=True) if j >= 0]
            for i, c in zip(np.asarray(idx).tolist(), np.asarray(val).tolist(), strict=True)]


def fired_top_k(fired: np.ndarray, points: list[float], names: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rules explanations: per row the first ``k`` fired rules by (-|points|, name), as
    (rule index or -1, points), ordered by `order_reasons`."""
    fired = np.asarray(fired, dtype=bool)
    n = len(fired)
    k = max(0, int(k))
    idx = np.full((n, k), -1, dtype=np.int32)
    if k == 0 or fired.shape[1] == 0:
        return idx, np.zeros((n, k))
    order = np.array(sorted(range(len(names)), key=lambda j: (-abs(points[j]), names[j])), dtype=np.int32)
    f = fired[:, order]
    rank = np.cumsum(f, axis=1)
    for slot in range(min(k, f.shape[1])):
        hit = f & (rank == slot + 1)
        idx[:, slot] = np.where(hit.any(axis=1), order[hit.argmax(axis=1)], -1)
    pts = np.asarray(points, dtype=np.float64)
    return order_reasons(idx, np.where(idx >= 0, pts[np.maximum(idx, 0)], 0.0))


_SD = np.dtypes.StringDType()


def signed_2dp(c: np.ndarray) -> np.ndarray:
    """``f"{c:+.2f}"`` for every value (vectorised; values on a rounding edge use Python)."""
    c = np.asarray(c, dtype=np.float64).ravel()
    a = np.abs(c) * 100.0
    ok = np.isfinite(a) & (a < 1e12)
    cents = np.where(ok, np.rint(a), 0).astype(np.int64)
    key = cents * 2 + np.signbit(c)
    uniq, inv = np.unique(key, return_inverse=True)
    table = np.array([f"{'-' if u & 1 else '+'}{(u >> 1) // 100}.{(u >> 1) % 100:02d}" for u in uniq.tolist()],
                     dtype=_SD)
    out = table[inv.ravel()] if len(uniq) else np.array([], dtype=_SD)
    edge = ~ok | (np.abs(a - np.floor(a) - 0.5) < 1e-6)
    if edge.any():
        out[edge] = [f"{x:+.2f}" for x in c[edge].tolist()]
    return out


@dataclass
class ReasonColumns:
    """The reasons of n rows (k slots each, empty slots last): what `build_reasons` gives per
    row, held column-wise."""

    names: list[str]  # feature names indexed by ``idx``
    idx: np.ndarray  # (n, k) int, -1 = no reason in this slot
    value: np.ndarray  # (n, k) object: JSON-ready value (None when missing)
    value_json: np.ndarray  # (n, k) StringDType: the value as JSON
    contribution: np.ndarray  # (n, k) float, rounded to 6 decimals
    text: np.ndarray  # (n, k) StringDType ("" in empty slots)
    escape: bool = True  # whether a text may hold characters JSON escapes (quote, backslash, controls)

    def __len__(self) -> int:
        return len(self.idx)

    def row(self, i: int) -> list[dict[str, Any]]:
        """The JSON-ready reasons of row ``i`` (as `build_reasons` returns them)."""
        out = []
        for s in range(self.idx.shape[1]):
            j = int(self.idx[i, s])
            if j < 0:
                break
            out.append({"feature": self.names[j], "value": self.value[i, s],
                        "contribution": float(self.contribution[i, s]), "text": str(self.text[i, s])})
        return out

    def json(self, rows: slice | None = None) -> np.ndarray:
        """The reasons of each row (of ``rows``) as JSON text (object array of str)."""
        idx = self.idx[rows if rows is not None else slice(None)]
        sl = rows if rows is not None else slice(None)
        n, k = idx.shape
        out = np.empty(n, dtype=object)
        count = (idx >= 0).sum(axis=1)
        fpre = np.array([f'{{"feature": {json.dumps(m)}, "value": ' for m in self.names] + [""], dtype=object)
        text = self.text[sl]
        if self.escape:
            text = _json_escape(text)
        vj = self.value_json[sl]
        contribution = self.contribution[sl]
        for c in range(k + 1):
            sel = np.flatnonzero(count == c)
            if not len(sel):
                continue
            if c == 0:
                out[sel] = "[]"
                continue
            cols: list = [repeat("[")]
            for slot in range(c):
                cols += [repeat(", " if slot else ""), fpre[idx[sel, slot]].tolist(), vj[sel, slot].tolist(),
                         repeat(', "contribution": '), list(map(repr, contribution[sel, slot].tolist())),
                         repeat(', "text": "'), text[sel, slot].tolist(), repeat('"}')]
            cols.append(repeat("]"))
            out[sel] = list(map("".join, zip(*cols, strict=False)))
        return out


def _json_escape(text: np.ndarray) -> np.ndarray:
    """The inside of a JSON string for each text (backslash, quote and control characters)."""
    t = np.asarray(text, dtype=_SD)
    for a, b in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        if np.strings.find(t, a).max(initial=-1) >= 0:
            t = np.strings.replace(t, a, b)
    return t


def concat_reasons(parts: list[ReasonColumns], k: int) -> ReasonColumns:
    """One ReasonColumns from per-segment parts (feature indices remapped to one name list)."""
    names: list[str] = list(dict.fromkeys(n for p in parts for n in p.names))
    pos = {n: i for i, n in enumerate(names)}
    idx = []
    for p in parts:
        remap = np.array([pos[n] for n in p.names] + [-1], dtype=np.int32)
        pi = _pad(p.idx, k, -1)
        idx.append(remap[np.where(pi >= 0, pi, len(p.names))])

    def cat(attr: str, fill, dtype=None) -> np.ndarray:
        arrs = [_pad(getattr(p, attr), k, fill) for p in parts]
        if not arrs:
            return np.zeros((0, k), dtype=dtype or object)
        return arrs[0] if len(arrs) == 1 else np.concatenate(arrs, axis=0)

    return ReasonColumns(names, np.concatenate(idx, axis=0) if idx else np.zeros((0, k), dtype=np.int32),
                         cat("value", None), cat("value_json", "", _SD), cat("contribution", 0.0),
                         cat("text", "", _SD), any(p.escape for p in parts))


def _pad(a: np.ndarray, k: int, fill) -> np.ndarray:
    if a.shape[1] >= k:
        return a[:, :k]
    extra = np.full((a.shape[0], k - a.shape[1]), fill, dtype=a.dtype)
    return np.concatenate([a, extra], axis=1)


def _bodies(tmpl: str, feature: str, label: str, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(body, JSON value, JSON-ready value) of each value of one feature.

    Numeric values are formatted once per distinct display value (non-integers >= 1 in
    absolute value are shown rounded, as `reason_body` does); others once per distinct value.
    """
    n = len(v)
    body = np.full(n, _missing_body(feature, label), dtype=_SD)
    vjson = np.full(n, "null", dtype=_SD)
    plain = np.full(n, None, dtype=object)
    if v.dtype.kind == "f":
        x = v.astype(np.float64)
        present = ~np.isnan(x)
        rounded = present & np.isfinite(x) & (np.abs(x) >= 1) & (x != np.trunc(x))
        for mask, cast in ((rounded, int), (present & ~rounded, float)):
            if not mask.any():
                continue
            shown = np.round(x[mask]) if cast is int else x[mask]
            codes, uniques = pd.factorize(shown)
            table = np.array([_format_body(tmpl, feature, label, cast(u)) for u in uniques.tolist()], dtype=_SD)
            body[mask] = table[codes]
        vjson[present] = x[present].astype(_SD)
        plain[present] = x[present].tolist()
        return body, vjson, plain
    codes, uniques = pd.factorize(np.asarray(v, dtype=object), use_na_sentinel=True)
    shown = [_plain(u) for u in uniques]
    ok = codes >= 0
    if len(shown):
        table = np.array([_missing_body(feature, label) if _missing(u) else _format_body(tmpl, feature, label, _display(u))
                          for u in shown], dtype=_SD)
        body[ok] = table[codes[ok]]
        vj = np.array([json.dumps(None if _missing(u) else u, default=str) for u in shown], dtype=_SD)
        vjson[ok] = vj[codes[ok]]
        vals = np.array([None if _missing(u) else u for u in shown] + [None], dtype=object)
        plain[:] = vals[np.where(ok, codes, len(shown))]
    return body, vjson, plain


def reason_columns(names: list[str], idx: np.ndarray, val: np.ndarray,
                   values_of: Callable[[str], np.ndarray | None], templates: Mapping[str, str],
                   labels: Mapping[str, str]) -> ReasonColumns:
    """The reasons of n rows from their picks (``idx`` into ``names``, signed ``val``).

    ``values_of(feature)`` gives the feature's n values (None when the frame lacks it).
    Sentences are formatted once per distinct (feature, shown value) with the same rules
    as `reason_text`, so the texts are identical to it.
    """
    idx = np.asarray(idx, dtype=np.int32)
    n, k = idx.shape
    val = np.asarray(val, dtype=np.float64)
    value = np.full((n, k), None, dtype=object)
    value_json = np.full((n, k), "", dtype=_SD)
    text = np.full((n, k), "", dtype=_SD)
    flat = idx.ravel()
    picks = np.flatnonzero(flat >= 0)
    escape = False
    if len(picks):
        c2 = signed_2dp(val.ravel()[picks])
        order = np.argsort(flat[picks], kind="stable")
        feats, starts = np.unique(flat[picks[order]], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        vflat, jflat, tflat = value.ravel(), value_json.ravel(), text.ravel()
        for g, j in enumerate(feats.tolist()):
            sel = order[bounds[g]:bounds[g + 1]]
            pos = picks[sel]
            feature = names[j]
            label = labels.get(feature) or feature.replace("_", " ")
            column = values_of(feature)
            v = column[pos // k] if column is not None else np.full(len(pos), None, dtype=object)
            body, vj, plain = _bodies(template_for(feature, templates) or FALLBACK_TEMPLATE, feature, label, v)
            escape = escape or _needs_escape(np.unique(body).tolist())
            vflat[pos] = plain
            jflat[pos] = vj
            tflat[pos] = np.strings.add(np.strings.add(body, " ("), np.strings.add(c2[sel], ")"))
    contribution = np.where(idx >= 0, np.round(val, 6), 0.0)
    return ReasonColumns(list(names), idx, value, value_json, contribution, text, escape)


def _needs_escape(texts: list[str]) -> bool:
    joined = "".join(texts)
    return any(ch in joined for ch in '\\"') or any(ord(ch) < 32 for ch in set(joined))


__all__ = ["template_for", "reason_body", "reason_text", "top_contributions", "build_reasons", "FALLBACK_TEMPLATE",
           "order_reasons", "top_k_matrix", "fired_top_k", "signed_2dp", "ReasonColumns", "reason_columns",
           "concat_reasons"]
