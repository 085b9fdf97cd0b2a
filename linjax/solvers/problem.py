"""Problems a solver minimises: a GLM (data plus family and penalty) or any user function.

Both expose `value(params)`, `to_vector` / `from_vector` (the flat coordinates a
second-order step works in) and `newton_system(params, fisher)` returning the
value, gradient and Hessian in those coordinates. The GLM builds its Hessian as
X.T diag(w h) X from elementwise curvature (docs/solvers.md);
a user function gets `jax.hessian` of its raveled form.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from linjax._pytree import pytree_dataclass, static_field
from linjax.designs import block_solve
from linjax.families import eta_derivatives, eta_hessians
from linjax.model import linear_predictor
from linjax.solvers.gram import pair_grams, weighted_products
from linjax.starting import (  # noqa: F401 (log_intercept_shift: re-exported, as before)
    intercept_only_from_rows,
    keep_finite,
    log_intercept_shift,
    shifts_intercept,
    start_working,
)


@pytree_dataclass
class GLMProblem:
    """min_params sum_i w_i nll_i(y_i, eta_i) + penalty(coef), with sum_i w_i = 1.

    `weights` are normalized to sum to one; `offset` may be None. Without an
    intercept, params["intercept"] stays at its initial value (zero). `lower` /
    `upper` (None, scalars or arrays broadcasting against coef) bound the
    coefficients (never the intercept); solvers that cannot honour bounds refuse
    a problem that has them. A multiclass family (`Multinomial`) has (p, K) coef.
    """

    X: jax.Array
    y: jax.Array
    weights: jax.Array
    offset: object
    family: object
    penalty: object
    fit_intercept: bool = static_field(default=True)
    lower: object = None
    upper: object = None
    #: newton_system takes `single` and `eta` and value_at / eta_change exist (Newton uses
    #: float32 curvature and carries eta); a subclass with other data layouts sets False.
    dense_rows = True

    @property
    def bounded(self):
        return self.lower is not None or self.upper is not None

    @property
    def multiclass(self):
        return self.family.multiclass

    def project(self, params):
        """Clip the coefficients into [lower, upper] (identity without bounds)."""
        if not self.bounded:
            return params
        coef = params["coef"]
        lo = -jnp.inf if self.lower is None else jnp.asarray(self.lower, coef.dtype)
        hi = jnp.inf if self.upper is None else jnp.asarray(self.upper, coef.dtype)
        if coef.ndim == 2:
            lo = lo if jnp.ndim(lo) < 1 else jnp.reshape(lo, (coef.shape[0], -1))
            hi = hi if jnp.ndim(hi) < 1 else jnp.reshape(hi, (coef.shape[0], -1))
        return {"coef": jnp.clip(coef, lo, hi), "intercept": params["intercept"]}

    def eta(self, params):
        return linear_predictor(params, self.X, self.offset)

    def data_loss(self, params):
        return weighted_sum(self.weights, self.family.nll(self.y, self.eta(params)))

    def value(self, params):
        return self.data_loss(params) + self.penalty.value(params["coef"])

    def value_at(self, params, eta):
        """The objective at `params` whose linear predictor is `eta` (no pass over X)."""
        return (weighted_sum(self.weights, self.family.nll(self.y, eta))
                + self.penalty.value(params["coef"]))

    def eta_change(self, direction, like):
        """X d_coef + d_intercept: the change of eta per unit step along `direction` (in the
        coordinates of `to_vector`), so a line search needs one pass over X, not one a trial."""
        step = self.from_vector(direction, like)
        if not self.fit_intercept:
            step["intercept"] = jnp.zeros_like(step["intercept"])
        return linear_predictor(step, self.X)

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

    @property
    def arrow_hessian(self):
        """True when `newton_system(..., arrow=True)` returns an `ArrowHessian` (X a design
        with a categorical block, one response: `linjax.designs.block_solve`); static."""
        return self.dense_rows and not self.multiclass and block_solve.applies(self.X)

    def newton_system(self, params, fisher=False, single=False, eta=None, irls_start=None,
                      arrow=False):
        """(value, gradient, Hessian) in the coordinates of `to_vector` (intercept first).

        single: form the Hessian's products in float32 (`gram.weighted_products`; the
        gradient and value stay in X's dtype); a Python bool or a traced one (then both
        versions are compiled and `lax.cond` picks one). eta: the linear predictor at
        params when the caller has it (saves a pass over X). irls_start: a traced bool;
        where true (params at zero), the system of R's first IRLS step instead
        (`irls_start_terms`; the value returned is then meaningless). arrow (where
        `arrow_hessian`): the Hessian as a `block_solve.ArrowHessian` (diagonal categorical
        block, bordered), never the (k, k) matrix; `single` does not apply to it.
        """
        eta = self.eta(params) if eta is None else eta
        if self.multiclass:
            return self._newton_system_multiclass(params, single, eta)
        coef = params["coef"]

        def newton_terms(eta):
            nll, g_eta, h_eta = eta_derivatives(self.family, self.y, eta, fisher)
            return nll, weighted_terms(self.weights, g_eta), weighted_terms(self.weights, h_eta)

        if irls_start is None:
            nll, r, s = newton_terms(eta)
        else:
            nll, r, s = jax.lax.cond(
                irls_start, lambda eta: (jnp.zeros_like(eta), *self.irls_start_terms()),
                newton_terms, eta)

        k = int(self.fit_intercept)
        arrow = arrow and self.arrow_hessian
        if arrow:
            hess = block_solve.arrow_products(self.X, s, self.fit_intercept)
            grad = self.X.rmatvec(r)
            grad = jnp.concatenate([jnp.sum(r)[None], grad]) if k else grad
        else:
            hess, grad = _in_precision(single, lambda single: weighted_products(
                self.X, s, r, self.fit_intercept, single))
        pen_grad = self.penalty.smooth_grad(coef)
        if irls_start is not None:
            pen_grad = jnp.where(irls_start, 0.0, pen_grad)
        pen_hess = self.penalty.smooth_hess_diag(coef)
        grad = grad.at[k:].add(pen_grad)
        if arrow:
            hess = hess.add_diagonal(jnp.concatenate([jnp.zeros(k, pen_hess.dtype), pen_hess]))
        else:
            hess = hess.at[k:, k:].add(jnp.diag(pen_hess))
        value = weighted_sum(self.weights, nll) + self.penalty.value(coef)
        return value, grad, hess

    def irls_start_terms(self):
        """(r0, s0): R's first IRLS step written as a Newton system at params zero.

        s0 = w mu'(eta0)^2 / V(mu0), the Fisher weights at the family's starting means
        mu0 = `starting_mu(y)` (0 where not finite), and r0 = -s0 z0 with z0 = link(mu0) -
        offset (`linjax.starting.start_working`), so that the Newton direction from zero,
        (Z' S0 Z + ridge)^{-1} Z' S0 z0, is that step's weighted least squares
        (`linjax.starting.initial_params`).
        """
        _, s0, s0_z0 = start_working(self.family, self.y, self.weights, self.offset)
        return -s0_z0, s0

    def irls_start_point(self, params, eta):
        """R's start from its first IRLS step's solution `params` (whose linear predictor is
        `eta`), as `linjax.starting.initial_params` finishes it: for a log-linear Poisson
        model the intercept moves to its optimum given the slopes; where the objective is
        not finite there, the intercept-only start link(sum w mu0) - sum w offset instead
        (`starting.keep_finite`, `starting.intercept_only_from_rows`).
        Returns (params, eta, value)."""
        family, w = self.family, self.weights
        if shifts_intercept(family, self.fit_intercept):
            shift = log_intercept_shift(jnp.sum(w * self.y), eta, w)
            params = {"coef": params["coef"], "intercept": params["intercept"] + shift}
            eta = eta + shift
        value = self.value_at(params, eta)
        fallback = {"coef": jnp.zeros_like(params["coef"]),
                    "intercept": jnp.zeros_like(params["intercept"])}
        if self.fit_intercept:
            fallback["intercept"] = intercept_only_from_rows(family, self.y, w, self.offset)
        fallback_eta = self.eta_at_zero() + fallback["intercept"]
        fallback_value = self.value_at(fallback, fallback_eta)
        return keep_finite(value, (params, eta, value), (fallback, fallback_eta, fallback_value))

    def eta_at_zero(self):
        """The linear predictor at coef and intercept zero: the offset (or zeros)."""
        zeros = jnp.zeros_like(self.y)
        return zeros if self.offset is None else zeros + self.offset

    def _newton_system_multiclass(self, params, single, eta):
        """Newton system of a softmax model, vectorized as `to_vector` does (row-major).

        With Z = [1, X], the Hessian is sum_i w_i (z_i z_i') kron S_i, S_i the (K, K)
        per-observation curvature from autodiff. Softmax is invariant to adding one
        vector to every class, so that Hessian is singular along the directions
        constant over classes; those directions are orthogonal to every gradient,
        and adding their projector (scaled to the Hessian) makes the system
        nonsingular without changing the Newton step on the sum-to-zero subspace.
        """
        coef = params["coef"]
        p, K = coef.shape
        nll, g_eta, h_eta = eta_hessians(self.family, self.y, eta)
        w = self.weights
        q = p + int(self.fit_intercept)
        wg = w[:, None] * g_eta
        grad = (wg.T @ self.X).T
        if self.fit_intercept:
            grad = jnp.concatenate([jnp.sum(wg, axis=0)[None, :], grad])

        hess = _in_precision(single, lambda single: _class_pair_hessian(
            self.X, w[:, None, None] * h_eta, self.fit_intercept, single))
        pen_grad = self.penalty.smooth_grad(coef)
        pen_hess = self.penalty.smooth_hess_diag(coef)
        if self.fit_intercept:
            pen_grad = jnp.concatenate([jnp.zeros((1, K), coef.dtype), pen_grad])
            pen_hess = jnp.concatenate([jnp.zeros((1, K), coef.dtype), pen_hess])
        grad = (grad + pen_grad).reshape(-1)
        hess = hess + jnp.diag(pen_hess.reshape(-1))
        level = jnp.maximum(jnp.trace(hess) / (q * K), jnp.finfo(hess.dtype).tiny)
        null = jnp.kron(jnp.eye(q, dtype=hess.dtype), jnp.full((K, K), 1.0 / K, hess.dtype))
        hess = hess + level * null
        value = jnp.sum(w * nll) + self.penalty.value(coef)
        return value, grad, hess


def weighted_terms(w, values):
    """w_i values_i, exactly 0 where w_i = 0: a zero-weight row whose eta lies outside its
    link's domain (a NaN or inf loss there) must not poison the sums."""
    return jnp.where(w > 0, w * values, 0.0)


def weighted_sum(w, values):
    """sum_i w_i values_i over the rows of positive weight (`weighted_terms`)."""
    return jnp.sum(weighted_terms(w, values))


def _in_precision(single, products):
    """products(single) for a Python bool; for a traced one, `lax.cond` between both."""
    if isinstance(single, bool):
        return products(single)
    return jax.lax.cond(single, lambda: products(True), lambda: products(False))


def _class_pair_hessian(X, C, intercept, single=False):
    """sum_i (z_i z_i') kron C_i as a (q K, q K) matrix (z_i = [1, x_i] with an intercept),
    from the K (K + 1) / 2 distinct class pairs of the symmetric C_i (n, K, K)
    (`gram.pair_grams`: one pass over X), 2 n q^2 K (K + 1) / 2 flops in all."""
    q, K = X.shape[1] + intercept, C.shape[1]
    rows, cols = np.triu_indices(K)
    blocks = pair_grams(X, C[:, rows, cols], intercept, single)
    full = jnp.zeros((K, K, q, q), X.dtype).at[rows, cols].set(blocks).at[cols, rows].set(
        blocks)
    return full.transpose(2, 0, 3, 1).reshape(q * K, q * K)


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
