"""Proximal gradient: FISTA with backtracking and adaptive restart.

Minimises F(x) = f(x) + g(x), f the smooth data loss (or a user function) and g
the penalty on the coefficients plus the indicator of the coefficient bounds,
in the flat coordinates of `problem.to_vector` (the intercept is never
penalized or bounded). One step, from the extrapolated point y with step s:

    x+ = prox_{s g}(y - s grad f(y))

accepted when f(x+) <= f(y) + <grad f(y), x+ - y> + ||x+ - y||^2 / (2 s) (the
majorization condition); otherwise s is halved (a non-finite f(x+) counts as a
failure, so the search shrinks past overflow instead of stalling). The next
step starts from s / 0.9. Momentum follows FISTA; when F increases the
momentum is reset and the step retaken from the last iterate (O'Donoghue and
Candes' function-value restart), which keeps F monotone. The solver stops
when the proximal fixed-point residual ||x+ - y||_inf / s (the gradient
mapping, zero exactly at a minimiser) is at most `tol`.

Bounds: the prox of a separable penalty plus a box is the clipped prox, so
L1, elastic net and L2 combine with any bounds (non-negative lasso, NNLS).
`GradientDescent` is this solver without momentum (projected / proximal
gradient descent).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from linjax._pytree import pytree_dataclass, static_field
from linjax.solvers._common import Composite, resolve_tol
from linjax.solvers.engine import AbstractSolver
from linjax.solvers.status import Status, code


class ProximalState(NamedTuple):
    value: jax.Array
    y: jax.Array
    t: jax.Array
    step_size: jax.Array
    residual: jax.Array
    converged: jax.Array
    stalled: jax.Array


def check_prox_bounds(problem):
    penalty = getattr(problem, "penalty", None)
    if getattr(problem, "bounded", False) and getattr(penalty, "grouped", False):
        raise ValueError("bounds: GroupLasso with coefficient bounds has no closed-form proximal "
                         "map; drop the bounds or use an elementwise penalty (L1, ElasticNet).")


def prox_gradient_step(comp, x, fx_total, y, t, s0, *, accelerate, backtrack, max_backtracks,
                       tol):
    """One (accelerated) proximal gradient step; returns the new state pieces."""
    fy, gy = jax.value_and_grad(comp.smooth)(y)
    eps = jnp.finfo(fy.dtype).eps
    slack = 8 * eps * jnp.maximum(jnp.abs(fy), 1.0)

    def trial(s):
        xp = comp.prox(y - s * gy, s)
        fxp = comp.smooth(xp)
        d = xp - y
        bound = fy + jnp.dot(gy, d) + jnp.dot(d, d) / (2 * s) + slack
        ok = jnp.isfinite(fxp) & (fxp <= bound)
        return xp, fxp, ok

    xp, fxp, ok = trial(s0)
    # The gradient mapping at the first trial step: a stationarity measure that rounding
    # cannot zero (at a step of 1e-18, y - s g == y and the mapping would read 0).
    residual0 = jnp.max(jnp.abs(xp - y), initial=0.0) / s0
    if not backtrack:
        ok = jnp.isfinite(fxp)
    else:
        def cond(c):
            s, _, _, ok, k = c
            return ~ok & (k < max_backtracks)

        def body(c):
            s, _, _, _, k = c
            s = s / 2
            xp, fxp, ok = trial(s)
            return s, xp, fxp, ok, k + 1

        s, xp, fxp, ok, _ = jax.lax.while_loop(cond, body, (s0, xp, fxp, ok, 0))
        # A step so small that x+ == y is no step: a failure unless y is stationary.
        ok = ok & (jnp.any(xp != y) | (residual0 <= tol))
    if not backtrack:
        s = s0
    Fp = fxp + comp.nonsmooth(xp)
    residual = jnp.max(jnp.abs(xp - y), initial=0.0) / s
    scale = jnp.maximum(jnp.abs(fx_total), 1.0)
    if accelerate:
        restart = ~(Fp <= fx_total + 8 * eps * scale)
        t_next = (1 + jnp.sqrt(1 + 4 * t * t)) / 2
        y_acc = xp + ((t - 1) / t_next) * (xp - x)
        t_new = jnp.where(restart, jnp.ones_like(t), t_next)
    else:
        restart = jnp.asarray(False)
        t_new = t
        y_acc = xp
    accept = ok & ~restart
    x_new = jnp.where(accept, xp, x)
    y_new = jnp.where(accept, y_acc, x)
    value = jnp.where(accept, Fp, fx_total)
    converged = accept & (residual <= tol)
    # Failure to satisfy the majorization at rounding level is convergence, not a stall.
    at_floor = residual0 <= jnp.sqrt(eps) * scale
    stalled = ~ok & ~at_floor
    converged = converged | (~ok & at_floor)
    s_next = jnp.where(ok, s / 0.9 if backtrack else s, s0)
    return x_new, y_new, t_new, s_next, value, residual, converged, stalled


@pytree_dataclass
class ProximalGradient(AbstractSolver):
    """FISTA with backtracking and adaptive restart (any family, L1 / elastic net / group lasso,
    bounds).

    tol: proximal gradient-mapping residual at convergence (None: 1e-8 in float64, 1e-4 in
    float32). step_size: the first step (None: 1.0), shrunk by backtracking.
    """

    tol: object = None
    step_size: object = None
    max_iter: int = static_field(default=5000)
    accelerate: bool = static_field(default=True)
    backtrack: bool = static_field(default=True)
    max_backtracks: int = static_field(default=60)
    name = "proximal"

    def _first_step(self, problem, params, dtype):
        return jnp.asarray(1.0 if self.step_size is None else self.step_size, dtype)

    def init(self, problem, params):
        check_prox_bounds(problem)
        comp = Composite(problem, params)
        params = problem.project(params) if hasattr(problem, "project") else params
        x = comp.flatten(params)
        value = comp.value(x)
        false = jnp.asarray(False)
        return ProximalState(value, x, jnp.ones((), value.dtype),
                             self._first_step(problem, params, value.dtype),
                             jnp.asarray(jnp.inf, value.dtype), false, false)

    def minimise(self, problem, params):
        if hasattr(problem, "project"):
            params = problem.project(params)
        return super().minimise(problem, params)

    def step(self, problem, params, state):
        return proximal_step(problem, params, state, self.tol, self.accelerate, self.backtrack,
                             self.max_backtracks)

    def terminate(self, problem, params, state):
        return proximal_terminate(state)


def proximal_step(problem, params, state, tol, accelerate, backtrack, max_backtracks):
    """One step of `prox_gradient_step` from `state` (FISTA's, or plain proximal / projected
    gradient descent's with accelerate=False): (params, ProximalState)."""
    comp = Composite(problem, params)
    x = comp.flatten(params)
    tol = resolve_tol(tol, state.value.dtype)
    x_new, y_new, t_new, s_next, value, residual, converged, stalled = prox_gradient_step(
        comp, x, state.value, state.y, state.t, state.step_size, accelerate=accelerate,
        backtrack=backtrack, max_backtracks=max_backtracks, tol=tol)
    return comp.unflatten(x_new), ProximalState(value, y_new, t_new, s_next, residual,
                                                converged, stalled)


def proximal_terminate(state):
    """(done, status): converged, or stalled (LINE_SEARCH_FAILED) when no step decreased."""
    status = jnp.where(state.stalled, code(Status.LINE_SEARCH_FAILED), code(Status.CONVERGED))
    return state.converged | state.stalled, status
