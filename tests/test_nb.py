"""Negative binomial with alpha estimated (MASS::glm.nb) against R and statsmodels.

R reference: statsmodels/discrete/tests/results/results_discrete.py,
RandHIE.negativebinomial_nb2_bfgs ("R 2.15.1 MASS 7.3-22 glm.nb()": coefficients,
standard errors, AIC; ln(alpha), its standard error, alpha's standard error and the
log-likelihood from Stata's nbreg on the same data, statsmodels.datasets.randhie).
statsmodels' discrete NegativeBinomial (NB2 joint MLE) on a zoo problem with an offset.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.discrete.tests.results.results_discrete import RandHIE

import linjax as lj
from linjax import families as F
from linjax import nb
from tests import zoo

warnings.filterwarnings("ignore", module="statsmodels")


def test_randhie_against_r_glm_nb_and_stata():
    d = sm.datasets.randhie.load()
    X, y = np.asarray(d.exog, float), np.asarray(d.endog, float)
    result = lj.fit(X, y, family=F.NegativeBinomial(alpha=None))
    assert bool(result.converged)
    ref = RandHIE.negativebinomial_nb2_bfgs
    s = lj.inference.summarize(result, X, y)
    params = np.r_[ref.params[9], ref.params[:9]]  # R: constant last
    bse = np.r_[ref.bse[9], ref.bse[:9]]
    np.testing.assert_allclose(s.params, params, rtol=1e-6)
    np.testing.assert_allclose(s.bse, bse, rtol=1e-6)
    np.testing.assert_allclose(s.aic, 86789.3241530713, rtol=1e-10)  # R's AIC (k + alpha)
    np.testing.assert_allclose(s.llf, ref.llf, rtol=1e-10)
    np.testing.assert_allclose(result.info.alpha, np.exp(ref.lnalpha), rtol=1e-7)
    np.testing.assert_allclose(result.info.alpha_se, ref.bse[-1], rtol=1e-5)  # 6 digits
    np.testing.assert_allclose(s.nb_alpha, result.family.alpha)
    assert "Negative binomial alpha: 1.29295" in str(s)
    np.testing.assert_allclose(result.info.theta, 1 / result.info.alpha)


@pytest.fixture(scope="module")
def zoo_nb():
    """The zoo problem and its reverse in one vmapped lj.fit (one compilation: also the
    vmap test), with statsmodels' NB2 MLE of the first."""
    X, y, _, off = zoo.problem("negative_binomial")
    m = sm.NegativeBinomial(y, sm.add_constant(X), loglike_method="nb2", offset=off).fit(
        method="newton", maxiter=100, tol=1e-14, disp=0)

    def run(yy):
        return lj.fit(X, yy, family=F.NegativeBinomial(alpha=None), offset=off)

    fits = jax.vmap(run)(jnp.stack([jnp.asarray(y), jnp.asarray(y[::-1])]))
    first = jax.tree_util.tree_map(lambda a: a[0], fits)
    return X, y, off, m, first, fits


def test_against_statsmodels_discrete(zoo_nb):
    X, y, off, m, result, fits = zoo_nb
    assert bool(result.converged)
    np.testing.assert_allclose(result.params["intercept"], m.params[0], rtol=1e-7)
    np.testing.assert_allclose(result.params["coef"], m.params[1:-1], rtol=1e-7)
    np.testing.assert_allclose(result.info.alpha, m.params[-1], rtol=1e-7)
    # joint observed information, as statsmodels
    np.testing.assert_allclose(result.info.alpha_se, m.bse[-1], rtol=1e-6)
    s = lj.inference.summarize(result, X, y, offset=off)
    np.testing.assert_allclose(s.llf, m.llf, rtol=1e-10)
    np.testing.assert_allclose(s.aic, m.aic, rtol=1e-10)
    # the objective is the usual one at the fitted alpha
    np.testing.assert_allclose(
        result.objective, lj.objective(result.params, X, y, result.family, offset=off),
        rtol=1e-12)
    assert fits.info.alpha.shape == (2,) and np.all(np.isfinite(np.asarray(fits.info.alpha)))


def test_bad_inputs():
    X, y, _, _ = zoo.problem("negative_binomial")
    with pytest.raises(ValueError, match="negative binomial"):
        nb.fit_nb(X, y, family=F.Poisson())
    with pytest.raises(ValueError, match="smooth"):
        lj.fit(X, y, family=F.NegativeBinomial(alpha=None), penalty=lj.penalties.L1(0.1))
    with pytest.raises(ValueError, match="y"):
        lj.fit(X, -y - 1, family=F.NegativeBinomial(alpha=None))
