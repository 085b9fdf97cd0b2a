"""Every form of linjax's one Gram kernel (`linjax.solvers.gram`) against numpy's Z' diag(s) Z.

Forms: by row blocks (with a ragged tail) and in one product; the whole product and the
upper block triangle (float64 from two column blocks, float32 from 384 columns); float32
products; with and without the intercept's column of ones; the triangle accumulator on its
own; several weightings at once (`pair_grams`); the packed pair products of fit_batch
(`column_pairs`); and the sums of blocked and streaming fits (`blocks.newton_sums`).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linjax.families import Poisson
from linjax.scale import blocks
from linjax.solvers import gram
from linjax.solvers.linalg import pair_indices

F32_TOL = 1e-6   # float32 products: about 1e-7 relative to sum_i s_i |z_ij| |z_ik| (gram.py)
F64_TOL = 1e-12


def _data(n, p, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 10.0, size=p) + rng.normal(size=p)
    s = rng.uniform(0.0, 2.0, size=n)
    s[::9] = 0.0
    return X, s, rng.normal(size=n)


def _reference(X, s, intercept):
    """(Z' diag(s) Z, |Z|' diag(s) |Z|): the Gram and the scale of its rounding."""
    Z = np.column_stack([np.ones(len(X)), X]) if intercept else X
    return Z.T @ (s[:, None] * Z), np.abs(Z).T @ (s[:, None] * np.abs(Z))


# (n, p): two row blocks of weighted_products and a ragged tail, with p = 100 (float64
# products by the upper triangle of two column blocks, float32 by the whole product) and
# p = 400 (both by the triangle); and rows fewer than two blocks (one product).
SHAPES = [(2 * gram.block_rows(100) + 37, 100), (2 * gram.block_rows(400) + 11, 400),
          (300, 100)]


@pytest.fixture(scope="module", params=SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def data(request):
    n, p = request.param
    return _data(n, p, seed=p + n % 7)


def test_the_shapes_cover_every_kernel_form():
    (n1, p1), (n2, p2), (n3, _) = SHAPES
    assert n1 >= 2 * gram.block_rows(p1) and n1 % gram.block_rows(p1)      # blocks, tail
    assert n3 < 2 * gram.block_rows(p1)                                    # one product
    assert gram.gram_width(p1 + 1, jnp.float64) is not None                # f64 triangle
    assert gram.gram_width(p1 + 1, jnp.float32) is None                    # f32 whole
    assert gram.gram_width(p2, jnp.float32) is not None                    # f32 triangle
    assert gram.gram_width(40, jnp.float64) is None                        # f64 whole


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_weighted_products_match_numpy(data, intercept, precision):
    X, s, r = data
    single = precision != "float64"
    if X.shape[1] == 400 and not single:
        pytest.skip("float64 triangles are covered at p = 100 (saves a slow compile)")
    hess, grad = jax.jit(gram.weighted_products, static_argnums=(3, 4))(
        jnp.asarray(X), jnp.asarray(s), jnp.asarray(r), intercept, single)
    ref, size = _reference(X, s, intercept)
    assert hess.dtype == jnp.float64 and hess.shape == ref.shape
    err = np.max(np.abs(np.asarray(hess) - ref) / size)
    assert err < (F32_TOL if single else F64_TOL), err
    assert np.array_equal(np.asarray(hess), np.asarray(hess).T)
    Z = np.column_stack([np.ones(len(X)), X]) if intercept else X
    np.testing.assert_allclose(np.asarray(grad), r @ Z, rtol=1e-11,
                               atol=1e-12 * (np.abs(r) @ np.abs(Z)).max())


@pytest.mark.parametrize("width", [8, 64])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_triangle_accumulator_matches_numpy(width, dtype):
    """triangle_zeros / triangle_add / triangle_finish over row blocks with a ragged tail:
    three column blocks (width 8 on 21 columns) and one (width 64)."""
    X, s, _ = _data(203, 21, seed=5)
    X = X.astype(dtype)
    s = s.astype(dtype)
    p = X.shape[1]
    assert len(gram.column_blocks(p, width)) == (3 if width == 8 else 1)

    def total(X, s):
        acc = gram.sum_row_blocks(lambda x, w: gram.triangle_add(
            gram.triangle_zeros(p, X.dtype, width), x, w[:, None] * x), (X, s), 64,
            gram.triangle_zeros(p, X.dtype, width))
        return gram.triangle_finish(acc)

    G = np.asarray(jax.jit(total)(jnp.asarray(X), jnp.asarray(s)))
    ref, size = _reference(X.astype(float), s.astype(float), False)
    assert np.max(np.abs(G - ref) / size) < (F64_TOL if dtype == "float64" else F32_TOL)
    assert np.array_equal(G, G.T)


@pytest.mark.parametrize("single", [False, True])
def test_pair_grams_match_numpy(single):
    X, s, _ = _data(2 * 2048 + 5, 12, seed=8)     # two row blocks of its 2^21 elements, tail
    C = np.stack([s, s**2, np.cos(s)], axis=1)
    got = np.asarray(gram.pair_grams(jnp.asarray(X), jnp.asarray(C), True, single))
    for j in range(3):
        ref, size = _reference(X, C[:, j], True)
        assert np.max(np.abs(got[j] - ref) / size) < (F32_TOL if single else F64_TOL)


@pytest.mark.parametrize("intercept", [False, True])
def test_column_pairs_give_every_gram_packed(intercept):
    X, s, _ = _data(500, 6, seed=9)
    S = np.stack([s, s[::-1], np.ones_like(s)])
    Xa = gram.augmented(jnp.asarray(X), intercept)
    packed = np.asarray(jnp.asarray(S) @ gram.column_pairs(Xa))
    rows, cols, _ = pair_indices(Xa.shape[1])
    for i in range(3):
        ref, size = _reference(X, S[i], intercept)
        assert np.max(np.abs(packed[i] - ref[rows, cols]) / size[rows, cols]) < F64_TOL


def test_newton_sums_match_numpy():
    """The sums of blocked and streaming fits: sum w nll, Z'(w g), Z' diag(w h) Z."""
    X, w, _ = _data(2 * gram.block_rows(100) + 37, 100, seed=10)
    X = X / np.abs(X).max(0)
    rng = np.random.default_rng(11)
    y = rng.poisson(1.0, size=len(X)).astype(float)
    B = rng.normal(size=101) * 0.05
    sums = jax.jit(blocks.newton_sums, static_argnums=(5, 6, 7))
    f, g, H = sums(jnp.asarray(B), jnp.asarray(X), jnp.asarray(y), jnp.asarray(w),
                   jnp.zeros(len(X)), Poisson(), False, True)
    mu = np.exp(B[0] + X @ B[1:])
    keep = w > 0
    Z = np.column_stack([np.ones(len(X)), X])
    ref_h, size = _reference(X, np.where(keep, w * mu, 0.0), True)
    assert np.max(np.abs(np.asarray(H) - ref_h) / size) < F64_TOL
    np.testing.assert_allclose(np.asarray(g), (np.where(keep, w, 0.0) * (mu - y)) @ Z,
                               rtol=1e-10, atol=1e-9)
    ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
    nll = np.where(keep, w * (mu - y * np.log(mu) + ylogy - y), 0.0)   # the unit deviance / 2
    assert abs(float(f) - nll.sum()) < 1e-10 * np.abs(nll).sum()
