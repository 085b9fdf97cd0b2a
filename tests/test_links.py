"""Links against statsmodels' link classes and autodiff; stability at the edges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from statsmodels.genmod.families import links as sml

from linjax import links as L

MU_UNIT = np.array([1e-12, 1e-6, 0.01, 0.2, 0.5, 0.8, 0.99, 1 - 1e-6])
MU_POS = np.array([1e-8, 1e-3, 0.1, 1.0, 3.0, 50.0, 1e4])

CASES = [
    (L.Identity(), sml.Identity(), MU_POS),
    (L.Log(), sml.Log(), MU_POS),
    (L.Logit(), sml.Logit(), MU_UNIT),
    (L.Probit(), sml.Probit(), MU_UNIT[1:-1]),
    (L.CLogLog(), sml.CLogLog(), MU_UNIT[1:-1]),
    (L.LogLog(), sml.LogLog(), MU_UNIT[1:-1]),
    (L.Cauchit(), sml.Cauchy(), MU_UNIT[1:-1]),
    (L.Inverse(), sml.InversePower(), MU_POS),
    (L.InverseSquared(), sml.InverseSquared(), MU_POS[1:]),
    (L.Sqrt(), sml.Sqrt(), MU_POS),
    (L.Power(power=0.3), sml.Power(power=0.3), MU_POS),
]
IDS = [type(c[0]).__name__ for c in CASES]


@pytest.mark.parametrize("link, ref, mu", CASES, ids=IDS)
def test_link_matches_statsmodels(link, ref, mu):
    eta = ref(mu)
    np.testing.assert_allclose(link.link(mu), eta, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(link.inverse(eta), ref.inverse(eta), rtol=1e-10)
    np.testing.assert_allclose(link.deriv(mu), ref.deriv(mu), rtol=1e-8)
    np.testing.assert_allclose(link.inverse_deriv(eta), ref.inverse_deriv(eta), rtol=1e-8)


@pytest.mark.parametrize("link, ref, mu", CASES, ids=IDS)
def test_inverse_deriv_is_autodiff_of_inverse(link, ref, mu):
    eta = jnp.asarray(ref(mu))
    auto = jax.vmap(jax.grad(link.inverse))(eta)
    np.testing.assert_allclose(link.inverse_deriv(eta), auto, rtol=1e-9)
    np.testing.assert_allclose(link.log_inverse(eta), np.log(ref.inverse(np.asarray(eta))),
                               rtol=1e-9)


UNIT_LINKS = [L.Logit(), L.Probit(), L.CLogLog(), L.LogLog(), L.Cauchit()]


@pytest.mark.parametrize("link", UNIT_LINKS, ids=lambda x: type(x).__name__)
def test_unit_links_finite_logs_at_large_eta(link):
    eta = jnp.array([-1e3, -50.0, -5.0, 0.0, 5.0, 50.0, 1e3])
    log_mu, log_1m = link.log_inverse(eta), link.log1m_inverse(eta)
    assert np.all(np.isfinite(log_mu)) and np.all(np.isfinite(log_1m))
    mu = np.asarray(link.inverse(eta))
    assert np.all((mu >= 0) & (mu <= 1))
    # log mu + log(1 - mu) pieces agree with the direct formula where it is accurate.
    moderate = np.abs(np.asarray(eta)) <= 5
    np.testing.assert_allclose(np.exp(log_mu)[moderate], mu[moderate], rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_1m)[moderate], 1 - mu[moderate], rtol=1e-12, atol=1e-15)
    # Gradients of the log-probabilities stay finite at the edges.
    g = jax.vmap(jax.grad(lambda e: link.log_inverse(e) + link.log1m_inverse(e)))(eta)
    assert np.all(np.isfinite(g))


def test_logit_log_probabilities_exact_in_tails():
    eta = jnp.array([-700.0, 700.0])
    np.testing.assert_allclose(L.Logit().log_inverse(eta)[0], -700.0, rtol=1e-15)
    np.testing.assert_allclose(L.Logit().log1m_inverse(eta)[1], -700.0, rtol=1e-15)
    np.testing.assert_allclose(L.Probit().log_inverse(jnp.array(-30.0)),
                               scipy.special.log_ndtr(-30.0), rtol=1e-12)


def test_log_link_exp_never_overflows():
    eta = jnp.array([-1e3, 0.0, 1e3])
    assert np.all(np.isfinite(L.Log().inverse(eta)))
    assert np.all(np.isfinite(L.Log().inverse(eta.astype(jnp.float32))))


def test_get_link_names_and_errors():
    assert isinstance(L.get_link("cloglog"), L.CLogLog)
    with pytest.raises(ValueError, match="unknown link"):
        L.get_link("nope")


def test_links_are_pytrees_with_numeric_leaves():
    leaves = jax.tree_util.tree_leaves(L.Power(power=0.5))
    assert leaves == [0.5]
    out = jax.vmap(lambda p: L.Power(power=p).link(4.0))(jnp.array([0.5, 2.0]))
    np.testing.assert_allclose(out, [2.0, 16.0])
