"""R's aliased-column test behind `summarize` and `aliased_columns`, with its screen.

`fit_statistics.identified_coefficients` runs the exact column-ordered test (`ordered_qr`,
k passes over the design) for a design of n k >= 2^20 elements only where the Cholesky
factor of the weighted Gram finds a column near dependence (`may_alias`); smaller designs
take the exact test directly (the tests below lower that bound to screen theirs).
References: each column's residual norm after the earlier columns, from numpy's least
squares, against R's tolerance 1e-11; and the exact test itself, forced.
"""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax import fit_statistics as fs

N = 200


def _design(gap, seed=0):
    """Four columns, the last = col0 - 2 col1 + gap * noise (gap 0: exactly aliased)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, 3))
    last = Z[:, 0] - 2 * Z[:, 1] + gap * rng.standard_normal(N)
    X = np.c_[Z, last]
    y = rng.poisson(np.exp(0.3 + 0.2 * Z[:, 0])).astype(float)
    return X, y


def _residual_ratio(A, j):
    """|a_j - P a_j| / |a_j|, P the projection on A's earlier columns (numpy lstsq)."""
    a = A[:, j]
    coef = np.linalg.lstsq(A[:, :j], a, rcond=None)[0]
    return np.linalg.norm(a - A[:, :j] @ coef) / np.linalg.norm(a)


def _parts(X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = lj.fit(X, y, family="poisson")
    Xv, yv, w, off = fs.inputs.fit_inputs(X, y, result.family, None, None, result.penalty, True)
    return result, fs.information_parts(result.params, Xv, yv, w, off, result.family,
                                        result.penalty, True)


@pytest.mark.parametrize("gap", [0.0, 1e-13, 1e-6, 1.0])
def test_screen_and_exact_test_agree_with_residual_norms(gap):
    """The aliased set is R's (residual norm ratio below 1e-11, from numpy), and equals the
    exact test's; the screen sends every design near dependence to the exact test and lets
    a clearly full-rank one through."""
    X, y = _design(gap)
    result, parts = _parts(X, y)
    s = jnp.sqrt(jnp.maximum(parts["w"] * parts["h"], 0.0))
    A = np.asarray(s[:, None] * parts["Xd"])
    ratios = np.array([_residual_ratio(A, j) for j in range(1, A.shape[1])])
    expected = [j for j, r in enumerate(ratios) if r < fs.alias_tol(A.dtype)]
    assert lj.inference.aliased_columns(result, X, y) == expected
    suspect = bool(fs.may_alias(parts["Xd"], jnp.maximum(parts["w"] * parts["h"], 0.0),
                                parts["active"], parts["ridge"], fs.alias_tol(A.dtype)))
    assert suspect == bool(ratios.min() < 1e-4)
    saved = fs.ALIAS_SCREEN_MIN_ELEMENTS
    try:
        fs.ALIAS_SCREEN_MIN_ELEMENTS = 0  # screen this small design too
        screened = fs.identified_coefficients(parts)
        exact = _exact(parts)
    finally:
        fs.ALIAS_SCREEN_MIN_ELEMENTS = saved
    np.testing.assert_array_equal(np.asarray(screened[0]), np.asarray(exact[0]))
    np.testing.assert_allclose(np.asarray(screened[1]), np.asarray(exact[1]), rtol=1e-12,
                               atol=1e-12)


def _exact(parts):
    """identified_coefficients with the screen forced to send everything to the exact test."""
    saved = fs.may_alias
    try:
        fs.may_alias = lambda *args: jnp.asarray(True)
        return fs.identified_coefficients(parts)
    finally:
        fs.may_alias = saved


def test_an_active_zero_column_is_aliased():
    """A column of zeros is aliased (R: NA), screen or not."""
    X, y = _design(1.0)
    X[:, 2] = 0.0
    result, parts = _parts(X, y)
    assert bool(fs.may_alias(parts["Xd"], jnp.maximum(parts["w"] * parts["h"], 0.0),
                             parts["active"], parts["ridge"], fs.alias_tol(X.dtype)))
    assert lj.inference.aliased_columns(result, X, y) == [2]
