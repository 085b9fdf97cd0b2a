"""Firth's bias-reduced binomial regression (Firth 1993; Heinze and Schemper 2002).

Maximizes the log-likelihood plus the log of Jeffreys' invariant prior,

    l*(beta) = l(beta) + 1/2 log det I(beta),   I(beta) = X' diag(w W) X,

with W = (d mu / d eta)^2 / V(mu) the Fisher weights (mu (1 - mu) for the logit
link) and X including the intercept column. The estimate is finite under
complete or quasi-complete separation and has O(1/n^2) bias, the remedy for
separation and rare events. linjax writes the penalized objective in its usual
scale (divided by sum(w), docs/objective.md):

    objective(params) = [sum_i w_i nll_i - 1/2 log det I(beta)] / sum_i w_i

and minimizes it with `Newton().run` (exact Newton on the autodiff gradient and
Hessian of that scalar: the log determinant is differentiated by JAX, nothing
is written by hand). Any binomial link works (Jeffreys' prior uses the expected
information); logistf and firthmodels implement the logit link.

Use it as an option of the binomial fit, `lj.fit(X, y, family=Binomial(),
penalty=lj.penalties.Firth())`, or call `fit_firth` directly. The result is a
`FitResult` whose `penalty` is `Firth()`; `lj.inference.summarize` gives Wald
statistics from the inverse Fisher information at the Firth estimate, as R's
logistf (profile-likelihood intervals are not computed).
"""


import jax.numpy as jnp

from linjax import _programs, inputs
from linjax.families import Binomial, get_family
from linjax.penalties import Firth
from linjax.result import FitResult
from linjax.solvers import Newton
from linjax.solvers.gram import augmented


def _vector(params, fit_intercept):
    if fit_intercept:
        return jnp.concatenate([jnp.reshape(params["intercept"], (1,)), params["coef"]])
    return params["coef"]


def firth_objective(params, X, y, weights, offset, family, fit_intercept=True):
    """[sum_i w_i nll_i - 1/2 log det(X' diag(w W) X)] / sum_i w_i (see the module doc)."""
    Xd = augmented(X, fit_intercept)
    eta = Xd @ _vector(params, fit_intercept)
    if offset is not None:
        eta = eta + offset
    nll = family.nll(y, eta)
    mu = family.link.inverse(eta)
    fisher_w = weights * family.link.inverse_deriv(eta) ** 2 / family.variance(mu)
    info = Xd.T @ (fisher_w[:, None] * Xd)
    chol = jnp.linalg.cholesky(info)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    return (jnp.sum(weights * nll) - 0.5 * logdet) / jnp.sum(weights)


def fit_firth(X, y, family=None, weights=None, offset=None, fit_intercept=True, init=None,
              solver=None):
    """Fit Firth's bias-reduced binomial GLM; returns a `FitResult` (penalty `Firth()`).

    X: (n, p); y: 0/1 outcomes or proportions with `weights` = trials; family: a
    Binomial (default logit link); solver: a `Newton` instance (default Newton()).
    Works under jit and vmap like `lj.fit`.
    """
    family = Binomial() if family is None else get_family(family)
    if not isinstance(family, Binomial):
        raise ValueError(f"family: Firth's penalty is implemented for the Binomial family, got "
                         f"{family!r}.")
    X, y, weights, offset = inputs.fit_inputs(X, y, family, weights, offset, Firth(),
                                                  fit_intercept)
    solver = Newton() if solver is None else solver
    if weights is None:
        weights = jnp.ones_like(y)
    return _fit_firth(X, y, weights, offset, init, family, solver, fit_intercept)


@_programs.jit(static_argnames=("fit_intercept",))
def _fit_firth(X, y, weights, offset, init, family, solver, fit_intercept):
    p = X.shape[1]
    coef0 = jnp.zeros((p,), X.dtype) if init is None else jnp.asarray(init["coef"], X.dtype)
    start = {"coef": coef0}
    if fit_intercept:
        b0 = jnp.zeros((), X.dtype) if init is None else jnp.asarray(
            init.get("intercept", 0.0), X.dtype)
        start["intercept"] = b0

    fun = _objective_with_intercept if fit_intercept else _objective_without_intercept
    sol = solver.run(fun, start, X, y, weights, offset, family)
    params = dict(sol.params)
    if not fit_intercept:
        params["intercept"] = jnp.zeros((), X.dtype)
    return FitResult(params, sol.value, sol.n_iter, sol.status, sol.converged, family, Firth(),
                     sol.state, fit_intercept, "newton")


def _objective_with_intercept(params, X, y, weights, offset, family):
    return firth_objective(params, X, y, weights, offset, family, True)


def _objective_without_intercept(params, X, y, weights, offset, family):
    full = {"coef": params["coef"], "intercept": jnp.zeros((), X.dtype)}
    return firth_objective(full, X, y, weights, offset, family, False)
