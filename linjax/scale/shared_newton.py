"""Newton / IRLS for many GLMs that share one design X, explicitly batched.

All m problems advance together: each iteration forms the linear predictors with one
(m, p) @ (p, n) product, the gradients with one (m, n) @ (n, k) product and every
Hessian with one (m, n) @ (n, k(k+1)/2) product against the column-pair products of
[1, X], formed once (DESIGN.md, "Performance habits"). The k x k systems are solved
by a Cholesky factorization written with XLA operations over the whole batch (no
per-problem LAPACK calls: jaxlib 0.10's batched CPU LAPACK kernels can deadlock when
two of them run at once), falling back to an eigen pseudo-solve, under a `lax.cond`
that runs only when some factorization failed.

The iteration is `linjax.solvers.Newton`'s, problem by problem: its curvature choice
(exact where the loss is convex in eta, Fisher scoring elsewhere), step halving until
the objective does not increase, the same decrement, step and extrapolated-decrement
stopping rules and the same status codes; the loop is the engine's
(`linjax.solvers.engine.iterate`): a problem stops (and is frozen) when it converges,
fails or leaves finite values, and the loop ends when all have stopped or max_iter.
"""

import jax
import jax.numpy as jnp
import numpy as np

from linjax.families import eta_derivatives
from linjax.solvers import newton as _newton
from linjax.solvers.newton import NewtonState
from linjax.solvers.status import Status, code


def default_tols(dtype):
    """(decrement tol, step tol) of `linjax.solvers.Newton` for this dtype."""
    if hasattr(_newton, "default_tols"):
        return _newton.default_tols(dtype)
    return _newton.default_tol(dtype), 0.0       # solvers without a step criterion


# ----------------------------------------------------------------------------- pair products
def pair_indices(k):
    """(rows, cols, packed): the upper-triangle pairs of k columns and, for every (i, j), the
    position of pair (min(i, j), max(i, j)) in the packed vector."""
    rows, cols = np.triu_indices(k)
    packed = np.zeros((k, k), dtype=np.int32)
    packed[rows, cols] = np.arange(rows.size)
    packed[cols, rows] = np.arange(rows.size)
    return rows, cols, packed


def augmented(X, fit_intercept):
    """[1, X] with an intercept, else X (the coordinates of `GLMProblem.to_vector`)."""
    if not fit_intercept:
        return X
    return jnp.concatenate([jnp.ones((X.shape[0], 1), X.dtype), X], axis=1)


def column_pairs(Xa):
    """The (n, k(k+1)/2) matrix of products Xa[:, i] * Xa[:, j], i <= j."""
    rows, cols, _ = pair_indices(Xa.shape[1])
    return Xa[:, rows] * Xa[:, cols]


def grams(S, pairs, k):
    """Xa.T diag(S[i]) Xa for every row of S (m, n): one matrix product, then unpacking."""
    _, _, packed = pair_indices(k)
    return (S @ pairs)[:, packed]


# ----------------------------------------------------------------------------- small PSD solves
def cholesky(H):
    """Lower Cholesky factors of a batch (m, k, k), column by column with XLA operations.

    A matrix that is not positive definite gets non-finite entries (as LAPACK's)."""
    k = H.shape[-1]
    idx = jnp.arange(k)

    def column(j, L):
        row = L[:, j, :]                          # entries l >= j are still zero
        d = jnp.sqrt(H[:, j, j] - jnp.sum(row * row, axis=-1))
        col = (H[:, :, j] - jnp.einsum("mil,ml->mi", L, row)) / d[:, None]
        col = jnp.where(idx > j, col, jnp.where(idx == j, d[:, None], 0.0))
        return L.at[:, :, j].set(col)

    return jax.lax.fori_loop(0, k, column, jnp.zeros_like(H))


def cho_solve(L, b):
    """Solve L L' x = b for a batch of lower factors L (m, k, k) and b (m, k)."""
    k = L.shape[-1]

    def forward(i, y):
        return y.at[:, i].set((b[:, i] - jnp.sum(L[:, i, :] * y, axis=-1)) / L[:, i, i])

    def backward(t, x):
        i = k - 1 - t
        return x.at[:, i].set((y[:, i] - jnp.sum(L[:, :, i] * x, axis=-1)) / L[:, i, i])

    y = jax.lax.fori_loop(0, k, forward, jnp.zeros_like(b))
    return jax.lax.fori_loop(0, k, backward, jnp.zeros_like(b))


def eigen_solve(H, b):
    """Minimum-norm solutions from the eigendecomposition (as `solve_psd`'s fallback)."""
    evals, evecs = jnp.linalg.eigh(H)
    cutoff = jnp.finfo(H.dtype).eps * H.shape[-1] * jnp.max(jnp.abs(evals), axis=-1,
                                                             keepdims=True)
    keep = evals > cutoff
    inv = jnp.where(keep, 1.0 / jnp.where(keep, evals, 1.0), 0.0)
    return jnp.einsum("mij,mj->mi", evecs, inv * jnp.einsum("mji,mj->mi", evecs, b))


def solve_psd(H, b):
    """Batched `linjax.solvers.newton.solve_psd`: returns (x, singular) per problem."""
    L = cholesky(H)
    ok = jnp.all(jnp.isfinite(L), axis=(-2, -1))
    x = cho_solve(jnp.where(ok[:, None, None], L, jnp.eye(H.shape[-1], dtype=H.dtype)), b)

    def fallback(x):
        return jnp.where(ok[:, None], x, eigen_solve(H, b))

    return jax.lax.cond(jnp.all(ok), lambda x: x, fallback, x), ~ok


# ----------------------------------------------------------------------------- the model, batched
class SharedDesign:
    """m GLMs over one design: Y, weights (normalized per problem), offsets are (m, n)."""

    def __init__(self, X, Y, W, O, family, penalty, fit_intercept, pairs):
        self.X, self.Y, self.W, self.O = X, Y, W, O
        self.family, self.penalty, self.fit_intercept = family, penalty, fit_intercept
        self.pairs = pairs
        self.p = X.shape[1]
        self.k = self.p + int(fit_intercept)

    def split(self, B):
        if self.fit_intercept:
            return B[:, 1:], B[:, 0]
        return B, jnp.zeros(B.shape[:1], B.dtype)

    def eta(self, B):
        coef, intercept = self.split(B)
        return coef @ self.X.T + intercept[:, None] + self.O

    def penalty_value(self, B):
        return jax.vmap(self.penalty.value)(self.split(B)[0])

    def value(self, B):
        nll = self.family.nll(self.Y, self.eta(B))
        return jnp.sum(self.W * nll, axis=1) + self.penalty_value(B)

    def newton_system(self, B, fisher):
        coef, _ = self.split(B)
        nll, g, h = eta_derivatives(self.family, self.Y, self.eta(B), fisher)
        R, S = self.W * g, self.W * h
        grad = R @ self.X + jax.vmap(self.penalty.smooth_grad)(coef)
        pen_hess = jax.vmap(self.penalty.smooth_hess_diag)(coef)
        if self.fit_intercept:
            grad = jnp.concatenate([jnp.sum(R, axis=1, keepdims=True), grad], axis=1)
            pen_hess = jnp.concatenate([jnp.zeros_like(pen_hess[:, :1]), pen_hess], axis=1)
        hess = grams(S, self.pairs, self.k) + jax.vmap(jnp.diag)(pen_hess)
        value = jnp.sum(self.W * nll, axis=1) + self.penalty_value(B)
        return value, grad, hess

    def initial(self):
        """`linjax.fit.initial_params` for every problem (R's first IRLS step)."""
        family, W = self.family, self.W
        mu0 = family.starting_mu(self.Y)
        eta0 = family.link.link(mu0)
        z = eta0 - self.O
        fisher_w = family.link.inverse_deriv(eta0) ** 2 / family.variance(mu0)
        sw = jnp.where(jnp.isfinite(fisher_w), W * fisher_w, 0.0)
        ridge = jax.vmap(self.penalty.smooth_hess_diag)(jnp.zeros((W.shape[0], self.p),
                                                                  W.dtype))
        rhs = (sw * z) @ self.X
        if self.fit_intercept:
            ridge = jnp.concatenate([jnp.zeros_like(ridge[:, :1]), ridge], axis=1)
            rhs = jnp.concatenate([jnp.sum(sw * z, axis=1, keepdims=True), rhs], axis=1)
        hess = grams(sw, self.pairs, self.k) + jax.vmap(jnp.diag)(ridge)
        start, _ = solve_psd(hess, rhs)
        fallback = jnp.zeros_like(start)
        if self.fit_intercept:
            mean_mu = jnp.sum(W * mu0, axis=1, keepdims=True)
            fallback = fallback.at[:, 0].set(
                (family.link.link(mean_mu) - jnp.sum(W * self.O, axis=1, keepdims=True))[:, 0])
        ok = jnp.isfinite(self.value(start))
        return jnp.where(ok[:, None], start, fallback)


# ----------------------------------------------------------------------------- Newton, batched
def newton(model, B, solver):
    """Run Newton from B (m, k); returns (B, value, n_iter, status, NewtonState)."""
    fisher = solver.fisher if solver.fisher is not None else (
        False if model.family.is_canonical else "auto")
    dtype = B.dtype
    default_tol, default_xtol = default_tols(dtype)
    tol = default_tol if solver.tol is None else solver.tol
    xtol = default_xtol if getattr(solver, "xtol", None) is None else solver.xtol
    eps = jnp.finfo(dtype).eps
    m = B.shape[0]
    max_halvings = getattr(solver, "max_halvings", 40)

    def step(B, value, prev):
        value, grad, hess = model.newton_system(B, fisher)
        direction, singular = solve_psd(hess, -grad)
        decrement = -jnp.sum(grad * direction, axis=1)
        scale = jnp.maximum(jnp.abs(value), 1.0)
        slack = 8 * eps * scale

        def too_high(t_f_k):
            _, f_t, k = t_f_k
            return jnp.any(~(f_t <= value + slack)) & (k < max_halvings)

        def halve(t_f_k):
            t, f_t, k = t_f_k
            high = ~(f_t <= value + slack)
            t = jnp.where(high, t / 2, t)
            return t, jnp.where(high, model.value(B + t[:, None] * direction), f_t), k + 1

        one = jnp.ones((m,), dtype)
        t, f_t, _ = jax.lax.while_loop(too_high, halve,
                                       (one, model.value(B + direction), 0))
        accepted = f_t <= value + slack
        small_step = jnp.max(jnp.abs(t[:, None] * direction), axis=1) <= xtol * (
            1.0 + jnp.max(jnp.abs(B), axis=1))
        converged = ((decrement <= tol * scale) | (accepted & small_step)
                     | _newton.extrapolated_stop(decrement, prev, accepted, t, tol * scale))
        at_floor = decrement <= jnp.sqrt(eps) * scale
        stalled = ~accepted & ~at_floor
        converged = converged | (~accepted & at_floor)
        new_B = jnp.where(accepted[:, None], B + t[:, None] * direction, B)
        new_value = jnp.where(accepted, f_t, value)
        state = NewtonState(new_value, decrement, t, converged, stalled, singular)
        status = jnp.where(stalled, code(Status.LINE_SEARCH_FAILED),
                           jnp.where(singular, code(Status.SINGULAR), code(Status.CONVERGED)))
        return new_B, state, converged | stalled, status

    def cond(carry):
        _, _, i, done, _, _ = carry
        return jnp.any(~done) & (i < solver.max_iter)

    def body(carry):
        B, state, i, done, status, n_iter = carry
        new_B, new_state, stop, new_status = step(B, state.value, state.decrement)
        finite = jnp.all(jnp.isfinite(new_B), axis=1) & jnp.isfinite(new_state.value)
        move = ~done & finite
        B = jnp.where(move[:, None], new_B, B)
        state = jax.tree_util.tree_map(
            lambda a, b: jnp.where(move.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
            new_state, state)
        status = jnp.where(done, status, jnp.where(finite, new_status,
                                                   code(Status.NON_FINITE)))
        n_iter = n_iter + (~done).astype(n_iter.dtype)
        done = done | stop | ~finite
        return B, state, i + 1, done, status, n_iter

    value = model.value(B)
    false = jnp.zeros((m,), bool)
    state = NewtonState(value, jnp.full((m,), jnp.inf, dtype), jnp.ones((m,), dtype), false,
                        false, false)
    start_finite = jnp.all(jnp.isfinite(B), axis=1) & jnp.isfinite(value)
    status = jnp.where(start_finite, code(Status.MAX_ITER), code(Status.NON_FINITE))
    carry = (B, state, jnp.asarray(0, jnp.int32), ~start_finite, status,
             jnp.zeros((m,), jnp.int32))
    B, state, _, done, status, n_iter = jax.lax.while_loop(cond, body, carry)
    status = jnp.where(done, status, code(Status.MAX_ITER))
    return B, state.value, n_iter, status, state
