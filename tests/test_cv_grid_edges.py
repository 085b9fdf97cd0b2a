"""The default ridge grid reaches the usual optima; a choice at a grid's end warns.

issue 20 (F17): cv_path's ridge grid used to run from 1000 down to 1 times the lasso's
alpha_max, and on a problem whose optimum lay ten times lower it returned the grid's
edge without a word. Here the optimum is checked against the held-out loss computed
with numpy's closed-form ridge on the same folds, independently of linjax.
"""

import warnings

import numpy as np
import pytest

from linjax import paths, selection
from linjax.estimators import GLMCV, ElasticNetCV, LassoCV, LogisticRegressionCV, RidgeCV
from linjax.selection import GridEdgeWarning


@pytest.fixture(scope="module")
def dense():
    """Many moderate effects and unit noise: the ridge optimum sigma^2 / (n tau^2) is near
    1 / (100 * 0.25) = 0.04, far below the lasso's alpha_max (~1)."""
    rng = np.random.default_rng(11)
    n, p = 100, 20
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(0.0, 0.5, p) + rng.normal(size=n) + 3.0
    return X, y


def _ridge_cv_loss(X, y, alpha, ids):
    """Mean over folds of the held-out MSE of the ridge (1/2n)|y - Xb - b0|^2 + alpha/2 |b|^2
    fitted on the other folds, in closed form with numpy."""
    losses = []
    for k in np.unique(ids):
        tr, te = ids != k, ids == k
        xm, ym = X[tr].mean(0), y[tr].mean()
        Xc, yc = X[tr] - xm, y[tr] - ym
        n = tr.sum()
        b = np.linalg.solve(Xc.T @ Xc / n + alpha * np.eye(X.shape[1]), Xc.T @ yc / n)
        losses.append(np.mean((y[te] - (X[te] - xm) @ b - ym) ** 2))
    return np.mean(losses)


def test_default_ridge_grid_contains_the_optimum(dense):
    X, y = dense
    ids = selection.kfold(len(y), 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridEdgeWarning)
        cv = selection.cv_path(X, y, "gaussian", 0.0, folds=ids)
    assert 0 < cv.best_index < len(cv.alphas) - 1
    # the old default grid (eps 1e-3 below the 1e-3 glmnet top) stopped above the optimum
    old_bottom = paths.alpha_grid(X, y, "gaussian", 0.0, eps=1e-3)[-1]
    assert cv.alpha_min < old_bottom / 5
    # the chosen alpha is the optimum of the independently computed held-out loss
    fine = np.geomspace(cv.alphas[cv.best_index - 1], cv.alphas[cv.best_index + 1], 41)
    loss = [_ridge_cv_loss(X, y, a, ids) for a in fine]
    assert _ridge_cv_loss(X, y, cv.alpha_min, ids) <= min(loss) * (1 + 1e-3)
    np.testing.assert_allclose(cv.mean[cv.best_index], _ridge_cv_loss(X, y, cv.alpha_min, ids),
                               rtol=1e-6)


def test_grid_that_excludes_the_optimum_warns(dense):
    X, y = dense
    grid = paths.alpha_grid(X, y, "gaussian", 0.0)
    with pytest.warns(GridEdgeWarning, match="smallest value of the grid"):
        cv = selection.cv_path(X, y, "gaussian", 0.0, grid[:30])
    assert cv.best_index == 29
    with pytest.warns(GridEdgeWarning, match="largest value of the grid"):
        cv = selection.cv_path(X, y, "gaussian", 0.0, grid[-5:])
    assert cv.best_index == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridEdgeWarning)
        selection.cv_path(X, y, "gaussian", 0.0, grid[-5:], warn_edge=False)


def test_lasso_choosing_the_null_fit_does_not_warn():
    """At alpha_max every coefficient is zero, and so at every larger alpha: choosing it is
    not a grid edge."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 20))
    y = rng.normal(size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridEdgeWarning)
        cv = selection.cv_path(X, y, n_alphas=30)
    assert cv.best_index == 0 and int(cv.path.df[0]) == 0


def test_cv_estimators_warn_at_the_grid_edge(dense):
    X, y = dense
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridEdgeWarning)
        est = GLMCV("gaussian", l1_ratio=0.0, alphas=30, cv=5).fit(X, y)
    assert est.alpha_ < paths.alpha_grid(X, y, "gaussian", 0.0, eps=1e-3)[-1]
    with pytest.warns(GridEdgeWarning, match="GLMCV: the chosen alpha"):
        GLMCV("gaussian", l1_ratio=0.0, alphas=[100.0, 10.0, 5.0], cv=5).fit(X, y)
    with pytest.warns(GridEdgeWarning, match="ElasticNetCV: the chosen alpha"):
        ElasticNetCV(l1_ratio=0.5, alphas=[1.0, 0.8, 0.5], cv=5).fit(X, y)
    with pytest.warns(GridEdgeWarning, match="LassoCV: the chosen alpha"):
        LassoCV(alphas=[1.0, 0.8, 0.5], cv=5).fit(X, y)
    with pytest.warns(GridEdgeWarning, match="RidgeCV: the chosen alpha = 10 is the smallest"):
        RidgeCV(alphas=[100.0, 10.0]).fit(X, y)
    yb = (y > np.median(y)).astype(int)
    with pytest.warns(GridEdgeWarning, match="LogisticRegressionCV: the chosen C = 0.0001"):
        LogisticRegressionCV(Cs=[1e-4, 2e-4], cv=5).fit(X, yb)


def test_cv_whose_held_out_loss_is_partly_not_finite_chooses_a_finite_one():
    """Gamma with its inverse link on iris: at some alphas held-out means leave the family's
    domain (NaN loss and standard error). That failed with an IndexError; the choice must
    be a strength whose loss is finite, the smallest such (scikit-learn's rule)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    model = GLMCV(family="gamma", cv=3).fit(X[:, :3], X[:, 3])
    result = model.cv_results_[0]
    mean = np.asarray(result.mean)
    assert not np.isfinite(mean).all()
    assert model.alpha_ == result.alphas[np.nanargmin(np.where(np.isfinite(mean), mean, np.nan))]


def test_a_non_finite_loss_is_never_chosen():
    from linjax.selection import choose

    best, one_se = choose([3.0, np.nan, 1.0, 2.0], [0.1, np.nan, 0.5, 0.1])
    assert best == 2 and one_se == 2
    best, one_se = choose([3.0, 1.4, 1.0, 2.0], [0.1, 0.1, 0.5, 0.1])
    assert best == 2 and one_se == 1
