"""Cross-validation's lockstep paths where steps are halved: the lockstep solver takes the
derivatives at the whole step for every path and again only for a path that halved its
step. On large Poisson counts with a three-point grid (big jumps between strengths), some
steps are halved; every path must still meet the elastic-net optimality conditions
(computed here in numpy) and equal `lj.path` with that fold's weights to the solver's
tolerance (not step for step: where a trial lands within rounding of the halving's
threshold, the two may halve differently, as they did before the whole-step derivatives)."""

import warnings

import numpy as np

import linjax as lj

L1_RATIO = 0.5
K = 3


def _assert_optimal(X, y, w, res):
    """Poisson (log link) elastic-net optimality conditions of each solution, in numpy."""
    wn = w / w.sum()
    scale = np.sqrt(wn @ X**2)
    for a, b, b0 in zip(np.asarray(res.alphas), np.asarray(res.coef),
                        np.asarray(res.intercept), strict=True):
        ge = wn * (np.exp(X @ b + b0) - y)
        g = X.T @ ge
        on = b != 0
        stationary = g[on] + a * (1 - L1_RATIO) * b[on] + a * L1_RATIO * np.sign(b[on])
        np.testing.assert_allclose(stationary / scale[on], 0, atol=1e-6)
        assert np.all(np.abs(g[~on]) <= a * L1_RATIO + 1e-6 * scale[~on])
        assert abs(ge.sum()) < 1e-6


def test_halved_steps_give_each_path_its_own_answer():
    rng = np.random.default_rng(5)
    n, p = 240, 6
    X = rng.normal(size=(n, p)) * 1.5
    y = rng.poisson(np.exp(0.5 + X[:, :3] @ np.array([1.2, -1.0, 0.8]))).astype(float)
    grid = lj.alpha_grid(X, y, "poisson", L1_RATIO, n_alphas=3, eps=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lj.selection.GridEdgeWarning)
        cv = lj.cv_path(X, y, "poisson", L1_RATIO, alphas=grid, folds=K, max_iter=1000)
    train, _ = lj.selection.fold_masks(K, n)
    for k in range(K + 1):
        got = cv.path if k == 0 else type(cv.path)(*(np.asarray(f)[k - 1]
                                                      for f in cv.fold_paths))
        wk = np.ones(n) if k == 0 else train[k - 1].astype(float)
        assert np.all(np.asarray(got.converged))
        _assert_optimal(X, y, wk, got)
        one = lj.path(X, y, "poisson", L1_RATIO, grid, weights=wk, max_iter=1000)
        np.testing.assert_allclose(got.coef, one.coef, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(got.intercept, one.intercept, rtol=1e-7, atol=1e-9)
