"""The blocked weighted Gram (`linjax.solvers.gram`) and Newton's mixed-precision Hessian."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax.solvers import Newton
from linjax.solvers.gram import block_rows, pair_grams, weighted_products

P = 30
N = 2 * block_rows(P) + 37  # two full row blocks and a ragged tail


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, P)) * rng.uniform(0.1, 10.0, size=P)
    return X, rng.uniform(0.0, 2.0, size=N), rng.normal(size=N)


def _reference(X, s, r, intercept):
    Z = np.column_stack([np.ones(len(X)), X]) if intercept else X
    return Z.T @ (s[:, None] * Z), r @ Z


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("single", [False, True])
def test_weighted_products_match_numpy(data, intercept, single):
    X, s, r = data
    hess, grad = jax.jit(weighted_products, static_argnums=(3, 4))(
        jnp.asarray(X), jnp.asarray(s), jnp.asarray(r), intercept, single)
    ref_h, ref_g = _reference(X, s, r, intercept)
    assert hess.dtype == jnp.float64 and grad.dtype == jnp.float64
    Z = np.abs(np.column_stack([np.ones(len(X)), X]) if intercept else X)
    size = Z.T @ (s[:, None] * Z)
    # float32 products: ~1e-7 relative to sum_i s_i |z_ij| |z_ik|; the gradient keeps its digits
    assert np.max(np.abs(np.asarray(hess) - ref_h) / size) < (1e-6 if single else 1e-14)
    np.testing.assert_allclose(np.asarray(grad), ref_g, rtol=1e-11, atol=1e-9)
    assert np.array_equal(np.asarray(hess), np.asarray(hess).T)


def test_weighted_products_under_vmap(data):
    X, s, r = data
    S = jnp.stack([jnp.asarray(s), jnp.asarray(s[::-1])])
    hess = jax.vmap(lambda w: weighted_products(jnp.asarray(X), w, None, True)[0])(S)
    for i, w in enumerate((s, s[::-1])):
        np.testing.assert_allclose(np.asarray(hess[i]), _reference(X, w, r, True)[0],
                                   rtol=1e-12)


@pytest.mark.parametrize("single", [False, True])
def test_pair_grams_match_einsum(data, single):
    X, s, _ = data
    C = np.stack([s, s**2, np.cos(s)], axis=1)
    got = np.asarray(pair_grams(jnp.asarray(X), jnp.asarray(C), True, single))
    Z = np.column_stack([np.ones(len(X)), X])
    ref = np.einsum("ni,nj,nc->cij", Z, Z, C)
    size = np.einsum("ni,nj,nc->cij", np.abs(Z), np.abs(Z), np.abs(C))
    assert np.max(np.abs(got - ref) / size) < (1e-6 if single else 1e-14)
    assert np.array_equal(got, got.transpose(0, 2, 1))


@pytest.fixture(scope="module")
def logistic(data):
    X, _, _ = data
    rng = np.random.default_rng(11)
    eta = 0.3 + X @ (rng.normal(size=P) / (4 * np.abs(X).mean(0) * P ** 0.5))
    y = (rng.uniform(size=N) < 1 / (1 + np.exp(-eta))).astype(float)
    return X, y


def test_mixed_precision_newton_reaches_the_full_precision_optimum(logistic):
    X, y = logistic
    full = lj.fit(X, y, family="binomial", solver=Newton(precision="full"))
    mixed = lj.fit(X, y, family="binomial", solver=Newton(precision="mixed"))
    assert int(mixed.status) == 0 and int(full.status) == 0
    np.testing.assert_allclose(np.asarray(mixed.coef), np.asarray(full.coef), rtol=1e-8,
                               atol=1e-10)
    assert int(mixed.n_iter) <= int(full.n_iter) + 1
    assert bool(mixed.info.single)  # well conditioned: float32 curvature throughout


def test_mixed_precision_falls_back_on_an_ill_conditioned_design(logistic):
    X, y = logistic
    rng = np.random.default_rng(5)
    # two columns that differ by 1e-5 of their size: cond(H) ~ 1e10, beyond float32
    X = np.column_stack([X, X[:, 0] + 1e-5 * rng.normal(size=N) * X[:, 0].std()])
    full = lj.fit(X, y, family="binomial", solver=Newton(precision="full"))
    mixed = lj.fit(X, y, family="binomial", solver=Newton(precision="mixed"))
    assert int(mixed.status) == 0
    assert not bool(mixed.info.single)
    assert abs(float(mixed.objective) - float(full.objective)) <= 1e-12
    np.testing.assert_allclose(np.asarray(mixed.coef), np.asarray(full.coef), rtol=1e-5,
                               atol=1e-5)


def test_precision_auto_rule_and_bad_value():
    def problem(n, p, dtype=jnp.float64):
        X = jax.ShapeDtypeStruct((n, p), dtype)
        return types.SimpleNamespace(X=X, family=lj.families.Poisson(), multiclass=False,
                                     dense_rows=True)
    assert Newton()._mixed(problem(200_000, 100))  # 2e9 multiply-adds per Hessian
    assert not Newton()._mixed(problem(1_000, 10))
    assert not Newton()._mixed(problem(200_000, 100, jnp.float32))
    assert not Newton(precision="full")._mixed(problem(200_000, 100))
    with pytest.raises(ValueError, match="precision"):
        Newton(precision="half")._mixed(problem(10, 2))


def test_newton_result_carries_no_per_observation_cache(logistic):
    """Newton carries eta between steps; the result keeps only its scalar diagnostics."""
    X, y = logistic
    res = lj.fit(X, y, family="binomial", solver=Newton())
    assert res.info.eta is None
    sizes = [np.size(leaf) for leaf in jax.tree_util.tree_leaves(res.info)]
    assert max(sizes) == 1
    # the objective it reports is the objective at the returned parameters
    np.testing.assert_allclose(float(res.objective),
                               float(lj.objective(res.params, X, y, lj.families.Binomial())),
                               rtol=1e-14)
