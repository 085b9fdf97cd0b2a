"""`cv_path_batch`: a penalty chosen per problem by cross-validation, m problems sharing X.

    cv = cv_path_batch(X, Y, family, l1_ratio, alphas, folds=5)   # one compiled call
    cv.alpha_min, cv.alpha_1se          # (m,): each problem's own choice
    cv.coef_min, cv.intercept_min       # (m, p), (m,): the full-data fit at alpha_min

Each row of Y (m, n) is one problem on the shared design X (n, p): its regularization
path over L strengths (its own grid by default: `paths.alpha_grid` of that problem) and
the K fold paths on the same folds, then the held-out metric per fold and strength,
exactly as `lj.cv_path` computes them for that problem alone (its compiled body,
`selection._cv_jit`, is what runs for each problem). The problems run in one compiled
program: a `lax.map` over the problems, sequential by default, so every path keeps its own
loop counts (`batch_size` > 1 vmaps that many problems at a time; their while loops then
run to the slowest one's count, measured 2x slower at n = 10,000, p = 100). On CPU the
problems are split into one equal group per core (at most `CPU_GROUPS_MAX`), each group one
call of that program from its own thread: XLA:CPU runs a call's kernels one after another.

Per problem, with scores s_k(alpha) of fold k, mean(alpha) = (1/K) sum_k s_k(alpha) and
se(alpha) = sd_k(s_k(alpha)) / sqrt(K):
alpha_min = the first alpha (grid decreasing) minimising mean, alpha_1se = the largest
alpha with mean(alpha) <= mean(alpha_min) + se(alpha_min) (glmnet's lambda.1se).
"""

import concurrent.futures
import os
import threading
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs, buckets, validation
from linjax import paths as P
from linjax import selection as S
from linjax.batch_checks import batch_inputs, problem_list
from linjax.families import Gaussian, get_family
from linjax.penalties import ElasticNet


class CVPathBatch(NamedTuple):
    """`lj.cv_path`'s result with a leading axis m (problems): alphas (m, L); l1_ratio;
    scores (m, K, L); mean, se (m, L); best_index, index_1se (m,) (-1 where no strength
    had a finite held-out loss); alpha_min, alpha_1se (m,) (NaN there); path: the
    full-data Paths (coef (m, L, p), ...); fold_paths: (m, K, L, ...); scoring."""

    alphas: np.ndarray
    l1_ratio: float
    scores: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    best_index: np.ndarray
    index_1se: np.ndarray
    alpha_min: np.ndarray
    alpha_1se: np.ndarray
    path: P.Path
    fold_paths: P.Path
    scoring: str

    def _at(self, index):
        rows = np.arange(index.shape[0])
        k = np.maximum(index, 0)
        coef = np.asarray(self.path.coef)[rows, k]
        intercept = np.asarray(self.path.intercept)[rows, k]
        bad = index < 0
        return np.where(bad[:, None], np.nan, coef), np.where(bad, np.nan, intercept)

    @property
    def coef_min(self):
        """(m, p): each problem's full-data coefficients at its alpha_min."""
        return self._at(self.best_index)[0]

    @property
    def intercept_min(self):
        """(m,): each problem's full-data intercept at its alpha_min."""
        return self._at(self.best_index)[1]

    @property
    def coef_1se(self):
        """(m, p): each problem's full-data coefficients at its alpha_1se."""
        return self._at(self.index_1se)[0]

    @property
    def intercept_1se(self):
        """(m,): each problem's full-data intercept at its alpha_1se."""
        return self._at(self.index_1se)[1]


def choose_rows(mean, se, sign=1.0):
    """(best, one_se) index per row of mean, se (m, L), as `selection.choose` row by row;
    -1 for a row with no finite loss."""
    loss = sign * np.asarray(mean, float)
    finite = np.isfinite(loss)
    loss = np.where(finite, loss, np.inf)
    best = np.argmin(loss, axis=1)
    rows = np.arange(loss.shape[0])
    spread = np.asarray(se, float)[rows, best]
    spread = np.where(np.isfinite(spread), spread, 0.0)
    within = loss <= (loss[rows, best] + spread)[:, None]
    one_se = np.argmax(within, axis=1)
    none = ~finite.any(axis=1)
    return np.where(none, -1, best), np.where(none, -1, one_se)


@_programs.jit(static_argnames=("family", "fit_intercept"))
def _alpha_max_rows(X, Y, w, off, pf, l1_ratio, tol, family, fit_intercept):
    """`paths.alpha_max` of every row of Y (no unpenalized feature; offsets (n,) or (m, n))."""
    def one(y, o):
        return P._alpha_max_simple(X, y, w, o, pf, l1_ratio, tol, family, fit_intercept)
    return jax.vmap(one, in_axes=(0, 0 if off.ndim == 2 else None))(Y, off)


def alpha_grids(X, Y, family, l1_ratio, n_alphas, eps, weights, offset, penalty_weights,
                fit_intercept):
    """(m, n_alphas): each problem's `paths.alpha_grid` (its own alpha_max)."""
    if int(n_alphas) < 1:
        raise ValueError(f"n_alphas: must be >= 1, got {n_alphas}.")
    if eps is None:
        eps = P.default_eps(l1_ratio)
    if not 0 < eps < 1:
        raise ValueError(f"eps: must be in (0, 1), got {eps}.")
    top_ratio = max(float(l1_ratio), P.RIDGE_L1_RATIO)
    Y = np.asarray(Y)
    shared_off = offset is None or np.ndim(offset) == 1
    if penalty_weights is None or np.all(np.asarray(penalty_weights) > 0):
        family_, Xj, _, w, off, pf, r = P.path_inputs(
            X, Y[0], family, top_ratio, weights, offset if shared_off else offset[0],
            penalty_weights, fit_intercept, pad=False)
        off = off if shared_off else validation.to_device(np.asarray(offset), Xj.dtype)
        tol = P.make_control(Xj.dtype).tol
        top = np.asarray(_alpha_max_rows(Xj, validation.to_device(Y, Xj.dtype), w, off, pf, r,
                                         tol, family_, bool(fit_intercept)))
    else:  # unpenalized features enter the null fit: the path solver's, problem by problem
        top = np.array([float(P.alpha_max(X, y, family, top_ratio, weights,
                                          offset if shared_off else offset[i],
                                          penalty_weights, fit_intercept))
                        for i, y in enumerate(Y)])
    top = np.where(top > 0, top, 1.0)   # y constant (or explained by unpenalized terms)
    return np.geomspace(top, top * eps, int(n_alphas), axis=1)


@_programs.jit(static_argnames=("cfg", "scoring", "batch_size"))
def _cv_batch_jit(X, Y, train_w, test_w, off, pf, alphas, l1_ratio, ctl, blocks, test_blocks,
                  cfg, scoring, batch_size):
    """`selection._cv_jit` (one problem's full-data and fold paths and held-out scores) for
    every row of Y: alphas (m, L); off (n,) shared or (m, n)."""
    K1 = train_w.shape[0]

    def one(args):
        y, o, a = args
        o = off if o is None else o
        a = jnp.broadcast_to(a, (K1, a.shape[0]))
        return S._cv_jit(X, y, train_w, test_w, o, pf, a, l1_ratio, ctl, blocks, test_blocks,
                         cfg, scoring)

    per_off = off if off.ndim == 2 else None
    return jax.lax.map(one, (Y, per_off, alphas),
                       batch_size=None if batch_size <= 1 else batch_size)


def cv_path_batch(X, Y, family=None, l1_ratio=1.0, alphas=None, folds=5, *, n_alphas=100,
                  eps=None, weights=None, offset=None, penalty_weights=None,
                  fit_intercept=True, scoring="deviance", tol=None, max_iter=100,
                  max_sweeps=10000, method="auto", warn_edge=True, batch_size=1):
    """K-fold cross-validation of m elastic-net paths sharing X, each problem choosing its
    own strength (see the module docstring); returns a `CVPathBatch`.

    X (n, p) shared; Y (m, n), one problem per row. The other arguments are `lj.cv_path`'s:
    alphas None (each problem's own grid of n_alphas, eps), (L,) shared, or (m, L) one
    decreasing row per problem; folds an int K, fold ids (n,) or (train, test) pairs,
    shared by every problem; weights and penalty_weights shared; offset (n,) or (m, n).
    batch_size: problems vmapped together inside the sequential map (1: one at a time).
    """
    if scoring not in S.SCORINGS:
        raise ValueError(f"scoring: expected one of {sorted(S.SCORINGS)}, got {scoring!r}.")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}.")
    validation.check_penalty(ElasticNet(alpha=0.0, l1_ratio=l1_ratio))
    if any(validation.is_traced(a) for a in (X, Y, weights, offset, alphas, l1_ratio)):
        raise ValueError("cv_path_batch runs eagerly (it groups the problems per core and "
                         "chooses each problem's strength on the host): call it outside "
                         "jit, vmap and grad; under a transform, use lj.cv_path per problem.")
    fam0 = Gaussian() if family is None else get_family(family)
    if np.ndim(X) != 2:
        raise ValueError(f"X: cv_path_batch needs one shared design (n, p), got shape "
                         f"{np.shape(X)}; for stacked designs run lj.cv_path per problem.")
    if weights is not None and np.ndim(weights) != 1:
        raise ValueError(f"weights: expected shape (n,), shared by every problem, got shape "
                         f"{np.shape(weights)}.")
    # every row of Y (and of a per-problem offset) checked, naming the problems at fault
    _, Yv, _, _, _, o_ax = batch_inputs(X, Y, fam0, weights, offset, ElasticNet(),
                                        fit_intercept)
    Y = np.asarray(Yv)
    m, n_data = Y.shape
    if offset is not None and o_ax == 0:
        offset = np.asarray(offset, Y.dtype).reshape(m, n_data)
    if alphas is None:
        alphas = alpha_grids(X, Y, family, l1_ratio, n_alphas, eps, weights, offset,
                             penalty_weights, fit_intercept)
    a = np.asarray(alphas, float)
    if a.ndim == 1:
        P.check_alphas(a)
        a = np.broadcast_to(a, (m, a.shape[0]))
    elif a.ndim == 2 and a.shape[0] == m:
        for row in a:
            P.check_alphas(row)
    else:
        raise ValueError(f"alphas: expected (L,) shared or ({m}, L), one decreasing row per "
                         f"problem, got shape {a.shape}.")
    # X, weights and penalty factors validated and row-padded as lj.cv_path does
    shared_off = offset if o_ax != 0 else None
    family, Xj, _, w, off, pf, r = P.path_inputs(X, Y[0], family, l1_ratio, weights,
                                                  shared_off, penalty_weights, fit_intercept)
    n = Xj.shape[0]
    dtype = Xj.dtype
    # padded rows (zero weight) copy each problem's first row, as `paths.path_inputs` does
    Yp = np.concatenate([Y, np.repeat(Y[:, :1], n - n_data, 1)], 1)
    if o_ax == 0:
        off = np.asarray(offset, dtype)
        off = np.concatenate([off, np.repeat(off[:, :1], n - n_data, 1)], 1)
    if scoring in ("log_loss", "accuracy") and type(family).__name__ != "Binomial":
        raise ValueError(f"scoring: {scoring!r} needs the Binomial family.")
    train, test = (np.pad(np.asarray(t), ((0, 0), (0, n - n_data)))
                   for t in S.fold_masks(folds, n_data))
    K = train.shape[0]
    w_np = np.asarray(w)
    train_w = np.vstack([np.ones((1, n)), train]) * w_np
    test_w = np.vstack([np.ones((1, n)), test]) * w_np
    if np.any(test_w.sum(1) <= 0) or np.any(train_w.sum(1) <= 0):
        raise ValueError("folds: every fold needs rows with positive weight on both the "
                         "training and the held-out side.")
    cfg = P.make_config(family, Xj.shape, fit_intercept, method)
    ctl = P.make_control(dtype, tol, max_iter, max_sweeps)
    p = Xj.shape[1]
    rows = S._block_rows(n, K, p)
    test_blocks = S._device_blocks(S._fold_blocks(test_w[1:], rows), dtype)
    blocks = None
    if cfg.gram and (K + 1) * p * p <= S._MAX_GRAM_ENTRIES:
        removed = w_np[None, :] - train_w[1:]
        kept = np.where((removed > 0).any(0), 0.0, w_np)
        blocks = S._device_blocks(S._fold_blocks(np.vstack([removed, kept[None]]), rows),
                                  dtype)
    # m padded to its bucket with copies of problem 0 (fitted, dropped): no program per m;
    # on CPU the problems are split into equal groups, one compiled call per core
    groups = cpu_groups(m)
    size = -(-buckets.bucket_rows(m) // groups)
    m_to = groups * size
    per = [Yp, a] + ([off] if o_ax == 0 else [])
    per = [np.concatenate([v, np.repeat(v[:1], m_to - m, 0)]) for v in per]
    shared = (Xj, validation.to_device(train_w, dtype), validation.to_device(test_w, dtype))

    def run(g):
        rows = slice(g * size, (g + 1) * size)
        Yg, ag, *og = (validation.to_device(v[rows], dtype) for v in per)
        out = _cv_batch_jit(shared[0], Yg, shared[1], shared[2], og[0] if og else off, pf, ag,
                            r, ctl, blocks, test_blocks, cfg, scoring, int(batch_size))
        return jax.tree_util.tree_map(np.asarray, out)

    outs = _in_threads(run, groups)
    ((full, fold_paths), scores) = jax.tree_util.tree_map(
        lambda *parts: np.concatenate(parts)[:m], *outs)
    mean = scores.mean(1)
    se = scores.std(1, ddof=1) / np.sqrt(K)
    best, one_se = choose_rows(mean, se, S.SCORINGS[scoring])
    rows_m = np.arange(m)
    none = best < 0
    if none.any():
        warnings.warn(f"cv_path_batch: {problem_list(np.flatnonzero(none), m)}: the held-out "
                      "loss is not finite at any alpha (fitted means outside the family's "
                      "domain on held-out rows); best_index -1, alpha_min NaN.", stacklevel=2)
    alpha_min = np.where(none, np.nan, a[rows_m, np.maximum(best, 0)])
    alpha_1se = np.where(none, np.nan, a[rows_m, np.maximum(one_se, 0)])
    if warn_edge:
        _warn_edges(best, a.shape[1], np.asarray(full.df)[:, 0] > 0, m)
    return CVPathBatch(np.array(a), float(l1_ratio), scores, mean, se, best, one_se,
                       alpha_min, alpha_1se, full, fold_paths, scoring)


#: Most concurrent compiled calls (groups of problems) on CPU.
CPU_GROUPS_MAX = 4
_POOL = []
_POOL_LOCK = threading.Lock()


def cpu_groups(m):
    """Groups of problems run concurrently: one per core on CPU (XLA:CPU runs one call's
    kernels one after another, and a path's are small, so one call keeps one core busy)."""
    if jax.default_backend() != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, CPU_GROUPS_MAX, m))


def _in_threads(run, groups):
    """[run(0), ..., run(groups - 1)], all but the first from a thread pool."""
    if groups == 1:
        return [run(0)]
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(concurrent.futures.ThreadPoolExecutor(
                CPU_GROUPS_MAX - 1, thread_name_prefix="linjax-cv-batch"))
    # a caller's `with jax.enable_x64(...)` holds for its own thread only
    x64 = jax.dtypes.canonicalize_dtype(np.float64) == np.float64
    enable_x64 = jax.enable_x64 if hasattr(jax, "enable_x64") else jax.experimental.enable_x64

    def in_thread(g):
        with enable_x64(x64):
            return run(g)

    futures = [_POOL[0].submit(in_thread, g) for g in range(1, groups)]
    return [run(0)] + [f.result() for f in futures]


def _warn_edges(best, n_values, top_has_coefficients, m):
    """One GridEdgeWarning listing the problems whose alpha_min is an end of their grid."""
    edges = [S.grid_edge(int(b), n_values, bool(t)) for b, t in
             zip(best, top_has_coefficients, strict=True)]
    at = np.flatnonzero([e is not None and b >= 0 for e, b in zip(edges, best, strict=True)])
    if at.size:
        warnings.warn(f"cv_path_batch: {problem_list(at, m)}: the chosen alpha is an end of "
                      "its grid; the cross-validated optimum may lie beyond it. Pass a wider "
                      "grid (alphas, or a smaller eps).", S.GridEdgeWarning, stacklevel=3)
