"""Implicit differentiation through a solve: gradients of the minimiser, never of the iterations.

At a minimiser x*(a) of a problem with data a (X, y, weights, offset, family and
penalty leaves), the optimality condition F(x*, a) = 0 holds, so
dx*/da = -J^{-1} dF/da with J = dF/dx. For a cotangent v of x*, the backward
pass solves J^T u = v once and returns -u^T dF/da by one vector-Jacobian product.

- Smooth penalties: F = gradient of the objective, J = the Hessian (from the
  problem's own `newton_system`, exact curvature).
- L1, elastic net, group lasso, bounds: F(x) = x - T(x) with T the proximal
  gradient map x -> prox(x - grad f(x)) (projected when bounded). T is flat on
  coefficients held at zero or at a bound, so this differentiates the fixed point
  restricted to the active set.

The objective value's cotangent uses the envelope theorem: d f(x*(a), a)/da is
the partial derivative in a at fixed x*.
"""


import jax
import jax.numpy as jnp
import numpy as np

from linjax.solvers import linalg
from linjax.solvers.newton import solve_psd


def _zero_cotangent(x):
    x = jnp.asarray(x) if not hasattr(x, "dtype") else x
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros(x.shape, x.dtype)
    return np.zeros(x.shape, dtype=jax.dtypes.float0)


def _zeros_like_tree(tree):
    return jax.tree_util.tree_map(_zero_cotangent, tree)


def _is_smooth(problem):
    penalty = getattr(problem, "penalty", None)
    smooth = penalty is None or penalty.smooth
    return smooth and not getattr(problem, "bounded", False)


def _fixed_point_residual(problem, x, like):
    """x - T(x), T(x) = prox_penalty(x - grad data_loss(x)) (intercept unpenalized)."""
    params = problem.from_vector(x, like)
    grad = jax.grad(problem.data_loss)(params)
    moved = jax.tree_util.tree_map(lambda p, g: p - g, params, grad)
    coef = problem.penalty.prox(moved["coef"], 1.0)
    stepped = {"coef": coef, "intercept": moved["intercept"]}
    if getattr(problem, "bounded", False):
        stepped = problem.project(stepped)
    return x - problem.to_vector(stepped)


def _optimality(problem, x, like):
    if _is_smooth(problem):
        return problem.to_vector(jax.grad(problem.value)(problem.from_vector(x, like)))
    return _fixed_point_residual(problem, x, like)


def minimise(solver, problem, params):
    """`solver.minimise(problem, params)` whose params and value differentiate implicitly.

    The solver's numeric leaves (tol, step sizes, learning rates) are traced under jit,
    so the solver goes in as a differentiable argument (with a zero cotangent) rather
    than a non-differentiable one, which custom_vjp requires to be free of tracers.
    """
    return _minimise(solver, problem, params)


@jax.custom_vjp
def _minimise(solver, problem, params):
    return solver.minimise(problem, params)


def _fwd(solver, problem, params):
    sol = solver.minimise(problem, params)
    return sol, (solver, problem, sol.params, params)


def _bwd(residuals, cotangent):
    solver, problem, x_star, init = residuals
    like = x_star
    v = problem.to_vector(cotangent.params)
    x = problem.to_vector(x_star)
    if _is_smooth(problem):
        _, _, hess = problem.newton_system(x_star, False)
        u, _ = solve_psd(hess, v)
    else:
        jac = jax.jacfwd(lambda z: _fixed_point_residual(problem, z, like))(x)
        u = linalg.lstsq(jac.T, v)
    _, vjp_opt = jax.vjp(lambda prob: _optimality(prob, x, like), problem)
    (bar_opt,) = vjp_opt(-u)
    bar_val = _value_cotangent(problem, x_star, cotangent.value)
    bar_problem = jax.tree_util.tree_map(_add_cotangents, bar_opt, bar_val)
    return _zeros_like_tree(solver), bar_problem, _zeros_like_tree(init)


def _value_cotangent(problem, x_star, value_bar):
    """The envelope term value_bar * d f(x*, a)/da, exactly zero where value_bar is zero.

    The objective carries terms in y alone (the saturated log-likelihood y log y of half
    the deviance) whose derivative is infinite at the support's edge (y = 0), so the
    plain product 0 * inf would turn a gradient of the coefficients alone into NaN.
    """
    _, vjp_val = jax.vjp(lambda prob: prob.value(x_star), problem)
    (bar_val,) = vjp_val(value_bar)
    used = value_bar != 0

    def mask(b):
        if getattr(b, "dtype", None) == jax.dtypes.float0:
            return b
        return jnp.where(used, b, jnp.zeros_like(b))

    return jax.tree_util.tree_map(mask, bar_val)


def _add_cotangents(a, b):
    if getattr(a, "dtype", None) == jax.dtypes.float0:
        return a
    return a + b


_minimise.defvjp(_fwd, _bwd)
