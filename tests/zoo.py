"""A shared problem zoo: seeded data sets per family, few shapes so JAX compiles little.

Every generator returns numpy arrays (X, y, weights, offset) with n = 120 rows
and p = 3 features, so tests across modules reuse compiled functions.
"""

import numpy as np

N, P = 120, 3
TRUE_COEF = np.array([0.4, -0.3, 0.2])


def design(seed=0, n=N, p=P):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, p))


def problem(family, seed=0, n=N, p=P):
    """(X, y, weights, offset) for a family name, from a known GLM."""
    rng = np.random.default_rng(seed + 100)
    X = design(seed, n, p)
    weights = rng.uniform(0.5, 2.0, size=n)
    offset = rng.uniform(-0.2, 0.2, size=n)
    eta = 0.3 + X @ TRUE_COEF[:p] + offset
    if family == "gaussian":
        y = eta + rng.normal(scale=0.5, size=n)
    elif family == "binomial":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    elif family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif family == "gamma":
        mu = np.exp(eta)
        y = rng.gamma(shape=2.0, scale=mu / 2.0)
    elif family == "gamma_inverse":
        mu = 1.0 / (2.0 + 0.5 * np.tanh(eta))
        y = rng.gamma(shape=2.0, scale=mu / 2.0)
    elif family == "inverse_gaussian_canonical":
        mu = 1.0 / np.sqrt(2.0 + 0.5 * np.tanh(eta))
        y = rng.wald(mu, 4.0)
    elif family == "inverse_gaussian":
        mu = np.exp(0.5 * eta)
        y = rng.wald(mu, 4.0)
    elif family == "negative_binomial":
        mu = np.exp(eta)
        y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)
    elif family == "tweedie":
        mu = np.exp(eta)
        counts = rng.poisson(mu ** 0.5 / 0.5)
        y = np.array([rng.gamma(2.0, size=c).sum() * mu[i] ** 0.5 / 4.0 for i, c in
                      enumerate(counts)])
    else:
        raise ValueError(family)
    return X, y, weights, offset


def draw_response(family, eta, rng):
    """A response drawn from a linear predictor of any shape: Poisson counts, Bernoulli
    0/1 ("binomial"), else Gaussian with unit variance; float."""
    if family == "poisson":
        y = rng.poisson(np.exp(eta))
    elif family == "binomial":
        y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    else:
        y = eta + rng.normal(size=np.shape(eta))
    return np.asarray(y, dtype=float)
