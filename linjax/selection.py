"""Choosing the penalty: K-fold cross-validation of whole paths, and AIC/BIC along a path.

    cv = cv_path(X, y, family, l1_ratio, alphas, folds=5)   # every fold in one jit
    cv.alpha_min, cv.alpha_1se, cv.mean, cv.se, cv.path     # path: the full-data path

Folds are zero weights over the full data: every fold's training weights (and the
full data's, first) form one (K + 1, n) array, and one `jax.lax.map` of
`paths.path_core` fits all of them in turn (sequential, so each fold's loops stop at their
own counts, as a vmap's would not), so shapes never change and nothing recompiles
when the folds, the alphas, l1_ratio or the weights change (`trace_count()` counts
traces; a test checks it). Dense GLM paths (the "hessian" solver) instead run in lockstep
(`paths_lockstep`): each path takes its own steps, but the passes over X of all K + 1 at
one step are one matrix product.
With the covariance solver every fold's Gram matrix comes from one pass over X by row
blocks grouped by the fold that leaves them out (`_gram_moments`: the full data's Gram is
the sum of the groups', a fold's the sum less its own group's; symmetric block products,
n p^2 / 2 multiply-adds for all K + 1 instead of (K + 1) n p^2).
Held-out rows score each path by the weighted mean of a metric (one more blocked pass:
each row is predicted only by the path of the fold that holds it out):

    "deviance"  mean unit deviance (Gaussian: squared error; Binomial: 2 x log loss)
    "mse"       mean squared error of the mean;  "mae" its absolute value
    "log_loss"  Binomial mean log loss;  "accuracy"  Binomial, threshold 1/2 (higher better)

alpha_min minimises the mean over folds (first minimum, alphas in decreasing order);
alpha_1se is the largest alpha whose mean is within one standard error (sd / sqrt(K))
of that minimum (the one-standard-error rule, glmnet's lambda.1se).
When alpha_min is the grid's smallest alpha, or its largest while that fit still has
nonzero coefficients, the optimum may lie outside the grid: `GridEdgeWarning`.

Fold ids: `kfold` (scikit-learn's KFold order), `stratified_kfold`, `group_kfold`;
`cv_path` also takes an int (K-fold), an array of fold ids, or (train, test) index pairs.
"""

import collections
import numbers
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs, validation
from linjax import paths as P
from linjax.designs.types import is_design
from linjax.fit_statistics import log_likelihood
from linjax.paths_lockstep import path_lockstep
from linjax.solvers.gram import triangle_add, triangle_finish, triangle_rows, triangle_zeros

SCORINGS = {"deviance": 1.0, "mse": 1.0, "mae": 1.0, "log_loss": 1.0, "accuracy": -1.0}
_TRACES = collections.Counter()


def trace_count(name="cv"):
    """How many times the cross-validation function has been traced (compiled) so far."""
    return _TRACES[name]


# -- folds ----------------------------------------------------------------------------------

def kfold(n, n_splits=5, shuffle=False, seed=None):
    """Fold id per row: contiguous blocks, the first n % K one row larger (sklearn's KFold)."""
    n_splits = _check_splits(n_splits, n)
    sizes = np.full(n_splits, n // n_splits)
    sizes[: n % n_splits] += 1
    ids = np.repeat(np.arange(n_splits), sizes)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    out = np.empty(n, int)
    out[order] = ids
    return out


def stratified_kfold(y, n_splits=5, shuffle=False, seed=None):
    """Fold id per row with every class spread evenly over the folds."""
    y = np.asarray(y)
    n_splits = _check_splits(n_splits, len(y))
    rng = np.random.default_rng(seed)
    out = np.empty(len(y), int)
    start = 0
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        if shuffle:
            idx = rng.permutation(idx)
        out[idx] = (start + np.arange(len(idx))) % n_splits
        start += len(idx)
    return out


def group_kfold(groups, n_splits=5):
    """Fold id per row; rows of one group share a fold (largest groups placed first)."""
    groups = np.asarray(groups)
    uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    n_splits = _check_splits(n_splits, len(uniq), what="groups")
    load = np.zeros(n_splits)
    fold_of_group = np.empty(len(uniq), int)
    for g in np.argsort(-counts, kind="stable"):
        k = int(np.argmin(load))
        fold_of_group[g] = k
        load[k] += counts[g]
    return fold_of_group[inverse]


def _check_splits(k, n, what="rows"):
    k = int(k)
    if k < 2 or k > n:
        raise ValueError(f"folds: the number of folds must be between 2 and the number of "
                         f"{what} ({n}), got {k}.")
    return k


_FOLDS_FORMS = ("an int K >= 2 (K-fold), fold ids (one per row of X), or a list of "
                "(train, test) index pairs")


def fold_masks(folds, n):
    """(train, test) boolean arrays (K, n) from an int K, fold ids (n,) or (train, test) pairs."""
    if isinstance(folds, bool) or isinstance(folds, numbers.Real) and \
            not isinstance(folds, numbers.Integral):
        raise ValueError(f"folds: expected {_FOLDS_FORMS}; got {folds!r} "
                         f"({type(folds).__name__}).")
    if isinstance(folds, numbers.Integral):
        folds = kfold(n, int(folds))
    if isinstance(folds, np.ndarray | jax.Array) or (
            isinstance(folds, list | tuple) and len(folds) == n and np.ndim(folds[0]) == 0):
        ids = np.asarray(folds)
        if ids.shape != (n,):
            raise ValueError(f"folds: fold ids must have shape ({n},), got {ids.shape}.")
        uniq = np.unique(ids)
        _check_splits(len(uniq), n)
        test = ids[None, :] == uniq[:, None]
        return ~test, test
    train, test = [], []
    try:
        pairs = [tuple(pair) for pair in folds]
    except TypeError:
        pairs = None
    if pairs is None or any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"folds: expected {_FOLDS_FORMS}; got {type(folds).__name__}.")
    for tr, te in pairs:
        a, b = np.zeros(n, bool), np.zeros(n, bool)
        a[np.asarray(tr, int)] = True
        b[np.asarray(te, int)] = True
        train.append(a)
        test.append(b)
    if len(train) < 2:
        raise ValueError("folds: need at least 2 (train, test) splits.")
    return np.array(train), np.array(test)


# -- scoring --------------------------------------------------------------------------------

def _metric(scoring, family, y, mu):
    if scoring == "deviance":
        return family.unit_deviance(y, mu)
    if scoring == "mse":
        return (y - mu) ** 2
    if scoring == "mae":
        return jnp.abs(y - mu)
    if scoring == "log_loss":
        m = jnp.clip(mu, 1e-15, 1 - 1e-15)
        return -(y * jnp.log(m) + (1 - y) * jnp.log1p(-m))
    if scoring == "accuracy":
        return (y == (mu > 0.5)).astype(mu.dtype)
    raise ValueError(f"scoring: expected one of {sorted(SCORINGS)}, got {scoring!r}.")


#: Largest (K + 1) p^2 for which cv_path forms every fold's Gram matrix up front.
_MAX_GRAM_ENTRIES = 2**24


def _block_rows(n, K, p):
    """Rows per block of the fold passes (a function of n, K and p only, so shapes stay
    fixed when the folds change): `gram.triangle_rows`, lowered so that a fold of about
    n / K rows fills its blocks (1% slack, a multiple of 8)."""
    size = -(-n // K)
    per = -(-size // triangle_rows(p))
    rows = -(-size * 101 // (100 * per))
    return max(8, -(-rows // 8) * 8)


def _fold_blocks(groups, rows):
    """Row blocks of disjoint row groups: (rows (m, B) int32, their weights (m, B), start
    (G + 1,) int32: group g owns blocks start[g] to start[g + 1]); blocks padded with zero
    weights, m = ceil(n / B) + G (fixed by n, G and B). groups (G, n): each group's row
    weights. None when some row has weight in two groups (overlapping explicit splits)."""
    G, n = groups.shape
    if np.any((groups > 0).sum(0) > 1):
        return None
    m = -(-n // rows) + G
    idx = np.zeros((m, rows), np.int32)
    wts = np.zeros((m, rows))
    start = np.zeros(G + 1, np.int32)
    i = 0
    for g in range(G):
        members = np.flatnonzero(groups[g] > 0)
        for s in range(0, len(members), rows):
            part = members[s:s + rows]
            idx[i, :len(part)] = part
            wts[i, :len(part)] = groups[g, part]
            i += 1
        start[g + 1] = i
    return idx, wts, start


def _group_moments(X, z, m0, z0, blocks):
    """Per group g (one pass over X by row blocks, each gathered and centred in cache): the
    Gram sum_i w_i xc_i xc_i' (symmetric, `gram.triangle_add`), sum w xc, sum w zc xc, sum w zc,
    sum w zc^2, sum w, with xc = x - m0, zc = z - z0."""
    idx, wts, start = blocks
    n_groups = start.shape[0] - 1
    p = X.shape[1]
    dtype = X.dtype

    def add(i, acc):
        gram, s1, s2, t, q, W = acc
        r, wb = idx[i], wts[i]
        Xc = X[r] - m0
        zc = z[r] - z0
        Y = wb[:, None] * Xc
        return (triangle_add(gram, Xc, Y), s1 + wb @ Xc, s2 + (wb * zc) @ Xc,
                t + wb @ zc, q + wb @ (zc * zc), W + jnp.sum(wb))

    def group(g, out):
        zero = jnp.zeros((), dtype)
        acc = (triangle_zeros(p, dtype), jnp.zeros((p,), dtype), jnp.zeros((p,), dtype), zero,
               zero, zero)
        acc = jax.lax.fori_loop(start[g], start[g + 1], add, acc)
        acc = (triangle_finish(acc[0]),) + acc[1:]
        return tuple(o.at[g].set(a) for o, a in zip(out, acc, strict=True))

    shapes = ((p, p), (p,), (p,), (), (), ())
    out = tuple(jnp.zeros((n_groups,) + s, dtype) for s in shapes)
    return jax.lax.fori_loop(0, n_groups, group, out)


def _gram_moments(X, y, off, train_w, blocks, fit_intercept):
    """moments(k): (G, c, xbar, ybar, syy) of `paths.path_core` for row k of train_w (the
    full data first), all from one blocked pass over X: `blocks` groups the rows by the
    fold that leaves them out (the last group: rows no fold leaves out), each group's sums
    are formed once (`_group_moments`), the full data's are their total and fold k's the
    total less its own group's: n p^2 / 2 multiply-adds for all K + 1 Gram matrices.
    Everything is centred at the full data's mean first, so the subtraction does not
    cancel, then re-centred exactly at each fold's mean. Each fold's p x p matrix is formed
    when its path needs it (one pass; stacking all K + 1 of them up front cost more than
    the pass over X, mostly fresh memory)."""
    p = X.shape[1]
    w0 = train_w[0]
    z = y - off
    if fit_intercept:
        m0 = (w0 @ X) / jnp.sum(w0)
        z0 = (w0 @ z) / jnp.sum(w0)
    else:
        m0 = jnp.zeros((p,), X.dtype)
        z0 = jnp.zeros((), X.dtype)
    R, s1, s2, t, q, _ = _group_moments(X, z, m0, z0, blocks)
    total = jnp.sum(R, 0)
    # vectors and scalars of every row (row 0: the full data; row k: all but group k - 1)
    K = train_w.shape[0] - 1
    s1, s2, t, q = (jnp.concatenate([jnp.sum(a, 0)[None], jnp.sum(a, 0)[None] - a[:K]])
                    for a in (s1, s2, t, q))
    W = jnp.sum(train_w, 1)   # exact (the blocks' sums agree up to rounding)

    def moments(k):
        own = R[jnp.maximum(k - 1, 0)] * (k > 0).astype(R.dtype)
        A = (total - own) / W[k]
        a = s2[k] / W[k]
        if not fit_intercept:
            zero = jnp.zeros((), X.dtype)
            return A, a, jnp.zeros_like(a), zero, q[k] / W[k]
        d = s1[k] / W[k]      # the fold's mean, relative to the full data's
        tk = t[k] / W[k]
        return A - jnp.outer(d, d), a - d * tk, m0 + d, z0 + tk, q[k] / W[k] - tk * tk

    return moments


def _held_out_scores(X, y, off, res, test_blocks, test_sums, family, scoring):
    """(K, m) weighted mean metric of each fold path over its own held-out rows: one pass
    over X by row blocks (n p m multiply-adds, not K n p m)."""
    idx, wts, start = test_blocks
    K, m = res.coef.shape[0] - 1, res.coef.shape[1]
    dtype = X.dtype
    fold = jnp.searchsorted(start, jnp.arange(idx.shape[0]), side="right") - 1

    def add(i, acc):
        k = fold[i] + 1   # path row k is fold k - 1
        r, wb = idx[i], wts[i]
        eta = X[r] @ res.coef[k].T + res.intercept[k] + off[r][:, None]     # (B, m)
        metric = _metric(scoring, family, y[r][:, None], family.link.inverse(eta))
        part = jnp.sum(jnp.where(wb[:, None] > 0, wb[:, None] * metric, 0.0), 0)
        return acc.at[k - 1].add(part)

    total = jax.lax.fori_loop(0, start[-1], add, jnp.zeros((K, m), dtype))
    return total / test_sums[:, None]


def _held_out_scores_design(X, y, off, res, test_w, family, scoring):
    """(K, m) held-out scores for a design (sparse, categorical, blocks): one structured
    matvec X b per fold and alpha (`lax.map`, so memory stays O(n)), no row gathers."""
    K, m = res.coef.shape[0] - 1, res.coef.shape[1]
    coef = res.coef[1:].reshape(K * m, -1)
    icpt = res.intercept[1:].reshape(K * m)
    fold = jnp.repeat(jnp.arange(K), m)

    def score(a):
        b, b0, k = a
        metric = _metric(scoring, family, y, family.link.inverse(X @ b + b0 + off))
        tw = test_w[k + 1]
        return jnp.sum(jnp.where(tw > 0, tw * metric, 0.0)) / jnp.sum(tw)

    return jax.lax.map(score, (coef, icpt, fold)).reshape(K, m)


@_programs.jit(static_argnames=("cfg", "scoring"))
def _cv_jit(X, y, train_w, test_w, off, pf, alphas, l1_ratio, ctl, blocks, test_blocks, cfg,
            scoring):
    _TRACES["cv"] += 1  # runs at trace time only

    # sequential over folds: each path keeps its own loop trip counts (a vmap would run
    # every while loop to the slowest fold's count, with masked updates)
    if blocks is not None:
        moments = _gram_moments(X, y, off, train_w, blocks, cfg.fit_intercept)
        rows = jnp.arange(train_w.shape[0])
        res = jax.lax.map(lambda a: P.path_core(X, y, a[0], off, pf, a[1], l1_ratio, ctl,
                                                cfg, moments(a[2])), (train_w, alphas, rows))
    elif cfg.hessian and not is_design(X):   # one product over X per step for all paths
        res = path_lockstep(X, y, train_w, off, pf, alphas, l1_ratio, ctl, cfg)
    else:
        res = jax.lax.map(lambda a: P.path_core(X, y, a[0], off, pf, a[1], l1_ratio, ctl,
                                                cfg), (train_w, alphas))
    def split(res):  # (full-data path, fold paths): sliced here, not by eager indexing
        return (jax.tree_util.tree_map(lambda x: x[0], res),
                jax.tree_util.tree_map(lambda x: x[1:], res))

    if is_design(X):
        return split(res), _held_out_scores_design(X, y, off, res, test_w, cfg.family, scoring)
    if test_blocks is not None:
        return split(res), _held_out_scores(X, y, off, res, test_blocks,
                                            jnp.sum(test_w[1:], -1), cfg.family, scoring)
    # overlapping test sets: held-out scores of the K fold paths over every row
    eta = jnp.einsum("np,kmp->kmn", X, res.coef[1:]) + res.intercept[1:, :, None] + off
    mu = cfg.family.link.inverse(eta)
    metric = _metric(scoring, cfg.family, y, mu)                       # (K, m, n)
    tw = test_w[1:, None, :]
    scores = jnp.sum(jnp.where(tw > 0, tw * metric, 0.0), -1) / jnp.sum(test_w[1:], -1)[:, None]
    return split(res), scores


def _device_blocks(blocks, dtype):
    if blocks is None:
        return None
    idx, wts, start = blocks
    return tuple(validation.to_device(a, t) for a, t in ((idx, None), (wts, dtype),
                                                          (start, None)))


class CVPath(NamedTuple):
    """Cross-validation of a path. scores (K, m): held-out metric per fold and alpha;
    mean, se (m,); best_index, index_1se; alpha_min, alpha_1se; path: the full-data Path;
    fold_paths: the K fold Paths (leading axis K); scoring; alphas (m,) (full data)."""

    alphas: np.ndarray
    l1_ratio: float
    scores: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    best_index: int
    index_1se: int
    alpha_min: float
    alpha_1se: float
    path: P.Path
    fold_paths: P.Path
    scoring: str


class GridEdgeWarning(UserWarning):
    """Cross-validation chose a penalty at an end of its grid: the optimum may lie beyond."""


def grid_edge(best, n_values, top_has_coefficients):
    """"smallest" / "largest" when index `best` of a decreasing grid is at an end, else None.

    The largest value counts only when its fit still has nonzero coefficients: a lasso
    grid starting at alpha_max ends where every larger alpha gives the same (null) fit,
    so choosing it says nothing about the grid."""
    if n_values < 2:
        return None
    if best == n_values - 1:
        return "smallest"
    if best == 0 and top_has_coefficients:
        return "largest"
    return None


def warn_grid_edge(owner, name, value, edge, hint, stacklevel=3):
    """Warn (GridEdgeWarning) that the chosen `name` = value is the `edge` end of its grid."""
    if edge is None:
        return
    beyond = "below" if edge == "smallest" else "above"
    warnings.warn(f"{owner}: the chosen {name} = {value:.6g} is the {edge} value of the grid; "
                  f"the cross-validated optimum may lie {beyond} it. {hint}",
                  GridEdgeWarning, stacklevel=stacklevel)


def choose(mean, se, sign=1.0):
    """(best index, one-standard-error index) for alphas in decreasing order.

    A strength whose held-out loss is not finite is never chosen; when none is finite, a
    ValueError says why."""
    loss = sign * np.asarray(mean, float)
    finite = np.isfinite(loss)
    if not finite.any():
        raise ValueError(
            "cross-validation: the held-out loss is not finite (NaN or inf) at any alpha: the "
            "fitted means left the family's domain on held-out rows (for instance a negative "
            "mean under Gamma's inverse link). Use a link onto the family's support (such as "
            "'log'), or check the data.")
    loss = np.where(finite, loss, np.inf)
    best = int(np.argmin(loss))
    spread = np.asarray(se, float)[best]
    within = np.flatnonzero(loss <= loss[best] + (spread if np.isfinite(spread) else 0.0))
    return best, int(within[0])


def cv_path(X, y, family=None, l1_ratio=1.0, alphas=None, folds=5, *, n_alphas=100,
            eps=None, weights=None, offset=None, penalty_weights=None, fit_intercept=True,
            scoring="deviance", tol=None, max_iter=100, max_sweeps=10000, method="auto",
            warn_edge=True):
    """K-fold cross-validation of the path (see the module docstring); returns a `CVPath`.

    alphas: (m,) decreasing (default: the full data's `alpha_grid` with n_alphas, eps),
    shared by every fold; or (K + 1, m): the full data's row first, then one row per fold
    (e.g. a strength that scales with the number of training rows, as LogisticRegression's
    C). folds: an int K (K-fold), fold ids (n,) or (train, test) index pairs.
    When alpha_min is an end of the grid (the smallest alpha, or the largest while its fit
    still has nonzero coefficients) a `GridEdgeWarning` says so (warn_edge=False: silent).
    """
    if scoring not in SCORINGS:
        raise ValueError(f"scoring: expected one of {sorted(SCORINGS)}, got {scoring!r}.")
    if alphas is None:
        alphas = P.alpha_grid(X, y, family, l1_ratio, n_alphas, eps, weights, offset,
                              penalty_weights, fit_intercept)
    family, Xj, yj, w, off, pf, r = P.path_inputs(X, y, family, l1_ratio, weights,
                                                  offset, penalty_weights, fit_intercept)
    n = Xj.shape[0]
    n_data = np.shape(y)[0]   # the caller's rows; Xj has zero-weight padding below n
    train, test = (np.pad(np.asarray(m), ((0, 0), (0, n - n_data)))
                   for m in fold_masks(folds, n_data))
    K = train.shape[0]
    a = np.asarray(alphas, float)
    if a.ndim == 1:
        P.check_alphas(a)
        a = np.broadcast_to(a, (K + 1, a.shape[0]))
    elif a.shape[0] != K + 1:
        raise ValueError(f"alphas: a 2-D alphas needs K + 1 = {K + 1} rows (full data, then "
                         f"each fold), got shape {a.shape}.")
    else:
        for row in a:
            P.check_alphas(row)
    if scoring in ("log_loss", "accuracy") and type(family).__name__ != "Binomial":
        raise ValueError(f"scoring: {scoring!r} needs the Binomial family.")
    dtype = Xj.dtype
    w_np = np.asarray(w)
    train_w = validation.to_device(np.vstack([np.ones((1, n)), train]) * w_np, dtype)
    test_w = validation.to_device(np.vstack([np.ones((1, n)), test]) * w_np, dtype)
    if np.any(np.asarray(test_w).sum(1) <= 0) or np.any(np.asarray(train_w).sum(1) <= 0):
        raise ValueError("folds: every fold needs rows with positive weight on both the "
                         "training and the held-out side.")
    design = is_design(Xj)
    cfg = P.make_config(family, Xj.shape, fit_intercept, method, design=design)
    ctl = P.make_control(dtype, tol, max_iter, max_sweeps)
    p = Xj.shape[1]
    rows = _block_rows(n, K, p)
    test_np = np.asarray(test_w)[1:]
    test_blocks = None if design else _device_blocks(_fold_blocks(test_np, rows), dtype)
    blocks = None
    if cfg.gram and (K + 1) * p * p <= _MAX_GRAM_ENTRIES:
        removed = w_np[None, :] - np.asarray(train_w)[1:]
        kept = np.where((removed > 0).any(0), 0.0, w_np)
        blocks = _device_blocks(_fold_blocks(np.vstack([removed, kept[None]]), rows), dtype)
    (full, fold_paths), scores = _cv_jit(Xj, yj, train_w, test_w, off, pf,
                                         validation.to_device(a, dtype), r, ctl, blocks,
                                         test_blocks, cfg, scoring)
    scores = np.asarray(scores)
    mean = scores.mean(0)
    se = scores.std(0, ddof=1) / np.sqrt(K)
    best, one_se = choose(mean, se, SCORINGS[scoring])
    if warn_edge:
        edge = grid_edge(best, a.shape[1], bool(np.asarray(full.df)[0] > 0))
        warn_grid_edge("cv_path", "alpha", float(a[0][best]), edge,
                       "Pass a wider grid (alphas, or a smaller eps).")
    return CVPath(a[0].copy(), float(l1_ratio), scores, mean, se, best, one_se,
                  float(a[0][best]), float(a[0][one_se]), full, fold_paths, scoring)


# -- information criteria --------------------------------------------------------------------

@_programs.jit(static_argnames=("family", "fit_intercept"))
def _ic_jit(coef, intercept, df, X, y, w, off, family, fit_intercept):
    mu = family.link.inverse(X @ coef.T + intercept + off[:, None]).T    # (m, n)
    pos = w > 0
    nobs = jnp.sum(pos)

    def llf(m):
        dev = jnp.sum(jnp.where(pos, w * family.unit_deviance(y, m), 0.0))
        return log_likelihood(family, y, m, w, dev, nobs, dev / jnp.sum(w))

    ll = jax.vmap(llf)(mu)
    k = df + int(fit_intercept) + int(family.estimates_dispersion)
    return ll, k, nobs


class ICResult(NamedTuple):
    """llf, k (parameters counted), aic, bic per alpha; best_aic, best_bic indices."""

    llf: np.ndarray
    k: np.ndarray
    aic: np.ndarray
    bic: np.ndarray
    best_aic: int
    best_bic: int


def information_criteria(path, X, y, family=None, weights=None, offset=None,
                         fit_intercept=True):
    """AIC and BIC along a path, with R's log-likelihood (`inference.log_likelihood`:
    dispersion from the deviance for Gaussian, Gamma, InverseGaussian) and k = nonzero
    coefficients + intercept (+ 1 for an estimated dispersion) -- the degrees of freedom
    of the lasso (Zou, Hastie and Tibshirani 2007)."""
    family, X, y, w, off, _, _ = P.path_inputs(X, y, family, 1.0, weights, offset, None,
                                               fit_intercept)
    ll, k, nobs = _ic_jit(path.coef, path.intercept, path.df, X, y, w, off, family,
                          bool(fit_intercept))
    ll, k = np.asarray(ll), np.asarray(k)
    aic = -2 * ll + 2 * k
    bic = -2 * ll + np.log(float(nobs)) * k
    return ICResult(ll, k, aic, bic, int(np.argmin(aic)), int(np.argmin(bic)))
