"""The one intercept-only fit (`linjax.starting.intercept_only_fit`) and the one definition
of R's start's working weights (`starting.start_working`): against the closed form (the
weighted mean), statsmodels' intercept-only GLM with an offset, and numpy."""

import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax import paths
from linjax.fit_statistics import null_mean
from linjax.starting import intercept_only_fit, start_working

FAMILIES = {
    "poisson": (lj.families.Poisson(), np.log, np.exp),
    "binomial": (lj.families.Binomial(), lambda m: np.log(m / (1 - m)),
                 lambda e: 1 / (1 + np.exp(-e))),
    "gamma": (lj.families.Gamma(link=lj.links.Log()), np.log, np.exp),
}


def _data(name, n=200, seed=3):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.2, 3.0, n)
    o = 0.4 * rng.normal(size=n)
    mu = np.exp(0.2 + o)
    y = {"poisson": rng.poisson(mu).astype(float),
         "binomial": (rng.uniform(size=n) < mu / (1 + mu)).astype(float),
         "gamma": rng.gamma(3.0, mu / 3.0)}[name]
    return y, w, o


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_without_offset_is_the_weighted_mean(name):
    family, link, _ = FAMILIES[name]
    y, w, _ = _data(name)
    b0, mu = intercept_only_fit(family, jnp.asarray(y), jnp.asarray(w))
    mean = np.sum(w * y) / np.sum(w)
    np.testing.assert_allclose(float(mu), mean, rtol=1e-14)
    np.testing.assert_allclose(float(b0), link(mean), rtol=1e-14)
    # the null model's means are that weighted mean
    np.testing.assert_allclose(np.asarray(null_mean(jnp.asarray(y), jnp.asarray(w), None,
                                                    family, True)), mean, rtol=1e-14)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_with_offset_matches_statsmodels(name):
    sm = pytest.importorskip("statsmodels.api")
    family, _, inverse = FAMILIES[name]
    y, w, o = _data(name)
    sm_family = {"poisson": sm.families.Poisson(), "binomial": sm.families.Binomial(),
                 "gamma": sm.families.Gamma(sm.families.links.Log())}[name]
    ref = sm.GLM(y, np.ones((len(y), 1)), family=sm_family, offset=o, var_weights=w).fit(
        tol=1e-14, maxiter=200)
    b0, mu = intercept_only_fit(family, jnp.asarray(y), jnp.asarray(w), jnp.asarray(o))
    np.testing.assert_allclose(float(b0), ref.params[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(mu), inverse(ref.params[0] + o), rtol=1e-10)
    # the score equation holds: sum w (y - mu) mu' / V = 0 (here mu' / V = 1 or 1 / mu)
    score = w * (y - np.asarray(mu)) / (np.asarray(mu) if name == "gamma" else 1.0)
    assert abs(np.sum(score)) <= 1e-10 * np.sum(w)
    # both users fit it here: the null model and the path's alpha_max
    np.testing.assert_allclose(np.asarray(null_mean(jnp.asarray(y), jnp.asarray(w),
                                                    jnp.asarray(o), family, True)),
                               np.asarray(mu), rtol=1e-12)
    eta = paths._intercept_only(None, jnp.asarray(y), jnp.asarray(w), jnp.asarray(o), family,
                                True, 1e-8)
    np.testing.assert_allclose(np.asarray(eta), ref.params[0] + o, rtol=1e-10, atol=1e-12)


def test_start_working_is_r_first_irls_step_terms():
    """s0 = w mu'(eta0)^2 / V(mu0), z0 = link(mu0) - offset at mu0 = glm.fit's mustart;
    a zero-weight row whose z0 is not finite (y outside the family's range) adds 0, not NaN."""
    y, w, o = _data("binomial", n=20)
    y[3], w[3] = 2.0, 0.0                      # mu0 = 1.25: link and weight are NaN there
    mu0, s0, s0_z0 = start_working(lj.families.Binomial(), jnp.asarray(y), jnp.asarray(w),
                                   jnp.asarray(o))
    m = (y + 0.5) / 2
    expected_s0 = np.where(np.arange(20) == 3, 0.0, w * m * (1 - m))
    with np.errstate(invalid="ignore"):
        z0 = np.log(m / (1 - m)) - o
    np.testing.assert_allclose(np.asarray(mu0), m, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(s0), expected_s0, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(s0_z0), np.where(expected_s0 > 0, expected_s0 * z0,
                                                           0.0), rtol=1e-13, atol=1e-15)
    assert np.all(np.isfinite(np.asarray(s0_z0)))
