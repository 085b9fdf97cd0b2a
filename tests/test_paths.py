"""Regularization paths vs scikit-learn (Gaussian) and glum (Binomial, Poisson, Gamma).

References: scikit-learn's `enet_path` / `_alpha_grid` on centred data (coefficients to
1e-5 at tol=1e-14; active sets equal exactly), glum's `GeneralizedLinearRegressor` path
(alpha_search with the same alphas, gradient_tol=1e-12) with sample weights and an offset,
and glum single fits on either side of linjax's alpha_max. Few shapes, so JAX compiles a
handful of functions.
"""

import warnings

import numpy as np
import pytest

import linjax as lj
from linjax import paths

sklearn_cd = pytest.importorskip("sklearn.linear_model._coordinate_descent")
glum = pytest.importorskip("glum")
sk_lm = pytest.importorskip("sklearn.linear_model")

N_ALPHAS = 30


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(0)
    n, p = 100, 20
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 2.0, size=p)
    y = X[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3]) + rng.normal(size=n) + 3.0
    return X, y


@pytest.fixture(scope="module")
def glm_data():
    rng = np.random.default_rng(1)
    n, p = 200, 15
    X = rng.normal(size=(n, p))
    w = rng.uniform(0.5, 2.0, n)
    off = rng.uniform(-0.2, 0.2, n)
    eta = X[:, :4] @ np.array([0.8, -0.6, 0.5, 0.3]) + 0.2 + off
    ys = {"binomial": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float),
          "poisson": rng.poisson(np.exp(eta)).astype(float),
          "gamma": rng.gamma(2.0, np.exp(eta) / 2.0)}
    return X, ys, w, off


def _sk_path(X, y, l1_ratio, alphas):
    Xc, yc = X - X.mean(0), y - y.mean()
    _, coefs, _ = sklearn_cd.enet_path(Xc, yc, l1_ratio=l1_ratio, alphas=alphas, tol=1e-14,
                                       max_iter=100_000)
    return coefs.T


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_gaussian_path_matches_sklearn(gaussian, l1_ratio):
    X, y = gaussian
    res = paths.path(X, y, l1_ratio=l1_ratio, n_alphas=N_ALPHAS, eps=1e-3)
    alphas = np.asarray(res.alphas)
    sk_alphas = sklearn_cd._alpha_grid(X, y, l1_ratio=l1_ratio, n_alphas=N_ALPHAS, eps=1e-3)
    np.testing.assert_allclose(alphas, sk_alphas, rtol=1e-10)
    ref = _sk_path(X, y, l1_ratio, alphas)
    coef = np.asarray(res.coef)
    np.testing.assert_allclose(coef, ref, atol=1e-5)
    np.testing.assert_array_equal(coef != 0, ref != 0)
    np.testing.assert_allclose(res.intercept, y.mean() - X.mean(0) @ ref.T, atol=1e-5)
    assert np.all(np.asarray(res.status) == 0) and bool(np.all(res.converged))
    np.testing.assert_array_equal(res.df, (ref != 0).sum(1))
    assert res.df[0] == 0 and res.df[-1] > 0
    # deviance: mean squared residual at each alpha; null deviance: the variance of y
    resid = y[None, :] - (X @ ref.T + np.asarray(res.intercept)).T
    np.testing.assert_allclose(res.deviance, (resid**2).mean(1), rtol=1e-6)
    np.testing.assert_allclose(res.null_deviance, y.var(), rtol=1e-10)
    # the naive (residual-update) solver gives the same path
    naive = paths.path(X, y, l1_ratio=l1_ratio, alphas=alphas, method="naive")
    np.testing.assert_allclose(naive.coef, ref, atol=1e-5)


def test_secant_warm_start_exact_on_linear_segments():
    """The covariance solver starts each alpha from the previous two solutions extrapolated
    linearly in alpha: on a stretch where the active set and signs do not change the lasso
    solution is linear in alpha, so one sweep confirms it; where a coefficient leaves the
    active set (x2 = x0 + x1 + noise enters, drops out, re-enters with the other sign) the
    extrapolation is cut at zero, and the path still equals scikit-learn's."""
    rng = np.random.default_rng(0)
    n, p = 200, 6
    X = rng.normal(size=(n, p))
    X[:, 2] = X[:, 0] + X[:, 1] + 0.3 * X[:, 2]
    y = X[:, 0] + X[:, 1] - 0.8 * X[:, 2] + rng.normal(size=n)
    res = paths.path(X, y, n_alphas=60, eps=1e-3, tol=1e-12, method="covariance")
    ref = _sk_path(X, y, 1.0, np.asarray(res.alphas))
    support = np.sign(ref)
    assert np.any((support[:-1, 2] != 0) & (support[1:, 2] == 0))   # x2 enters, then leaves
    np.testing.assert_allclose(res.coef, ref, atol=1e-9)
    assert np.all(np.asarray(res.status) == 0)
    stable = np.flatnonzero(np.all(support[2:] == support[1:-1], 1)
                            & np.all(support[1:-1] == support[:-2], 1)
                            & np.any(support[2:] != 0, 1)) + 2
    assert stable.size >= 20
    np.testing.assert_array_equal(np.asarray(res.n_iter)[stable], 1)


def test_wide_lasso_path_matches_sklearn():
    """p > n: both solvers (Gram and residual updates), strong rules and KKT checks."""
    rng = np.random.default_rng(2)
    n, p = 40, 120
    X = rng.normal(size=(n, p))
    y = X[:, :3] @ np.array([2.0, -1.5, 1.0]) + 0.3 * rng.normal(size=n)
    # auto: a p x p Gram is still the faster tool here (p <= GRAM_MAX_FEATURES)
    assert paths.make_config(lj.families.Gaussian(), X.shape).gram
    assert not paths.make_config(lj.families.Gaussian(), X.shape, method="naive").gram
    res = paths.path(X, y, n_alphas=N_ALPHAS, eps=1e-2)
    ref = _sk_path(X, y, 1.0, np.asarray(res.alphas))
    for method in ("auto", "naive"):
        if method == "naive":
            res = paths.path(X, y, alphas=res.alphas, method="naive")
        np.testing.assert_allclose(res.coef, ref, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(res.coef) != 0, ref != 0)
        assert np.all(np.asarray(res.status) == 0)


@pytest.mark.parametrize("method", ["naive", "covariance"])
def test_wide_lasso_near_interpolation_converges(method):
    """n < p down to eps = 1e-3: the smallest alphas nearly interpolate and plain cyclic
    CD needs thousands of sweeps; every alpha must still converge, and the objective at
    the smallest alpha must match a tightly converged scikit-learn Lasso to 1e-9."""
    rng = np.random.default_rng(6)
    n, p = 30, 60
    X = rng.normal(size=(n, p))
    beta = np.zeros(p)
    beta[:8] = rng.normal(size=8)
    y = X @ beta + rng.normal(size=n)
    res = paths.path(X, y, n_alphas=40, eps=1e-3, method=method)
    assert np.all(np.asarray(res.status) == 0)
    alpha = float(res.alphas[-1])
    ref = sk_lm.Lasso(alpha=alpha, tol=1e-12, max_iter=10**6).fit(X, y)

    def objective(coef, b0):
        return 0.5 * np.mean((y - X @ coef - b0) ** 2) + alpha * np.abs(coef).sum()

    f = objective(np.asarray(res.coef[-1]), float(res.intercept[-1]))
    f_ref = objective(ref.coef_, ref.intercept_)
    assert f <= f_ref * (1 + 1e-9)
    assert f >= f_ref * (1 - 1e-9)
    # and at every alpha the KKT conditions hold to the solver's tolerance
    Xc = X - X.mean(0)
    for k in range(len(res.alphas)):
        coef = np.asarray(res.coef[k])
        g = Xc.T @ (Xc @ coef - (y - y.mean())) / n
        a = float(res.alphas[k])
        nz = coef != 0
        np.testing.assert_allclose(g[nz], -a * np.sign(coef[nz]), atol=1e-7)
        assert np.all(np.abs(g[~nz]) <= a + 1e-7)


@pytest.mark.parametrize("method", ["covariance", "naive"])
def test_path_core_under_jit_and_vmap(gaussian, method):
    """path_core vmapped over weights and alphas equals separate paths (the Anderson
    steps, index-list caching and KKT rounds all batch)."""
    import jax
    import jax.numpy as jnp

    X, y = gaussian
    n, p = X.shape
    rng = np.random.default_rng(8)
    W = np.stack([np.ones(n), rng.uniform(0.5, 2.0, n)])
    alphas = paths.alpha_grid(X, y, n_alphas=15, eps=1e-3)
    A = np.stack([alphas, 0.9 * alphas])
    cfg = paths.make_config(lj.families.Gaussian(), X.shape, method=method)
    ctl = paths.make_control(jnp.float64)

    @jax.jit
    def batched(W, A):
        return jax.vmap(lambda w, a: paths.path_core(
            jnp.asarray(X), jnp.asarray(y), w, jnp.zeros(n), jnp.ones(p), a,
            jnp.asarray(1.0), ctl, cfg))(W, A)

    res = batched(jnp.asarray(W), jnp.asarray(A))
    for k in range(2):
        one = paths.path(X, y, alphas=A[k], weights=W[k], method=method)
        # to the solver's tolerance (1e-8): batched reductions round differently, and a
        # last-bit change can flip an Anderson acceptance and so the last sweep
        np.testing.assert_allclose(res.coef[k], one.coef, atol=1e-8)
        np.testing.assert_array_equal(res.status[k], one.status)


def _glum_path(family, X, y, w, off, alphas, l1_ratio, P1="identity"):
    model = glum.GeneralizedLinearRegressor(
        family=family, alpha_search=True, alphas=alphas, l1_ratio=l1_ratio, P1=P1,
        gradient_tol=1e-12, step_size_tol=1e-14, max_iter=10_000)
    with _quiet():
        model.fit(X, y, sample_weight=w, offset=off)
    return model.coef_path_, np.asarray(model.intercept_path_)


class _quiet(warnings.catch_warnings):
    """Silence glum's warnings (e.g. about the gradient tolerance)."""

    def __enter__(self):
        out = super().__enter__()
        warnings.simplefilter("ignore")
        return out


@pytest.mark.parametrize("family", ["binomial", "poisson"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_glm_path_matches_glum(glm_data, family, l1_ratio):
    X, ys, w, off = glm_data
    y = ys[family]
    res = paths.path(X, y, family, l1_ratio=l1_ratio, n_alphas=N_ALPHAS, eps=1e-2, weights=w,
                     offset=off)
    assert np.all(np.asarray(res.status) == 0)
    ref, ref_b0 = _glum_path(family, X, y, w, off, np.asarray(res.alphas), l1_ratio)
    coef = np.asarray(res.coef)
    np.testing.assert_allclose(coef, ref, atol=1e-6)
    np.testing.assert_array_equal(coef != 0, ref != 0)
    np.testing.assert_allclose(res.intercept, ref_b0, atol=1e-6)
    # per-alpha deviance vs a direct computation from glum's coefficients
    fam = lj.families.get_family(family)
    mu = fam.link.inverse(X @ ref.T + ref_b0 + off[:, None]).T
    dev = (w * np.asarray(fam.unit_deviance(y[None, :], mu))).sum(1) / w.sum()
    np.testing.assert_allclose(res.deviance, dev, rtol=1e-6)


def test_penalty_weights_match_glum(glm_data):
    """Unpenalized features (factor 0) enter the null fit and alpha_max; factors scale."""
    X, ys, w, off = glm_data
    y = ys["poisson"]
    pf = np.ones(X.shape[1])
    pf[:2] = 0.0
    pf[5] = 2.0
    a_max = float(paths.alpha_max(X, y, "poisson", weights=w, offset=off, penalty_weights=pf))
    # start just below alpha_max (at alpha_max itself the entering feature is a tie)
    alphas = 0.999 * np.geomspace(a_max, 1e-2 * a_max, N_ALPHAS)
    res = paths.path(X, y, "poisson", alphas=alphas, weights=w, offset=off, penalty_weights=pf)
    ref, _ = _glum_path("poisson", X, y, w, off, np.asarray(res.alphas), 1.0, P1=pf)
    np.testing.assert_allclose(res.coef, ref, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(res.coef) != 0, ref != 0)
    assert np.all(np.asarray(res.coef)[:, :2] != 0)          # unpenalized: always in
    assert np.sum(np.asarray(res.coef)[0, 2:] != 0) == 1     # just below alpha_max: one


@pytest.mark.parametrize("family,with_pf", [("binomial", False), ("poisson", True),
                                            ("gamma", False)])
def test_alpha_max_is_the_threshold(glm_data, family, with_pf):
    """glum's own fits: all penalized coefficients zero just above alpha_max, not below."""
    X, ys, w, off = glm_data
    y = ys[family]
    fam = lj.families.Gamma(link=lj.links.Log()) if family == "gamma" else family
    pf = np.ones(X.shape[1])
    if with_pf:
        pf[:2] = 0.0
    a = float(paths.alpha_max(X, y, fam, 1.0, weights=w, offset=off,
                              penalty_weights=pf if with_pf else None))
    for scale, zero in ((1.001, True), (0.999, False)):
        model = glum.GeneralizedLinearRegressor(
            family=family, link="log" if family == "gamma" else "auto", alpha=a * scale,
            l1_ratio=1.0, P1=pf, gradient_tol=1e-12)
        with _quiet():
            model.fit(X, y, sample_weight=w, offset=off)
        assert np.all(model.coef_[pf > 0] == 0) == zero


def test_alpha_max_gaussian_closed_form(gaussian):
    X, y = gaussian
    Xc = X - X.mean(0)
    expected = np.max(np.abs(Xc.T @ (y - y.mean()))) / len(y)
    np.testing.assert_allclose(paths.alpha_max(X, y), expected, rtol=1e-12)
    np.testing.assert_allclose(paths.alpha_max(X, y, l1_ratio=0.5), 2 * expected, rtol=1e-12)
    assert np.isinf(float(paths.alpha_max(X, y, l1_ratio=0.0)))
    no_int = np.max(np.abs(X.T @ y)) / len(y)
    np.testing.assert_allclose(paths.alpha_max(X, y, fit_intercept=False), no_int, rtol=1e-12)


def test_status_reports_max_iter(gaussian):
    X, y = gaussian
    res = paths.path(X, y, n_alphas=N_ALPHAS, max_sweeps=1)
    assert np.any(np.asarray(res.status) == int(lj.solvers.Status.MAX_ITER))
    assert not bool(np.all(res.converged))


def test_bad_input(gaussian):
    X, y = gaussian
    with pytest.raises(ValueError, match="decreasing"):
        paths.path(X, y, alphas=[0.1, 0.2])
    with pytest.raises(ValueError, match="penalty_weights"):
        paths.path(X, y, alphas=[0.2, 0.1], penalty_weights=-np.ones(X.shape[1]))
    with pytest.raises(ValueError, match="l1_ratio"):
        paths.path(X, y, l1_ratio=1.5)
    with pytest.raises(ValueError, match="method"):
        paths.path(X, y, method="lars")
    with pytest.raises(ValueError, match="non-finite"):
        paths.path(np.where(X > 2, np.nan, X), y)


@pytest.mark.parametrize("n, p, rows", [(1000, 7, 96), (257, 600, 64), (50, 513, None),
                                        (3000, 300, None)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_pass_centred_moments(n, p, rows, dtype):
    """The one-pass moments (row blocks shifted by a sample mean, upper block triangle of
    [X - s, z - s_z, 1]' W [...]) equal the two-pass ones from numpy: G = Xc' W Xc,
    c = Xc' W zc, the means and syy, for rows not a multiple of the block (the tail block),
    p not a multiple of the column block, zero and uneven weights, sorted rows (a shift
    far from the mean if taken from the first rows), float32, without an intercept; G
    exactly symmetric; under jit and vmap over the weights."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(p)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, p) + 10.0
    X[:, 0] = np.sort(X[:, 0]) * 50.0
    X = X.astype(dtype)
    z = (X.astype(float) @ rng.normal(size=p) / p + 3.0 + rng.normal(size=n)).astype(dtype)
    W = rng.uniform(0.0, 2.0, size=(2, n))
    W[:, ::7] = 0.0
    W = (W / W.sum(1, keepdims=True)).astype(dtype)
    tol = 1e-12 if dtype == "float64" else 2e-5
    Xd, zd = X.astype(float), z.astype(float)

    for intercept in (True, False):
        def moments(w, intercept=intercept):
            return paths.centred_moments(jnp.asarray(X), jnp.asarray(z), w, intercept, rows)

        got = [np.asarray(a) for a in jax.jit(jax.vmap(moments))(jnp.asarray(W))]
        one = [np.asarray(a) for a in jax.jit(moments)(jnp.asarray(W[1]))]
        assert got[0].dtype == np.dtype(dtype)
        for k in range(2):
            w = W[k].astype(float)
            xm = w @ Xd / w.sum() if intercept else np.zeros(p)
            zm = w @ zd / w.sum() if intercept else 0.0
            Xc, zc = Xd - xm, zd - zm
            G = Xc.T @ (w[:, None] * Xc)
            scale = np.sqrt(np.outer(np.diag(G), np.diag(G)))
            np.testing.assert_array_less(np.abs(got[0][k] - G), tol * scale + 1e-300)
            np.testing.assert_array_equal(got[0][k], got[0][k].T)
            syy = w @ zc**2
            np.testing.assert_array_less(np.abs(got[1][k] - Xc.T @ (w * zc)),
                                         tol * np.sqrt(np.diag(G) * syy) + 1e-300)
            xs = np.sqrt(np.diag(G)) + np.abs(xm)
            np.testing.assert_array_less(np.abs(got[2][k] - xm), tol * xs + 1e-300)
            assert abs(got[3][k] - zm) <= tol * (np.sqrt(syy) + abs(zm))
            assert abs(got[4][k] - syy) <= tol * syy
        for a, b in zip(one, got, strict=True):
            assert np.all(np.abs(a - b[1]) <= tol * np.abs(b[1]).max())
    assert len(paths._column_blocks(p + 2)) == max(1, round((p + 2) / paths.GRAM_COLUMN_BLOCK))


def test_deviance_from_moments_matches_residuals():
    """The covariance solver's deviance (syy - 2 c'b + b'G b) equals the residual one along
    the whole path, including near-exact fits where the formula falls back to residuals."""
    rng = np.random.default_rng(11)
    n, p = 80, 30
    X = rng.normal(size=(n, p)) + 5.0
    for noise in (1.0, 1e-6):
        y = X[:, :3] @ np.array([2.0, -1.0, 0.5]) + noise * rng.normal(size=n) + 7.0
        w = rng.uniform(0.5, 2.0, n)
        res = paths.path(X, y, n_alphas=40, eps=1e-6, weights=w, method="covariance")
        coef, b0 = np.asarray(res.coef), np.asarray(res.intercept)
        resid = y[None, :] - (X @ coef.T).T - b0[:, None]
        ref = (w * resid**2).sum(1) / w.sum()
        np.testing.assert_allclose(res.deviance, ref, rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(res.null_deviance, np.cov(y, aweights=w, bias=True),
                                   rtol=1e-10)
