"""Closed-form (penalized) weighted least squares: QR or SVD of the design, never an inverse.

Minimises  sum_i w_i (y_i - offset_i - x_i b - b0)^2 / 2  +  alpha / 2 sum_j f_j b_j^2
(weights normalized to sum one). The intercept is removed by weighted centring,
ridge enters as extra rows sqrt(alpha f_j) e_j (augmentation), and the
remaining problem ||A b - r||^2 is solved from A = QR, or from the SVD for the
minimum-norm solution of a rank-deficient design. QR falls back to the SVD
when R shows the design is rank deficient; `rank` is reported either way.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from linjax import links
from linjax._pytree import pytree_dataclass, static_field
from linjax.families import Gaussian
from linjax.penalties import L2, NoPenalty
from linjax.solvers.engine import AbstractSolver, Solution
from linjax.solvers.newton import solve_psd
from linjax.solvers.status import Status, code


class LeastSquaresState(NamedTuple):
    value: jax.Array
    rank: jax.Array


def _svd_solve(A, r, rcond):
    u, s, vt = jnp.linalg.svd(A, full_matrices=False)
    cutoff = rcond * s[0]
    keep = s > cutoff
    inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
    return vt.T @ (inv * (u.T @ r)), jnp.sum(keep)


def _qr_solve(A, r, rcond):
    q, R = jnp.linalg.qr(A, mode="reduced")
    diag = jnp.abs(jnp.diag(R))
    full_rank = jnp.all(diag > rcond * jnp.max(diag))

    def triangular():
        x = jax.scipy.linalg.solve_triangular(R, q.T @ r, lower=False)
        return x, jnp.asarray(A.shape[1], jnp.int32)

    def svd():
        x, rank = _svd_solve(A, r, rcond)
        return x, rank.astype(jnp.int32)

    return jax.lax.cond(full_rank, triangular, svd)


def check_applicable(family, penalty):
    """Raise unless the problem is Gaussian-identity with no penalty or ridge."""
    if not (isinstance(family, Gaussian) and isinstance(family.link, links.Identity)):
        raise ValueError(
            f"solver: LeastSquares solves the Gaussian family with the identity link, not "
            f"{family!r}; use solver='newton' (or 'auto')."
        )
    if not isinstance(penalty, NoPenalty | L2):
        raise ValueError(
            f"solver: LeastSquares handles no penalty or L2, not {type(penalty).__name__}; use "
            "ProximalGradient or CoordinateDescent for L1 and elastic net."
        )


@pytree_dataclass
class LeastSquares(AbstractSolver):
    """Direct solve of (ridge-)penalized weighted least squares.

    method: "qr" (Householder QR, falling back to SVD when rank deficient) or "svd".
    rcond: relative singular-value (or |R_jj|) cutoff for rank determination; None uses
    eps * max(n, p).
    """

    method: str = static_field(default="qr")
    rcond: object = None
    name = "lstsq"
    max_iter = 1

    def minimise(self, problem, params):
        if not hasattr(problem, "X"):
            return self._run_quadratic(problem, params)
        check_applicable(problem.family, problem.penalty)
        X, w = problem.X, problem.weights
        n, p = X.shape
        target = problem.y if problem.offset is None else problem.y - problem.offset
        if problem.fit_intercept:
            x_mean = w @ X
            y_mean = w @ target
            X = X - x_mean
            target = target - y_mean
        sw = jnp.sqrt(w)
        A = sw[:, None] * X
        r = sw * target
        if isinstance(problem.penalty, L2):
            pen = problem.penalty.smooth_hess_diag(jnp.zeros((p,), X.dtype))
            A = jnp.concatenate([A, jnp.diag(jnp.sqrt(pen))], axis=0)
            r = jnp.concatenate([r, jnp.zeros((p,), X.dtype)])
        rcond = jnp.finfo(X.dtype).eps * max(n, p) if self.rcond is None else self.rcond
        if p == 0:  # intercept-only model: nothing to factor
            coef, rank = jnp.zeros((0,), X.dtype), jnp.asarray(0, jnp.int32)
        elif self.method == "svd":
            coef, rank = _svd_solve(A, r, rcond)
        elif self.method == "qr":
            coef, rank = _qr_solve(A, r, rcond)
        else:
            raise ValueError(f"method: expected 'qr' or 'svd', got {self.method!r}")
        intercept = (y_mean - x_mean @ coef) if problem.fit_intercept else params["intercept"]
        new = {"coef": coef, "intercept": jnp.asarray(intercept, X.dtype)}
        value = problem.value(new)
        status = jnp.where(rank < p, code(Status.SINGULAR), code(Status.CONVERGED))
        status = jnp.where(jnp.isfinite(value), status, code(Status.NON_FINITE))
        return Solution(new, value, jnp.asarray(1, jnp.int32), status,
                        status == Status.CONVERGED, LeastSquaresState(value, rank))

    def _run_quadratic(self, problem, params):
        """One exact Newton step: the minimiser when `fun` is a convex quadratic."""
        value, grad, hess = problem.newton_system(params)
        step, singular = solve_psd(hess, -grad)
        new = problem.from_vector(problem.to_vector(params) + step, params)
        value = problem.value(new)
        status = jnp.where(singular, code(Status.SINGULAR), code(Status.CONVERGED))
        return Solution(new, value, jnp.asarray(1, jnp.int32), status,
                        status == Status.CONVERGED, LeastSquaresState(value, -1))
