"""LeastSquares' guarded normal-equations (Cholesky) path: agreement with QR-based references,
the fallback to QR on ill-conditioned or rank-deficient designs, jit / vmap / grad, float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax.solvers import LeastSquares, Status

RNG = np.random.default_rng(11)
N, P = 400, 6


def _data(rng=RNG, n=N, p=P):
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 20, size=p) + rng.normal(size=p) * 10
    y = X @ rng.normal(size=p) + 3.0 + rng.normal(size=n)
    w = rng.uniform(0.2, 3.0, size=n)
    return X, y, w


def _coefs(res):
    return np.r_[float(res.params["intercept"]), np.asarray(res.params["coef"])]


def test_weighted_ols_takes_the_normal_path_and_matches_numpy_and_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    X, y, w = _data()
    res = lj.fit(X, y, weights=w)
    assert bool(res.info.normal) and int(res.info.rank) == P
    assert int(res.status) == Status.CONVERGED
    Xc = np.column_stack([np.ones(N), X])
    sw = np.sqrt(w)
    ref = np.linalg.lstsq(sw[:, None] * Xc, sw * y, rcond=None)[0]
    np.testing.assert_allclose(_coefs(res), ref, rtol=1e-10, atol=1e-12)
    wls = sm.WLS(y, Xc, weights=w).fit().params
    np.testing.assert_allclose(_coefs(res), wls, rtol=1e-10, atol=1e-12)
    qr = lj.fit(X, y, weights=w, solver=LeastSquares(method="qr"))
    assert not bool(qr.info.normal)
    np.testing.assert_allclose(_coefs(res), _coefs(qr), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(float(res.objective), float(qr.objective), rtol=1e-13)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_weighted_ridge_matches_the_closed_form(fit_intercept):
    X, y, w = _data()
    f = np.array([1.0, 0.5, 2.0, 0.0, 1.0, 3.0])   # per-coefficient factors, one unpenalized
    alpha = 0.3
    res = lj.fit(X, y, weights=w, penalty=lj.penalties.L2(alpha=alpha, weights=f),
                 fit_intercept=fit_intercept)
    assert bool(res.info.normal) and int(res.info.rank) == P
    wn = w / w.sum()
    xm, ym = (wn @ X, wn @ y) if fit_intercept else (np.zeros(P), 0.0)
    Xc, yc = X - xm, y - ym
    coef = np.linalg.solve(Xc.T @ (wn[:, None] * Xc) + alpha * np.diag(f), Xc.T @ (wn * yc))
    np.testing.assert_allclose(np.asarray(res.params["coef"]), coef, rtol=1e-10, atol=1e-12)
    if fit_intercept:
        np.testing.assert_allclose(float(res.params["intercept"]), ym - xm @ coef, rtol=1e-10)
    qr = lj.fit(X, y, weights=w, penalty=lj.penalties.L2(alpha=alpha, weights=f),
                fit_intercept=fit_intercept, solver=LeastSquares(method="qr"))
    np.testing.assert_allclose(np.asarray(res.params["coef"]), np.asarray(qr.params["coef"]),
                               rtol=1e-10, atol=1e-12)


def _exact_digits(X, y, res):
    import mpmath
    with mpmath.workdps(60):
        A = mpmath.matrix([[1] + [mpmath.mpf(float(v)) for v in row] for row in X])
        b = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
        beta = mpmath.lu_solve(A.T * A, A.T * b)
        got = [mpmath.mpf(float(g)) for g in _coefs(res)]
        return min(float(-mpmath.log10(abs(g - e) / abs(e))) if g != e else 17.0
                   for g, e in zip(got, beta, strict=True))


def test_ill_conditioned_design_falls_back_to_qr_and_keeps_its_accuracy():
    """A degree-8 polynomial on [1, 2] (scaled condition ~1e9, Gram ~1e18): the normal
    equations would lose every digit, so the guard must hand it to QR (with refinement)."""
    x = np.linspace(1.0, 2.0, 200)
    X = np.column_stack([x**j for j in range(1, 9)])
    y = np.sin(3 * x) + np.random.default_rng(0).normal(size=200) * 0.1
    res = lj.fit(X, y)   # auto: n >= p, so the normal path is tried first
    assert not bool(res.info.normal)
    assert int(res.info.rank) == 8 and int(res.status) == Status.CONVERGED
    assert _exact_digits(X, y, res) >= 7
    forced = lj.fit(X, y, solver=LeastSquares(method="cholesky"))
    assert not bool(forced.info.normal)
    np.testing.assert_array_equal(_coefs(forced), _coefs(res))


def test_well_conditioned_design_reaches_near_full_precision():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4))
    y = X @ [1.0, -2.0, 0.5, 3.0] + rng.normal(size=60)
    res = lj.fit(X, y)
    assert bool(res.info.normal)
    assert _exact_digits(X, y, res) >= 12


def test_large_offsets_lose_digits_to_centring_so_qr_answers():
    """A column of 1e7 + noise: centring loses ~7 digits, which the normal path cannot
    recover; the guard sends it to QR, whose extra-precise refinement does."""
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.normal(size=80), 1e7 + rng.normal(size=80)])
    y = X[:, 0] + 1e-3 * X[:, 1] + rng.normal(size=80)
    res = lj.fit(X, y)
    assert not bool(res.info.normal)
    assert _exact_digits(X, y, res) >= 9


@pytest.mark.parametrize("extra", ["constant", "duplicate"])
def test_rank_deficient_design_falls_back_and_reports_rank(extra):
    X, y, _ = _data()
    col = np.full(N, 2.5) if extra == "constant" else X[:, 2]
    Xd = np.column_stack([X, col])
    res = lj.fit(Xd, y)
    assert not bool(res.info.normal)
    assert int(res.info.rank) == P and int(res.status) == Status.SINGULAR
    Xc = Xd - Xd.mean(0)
    np.testing.assert_allclose(np.asarray(res.params["coef"]),
                               np.linalg.pinv(Xc) @ (y - y.mean()), rtol=1e-8, atol=1e-10)


def test_auto_uses_qr_when_n_is_below_p():
    """Ridge with fewer rows than columns: "auto" goes straight to QR of the augmented
    design; "cholesky" still factors the (regularized, well-conditioned) Gram."""
    X, y, _ = _data(n=5, p=P)
    pen = lj.penalties.L2(alpha=1.0)
    res = lj.fit(X, y, penalty=pen)
    assert not bool(res.info.normal) and int(res.info.rank) == P
    forced = lj.fit(X, y, penalty=pen, solver=LeastSquares(method="cholesky"))
    assert bool(forced.info.normal)
    np.testing.assert_allclose(_coefs(forced), _coefs(res), rtol=1e-10)


def test_unknown_method_is_refused():
    X, y, _ = _data()
    with pytest.raises(ValueError, match="method"):
        lj.fit(X, y, solver=LeastSquares(method="lu"))


def test_jit_vmap_and_grad_through_the_normal_path():
    X, y, w = _data()
    Ys = np.stack([y, 2 * y - 1, -y])

    @jax.jit
    def coef(y, w):
        return lj.fit(X, y, weights=w).params["coef"]

    batched = jax.vmap(coef, in_axes=(0, None))(jnp.asarray(Ys), jnp.asarray(w))
    for b, yy in zip(batched, Ys, strict=True):
        ref = lj.fit(X, yy, weights=w, solver=LeastSquares(method="qr")).params["coef"]
        np.testing.assert_allclose(np.asarray(b), np.asarray(ref), rtol=1e-10)

    def loss(alpha):
        res = lj.fit(X, y, weights=w, penalty=lj.penalties.L2(alpha=alpha))
        return res.params["coef"][1]

    g = jax.grad(loss)(0.2)
    h = 1e-5
    fd = (loss(0.2 + h) - loss(0.2 - h)) / (2 * h)
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-5)


def test_float32_normal_path_agrees_with_float64():
    X, y, w = _data()
    X = (X - X.mean(0)) / X.std(0)    # float32 keeps the normal path for modest conditioning
    ref = lj.fit(X, y, weights=w)
    with jax.enable_x64(False):
        res = lj.fit(X.astype(np.float32), y.astype(np.float32), weights=w.astype(np.float32))
        assert res.params["coef"].dtype == jnp.float32
        assert bool(res.info.normal) and bool(res.converged)
    np.testing.assert_allclose(_coefs(res), _coefs(ref), rtol=1e-4, atol=1e-4)
