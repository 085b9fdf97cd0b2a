"""Projected Newton for box-constrained smooth GLMs (Bertsekas' two-metric projection).

At x with gradient g and Hessian H (from `problem.newton_system`), coordinates
at a bound whose gradient pushes outward form the active set

    A = {j : x_j <= lower_j + e and g_j > 0} U {j : x_j >= upper_j - e and g_j < 0},

e = min(1e-8 scale, ||x - P(x - g)||). The free coordinates take the Newton step
of the Hessian restricted to them; the active ones a diagonally scaled gradient
step; the trial point is projected onto the box, P(x + t d), and t halves until
the objective does not increase (as `Newton`). Stops when the projected-gradient
residual ||x - P(x - g)||_inf is at most `tol`. With no bounds this is Newton.
Smooth penalties only (L1 needs CoordinateDescent or ProximalGradient).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from linjax._pytree import pytree_dataclass, static_field
from linjax.solvers._common import halving_search, is_glm, require_smooth, resolve_tol
from linjax.solvers.engine import AbstractSolver
from linjax.solvers.newton import solve_psd
from linjax.solvers.status import Status, code


class ProjectedNewtonState(NamedTuple):
    value: jax.Array
    residual: jax.Array
    step_size: jax.Array
    converged: jax.Array
    stalled: jax.Array


def bound_vectors(problem, x, like):
    """(lower, upper) over the flat vector of `to_vector` (the intercept is unbounded)."""
    lo = problem.to_vector(problem.project({"coef": jnp.full_like(like["coef"], -jnp.inf),
                                            "intercept": like["intercept"]}))
    hi = problem.to_vector(problem.project({"coef": jnp.full_like(like["coef"], jnp.inf),
                                            "intercept": like["intercept"]}))
    k = x.shape[0] - like["coef"].size
    free = jnp.arange(x.shape[0]) < k
    return jnp.where(free, -jnp.inf, lo), jnp.where(free, jnp.inf, hi)


@pytree_dataclass
class ProjectedNewton(AbstractSolver):
    """Newton with coefficient bounds (`lj.fit(..., bounds=...)`, solver="projected_newton").

    tol: projected-gradient residual at convergence (None: 1e-8 in float64, 1e-4 in
    float32). fisher: as Newton.
    """

    tol: object = None
    max_iter: int = static_field(default=200)
    fisher: object = static_field(default=None)
    max_halvings: int = static_field(default=40)
    name = "projected_newton"

    def _fisher(self, problem):
        if self.fisher is not None:
            return self.fisher
        family = getattr(problem, "family", None)
        return family is not None and not family.is_canonical

    def minimise(self, problem, params):
        if is_glm(problem):
            params = problem.project(params)
        return super().minimise(problem, params)

    def init(self, problem, params):
        require_smooth(problem, "ProjectedNewton")
        value = problem.value(params)
        false = jnp.asarray(False)
        return ProjectedNewtonState(value, jnp.asarray(jnp.inf, value.dtype),
                                    jnp.ones((), value.dtype), false, false)

    def step(self, problem, params, state):
        value, grad, hess = problem.newton_system(params, self._fisher(problem))
        x = problem.to_vector(params)
        dtype = x.dtype
        if is_glm(problem):
            lo, hi = bound_vectors(problem, x, params)
        else:
            lo, hi = jnp.full_like(x, -jnp.inf), jnp.full_like(x, jnp.inf)
        residual = jnp.max(jnp.abs(x - jnp.clip(x - grad, lo, hi)), initial=0.0)
        e = jnp.minimum(residual, 1e-8 * jnp.maximum(1.0, jnp.max(jnp.abs(x), initial=0.0)))
        active = ((x <= lo + e) & (grad > 0)) | ((x >= hi - e) & (grad < 0))
        free = ~active
        both = free[:, None] & free[None, :]
        h_free = jnp.where(both, hess, 0.0) + jnp.diag(active.astype(dtype))
        d_free, singular = solve_psd(h_free, -jnp.where(free, grad, 0.0))
        diag = jnp.diag(hess)
        d_active = -grad / jnp.where(diag > 0, diag, 1.0)
        direction = jnp.where(free, d_free, d_active)
        scale = jnp.maximum(jnp.abs(value), 1.0)
        slack = 8 * jnp.finfo(dtype).eps * scale

        def point(t):
            return jnp.clip(x + t * direction, lo, hi)

        def trial(t):
            return problem.value(problem.from_vector(point(t), params))

        t, f_t, accepted = halving_search(trial, value, slack, self.max_halvings, dtype)
        tol = resolve_tol(self.tol, dtype)
        converged = residual <= tol
        at_floor = residual <= jnp.sqrt(jnp.finfo(dtype).eps) * scale
        stalled = ~accepted & ~at_floor & ~converged
        converged = converged | (~accepted & at_floor)
        new_x = jnp.where(accepted, point(t), x)
        new_value = jnp.where(accepted, f_t, value)
        del singular  # a singular free block falls back to the eigen pseudo-solve
        return problem.from_vector(new_x, params), ProjectedNewtonState(
            new_value, residual, t, converged, stalled)

    def terminate(self, problem, params, state):
        status = jnp.where(state.stalled, code(Status.LINE_SEARCH_FAILED),
                           code(Status.CONVERGED))
        return state.converged | state.stalled, status
