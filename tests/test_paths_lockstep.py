"""Cross-validation's K + 1 paths in lockstep (`paths_lockstep`, what `cv_path` runs for dense
GLMs): every fold's path satisfies the elastic-net optimality conditions of its own training
weights, computed here in numpy; it is the path `lj.path` gives for those weights alone
(solver by solver, the same steps); and vmapped over problems (`cv_path_batch`'s
batch_size) it gives the same answers."""

import warnings

import numpy as np
import pytest

import linjax as lj
from linjax.scale.batch_selection import cv_path_batch

L1_RATIO = 0.5
K = 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n, p = 240, 8
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 2.0, size=p)
    w = rng.uniform(0.5, 2.0, n)
    off = rng.uniform(-0.2, 0.2, n)
    eta = X[:, :3] @ np.array([0.5, -0.4, 0.3]) + 0.3 + off
    ys = {"poisson": rng.poisson(np.exp(eta)).astype(float),
          "gamma": rng.gamma(2.0, np.exp(eta) / 2.0)}
    return X, ys, w, off


def _family(name):
    return lj.families.Gamma(link=lj.links.Log()) if name == "gamma" else name


def _d_loss_d_eta(family, y, eta):
    """d nll / d eta in numpy (Poisson: mu - y; Gamma, log link: 1 - y / mu)."""
    if family == "poisson":
        return np.exp(eta) - y
    return 1 - y * np.exp(-eta)


def _check_optimal(X, y, family, w, off, pf, res, fit_intercept):
    wn = w / w.sum()
    scale = np.sqrt(wn @ X**2)
    for a, b, b0 in zip(np.asarray(res.alphas), np.asarray(res.coef),
                        np.asarray(res.intercept), strict=True):
        ge = wn * _d_loss_d_eta(family, y, X @ b + b0 + off)
        g = X.T @ ge
        on = (b != 0) | (pf == 0)
        stationary = (g + a * (1 - L1_RATIO) * pf * b + a * L1_RATIO * pf * np.sign(b))[on]
        np.testing.assert_allclose(stationary / scale[on], 0, atol=1e-6)
        assert np.all(np.abs(g[~on]) <= a * L1_RATIO * pf[~on] + 1e-6 * scale[~on])
        if fit_intercept:
            assert abs(ge.sum()) < 1e-6


@pytest.mark.parametrize("family", ["poisson", "gamma"])
def test_every_fold_path_is_optimal_and_equals_its_own_path(data, family):
    X, ys, w, off = data
    y = ys[family]
    pf = np.ones(X.shape[1])
    pf[0] = 0.0                      # one unpenalized feature
    fit_intercept = family != "gamma"
    fam = _family(family)
    grid = lj.alpha_grid(X, y, fam, L1_RATIO, n_alphas=12, weights=w, offset=off,
                         penalty_weights=pf, fit_intercept=fit_intercept)
    # one row of strengths per path (full data, then each fold), as LogisticRegressionCV's C
    alphas = grid[None, :] * np.array([1.0, 0.9, 1.1, 1.2])[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lj.selection.GridEdgeWarning)
        cv = lj.cv_path(X, y, fam, L1_RATIO, alphas=alphas, folds=K, weights=w, offset=off,
                        penalty_weights=pf, fit_intercept=fit_intercept, max_iter=1000)
    train, _ = lj.selection.fold_masks(K, len(y))
    for k in range(K + 1):
        got = cv.path if k == 0 else type(cv.path)(*(np.asarray(f)[k - 1]
                                                      for f in cv.fold_paths))
        wk = w if k == 0 else w * train[k - 1]
        assert np.all(np.asarray(got.converged))
        _check_optimal(X, y, family, wk, off, pf, got, fit_intercept)
        one = lj.path(X, y, fam, L1_RATIO, alphas[k], weights=wk, offset=off,
                      penalty_weights=pf, fit_intercept=fit_intercept, max_iter=1000)
        np.testing.assert_allclose(got.coef, one.coef, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.intercept, one.intercept, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.deviance, one.deviance, rtol=1e-10)
        np.testing.assert_array_equal(got.status, one.status)
        np.testing.assert_array_equal(got.n_iter, one.n_iter)


def test_vmapped_over_problems_it_gives_the_same_answers(data):
    """cv_path_batch with batch_size 2 vmaps the lockstep paths (their loops then run to the
    slowest problem's count, with selects): the same paths and scores as one at a time."""
    X, ys, w, off = data
    rng = np.random.default_rng(3)
    Y = np.stack([ys["poisson"], rng.permutation(ys["poisson"])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lj.selection.GridEdgeWarning)
        one = cv_path_batch(X, Y, "poisson", L1_RATIO, n_alphas=12, folds=K, weights=w)
        two = cv_path_batch(X, Y, "poisson", L1_RATIO, n_alphas=12, folds=K, weights=w,
                            batch_size=2)
    np.testing.assert_allclose(two.path.coef, one.path.coef, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(two.fold_paths.coef, one.fold_paths.coef, rtol=1e-9,
                               atol=1e-10)
    np.testing.assert_allclose(two.scores, one.scores, rtol=1e-9)
