"""Numerical extremes: no NaN anywhere, and a warning or a reported status where the answer
is not an ordinary finite optimum. References: closed forms, numpy, statsmodels."""

import warnings

import jax
import numpy as np
import pytest

import linjax as lj
from linjax import families as F
from linjax import links as L
from linjax.diagnostics import SeparationWarning
from linjax.solvers import Status

RNG = np.random.default_rng(7)
N = 60
X = RNG.normal(size=(N, 2))
ETA = np.array([-1e3, -500.0, -50.0, -1.0, 0.0, 1.0, 50.0, 500.0, 1e3])
#: links whose domain is eta > 0 (mu = 1/eta, 1/sqrt(eta), eta^2 on the positive branch)
POSITIVE = np.array([1e-3, 1e-1, 1.0, 50.0, 500.0, 1e3])

LINKS = [(L.Identity(), ETA), (L.Log(), ETA), (L.Logit(), ETA), (L.Probit(), ETA),
         (L.CLogLog(), ETA), (L.LogLog(), ETA), (L.Cauchit(), ETA), (L.Inverse(), POSITIVE),
         (L.InverseSquared(), POSITIVE), (L.Sqrt(), POSITIVE), (L.Power(0.5), POSITIVE)]


@pytest.mark.parametrize("link,eta", LINKS, ids=[type(k).__name__ for k, _ in LINKS])
def test_links_finite_at_extreme_eta(link, eta):
    mu = np.asarray(link.inverse(eta))
    dmu = np.asarray(link.inverse_deriv(eta))
    assert np.all(np.isfinite(mu)) and np.all(np.isfinite(dmu))
    if isinstance(link, L.Logit | L.Probit | L.CLogLog | L.LogLog | L.Cauchit):
        assert np.all((mu >= 0) & (mu <= 1))
        # monotone in eta, saturating at the ends
        assert np.all(np.diff(mu) >= 0)
    if isinstance(link, L.Log):
        assert np.all(mu > 0)
    # the link maps mu back (where mu is not saturated to 0/1 or clipped)
    back = np.asarray(link.link(mu))
    ok = (np.abs(eta) <= 30) & np.isfinite(back)
    np.testing.assert_allclose(back[ok], eta[ok], rtol=1e-8, atol=1e-8)


FAMILIES = [F.Gaussian(), F.Binomial(), F.Binomial(link=L.Probit()), F.Binomial(link=L.CLogLog()),
            F.Poisson(), F.Gamma(link=L.Log()), F.NegativeBinomial(alpha=1.0),
            F.Tweedie(power=1.5), F.InverseGaussian(link=L.Log())]


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@pytest.mark.parametrize("y_kind", ["low", "high"])
def test_unit_loss_and_gradient_finite(family, y_kind):
    """nll and d nll / d eta are finite for |eta| <= 1e3 (inverse Gaussian: 300, beyond which
    its loss e^{2|eta|} exceeds the float64 range)."""
    eta = ETA if not isinstance(family, F.InverseGaussian) else np.clip(ETA, -300, 300)
    if isinstance(family, F.Binomial):
        y = np.full(eta.shape, 0.0 if y_kind == "low" else 1.0)
    elif isinstance(family, F.Gaussian):
        y = np.full(eta.shape, -3.0 if y_kind == "low" else 3.0)
    elif isinstance(family, F.Gamma | F.InverseGaussian):
        y = np.full(eta.shape, 1e-6 if y_kind == "low" else 1e6)
    else:
        y = np.full(eta.shape, 0.0 if y_kind == "low" else 1e9)
    nll = np.asarray(family.nll(y, eta))
    grad = np.asarray(jax.vmap(jax.grad(family.nll, argnums=1))(y, eta))
    assert not np.any(np.isnan(nll))
    # +inf only where the true loss (y e^{-eta} for the log-link Gamma at eta = -1e3, y = 1e6)
    # exceeds the float64 range; everywhere else loss and gradient are finite
    overflow = np.isposinf(nll)
    assert not np.any(overflow & (np.abs(eta) < 700))
    assert np.all(np.isfinite(nll[~overflow])) and np.all(np.isfinite(grad[~overflow]))


def _finite(result):
    leaves = jax.tree_util.tree_leaves(result.params) + [result.objective]
    return all(np.all(np.isfinite(np.asarray(a))) for a in leaves)


@pytest.mark.parametrize("family", [F.Poisson(), F.Tweedie(power=1.5),
                                    F.NegativeBinomial(alpha=1.0)], ids=repr)
def test_zero_counts(family):
    """y = 0 everywhere: the MLE intercept is -inf; linjax stops at a finite, very negative
    intercept (mean below 1e-20) with zero slopes. Mostly zeros: the ordinary finite MLE."""
    res = lj.fit(X, np.zeros(N), family=family)
    assert _finite(res)
    assert float(res.params["intercept"]) < -20 * np.log(10) / 2
    np.testing.assert_allclose(np.asarray(res.params["coef"]), 0.0, atol=1e-8)
    assert np.all(np.asarray(lj.predict(res.params, X, family)) < 1e-10)
    y = np.zeros(N)
    y[:3] = [1.0, 2.0, 1.0]
    res = lj.fit(X, y, family=family)
    assert _finite(res) and int(res.status) == Status.CONVERGED
    if isinstance(family, F.Poisson):
        import statsmodels.api as sm

        ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson()).fit()
        got = np.r_[float(res.params["intercept"]), np.asarray(res.params["coef"])]
        np.testing.assert_allclose(got, ref.params, rtol=1e-6, atol=1e-8)


def test_binomial_mean_near_zero_and_one():
    """Rare events (proportions 1e-9 with 1e9 trials) and near-certain ones: finite, and the
    intercept is the logit of the weighted mean (closed form, no features)."""
    for p in (1e-9, 1 - 1e-9):
        y = np.full(N, p)
        res = lj.fit(np.zeros((N, 0)), y, family=F.Binomial(), weights=np.full(N, 1e9))
        assert _finite(res)
        np.testing.assert_allclose(float(res.params["intercept"]), np.log(p / (1 - p)), rtol=1e-6)
    y = (RNG.random(N) < 0.02).astype(float)
    y[0] = 1.0
    res = lj.fit(X, y, family=F.Binomial())
    assert _finite(res)
    mu = np.asarray(lj.predict(res.params, X, F.Binomial()))
    assert np.all((mu > 0) & (mu < 1))


def test_counts_up_to_1e9():
    import statsmodels.api as sm

    y = RNG.poisson(1e9 * np.exp(0.1 * X[:, 0])).astype(float)
    res = lj.fit(X, y, family=F.Poisson())
    assert _finite(res) and int(res.status) == Status.CONVERGED
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson()).fit()
    got = np.r_[float(res.params["intercept"]), np.asarray(res.params["coef"])]
    np.testing.assert_allclose(got, ref.params, rtol=1e-7, atol=1e-9)
    s = lj.inference.summarize(res, X, y)
    assert np.all(np.isfinite(np.asarray(s.bse))) and np.isfinite(float(s.llf))


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("family", [F.Gaussian(), F.Poisson(), F.Binomial()], ids=repr)
def test_feature_scale_rescales_coefficients(scale, family):
    """Features times 1e-8 or 1e8: coefficients divide by the factor, predictions unchanged."""
    y = {"Gaussian": X @ [0.5, -0.3] + RNG.normal(size=N),
         "Poisson": RNG.poisson(np.exp(0.3 * X[:, 0])).astype(float),
         "Binomial": (RNG.random(N) < 1 / (1 + np.exp(-X[:, 1]))).astype(float)}[
        type(family).__name__]
    ref = lj.fit(X, y, family=family)
    res = lj.fit(X * scale, y, family=family)
    assert _finite(res)
    np.testing.assert_allclose(np.asarray(res.params["coef"]) * scale,
                               np.asarray(ref.params["coef"]), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(lj.predict(res.params, X * scale, family)),
                               np.asarray(lj.predict(ref.params, X, family)), rtol=1e-7)


@pytest.mark.parametrize("method", ["qr", "svd"])
def test_collinear_and_duplicated_columns_least_squares(method):
    """Unpenalized least squares on a rank-deficient design: the minimum-norm solution
    (numpy's pinv), status SINGULAR and the rank in `info.rank`."""
    Xd = np.column_stack([X, X[:, 0], X[:, 0] - 2 * X[:, 1]])   # rank 2 of 4
    y = X @ [1.0, 2.0] + RNG.normal(size=N)
    res = lj.fit(Xd, y, solver=lj.solvers.LeastSquares(method=method))
    assert int(res.status) == Status.SINGULAR
    assert "rank deficient" in res.message
    assert int(res.info.rank) == 2
    Xc = Xd - Xd.mean(0)
    ref = np.linalg.pinv(Xc) @ (y - y.mean())
    np.testing.assert_allclose(np.asarray(res.params["coef"]), ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(float(res.params["intercept"]), y.mean() - Xd.mean(0) @ ref,
                               rtol=1e-9)


def test_constant_and_duplicated_columns_glm():
    """A constant column beside the intercept, or a duplicated one: finite coefficients and
    the fitted means of the reduced (full-rank) model."""
    y = RNG.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    ref = lj.fit(X, y, family=F.Poisson())
    mu_ref = np.asarray(lj.predict(ref.params, X, F.Poisson()))
    for Xbad in (np.column_stack([X, np.ones(N)]), np.column_stack([X, X[:, 1]])):
        res = lj.fit(Xbad, y, family=F.Poisson())
        assert _finite(res)
        np.testing.assert_allclose(np.asarray(lj.predict(res.params, Xbad, F.Poisson())), mu_ref,
                                   rtol=1e-6)
    res = lj.fit(np.column_stack([X, np.ones(N)]), X @ [1.0, 1.0] + RNG.normal(size=N))
    assert int(res.status) == Status.SINGULAR and int(res.info.rank) == 2
    assert float(res.params["coef"][2]) == pytest.approx(0.0, abs=1e-12)   # min norm


@pytest.mark.parametrize("link", [L.Logit(), L.Probit(), L.CLogLog()], ids=repr)
def test_separation_warns_and_stays_finite(link):
    y = (X[:, 0] > 0).astype(float)
    with pytest.warns(SeparationWarning, match=r"completely separated.*Firth"):
        res = lj.fit(X, y, family=F.Binomial(link=link))
    assert _finite(res)
    # Firth's bias-reduced fit exists and is modest
    res = lj.fit(X, y, family=F.Binomial(), penalty=lj.penalties.Firth())
    assert _finite(res) and np.all(np.abs(np.asarray(res.params["coef"])) < 50)
    # no warning where the classes overlap
    y2 = y.copy()
    y2[np.argmax(X[:, 0])] = 0.0
    y2[np.argmin(X[:, 0])] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        lj.fit(X, y2, family=F.Binomial(link=link))


def test_separation_estimator_warns():
    from linjax.estimators import LogisticRegression

    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(SeparationWarning):
        est = LogisticRegression(C=np.inf).fit(X, y)
    assert np.all(np.isfinite(est.coef_))


def test_constant_column_estimators():
    from linjax.estimators import LinearRegression, PoissonRegressor

    Xc = np.column_stack([X, np.full(N, 3.0)])
    y = RNG.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    for est in (LinearRegression(), PoissonRegressor(alpha=1e-3)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(Xc, y)
        assert np.all(np.isfinite(est.coef_)) and np.isfinite(est.intercept_)
        assert np.all(np.isfinite(est.predict(Xc)))
