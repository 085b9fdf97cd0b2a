"""Gradients through lj.fit with respect to y at the edge of the response's support.

The optimum depends smoothly on y where y = 0 (and y = 1 for binomial proportions): the
score is linear in y. The references are one-sided finite differences (second order) into
the support, and central ones at interior entries.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax import families as F
from linjax import penalties as P

N, H = 24, 1e-4
_rng = np.random.default_rng(7)
X = _rng.normal(size=(N, 2))
ETA = 0.2 + 0.6 * X[:, 0] - 0.4 * X[:, 1]
TRIALS = _rng.integers(2, 6, size=N).astype(float)


def _counts():
    y = _rng.poisson(np.exp(ETA)).astype(float)
    y[:4] = 0.0
    return y


def _proportions():
    y = _rng.binomial(TRIALS.astype(int), 1 / (1 + np.exp(-ETA))) / TRIALS
    y[:3], y[3:6] = 0.0, 1.0
    return y


CASES = {
    "poisson": (F.Poisson(), _counts(), None),
    "negative_binomial": (F.NegativeBinomial(alpha=0.5), _counts(), None),
    "tweedie": (F.Tweedie(power=1.5), _counts(), None),
    "binomial": (F.Binomial(), _proportions(), TRIALS),
}


def _summary(result):
    return (jnp.sum(result.params["coef"] * jnp.array([1.0, -2.0]))
            + 0.5 * result.params["intercept"])


def _finite_difference(f, y, i, lower, upper):
    """d f / d y_i: central inside the support, second-order one-sided at its edge."""
    e = np.zeros_like(y)
    e[i] = H
    if y[i] == lower:
        return (-3 * f(y) + 4 * f(y + e) - f(y + 2 * e)) / (2 * H)
    if y[i] == upper:
        return (3 * f(y) - 4 * f(y - e) + f(y - 2 * e)) / (2 * H)
    return (f(y + e) - f(y - e)) / (2 * H)


def _check(family, y, weights, penalty=None, entries=None):
    def f(yy):
        res = lj.fit(X, jnp.asarray(yy), family=family, penalty=penalty, weights=weights)
        return float(_summary(res))

    grad = np.asarray(jax.grad(lambda yy: _summary(
        lj.fit(X, yy, family=family, penalty=penalty, weights=weights)))(jnp.asarray(y)))
    assert np.all(np.isfinite(grad)), grad
    upper = 1.0 if isinstance(family, F.Binomial) else np.inf
    entries = range(8) if entries is None else entries
    fd = np.array([_finite_difference(f, y, i, 0.0, upper) for i in entries])
    np.testing.assert_allclose(grad[list(entries)], fd, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_in_y_at_the_support_edge_matches_finite_differences(name):
    family, y, weights = CASES[name]
    _check(family, y, weights)


def test_gradient_in_y_at_zero_with_an_l1_penalty():
    family, y, _ = CASES["poisson"]
    coef = lj.fit(X, y, family=family, penalty=P.L1(alpha=0.02)).params["coef"]
    assert np.all(np.abs(np.asarray(coef)) > 1e-3), "keep both coefficients active"
    _check(family, y, None, penalty=P.L1(alpha=0.02), entries=(0, 1, 4))
