"""A GLM objective on a design object whose gradient uses the design's own X' v.

Reverse-mode autodiff of X @ b transposes X's matvec: for a sparse or categorical design
that is a scatter-add over every stored entry, which XLA:CPU runs element by element. The
gradient has a closed form that needs only the design's `rmatvec`:

    f(x) = sum_i w_i nll(y_i, eta_i) + penalty(coef),   eta = X coef + intercept + offset
    df/dcoef = X' g + penalty'(coef),   df/dintercept = sum_i g_i,   g = df/deta

so `value_fn` gives the solvers that differentiate the objective (L-BFGS) the same
function with that gradient (a `jax.custom_vjp` in the flat vector x only: the problem's
data get a zero cotangent, as a solver's iterations are never differentiated; `lj.fit`'s
derivatives come from `linjax.implicit`).
"""

import jax
import jax.numpy as jnp
import numpy as np


def applies(comp):
    """True for a GLM problem (with `eta` and `value_at`) whose X is a design object."""
    problem = comp.problem
    return comp.glm and getattr(problem, "dense_rows", False) and hasattr(problem.X, "rmatvec")


def value_fn(comp):
    """x -> the objective at `comp.unflatten(x)` (`comp.smooth_full`); for a design
    (`applies`) its reverse-mode gradient is `value_and_grad` below."""
    if not applies(comp):
        return comp.smooth_full
    problem, like = comp.problem, comp.like
    return lambda x: _value(problem, like, x)


def value_and_grad(problem, like, x):
    """(f(x), df/dx) with one X b and one X' v (see the module docstring)."""
    params = problem.from_vector(x, like)
    eta = problem.eta(params)
    value, (g_params, g_eta) = jax.value_and_grad(problem.value_at, argnums=(0, 1))(params,
                                                                                    eta)
    intercept = params["intercept"]
    grad = {"coef": g_params["coef"] + problem.X.rmatvec(g_eta).astype(x.dtype),
            "intercept": g_params["intercept"] + jnp.reshape(jnp.sum(g_eta, axis=0),
                                                             jnp.shape(intercept))}
    return value, problem.to_vector(grad).astype(x.dtype)


@jax.custom_vjp
def _value(problem, like, x):
    return problem.value(problem.from_vector(x, like))


def _value_fwd(problem, like, x):
    value, grad = value_and_grad(problem, like, x)
    return value, (grad, problem, like)


def _value_bwd(residuals, cotangent):
    grad, problem, like = residuals
    return _zero_cotangents(problem), _zero_cotangents(like), cotangent * grad


_value.defvjp(_value_fwd, _value_bwd)


def _zero_cotangent(a):
    if jnp.issubdtype(jnp.result_type(a), jnp.inexact):
        return jnp.zeros_like(a)
    return np.zeros(jnp.shape(a), jax.dtypes.float0)


def _zero_cotangents(tree):
    return jax.tree_util.tree_map(_zero_cotangent, tree)
