"""linjax.expression's numerical kernels against outside references (scipy, the row-by-row
equivalent): the shared lgamma/digamma, Benjamini-Hochberg and the gathered row stepping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linjax import expression

special = pytest.importorskip("scipy.special")
stats = pytest.importorskip("scipy.stats")


def _criterion_at_random_means(rng, Y):
    """(mu, args, log alpha, criterion value and gradient over every count) for counts Y
    (m, n) at random means, intercept + a two-group design."""
    m, n = Y.shape
    X = np.column_stack([np.ones(n), np.arange(n) % 2])
    mu = np.maximum(rng.gamma(1.0, 2.0, (m, n)), 0.5)
    args = (jnp.asarray(Y), jnp.asarray(mu), jnp.asarray(expression._pairs(X)),
            jnp.zeros(m), 0.3)
    la = jnp.asarray(rng.uniform(-5.0, 3.0, m))
    return mu, args, la, expression._value_and_grad(la, *args)


def test_lgamma_digamma_equal_scipys():
    x = np.concatenate([np.geomspace(1e-9, 1e12, 4000), np.arange(0.5, 300.0, 0.5)])
    lg, dg = (np.asarray(v) for v in jax.jit(expression._lgamma_digamma)(jnp.asarray(x)))
    ref_lg, ref_dg = special.gammaln(x), special.digamma(x)
    np.testing.assert_allclose(lg, ref_lg, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dg, ref_dg, rtol=1e-13, atol=1e-13)
    # the custom derivative of _lgamma is the digamma
    grad = jax.vmap(jax.grad(expression._lgamma))(jnp.asarray(x[::50]))
    np.testing.assert_allclose(np.asarray(grad), ref_dg[::50], rtol=1e-13, atol=1e-13)


def test_value_and_grad_equal_finite_differences():
    """The written-out derivative in log(alpha) of the Cox-Reid posterior, against a
    central difference of the value (the value itself against scipy's lgamma)."""
    rng = np.random.default_rng(3)
    m, n = 40, 9
    X = np.column_stack([np.ones(n), np.arange(n) % 2, rng.normal(size=n)])
    Y = rng.negative_binomial(3, 0.1, (m, n)).astype(float)
    mu = np.maximum(rng.gamma(2.0, 15.0, (m, n)), 0.5)
    la = rng.uniform(-6.0, 2.0, m)
    pm, prec = rng.normal(-2.0, 1.0, m), 0.7
    P = expression._pairs(X)
    args = (jnp.asarray(Y), jnp.asarray(mu), jnp.asarray(P), jnp.asarray(pm), prec)
    value, grad = (np.asarray(v) for v in expression._value_and_grad(jnp.asarray(la), *args))
    a = np.exp(la)[:, None]
    r = 1.0 / a
    ll = (special.gammaln(Y + r) - special.gammaln(r) - Y * np.log(mu + r)
          - r * np.log1p(a * mu)).sum(axis=1)
    W = mu / (1.0 + a * mu)
    cr = -0.5 * np.linalg.slogdet(np.einsum("ji,mj,jk->mik", X, W, X))[1]
    np.testing.assert_allclose(value, ll + cr - 0.5 * prec * (la - pm) ** 2, rtol=1e-11)
    h = 1e-5
    up = np.asarray(expression._log_posterior(jnp.asarray(la + h), *args))
    down = np.asarray(expression._log_posterior(jnp.asarray(la - h), *args))
    np.testing.assert_allclose(grad, (up - down) / (2 * h), rtol=1e-6, atol=1e-6)


def test_count_table_and_its_criterion():
    """The distinct counts and multiplicities equal np.unique's per gene, and the criterion
    summed over them equals the one summed over every count."""
    rng = np.random.default_rng(2)
    m, n = 30, 40
    Y = rng.negative_binomial(0.5, 0.3, (m, n)).astype(float)
    Y[0] = 0.0
    Y[1, :] = np.arange(n)  # all distinct: the widest row
    V, C = expression._count_table(Y)
    assert V.shape == C.shape == (m, n) and (C.sum(axis=1) == n).all()
    for g in range(m):
        values, counts = np.unique(Y[g], return_counts=True)
        k = values.size
        np.testing.assert_array_equal(V[g, :k], values)
        np.testing.assert_array_equal(C[g, :k], counts)
        assert (C[g, k:] == 0).all()
    mu, args, la, plain = _criterion_at_random_means(rng, Y)
    tabled = expression._value_and_grad(la, *args, (jnp.asarray(V), jnp.asarray(C)))
    for a, b in zip(plain, tabled, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-11, atol=1e-9)
    # single-cell-like counts need far fewer columns than samples
    sparse = rng.poisson(0.3, (50, 1000)).astype(float)
    assert expression._count_table(sparse)[0].shape[1] <= 16


def test_bh_equals_scipys_per_column():
    rng = np.random.default_rng(0)
    P = rng.uniform(size=(500, 4)) ** 3
    P[rng.uniform(size=P.shape) < 0.2] = np.nan
    P[:30] = 0.01  # ties
    out = expression._bh(P)
    for j in range(P.shape[1]):
        keep = ~np.isnan(P[:, j])
        np.testing.assert_allclose(out[keep, j], stats.false_discovery_control(P[keep, j]),
                                   rtol=1e-14)
        assert np.isnan(out[~keep, j]).all()


def test_line_search_steps_each_gene_as_alone():
    """_run_rows gathers a few running genes per step: stepping 3 genes at a time gives
    every gene the same iterations and estimate as stepping all of them together (and a
    scatter or gather that mixed up genes would not)."""
    rng = np.random.default_rng(1)
    m, n = 37, 8
    X = np.column_stack([np.ones(n), np.arange(n) % 2])
    Y = rng.negative_binomial(2, 0.05, (m, n)).astype(float)
    mu = np.maximum((Y @ np.linalg.pinv(X).T) @ X.T, 0.5)
    args = (jnp.asarray(np.full(m, np.log(0.3))), jnp.asarray(Y), jnp.asarray(mu),
            jnp.asarray(expression._pairs(X)), jnp.zeros(m), 0.0, np.log(1e-9),
            *map(jnp.asarray, expression._count_table(Y)))
    together = expression._line_search(*args, rows=m)
    few = expression._line_search(*args, rows=3)
    its = np.asarray(together[1])
    assert its.min() < its.max()  # genes stop at different iterations
    np.testing.assert_array_equal(its, np.asarray(few[1]))
    for i in (0, 2, 3):  # the same steps; sums over other shapes round differently
        np.testing.assert_allclose(np.asarray(together[i]), np.asarray(few[i]), rtol=1e-13)


def test_f_quantile_equals_scipys():
    """Cook's cutoff: the F(p, n - p) 99% quantile, written without scipy.stats."""
    for d1, d2 in [(2, 98), (2, 4998), (3, 5), (4, 96), (1, 1), (10, 3)]:
        np.testing.assert_allclose(expression._f_quantile(0.99, d1, d2),
                                   stats.f.ppf(0.99, d1, d2), rtol=1e-11)
    for a, b, x in [(1.0, 2.0, 0.3), (0.5, 49.0, 0.01), (5.0, 100.0, 0.05), (2.0, 3.0, 0.9)]:
        np.testing.assert_allclose(expression._betainc(a, b, x), special.betainc(a, b, x),
                                   rtol=1e-12)


def test_table_widths_pick_the_same_sums():
    """With `used` (the most distinct counts of any row) the table sums run over the first
    TABLE_WIDTHS width that holds them; the criterion equals the one over the full table
    and the one over every count."""
    rng = np.random.default_rng(4)
    m, n = 12, 300
    Y = rng.negative_binomial(1.0, 0.5, (m, n)).astype(float)  # ~10-20 distinct per gene
    Y[-1] = np.arange(n)  # one wide gene: 300 distinct counts
    V, C = expression._count_table(Y)
    assert V.shape[1] == n
    mu, args, la, plain = _criterion_at_random_means(rng, Y)
    for rows in (slice(0, m - 1), slice(0, m)):  # narrow rows only: width 16 or 64 used
        used = jnp.max(jnp.sum(jnp.asarray(C[rows]) > 0, axis=1))
        sub = (jnp.asarray(Y[rows]), jnp.asarray(mu[rows]), args[2], jnp.zeros(Y[rows].shape[0]),
               0.3)
        picked = jax.jit(lambda la, V, C, u, sub=sub: expression._value_and_grad(
            la, *sub, (V, C, u)))(la[rows], jnp.asarray(V[rows]), jnp.asarray(C[rows]), used)
        for a, b in zip(plain, picked, strict=True):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a)[rows], rtol=1e-11,
                                       atol=1e-9)
    # the flat distinct counts give the table of any rows
    values, mults, widths = expression._distinct_counts(Y)
    rows = np.array([3, 0, m - 1, 3])
    V2, C2 = expression._table_of(values, mults, widths, np.cumsum(widths) - widths, rows, n)
    np.testing.assert_array_equal(V2, V[rows])
    np.testing.assert_array_equal(C2, C[rows])
