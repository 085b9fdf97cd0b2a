"""Coefficient bounds and the group lasso, against scipy and an independent numpy FISTA."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
from sklearn.linear_model import Lasso

import linjax as lj
from linjax.solvers import Status
from tests import zoo

BOUNDED = ["cd", "proximal", "gd", "projected_newton"]


@pytest.fixture(scope="module")
def gaussian():
    X, y, w, off = zoo.problem("gaussian")
    return X, y, w


@pytest.mark.parametrize("solver", BOUNDED)
def test_nonnegative_least_squares_matches_scipy_nnls(solver, gaussian):
    X, y, _ = gaussian
    ref, _ = scipy.optimize.nnls(X, y)
    assert np.sum(ref == 0) >= 1, "a bound should be active"
    result = lj.fit(X, y, solver=solver, fit_intercept=False, bounds=(0.0, None))
    assert int(result.status) == Status.CONVERGED
    coef = np.asarray(result.params["coef"])
    np.testing.assert_allclose(coef, ref, atol=1e-8)
    assert np.all(coef >= 0)
    np.testing.assert_array_equal(coef == 0, ref == 0)


def test_auto_with_bounds_is_coordinate_descent(gaussian):
    X, y, _ = gaussian
    result = lj.fit(X, y, fit_intercept=False, bounds=(0.0, None))
    assert result.solver == "cd"
    np.testing.assert_allclose(np.asarray(result.params["coef"]), scipy.optimize.nnls(X, y)[0],
                               atol=1e-8)


@pytest.mark.parametrize("solver", ["cd", "proximal"])
def test_positive_lasso_matches_sklearn(solver, gaussian):
    X, y, w = gaussian
    ref = Lasso(alpha=0.05, positive=True, tol=1e-14, max_iter=100000).fit(X, y,
                                                                            sample_weight=w)
    result = lj.fit(X, y, penalty=lj.penalties.L1(alpha=0.05), solver=solver, weights=w,
                    bounds=(0.0, np.inf))
    np.testing.assert_allclose(np.asarray(result.params["coef"]), ref.coef_, atol=1e-7)
    np.testing.assert_allclose(float(result.params["intercept"]), ref.intercept_, atol=1e-7)


def _logistic_objective(v, X, y, w):
    eta = v[0] + X @ v[1:]
    return np.sum(w * (np.logaddexp(0, eta) - y * eta)) / np.sum(w)


def _logistic_gradient(v, X, y, w):
    eta = v[0] + X @ v[1:]
    r = w * (scipy.special.expit(eta) - y) / np.sum(w)
    return np.r_[r.sum(), X.T @ r]


@pytest.mark.parametrize("solver", ["cd", "proximal", "projected_newton"])
def test_bounded_logistic_matches_scipy_lbfgsb(solver):
    X, y, w, _ = zoo.problem("binomial")
    lower = np.array([-np.inf, -0.1, 0.0])
    upper = np.array([0.2, np.inf, np.inf])
    ref = scipy.optimize.minimize(
        _logistic_objective, np.zeros(4), args=(X, y, w), jac=_logistic_gradient,
        method="L-BFGS-B", bounds=[(None, None)] + list(zip(lower, upper, strict=True)),
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000})
    result = lj.fit(X, y, lj.families.Binomial(), solver=solver, weights=w,
                    bounds=(lower, upper))
    assert int(result.status) == Status.CONVERGED
    got = np.r_[float(result.params["intercept"]), np.asarray(result.params["coef"])]
    assert np.sum((ref.x[1:] == lower) | (ref.x[1:] == upper)) >= 1, "a bound should be active"
    np.testing.assert_allclose(got, ref.x, atol=1e-6)
    assert float(result.objective) <= ref.fun + 1e-12


def test_bounds_are_validated(gaussian):
    X, y, _ = gaussian
    with pytest.raises(ValueError, match="lower bound exceeds"):
        lj.fit(X, y, solver="cd", bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        lj.fit(X, y, solver="cd", bounds=(np.zeros(2), None))
    with pytest.raises(ValueError, match="bounds: Newton"):
        lj.fit(X, np.abs(y), lj.families.Poisson(), solver="newton", bounds=(0.0, None))


# -- group lasso ----------------------------------------------------------------------------

GROUPS = (0, 0, 1, 1, 2, 2)


@pytest.fixture(scope="module")
def grouped():
    rng = np.random.default_rng(5)
    n = 120
    X = rng.normal(size=(n, 6))
    coef = np.array([0.8, -0.5, 0.0, 0.0, 0.3, 0.2])
    y_gauss = 0.2 + X @ coef + rng.normal(scale=0.5, size=n)
    y_binom = (rng.random(n) < scipy.special.expit(0.2 + X @ (2 * coef))).astype(float)
    return X, y_gauss, y_binom


def _numpy_group_fista(X, y, alpha, logistic, iters=20000):
    """Independent reference: FISTA with a fixed 1/L step, intercept unpenalized."""
    n, p = X.shape
    Z = np.column_stack([np.ones(n), X])
    L = np.linalg.eigvalsh(Z.T @ Z / n)[-1] * (0.25 if logistic else 1.0)
    groups = np.array(GROUPS)
    weights = {g: np.sqrt(np.sum(groups == g)) for g in np.unique(groups)}

    def grad(v):
        eta = Z @ v
        mu = scipy.special.expit(eta) if logistic else eta
        return Z.T @ (mu - y) / n

    def prox(v, s):
        out = v.copy()
        for g, wg in weights.items():
            idx = 1 + np.flatnonzero(groups == g)
            norm = np.linalg.norm(v[idx])
            out[idx] = 0.0 if norm <= s * alpha * wg else v[idx] * (1 - s * alpha * wg / norm)
        return out

    x = z = np.zeros(p + 1)
    t = 1.0
    for _ in range(iters):
        x_new = prox(z - grad(z) / L, 1 / L)
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return x


@pytest.mark.parametrize("solver,family", [("cd", "gaussian"), ("cd", "binomial"),
                                           ("proximal", "binomial")])
def test_group_lasso_matches_numpy_fista(solver, family, grouped):
    X, y_gauss, y_binom = grouped
    logistic = family == "binomial"
    y = y_binom if logistic else y_gauss
    alpha = 0.04 if logistic else 0.15
    ref = _numpy_group_fista(X, y, alpha, logistic)
    fam = lj.families.Binomial() if logistic else lj.families.Gaussian()
    penalty = lj.penalties.GroupLasso(alpha=alpha, groups=GROUPS)
    result = lj.fit(X, y, fam, penalty=penalty, solver=solver)
    assert int(result.status) == Status.CONVERGED
    coef = np.asarray(result.params["coef"])
    np.testing.assert_allclose(np.r_[float(result.params["intercept"]), coef], ref, atol=1e-6)
    # The whole group {2, 3} is exactly zero, the others are not.
    assert np.all(coef[2:4] == 0)
    assert np.all(coef[[0, 1, 4, 5]] != 0)


def test_group_lasso_penalty_value_and_prox():
    pen = lj.penalties.GroupLasso(alpha=0.5, groups=[0, 0, 1, -1])
    coef = jnp.array([3.0, 4.0, 0.1, 2.0])
    assert float(pen.value(coef)) == pytest.approx(0.5 * (np.sqrt(2) * 5.0 + 0.1))
    out = np.asarray(pen.prox(coef, 1.0))
    np.testing.assert_allclose(out[:2], np.array([3.0, 4.0]) * (1 - 0.5 * np.sqrt(2) / 5.0))
    assert out[2] == 0.0 and out[3] == 2.0  # small group zeroed; label -1 unpenalized


def test_group_lasso_refused_by_smooth_solvers(grouped):
    X, y, _ = grouped
    with pytest.raises(ValueError, match="solver='cd'"):
        lj.fit(X, y, penalty=lj.penalties.GroupLasso(alpha=0.1, groups=GROUPS),
               solver="lbfgs")
