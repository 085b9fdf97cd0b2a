"""Estimator and path errors name the argument and the expected form (issue 20, section E).

scikit-learn's own wording is kept where its estimator checks match it ("0 feature(s)").
"""

import numpy as np
import pytest

import linjax as lj
from linjax import paths, selection
from linjax.estimators import (
    GLM,
    GLMCV,
    LassoCV,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeCV,
)

REGRESSORS = [Ridge(), GLM(), LassoCV(alphas=3), RidgeCV(), GLMCV(alphas=3)]
CLASSIFIERS = [LogisticRegression(), LogisticRegressionCV(Cs=2)]
X = np.random.default_rng(0).uniform(size=(12, 3))
Y = np.random.default_rng(1).uniform(size=12)


@pytest.mark.parametrize("est", REGRESSORS + CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_bad_data_names_x_or_y(est):
    name = type(est).__name__
    y = (Y > 0.5).astype(int) if est in CLASSIFIERS else Y
    with pytest.raises(ValueError, match=rf"{name}: X has no rows.*0 sample\(s\)"):
        est.fit(np.empty((0, 3)), np.empty(0))
    with pytest.raises(ValueError, match=rf"{name}: X has no columns.*0 feature\(s\)"):
        est.fit(np.empty((12, 0)), y)
    with pytest.raises(ValueError, match=rf"{name}: X has 12 rows but y has 8 values"):
        est.fit(X, y[:8])
    with pytest.raises(ValueError, match=rf"{name}: X must be 2-D"):
        est.fit(X[:, 0], y)


@pytest.mark.parametrize("est", REGRESSORS, ids=lambda e: type(e).__name__)
def test_string_target_in_a_regressor(est):
    y = np.array(list("abcabcabcabc"))
    with pytest.raises(ValueError, match=rf"{type(est).__name__}: y must be numeric.*'a'"):
        est.fit(X, y)


def test_parameters_are_named():
    y01 = (Y > 0.5).astype(int)
    with pytest.raises(ValueError, match="Ridge: alpha must be finite, got inf"):
        Ridge(alpha=np.inf).fit(X, Y)
    with pytest.raises(ValueError, match="GLM: alpha must be finite"):
        GLM(alpha=np.inf).fit(X, Y)
    LogisticRegression(C=np.inf).fit(X, y01)  # no penalty: still allowed
    with pytest.raises(ValueError, match=r"LogisticRegression: class_weight\[0\] must be a "
                                         "finite number >= 0, got -1"):
        LogisticRegression(class_weight={0: -1.0, 1: 1.0}).fit(X, y01)
    with pytest.raises(ValueError, match=r"LogisticRegressionCV: class_weight\[1\]"):
        LogisticRegressionCV(class_weight={0: 1.0, 1: -2.0}).fit(X, y01)
    with pytest.raises(ValueError, match="LogisticRegressionCV: Cs must be an int >= 1"):
        LogisticRegressionCV(Cs=0).fit(X, y01)
    with pytest.raises(ValueError, match="LogisticRegressionCV: Cs must be an int >= 1 or"):
        LogisticRegressionCV(Cs=[1.0, -1.0]).fit(X, y01)
    with pytest.raises(ValueError, match="LassoCV: alphas must be an int >= 1"):
        LassoCV(alphas=0).fit(X, Y)


def test_path_errors_name_the_argument():
    y = X @ np.array([1.0, -1.0, 0.5]) + 0.1 * Y
    with pytest.raises(ValueError, match=r"folds: expected an int K >= 2.*got 2.5 \(float\)"):
        selection.cv_path(X, y, folds=2.5)
    with pytest.raises(ValueError, match="folds: expected an int K >= 2"):
        selection.cv_path(X, y, folds=[1, 2])
    with pytest.raises(ValueError, match=r"penalty_weights: expected one factor per column "
                                         r"of X, shape \(3,\), got shape \(2,\)"):
        paths.path(X, y, penalty_weights=np.ones(2))


def test_intercept_only_paths_are_refused_clearly():
    Z = np.empty((12, 0))
    result = lj.fit(Z, Y)   # works: the intercept is the mean
    assert float(result.params["intercept"]) == pytest.approx(Y.mean())
    for call in (lambda: paths.path(Z, Y), lambda: selection.cv_path(Z, Y, folds=3),
                 lambda: paths.alpha_grid(Z, Y)):
        with pytest.raises(ValueError, match="X: a path needs at least one feature column.*"
                                             "lj.fit"):
            call()
