"""Problems a solver minimises: a GLM (data plus family and penalty) or any user function.

Both expose `value(params)`, `to_vector` / `from_vector` (the flat coordinates a
second-order step works in) and `newton_system(params, fisher)` returning the
value, gradient and Hessian in those coordinates. The GLM builds its Hessian as
X.T diag(w h) X from elementwise curvature (DESIGN.md, "The math, done once");
a user function gets `jax.hessian` of its raveled form.
"""

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from linjax._pytree import pytree_dataclass, static_field
from linjax.families import eta_derivatives
from linjax.model import linear_predictor


@pytree_dataclass
class GLMProblem:
    """min_params sum_i w_i nll_i(y_i, eta_i) + penalty(coef), with sum_i w_i = 1.

    `weights` are normalized to sum to one; `offset` may be None. Without an
    intercept, params["intercept"] stays at its initial value (zero).
    """

    X: jax.Array
    y: jax.Array
    weights: jax.Array
    offset: object
    family: object
    penalty: object
    fit_intercept: bool = static_field(default=True)

    def eta(self, params):
        return linear_predictor(params, self.X, self.offset)

    def data_loss(self, params):
        return jnp.sum(self.weights * self.family.nll(self.y, self.eta(params)))

    def value(self, params):
        return self.data_loss(params) + self.penalty.value(params["coef"])

    def to_vector(self, params):
        coef = params["coef"].reshape(-1)
        if self.fit_intercept:
            return jnp.concatenate([jnp.reshape(params["intercept"], (-1,)), coef])
        return coef

    def from_vector(self, vec, like):
        k = like["intercept"].size if self.fit_intercept else 0
        coef = vec[k:].reshape(like["coef"].shape)
        intercept = vec[:k].reshape(like["intercept"].shape) if k else like["intercept"]
        return {"coef": coef, "intercept": intercept}

    def newton_system(self, params, fisher=False):
        """(value, gradient, Hessian) in the coordinates of `to_vector` (intercept first)."""
        coef = params["coef"]
        nll, g_eta, h_eta = eta_derivatives(self.family, self.y, self.eta(params), fisher)
        r = self.weights * g_eta
        s = self.weights * h_eta
        X = self.X
        grad = X.T @ r + self.penalty.smooth_grad(coef)
        hess = X.T @ (s[:, None] * X) + jnp.diag(self.penalty.smooth_hess_diag(coef))
        if self.fit_intercept:
            xs = X.T @ s
            grad = jnp.concatenate([jnp.sum(r)[None], grad])
            top = jnp.concatenate([jnp.sum(s)[None], xs])[None, :]
            hess = jnp.concatenate([top, jnp.concatenate([xs[:, None], hess], axis=1)], axis=0)
        value = jnp.sum(self.weights * nll) + self.penalty.value(coef)
        return value, grad, hess


@pytree_dataclass
class FunctionProblem:
    """min_params fun(params, *args) for any parameter pytree; `fun` is static."""

    fun: object = static_field()
    args: tuple = ()

    def value(self, params):
        return self.fun(params, *self.args)

    def to_vector(self, params):
        return ravel_pytree(params)[0]

    def from_vector(self, vec, like):
        return ravel_pytree(like)[1](vec)

    def newton_system(self, params, fisher=False):
        flat, unravel = ravel_pytree(params)

        def flat_fun(v):
            return self.fun(unravel(v), *self.args)

        value, grad = jax.value_and_grad(flat_fun)(flat)
        return value, grad, jax.hessian(flat_fun)(flat)
