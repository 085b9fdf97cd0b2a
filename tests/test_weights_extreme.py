"""Extreme sample weights: uniform weights of any size leave the fit unchanged, and weights
spanning more than the dtype resolves are reported (status and warning), never status 0."""

import numpy as np
import pytest
import statsmodels.api as sm

import linjax as lj
from linjax import families as F
from linjax.solvers import Status

RNG = np.random.default_rng(0)
X = RNG.normal(size=(50, 2))
Y_REAL = 1 + X @ [0.5, -0.3] + RNG.normal(size=50)
Y_COUNT = RNG.poisson(np.exp(0.5 + X[:, 0])).astype(float) * RNG.integers(0, 3, 50)
CASES = [(F.Gaussian(), Y_REAL, sm.families.Gaussian()),
         (F.Poisson(), Y_COUNT, sm.families.Poisson())]


@pytest.mark.parametrize("family, y, sm_family", CASES, ids=["gaussian", "poisson"])
@pytest.mark.parametrize("weight", [1e308, 1e-300])
def test_uniform_weights_do_not_change_the_fit(family, y, sm_family, weight):
    ref = sm.GLM(y, sm.add_constant(X), family=sm_family).fit(tol=1e-12).params
    r = lj.fit(X, y, family, weights=np.full(50, weight))
    assert int(r.status) == Status.CONVERGED
    np.testing.assert_allclose(np.r_[float(r.intercept), np.asarray(r.coef)], ref, rtol=1e-7)


def test_uniform_huge_weights_estimated_negative_binomial():
    plain = lj.fit(X, Y_COUNT, F.NegativeBinomial(alpha=None))
    huge = lj.fit(X, Y_COUNT, F.NegativeBinomial(alpha=None), weights=np.full(50, 1e308))
    assert int(huge.status) == Status.CONVERGED
    np.testing.assert_allclose(np.asarray(huge.coef), np.asarray(plain.coef), rtol=1e-10)
    np.testing.assert_allclose(float(huge.family.alpha), float(plain.family.alpha), rtol=1e-10)


@pytest.mark.parametrize("solver", ["auto", "newton", "lbfgs"])
def test_weights_beyond_resolution_are_not_converged(solver):
    # one weight 1e60: the exact fit passes through that row and is O(1) (constrained least
    # squares); float64 cannot see the other rows beside it, so no solver may claim status 0
    w = np.ones(50)
    w[0] = 1e60
    with pytest.warns(RuntimeWarning, match=r"weights: the largest weight is 1e\+60 times"):
        r = lj.fit(X, Y_REAL, weights=w, solver=solver)
    assert int(r.status) != Status.CONVERGED and not bool(r.converged)
    # a range the dtype resolves is fitted normally (statsmodels' WLS as the reference)
    w[0] = 1e6
    ref = sm.WLS(Y_REAL, sm.add_constant(X), weights=w).fit().params
    r = lj.fit(X, Y_REAL, weights=w, solver=solver)
    assert int(r.status) == Status.CONVERGED
    np.testing.assert_allclose(np.r_[float(r.intercept), np.asarray(r.coef)], ref, rtol=1e-6)
