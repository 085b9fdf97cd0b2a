"""Negative binomial (NB2) regression with alpha estimated by maximum likelihood.

`lj.fit(X, y, family=NegativeBinomial(alpha=None))` (or `fit_nb` directly) follows
R's `MASS::glm.nb`: fit the coefficients with alpha ~ 0 (the Poisson fit), estimate
alpha by maximum likelihood given the fitted means (starting from the moment
estimate), refit the coefficients at that alpha, and alternate until log(alpha) and
the log-likelihood stop changing (`tol`). The coefficient fit is the library's GLM
solver (Newton by default) on `NegativeBinomial(alpha)`; the alpha step is Newton's
method in log(alpha) on autodiff derivatives of the log-likelihood. The whole
alternation is one `lax.while_loop`, so `fit_nb` runs under jit and vmap, and the
reported coefficients are exactly optimal for the reported alpha (which is within
`tol` in log of its maximum-likelihood value given them).

`NegativeBinomial(alpha=None, method="cox-reid")` (log link, no penalty) instead takes
the alpha that maximizes the Cox-Reid adjusted profile likelihood (edgeR's, DESeq2's:
l(alpha, beta_hat(alpha)) - 1/2 log det X'WX; `linjax.dispersion`, docs/dispersion.md),
then fits the coefficients at that alpha with the same solver; `info.n_outer` counts its
Newton iterations and `alpha_se` is the same joint-information formula as for "ml".
`prior=(mean, var)` on the family adds a normal prior on log(alpha) to either criterion
(the maximum a posteriori estimate, DESeq2's shrinkage), through the same estimator.

Parametrization: V(mu) = mu + alpha mu^2, alpha = 1 / theta (R's theta).

The result is a `FitResult` whose `family` is `NegativeBinomial(alpha=alpha_hat)`
(so `objective`, `predict` and `summarize` work unchanged) and whose `info` is an
`NBInfo` with alpha, its standard error, theta and its standard error. The
standard error of alpha comes from the inverse of the joint observed information
of (coefficients, alpha) at the MLE (autodiff Hessian of the log-likelihood), as
statsmodels' discrete `NegativeBinomial` and Stata's `nbreg`; MASS's `SE(theta)`
conditions on the fitted means and is slightly smaller. The coefficient
standard errors in `summarize` treat alpha as known, as `summary(glm.nb(...))`,
and AIC/BIC count alpha as a parameter (as MASS).
"""


import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from linjax import _programs, inputs, validation
from linjax._pytree import pytree_dataclass, replace
from linjax.dispersion import DEFAULT_BOUNDS, METHODS, check_prior, nb_dispersion
from linjax.estimability import no_finite_estimate
from linjax.families import NegativeBinomial, get_family
from linjax.links import Log
from linjax.model import linear_predictor
from linjax.penalties import NoPenalty
from linjax.result import FitResult
from linjax.sample_weights import normalized_weights
from linjax.solver_choice import choose_solver
from linjax.solvers.problem import GLMProblem
from linjax.solvers.status import Status, code
from linjax.starting import initial_params

#: log(alpha) is kept in this range (alpha -> 0 is the Poisson limit).
LOG_ALPHA_RANGE = (-23.0, 10.0)


@pytree_dataclass
class NBInfo:
    """alpha, alpha_se, theta = 1 / alpha, theta_se; n_outer alternations; loglik at the MLE;
    inner: the coefficient solver's final state."""

    alpha: jax.Array
    alpha_se: jax.Array
    theta: jax.Array
    theta_se: jax.Array
    n_outer: jax.Array
    loglik: jax.Array
    inner: object = None


def nb_loglik(y, mu, alpha, weights):
    """sum_i w_i log p(y_i | mu_i, alpha), the NB2 log-likelihood (constants included)."""
    return jnp.sum(weights * NegativeBinomial(alpha=alpha).log_prob(y, mu))


def _alpha_mle(y, mu, weights, log_alpha, n_iter=30):
    """argmax over log(alpha) of the NB2 log-likelihood given the means: Newton's method
    on autodiff derivatives, steps limited to 1 in log(alpha), from a warm start."""
    lo, hi = LOG_ALPHA_RANGE

    def f(la):
        return -nb_loglik(y, mu, jnp.exp(la), weights)

    g, h = jax.grad(f), jax.grad(jax.grad(f))

    def step(_, la):
        gl, hl = g(la), h(la)
        d = jnp.where(hl > 0, -gl / jnp.where(hl > 0, hl, 1.0), -jnp.sign(gl))
        return jnp.clip(la + jnp.clip(d, -1.0, 1.0), lo, hi)

    return jax.lax.fori_loop(0, n_iter, step, log_alpha)


def fit_nb(X, y, family=None, penalty=None, weights=None, offset=None, fit_intercept=True,
           init=None, solver="auto", tol=1e-10, max_outer=50):
    """Negative binomial GLM with alpha estimated (MASS::glm.nb); returns a `FitResult`.

    family: a `NegativeBinomial` whose `alpha` is ignored (its link is used; default
    log); penalty: a smooth penalty on the coefficients (default none); solver: the
    coefficient solver ("auto": Newton); tol: on the change of log(alpha) and the
    relative change of the log-likelihood between alternations.
    """
    family = NegativeBinomial(alpha=None) if family is None else get_family(family)
    if not isinstance(family, NegativeBinomial):
        raise ValueError(f"family: fit_nb estimates the negative binomial alpha; got "
                         f"{family!r}.")
    family = replace(family, alpha=1.0)
    method = getattr(family, "method", "ml")
    if method not in METHODS:
        raise ValueError(f"family: NegativeBinomial(method={method!r}); expected one of "
                         f"{METHODS}.")
    penalty = NoPenalty() if penalty is None else penalty
    validation.check_penalty(penalty)
    if not getattr(penalty, "smooth", True):
        raise ValueError("penalty: estimating alpha supports smooth penalties (none, L2); "
                         "fix alpha with NegativeBinomial(alpha=...) for an L1 fit.")
    prior = family.prior
    if prior is not None and not (isinstance(prior, (tuple, list)) and len(prior) == 2):
        raise ValueError(f"family: NegativeBinomial(prior=...) is (mean, var) of a normal prior "
                         f"on log(alpha); got {prior!r}.")
    # the Cox-Reid criterion and the prior are maximized by linjax.dispersion (log link,
    # unpenalized); plain maximum likelihood alternates with the library's own solvers
    what = "the Cox-Reid estimate of alpha" if method == "cox-reid" else "a prior on alpha"
    if method == "cox-reid" or prior is not None:
        if not isinstance(penalty, NoPenalty):
            raise ValueError(f"penalty: {what} is for unpenalized fits; use method='ml' "
                             "without a prior with a penalty, or fix alpha.")
        if not isinstance(family.link, Log):
            raise ValueError(f"family: {what} uses the log link; got {family.link!r}. Use "
                             "method='ml' without a prior for other links.")
    X, y, weights, offset = inputs.fit_inputs(X, y, family, weights, offset, penalty,
                                                  fit_intercept)
    solver = choose_solver(solver, family, penalty, X.shape)
    if weights is None:
        weights = jnp.ones_like(y)
    if method == "cox-reid" or prior is not None:
        use_prior = prior is not None
        prior_mean, prior_var = (check_prior(*prior, 1, X.dtype) if use_prior else
                                 (jnp.zeros((1,), X.dtype), jnp.ones((), X.dtype)))
        return _fit_nb_estimated(X, y, weights, offset, init, family, penalty, solver,
                                 prior_mean, prior_var,
                                 jnp.asarray(1e-8 if X.dtype == jnp.float64 else 1e-4,
                                             X.dtype), fit_intercept, 100, method=method,
                                 use_prior=use_prior)
    return _fit_nb(X, y, weights, offset, init, family, penalty, solver,
                   jnp.asarray(tol, X.dtype), fit_intercept, max_outer)


@_programs.jit(static_argnames=("fit_intercept", "max_outer"))
def _fit_nb(X, y, weights, offset, init, family, penalty, solver, tol, fit_intercept,
            max_outer):
    dtype = X.dtype
    wn = normalized_weights(weights)
    # the stopping test's log-likelihood: the weights rescaled to sum to the number of rows
    # that count (the same for unit weights; finite for weights near the overflow threshold)
    weights_for_ll = wn * jnp.sum(weights > 0).astype(dtype)
    lo, hi = LOG_ALPHA_RANGE

    def problem_for(fam):
        return GLMProblem(X, y, wn, offset, fam, penalty, fit_intercept)

    # 1. Start from (almost) Poisson: alpha = exp(lo), the same family type, so the loop
    #    below compiles one coefficient solver. Then alternate, as glm.nb.
    def nb_problem(log_alpha):
        return problem_for(replace(family, alpha=jnp.exp(log_alpha)))

    log_alpha0 = jnp.asarray(lo, dtype)
    if init is None:
        params = initial_params(nb_problem(log_alpha0))
    else:
        params = {"coef": jnp.asarray(init["coef"], dtype),
                  "intercept": jnp.asarray(init.get("intercept", 0.0), dtype)}

    def mean(params):
        return family.link.inverse(linear_predictor(params, X, offset))

    def cond(carry):
        _, _, _, i, done, _ = carry
        return (i < max_outer) & ~done

    def body(carry):
        params, log_alpha, ll_old, i, _, _ = carry
        sol = solver.minimise(nb_problem(log_alpha), params)
        mu = mean(sol.params)
        # first pass: the moment estimate (glm.nb's theta start) from the Poisson means
        moment = jnp.sum(wn * (y / mu - 1.0) ** 2)
        start = jnp.where(i == 0, jnp.log(jnp.maximum(moment, jnp.exp(lo))), log_alpha)
        new_log_alpha = _alpha_mle(y, mu, wn, jnp.clip(start, lo, hi))
        ll = nb_loglik(y, mu, jnp.exp(new_log_alpha), weights_for_ll)
        done = (i > 0) & (jnp.abs(new_log_alpha - log_alpha) < tol) & (
            jnp.abs(ll - ll_old) <= tol * jnp.maximum(jnp.abs(ll), 1.0))
        # when done, keep the alpha the coefficients were fitted at (within tol of the MLE)
        out_log_alpha = jnp.where(done, log_alpha, new_log_alpha)
        return sol.params, out_log_alpha, ll, i + 1, done, sol

    first = jax.eval_shape(lambda: solver.minimise(nb_problem(log_alpha0), params))
    empty = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), first)
    carry = (params, log_alpha0, jnp.asarray(-jnp.inf, dtype), jnp.asarray(0, jnp.int32),
             jnp.asarray(False), empty)
    params, log_alpha, _, n_outer, done, sol = jax.lax.while_loop(cond, body, carry)
    alpha = jnp.exp(log_alpha)
    fitted_family = replace(family, alpha=alpha)

    # 2. Standard error of alpha: joint observed information of (coefficients, alpha).
    alpha_se = _alpha_se(X, y, weights, offset, family, penalty, sol.params, alpha,
                         fit_intercept)
    loglik = nb_loglik(y, mean(sol.params), alpha, weights)
    info = NBInfo(alpha, alpha_se, 1.0 / alpha, alpha_se / alpha**2, n_outer, loglik,
                  sol.state)
    status = jnp.where(done, sol.status, code(Status.MAX_ITER))
    status = jnp.where(no_finite_estimate(family, y, weights, fit_intercept),
                       code(Status.NO_FINITE_ESTIMATE), status)
    return FitResult(sol.params, sol.value, sol.n_iter, status, status == 0, fitted_family,
                     penalty, info, fit_intercept, getattr(solver, "name", ""))


def _alpha_se(X, y, weights, offset, family, penalty, params, alpha, fit_intercept):
    """sqrt of the alpha entry of the inverse joint observed information of (coefficients,
    alpha) (autodiff Hessian of the penalized negative log-likelihood)."""
    free = params if fit_intercept else {"coef": params["coef"]}
    flat, unravel = ravel_pytree(free)

    def neg_joint(v):
        p = unravel(v[:-1])
        if not fit_intercept:
            p = {"coef": p["coef"], "intercept": params["intercept"]}
        mu = family.link.inverse(linear_predictor(p, X, offset))
        return (-nb_loglik(y, mu, v[-1], weights)
                + jnp.sum(weights) * penalty.value(p["coef"]))

    H = jax.hessian(neg_joint)(jnp.concatenate([flat, alpha[None]]))
    last = jnp.zeros((H.shape[0],), H.dtype).at[-1].set(1.0)
    return jnp.sqrt(jnp.linalg.solve(H, last)[-1])  # (H^-1)[-1, -1], without the inverse


@_programs.jit(static_argnames=("fit_intercept", "max_iter", "method", "use_prior"))
def _fit_nb_estimated(X, y, weights, offset, init, family, penalty, solver, prior_mean,
                      prior_var, tol, fit_intercept, max_iter, *, method, use_prior):
    """alpha maximizing the criterion of `linjax.dispersion` (the Cox-Reid adjusted profile
    likelihood or the likelihood, plus the log prior density of log(alpha) with a prior),
    then the coefficients at that alpha by the library's solver (warm from the estimate's)."""
    dtype = X.dtype
    n = X.shape[0]
    design = jnp.concatenate([jnp.ones((n, 1), dtype), X], axis=1) if fit_intercept else X
    off = jnp.zeros((n,), dtype) if offset is None else offset
    est = nb_dispersion(design, y[None], off[None], weights[None], prior_mean, prior_var,
                        jnp.log(jnp.asarray(DEFAULT_BOUNDS, dtype)), tol, method=method,
                        use_prior=use_prior, max_iter=max_iter)
    alpha = est.alpha[0]
    fitted_family = replace(family, alpha=alpha)
    coef = est.coef[0]
    if init is None:
        params = ({"coef": coef[1:], "intercept": coef[0]} if fit_intercept else
                  {"coef": coef, "intercept": jnp.zeros((), dtype)})
    else:
        params = {"coef": jnp.asarray(init["coef"], dtype),
                  "intercept": jnp.asarray(init.get("intercept", 0.0), dtype)}
    problem = GLMProblem(X, y, normalized_weights(weights), offset, fitted_family, penalty,
                         fit_intercept)
    sol = solver.minimise(problem, params)
    alpha_se = _alpha_se(X, y, weights, offset, family, penalty, sol.params, alpha,
                         fit_intercept)
    mu = family.link.inverse(linear_predictor(sol.params, X, offset))
    info = NBInfo(alpha, alpha_se, 1.0 / alpha, alpha_se / alpha**2, est.iterations[0],
                  nb_loglik(y, mu, alpha, weights), sol.state)
    # the estimate's own status first (bound, no finite estimate), then the solver's
    status = jnp.where(est.status[0] != 0, est.status[0], sol.status)
    status = jnp.where(no_finite_estimate(family, y, weights, fit_intercept),
                       code(Status.NO_FINITE_ESTIMATE), status)
    return FitResult(sol.params, sol.value, sol.n_iter, status, status == 0, fitted_family,
                     penalty, info, fit_intercept, getattr(solver, "name", ""))
