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


# -- method="cox-reid": the Cox-Reid adjusted profile likelihood (linjax.dispersion) ------

@pytest.fixture(scope="module")
def zoo_cox_reid():
    """lj.fit with NegativeBinomial(alpha=None, method="cox-reid") on the zoo problem and its
    reverse, vmapped (one compilation)."""
    X, y, _, off = zoo.problem("negative_binomial")
    family = F.NegativeBinomial(alpha=None, method="cox-reid")
    fits = jax.vmap(lambda yy: lj.fit(X, yy, family=family, offset=off))(
        jnp.stack([jnp.asarray(y), jnp.asarray(y[::-1])]))
    return X, y, off, fits


def test_cox_reid_maximizes_the_adjusted_profile_likelihood(zoo_cox_reid):
    from tests.test_dispersion import fd_derivative, ref_beta, ref_criterion

    X, y, off, fits = zoo_cox_reid
    design = np.c_[np.ones(len(y)), X]
    w = np.ones(len(y))
    for k, yy in enumerate((y, y[::-1])):
        result = jax.tree_util.tree_map(lambda a, k=k: a[k], fits)
        assert int(result.status) == 0 and bool(result.converged)
        assert result.family.method == "cox-reid"
        t = float(np.log(result.family.alpha))
        np.testing.assert_allclose(result.info.alpha, result.family.alpha)
        # the derivative of the reference criterion vanishes at the estimate
        assert abs(fd_derivative(t, design, yy, off, w, "cox-reid")) < 1e-6
        assert abs(fd_derivative(t + 1e-3, design, yy, off, w, "cox-reid")) > 1e-3
        # the coefficients are the NB maximum likelihood ones at that alpha
        beta = ref_beta(design, yy, np.exp(t), off, w)
        np.testing.assert_allclose(result.params["intercept"], beta[0], rtol=1e-7)
        np.testing.assert_allclose(result.params["coef"], beta[1:], rtol=1e-7)
        np.testing.assert_allclose(result.info.loglik, ref_criterion(t, design, yy, off, w, "ml"),
                                   rtol=1e-10)
    # Cox-Reid's alpha exceeds the maximum likelihood one (the adjustment for the p fitted
    # coefficients), here as in edgeR and DESeq2
    ml = lj.fit(X, y, family=F.NegativeBinomial(alpha=None), offset=off)
    assert float(fits.family.alpha[0]) > float(ml.info.alpha)


def test_cox_reid_family_saves_and_loads(zoo_cox_reid, tmp_path):
    X, y, off, fits = zoo_cox_reid
    result = jax.tree_util.tree_map(lambda a: a[0], fits)
    lj.io.save(tmp_path / "nb.zip", result)  # with its NBInfo (alpha, its standard error)
    back = lj.io.load(tmp_path / "nb.zip")
    assert back.family.method == "cox-reid"
    np.testing.assert_array_equal(back.family.alpha, result.family.alpha)
    np.testing.assert_array_equal(back.info.alpha_se, result.info.alpha_se)
    # the loaded fit summarizes as the fit did (alpha counted in AIC through its info)
    before = lj.inference.summarize(result, X, y, offset=off)
    after = lj.inference.summarize(back, X, y, offset=off)
    np.testing.assert_array_equal(after.aic, before.aic)
    np.testing.assert_array_equal(after.bse, before.bse)
    # method is static configuration, not a leaf
    assert len(jax.tree_util.tree_leaves(result.family)) == 1


def test_cox_reid_bad_inputs():
    X, y, _, _ = zoo.problem("negative_binomial")
    with pytest.raises(ValueError, match="method"):
        lj.fit(X, y, family=F.NegativeBinomial(alpha=None, method="reml"))
    with pytest.raises(ValueError, match="unpenalized"):
        lj.fit(X, y, family=F.NegativeBinomial(alpha=None, method="cox-reid"),
               penalty=lj.penalties.L2(0.1))
    with pytest.raises(ValueError, match="log link"):
        lj.fit(X, y, family=F.NegativeBinomial(alpha=None, method="cox-reid", link="sqrt"))
