"""Closed-form (penalized) weighted least squares: QR or SVD of the design, never an inverse.

Minimises  sum_i w_i (y_i - offset_i - x_i b - b0)^2 / 2  +  alpha / 2 sum_j f_j b_j^2
(weights normalized to sum one). The intercept is removed by weighted centring,
ridge enters as extra rows sqrt(alpha f_j) e_j (augmentation), and the
remaining problem ||A b - r||^2 is solved from A = QR, or from the SVD for the
minimum-norm solution of a rank-deficient design. QR falls back to the SVD
when R shows the design is rank deficient; `rank` is reported either way.

When n >= p the default ("auto") first tries the normal equations: one
pass forms the centred weighted Gram A'A (ridge adds alpha f_j to its diagonal), which
is scaled to unit diagonal and factored by Cholesky (n p^2 flops against QR's ~4 n p^2
and several passes), then one step of iterative refinement. A guard keeps QR's
accuracy: when the Cholesky fails, or a condition estimate of the scaled Gram (Hager's
1-norm estimator) times the rounding of the data (eps, plus the digits centring loses)
exceeds the dtype's budget (1e-10 in float64, 1e-5 in float32), `lax.cond` takes the
QR/SVD path instead. `info.normal` says which path gave the answer.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from linjax import links
from linjax._pytree import pytree_dataclass, static_field
from linjax.families import Gaussian
from linjax.penalties import L2, NoPenalty
from linjax.solvers import linalg
from linjax.solvers.engine import AbstractSolver, Solution
from linjax.solvers.newton import solve_psd
from linjax.solvers.status import Status, code


class LeastSquaresState(NamedTuple):
    value: jax.Array
    rank: jax.Array
    normal: jax.Array = False   # True when the guarded normal-equations (Cholesky) path answered


def _svd_solve(A, r, rcond):
    u, s, vt = jnp.linalg.svd(A, full_matrices=False)
    cutoff = rcond * s[0]
    keep = s > cutoff
    inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
    return (inv * (r @ u)) @ vt, jnp.sum(keep)


def _qr_solve(A, r, rcond):
    q, R = jnp.linalg.qr(A, mode="reduced")
    diag = jnp.abs(jnp.diag(R))
    full_rank = jnp.all(diag > rcond * jnp.max(diag))

    def triangular():
        x = jax.scipy.linalg.solve_triangular(R, r @ q, lower=False)
        return x, jnp.asarray(A.shape[1], jnp.int32)

    def svd():
        x, rank = _svd_solve(A, r, rcond)
        return x, rank.astype(jnp.int32)

    x, rank = jax.lax.cond(full_rank, triangular, svd)
    return x, rank, q, R


# -- extra-precise residuals (error-free transformations) for iterative refinement ------------

def _split(a):
    """a = hi + lo exactly, hi with at most half the mantissa bits (bit mask, no multiply)."""
    if a.dtype == jnp.float64:
        bits, mask = jnp.uint64, jnp.uint64(~((1 << 27) - 1) & (2**64 - 1))
    else:
        bits, mask = jnp.uint32, jnp.uint32(~((1 << 12) - 1) & (2**32 - 1))
    hi = jax.lax.bitcast_convert_type(jax.lax.bitcast_convert_type(a, bits) & mask, a.dtype)
    return hi, a - hi


def _two_prod(a, b):
    """(p, e) with p = fl(a b) and p + e = a b (up to the tiny lo * lo rounding)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _dot2(M, v, extra):
    """M @ v + extra, computed as if in twice the working precision (Ogita-Rump-Oishi)."""
    P, E = _two_prod(M, v[None, :])

    def add(carry, col):
        s, c = carry
        s, e = _two_sum(s, col)
        return (s, c + e), None

    (s, c), _ = jax.lax.scan(add, (extra, jnp.zeros_like(extra)), P.T)
    return s + (c + jnp.sum(E, axis=1))


def _refine(X, target, sw, x_mean, A, q, R, coef, intercept, fit_intercept, steps=2):
    """Björck's iterative refinement of the least-squares solution (augmented system
    [I B; B' 0][r; u] = [b; 0]) with residuals in twice the working precision.

    B = [sw, sw (X - x_mean)] (without the first column when there is no intercept) is the
    centred design whose QR (`q`, `R`, and the column sw, orthogonal to the centred columns)
    solves each correction; the residuals are those of the original data, so the refined
    solution is the least-squares solution of the data as given, to about working precision
    while cond * eps << 1.
    """
    ns = jnp.sqrt(jnp.sum(sw * sw))
    zeros = jnp.zeros((X.shape[1],), X.dtype)

    def residual(coef, intercept):
        return sw * _dot2(X, -coef, target - intercept)

    r = residual(coef, intercept)
    for _ in range(steps):
        f = residual(coef, intercept) - r
        v = sw * r
        g = -_dot2(X.T, v, zeros)
        if fit_intercept:
            g0 = -_two_sum_all(v)[0]
            g = g - x_mean * g0
            du0 = (sw @ f / ns - g0 / ns) / ns
        h = jax.scipy.linalg.solve_triangular(R, g, trans="T", lower=False)
        du = jax.scipy.linalg.solve_triangular(R, f @ q - h, lower=False)
        dr = f - A @ du
        coef = coef + du
        if fit_intercept:
            dr = dr - sw * du0
            intercept = intercept + du0 - x_mean @ du
        r = r + dr
    return coef, intercept


def _two_sum_all(v):
    """The (compensated) sum of v as a one-element array."""
    def add(carry, x):
        s, c = carry
        s, e = _two_sum(s, x)
        return (s, c + e), None

    (s, c), _ = jax.lax.scan(add, (jnp.zeros((), v.dtype), jnp.zeros((), v.dtype)), v)
    return (s + c)[None]


# -- normal equations (Cholesky of the Jacobi-scaled Gram), guarded --------------------------

# "auto" tries the normal equations when n >= _NORMAL_RATIO * p. Measured (2-core EPYC,
# float64): they win wherever the guard accepts, down to n ~ p (p = 200: 1.7 ms against
# 6.4 ms for QR at n = 210, 2.2 against 6.5 at n = 400; p = 50, n = 1e5: ~75 against
# ~400 ms); a rejected try costs the Gram (n p^2) on top of the QR (~4 n p^2).
_NORMAL_RATIO = 1
_NORMAL_BUDGET = {jnp.dtype(jnp.float64): 1e-10, jnp.dtype(jnp.float32): 1e-5}


def _cond1_estimate(G, solve):
    """||G||_1 ||G^-1||_1 with ||G^-1||_1 from Hager's estimator (LAPACK's xPOCON idea, G
    symmetric) plus Higham's alternating test vector; each trial is a lower bound of
    ||G^-1||_1, so the largest is kept. O(p^2) per trial."""
    p = G.shape[0]
    x = jnp.full((p,), 1.0 / p, G.dtype)
    est = jnp.zeros((), G.dtype)
    for _ in range(4):
        y = solve(x)
        est = jnp.maximum(est, jnp.sum(jnp.abs(y)))
        z = solve(jnp.where(y >= 0, 1.0, -1.0).astype(G.dtype))
        x = jax.nn.one_hot(jnp.argmax(jnp.abs(z)), p, dtype=G.dtype)
    i = jnp.arange(p, dtype=G.dtype)
    alt = jnp.where(i % 2 == 0, 1.0, -1.0) * (1.0 + i / max(p - 1, 1))
    est = jnp.maximum(est, 2.0 * jnp.sum(jnp.abs(solve(alt))) / (3.0 * p))
    return jnp.max(jnp.sum(jnp.abs(G), axis=0)) * est


def _normal_solve(X, target, sw, x_mean, y_mean, pen, steps):
    """Guarded normal-equations solve of min ||A b - r||^2 + sum pen_j b_j^2, A and r the
    weighted centred X and target (`x_mean`, `y_mean` None without an intercept).

    One fusion writes [A r] (a single copy of X) and one matrix product gives its Gram:
    A'A, A'r and r'r together. Returns (b, ok): ok is False when the Cholesky of the
    Jacobi-scaled Gram fails or the problem is too ill-conditioned for the normal
    equations to keep the dtype's accuracy budget (see the module docstring); the caller
    then takes the QR path.
    """
    p = X.shape[1]
    dtype = X.dtype
    eps = jnp.finfo(dtype).eps
    budget = _NORMAL_BUDGET.get(jnp.dtype(dtype), 1e-5)
    Ar = jnp.concatenate([X, target[:, None]], axis=1)
    if x_mean is not None:
        Ar = Ar - jnp.concatenate([x_mean, y_mean[None]])
    Ar = sw[:, None] * Ar
    Gr = jax.lax.dot_general(Ar, Ar, (((0,), (0,)), ((), ())))
    G, c = Gr[:p, :p], Gr[:p, p]
    var = jnp.diag(G)
    if pen is not None:
        G = G + jnp.diag(pen)
    d = jnp.diag(G)
    positive = jnp.all(d > 0)
    s = 1.0 / jnp.sqrt(jnp.where(d > 0, d, 1.0))
    Gs = s[:, None] * G * s[None, :]
    L = jnp.linalg.cholesky(Gs)
    factored = positive & jnp.all(jnp.isfinite(L))
    L = jnp.where(factored, L, jnp.eye(p, dtype=dtype))

    def scaled_solve(v):
        return jax.scipy.linalg.cho_solve((L, True), v)

    def solve(v):
        return s * scaled_solve(s * v)

    b = solve(c)
    settled = jnp.asarray(True)
    for _ in range(steps):
        # residual r - A b = -[A r] @ [b; -1] in the working precision, then A' of it (as
        # v @ M: for M.T @ v, contracting the rows of a row-major M, XLA:CPU copies M.T)
        res = -(Ar @ jnp.concatenate([b, -jnp.ones((1,), dtype)]))
        g = (res @ Ar)[:p]
        if pen is not None:
            g = g - pen * b
        db = solve(g)
        # a posteriori check of the estimate: the correction is the first solve's error,
        # ~ kappa eps <= budget relative; far more means the estimate was wrong
        settled = jnp.linalg.norm(db / s) <= jnp.sqrt(budget) * jnp.linalg.norm(b / s)
        b = b + db
    kappa = _cond1_estimate(Gs, scaled_solve)
    # rounding of the data the Cholesky path works from: eps, plus what centring lost
    # (|mean_j| / sd_j ulps of column j), which the QR path's refinement recovers
    rounding = eps
    if x_mean is not None:
        sd = jnp.sqrt(jnp.where(var > 0, var, 1.0))   # weights sum to one: A'A = covariance
        rounding = eps * (1.0 + jnp.max(jnp.where(var > 0, jnp.abs(x_mean) / sd, jnp.inf)))
    ok = factored & settled & (kappa * rounding <= budget) & jnp.all(jnp.isfinite(b))
    return b, ok


def check_applicable(family, penalty):
    """Raise unless the problem is Gaussian-identity with no penalty or ridge."""
    if not (isinstance(family, Gaussian) and isinstance(family.link, links.Identity)):
        raise ValueError(
            f"solver: LeastSquares solves the Gaussian family with the identity link, not "
            f"{type(family).__name__}(link={family.link!r}); use solver='newton' (or 'auto')."
        )
    if not isinstance(penalty, NoPenalty | L2):
        raise ValueError(
            f"solver: LeastSquares handles no penalty or L2, not {type(penalty).__name__}; use "
            "ProximalGradient or CoordinateDescent for L1 and elastic net."
        )


@pytree_dataclass
class LeastSquares(AbstractSolver):
    """Direct solve of (ridge-)penalized weighted least squares.

    method: "auto" (default: the guarded normal equations when n >= p, else "qr"),
    "cholesky" (the guarded normal equations whatever n and p), "qr" (Householder QR,
    falling back to SVD when rank deficient) or "svd". The normal-equations path falls
    back to "qr" (under `lax.cond`) when the Cholesky of the unit-diagonal Gram fails or
    its condition estimate says the dtype cannot keep the accuracy (module docstring);
    `info.normal` reports whether it answered, and then `info.rank` is p.
    rcond: relative singular-value (or |R_jj|) cutoff for rank determination; None uses
    eps * max(n, p). refine: for unpenalized full-rank QR solves, two steps of Björck's
    iterative refinement with residuals of the original data in twice the working
    precision (error-free transformations), which recovers the digits that centring and
    the QR lose on ill-conditioned designs (polynomials, Longley); for the normal
    equations, one step of refinement (residual in the working precision, correction from
    the same Cholesky factor; two passes over X).
    """

    method: str = static_field(default="auto")
    rcond: object = None
    refine: bool = static_field(default=True)
    name = "lstsq"
    max_iter = 1

    def minimise(self, problem, params):
        if not hasattr(problem, "X"):
            return self._run_quadratic(problem, params)
        check_applicable(problem.family, problem.penalty)
        if self.method not in ("auto", "cholesky", "qr", "svd"):
            raise ValueError(f"method: expected 'auto', 'cholesky', 'qr' or 'svd', got "
                             f"{self.method!r}")
        X, w = problem.X, problem.weights
        n, p = X.shape
        target = problem.y if problem.offset is None else problem.y - problem.offset
        ridge = isinstance(problem.penalty, L2)
        pen = problem.penalty.smooth_hess_diag(jnp.zeros((p,), X.dtype)) if ridge else None
        rcond = jnp.finfo(X.dtype).eps * max(n, p) if self.rcond is None else self.rcond
        method = self.method
        if method == "auto":
            method = "cholesky" if n >= _NORMAL_RATIO * p else "qr"
        zero = jnp.zeros((), X.dtype)
        intercept0 = zero if problem.fit_intercept else jnp.asarray(params["intercept"], X.dtype)
        solve = linalg.sequential_on_cpu(
            lambda X, target, w, pen, rcond, intercept0: self._solve(
                X, target, w, pen, rcond, intercept0, method, problem.fit_intercept))
        coef, intercept, rank, normal = solve(X, target, w, pen, jnp.asarray(rcond, X.dtype),
                                              intercept0)
        new = {"coef": coef, "intercept": jnp.asarray(intercept, X.dtype)}
        value = problem.value(new)
        status = jnp.where(rank < p, code(Status.SINGULAR), code(Status.CONVERGED))
        status = jnp.where(jnp.isfinite(value), status, code(Status.NON_FINITE))
        return Solution(new, value, jnp.asarray(1, jnp.int32), status,
                        status == Status.CONVERGED, LeastSquaresState(value, rank, normal))

    def _solve(self, X, target, w, pen, rcond, intercept0, method, fit_intercept):
        """(coef, intercept, rank, normal) of one problem: the normal equations, QR or SVD
        (`minimise` runs it through `linalg.sequential_on_cpu`: it calls LAPACK)."""
        n, p = X.shape
        ridge = pen is not None
        x_mean = y_mean = None
        if fit_intercept:
            x_mean = w @ X
            y_mean = w @ target
        sw = jnp.sqrt(w)

        def direct(method):
            """(coef, intercept, rank) from the QR or SVD of the (augmented) design."""
            # built here, so that under lax.cond only the branch that needs them pays
            A = sw[:, None] * (X if x_mean is None else X - x_mean)
            r = sw * (target if y_mean is None else target - y_mean)
            Aa, ra = A, r
            if ridge:
                Aa = jnp.concatenate([A, jnp.diag(jnp.sqrt(pen))], axis=0)
                ra = jnp.concatenate([r, jnp.zeros((p,), X.dtype)])
            if method == "svd":
                coef, rank = _svd_solve(Aa, ra, rcond)
                rank = rank.astype(jnp.int32)
            else:
                coef, rank, q, R = _qr_solve(Aa, ra, rcond)
            intercept = (y_mean - x_mean @ coef) if fit_intercept else intercept0
            if method == "qr" and self.refine and not ridge:
                # full rank: refine against the original (uncentred) data
                xm = x_mean if fit_intercept else jnp.zeros((p,), X.dtype)
                coef, intercept = jax.lax.cond(
                    rank == p,
                    lambda c, b: _refine(X, target, sw, xm, Aa, q, R, c, b, fit_intercept),
                    lambda c, b: (c, b), coef, jnp.asarray(intercept, X.dtype))
            return coef, jnp.asarray(intercept, X.dtype), rank

        normal = jnp.asarray(False)
        if p == 0:  # intercept-only model: nothing to factor
            coef, rank = jnp.zeros((0,), X.dtype), jnp.asarray(0, jnp.int32)
            intercept = y_mean if fit_intercept else intercept0
        elif method == "cholesky":
            b, normal = _normal_solve(X, target, sw, x_mean, y_mean, pen,
                                      1 if self.refine else 0)

            def accept(b):
                intercept = (y_mean - x_mean @ b) if fit_intercept else intercept0
                return b, jnp.asarray(intercept, X.dtype), jnp.asarray(p, jnp.int32)

            coef, intercept, rank = jax.lax.cond(normal, accept, lambda b: direct("qr"), b)
        else:
            coef, intercept, rank = direct(method)
        return coef, jnp.asarray(intercept, X.dtype), rank, normal

    def _run_quadratic(self, problem, params):
        """One exact Newton step: the minimiser when `fun` is a convex quadratic."""
        value, grad, hess = problem.newton_system(params)
        step, singular = solve_psd(hess, -grad)
        new = problem.from_vector(problem.to_vector(params) + step, params)
        value = problem.value(new)
        status = jnp.where(singular, code(Status.SINGULAR), code(Status.CONVERGED))
        return Solution(new, value, jnp.asarray(1, jnp.int32), status,
                        status == Status.CONVERGED,
                        LeastSquaresState(value, -1, jnp.asarray(False)))
