"""Multinomial (softmax) regression against statsmodels' MNLogit and scikit-learn.

linjax reports the sum-to-zero representative; statsmodels fixes class 0 as the
reference, so its coefficients are compared with coef[:, k] - coef[:, 0].
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import statsmodels.api as sm
from sklearn.linear_model import LogisticRegression

import linjax as lj
from linjax.solvers import Status

N, P, K = 120, 3, 3
SOLVERS = ["newton", "lbfgs", "proximal"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, P))
    B = rng.normal(size=(P, K))
    b = 0.3 * rng.normal(size=K)
    probs = scipy.special.softmax(X @ B + b, axis=1)
    y = np.array([rng.choice(K, p=pr) for pr in probs]).astype(float)
    w = rng.uniform(0.5, 2.0, size=N)
    return X, y, w


@pytest.fixture(scope="module")
def mnlogit(data):
    X, y, w = data
    res = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", tol=1e-14, maxiter=100,
                                                disp=0)
    return res


def test_family_unit_functions():
    fam = lj.families.Multinomial(n_classes=3)
    y = jnp.array([0.0, 2.0, 1.0])
    eta = jnp.array([[0.1, 0.2, 0.3], [1.0, 0.0, -1.0], [5.0, -3.0, 0.0]])
    mu = scipy.special.softmax(np.asarray(eta), axis=1)
    expected = -np.log(mu[np.arange(3), [0, 2, 1]])
    np.testing.assert_allclose(fam.nll(y, eta), expected, rtol=1e-12)
    np.testing.assert_allclose(fam.log_prob(y, jnp.asarray(mu)), -expected, rtol=1e-12)
    np.testing.assert_allclose(fam.unit_deviance(y, jnp.asarray(mu)), 2 * expected, rtol=1e-12)
    np.testing.assert_allclose(fam.link.inverse(eta), mu, rtol=1e-12)
    assert fam.support_error(np.array([0.0, 1.5])) is not None
    assert fam.support_error(np.array([0.0, 3.0])) is not None
    assert fam.support_error(np.array([0.0, 2.0])) is None


@pytest.mark.parametrize("solver", SOLVERS)
def test_unpenalized_matches_statsmodels_mnlogit(solver, data, mnlogit):
    X, y, _ = data
    result = lj.fit(X, y, lj.families.Multinomial(), solver=solver)
    assert int(result.status) == Status.CONVERGED, result.message
    coef, intercept = np.asarray(result.params["coef"]), np.asarray(result.params["intercept"])
    assert coef.shape == (P, K) and intercept.shape == (K,)
    full = np.vstack([intercept[None], coef])
    np.testing.assert_allclose(full[:, 1:] - full[:, :1], mnlogit.params, atol=1e-6)
    # Sum-to-zero convention and the objective = -llf / n.
    np.testing.assert_allclose(full.sum(axis=1), 0.0, atol=1e-12)
    assert float(result.objective) == pytest.approx(-mnlogit.llf / N, rel=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_l2_matches_sklearn_multinomial(solver, data):
    X, y, w = data
    C = 0.5
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10000).fit(X, y, sample_weight=w)
    penalty = lj.penalties.L2(alpha=1.0 / (C * w.sum()))
    result = lj.fit(X, y, lj.families.Multinomial(), penalty=penalty, solver=solver, weights=w)
    assert int(result.status) == Status.CONVERGED
    np.testing.assert_allclose(np.asarray(result.params["coef"]), ref.coef_.T, atol=1e-6)
    np.testing.assert_allclose(np.asarray(result.params["intercept"]), ref.intercept_,
                               atol=1e-6)


def test_l1_matches_sklearn_saga(data):
    X, y, _ = data
    C = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(C=C, l1_ratio=1.0, solver="saga", tol=1e-13,
                                 max_iter=200000).fit(X, y)
    penalty = lj.penalties.L1(alpha=1.0 / (C * N))
    family = lj.families.Multinomial()
    result = lj.fit(X, y, family, penalty=penalty, solver="proximal")
    assert int(result.status) == Status.CONVERGED
    coef = np.asarray(result.params["coef"])
    assert np.sum(ref.coef_ == 0) >= 1
    np.testing.assert_array_equal(coef == 0, ref.coef_.T == 0)
    np.testing.assert_allclose(coef, ref.coef_.T, atol=1e-6)
    ref_obj = lj.objective({"coef": jnp.asarray(ref.coef_.T), "intercept": ref.intercept_}, X,
                           y, lj.families.Multinomial(n_classes=K), penalty)
    assert float(result.objective) <= float(ref_obj) + 1e-12


def test_predict_gives_probabilities(data):
    X, y, _ = data
    result = lj.fit(X, y, lj.families.Multinomial(), solver="newton")
    probs = np.asarray(lj.predict(result.params, X, result.family))
    assert probs.shape == (N, K)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


def test_multinomial_under_vmap_needs_n_classes(data):
    X, y, _ = data
    family = lj.families.Multinomial(n_classes=K)
    Y = np.stack([y, np.roll(y, 1)])
    batched = jax.vmap(lambda yy: lj.fit(X, yy, family, solver="newton"))(Y)
    single = lj.fit(X, Y[1], family, solver="newton")
    np.testing.assert_allclose(batched.params["coef"][1], single.params["coef"], atol=1e-10)
    with pytest.raises(ValueError, match="n_classes"):
        jax.vmap(lambda yy: lj.fit(X, yy, lj.families.Multinomial(), solver="newton"))(Y)


def test_cd_refuses_multinomial(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="Multinomial"):
        lj.fit(X, y, lj.families.Multinomial(), solver="cd")
