"""Structured designs (`linjax.designs`): every product equals the dense matrix's own (numpy),
under jit, vmap over the coefficients and grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from linjax.designs import Categorical, Dense, Sparse, Split, cross

N = 40
TOL = 1e-12


def _one_hot(codes, n_levels, drop_first):
    full = (codes[:, None] == np.arange(n_levels)).astype(float)
    return full[:, 1:] if drop_first else full


@pytest.fixture(scope="module")
def cases():
    """(name, design, its dense matrix built with numpy/scipy)."""
    rng = np.random.default_rng(0)
    A = sp.random(N, 6, density=0.3, format="lil", random_state=1)
    A[3, :] = 0.0  # an empty row
    A = A.tocsr()
    D = rng.normal(size=(N, 3))
    c1 = rng.integers(0, 5, N)
    c1[c1 == 2] = 3  # a level without rows
    c2 = rng.integers(0, 3, N)
    cat1 = Categorical.from_codes(c1, 5, drop_first=True)
    cat2 = Categorical.from_codes(c2, 3)
    dense_c1, dense_c2 = _one_hot(c1, 5, True), _one_hot(c2, 3, False)
    split = Split((Dense(jnp.asarray(D)), cat1, Sparse.from_scipy(A.tocsc()), cat2))
    return [
        ("dense", Dense(jnp.asarray(D)), D),
        ("sparse", Sparse.from_scipy(A), A.toarray()),
        ("categorical", cat1, dense_c1),
        ("categorical_full", cat2, dense_c2),
        ("split", split, np.column_stack([D, dense_c1, A.toarray(), dense_c2])),
    ]


def _vectors(p, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=p), rng.normal(size=(p, 2)), rng.normal(size=N),
            rng.normal(size=(N, 2)), rng.uniform(0.0, 2.0, size=N))


def test_products_equal_dense(cases):
    for name, X, M in cases:
        b, B, v, V, w = _vectors(M.shape[1])
        assert X.shape == M.shape, name
        np.testing.assert_allclose(X.to_dense(), M, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X @ b, M @ b, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X @ B, M @ B, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.rmatvec(v), M.T @ v, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.rmatvec(V), M.T @ V, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.gram(jnp.asarray(w)), M.T @ (w[:, None] * M), atol=TOL,
                                   err_msg=name)


@pytest.mark.parametrize("intercept", [False, True])
def test_weighted_products_equal_dense(cases, intercept):
    for name, X, M in cases:
        _, _, r, _, s = _vectors(M.shape[1], seed=2)
        Z = np.column_stack([np.ones(N), M]) if intercept else M
        hess, grad = X.weighted_products(jnp.asarray(s), jnp.asarray(r), intercept)
        np.testing.assert_allclose(hess, Z.T @ (s[:, None] * Z), atol=TOL, err_msg=name)
        np.testing.assert_allclose(grad, r @ Z, atol=TOL, err_msg=name)


def test_column_means_and_stds_equal_dense(cases):
    for name, X, M in cases:
        w = _vectors(M.shape[1], seed=3)[-1]
        mean = w @ M / w.sum()
        std = np.sqrt(w @ (M - mean) ** 2 / w.sum())
        np.testing.assert_allclose(X.column_means(jnp.asarray(w)), mean, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.column_stds(jnp.asarray(w)), std, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.column_stds(), M.std(axis=0), atol=TOL, err_msg=name)


def test_cross_products_equal_dense(cases):
    blocks = {name: (X, M) for name, X, M in cases if name != "split"}
    w = _vectors(1, seed=4)[-1]
    for a, (Xa, Ma) in blocks.items():
        for b, (Xb, Mb) in blocks.items():
            np.testing.assert_allclose(cross(Xa, Xb, jnp.asarray(w)), Ma.T @ (w[:, None] * Mb),
                                       atol=TOL, err_msg=f"{a} x {b}")


def test_jit_vmap_grad(cases):
    matvec = jax.jit(lambda X, b: X @ b)
    products = jax.jit(lambda X, s, r: X.weighted_products(s, r, True))
    for name, X, M in cases:
        b, B, v, _, w = _vectors(M.shape[1], seed=5)
        np.testing.assert_allclose(matvec(X, b), M @ b, atol=TOL, err_msg=name)
        hess, grad = products(X, jnp.asarray(w), jnp.asarray(v))
        Z = np.column_stack([np.ones(N), M])
        np.testing.assert_allclose(hess, Z.T @ (w[:, None] * Z), atol=TOL, err_msg=name)
        rows = jax.vmap(lambda c, X=X: X @ c)(B.T)  # vmap over the coefficients
        np.testing.assert_allclose(rows, (M @ B).T, atol=TOL, err_msg=name)
        loss = jax.grad(lambda c, X=X, v=v: jnp.sum(jnp.sin(X @ c) * v))(b)
        np.testing.assert_allclose(loss, M.T @ (np.cos(M @ b) * v), atol=TOL, err_msg=name)


def test_grad_through_sparse_values():
    A = sp.random(N, 6, density=0.3, format="csr", random_state=2)
    X = Sparse.from_scipy(A)
    b = np.linspace(-1, 1, 6)
    g = jax.grad(lambda data: jnp.sum((Sparse(data, X.cols, X.rows, X.shape) @ b) ** 2))(X.data)
    rows = np.repeat(np.arange(N), np.diff(A.indptr))
    np.testing.assert_allclose(g, 2 * (A @ b)[rows] * b[A.indices], atol=TOL)


def test_bcoo_matches_scipy():
    from jax.experimental import sparse as jsparse

    A = sp.random(N, 6, density=0.3, format="coo", random_state=3)
    X = Sparse.from_bcoo(jsparse.BCOO.from_scipy_sparse(A))
    np.testing.assert_allclose(X.to_dense(), A.toarray(), atol=TOL)
    assert X.max_row_nnz == int(np.diff(A.tocsr().indptr).max())


def test_categorical_codes_checked():
    with pytest.raises(ValueError, match="codes: must lie in 0..2"):
        Categorical.from_codes(np.array([0, 1, 3]), 3)
    with pytest.raises(ValueError, match="codes: expected a 1-D array of integers"):
        Categorical.from_codes(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="n_levels: 1 level"):
        Categorical.from_codes(np.zeros(4, int), 1, drop_first=True)


def test_sparse_gram_by_row_blocks():
    """A full row makes the pair blocks small (rows per block < n, ragged tail too)."""
    A = sp.random(N - 1, 300, density=0.02, format="csr", random_state=4)
    A = sp.vstack([sp.csr_matrix(np.linspace(0.5, 1.5, 300)), A]).tocsr()
    X = Sparse.from_scipy(A)
    w = np.linspace(0.1, 2.0, N)
    M = A.toarray()
    np.testing.assert_allclose(X.gram(jnp.asarray(w)), M.T @ (w[:, None] * M), atol=TOL)
