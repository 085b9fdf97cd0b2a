"""Cross-validation of paths vs scikit-learn (same folds), compile-once, AIC/BIC.

References: scikit-learn's LassoCV / ElasticNetCV / LogisticRegressionCV with the same
KFold / StratifiedKFold splits (tight tolerances): the chosen alpha (C) must be the same
and the per-fold held-out MSE equal to 1e-6 relative; AIC/BIC from scipy.stats log
densities computed here.
"""

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import StratifiedKFold

from linjax import paths, selection

sk_lm = pytest.importorskip("sklearn.linear_model")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, p = 100, 20
    X = rng.normal(size=(n, p))
    y = X[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3]) + 1.5 * rng.normal(size=n) + 3.0
    return X, y


def test_cv_matches_lassocv_and_compiles_once(data):
    X, y = data
    before = selection.trace_count()
    cv = selection.cv_path(X, y, n_alphas=30, folds=5)
    # one trace, or none where an earlier test in this process compiled this shape
    traced = selection.trace_count()
    assert traced - before <= 1
    programs = selection._cv_jit._cache_size()
    sk = sk_lm.LassoCV(alphas=30, cv=5, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(cv.alphas, sk.alphas_, rtol=1e-10)
    np.testing.assert_allclose(cv.scores.T, sk.mse_path_, rtol=1e-6)
    assert cv.alpha_min == pytest.approx(sk.alpha_, rel=1e-12)
    np.testing.assert_allclose(cv.path.coef[cv.best_index], sk.coef_, atol=1e-6)
    assert cv.alpha_1se >= cv.alpha_min
    assert cv.mean[cv.index_1se] <= cv.mean[cv.best_index] + cv.se[cv.best_index]
    # new folds, another l1_ratio, new alphas, weights: the compiled function is reused
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    ids = selection.kfold(len(y), 5, shuffle=True, seed=1)
    cv2 = selection.cv_path(X, y, l1_ratio=0.5, alphas=2 * cv.alphas, folds=ids, weights=w)
    assert selection.trace_count() == traced
    assert selection._cv_jit._cache_size() == programs
    # each fold path equals the path fitted on that fold alone (zero weights == dropped rows)
    k = 2
    alone = paths.path(X[ids != k], y[ids != k], l1_ratio=0.5, alphas=2 * cv.alphas,
                       weights=w[ids != k])
    np.testing.assert_allclose(cv2.fold_paths.coef[k], alone.coef, atol=1e-7)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fold_grams_by_subtraction(data, fit_intercept):
    """Each fold's covariance-solver moments, formed from one blocked pass (rows grouped by
    the fold that leaves them out; full = sum of groups, fold = full less its group) equal
    the direct ones; shifted data checks the centring, 8-row blocks (100 rows: ragged
    groups) the padding, a zero weight its exclusion."""
    import jax.numpy as jnp

    from linjax.families import Gaussian

    X, y = data
    X = X + 50.0  # far from centred: a naive uncentred subtraction would lose digits
    n = len(y)
    rng = np.random.default_rng(5)
    w = rng.uniform(0.5, 2.0, n)
    w[3] = 0.0
    off = rng.normal(size=n)
    ids = selection.kfold(n, 4, shuffle=True, seed=2)
    train, _ = selection.fold_masks(ids, n)
    train_w = np.vstack([np.ones((1, n)), train]) * w
    removed = w[None, :] - train_w[1:]
    kept = np.zeros((1, n))
    blocks = selection._fold_blocks(np.vstack([removed, kept]), 8)
    assert blocks[0].shape == (-(-n // 8) + 5, 8)
    assert blocks[2][-1] == sum(-(-int((removed[k] > 0).sum()) // 8) for k in range(4))
    got = selection._gram_moments(jnp.asarray(X), jnp.asarray(y), jnp.asarray(off),
                                  jnp.asarray(train_w), tuple(map(jnp.asarray, blocks)),
                                  fit_intercept)
    cfg = paths.make_config(Gaussian(), X.shape, fit_intercept)
    pf = jnp.ones(X.shape[1])
    for k in range(5):
        d = paths._prepare(jnp.asarray(X), jnp.asarray(y), jnp.asarray(train_w[k]),
                           jnp.asarray(off), pf, cfg)
        mk = got(jnp.asarray(k))
        for a, b in zip(mk, (d.G, d.c, d.xbar, d.ybar, d.syy), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11)
        # and against numpy, from scratch
        wk = train_w[k] / train_w[k].sum()
        xm = wk @ X if fit_intercept else np.zeros(X.shape[1])
        z = y - off
        zm = wk @ z if fit_intercept else 0.0
        Xc = X - xm
        np.testing.assert_allclose(mk[0], Xc.T @ (wk[:, None] * Xc), rtol=1e-10, atol=1e-11)
        np.testing.assert_allclose(mk[1], Xc.T @ (wk * (z - zm)), rtol=1e-10, atol=1e-11)
        np.testing.assert_allclose(mk[4], wk @ (z - zm) ** 2, rtol=1e-10)
    # overlapping explicit splits: no subtraction, same results through the direct path
    assert selection._fold_blocks(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]), 8) is None


def test_block_rows_fill_the_folds():
    """Blocks sized so that each fold of about n / K rows fills whole blocks (a fold one row
    larger still fits), and depend only on n, K, p."""
    for n, K, p in [(10_000, 5, 1_000), (100, 5, 20), (1_003, 3, 50), (200_000, 10, 100)]:
        rows = selection._block_rows(n, K, p)
        size = -(-n // K)
        assert rows % 8 == 0 and rows <= max(8, paths.gram_block_rows(p) * 1.02 + 8)
        per = -(-size // rows)
        assert -(-(size + 1) // rows) == per
        assert per * rows <= 1.03 * size + 8


def test_cv_overlapping_splits_match_disjoint(data):
    """Explicit (train, test) pairs that leave a row out twice take the direct Gram path;
    the same folds as ids take the subtraction path: the fold paths agree."""
    X, y = data
    n = len(y)
    ids = selection.kfold(n, 4)
    pairs = [(np.flatnonzero(ids != k), np.flatnonzero(ids == k)) for k in range(4)]
    # make two training sets drop row 0 (so row 0 is left out of two folds)
    pairs[1] = (pairs[1][0][pairs[1][0] != 0], pairs[1][1])
    # tol far below the comparison's atol: the two Gram routes round differently, and a
    # coefficient converged to tol may sit anywhere within tol of the optimum
    a = selection.cv_path(X, y, n_alphas=20, folds=pairs, tol=1e-12)
    train, _ = selection.fold_masks(pairs, n)
    alone = paths.path(X[train[1]], y[train[1]], alphas=a.alphas, tol=1e-12)
    np.testing.assert_allclose(a.fold_paths.coef[1], alone.coef, atol=1e-9)
    b = selection.cv_path(X, y, n_alphas=20, folds=ids, tol=1e-12)
    np.testing.assert_allclose(a.fold_paths.coef[2], b.fold_paths.coef[2], atol=1e-9)


def test_elasticnetcv_same_choice(data):
    X, y = data
    ratios = [0.2, 0.7]
    sk = sk_lm.ElasticNetCV(l1_ratio=ratios, alphas=30, cv=5, tol=1e-12,
                            max_iter=100_000).fit(X, y)
    res = [selection.cv_path(X, y, l1_ratio=r, n_alphas=30, folds=5) for r in ratios]
    means = np.array([r.mean for r in res])
    i, j = np.unravel_index(np.argmin(means), means.shape)
    assert ratios[i] == sk.l1_ratio_
    assert res[i].alphas[j] == pytest.approx(sk.alpha_, rel=1e-12)


def test_logistic_cv_same_choice():
    rng = np.random.default_rng(4)
    n, p = 150, 6
    X = rng.normal(size=(n, p))
    y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - 0.5 * X[:, 1])))).astype(float)
    Cs = np.logspace(-3, 1, 8)
    skf = list(StratifiedKFold(5).split(X, y))
    sk = sk_lm.LogisticRegressionCV(Cs=Cs, cv=skf, l1_ratios=(0,), scoring="neg_log_loss",
                                    tol=1e-10, max_iter=10_000, use_legacy_attributes=False
                                    ).fit(X, y)
    train, _ = selection.fold_masks(skf, n)
    sums = np.concatenate([[n], train.sum(1)])
    grid = 1.0 / (Cs[None, :] * sums[:, None])
    cv = selection.cv_path(X, y, "binomial", 0.0, grid, skf, scoring="log_loss")
    assert Cs[cv.best_index] == pytest.approx(float(np.ravel(sk.C_)[0]))


def test_folds():
    ids = selection.kfold(11, 3)
    from sklearn.model_selection import GroupKFold, KFold

    for k, (_, te) in enumerate(KFold(3).split(np.zeros(11))):
        np.testing.assert_array_equal(np.flatnonzero(ids == k), te)
    y = np.array([0] * 8 + [1] * 4)
    strat = selection.stratified_kfold(y, 4, shuffle=True, seed=0)
    for k in range(4):
        assert (y[strat == k] == 1).sum() == 1
    groups = np.repeat(np.arange(6), [5, 4, 3, 3, 2, 1])
    g = selection.group_kfold(groups, 3)
    for grp in np.unique(groups):
        assert len(np.unique(g[groups == grp])) == 1
    assert len(np.unique(g)) == 3
    assert GroupKFold(3).get_n_splits(groups=groups) == 3
    with pytest.raises(ValueError, match="folds"):
        selection.kfold(5, 1)


def test_information_criteria(data):
    X, y = data
    res = paths.path(X, y, n_alphas=30)
    ic = selection.information_criteria(res, X, y)
    n = len(y)
    fitted = (X @ np.asarray(res.coef).T + np.asarray(res.intercept)).T
    rss = ((y - fitted) ** 2).sum(1)
    llf = np.array([stats.norm.logpdf(y, f, np.sqrt(r / n)).sum() for f, r in
                    zip(fitted, rss, strict=True)])
    k = np.asarray(res.df) + 2
    np.testing.assert_allclose(ic.llf, llf, rtol=1e-10)
    np.testing.assert_allclose(ic.aic, -2 * llf + 2 * k, rtol=1e-10)
    np.testing.assert_allclose(ic.bic, -2 * llf + np.log(n) * k, rtol=1e-10)
    assert ic.best_bic == int(np.argmin(ic.bic))
    assert res.alphas[ic.best_bic] >= res.alphas[ic.best_aic]   # BIC is sparser
