"""Sparse products by row pieces (`linjax.designs.sparse_kernels`) and the design gradient
L-BFGS uses (`linjax.solvers.design_gradient`): equal to scipy's / the dense matrix's
products and to autodiff of the dense objective, and free of an nnz-sized scatter."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import linjax as lj
from linjax.designs import Sparse
from linjax.designs.sparse_kernels import Pieces, choose_width
from linjax.solvers import design_gradient
from linjax.solvers._common import Composite
from linjax.solvers.problem import GLMProblem

N, P = 60, 50
TOL = 1e-12


@pytest.fixture(scope="module")
def matrix():
    """CSR with empty rows and columns, a full row (longer than any piece width) and
    ragged rows; its dense copy."""
    A = sp.random(N, P, density=0.15, format="lil", random_state=3)
    A[4, :] = 0.0
    A[:, 7] = 0.0
    A[10, :] = np.arange(1.0, P + 1.0)
    A = A.tocsr()
    return A, A.toarray()


def _vectors(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=P), rng.normal(size=(P, 3)), rng.normal(size=N), rng.normal(
        size=(N, 3))


@pytest.mark.parametrize("width", [8, 32, 128])
def test_pieces_equal_scipy(matrix, width, monkeypatch):
    A, M = matrix
    monkeypatch.setattr("linjax.designs.sparse_kernels.choose_width", lambda counts: width)
    monkeypatch.setattr("linjax.designs.sparse_kernels.BLOCK_ENTRIES", 4 * width)  # blocks
    rows = Pieces.from_compressed(A.indptr, A.indices, A.data, N)
    C = A.tocsc()
    cols = Pieces.from_compressed(C.indptr, C.indices, C.data, P)
    assert rows.index.shape[0] > 1 and rows.index.shape[2] == width
    b, B, v, V = _vectors()
    np.testing.assert_allclose(rows.product(jnp.asarray(b)), A @ b, atol=TOL)
    np.testing.assert_allclose(rows.product(jnp.asarray(B)), A @ B, atol=TOL)
    np.testing.assert_allclose(cols.product(jnp.asarray(v)), A.T @ v, atol=TOL)
    np.testing.assert_allclose(cols.product(jnp.asarray(V)), A.T @ V, atol=TOL)
    np.testing.assert_allclose(cols.product(jnp.asarray(v), squared=True),
                               (M * M).T @ v, atol=TOL)


def test_width_balances_padding_and_pieces():
    assert choose_width(np.full(100, 8)) == 8        # rows of 8: no padding at width 8
    assert choose_width(np.full(100, 1000)) == 128   # long rows: the widest pieces
    assert Pieces.from_compressed(np.zeros(4, int), np.zeros(0, int), np.zeros(0), 3) is None


def test_sparse_designs_use_pieces_and_equal_dense(matrix):
    A, M = matrix
    b, B, v, V = _vectors(1)
    coo = A.tocoo()
    from jax.experimental import sparse as jsparse

    bcoo = jsparse.BCOO((jnp.asarray(coo.data), jnp.asarray(np.column_stack(
        [coo.row, coo.col]))), shape=A.shape)
    for X in (Sparse.from_scipy(A), Sparse.from_scipy(A.tocsc()), Sparse.from_bcoo(bcoo)):
        assert X.row_pieces is not None and X.col_pieces is not None
        np.testing.assert_allclose(X @ jnp.asarray(b), M @ b, atol=TOL)
        np.testing.assert_allclose(X @ jnp.asarray(B), M @ B, atol=TOL)
        np.testing.assert_allclose(X.rmatvec(jnp.asarray(v)), M.T @ v, atol=TOL)
        np.testing.assert_allclose(X.rmatvec(jnp.asarray(V)), M.T @ V, atol=TOL)
        np.testing.assert_allclose(X.column_stds(), M.std(axis=0), atol=TOL)


def test_float32_pieces(matrix):
    A, M = matrix
    X = Sparse.from_scipy(A, dtype=np.float32)
    b, _, v, _ = _vectors(2)
    assert X.row_pieces.values.dtype == jnp.float32
    assert Sparse.from_scipy(A).astype(jnp.float32).col_pieces.values.dtype == jnp.float32
    np.testing.assert_allclose(X @ jnp.asarray(b, jnp.float32), M @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(X.rmatvec(jnp.asarray(v, jnp.float32)), M.T @ v, rtol=1e-5,
                               atol=1e-5)


def test_jit_vmap_grad_and_forward_mode(matrix):
    A, M = matrix
    X = Sparse.from_scipy(A)
    b, B, v, _ = _vectors(3)
    Mj, bj = jnp.asarray(M), jnp.asarray(b)
    rows = jax.jit(jax.vmap(lambda X, c: X @ c, (None, 0)))(X, jnp.asarray(B.T))
    np.testing.assert_allclose(rows, (M @ B).T, atol=TOL)
    cols = jax.vmap(lambda u: X.rmatvec(u))(jnp.asarray(np.stack([v, 2 * v])))
    np.testing.assert_allclose(cols, np.stack([M.T @ v, 2 * M.T @ v]), atol=TOL)

    def loss(X):
        return lambda c: jnp.sum(jnp.sin(X @ c) * jnp.asarray(v))

    np.testing.assert_allclose(jax.grad(loss(X))(bj), jax.grad(loss(Mj))(bj), atol=TOL)
    np.testing.assert_allclose(jax.hessian(loss(X))(bj), jax.hessian(loss(Mj))(bj), atol=1e-10)
    _, tangent = jax.jvp(lambda c: X @ c, (bj,), (jnp.ones(P),))
    np.testing.assert_allclose(tangent, M.sum(axis=1), atol=TOL)


def _scatter_sizes(jaxpr):
    """The sizes of the updates of every scatter-add in a jaxpr (nested ones too)."""
    sizes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scatter-add":
            sizes.append(int(np.prod(eqn.invars[2].aval.shape)))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            sizes.extend(_scatter_sizes(sub))
    return sizes


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_design_gradient_equals_autodiff_without_an_entry_scatter(matrix, fit_intercept):
    A, M = matrix
    rng = np.random.default_rng(4)
    y = (rng.random(N) < 0.4).astype(float)
    w = rng.uniform(0.5, 1.5, N)
    off = rng.normal(scale=0.1, size=N)
    fam, pen = lj.families.Binomial(), lj.penalties.L2(0.03)
    like = {"coef": jnp.zeros(P), "intercept": jnp.zeros(())}
    x = jnp.asarray(rng.normal(scale=0.2, size=P + int(fit_intercept)))

    def problem(X):
        return GLMProblem(X, jnp.asarray(y), jnp.asarray(w / w.sum()), jnp.asarray(off), fam,
                          pen, fit_intercept)

    def value_and_grad(prob, x):
        return jax.value_and_grad(design_gradient.value_fn(Composite(prob, like)))(x)

    got = value_and_grad(problem(Sparse.from_scipy(A)), x)
    dense = jax.value_and_grad(Composite(problem(jnp.asarray(M)), like).smooth_full)(x)
    np.testing.assert_allclose(got[0], dense[0], rtol=1e-14)
    np.testing.assert_allclose(got[1], dense[1], atol=TOL)
    nnz = A.nnz
    sizes = _scatter_sizes(jax.make_jaxpr(value_and_grad)(problem(Sparse.from_scipy(A)),
                                                           x).jaxpr)
    assert sizes and max(sizes) < nnz   # only the piece sums are scattered
    autodiff = jax.make_jaxpr(lambda p, x: jax.value_and_grad(
        Composite(p, like).smooth_full)(x))(problem(Sparse.from_scipy(A)), x).jaxpr
    assert max(_scatter_sizes(autodiff)) >= nnz   # what autodiff alone would do


def test_lbfgs_fit_on_sparse_equals_dense(matrix):
    A, M = matrix
    rng = np.random.default_rng(5)
    y = (rng.random(N) < 1.0 / (1.0 + np.exp(-(M @ rng.normal(size=P))))).astype(float)
    pen = lj.penalties.L2(0.05)
    solver = lj.solvers.LBFGS(tol=1e-12, max_iter=2000)
    got = lj.fit(A, y, "binomial", penalty=pen, solver=solver)
    want = lj.fit(M, y, "binomial", penalty=pen, solver=solver)
    assert int(got.status) == 0 and got.solver == "lbfgs"
    np.testing.assert_allclose(got.coef, want.coef, atol=1e-10)
    np.testing.assert_allclose(got.intercept, want.intercept, atol=1e-10)
