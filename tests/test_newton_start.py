"""lj.fit's Newton computes R's start (its first IRLS step) in its own first pass, so the
compiled program forms its Hessians and solves them in one place."""

import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax.fit import fit_validated
from linjax.solvers import Newton

N, P = 240, 3


def _data(family, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, P))
    eta = X @ np.array([0.4, -0.3, 0.2]) + 0.3
    if family == "binomial":
        y = (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    weights = rng.uniform(0.5, 2.0, N)
    offset = rng.normal(0.0, 0.2, N)
    return X, y, weights, offset


def _r_start(X, y, weights, offset, family):
    """R's first IRLS iteration from glm.fit's mustart, by numpy weighted least squares:
    the coefficients of z0 = link(mu0) - offset on [1, X] with weights w mu'(eta0)^2 / V(mu0);
    for the Poisson (log link) the intercept then moves to its optimum given the slopes."""
    if family == "binomial":
        mu0 = (y + 0.5) / 2
        eta0 = np.log(mu0 / (1 - mu0))
        fisher = mu0 * (1 - mu0)
    else:
        mu0 = y + 0.1
        eta0 = np.log(mu0)
        fisher = mu0
    Z = np.column_stack([np.ones(len(y)), X])
    root = np.sqrt(weights * fisher)
    beta = np.linalg.lstsq(Z * root[:, None], (eta0 - offset) * root, rcond=None)[0]
    if family == "poisson":
        beta[0] += np.log(np.sum(weights * y) / np.sum(weights * np.exp(Z @ beta + offset)))
    return beta


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_the_start_is_r_first_irls_step(family):
    X, y, weights, offset = _data(family)
    start = fit_validated(*map(jnp.asarray, (X, y, weights, offset)), None,
                          lj.families.get_family(family), lj.penalties.NoPenalty(),
                          Newton(max_iter=0), True, start_in_loop=True)  # lj.fit: max_iter >= 1
    expected = _r_start(X, y, weights, offset, family)
    got = np.concatenate([[float(start.intercept)], np.asarray(start.coef)])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert int(start.n_iter) == 0


def test_max_iter_counts_the_steps_after_the_start():
    X, y, weights, offset = _data("poisson")
    one = lj.fit(X, y, family="poisson", weights=weights, offset=offset,
                 solver=Newton(max_iter=1))
    assert int(one.n_iter) == 1 and int(one.status) == lj.solvers.Status.MAX_ITER
    full = lj.fit(X, y, family="poisson", weights=weights, offset=offset)
    assert int(full.status) == 0 and 2 <= int(full.n_iter) <= 8


def test_the_fit_program_factors_one_hessian():
    """One Cholesky factorization in the compiled fit (the start's weighted least squares
    used to compile a second Gram, Cholesky and eigen fallback of its own)."""
    X, y, _, _ = _data("poisson")
    family, penalty = lj.families.Poisson(), lj.penalties.NoPenalty()
    text = fit_validated.lower(jnp.asarray(X), jnp.asarray(y), None, None, None, family,
                               penalty, Newton(), True, start_in_loop=True).compile().as_text()
    assert text.count("potrf") == 1
