"""Helpers shared by the first-order and coordinate solvers (not public API).

A problem is seen by these solvers as a composite objective over the flat
vector of `problem.to_vector` (intercept first):

    F(x) = smooth(x) + nonsmooth(x)

with `smooth` the data loss (GLM) or the user's function, and `nonsmooth` the
penalty on the coefficients plus the indicator of the bounds, whose proximal
map is `prox(x, step)`.
"""

import jax.numpy as jnp

from linjax.penalties import NoPenalty
from linjax.solvers.newton_step import damped_step


def default_tol(dtype):
    """Stationarity tolerance (gradient or proximal-gradient norm): 1e-8 / 1e-4 (f64 / f32)."""
    return 1e-8 if jnp.finfo(dtype).bits >= 64 else 1e-4


def resolve_tol(tol, dtype):
    return default_tol(dtype) if tol is None else jnp.asarray(tol, dtype)


def is_glm(problem):
    return hasattr(problem, "X")


def penalty_of(problem):
    return getattr(problem, "penalty", NoPenalty())


def require_smooth(problem, solver_name):
    """Raise (at trace time, from static structure) when the penalty is not smooth."""
    penalty = penalty_of(problem)
    if not penalty.smooth:
        raise ValueError(
            f"solver: {solver_name} needs a smooth objective, but the penalty "
            f"{type(penalty).__name__} has an L1 (non-differentiable) part. Use "
            "solver='cd' (CoordinateDescent) or solver='proximal' (ProximalGradient)."
        )


def require_unbounded(problem, solver_name):
    if getattr(problem, "bounded", False):
        raise ValueError(
            f"bounds: {solver_name} does not handle coefficient bounds. Use solver='proximal' "
            "(ProximalGradient), solver='cd' (CoordinateDescent), solver='projected_newton' "
            "or solver='gd' (projected GradientDescent)."
        )


class Composite:
    """smooth / nonsmooth / prox of a problem in the flat coordinates of `to_vector`."""

    def __init__(self, problem, like):
        self.problem = problem
        self.like = like
        self.glm = is_glm(problem)

    def unflatten(self, x):
        return self.problem.from_vector(x, self.like)

    def flatten(self, params):
        return self.problem.to_vector(params)

    def smooth(self, x):
        params = self.unflatten(x)
        if self.glm:
            return self.problem.data_loss(params)
        return self.problem.value(params)

    def nonsmooth(self, x):
        if not self.glm:
            return jnp.zeros((), x.dtype)
        return self.problem.penalty.value(self.unflatten(x)["coef"])

    def value(self, x):
        return self.smooth(x) + self.nonsmooth(x)

    def prox(self, x, step):
        if not self.glm:
            return x
        params = self.unflatten(x)
        coef = self.problem.penalty.prox(params["coef"], step)
        params = self.problem.project({"coef": coef, "intercept": params["intercept"]})
        return self.flatten(params)

    def smooth_full(self, x):
        """The whole objective when the penalty is smooth (data loss + penalty)."""
        return self.problem.value(self.unflatten(x))


def halving_search(trial, value, slack, max_halvings, dtype, whole=False):
    """Halve t from 1 until trial(t) <= value + slack (R's glm.fit step halving): one
    problem's `linjax.solvers.newton_step.damped_step` with trial(t) -> value.

    whole: take the full step wherever its value is finite (a Newton step at a
    rounding-level decrement, whose decrease the objective's rounding can hide).
    Returns (t, trial(t), accepted); a NaN trial counts as too high.
    """
    t, f_t, _, accepted = damped_step(lambda t: (trial(t), ()), value, slack, max_halvings,
                                      (trial(jnp.ones((), dtype)), ()), whole=whole)
    return t, f_t, accepted
