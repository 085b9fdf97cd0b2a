"""Regularization paths: alpha_max, a log-spaced grid, and whole elastic-net paths.

    alpha_max(X, y, family, l1_ratio)           smallest alpha that zeroes every coefficient
    alpha_grid(X, y, family, l1_ratio, n_alphas=100, eps=1e-3)
    path(X, y, family, l1_ratio, alphas)         -> Path (coef matrix, intercepts, deviance, df)

The objective at each alpha is docs/objective.md's: sum_i w_i nll_i / sum_i w_i + alpha * sum_j f_j
(l1_ratio |b_j| + (1 - l1_ratio) / 2 b_j^2), f_j the per-feature penalty factors
(glmnet's `penalty.factor`; f_j = 0 leaves b_j unpenalized).

alpha_max: at the null fit (intercept, offset and every unpenalized feature, fitted
exactly) the gradient g of the mean loss gives alpha_max = max_{f_j > 0} |g_j| /
(l1_ratio f_j): for alpha >= alpha_max the null fit satisfies the optimality conditions
with every penalized coefficient zero. It is inf for l1_ratio = 0 (ridge never zeroes);
`alpha_grid` then uses l1_ratio = 1e-3, as glmnet, and reaches down to 1e-6 of that
(`default_eps`).

`path` is one jit-compiled function: a `lax.scan` over the (decreasing) alphas, each
warm-started from the previous solution (glmnet's method; the covariance solver starts
from the previous two solutions extrapolated linearly in alpha, `_secant_start`, exact
while the active set holds, so such alphas cost one confirming sweep):

- screening: the sequential strong rule keeps feature j at alpha_k when |g_j| >=
  l1_ratio f_j (2 alpha_k - alpha_{k-1}) (g at the previous solution), plus every
  nonzero and unpenalized feature;
- working set: coordinate descent sweeps only that set (compacted index list, so a
  sweep costs O(set size), not O(p)), alternating full sweeps of the set with sweeps
  of its nonzero coefficients until a full sweep moves nothing beyond tol; the runs of
  nonzero sweeps are Anderson-accelerated (Bertrand and Massias 2021, as skglm): every
  ANDERSON_K + 1 sweeps the extrapolation of the last iterates replaces the iterate when
  it lowers the objective (near interpolation, n < p at small alpha, this cuts the
  sweeps per alpha from thousands to hundreds);
- KKT check: the gradient over *all* features; violators of |g_j| <= alpha l1_ratio f_j
  join the set and the problem is solved again (the strong rule is a heuristic, the
  check makes the answer exact);
- three inner solvers chosen statically: "covariance" (Gaussian with identity link and
  p <= GRAM_MAX_FEATURES: the weighted, centred Gram matrix is formed once, an update
  costs O(p); also for p > n, where an update still costs fewer XLA kernels than a
  residual update, which is what bounds CD on CPU), "hessian" (other families on a dense
  X with p <= HESSIAN_MAX_FEATURES: proximal Newton on a weighted Gram that is carried
  along the path and formed afresh only when the moves stop contracting, `_hessian_solve`;
  two passes over X per IRLS step instead of two O(n) vector passes per coordinate update)
  and "naive" (IRLS outer loop with step halving, residual updates costing O(n)).

The covariance solver's cost: the Gram matrix and the other moments in one pass over X
(`centred_moments`: on CPU row blocks shifted and weighted in cache, each adding only its
upper block triangle, about 56-62% of the multiply-adds of X' W X; at n=10k, p=1k about
1.3x the time of numpy's syrk, which XLA:CPU lacks), then per alpha
O(p) per coordinate update with u = G b carried along the whole path, and the deviance from
the moments (syy - 2 c'b + b'u) rather than a pass over X.

Convergence: an update moves no coefficient by more than `tol` in the scale of its
curvature (sqrt(H_jj) |delta b_j|, as `solvers.CoordinateDescent`). `status` per alpha
is `solvers.Status`: 0 converged, 1 max_iter (IRLS iterations, sweeps or KKT rounds),
2 non-finite. Everything is traceable: `path` runs under jit and vmap (over weights,
alphas, l1_ratio; this is how `linjax.selection` fits every fold at once).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs, buckets, inputs, links, validation
from linjax.designs.types import is_design
from linjax.families import Gaussian, eta_derivatives, get_family
from linjax.penalties import ElasticNet, soft_threshold
from linjax.solvers._common import halving_search
from linjax.solvers.gram import (
    COLUMN_BLOCK,
    column_blocks,
    sum_row_blocks,
    triangle_add,
    triangle_finish,
    triangle_rows,
    triangle_zeros,
)
from linjax.solvers.status import Status
from linjax.starting import intercept_only_fit

#: Widest Gaussian problem for which the covariance (Gram) solver is used.
GRAM_MAX_FEATURES = 4096
#: Widest dense GLM for which method="auto" takes the "hessian" solver (a p x p Gram carried
#: along the path, n p^2 / 2 multiply-adds each time it is formed) rather than "naive".
HESSIAN_MAX_FEATURES = 512


class Path(NamedTuple):
    """A regularization path (a pytree: passes through jit and vmap).

    alphas (m,); coef (m, p); intercept (m,); deviance (m,): the weighted mean unit
    deviance sum_i w_i d_i / sum_i w_i of the training data at each alpha;
    null_deviance (): the same for the null fit; df (m,): nonzero coefficients;
    n_iter (m,): coordinate sweeps; status (m,) (`solvers.Status`); converged (m,);
    l1_ratio ().
    """

    alphas: jax.Array
    coef: jax.Array
    intercept: jax.Array
    deviance: jax.Array
    null_deviance: jax.Array
    df: jax.Array
    n_iter: jax.Array
    status: jax.Array
    converged: jax.Array
    l1_ratio: jax.Array

    @property
    def dev_ratio(self):
        """Fraction of (null) deviance explained at each alpha (glmnet's dev.ratio)."""
        return 1.0 - self.deviance / self.null_deviance


class _Config(NamedTuple):
    """Static configuration (part of the jit cache key)."""

    family: object
    fit_intercept: bool
    gram: bool
    exact: bool          # the quadratic model is the objective (Gaussian, identity link)
    fisher: bool
    hessian: bool = False  # GLM: proximal Newton on a weighted Gram reused while it contracts


class Control(NamedTuple):
    """Numeric controls (traced: changing them does not recompile)."""

    tol: jax.Array
    max_iter: jax.Array      # IRLS iterations per alpha
    max_sweeps: jax.Array    # coordinate sweeps per quadratic
    max_rounds: jax.Array    # KKT rounds per alpha


#: Ulps within which the kernels' soft-thresholding treats an excess over the threshold as
#: zero (so that alpha_max itself gives exactly zero coefficients).
SOFT_ROUNDING = 64


def _safe_sum(w, values):
    """sum_i w_i values_i, with zero-weight rows contributing exactly 0 (even if inf)."""
    return jnp.sum(jnp.where(w > 0, w * values, 0.0))


# -- the data of one problem --------------------------------------------------------------

class _Data(NamedTuple):
    X: jax.Array
    XT: jax.Array
    y: jax.Array
    w: jax.Array          # normalized to sum to one
    off: jax.Array
    pf: jax.Array
    colscale: jax.Array   # sum_i w_i x_ij^2 (the Gaussian curvature, a KKT scale)
    G: object = None      # covariance mode: weighted centred Gram, X'c W yc, means
    c: object = None
    xbar: object = None
    ybar: object = None
    syy: object = None    # sum_i w_i (z_i - ybar)^2 (the null deviance of the centred problem)


def _prepare(X, y, w, off, pf, cfg, moments=None):
    w = w / jnp.sum(w)
    if cfg.gram and moments is not None:  # (G, c, xbar, ybar, syy), e.g. from `selection`
        G, c, xbar, ybar, syy = moments
        return _Data(X, None, y, w, off, pf, jnp.diag(G), G, c, xbar, ybar, syy)
    if is_design(X):  # products from the structure (`_design_solve`), no X.T
        return _Data(X, None, y, w, off, pf, X.squared_rmatvec(w))
    if not cfg.gram:
        return _Data(X, X.T, y, w, off, pf, jnp.einsum("ij,ij,i->j", X, X, w))
    G, c, xbar, ybar, syy = centred_moments(X, y - off, w, cfg.fit_intercept)
    return _Data(X, None, y, w, off, pf, jnp.diag(G), G, c, xbar, ybar, syy)


# -- the weighted, centred Gram matrix: `gram`'s upper block triangle over row blocks -----

# (the kernel's names as this module used them; tests and callers read them here)
GRAM_COLUMN_BLOCK = COLUMN_BLOCK
gram_block_rows = triangle_rows
_column_blocks = column_blocks


#: Rows of X averaged for the shift of the one-pass moments (evenly spaced, so sorted data
#: gives a shift near the mean too).
SHIFT_SAMPLE_ROWS = 256


def _shift(X, z, w):
    """A cheap stand-in for the weighted means of X and z: those of a few evenly spaced rows
    (unweighted if all of them have weight zero)."""
    pick = np.linspace(0, X.shape[0] - 1, min(X.shape[0], SHIFT_SAMPLE_ROWS)).round()
    pick = np.unique(pick.astype(int))
    ws = w[pick]
    total = jnp.sum(ws)
    ws = jnp.where(total > 0, ws / jnp.where(total > 0, total, 1.0), 1.0 / pick.size)
    return ws @ X[pick], ws @ z[pick]


def _moments_blocked(X, z, w, fit_intercept, rows):
    n, p = X.shape
    if fit_intercept:
        s, sz = _shift(X, z, w)
    else:
        s, sz = jnp.zeros((p,), X.dtype), jnp.zeros((), X.dtype)

    def block(Xb, zb, wb):
        A = jnp.concatenate([Xb - s, (zb - sz)[:, None], jnp.ones_like(zb)[:, None]], axis=1)
        A = jnp.where(wb[:, None] > 0, A, 0.0)   # zero-weight rows add exactly nothing
        return triangle_add(triangle_zeros(p + 2, X.dtype), A, wb[:, None] * A)

    F = triangle_finish(sum_row_blocks(block, (X, z, w), rows, triangle_zeros(p + 2, X.dtype)))
    if not fit_intercept:
        return F[:p, :p], F[:p, p], s, sz, F[p, p]
    m, mz = F[:p, p + 1], F[p, p + 1]    # sum_i w_i (x_i - s), sum_i w_i (z_i - s_z)
    return (F[:p, :p] - jnp.outer(m, m), F[:p, p] - m * mz, s + m, sz + mz,
            F[p, p] - mz * mz)


def _moments_at_once(X, z, w, fit_intercept):
    if fit_intercept:
        xbar, ybar = w @ X, w @ z
    else:
        xbar, ybar = jnp.zeros(X.shape[1], X.dtype), jnp.zeros((), X.dtype)
    Xc, zc = X - xbar, z - ybar
    c = (w * zc) @ Xc    # v @ M: XLA:CPU would copy M.T for M.T @ v
    return Xc.T @ (w[:, None] * Xc), c, xbar, ybar, _safe_sum(w, zc * zc)


def centred_moments(X, z, w, fit_intercept=True, block_rows=None):
    """(G, c, xbar, ybar, syy) for weights w summing to one: xbar = w'X, ybar = w'z,
    G = sum_i w_i (x_i - xbar)(x_i - xbar)', c = sum_i w_i (x_i - xbar)(z_i - ybar),
    syy = sum_i w_i (z_i - ybar)^2 (xbar, ybar = 0 without an intercept).

    On CPU one pass over X by row blocks: each block is shifted by s (`_shift`), widened
    in cache with the columns z - s_z and 1, and adds its upper block triangle
    (`gram.triangle_add`, about half the multiply-adds of X' W X, no n x p temporaries); the
    moments about the mean follow from those about s, G = S - m m' with
    m = sum_i w_i (x_i - s) (small, since s is near the mean, so nothing cancels).
    Elsewhere: the means, then one product."""
    rows = triangle_rows(X.shape[1] + 2) if block_rows is None else int(block_rows)
    rows = min(rows, X.shape[0])
    return jax.lax.platform_dependent(
        X, z, w,
        cpu=lambda X, z, w: _moments_blocked(X, z, w, fit_intercept, rows),
        default=lambda X, z, w: _moments_at_once(X, z, w, fit_intercept))


# -- coordinate descent on one quadratic, over a working set ------------------------------

#: Anderson acceleration: extrapolate from the last ANDERSON_K + 1 sweeps of the same set.
ANDERSON_K = 5


def _anderson(hist, key):
    """Affine weights c (sum 1) minimising |sum_k c_k (x_{k+1} - x_k)| over the K + 1 stored
    iterates `key` (K + 1, p) (Anderson extrapolation, Bertrand and Massias 2021), applied
    to every leaf of `hist` (each affine in the coefficients). Returns (state, ok)."""
    U = jnp.diff(key, axis=0)                       # (K, p)
    C = U @ U.T
    # a tiny ridge keeps the solve defined when two differences are (nearly) collinear
    C = C + (1e-12 * jnp.trace(C) / C.shape[0] + jnp.finfo(C.dtype).tiny) * jnp.eye(C.shape[0],
                                                                                dtype=C.dtype)
    z = jnp.linalg.solve(C, jnp.ones(C.shape[0], C.dtype))
    total = jnp.sum(z)
    coef = z / jnp.where(total != 0, total, 1.0)
    ok = jnp.all(jnp.isfinite(coef)) & (total != 0)
    coef = jnp.where(ok, coef, 0.0)
    state = jax.tree_util.tree_map(lambda h: jnp.tensordot(coef, h[1:], axes=1), hist)
    return state, ok


def _active_set_cd(sweep, b_of, state, mask, always, tol, max_sweeps, objective=None):
    """Sweep `mask`, then its nonzero part until settled, then `mask` again; stop when a
    full sweep changes nothing beyond tol. Returns (state, sweeps, hit_cap).

    With `objective` (the quadratic's value at a state), the sweeps of the nonzero part
    are Anderson-accelerated: after every ANDERSON_K + 1 of them in a row, the
    extrapolated point replaces the iterate if it lowers the objective. Every leaf of the
    state must be affine in the coefficients (b, b0, residuals, G b), so the extrapolated
    state is consistent. Convergence is still decided by a plain full sweep."""
    K = ANDERSON_K
    accel = objective is not None
    hist = jax.tree_util.tree_map(lambda x: jnp.zeros((K + 1,) + x.shape, x.dtype), state)

    def cond(c):
        _, _, done, sweeps, _, _, _ = c
        return ~done & (sweeps < max_sweeps)

    def body(c):
        state, full, _, sweeps, hist, count, (prev, order) = c
        b = b_of(state)
        now = jnp.where(full, mask, mask & ((b != 0) | always))
        # the compacted index list is rebuilt only when the swept set changes
        order = jax.lax.cond(jnp.any(now != prev), _compact, lambda _: order, now)
        state, change = sweep(state, order)
        small = change <= tol
        if accel:
            # only consecutive sweeps of the nonzero part (one map) are extrapolated
            count = jnp.where(full, 0, count)
            hist = jax.tree_util.tree_map(
                lambda h, x: jax.lax.dynamic_update_index_in_dim(h, x, count, 0), hist, state)
            count = jnp.where(full, 0, count + 1)

            def extrapolate(state):
                new, ok = _anderson(hist, b_of(hist))
                better = ok & (objective(new) < objective(state))
                return jax.tree_util.tree_map(lambda a, o: jnp.where(better, a, o), new, state)

            ready = count == K + 1
            state = jax.lax.cond(ready & ~small, extrapolate, lambda s: s, state)
            count = jnp.where(ready, 0, count)
        return state, small & ~full, small & full, sweeps + 1, hist, count, (now, order)

    zero = jnp.asarray(0, jnp.int32)
    sets = (mask, _compact(mask))
    state, _, done, sweeps, _, _, _ = jax.lax.while_loop(
        cond, body, (state, jnp.asarray(True), jnp.asarray(False), zero, hist, zero, sets))
    return state, sweeps, ~done


def _compact(mask):
    """(idx, count): the indices where mask is True in increasing order, padded with
    valid indices to length p + 1, and how many there are."""
    p = mask.shape[0]
    pos = jnp.cumsum(mask.astype(jnp.int32)) - 1
    slot = jnp.where(mask, pos, p)   # the excluded all land in the pad slot p
    idx = jnp.zeros((p + 1,), jnp.int32).at[slot].set(jnp.arange(p, dtype=jnp.int32))
    return idx, jnp.sum(mask.astype(jnp.int32))


def _coordinate_loop(order, read, step, carry):
    """step(j, read(carry, j), carry) for j = idx[0], ..., idx[count - 1] in turn.

    The read for the next coordinate happens at the end of the previous step, after its
    update (software pipelining): then no fused kernel reads a carried array while
    another updates it in place, and XLA needs no copies (about 15% per update on CPU)."""
    idx, count = order

    def body(i, c):
        carry, got = c
        carry = step(idx[i], got, carry)
        return carry, read(carry, idx[i + 1])

    carry, _ = jax.lax.fori_loop(0, count, body, (carry, read(carry, idx[0])))
    return carry


def _gram_solve(d, l1, l2, b, u, mask, always, ctl, cfg):
    """Covariance-mode CD for 1/2 b'Gb - c'b + sum l1|b| + l2/2 b^2 (Gaussian, identity).
    u = G b on entry (carried along the path: recomputing it costs a p^2 pass per solve)."""
    tol = ctl.tol
    G, c = d.G, d.c
    denom = jnp.diag(G) + l2
    pos = denom > 0
    inv = jnp.where(pos, 1.0 / jnp.where(pos, denom, 1.0), 0.0)
    scale = jnp.sqrt(jnp.maximum(denom, 0.0))

    diag = jnp.diag(G)

    def read(carry, j):
        return carry[0][j], carry[1][j]

    def update(j, got, carry):
        b, u = carry
        bj, uj = got
        new = soft_threshold(c[j] - uj + diag[j] * bj, l1[j], SOFT_ROUNDING) * inv[j]
        return b.at[j].set(new), u + G[j] * (new - bj)

    def sweep(state, order):
        b, u = _coordinate_loop(order, read, update, state)
        # each coordinate moves once per sweep: the largest move, from the two iterates
        return (b, u), jnp.max(scale * jnp.abs(b - state[0]), initial=0.0)

    def objective(state):
        return _quadratic_objective(d, *state, l1, l2)

    (b, u), sweeps, capped = _active_set_cd(sweep, lambda s: s[0], (b, u), mask, always,
                                            tol, ctl.max_sweeps, objective)
    grad = u - c + l2 * b
    b0 = d.ybar - d.xbar @ b
    return b, b0, grad, sweeps, capped, jnp.asarray(False), u


def _penalty_value(b, l1, l2):
    return jnp.sum(l1 * jnp.abs(b) + 0.5 * l2 * b * b)


def _penalty_weights(d, alpha, l1_ratio):
    """(l1, l2): the per-coordinate L1 and L2 strengths at alpha."""
    return alpha * l1_ratio * d.pf, alpha * (1.0 - l1_ratio) * d.pf


def _quadratic_objective(d, b, u, l1, l2):
    """1/2 b'G b - c'b + penalty, with u = G b (the covariance solver's objective)."""
    return 0.5 * b @ u - d.c @ b + _penalty_value(b, l1, l2)


def _rmatvec(X, v):
    """X' v for an array or a design (v @ X: for X.T @ v, XLA:CPU copies X.T first, 6x
    slower at n = 200,000, p = 100)."""
    return X.rmatvec(v) if is_design(X) else v @ X


def _centred_quadratic(X, v, z, fit_intercept):
    """(G, c, xbar, ybar) of the weighted least-squares problem sum_i v_i (z_i - b0 - x_i'b)^2
    / 2 with the intercept eliminated: G = X'VX - m m'/s, c = X'Vz - m (v'z)/s, xbar = m/s,
    ybar = v'z/s (m = X'v, s = sum v), from the design's structured products (one pass)."""
    H, cz = X.weighted_products(v, v * z, intercept=fit_intercept)
    if not fit_intercept:
        return H, cz, jnp.zeros_like(cz), jnp.zeros((), cz.dtype)
    s = H[0, 0]
    s = jnp.where(s > 0, s, 1.0)
    xbar, ybar = H[0, 1:] / s, cz[0] / s
    return H[1:, 1:] - s * jnp.outer(xbar, xbar), cz[1:] - H[0, 1:] * ybar, xbar, ybar


def _damped_irls_step(data_loss, eta, d_eta, f_old, start, proposal, move, l1, l2, tol):
    """IRLS's step from start = (b, b0) toward proposal = (bn, b0n), halved until the
    penalized objective does not rise (d_eta: the proposal's change of the linear predictor;
    None: an exact quadratic, taken whole). Returns (b, b0, converged, nonfinite): a
    non-finite proposal keeps the start and stops."""
    (b, b0), (bn, b0n) = start, proposal
    dtype = bn.dtype
    if d_eta is None:
        t, accepted, converged = jnp.ones((), dtype), jnp.asarray(True), jnp.asarray(True)
    else:
        slack = 8 * jnp.finfo(dtype).eps * jnp.maximum(jnp.abs(f_old), 1.0)

        def f_at(t):
            return data_loss(eta + t * d_eta) + _penalty_value(b + t * (bn - b), l1, l2)

        t, _, accepted = halving_search(f_at, f_old, slack, 40, dtype)
        converged = (move <= tol) | ~accepted
    bn = jnp.where(accepted, b + t * (bn - b), b)
    b0n = jnp.where(accepted, b0 + t * (b0n - b0), b0)
    finite = jnp.all(jnp.isfinite(bn)) & jnp.isfinite(b0n)
    return (jnp.where(finite, bn, b), jnp.where(finite, b0n, b0), converged | ~finite,
            ~finite)


def _irls_loop(outer_cond, outer, b, b0, rmatvec, X, y, w, off, family, l2):
    """Run IRLS's outer loop from (b, b0); returns `_solve_alpha`'s tuple with the penalized
    gradient X' dnll/deta + l2 b at the end (rmatvec: v -> X' v)."""
    zero = jnp.asarray(0, jnp.int32)
    false = jnp.asarray(False)
    b, b0, sweeps, capped, it, done, nonfinite = jax.lax.while_loop(
        outer_cond, outer, (b, b0, zero, false, zero, false, false))
    eta = X @ b + b0 + off
    g_eta = jax.grad(lambda e: _safe_sum(w, family.nll(y, e)))(eta)
    grad = rmatvec(g_eta) + l2 * b
    return b, b0, grad, sweeps, capped | ~done, nonfinite, grad


def _design_solve(d, l1, l2, b, b0, mask, always, ctl, cfg):
    """`_naive_solve` for a design (sparse, categorical, blocks): IRLS with step halving,
    each quadratic formed by the design's structured weighted Gram (segment sums, never a
    dense one-hot) and solved by covariance-mode CD (`_gram_solve`, O(p) per update)."""
    family, X, y, w, off = cfg.family, d.X, d.y, d.w, d.off

    def data_loss(eta):
        return _safe_sum(w, family.nll(y, eta))

    def outer_cond(c):
        *_, it, done, _ = c
        return ~done & (it < ctl.max_iter)

    def outer(c):
        b, b0, sweeps_total, capped_total, it, _, _ = c
        eta = X @ b + b0 + off
        nll, g, h = eta_derivatives(family, y, eta, cfg.fisher)
        ok = (w > 0) & (h > 0) & jnp.isfinite(h) & jnp.isfinite(g)
        v = jnp.where(ok, w * h, 0.0)
        z = jnp.where(ok, eta - off - g / jnp.where(ok, h, 1.0), 0.0)  # working response
        f_old = _safe_sum(w, nll) + _penalty_value(b, l1, l2)
        G, cq, xbar, ybar = _centred_quadratic(X, v, z, cfg.fit_intercept)
        quad = d._replace(G=G, c=cq, xbar=xbar, ybar=ybar)
        bn, b0n, _, sweeps, capped, _, _ = _gram_solve(quad, l1, l2, b, G @ b, mask, always,
                                                       ctl, cfg)
        scale = jnp.sqrt(jnp.maximum(jnp.diag(G) + l2, 0.0))
        sv = jnp.sum(v)
        move = jnp.maximum(jnp.max(scale * jnp.abs(bn - b), initial=0.0),
                           jnp.sqrt(sv) * jnp.abs(b0n - b0))
        d_eta = None if cfg.exact else X @ (bn - b) + (b0n - b0)
        bn, b0n, converged, nonfinite = _damped_irls_step(
            data_loss, eta, d_eta, f_old, (b, b0), (bn, b0n), move, l1, l2, ctl.tol)
        return (bn, b0n, sweeps_total + sweeps, capped_total | capped, it + 1, converged,
                nonfinite)

    return _irls_loop(outer_cond, outer, b, b0, lambda v: X.rmatvec(v), X, y, w, off, family,
                      l2)


def _naive_solve(d, l1, l2, b, b0, mask, always, ctl, cfg):
    tol = ctl.tol
    """IRLS with step halving; each quadratic solved by CD with residual updates."""
    family, X, XT, y, w, off = cfg.family, d.X, d.XT, d.y, d.w, d.off
    dtype = X.dtype

    def data_loss(eta):
        return _safe_sum(w, family.nll(y, eta))

    def quad(b, b0):
        eta = X @ b + b0 + off
        nll, g, h = eta_derivatives(family, y, eta, cfg.fisher)
        ok = (w > 0) & (h > 0) & jnp.isfinite(h) & jnp.isfinite(g)
        v = jnp.where(ok, w * h, 0.0)
        r = jnp.where(ok, -g / jnp.where(ok, h, 1.0), 0.0)
        return eta, _safe_sum(w, nll), v, r

    def outer_cond(c):
        *_, it, done, _ = c
        return ~done & (it < ctl.max_iter)

    def outer(c):
        b, b0, sweeps_total, capped_total, it, _, _ = c
        eta, loss, v, r = quad(b, b0)
        f_old = loss + _penalty_value(b, l1, l2)
        xv2 = jnp.einsum("ij,ij,i->j", X, X, v)
        denom = xv2 + l2
        pos = denom > 0
        inv = jnp.where(pos, 1.0 / jnp.where(pos, denom, 1.0), 0.0)
        scale = jnp.sqrt(jnp.maximum(denom, 0.0))
        sv = jnp.sum(v)

        def read(carry, j):
            return carry[0][j], XT[j] @ (v * carry[1])

        def update(j, got, carry):
            b, r = carry
            bj, xr = got
            new = soft_threshold(xv2[j] * bj + xr, l1[j], SOFT_ROUNDING) * inv[j]
            return b.at[j].set(new), r - XT[j] * (new - bj)

        def sweep(state, order):
            b, b0, r = state
            change = jnp.zeros((), dtype)
            if cfg.fit_intercept:
                d0 = jnp.where(sv > 0, jnp.sum(v * r) / jnp.where(sv > 0, sv, 1.0), 0.0)
                r = r - d0
                b0 = b0 + d0
                change = jnp.sqrt(sv) * jnp.abs(d0)
            bn, r = _coordinate_loop(order, read, update, (b, r))
            change = jnp.maximum(change, jnp.max(scale * jnp.abs(bn - b), initial=0.0))
            return (bn, b0, r), change

        def objective(state):
            b, _, r = state
            return 0.5 * jnp.sum(v * r * r) + _penalty_value(b, l1, l2)

        (bn, b0n, rn), sweeps, capped = _active_set_cd(
            sweep, lambda s: s[0], (b, b0, r), mask, always, tol, ctl.max_sweeps, objective)
        move = jnp.maximum(jnp.max(scale * jnp.abs(bn - b), initial=0.0),
                           jnp.sqrt(sv) * jnp.abs(b0n - b0))
        d_eta = None if cfg.exact else r - rn
        bn, b0n, converged, nonfinite = _damped_irls_step(
            data_loss, eta, d_eta, f_old, (b, b0), (bn, b0n), move, l1, l2, tol)
        return (bn, b0n, sweeps_total + sweeps, capped_total | capped, it + 1, converged,
                nonfinite)

    return _irls_loop(outer_cond, outer, b, b0, lambda v: XT @ v, X, y, w, off, family, l2)


# -- proximal Newton on a reused weighted Gram (dense X, any family) ----------------------

#: The "hessian" solver keeps its weighted Gram while successive IRLS moves shrink at least
#: this much (move_k <= HESSIAN_RATE move_{k-1}); a slower step (or a halved one) has the
#: Gram formed afresh at the current point before the next. (0.2 rather than 0.05: a step
#: costs two passes over X, a Gram p / 2 of them; in cross-validation's lockstep, where the
#: passes of all folds are one product, 0.2 cut the CPU time by about 10%.)
HESSIAN_RATE = 0.2


class _Hessian(NamedTuple):
    """The carried quadratic model of the "hessian" solver: G = sum_i v_i (x_i - xbar)
    (x_i - xbar)' (the intercept eliminated), xbar = X'v / s, s = sum_i v_i, v = w h at the
    point where it was formed; valid: formed at all. `eta`: the linear predictor at the
    path's current solution (so an alpha starts without a pass over X)."""

    G: jax.Array
    xbar: jax.Array
    s: jax.Array
    valid: jax.Array
    eta: jax.Array


def _hessian_start(X, dtype):
    p, n = X.shape[1], X.shape[0]
    return _Hessian(jnp.zeros((p, p), dtype), jnp.zeros((p,), dtype), jnp.ones((), dtype),
                    jnp.asarray(False), jnp.zeros((n,), dtype))


def _weighted_gram(X, v, fit_intercept):
    """(G, xbar, s) of `_Hessian` for curvature weights v (one blocked pass over X)."""
    s = jnp.sum(v)
    s = jnp.where(s > 0, s, 1.0)
    G, _, xbar, _, _ = centred_moments(X, jnp.zeros_like(v), v / s, fit_intercept)
    return G * s, xbar, s


#: Relative damping added to the diagonal of a float32 model Gram (above its rounding, so the
#: model stays convex where X has nearly collinear columns).
SINGLE_GRAM_DAMPING = 1e-5


def _model_gram(X, v, fit_intercept, exact, X32=None):
    """`_weighted_gram` for the "hessian" solver's quadratic model: in float32 for a float64
    X unless `exact` (2.5x faster on CPU at n = 10,000, p = 100), its diagonal raised by
    SINGLE_GRAM_DAMPING. The Gram only shapes the steps (the gradient is exact, so the
    fixed point is too); where its rounding slows the solve (an ill-conditioned X), the
    solver asks for it exact (`_next_gram`). X32: X in float32, cast once by a caller that
    forms many Grams (the cast costs half as much again as the float32 Gram)."""
    if X.dtype != jnp.float64:
        return _weighted_gram(X, v, fit_intercept)

    def single():
        G, xbar, s = _weighted_gram(X.astype(jnp.float32) if X32 is None else X32,
                                    v.astype(jnp.float32), fit_intercept)
        G = G.astype(X.dtype)
        G = G + SINGLE_GRAM_DAMPING * jnp.diag(jnp.diag(G))
        return G, xbar.astype(X.dtype), s.astype(X.dtype)

    return jax.lax.cond(exact, lambda: _weighted_gram(X, v, fit_intercept), single)


def _next_gram(refresh, whole, move, prev, exact, fresh_whole, capped):
    """After a step of the "hessian" solver: (refresh, exact, fresh_whole, capped, failed)
    for the next (failed: this step does not count as converged). Refresh the Gram when
    the step was halved or the moves stopped contracting by HESSIAN_RATE. Form it exact
    (float64) for the rest of this alpha's solve when a float32 Gram failed: its
    coordinate descent hit the sweep cap (then that cap does not count toward the status),
    or the step after one formed afresh (and taken whole) did not contract by
    HESSIAN_RATE, as Newton's step near the optimum does."""
    slow = move > HESSIAN_RATE * prev
    failed = ~exact & (capped | (fresh_whole & jnp.isfinite(prev) & slow))
    refresh_next = ~whole | slow | failed
    return refresh_next, exact | failed, refresh & whole, capped & exact, failed


def _hessian_solve(d, l1, l2, b, b0, model, mask, always, ctl, cfg):
    """Proximal Newton for a GLM on a dense X: at (b, b0) with the exact gradient
    (g0, g) = (sum_i w_i nll'_i, X' (w nll')), minimise the quadratic model
    1/2 delta' G delta + (g - xbar g0)' delta + penalty(b + delta) by covariance-mode CD
    (`_gram_solve`, O(p) per update), the intercept step delta0 = -g0 / s - xbar' delta,
    then halve the step until the penalized objective does not rise. G (`_Hessian`) is the
    weighted Gram X'VX (v = w h) formed at an earlier point and reused while the moves
    contract by HESSIAN_RATE per step (a chord method: the fixed point is the exact
    optimum, since the gradient is exact); otherwise formed afresh at the current point
    (Newton). Per step two passes over X (X delta and X' r), a Gram only when refreshed:
    along a path the Gram of the previous alpha's solution usually serves several alphas."""
    family, X, y, w, off = cfg.family, d.X, d.y, d.w, d.off
    dtype = X.dtype
    tol = ctl.tol
    pos = w > 0

    def derivatives(eta):
        nll, g, h = eta_derivatives(family, y, eta, cfg.fisher)
        ok = pos & (h > 0) & jnp.isfinite(h) & jnp.isfinite(g)
        v = jnp.where(ok, w * h, 0.0)
        ge = jnp.where(pos, w * g, 0.0)
        return _safe_sum(w, nll), ge, v, ge @ X

    def data_loss(eta):
        return _safe_sum(w, family.nll(y, eta))

    # a carried eta saves a pass over X (jnp.where would compute X b regardless)
    eta = jax.lax.cond(model.valid, lambda: model.eta, lambda: X @ b + b0 + off)
    loss, ge, v, grad = derivatives(eta)

    def cond(c):
        it, done = c[-3], c[-2]
        return ~done & (it < ctl.max_iter)

    def body(c):
        (b, b0, eta, loss, ge, v, grad, model, refresh, prev, exact, fresh_whole,
         sweeps_total, capped_total, it, _, _) = c
        G, xbar, s = jax.lax.cond(refresh,
                                  lambda: _model_gram(X, v, cfg.fit_intercept, exact),
                                  lambda: (model.G, model.xbar, model.s))
        g0 = jnp.sum(ge) if cfg.fit_intercept else jnp.zeros((), dtype)
        c_lin = G @ b - (grad - xbar * g0)
        quad = d._replace(G=G, c=c_lin, xbar=xbar, ybar=jnp.zeros((), dtype))
        u = c_lin + (grad - xbar * g0)          # G b
        bn, _, _, sweeps, capped, _, _ = _gram_solve(quad, l1, l2, b, u, mask, always, ctl,
                                                     cfg)
        delta = bn - b
        delta0 = (-(g0 / s) - xbar @ delta) if cfg.fit_intercept else jnp.zeros((), dtype)
        scale = jnp.sqrt(jnp.maximum(jnp.diag(G) + l2, 0.0))
        move = jnp.maximum(jnp.max(scale * jnp.abs(delta), initial=0.0),
                           jnp.sqrt(s) * jnp.abs(delta0))
        d_eta = X @ delta + delta0
        f_old = loss + _penalty_value(b, l1, l2)
        slack = 8 * jnp.finfo(dtype).eps * jnp.maximum(jnp.abs(f_old), 1.0)
        t, _, accepted = halving_search(
            lambda t: data_loss(eta + t * d_eta) + _penalty_value(b + t * delta, l1, l2),
            f_old, slack, 40, dtype)
        t = jnp.where(accepted, t, 0.0)
        bn, b0n, etan = b + t * delta, b0 + t * delta0, eta + t * d_eta
        finite = jnp.all(jnp.isfinite(bn)) & jnp.isfinite(b0n)
        bn, b0n, etan = (jnp.where(finite, new, old) for new, old in
                         ((bn, b), (b0n, b0), (etan, eta)))
        loss, ge, v, grad = derivatives(etan)
        # converged: this move, or the next one predicted from the contraction so far
        # (move * move / prev), is within tol
        whole = t == 1
        predicted = whole & jnp.isfinite(prev) & (move * move <= tol * prev)
        converged = ((move <= tol) | predicted | ~accepted
                     | ~finite)
        refresh, exact, fresh_whole, capped, failed = _next_gram(refresh, whole, move, prev,
                                                                 exact, fresh_whole, capped)
        converged = converged & ~failed
        model = model._replace(G=G, xbar=xbar, s=s, valid=jnp.asarray(True))
        return (bn, b0n, etan, loss, ge, v, grad, model, refresh, move, exact, fresh_whole,
                sweeps_total + sweeps, capped_total | capped, it + 1, converged, ~finite)

    zero = jnp.asarray(0, jnp.int32)
    false = jnp.asarray(False)
    inf = jnp.asarray(jnp.inf, dtype)
    out = jax.lax.while_loop(cond, body, (b, b0, eta, loss, ge, v, grad, model, ~model.valid,
                                          inf, false, false, zero, false, zero, false, false))
    b, b0, eta, _, _, _, grad, model, _, _, _, _, sweeps, capped, _, done, nonfinite = out
    grad = grad + l2 * b
    return b, b0, grad, sweeps, capped | ~done, nonfinite, model._replace(eta=eta)


# -- one alpha: strong set, solve, KKT check ----------------------------------------------

def _solve_alpha(d, cfg, alpha, l1_ratio, b, b0, u, mask, ctl, allowed=None):
    tol = ctl.tol
    l1, l2 = _penalty_weights(d, alpha, l1_ratio)
    always = l1 <= 0
    mask = mask | always | (b != 0)
    if allowed is not None:  # coordinates outside `allowed` stay where they are
        always = always & allowed
        mask = mask & allowed

    def solve(b, b0, u, mask):
        if cfg.gram:
            return _gram_solve(d, l1, l2, b, u, mask, always, ctl, cfg)
        if is_design(d.X):
            return _design_solve(d, l1, l2, b, b0, mask, always, ctl, cfg)
        if cfg.hessian:
            return _hessian_solve(d, l1, l2, b, b0, u, mask, always, ctl, cfg)
        return _naive_solve(d, l1, l2, b, b0, mask, always, ctl, cfg)

    def cond(c):
        *_, viol, rounds = c
        return viol & (rounds < ctl.max_rounds)

    def body(c):
        b, b0, mask, _, u, sweeps, capped, nonfinite, _, rounds = c
        b, b0, grad, s, cap, nf, u = solve(b, b0, u, mask)
        slack = tol * jnp.sqrt(d.colscale + l2)
        viol = ~mask & (jnp.abs(grad) > l1 + slack)
        if allowed is not None:
            viol = viol & allowed
        return (b, b0, mask | viol, grad, u, sweeps + s, capped | cap, nonfinite | nf,
                jnp.any(viol), rounds + 1)

    zero = jnp.asarray(0, jnp.int32)
    false = jnp.asarray(False)
    init = (b, b0, mask, jnp.zeros_like(b), u, zero, false, false,
            jnp.asarray(True), zero)
    b, b0, mask, grad, u, sweeps, capped, nonfinite, viol, _ = jax.lax.while_loop(cond, body,
                                                                                  init)
    status = jnp.where(nonfinite, int(Status.NON_FINITE),
                       jnp.where(capped | viol, int(Status.MAX_ITER), int(Status.CONVERGED)))
    return b, b0, grad, u, sweeps, status.astype(jnp.int32)


def _mean_deviance(d, cfg, b, b0):
    mu = cfg.family.link.inverse(d.X @ b + b0 + d.off)
    return _safe_sum(d.w, cfg.family.unit_deviance(d.y, mu))


def _path_deviance(d, cfg, b, b0, u):
    """The mean deviance at (b, b0). Covariance solver: from the moments, syy - 2 c'b + b'u
    (u = G b, kept by the solver), O(p) instead of a pass over X (which at n=10k, p=1k cost
    more than all the coordinate descent of a 100-alpha path); where the fit explains so
    much that the difference would lose digits, from the residuals as for every other
    family."""
    if cfg.hessian:   # the solver's final linear predictor: no pass over X
        return _safe_sum(d.w, cfg.family.unit_deviance(d.y, cfg.family.link.inverse(u.eta)))
    if not cfg.gram:
        return _mean_deviance(d, cfg, b, b0)
    quad = d.syy - 2 * (d.c @ b) + b @ u
    trusted = quad > 1e3 * jnp.sqrt(jnp.finfo(b.dtype).eps) * d.syy
    return jax.lax.cond(trusted, lambda: quad, lambda: _mean_deviance(d, cfg, b, b0))


#: Ulps by which alpha_max is rounded up, so that every coefficient is exactly zero at the
#: grid's first strength whatever the order another program (or another library) sums the
#: gradient in: a rounding below the exact value would leave a coefficient of order 1e-16.
ALPHA_MAX_ULPS = 16


def _alpha_max_from_grad(grad, pf, l1_ratio):
    ratio = jnp.where(pf > 0, jnp.abs(grad) / jnp.where(pf > 0, pf, 1.0), 0.0)
    top = jnp.max(ratio, initial=0.0) * (1 + ALPHA_MAX_ULPS * jnp.finfo(grad.dtype).eps)
    return jnp.where(l1_ratio > 0, top / jnp.where(l1_ratio > 0, l1_ratio, 1.0), jnp.inf)


def _secant_start(d, alpha, l1_ratio, last, before, null):
    """The covariance solver's warm start at alpha: the previous two solutions extrapolated
    linearly in alpha, b + t (b - b_old) with t = (alpha - a) / (a - a_old). While the active
    set and signs hold, the lasso solution is linear in alpha (b_A = G_AA^-1 (c_A - alpha
    s_A)), so this is exact and a sweep or two confirms it; where the extrapolation would
    move a zero coefficient or cross zero, that coordinate is set to zero (u = G b corrected
    by those few rows of G). Kept only if it lowers the objective at alpha (otherwise the
    previous solution, glmnet's warm start). Returns (b, u)."""
    b, u, a = last
    b_old, u_old, a_old = before
    t = jnp.where((a_old > a) & ~null, (alpha - a) / jnp.where(a_old > a, a - a_old, 1.0), 0.0)
    raw = b + t * (b - b_old)
    keep = (b != 0) & (jnp.sign(raw) == jnp.sign(b))
    cut = jnp.where(keep, 0.0, raw)          # G cut is subtracted row by row (few of them)
    ux = u + t * (u - u_old)
    idx, count = _compact(cut != 0)
    ux = jax.lax.fori_loop(0, count, lambda i, v: v - cut[idx[i]] * d.G[idx[i]], ux)
    bx = jnp.where(keep, raw, 0.0)
    l1, l2 = _penalty_weights(d, alpha, l1_ratio)
    better = _quadratic_objective(d, bx, ux, l1, l2) < _quadratic_objective(d, b, u, l1, l2)
    return jnp.where(better, bx, b), jnp.where(better, ux, u)


def _hessian_secant(d, cfg, alpha, l1_ratio, last, before, null):
    """The "hessian" solver's warm start at alpha: `_secant_start`'s linear extrapolation of
    the previous two solutions (coefficients that would leave zero or cross it set to zero;
    the intercept extrapolated alike), kept if it lowers the penalized objective at alpha
    (its linear predictor extrapolated too, or one pass over X where a coefficient was set
    to zero). Returns (b, b0, model)."""
    b, b0, model, a = last
    b_old, b0_old, model_old, a_old = before
    t = jnp.where((a_old > a) & ~null, (alpha - a) / jnp.where(a_old > a, a - a_old, 1.0),
                  0.0)
    family, X, y, w, off = cfg.family, d.X, d.y, d.w, d.off
    l1, l2 = _penalty_weights(d, alpha, l1_ratio)

    def objective(eta, b):
        return _safe_sum(w, family.nll(y, eta)) + _penalty_value(b, l1, l2)

    def extrapolate(_):
        raw = b + t * (b - b_old)
        bx = jnp.where((b != 0) & (jnp.sign(raw) == jnp.sign(b)), raw, 0.0)
        b0x = b0 + t * (b0 - b0_old)
        # eta extrapolates with b; a pass over X only when a coefficient was set to zero
        etax = jax.lax.cond(jnp.all(bx == raw),
                            lambda: model.eta + t * (model.eta - model_old.eta),
                            lambda: X @ bx + b0x + off)
        better = objective(etax, bx) < objective(model.eta, b)
        return (jnp.where(better, bx, b), jnp.where(better, b0x, b0),
                model._replace(eta=jnp.where(better, etax, model.eta)))

    return jax.lax.cond((t > 0) & model.valid, extrapolate, lambda _: (b, b0, model), None)


def path_core(X, y, w, off, pf, alphas, l1_ratio, ctl, cfg, moments=None):
    """The traced path (no validation): use `path`; this is what `selection` maps.

    moments: for the covariance solver, (G, c, xbar, ybar, syy) of these weights already
    formed (G = Xc' W Xc, c = Xc' W (z - ybar) and syy = (z - ybar)' W (z - ybar), W the
    weights normalized to sum 1, Xc = X - xbar, z = y - offset; xbar, ybar zero without an
    intercept); ignored by the naive solver.

    The scan's first step is the null fit (only unpenalized coordinates move): it gives
    the null deviance and the gradient for the first strong-rule screen, and it shares
    the compiled solver with the other steps.
    """
    d = _prepare(X, y, w, off, pf, cfg, moments)
    p = X.shape[1]
    dtype = X.dtype
    unpen = pf <= 0
    b = jnp.zeros((p,), dtype)
    if cfg.fit_intercept and not cfg.gram:
        b0 = cfg.family.link.link(cfg.family.starting_mu(jnp.sum(d.w * d.y)))
        b0 = b0 - jnp.sum(d.w * d.off)
        b0 = jnp.where(jnp.isfinite(b0), b0, 0.0)
    else:
        b0 = jnp.zeros((), dtype)
    steps = jnp.concatenate([alphas[:1], alphas])
    is_null = jnp.arange(steps.shape[0]) == 0
    everything = jnp.ones((p,), bool)

    def step(carry, xs):
        b, b0, grad, u, prev, b_old, b0_old, u_old, prev_old = carry
        alpha, null = xs
        allowed = jnp.where(null, unpen, everything)
        strong = jnp.abs(grad) >= l1_ratio * pf * (2 * alpha - prev)
        b_start, b0_start, u_start = b, b0, u
        if cfg.gram:
            b_start, u_start = _secant_start(d, alpha, l1_ratio, (b, u, prev),
                                             (b_old, u_old, prev_old), null)
        if cfg.hessian:
            b_start, b0_start, u_start = _hessian_secant(d, cfg, alpha, l1_ratio,
                                                         (b, b0, u, prev),
                                                         (b_old, b0_old, u_old, prev_old),
                                                         null)
        b_new, b0_new, grad, u_new, sweeps, status = _solve_alpha(
            d, cfg, alpha, l1_ratio, b_start, b0_start, u_start, strong & allowed, ctl,
            allowed)
        amax = _alpha_max_from_grad(grad, pf, l1_ratio)
        first = jnp.where(jnp.isfinite(amax), jnp.maximum(amax, alphas[0]), alphas[0])
        out = (b_new, b0_new, _path_deviance(d, cfg, b_new, b0_new, u_new),
               jnp.sum(b_new != 0).astype(jnp.int32), sweeps, status)
        return (b_new, b0_new, grad, u_new, jnp.where(null, first, alpha), b, b0, u, prev), out

    # u: G b for the covariance solver (b starts at zero), unused by the naive one
    zeros = jnp.zeros((p,), dtype)
    # the "hessian" solver carries its quadratic model (a Gram and eta) where u would be
    u0 = _hessian_start(X, dtype) if cfg.hessian else zeros
    init = (b, b0, zeros, u0, alphas[0], b, b0, u0, alphas[0])
    _, (coef, intercept, dev, df, sweeps, status) = jax.lax.scan(step, init, (steps, is_null))
    return Path(alphas, coef[1:], intercept[1:], dev[1:], dev[0], df[1:], sweeps[1:],
                status[1:], status[1:] == int(Status.CONVERGED), jnp.asarray(l1_ratio, dtype))


@_programs.jit(static_argnames=("cfg",))
def _path_jit(X, y, w, off, pf, alphas, l1_ratio, ctl, cfg):
    return path_core(X, y, w, off, pf, alphas, l1_ratio, ctl, cfg)


def _intercept_only(X, y, w, off, family, fit_intercept, tol, max_iter=50):
    """The intercept-only (plus offset) fit (`linjax.starting.intercept_only_fit`): eta."""
    if not fit_intercept:
        return off
    b0, _ = intercept_only_fit(family, y, w, off, tol, max_iter)
    return b0 + off


@_programs.jit(static_argnames=("family",))
def _alpha_max_at(X, y, w, off, pf, l1_ratio, coef, intercept, family):
    wn = w / jnp.sum(w)
    eta = X @ coef + intercept + off
    g_eta = jax.grad(lambda e: _safe_sum(wn, family.nll(y, e)))(eta)
    return _alpha_max_from_grad(_rmatvec(X, g_eta), pf, l1_ratio)


@_programs.jit(static_argnames=("family", "fit_intercept"))
def _alpha_max_simple(X, y, w, off, pf, l1_ratio, tol, family, fit_intercept):
    eta = _intercept_only(X, y, w, off, family, fit_intercept, tol)
    wn = w / jnp.sum(w)
    g_eta = jax.grad(lambda e: _safe_sum(wn, family.nll(y, e)))(eta)
    return _alpha_max_from_grad(_rmatvec(X, g_eta), pf, l1_ratio)


# -- validation and the public functions --------------------------------------------------

#: The smallest tol, in units of the dtype's machine epsilon: a coefficient move below
#: about a thousand roundings is not resolved, and asking for it only runs every loop to
#: its cap (float32: 1.2e-4; float64: 2.2e-13).
TOL_FLOOR_EPS = 1000


def make_control(dtype, tol=None, max_iter=100, max_sweeps=10000, max_rounds=20):
    """Control: tol None gives 1e-8 (float64) or 1e-4 (float32); a smaller tol than
    TOL_FLOOR_EPS machine epsilons of the dtype is raised to that."""
    if tol is None:
        tol = 1e-8 if jnp.finfo(dtype).bits >= 64 else 1e-4
    for name, v in (("max_iter", max_iter), ("max_sweeps", max_sweeps),
                    ("max_rounds", max_rounds)):
        if int(v) < 1:
            raise ValueError(f"{name}: must be >= 1, got {v}.")
    if not float(tol) > 0:
        raise ValueError(f"tol: must be > 0, got {tol}.")
    tol = max(float(tol), TOL_FLOOR_EPS * float(jnp.finfo(dtype).eps))
    i32 = np.int32
    return Control(*(validation.to_device(v, t) for v, t in ((tol, dtype), (max_iter, i32),
                                                             (max_sweeps, i32),
                                                             (max_rounds, i32))))


def make_config(family, shape, fit_intercept=True, method="auto", design=False):
    """The static configuration of a path (see the module docstring for `method`).
    design: X is a `linjax.designs` object (its own structured solver, `_design_solve`)."""
    n, p = shape
    gaussian_identity = isinstance(family, Gaussian) and isinstance(family.link, links.Identity)
    if method == "auto":
        gram = gaussian_identity and p <= GRAM_MAX_FEATURES and not design
        if not gaussian_identity and not design and p <= HESSIAN_MAX_FEATURES:
            method = "hessian"
    elif method == "covariance":
        if design:
            raise ValueError("method: 'covariance' needs a dense X; a sparse or categorical "
                             "design uses its own structured Gram: pass method='auto'.")
        if not gaussian_identity:
            raise ValueError("method: 'covariance' needs the Gaussian family with the identity "
                             "link; use method='naive' or 'auto'.")
        gram = True
    elif method in ("naive", "hessian"):
        if method == "hessian" and design:
            raise ValueError("method: 'hessian' needs a dense X; a sparse or categorical "
                             "design uses its own structured Gram: pass method='auto'.")
        gram = False
    else:
        raise ValueError(f"method: expected 'auto', 'covariance', 'hessian' or 'naive', got "
                         f"{method!r}.")
    if family.multiclass:
        raise ValueError("family: paths fit single-response GLMs; Multinomial is not supported "
                         "(fit one binary path per class, or use lj.fit per alpha).")
    if family.estimates_alpha:
        raise ValueError("family: NegativeBinomial(alpha=None) estimates alpha; give a fixed "
                         "alpha for a path.")
    hessian = method == "hessian"
    return _Config(family, bool(fit_intercept), bool(gram), bool(gaussian_identity),
                   bool(not family.is_canonical), hessian)


def path_inputs(X, y, family, l1_ratio, weights, offset, penalty_weights, fit_intercept,
                pad=True):
    """Validated inputs of a path (shared with `linjax.selection`): (family, X, y, weights
    (ones when None), offset (zeros when None), penalty factors (p,), l1_ratio as an array).
    With `pad`, eager inputs come back with their rows padded to `buckets.bucket_rows(n)`
    (zero-weight copies of the first row, which every path computation weighs by w)."""
    family = Gaussian() if family is None else get_family(family)
    validation.refuse_estimated_alpha(family)
    validation.check_penalty(ElasticNet(alpha=0.0, l1_ratio=l1_ratio))
    X, y, weights, offset = inputs.fit_inputs(X, y, family, weights, offset,
                                                  ElasticNet(), fit_intercept)
    n, p = X.shape
    if is_design(X) and p > GRAM_MAX_FEATURES:
        raise ValueError(f"X: a path over a sparse or categorical design forms its {p} x {p} "
                         f"weighted Gram, limited to p <= {GRAM_MAX_FEATURES} columns; pass a "
                         "dense X, or fit single alphas with lj.fit(X, y, penalty=...).")
    if p == 0:
        raise ValueError("X: a path needs at least one feature column, got X of shape "
                         f"{(n, p)}; the penalty never touches the intercept, so an "
                         "intercept-only model is the same at every alpha: fit it with "
                         "lj.fit(X, y, family=...).")
    dtype = X.dtype
    w = validation.to_device(np.ones(n, dtype)) if weights is None else weights
    off = validation.to_device(np.zeros(n, dtype)) if offset is None else offset
    if penalty_weights is None:
        pf = validation.to_device(np.ones(p, dtype))
    else:
        shape = tuple(jnp.shape(penalty_weights))
        if shape not in ((), (p,), (p, 1)):
            raise ValueError(f"penalty_weights: expected one factor per column of X, shape "
                             f"({p},), got shape {shape}.")
        pf = validation.check_vector("penalty_weights", penalty_weights, p, dtype)
        if not validation.is_traced(pf) and np.any(np.asarray(pf) < 0):
            raise ValueError("penalty_weights: must be >= 0 (0 leaves a feature unpenalized).")
    # rows padded to their bucket with zero weights: a new n reuses a compiled program
    if pad and not is_design(X):
        X, y, w, off = buckets.pad_fit_inputs(X, y, w, off, entry="path")
    return family, X, y, w, off, pf, validation.to_device(l1_ratio, dtype)


def alpha_max(X, y, family=None, l1_ratio=1.0, weights=None, offset=None, penalty_weights=None,
              fit_intercept=True, tol=None):
    """The smallest alpha at which every penalized coefficient is zero (a JAX scalar).

    max_{f_j > 0} |g_j| / (l1_ratio f_j), g the gradient of the mean loss at the null fit
    (intercept, offset and unpenalized features fitted); inf when l1_ratio = 0.
    """
    # unpadded: the grid's first point is where coefficients enter, and its rounding then
    # matches a direct computation on the caller's rows (a small program in any case)
    family, X, y, w, off, pf, r = path_inputs(X, y, family, l1_ratio, weights, offset,
                                              penalty_weights, fit_intercept, pad=False)
    ctl = make_control(X.dtype, tol)
    if validation.is_traced(pf) or np.any(np.asarray(pf) <= 0):
        # unpenalized features enter the null fit: one step of the path's own solver
        cfg = make_config(family, X.shape, fit_intercept, design=is_design(X))
        huge = jnp.full((1,), jnp.sqrt(jnp.finfo(X.dtype).max), X.dtype)
        res = _path_jit(X, y, w, off, pf, huge, r, ctl, cfg)
        return _alpha_max_at(X, y, w, off, pf, r, res.coef[0], res.intercept[0], family)
    return _alpha_max_simple(X, y, w, off, pf, r, ctl.tol, family, bool(fit_intercept))


#: l1_ratio below which the grid is a ridge grid (alpha_max as if l1_ratio were this, glmnet).
RIDGE_L1_RATIO = 1e-3
#: Default eps of a ridge grid (l1_ratio < RIDGE_L1_RATIO) and of every other grid.
RIDGE_EPS = 1e-6
DEFAULT_EPS = 1e-3


def default_eps(l1_ratio):
    """eps of the default grid: 1e-3, or 1e-6 for a ridge (l1_ratio < 1e-3).

    A ridge grid's top, alpha_max at l1_ratio = 1e-3 (glmnet), is 1000 times the lasso's
    alpha_max; 1e-3 of it would stop at the lasso's alpha_max, far above the usual ridge
    optima (the optimal ridge strength shrinks as sigma^2 / (n tau^2) with the rows n,
    while the lasso's alpha_max does not). 1e-6 reaches 1e-3 of the lasso's alpha_max: six
    decades, 100 values 15% apart (glmnet's own ratio, 1e-4, stops at 0.1 of it and
    missed an optimum at 0.1 of it in issue 20's example).
    """
    return RIDGE_EPS if float(l1_ratio) < RIDGE_L1_RATIO else DEFAULT_EPS


def alpha_grid(X, y, family=None, l1_ratio=1.0, n_alphas=100, eps=None, weights=None,
               offset=None, penalty_weights=None, fit_intercept=True):
    """n_alphas values log-spaced from alpha_max down to eps * alpha_max (numpy, decreasing).

    l1_ratio below 1e-3 uses 1e-3 for alpha_max (glmnet), since a ridge never zeroes.
    eps: None gives `default_eps(l1_ratio)` (1e-3; 1e-6 for a ridge).
    """
    if int(n_alphas) < 1:
        raise ValueError(f"n_alphas: must be >= 1, got {n_alphas}.")
    if eps is None:
        eps = default_eps(l1_ratio)
    if not 0 < eps < 1:
        raise ValueError(f"eps: must be in (0, 1), got {eps}.")
    top = float(alpha_max(X, y, family, max(float(l1_ratio), RIDGE_L1_RATIO), weights, offset,
                          penalty_weights, fit_intercept))
    if not top > 0:
        top = 1.0  # y constant (or fully explained by unpenalized terms)
    return np.geomspace(top, top * eps, int(n_alphas))


def check_alphas(alphas):
    """Concrete alphas as a decreasing 1-D float array (traced alphas pass through)."""
    if validation.is_traced(alphas):
        return alphas
    a = np.asarray(alphas, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"alphas: expected a non-empty 1-D array, got shape {a.shape}.")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("alphas: must be finite and >= 0.")
    if np.any(np.diff(a) > 0):
        raise ValueError("alphas: must be in decreasing order (warm starts run from the "
                         "largest alpha); pass np.sort(alphas)[::-1].")
    return a


def path(X, y, family=None, l1_ratio=1.0, alphas=None, *, n_alphas=100, eps=None,
         weights=None, offset=None, penalty_weights=None, fit_intercept=True, tol=None,
         max_iter=100, max_sweeps=10000, method="auto"):
    """The elastic-net regularization path of a GLM (see the module docstring).

    alphas: decreasing penalty strengths (default: `alpha_grid(..., n_alphas, eps)`; eps
    None: 1e-3, or 1e-6 for a ridge, see `default_eps`).
    l1_ratio in [0, 1] (1: lasso, 0: ridge). penalty_weights: per-feature factors.
    method: "auto", "covariance" (Gaussian, identity link) or "naive".
    Returns a `Path`; `path.coef[k]` is the solution at `alphas[k]`.
    """
    if alphas is None:
        alphas = alpha_grid(X, y, family, l1_ratio, n_alphas, eps, weights, offset,
                            penalty_weights, fit_intercept)
    alphas = check_alphas(alphas)
    family, X, y, w, off, pf, r = path_inputs(X, y, family, l1_ratio, weights, offset,
                                              penalty_weights, fit_intercept)
    cfg = make_config(family, X.shape, fit_intercept, method, design=is_design(X))
    ctl = make_control(X.dtype, tol, max_iter, max_sweeps)
    return _path_jit(X, y, w, off, pf, jnp.asarray(alphas, X.dtype), r, ctl, cfg)
