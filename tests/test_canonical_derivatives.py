"""Closed-form derivatives of the canonical pairs (`families._canonical_derivatives`).

Gaussian-identity, Poisson-log and Binomial-logit take g and h in closed form instead of
autodiff of `family.nll`; references: 40-digit mpmath sigmoids, numpy's exp, and the old
autodiff path (`families._autodiff_derivatives`).
"""

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import linjax as lj
from linjax import _programs
from linjax import families as F
from linjax import links as L
from linjax.families import _autodiff_derivatives, _canonical_derivatives, eta_derivatives
from tests import zoo

FISHER = [False, True, "auto"]
# both tails out to 700, with the points where 1 - sigmoid(eta) rounds to 0 (eta > ~37)
BINOMIAL_ETA = np.unique(np.concatenate([np.linspace(-700.0, 700.0, 141),
                                         [-40.0, -37.0, -20.0, -0.5, 0.5, 20.0, 37.0, 40.0]]))
# Poisson: inside the Log link's clip (+-707.78 in float64), at it and beyond
POISSON_ETA = np.concatenate([np.linspace(-700.0, 700.0, 141),
                              [-745.0, -708.0, 708.0, 745.0, np.inf, -np.inf, np.nan]])


def _sigmoids(eta):
    """(sigmoid(eta), sigmoid(-eta)) to 40 digits, rounded to float64."""
    mpmath.mp.dps = 40
    pos = [1 / (1 + mpmath.exp(-mpmath.mpf(float(e)))) for e in eta]
    neg = [1 / (1 + mpmath.exp(mpmath.mpf(float(e)))) for e in eta]
    return pos, neg


@pytest.mark.parametrize("fisher", FISHER)
@pytest.mark.parametrize("y0", [0.0, 0.3, 1.0])
def test_binomial_logit_equals_40_digit_sigmoids(y0, fisher):
    """g = (1 - y) sigmoid(eta) - y sigmoid(-eta), h = sigmoid(eta) sigmoid(-eta) to 1e-14
    relative out to |eta| = 700: autodiff's observed curvature formed 1 - sigmoid(eta) and
    lost every digit past eta ~ 37 (h = 0, or 0.7 of it with y = 0.3)."""
    pos, neg = _sigmoids(BINOMIAL_ETA)
    y = mpmath.mpf(y0)
    g_ref = np.array([float((1 - y) * a - y * b) for a, b in zip(pos, neg, strict=True)])
    h_ref = np.array([float(a * b) for a, b in zip(pos, neg, strict=True)])
    eta = jnp.asarray(BINOMIAL_ETA)
    nll, g, h = eta_derivatives(F.Binomial(), jnp.full_like(eta, y0), eta, fisher)
    np.testing.assert_allclose(np.asarray(g), g_ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(np.asarray(h), h_ref, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(np.asarray(nll), np.asarray(F.Binomial().nll(y0, eta)))


@pytest.mark.parametrize("fisher", FISHER)
@pytest.mark.parametrize("y0", [0.0, 0.3, 1.0])
def test_binomial_logit_equals_autodiff_where_autodiff_keeps_its_digits(y0, fisher):
    """The old path: its gradient everywhere, its expected curvature everywhere, its
    observed curvature for |eta| <= 1 (beyond, 1 - sigmoid cancels)."""
    eta = jnp.asarray(BINOMIAL_ETA)
    y = jnp.full_like(eta, y0)
    nll, g, h = eta_derivatives(F.Binomial(), y, eta, fisher)
    old_nll, old_g, _ = _autodiff_derivatives(F.Binomial(), y, eta, fisher)
    np.testing.assert_array_equal(np.asarray(nll), np.asarray(old_nll))
    np.testing.assert_allclose(np.asarray(g), np.asarray(old_g), rtol=1e-14, atol=0)
    expected = _autodiff_derivatives(F.Binomial(), y, eta, True)[2]
    np.testing.assert_allclose(np.asarray(h), np.asarray(expected), rtol=1e-14, atol=0)
    near = np.abs(BINOMIAL_ETA) <= 1
    observed = _autodiff_derivatives(F.Binomial(), y, eta, False)[2]
    np.testing.assert_allclose(np.asarray(h)[near], np.asarray(observed)[near], rtol=1e-14)


@pytest.mark.parametrize("fisher", FISHER)
@pytest.mark.parametrize("y0", [0.0, 1.0, 5.5])
def test_poisson_log_equals_autodiff_bit_for_bit_and_exp(y0, fisher):
    """g = (mu - y), h = mu, mu = exp(eta) inside the Log link's clip; beyond it (and at
    +-inf) g = h = 0 as the clip's derivative gave, NaN at NaN: the old path's bits."""
    eta = jnp.asarray(POISSON_ETA)
    y = jnp.full_like(eta, y0)
    new = eta_derivatives(F.Poisson(), y, eta, fisher)
    old = _autodiff_derivatives(F.Poisson(), y, eta, fisher)
    for a, b in zip(new, old, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    inside = np.abs(POISSON_ETA) <= 700
    mu = np.exp(POISSON_ETA[inside])
    np.testing.assert_allclose(np.asarray(new[1])[inside], mu - y0, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(np.asarray(new[2])[inside], mu, rtol=1e-14)
    outside = np.isinf(POISSON_ETA) | (np.abs(POISSON_ETA) > 708 - 1)
    assert np.all(np.asarray(new[1])[outside] == 0) and np.all(np.asarray(new[2])[outside] == 0)


@pytest.mark.parametrize("fisher", FISHER)
def test_gaussian_identity_equals_autodiff_bit_for_bit(fisher):
    eta = jnp.asarray(POISSON_ETA)
    for y0 in (0.0, 0.3, -2.0):
        y = jnp.full_like(eta, y0)
        new = eta_derivatives(F.Gaussian(), y, eta, fisher)
        old = _autodiff_derivatives(F.Gaussian(), y, eta, fisher)
        for a, b in zip(new, old, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(new[1]), POISSON_ETA - y0)
        np.testing.assert_array_equal(np.asarray(new[2]), np.ones_like(POISSON_ETA))


@pytest.mark.parametrize("fisher", FISHER)
def test_binomial_logit_non_finite_eta_as_autodiff(fisher):
    """eta = +-inf: the limits (g = 1 - y or -y, h = 0); NaN stays NaN."""
    eta = jnp.array([np.inf, -np.inf, np.nan] * 3)
    y = jnp.repeat(jnp.array([0.0, 0.3, 1.0]), 3)
    new = eta_derivatives(F.Binomial(), y, eta, fisher)
    old = _autodiff_derivatives(F.Binomial(), y, eta, fisher)
    for a, b in zip(new, old, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(new[1])[:2], [1.0, 0.0])
    np.testing.assert_array_equal(np.asarray(new[2])[:2], [0.0, 0.0])


@pytest.mark.parametrize("family", [F.Gaussian(), F.Poisson(), F.Binomial()], ids=repr)
def test_float32_stays_float32(family):
    """float32 data keeps float32 derivatives (x64 on), equal to the old path's: Gaussian
    and Poisson bit for bit, the logistic to a few float32 ulps (autodiff's exp(eta -
    softplus(eta)) is the less accurate one there)."""
    eta = jnp.linspace(-80.0, 80.0, 161, dtype=jnp.float32)
    y = jnp.asarray(np.resize([0.0, 1.0, 0.3 if isinstance(family, F.Binomial) else 5.5], 161),
                    jnp.float32)
    new = eta_derivatives(family, y, eta)
    old = _autodiff_derivatives(family, y, eta, True)
    assert all(a.dtype == jnp.float32 for a in new)
    if isinstance(family, F.Binomial):
        np.testing.assert_allclose(np.asarray(new[1]), np.asarray(old[1]), rtol=2e-6)
        np.testing.assert_allclose(np.asarray(new[2]), np.asarray(old[2]), rtol=2e-6)
    else:
        for a, b in zip(new, old, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_other_pairs_and_broadcast_responses_take_autodiff():
    eta = jnp.array([0.1, 0.2])
    for family in (F.Binomial(link=L.Probit()), F.Poisson(link=L.Identity()),
                   F.Gaussian(link=L.Log()), F.Gamma(), F.Tweedie(power=1.0)):
        assert _canonical_derivatives(family, jnp.array([1.0, 2.0]), eta) is None
    # a response that broadcasts eta to a larger shape: autodiff sums g over the extra axis
    assert _canonical_derivatives(F.Poisson(), jnp.ones((3, 2)), eta) is None
    assert _canonical_derivatives(F.Poisson(), jnp.ones(2), jnp.ones((3, 2))) is not None
    with pytest.raises(ValueError, match="fisher"):
        eta_derivatives(F.Binomial(), jnp.ones(2), eta, fisher="expected")


@pytest.fixture
def autodiff_only(monkeypatch):
    """eta_derivatives by autodiff for every pair (the old path), with the programs traced
    before dropped on the way in and out (else a cached trace would keep either path)."""
    def drop_programs():
        for f in list(_programs._registry):
            f.clear_cache()
        jax.clear_caches()

    drop_programs()
    monkeypatch.setattr(F, "_canonical_derivatives", lambda family, y, eta: None)
    yield
    monkeypatch.undo()
    drop_programs()


@pytest.mark.parametrize("name, family", [("binomial", F.Binomial()), ("poisson", F.Poisson()),
                                          ("gaussian", F.Gaussian())])
def test_fits_equal_the_autodiff_fits(name, family, request):
    """lj.fit (Newton, weights and offset) gives the old path's coefficients to 1e-12."""
    X, y, w, o = zoo.problem(name)
    new = lj.fit(X, y, family, weights=w, offset=o)
    request.getfixturevalue("autodiff_only")
    old = lj.fit(X, y, family, weights=w, offset=o)
    assert bool(new.converged) and bool(old.converged)
    assert int(new.n_iter) == int(old.n_iter)
    for key in ("coef", "intercept"):
        np.testing.assert_allclose(np.asarray(new.params[key]), np.asarray(old.params[key]),
                                   rtol=1e-12)
    np.testing.assert_allclose(float(new.objective), float(old.objective), rtol=1e-14)
