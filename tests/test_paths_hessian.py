"""The "hessian" path solver (proximal Newton on a weighted Gram reused along the path), the
default for dense GLMs: every alpha of its path satisfies the elastic-net optimality
conditions computed here in numpy, it agrees with the residual-update ("naive") solver,
and it gives the same paths under vmap, where its Gram refresh runs as a select."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax import paths

L1_RATIO = 0.5


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n, p = 300, 12
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 2.0, size=p)
    w = rng.uniform(0.5, 2.0, n)
    off = rng.uniform(-0.2, 0.2, n)
    eta = X[:, :4] @ np.array([0.5, -0.4, 0.3, 0.2]) + 0.3 + off
    ys = {"poisson": rng.poisson(np.exp(eta)).astype(float),
          "binomial": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float),
          "gamma": rng.gamma(2.0, np.exp(eta) / 2.0)}
    return X, ys, w, off


def _d_loss_d_eta(family, y, eta):
    """d nll / d eta in numpy: Poisson and binomial (canonical) mu - y; Gamma with the log
    link 1 - y / mu."""
    if family == "poisson":
        return np.exp(eta) - y
    if family == "binomial":
        return 1 / (1 + np.exp(-eta)) - y
    return 1 - y * np.exp(-eta)


@pytest.mark.parametrize("family", ["poisson", "binomial", "gamma"])
def test_each_alpha_satisfies_the_optimality_conditions(data, family):
    """At every alpha: the weighted mean loss's gradient g (numpy) has g_j + alpha (1 - r)
    b_j + alpha r sign(b_j) = 0 on the nonzero coefficients, |g_j| <= alpha r on the zero
    ones, and a zero intercept derivative; and the path equals the naive solver's."""
    X, ys, w, off = data
    y = ys[family]
    family_ = lj.families.Gamma(link=lj.links.Log()) if family == "gamma" else family
    res = paths.path(X, y, family_, L1_RATIO, n_alphas=25, eps=1e-3, weights=w, offset=off,
                     method="hessian", max_iter=1000)   # Gamma's Fisher scoring is linear
    assert np.all(np.asarray(res.converged))
    wn = w / w.sum()
    for a, b, b0 in zip(np.asarray(res.alphas), np.asarray(res.coef),
                        np.asarray(res.intercept), strict=True):
        ge = wn * _d_loss_d_eta(family, y, X @ b + b0 + off)
        g = X.T @ ge
        on = b != 0
        stationary = g[on] + a * (1 - L1_RATIO) * b[on] + a * L1_RATIO * np.sign(b[on])
        scale = np.sqrt(wn @ X**2)
        np.testing.assert_allclose(stationary / scale[on], 0, atol=1e-6)
        assert np.all(np.abs(g[~on]) <= a * L1_RATIO + 1e-6 * scale[~on])
        assert abs(ge.sum()) < 1e-6
    naive = paths.path(X, y, family_, L1_RATIO, res.alphas, weights=w, offset=off,
                       method="naive", tol=1e-12, max_iter=1000)
    np.testing.assert_allclose(res.coef, naive.coef, atol=1e-6)
    np.testing.assert_allclose(res.intercept, naive.intercept, atol=1e-6)
    np.testing.assert_allclose(res.deviance, naive.deviance, rtol=1e-7)


def test_auto_takes_it_for_dense_glms_only():
    shape = (300, 12)
    assert paths.make_config(lj.families.Poisson(), shape).hessian
    assert paths.make_config(lj.families.Binomial(), shape).hessian
    gaussian = paths.make_config(lj.families.Gaussian(), shape)
    assert gaussian.gram and not gaussian.hessian
    assert not paths.make_config(lj.families.Poisson(), shape, method="naive").hessian
    assert not paths.make_config(lj.families.Poisson(), (300, paths.HESSIAN_MAX_FEATURES + 1)
                                 ).hessian
    assert not paths.make_config(lj.families.Poisson(), shape, design=True).hessian
    with pytest.raises(ValueError, match="method: 'hessian' needs a dense X"):
        paths.make_config(lj.families.Poisson(), shape, method="hessian", design=True)


def test_under_vmap_it_equals_separate_paths(data):
    """path_core vmapped over the weights (the Gram refresh and the warm start's cond
    become selects) gives each weight vector's own path."""
    X, ys, w, off = data
    y = ys["poisson"]
    alphas = paths.alpha_grid(X, y, "poisson", L1_RATIO, n_alphas=12, weights=w)
    W = np.stack([w, w * (np.arange(len(w)) % 3 > 0)])
    fam, Xj, yj, _, offj, pf, r = paths.path_inputs(X, y, "poisson", L1_RATIO, w, off, None,
                                                    True, pad=False)
    cfg = paths.make_config(fam, Xj.shape)
    ctl = paths.make_control(Xj.dtype)
    many = jax.jit(jax.vmap(lambda wk: paths.path_core(
        Xj, yj, wk, offj, pf, jnp.asarray(alphas), r, ctl, cfg)))(jnp.asarray(W))
    for k in range(2):
        one = paths.path(X, y, "poisson", L1_RATIO, alphas, weights=W[k], offset=off)
        np.testing.assert_allclose(many.coef[k], one.coef, atol=1e-7)
        np.testing.assert_allclose(many.intercept[k], one.intercept, atol=1e-7)
