"""The one Newton/IRLS step's rules: default tolerances, the damped step, the stopping rule.

Every Newton loop calls these (`solvers.Newton` for `lj.fit` and `fit_blocked`, the batched
loop of `scale.shared_newton` for `fit_batch`, the host loop of `scale.streaming`), on one
problem (scalars) or on m problems at once ((m,) arrays, by broadcasting):

- `default_tols`/`resolve_tols`: the decrement and step tolerances the dtype can reach;
- `damping`: scale = max(|f|, 1), the slack 8 eps scale a step may raise the objective by,
  and whether the Newton decrement g' H^-1 g is at rounding level (<= sqrt(eps) scale);
- `damped_step` (compiled loops) and `host_damped_step` (a Python loop whose trials read
  the data): R's glm.fit step halving, t = 1, 1/2, 1/4 ... until f(x + t d) <= f(x) + slack
  (`accepts`), a finite step taken whole at a rounding-level decrement;
- `stopping_rule`: converged when the decrement is below tol scale, or an accepted step is
  below xtol (1 + max|x|), or the decrement extrapolated one step ahead is below tol scale
  (`extrapolated_stop`); stalled when a step is rejected above the rounding floor;
- `newton_status`: the status code of a stopped problem (stalled: LINE_SEARCH_FAILED,
  singular Hessian: SINGULAR, else CONVERGED).
"""

import jax
import jax.numpy as jnp

from linjax.solvers.status import Status, code


def default_tols(dtype):
    """(decrement tol, step tol) that the dtype can reach: float64 (1e-20, 1e-10), else
    (1e-12, 1e-6)."""
    return (1e-20, 1e-10) if jnp.finfo(dtype).bits >= 64 else (1e-12, 1e-6)


def resolve_tols(tol, xtol, dtype):
    """(tol, xtol) with `default_tols` where None."""
    default_tol, default_xtol = default_tols(dtype)
    return (default_tol if tol is None else tol, default_xtol if xtol is None else xtol)


def damping(value, decrement):
    """(scale, slack, at_floor) at objective `value` with Newton decrement `decrement`:
    scale = max(|f|, 1), slack = 8 eps scale (the rise a step may cause by rounding),
    at_floor = decrement <= sqrt(eps) scale (quadratic phase: the decrease of a step can
    hide below the objective's rounding, so a finite step is taken whole, as R's glm.fit
    takes every finite step)."""
    eps = jnp.finfo(jnp.result_type(value)).eps
    scale = jnp.maximum(jnp.abs(value), 1.0)
    return scale, 8 * eps * scale, decrement <= jnp.sqrt(eps) * scale


def accepts(f_t, value, slack, whole=False):
    """Whether a trial value f_t is accepted: f_t <= value + slack, or finite where `whole`
    (a NaN trial counts as too high)."""
    return (f_t <= value + slack) | (whole & jnp.isfinite(f_t))


def damped_step(trial, value, slack, max_halvings, first, whole=False, active=None):
    """Step halving in a `lax.while_loop`: t from 1, halved wherever trial(t) is not
    `accepts`ed, at most max_halvings times (R's glm.fit).

    trial(t) -> (f_t, aux); first: trial(1), computed by the caller. value, slack, whole
    are scalars (one problem) or (m,) arrays (m problems, each with its own t; the loop
    runs until every problem in `active` (m,) is accepted). max_halvings may be traced.
    Returns (t, f_t, aux at t, accepted)."""

    def high(f_t):
        rejected = ~accepts(f_t, value, slack, whole)
        return rejected if active is None else active & rejected

    def too_high(carry):
        _, f_t, _, i = carry
        return jnp.any(high(f_t)) & (i < max_halvings)

    def halve(carry):
        t, f_t, _, i = carry
        t = jnp.where(high(f_t), t / 2, t)
        return (t,) + tuple(trial(t)) + (i + 1,)

    f1, aux1 = first
    one = jnp.ones(jnp.shape(f1), jnp.result_type(f1))
    t, f_t, aux, _ = jax.lax.while_loop(too_high, halve, (one, f1, aux1, 0))
    return t, f_t, aux, accepts(f_t, value, slack, whole)


def host_damped_step(trial, value, slack, max_halvings, whole=False):
    """`damped_step` for one problem as a Python loop, for trials that are passes over data
    on the host (`fit_streaming`): trial(t) -> (f_t, aux), f_t a scalar."""
    t = 1.0
    f_t, aux = trial(t)
    halvings = 0
    while not bool(accepts(f_t, value, slack, whole)) and halvings < max_halvings:
        t /= 2
        f_t, aux = trial(t)
        halvings += 1
    return t, f_t, aux, bool(accepts(f_t, value, slack, whole))


def extrapolated_stop(decrement, prev, accepted, t, threshold):
    """True after a full step when the quadratic model of the decrement, lam2_{k+1} =
    C lam2_k^2 with C from the last two (lam2_k^3 / lam2_{k-1}^2), predicts the next one
    below `threshold`: the point just reached already meets it, and one more Hessian would
    only confirm it. Under linear convergence at rate r the model is optimistic by r < 1."""
    known = jnp.isfinite(prev) & (prev > 0)
    ratio = decrement / jnp.where(known, prev, 1.0)
    predicted = jnp.where(known, decrement * ratio * ratio, jnp.inf)
    return accepted & (t == 1) & (decrement <= prev) & (predicted <= threshold)


def stopping_rule(decrement, prev, t, direction, x, accepted, at_floor, scale, tol, xtol):
    """(converged, stalled) after a damped step t along `direction` from x (last axis: the
    coefficients; leading axes: problems).

    converged: decrement <= tol scale, or an accepted step max|t d| <= xtol (1 + max|x|)
    (the criterion that still works in float32, where the objective resolves coefficients
    only to about sqrt(eps)), or `extrapolated_stop`; also a rejected step from a point at
    the rounding floor (no step can improve the objective in this dtype). stalled: a
    rejected step above that floor."""
    step = jnp.max(jnp.abs(jnp.expand_dims(t, -1) * direction), axis=-1, initial=0.0)
    small_step = step <= xtol * (1.0 + jnp.max(jnp.abs(x), axis=-1, initial=0.0))
    threshold = tol * scale
    converged = ((decrement <= threshold) | (accepted & small_step)
                 | extrapolated_stop(decrement, prev, accepted, t, threshold)
                 | (~accepted & at_floor))
    return converged, ~accepted & ~at_floor


def newton_status(stalled, singular):
    """The status of a stopped Newton problem: LINE_SEARCH_FAILED when stalled, else
    SINGULAR when its last Hessian was singular, else CONVERGED."""
    return jnp.where(stalled, code(Status.LINE_SEARCH_FAILED),
                     jnp.where(singular, code(Status.SINGULAR), code(Status.CONVERGED)))
