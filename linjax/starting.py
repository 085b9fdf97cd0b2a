"""Starting values for a GLM fit: R's first IRLS step, the multinomial start, and the
log-linear intercept shift (from arrays, or from sums for fits that never hold all rows)."""

import jax
import jax.numpy as jnp

from linjax.model import init_params
from linjax.solvers.gram import prefers_single, weighted_products
from linjax.solvers.newton import solve_psd
from linjax.solvers.problem import log_intercept_shift  # also Newton's in-loop start

#: Widest design object (coefficients) whose start is R's first IRLS step (as
#: `linjax.designs.fitting.NEWTON_MAX_WIDTH`); wider ones start at the intercept-only fit.
STRUCTURED_START_MAX_WIDTH = 4096


def initial_params(problem):
    """R's first IRLS iteration: weighted least squares of link(mu0) on X.

    mu0 is the family's starting mean from y; the weights are the Fisher weights
    at mu0. Where the family has `intercept_shift_start` (Poisson, log link), the
    intercept then moves by log(sum w y / sum w mu), its optimum given the slopes.
    Falls back to an intercept-only start when that start is not finite, and starts there
    for a design (sparse, categorical) wider than `STRUCTURED_START_MAX_WIDTH` coefficients,
    whose (p + 1)^2 Gram would not fit (a 100,000-column sparse X: 80 GB).
    """
    family, X, w = problem.family, problem.X, problem.weights
    dtype = X.dtype
    mu0 = family.starting_mu(problem.y)
    eta0 = family.link.link(mu0)
    offset = jnp.zeros_like(eta0) if problem.offset is None else problem.offset
    p = X.shape[1]
    mean_mu = jnp.sum(w * mu0)
    fallback = init_params(p, dtype)
    if problem.fit_intercept:
        fallback["intercept"] = intercept_only_start(family.link, mean_mu, jnp.sum(w * offset))
    if hasattr(X, "rmatvec") and p + 1 > STRUCTURED_START_MAX_WIDTH:
        return fallback
    z = eta0 - offset
    fisher_w = family.link.inverse_deriv(eta0) ** 2 / family.variance(mu0)
    sw = jnp.where(jnp.isfinite(fisher_w), w * fisher_w, 0.0)
    ridge = problem.penalty.smooth_hess_diag(jnp.zeros((p,), dtype))
    hess, rhs = weighted_products(X, sw, sw * z, problem.fit_intercept, prefers_single(X))
    k = int(problem.fit_intercept)
    hess = hess.at[k:, k:].add(jnp.diag(ridge))
    beta, _ = solve_psd(hess, rhs)
    start = problem.from_vector(beta, init_params(p, dtype))
    if family.intercept_shift_start and problem.fit_intercept:
        start["intercept"] = start["intercept"] + log_intercept_shift(
            jnp.sum(w * problem.y), problem.eta(start), w)
    ok = jnp.isfinite(problem.value(start))
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), start, fallback)


def intercept_only_start(link, mean_mu0, mean_offset):
    """The intercept-only start link(sum w mu0 / sum w) - sum w offset / sum w (mu0 the
    family's `starting_mu(y)`): where R's start has a non-finite objective, every start
    (`initial_params`, `scale/blocks.start_from_sums`, `SharedDesign.initial`) falls back
    to it."""
    return link.link(mean_mu0) - mean_offset


def intercept_shift_from_sums(total_y, total_mu):
    """`log_intercept_shift` from the sums: log(total_y / total_mu), 0 where either is 0."""
    ok = (total_y > 0) & (total_mu > 0)
    return jnp.where(ok, jnp.log(jnp.where(ok, total_y, 1.0))
                     - jnp.log(jnp.where(ok, total_mu, 1.0)), 0.0)


def multiclass_initial_params(problem):
    """Zero coefficients and centred log class frequencies (weighted) as intercepts."""
    K = problem.family.n_classes
    X = problem.X
    params = init_params(X.shape[1], X.dtype, n_outputs=K)
    if problem.fit_intercept:
        y = problem.y
        onehot = y if y.ndim == 2 else (y[:, None] == jnp.arange(K, dtype=y.dtype))
        freq = problem.weights @ onehot.astype(X.dtype)
        log_freq = jnp.log(freq + 1.0 / (K * X.shape[0]))
        params["intercept"] = log_freq - jnp.mean(log_freq)
    return params
