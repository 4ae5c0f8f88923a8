"""Exact path-dependent TreeSHAP of an XGBoost booster, from decision patterns.

XGBoost's ``pred_contribs`` runs TreeSHAP's recursion for every row and every tree. The
decision-pattern formulation (the idea of the WOODELF paper) moves almost all of that work to a
one-off precomputation per model:

* For one leaf, path-dependent TreeSHAP plays the game
  ``v(S) = value * prod_u (b_u if u in S else a_u)`` over the distinct features ``u`` on the
  leaf's root path, where ``a_u`` is the product of the cover ratios ``cover(child) /
  cover(node)`` of the path's nodes that split on ``u`` and ``b_u`` is 1 when the row takes
  the leaf's side at every one of those nodes (else 0). Its Shapley values depend on the row
  only through which path conditions it satisfies: the leaf's *decision pattern*, one bit per
  path node. So they are tabulated once, for all ``2**depth`` patterns.
* The tables of all leaves under one node ``r`` are summed into one table indexed by the bits
  of ``r``'s own path plus the go-left bits of the nodes below ``r`` (at most ``MAX_BITS``), so
  a row costs one lookup per (subtree, feature) instead of one per (leaf, feature).
* At predict time, per block of trees and chunk of rows: every split is evaluated once
  (``x < threshold`` in float32, missing values to the split's default side, categorical sets
  as XGBoost decides them), the bits are packed into one code per subtree (a sparse matrix
  product), the tables are gathered with those codes and summed per feature (a second one).

For a leaf with distinct features ``U`` (``m = |U|``), pattern ``Q`` (the features whose
conditions all hold) and feature ``i``::

    phi_i = value * ([i in Q] - a_i) * prod_{u not in Q, u != i} a_u
            * sum_{s=0..|A|} s! (m-1-s)! / m! * e_{|A|-s}({a_u : u in A}),   A = Q minus {i}

(``e_k`` the elementary symmetric polynomials), which is the Shapley value of the product game
above: every subset ``S`` with a feature outside ``Q`` has ``v(S) = 0``. There is no division,
so no instability for small covers. The bias column is the cover-weighted mean of every tree
plus the base margin, as in ``pred_contribs``. Values agree with XGBoost's to float32 rounding
(XGBoost accumulates in float32; this module in float64).

Supported: ``gbtree`` boosters with one output (``binary:logistic``, ``reg:logistic``,
``binary:logitraw``, squared error and the other identity-link regressions), numeric and
categorical splits, missing values, trees of depth up to ``MAX_DEPTH`` (leaf tables have
``2**depth`` rows; the per-subtree tables at most ``2**MAX_BITS``).
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

MAX_BITS = 8  # bits of one subtree code: tables of at most 256 rows
MAX_DEPTH = 10  # leaf tables have 2**depth rows
_LEAF_BATCH = 256  # leaves tabulated together (bounds the memory of deep trees)
BLOCK_NODES = 750  # splits evaluated together (about 50 trees of depth 4)
CHUNK_ROWS = 1024  # rows per pass: a block's intermediates stay in the CPU cache
# the base score is a probability (its logit is the margin) or already a margin
_LOGISTIC = ("binary:logistic", "reg:logistic")
_IDENTITY = ("binary:logitraw", "reg:squarederror", "reg:linear", "reg:pseudohubererror", "reg:absoluteerror")


@dataclass(frozen=True)
class _Tree:
    """One tree of the model, as XGBoost stores it (node arrays indexed by node id)."""

    left: list[int]  # -1 at a leaf
    right: list[int]
    feature: list[int]
    threshold: np.ndarray  # float32: XGBoost compares float32 values with float32 thresholds
    default_left: list[bool]
    categories: dict[int, np.ndarray]  # categorical split node -> the category codes that go right
    cover: list[float]
    value: list[float]  # the leaf value at a leaf


@dataclass(frozen=True)
class _Leaf:
    node: int
    path: tuple[tuple[int, bool], ...]  # (node, goes left) from the root
    value: float


@dataclass
class _Group:
    """A subtree: its root's path bits plus the go-left bits below it index one table."""

    tree: int
    path: list[tuple[int, bool]]  # (node, toward the subtree root is left) from the tree root
    below: list[int]  # internal nodes of the subtree, breadth first
    leaves: list[_Leaf]
    features: list[int]  # distinct features of the subtree's leaves, in slot order
    table: np.ndarray | None = None  # (2**bits, len(features)) Shapley contributions

    @property
    def bits(self) -> int:
        return len(self.path) + len(self.below)


@dataclass(frozen=True)
class _Block:
    """Everything one pass over a block of trees needs, as arrays."""

    num_rows: np.ndarray  # (N_num,) feature of each numeric split, default-left splits first
    n_default_left: int
    thresholds: np.ndarray  # (N_num, 1) float32
    cat_rows: np.ndarray  # (N_cat,) feature of each categorical split
    cat_table: np.ndarray  # (N_cat * (width + 1),) float32: 1 where a code goes left
    cat_width: int  # codes 0..width-2 are looked up, width-1 = in no set; index width = missing
    pack: sp.csr_matrix  # (G, N) float32: the code of every subtree from the go-left bits
    offset: np.ndarray  # (G, 1) float32: constant part of each code + the subtree's table row
    tables: np.ndarray  # (slots, rows) float64: slot j of every subtree's table, concatenated
    gather: sp.csr_matrix  # (features, slots * G): sums the looked-up values per feature


def _parse(booster, iterations: int | None) -> tuple[list[_Tree], float, int]:
    """The trees of the first ``iterations`` boosting rounds, the base margin, the feature count."""
    model = json.loads(booster.save_raw("json"))
    learner = model["learner"]
    booster_kind = learner["gradient_booster"].get("name", "gbtree")
    if booster_kind != "gbtree":
        raise ValueError(f"TreeSHAP tables need a gbtree booster, got {booster_kind}")
    params = learner["learner_model_param"]
    if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) > 1:
        raise ValueError("TreeSHAP tables support single-output models only")
    objective = learner["objective"]["name"]
    base_score = float(str(params["base_score"]).strip("[]"))
    if objective in _LOGISTIC:
        base = math.log(base_score / (1.0 - base_score))
    elif objective in _IDENTITY:
        base = base_score
    else:
        raise ValueError(f"TreeSHAP tables: unsupported objective {objective!r}")
    gb = learner["gradient_booster"]["model"]
    indptr = gb["iteration_indptr"]
    rounds = len(indptr) - 1 if iterations is None else max(0, min(int(iterations), len(indptr) - 1))
    trees = []
    for t in gb["trees"][: indptr[rounds]]:
        cats = {}
        for k, node in enumerate(t["categories_nodes"]):
            start, size = t["categories_segments"][k], t["categories_sizes"][k]
            cats[int(node)] = np.asarray(t["categories"][start:start + size], dtype=np.int64)
        cond = t["split_conditions"]
        trees.append(_Tree(left=list(t["left_children"]), right=list(t["right_children"]),
                           feature=list(t["split_indices"]), threshold=np.asarray(cond, dtype=np.float32),
                           default_left=[bool(d) for d in t["default_left"]], categories=cats,
                           cover=[float(c) for c in t["sum_hessian"]], value=[float(v) for v in cond]))
    return trees, base, int(params["num_feature"])


def _leaves(t: _Tree) -> list[_Leaf]:
    """Every leaf of the tree with its root path, left to right."""
    out, stack = [], [(0, ())]
    while stack:
        v, path = stack.pop()
        if t.left[v] < 0:
            out.append(_Leaf(v, path, t.value[v]))
        else:
            stack.append((t.right[v], (*path, (v, False))))
            stack.append((t.left[v], (*path, (v, True))))
    return out


def _groups(t: _Tree, index: int, leaves: list[_Leaf]) -> list[_Group]:
    """Split a tree into subtrees whose codes fit ``MAX_BITS`` (the largest ones, from the root)."""
    below: dict[int, list[int]] = {}  # internal nodes under each node, breadth first

    def under(v: int) -> list[int]:
        if v not in below:
            out, queue = [], [v]
            while queue:
                u = queue.pop(0)
                if t.left[u] >= 0:
                    out.append(u)
                    queue += [t.left[u], t.right[u]]
            below[v] = out
        return below[v]

    roots: dict[int, _Group] = {}
    stack: list[tuple[int, list]] = [(0, [])]
    while stack:
        v, path = stack.pop()
        inner = under(v)
        if len(path) + len(inner) <= MAX_BITS or not inner:
            roots[v] = _Group(index, list(path), inner, [], [])
        else:
            stack.append((t.right[v], [*path, (v, False)]))
            stack.append((t.left[v], [*path, (v, True)]))
    for leaf in leaves:
        # subtrees are disjoint: one group root on the path, or the leaf is one itself
        roots[next((v for v, _ in leaf.path if v in roots), leaf.node)].leaves.append(leaf)
    out = []
    for g in roots.values():
        g.features = list(dict.fromkeys(t.feature[u] for leaf in g.leaves for u, _ in leaf.path))
        if g.features:  # a tree that is one leaf has nothing to attribute
            out.append(g)
    return out


def _expected_value(t: _Tree, leaves: list[_Leaf]) -> float:
    """Cover-weighted mean of the tree's leaves (its term of the bias column)."""
    total = 0.0
    for leaf in leaves:
        w = 1.0
        for v, goes_left in leaf.path:
            w *= t.cover[t.left[v] if goes_left else t.right[v]] / t.cover[v]
        total += w * leaf.value
    return total


@lru_cache(maxsize=256)
def _pattern_to_features(signature: tuple[int, ...]) -> np.ndarray:
    """For each path pattern (bit k: node k's condition holds), the feature pattern (bit u:
    every condition on distinct feature u holds)."""
    d = len(signature)
    p = np.arange(1 << d)
    q = np.zeros(1 << d, dtype=np.int64)
    for u in range(max(signature) + 1):
        ok = np.ones(1 << d, dtype=bool)
        for k in range(d):
            if signature[k] == u:
                ok &= ((p >> k) & 1).astype(bool)
        q |= ok.astype(np.int64) << u
    return q


def _leaf_tables(signature: tuple[int, ...], a: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Shapley contributions of a batch of leaves that share a path signature.

    ``signature[k]`` is the distinct-feature index of path node k; ``a`` (L, m) the cover
    ratio products per distinct feature; ``value`` (L,). Returns (L, 2**d, m).
    """
    m = a.shape[1]
    n_leaves = len(value)
    weights = np.array([math.factorial(s) * math.factorial(m - 1 - s) / math.factorial(m) for s in range(m)])
    subsets = 1 << m
    # coef[A, :, j]: coefficient of t**j in prod_{u in A} (a_u + t), i.e. e_{|A|-j}(a_A)
    coef = np.zeros((subsets, n_leaves, m + 1))
    coef[0, :, 0] = 1.0
    prod = np.ones((subsets, n_leaves))
    for A in range(1, subsets):
        u = A.bit_length() - 1
        B = A ^ (1 << u)
        coef[A] = coef[B] * a[:, u:u + 1]
        coef[A, :, 1:] += coef[B, :, :-1]
        prod[A] = prod[B] * a[:, u]
    shapley_sum = coef[:, :, :m] @ weights  # (subsets, L)
    Q = np.arange(subsets)[:, None]
    bit = (1 << np.arange(m))[None, :]
    rest = Q & ~bit  # Q minus {i}
    outside = (subsets - 1) & ~Q & ~bit  # features neither in Q nor i
    holds = ((Q & bit) != 0).astype(float)  # (subsets, m)
    phi = (value[None, None, :] * (holds[:, :, None] - a.T[None, :, :])
           * prod[outside] * shapley_sum[rest])  # (subsets, m, L)
    return np.transpose(phi[_pattern_to_features(signature)], (2, 0, 1))


@lru_cache(maxsize=4096)
def _code_to_pattern(bits: int, depth_of_root: int, below_positions: tuple[int, ...],
                     goes_left: tuple[bool, ...]) -> np.ndarray:
    """For every subtree code, the leaf's path pattern.

    Code bits 0..depth_of_root-1 are the subtree root's path bits (already "toward the leaf");
    bit depth_of_root + j is the go-left bit of the subtree's j-th internal node. The leaf's
    path below the root visits the nodes at ``below_positions`` going left or right.
    """
    codes = np.arange(1 << bits)
    pattern = codes & ((1 << depth_of_root) - 1)
    for k, (j, left) in enumerate(zip(below_positions, goes_left, strict=True)):
        b = (codes >> (depth_of_root + j)) & 1
        pattern |= (b if left else 1 - b) << (depth_of_root + k)
    return pattern


def _fill_tables(trees: list[_Tree], groups: list[_Group]) -> None:
    """Compute every leaf's table (batched by signature) and sum them into their group's."""
    by_signature: dict[tuple, list[tuple[_Group, _Leaf, list[int], np.ndarray]]] = {}
    for g in groups:
        t = trees[g.tree]
        for leaf in g.leaves:
            feats = [t.feature[v] for v, _ in leaf.path]
            distinct = list(dict.fromkeys(feats))
            signature = tuple(distinct.index(f) for f in feats)
            a = np.ones(len(distinct))
            for (v, goes_left), s in zip(leaf.path, signature, strict=True):
                a[s] *= t.cover[t.left[v] if goes_left else t.right[v]] / t.cover[v]
            by_signature.setdefault(signature, []).append((g, leaf, distinct, a))
        g.table = np.zeros((1 << g.bits, len(g.features)))
    position = {id(g): {v: j for j, v in enumerate(g.below)} for g in groups}
    slot = {id(g): {f: j for j, f in enumerate(g.features)} for g in groups}
    for signature, every in by_signature.items():
        for lo in range(0, len(every), _LEAF_BATCH):
            items = every[lo:lo + _LEAF_BATCH]
            tables = _leaf_tables(signature, np.array([a for *_, a in items]),
                                  np.array([leaf.value for _, leaf, _, _ in items]))
            _add_leaf_tables(items, tables, position, slot)


def _add_leaf_tables(items: list, tables: np.ndarray, position: dict, slot: dict) -> None:
    """Sum each leaf's table into its subtree's, row by subtree code."""
    for (g, leaf, distinct, _), W in zip(items, tables, strict=True):
        pos, under = position[id(g)], leaf.path[len(g.path):]
        pattern = _code_to_pattern(g.bits, len(g.path), tuple(pos[v] for v, _ in under),
                                   tuple(left for _, left in under))
        cols = [slot[id(g)][f] for f in distinct]
        g.table[:, cols] += W[pattern]


def _block(trees: list[_Tree], groups: list[_Group], n_features: int) -> _Block:
    nodes = list(dict.fromkeys((g.tree, v) for g in groups for v in [*(u for u, _ in g.path), *g.below]))

    def is_cat(tv):
        return tv[1] in trees[tv[0]].categories

    num = [tv for tv in nodes if not is_cat(tv)]
    dl = [tv for tv in num if trees[tv[0]].default_left[tv[1]]]
    order = dl + [tv for tv in num if not trees[tv[0]].default_left[tv[1]]] + [tv for tv in nodes if is_cat(tv)]
    pos = {tv: i for i, tv in enumerate(order)}
    numeric = order[:len(num)]
    cats = order[len(num):]
    width = max((int(trees[t].categories[v].max(initial=-1)) + 2 for t, v in cats), default=1)
    cat_table = np.ones((len(cats), width + 1), dtype=np.float32)
    for i, (t, v) in enumerate(cats):
        cat_table[i, trees[t].categories[v]] = 0.0  # in the set: right
        cat_table[i, width] = float(trees[t].default_left[v])
    rows, cols, vals = [], [], []
    offset = np.zeros(len(groups), dtype=np.float32)
    slots = max(len(g.features) for g in groups)
    start = np.cumsum([0] + [1 << g.bits for g in groups])
    tables = np.zeros((slots, int(start[-1])))
    g_rows, g_cols = [], []
    for i, g in enumerate(groups):
        for k, (v, toward_left) in enumerate(g.path):
            rows.append(i)
            cols.append(pos[(g.tree, v)])
            vals.append(float(1 << k) if toward_left else -float(1 << k))
            offset[i] += 0 if toward_left else 1 << k
        for j, v in enumerate(g.below):
            rows.append(i)
            cols.append(pos[(g.tree, v)])
            vals.append(float(1 << (len(g.path) + j)))
        offset[i] += start[i]
        tables[:len(g.features), start[i]:start[i + 1]] = g.table.T
        for j, f in enumerate(g.features):
            g_rows.append(f)
            g_cols.append(j * len(groups) + i)
    return _Block(
        num_rows=np.array([trees[t].feature[v] for t, v in numeric], dtype=np.intp),
        n_default_left=len(dl),
        thresholds=np.array([trees[t].threshold[v] for t, v in numeric], dtype=np.float32).reshape(-1, 1),
        cat_rows=np.array([trees[t].feature[v] for t, v in cats], dtype=np.intp),
        cat_table=cat_table.ravel(), cat_width=width,
        pack=sp.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(len(groups), len(order))),
        offset=offset.reshape(-1, 1), tables=tables,
        gather=sp.csr_matrix((np.ones(len(g_rows)), (g_rows, g_cols)), shape=(n_features, slots * len(groups))),
    )


class TreeShapTables:
    """Exact path-dependent TreeSHAP values of an XGBoost booster, precomputed per model.

    ``TreeShapTables.from_booster(booster, iterations)`` does the one-off work (a fraction of
    a second for a few hundred shallow trees); ``shap_values(X)`` then gives what
    ``booster.predict(DMatrix(X), pred_contribs=True, iteration_range=(0, iterations))``
    gives: (n, features + 1), the bias in the last column.
    """

    def __init__(self, blocks: list[_Block], n_features: int, bias: float):
        self.blocks = blocks
        self.n_features = n_features
        self.bias = bias

    @classmethod
    def from_booster(cls, booster, iterations: int | None = None, *, block_nodes: int = BLOCK_NODES) -> TreeShapTables:
        """Tables for the first ``iterations`` boosting rounds of ``booster`` (all when None).

        Raises ValueError for a model it cannot explain exactly (not gbtree, several outputs,
        another objective, trees deeper than ``MAX_DEPTH``).
        """
        trees, base, n_features = _parse(booster, iterations)
        leaves = [_leaves(t) for t in trees]
        depth = max((len(leaf.path) for ls in leaves for leaf in ls), default=0)
        if depth > MAX_DEPTH:
            raise ValueError(f"TreeSHAP tables support trees of depth <= {MAX_DEPTH}, got {depth}")
        groups = [g for i, t in enumerate(trees) for g in _groups(t, i, leaves[i])]
        _fill_tables(trees, groups)
        blocks, current, count = [], [], 0
        for g in groups:
            current.append(g)
            count += len(g.below) + 1
            if count >= block_nodes:
                blocks.append(_block(trees, current, n_features))
                current, count = [], 0
        if current:
            blocks.append(_block(trees, current, n_features))
        bias = base + sum(_expected_value(t, ls) for t, ls in zip(trees, leaves, strict=True))
        return cls(blocks, n_features, bias)

    def shap_values(self, X: np.ndarray, *, n_threads: int = 1, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
        """(n, features + 1) float64 SHAP values of the float32 rows ``X`` (NaN = missing;
        categorical features as category codes), bias last."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected an (n, {self.n_features}) array of features, got shape {X.shape}")
        n = len(X)
        out = np.empty((n, self.n_features + 1))
        out[:, -1] = self.bias
        step = max(int(chunk_rows), 1)
        starts = range(0, n, step)

        def run(lo: int) -> None:
            hi = min(lo + step, n)
            out[lo:hi, :-1] = self._chunk(np.ascontiguousarray(X[lo:hi].T)).T

        workers = max(1, min(int(n_threads), len(starts), os.cpu_count() or 1))
        if workers == 1:
            for lo in starts:
                run(lo)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="treeshap") as pool:
                list(pool.map(run, starts))
        return out

    def _chunk(self, Xt: np.ndarray) -> np.ndarray:
        """SHAP values (features, n) of the transposed rows ``Xt`` (features, n)."""
        n = Xt.shape[1]
        acc = np.zeros((self.n_features, n))
        for b in self.blocks:
            n_num, n_dl = len(b.num_rows), b.n_default_left
            goes_left = np.empty((n_num + len(b.cat_rows), n), dtype=np.float32)
            if n_num:
                x = Xt[b.num_rows]
                cond = np.empty(x.shape, dtype=bool)
                # NaN fails every comparison: `not x >= t` sends it left, `x < t` right
                np.greater_equal(x[:n_dl], b.thresholds[:n_dl], out=cond[:n_dl])
                np.logical_not(cond[:n_dl], out=cond[:n_dl])
                np.less(x[n_dl:], b.thresholds[n_dl:], out=cond[n_dl:])
                goes_left[:n_num] = cond
            if len(b.cat_rows):
                goes_left[n_num:] = b.cat_table[self._cat_index(Xt[b.cat_rows], b.cat_width)]
            codes = (b.pack @ goes_left + b.offset).astype(np.intp)
            looked_up = np.empty((b.tables.shape[0], codes.shape[0], n))
            for j in range(b.tables.shape[0]):
                np.take(b.tables[j], codes, out=looked_up[j])
            acc += b.gather @ looked_up.reshape(-1, n)
        return acc

    @staticmethod
    def _cat_index(x: np.ndarray, width: int) -> np.ndarray:
        """Row of the flat categorical table for each value: XGBoost sends a missing value to
        the default side and a negative or unknown code left (in no split's set)."""
        missing = np.isnan(x)
        bad = missing | (x < 0) | (x >= width - 1)
        code = np.where(bad, width - 1, x).astype(np.intp)  # truncates, as XGBoost's int cast
        code[missing] = width
        return code + (np.arange(len(x)) * (width + 1))[:, None]


__all__ = ["TreeShapTables", "MAX_BITS", "MAX_DEPTH"]
