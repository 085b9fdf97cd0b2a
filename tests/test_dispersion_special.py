"""linjax.special (the dispersion's lgamma, digamma and their differences in r = 1/alpha)
against scipy, and against mpmath where scipy's own difference loses digits (large r)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from linjax import special as lj_special

mpmath = pytest.importorskip("mpmath")


def test_lgamma_digamma_equal_scipys():
    x = np.concatenate([np.geomspace(1e-9, 1e12, 2000), np.arange(0.5, 300.0, 0.5)])
    lg, dg = (np.asarray(v) for v in jax.jit(lj_special.lgamma_digamma)(jnp.asarray(x)))
    np.testing.assert_allclose(lg, special.gammaln(x), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dg, special.digamma(x), rtol=1e-13, atol=1e-13)
    grad = jax.vmap(jax.grad(lj_special.lgamma))(jnp.asarray(x[::50]))
    np.testing.assert_allclose(np.asarray(grad), special.digamma(x[::50]), rtol=1e-13,
                               atol=1e-13)


def test_differences_in_r_keep_their_digits_as_r_grows():
    """lgamma(y + r) - lgamma(r), psi(y + r) - psi(r), psi'(y + r) - psi'(r) to 1e-12
    relative for r from 1e-4 to 1e9 (alpha -> 0), where scipy's differences lose ~r eps."""
    mpmath.mp.dps = 40
    y = np.array([0.0, 1.0, 2.0, 3.0, 7.0, 30.0, 1e3, 1e5])[:, None]
    r = np.geomspace(1e-4, 1e9, 14)[None, :]
    Y, R = np.broadcast_arrays(y, r)
    got = [np.asarray(v) for v in (lj_special.lgamma_difference(jnp.asarray(Y), jnp.asarray(R)),
                                   *lj_special.psi_differences(jnp.asarray(Y), jnp.asarray(R)))]

    def exact(f):
        return np.array([[float(f(mpmath.mpf(a) + mpmath.mpf(b)) - f(mpmath.mpf(b)))
                          for a, b in zip(ya, ra, strict=True)]
                         for ya, ra in zip(Y, R, strict=True)])

    refs = [exact(mpmath.loggamma), exact(mpmath.digamma),
            exact(lambda z: mpmath.polygamma(1, z))]
    for value, ref in zip(got, refs, strict=True):
        np.testing.assert_allclose(value, ref, rtol=1e-12, atol=1e-14)
    # scipy's lgamma difference is off by ~1e-7 at r = 1e8 (this is what the series avoid)
    assert np.max(np.abs(special.gammaln(Y + R) - special.gammaln(R) - refs[0])) > 1e-9
