"""Families against scipy.stats densities, statsmodels deviances/variances, textbook derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from linjax import families as F
from linjax import links as L
from linjax.families import eta_derivatives

RTOL = 1e-10
COUNTS = np.array([0.0, 0.0, 1.0, 2.0, 5.0, 17.0, 140.0, 3000.0])
COUNT_MU = np.array([1e-6, 2.5, 0.3, 2.0, 7.5, 16.0, 150.0, 2900.0])
POS = np.array([1e-4, 0.05, 0.7, 1.0, 2.5, 30.0, 1e3, 4e4])
POS_MU = np.array([2e-4, 0.1, 0.5, 1.0, 3.0, 25.0, 1.2e3, 3.9e4])
SCALES = [0.3, 1.0, 2.5]


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_log_prob(scale):
    y = np.array([-1e3, -2.0, 0.0, 0.5, 7.0, 1e4])
    mu = np.array([-999.0, 1.0, 0.0, -0.5, 7.5, 1.1e4])
    np.testing.assert_allclose(F.Gaussian().log_prob(y, mu, scale),
                               stats.norm.logpdf(y, mu, np.sqrt(scale)), rtol=RTOL)


def test_binomial_log_prob_bernoulli_and_trials():
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    mu = np.array([1e-9, 1e-9, 0.3, 0.999999, 0.5])
    np.testing.assert_allclose(F.Binomial().log_prob(y, mu), stats.bernoulli.logpmf(y, mu),
                               rtol=RTOL)
    trials = np.array([1.0, 10.0, 7.0, 200.0, 3.0])
    k = np.array([0.0, 10.0, 3.0, 17.0, 0.0])
    mu = np.array([0.2, 0.95, 0.4, 0.1, 1e-7])
    np.testing.assert_allclose(F.Binomial().log_prob(k / trials, mu, trials=trials),
                               stats.binom.logpmf(k, trials, mu), rtol=RTOL)


def test_poisson_log_prob():
    np.testing.assert_allclose(F.Poisson().log_prob(COUNTS, COUNT_MU),
                               stats.poisson.logpmf(COUNTS, COUNT_MU), rtol=RTOL)


@pytest.mark.parametrize("scale", SCALES)
def test_gamma_log_prob(scale):
    ref = stats.gamma.logpdf(POS, a=1 / scale, scale=POS_MU * scale)
    np.testing.assert_allclose(F.Gamma().log_prob(POS, POS_MU, scale), ref, rtol=RTOL)


@pytest.mark.parametrize("scale", SCALES)
def test_inverse_gaussian_log_prob(scale):
    ref = stats.invgauss.logpdf(POS, mu=POS_MU * scale, scale=1 / scale)
    np.testing.assert_allclose(F.InverseGaussian().log_prob(POS, POS_MU, scale), ref, rtol=RTOL)


@pytest.mark.parametrize("alpha", [0.05, 1.0, 4.0])
def test_negative_binomial_log_prob(alpha):
    ref = stats.nbinom.logpmf(COUNTS, 1 / alpha, 1 / (1 + alpha * COUNT_MU))
    # atol: scipy's own value at mu = 1e-6 carries an absolute error of a few 1e-15.
    np.testing.assert_allclose(F.NegativeBinomial(alpha=alpha).log_prob(COUNTS, COUNT_MU), ref,
                               rtol=RTOL, atol=1e-14)


TWEEDIE_Y = np.array([0.0, 0.01, 0.4, 1.0, 3.0, 12.0, 60.0])
TWEEDIE_MU = np.array([0.5, 0.2, 0.5, 1.2, 2.0, 10.0, 55.0])


@pytest.mark.parametrize("power", [1.2, 1.5, 1.8])
@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_tweedie_log_prob_series_matches_statsmodels(power, scale):
    # statsmodels truncates its series: it is accurate to about 1e-7 relative (see below).
    ref = sm.families.Tweedie(var_power=power).loglike_obs(TWEEDIE_Y, TWEEDIE_MU, scale=scale)
    np.testing.assert_allclose(F.Tweedie(power=power).log_prob(TWEEDIE_Y, TWEEDIE_MU, scale), ref,
                               rtol=1e-6)


def _tweedie_mpmath(y, mu, phi, p):
    """Dunn & Smyth's series summed to convergence at 40 digits."""
    import mpmath as mp

    mp.mp.dps = 40
    y, mu, phi, p = (mp.mpf(str(v)) for v in (y, mu, phi, p))
    if y == 0:
        return float(-mu ** (2 - p) / (phi * (2 - p)))
    a = (2 - p) / (1 - p)
    z = y ** (-a) * (p - 1) ** a / (phi ** (1 - a) * (2 - p))
    w = mp.nsum(lambda j: z**j / (mp.factorial(j) * mp.gamma(-j * a)), [1, mp.inf])
    return float(mp.log(w) - mp.log(y) + (y * mu ** (1 - p) / (1 - p) - mu ** (2 - p) / (2 - p))
                 / phi)


@pytest.mark.parametrize("power, scale", [(1.2, 2.0), (1.5, 1.0), (1.8, 0.5)])
def test_tweedie_log_prob_series_matches_mpmath(power, scale):
    pairs = zip(TWEEDIE_Y, TWEEDIE_MU, strict=True)
    ref = [_tweedie_mpmath(y, mu, scale, power) for y, mu in pairs]
    np.testing.assert_allclose(F.Tweedie(power=power).log_prob(TWEEDIE_Y, TWEEDIE_MU, scale), ref,
                               rtol=1e-10)


def test_tweedie_special_powers_are_the_named_families():
    np.testing.assert_allclose(F.Tweedie(power=0.0).log_prob(POS, POS_MU, 2.0),
                               stats.norm.logpdf(POS, POS_MU, np.sqrt(2.0)), rtol=RTOL)
    np.testing.assert_allclose(F.Tweedie(power=1.0).log_prob(COUNTS, COUNT_MU),
                               stats.poisson.logpmf(COUNTS, COUNT_MU), rtol=RTOL)
    np.testing.assert_allclose(F.Tweedie(power=2.0).log_prob(POS, POS_MU, 0.5),
                               stats.gamma.logpdf(POS, a=2.0, scale=POS_MU * 0.5), rtol=RTOL)
    np.testing.assert_allclose(F.Tweedie(power=3.0).log_prob(POS, POS_MU, 0.5),
                               stats.invgauss.logpdf(POS, mu=POS_MU * 0.5, scale=2.0), rtol=RTOL)
    with pytest.raises(NotImplementedError, match="power"):
        F.Tweedie(power=2.5).log_prob(POS, POS_MU)


# (linjax family, statsmodels family, y, mu)
DEVIANCE_CASES = [
    (F.Gaussian(), sm.families.Gaussian(), POS - 3.0, POS_MU),
    (F.Binomial(), sm.families.Binomial(), np.array([0.0, 1.0, 0.3, 1.0, 0.0]),
     np.array([1e-8, 0.2, 0.31, 0.99, 0.7])),
    (F.Poisson(), sm.families.Poisson(), COUNTS, COUNT_MU),
    (F.Gamma(), sm.families.Gamma(), POS, POS_MU),
    (F.InverseGaussian(), sm.families.InverseGaussian(), POS, POS_MU),
    (F.NegativeBinomial(alpha=0.7), sm.families.NegativeBinomial(alpha=0.7), COUNTS, COUNT_MU),
    (F.Tweedie(power=1.5), sm.families.Tweedie(var_power=1.5), COUNTS, COUNT_MU),
    (F.Tweedie(power=2.4), sm.families.Tweedie(var_power=2.4), POS, POS_MU),
]
DEV_IDS = ["gaussian", "binomial", "poisson", "gamma", "invgauss", "negbin", "tweedie1.5",
           "tweedie2.4"]


@pytest.mark.parametrize("family, ref, y, mu", DEVIANCE_CASES, ids=DEV_IDS)
def test_unit_deviance_and_variance_match_statsmodels(family, ref, y, mu):
    np.testing.assert_allclose(family.unit_deviance(y, mu), ref._resid_dev(y, mu), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(family.variance(mu), ref.variance(mu), rtol=1e-12)


@pytest.mark.parametrize("family, ref, y, mu", DEVIANCE_CASES, ids=DEV_IDS)
def test_nll_is_half_deviance_in_eta(family, ref, y, mu):
    eta = family.link.link(jnp.asarray(mu))
    np.testing.assert_allclose(family.nll(y, eta), 0.5 * ref._resid_dev(y, mu), rtol=1e-8,
                               atol=1e-12)


LINKED = [
    F.Gaussian(), F.Gaussian(link=L.Log()), F.Binomial(), F.Binomial(link=L.Probit()),
    F.Binomial(link=L.CLogLog()), F.Poisson(), F.Poisson(link=L.Sqrt()), F.Gamma(),
    F.Gamma(link=L.Log()), F.InverseGaussian(), F.NegativeBinomial(alpha=0.5),
    F.Tweedie(power=1.5),
]


@pytest.mark.parametrize("family", LINKED, ids=repr)
def test_autodiff_derivatives_equal_textbook_formulas(family):
    """d nll/d eta = (mu - y) mu'(eta) / V(mu); Fisher weight = mu'(eta)^2 / V(mu)."""
    if isinstance(family, F.Binomial):
        y = jnp.array([0.0, 1.0, 1.0, 0.0, 1.0])
        mu = jnp.array([0.1, 0.4, 0.9, 0.55, 0.02])
    else:
        y = jnp.array([0.5, 2.0, 3.0, 7.0, 1.5])
        mu = jnp.array([0.7, 1.5, 3.3, 6.0, 0.4])
    eta = family.link.link(mu)
    _, g, h_fisher = eta_derivatives(family, y, eta, fisher=True)
    dmu = family.link.inverse_deriv(eta)
    np.testing.assert_allclose(g, (mu - y) * dmu / family.variance(mu), rtol=1e-9)
    np.testing.assert_allclose(h_fisher, dmu**2 / family.variance(mu), rtol=1e-9)
    if family.is_canonical:
        _, _, h_exact = eta_derivatives(family, y, eta, fisher=False)
        np.testing.assert_allclose(h_exact, h_fisher, rtol=1e-9)


def test_canonical_gradient_is_x_transpose_residual():
    import linjax as lj

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    y = rng.poisson(2.0, size=40).astype(float)
    params = {"coef": jnp.array([0.1, -0.2, 0.3]), "intercept": jnp.array(0.2)}
    grad = jax.grad(lj.objective)(params, X, y, F.Poisson())
    mu = np.exp(X @ np.asarray(params["coef"]) + 0.2)
    np.testing.assert_allclose(grad["coef"], X.T @ (mu - y) / 40, rtol=1e-12)
    np.testing.assert_allclose(grad["intercept"], np.sum(mu - y) / 40, rtol=1e-12)


@pytest.mark.parametrize("family", [F.Binomial(), F.Poisson(), F.NegativeBinomial(alpha=1.0),
                                    F.Tweedie(power=1.5), F.Gamma(link=L.Log())], ids=repr)
def test_nll_finite_at_extreme_eta(family):
    eta = jnp.array([-1e3, -30.0, 0.0, 30.0, 1e3])
    y = jnp.array([0.0, 1.0, 0.0, 1.0, 1.0])
    if isinstance(family, F.Gamma):
        y = y + 0.5
    nll, g, h = eta_derivatives(family, y, eta)
    assert np.all(np.isfinite(nll)) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))


def test_support_errors():
    assert F.Poisson().support_error(np.array([1.0, -1.0])) is not None
    assert F.Poisson().support_error(np.array([1.0, 0.0])) is None
    assert F.Binomial().support_error(np.array([0.0, 1.2])) is not None
    assert F.Gamma().support_error(np.array([1.0, 0.0])) is not None
    assert F.Tweedie(power=0.5).support_error(np.array([1.0])) is not None
    assert F.Tweedie(power=1.5).support_error(np.array([0.0, 2.0])) is None
    assert F.Tweedie(power=2.5).support_error(np.array([0.0, 2.0])) is not None


def test_family_parameters_are_leaves_for_vmap():
    mu = jnp.array([1.0, 2.0])
    out = jax.vmap(lambda a: F.NegativeBinomial(alpha=a).variance(mu))(jnp.array([0.5, 2.0]))
    np.testing.assert_allclose(out, [[1.5, 4.0], [3.0, 10.0]])
    out = jax.vmap(lambda p: F.Tweedie(power=p).variance(mu))(jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(out, [[1.0, 2.0], [1.0, 4.0]])


def test_auto_curvature_is_observed_where_positive_and_expected_elsewhere():
    # Poisson with the identity link: observed curvature y / mu^2 (zero where y = 0),
    # expected 1 / mu; "auto" keeps the observed one where it is positive.
    mu = np.array([0.5, 1.0, 2.0, 3.0, 4.0])
    y = np.array([0.0, 2.0, 0.0, 1.0, 5.0])
    _, g, h = eta_derivatives(F.Poisson(link=L.Identity()), jnp.asarray(y), jnp.asarray(mu),
                              fisher="auto")
    np.testing.assert_allclose(np.asarray(g), 1 - y / mu, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(h), np.where(y > 0, y / mu**2, 1 / mu), rtol=1e-12)
    # Gamma with the log link: observed y / mu everywhere (positive), expected 1.
    _, _, h = eta_derivatives(F.Gamma(link=L.Log()), jnp.asarray(y + 1), jnp.log(mu),
                              fisher="auto")
    np.testing.assert_allclose(np.asarray(h), (y + 1) / mu, rtol=1e-12)
    with pytest.raises(ValueError, match="fisher"):
        eta_derivatives(F.Gamma(link=L.Log()), jnp.asarray(y + 1), jnp.log(mu), fisher="x")
