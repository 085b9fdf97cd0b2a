"""CV estimators vs scikit-learn's (same folds): chosen alpha / C, coefficients, attributes.

Data shapes match tests/test_selection.py so the compiled CV functions are reused.
"""

import warnings

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from linjax.estimators import GLMCV, ElasticNetCV, LassoCV, LogisticRegressionCV, RidgeCV

sk_lm = pytest.importorskip("sklearn.linear_model")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, p = 100, 20
    X = rng.normal(size=(n, p))
    y = X[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3]) + 1.5 * rng.normal(size=n) + 3.0
    return X, y


def test_lassocv(data):
    X, y = data
    ours = LassoCV(alphas=30, cv=5).fit(X, y)
    sk = sk_lm.LassoCV(alphas=30, cv=5, tol=1e-12, max_iter=100_000).fit(X, y)
    assert ours.alpha_ == pytest.approx(sk.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.alphas_, sk.alphas_, rtol=1e-10)
    assert ours.mse_path_.shape == sk.mse_path_.shape
    np.testing.assert_allclose(ours.mse_path_, sk.mse_path_, rtol=1e-6)
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-6)
    assert ours.intercept_ == pytest.approx(sk.intercept_, abs=1e-6)
    np.testing.assert_allclose(ours.predict(X), sk.predict(X), atol=1e-5)
    assert ours.score(X, y) == pytest.approx(sk.score(X, y), abs=1e-6)
    assert ours.alpha_1se_ >= ours.alpha_


def test_elasticnetcv_list(data):
    X, y = data
    ratios = [0.2, 0.7]
    ours = ElasticNetCV(l1_ratio=ratios, alphas=30, cv=5).fit(X, y)
    sk = sk_lm.ElasticNetCV(l1_ratio=ratios, alphas=30, cv=5, tol=1e-12,
                            max_iter=100_000).fit(X, y)
    assert ours.l1_ratio_ == sk.l1_ratio_
    assert ours.alpha_ == pytest.approx(sk.alpha_, rel=1e-12)
    assert ours.mse_path_.shape == sk.mse_path_.shape == (2, 30, 5)
    np.testing.assert_allclose(ours.mse_path_, sk.mse_path_, rtol=1e-6)
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-6)


def test_logisticregressioncv():
    rng = np.random.default_rng(4)
    n, p = 150, 6
    X = rng.normal(size=(n, p))
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - 0.5 * X[:, 1]))), "yes", "no")
    Cs = np.logspace(-3, 1, 8)
    ours = LogisticRegressionCV(Cs=Cs, cv=5, scoring="neg_log_loss").fit(X, y)
    sk = sk_lm.LogisticRegressionCV(Cs=Cs, cv=5, l1_ratios=(0,), scoring="neg_log_loss",
                                    tol=1e-10, max_iter=10_000,
                                    use_legacy_attributes=False).fit(X, y)
    np.testing.assert_allclose(ours.C_, np.ravel(sk.C_))
    np.testing.assert_array_equal(ours.classes_, sk.classes_)
    np.testing.assert_allclose(ours.coef_, sk.coef_.reshape(1, -1), atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, np.ravel(sk.intercept_), atol=1e-5)
    scores = ours.scores_["yes"]
    assert scores.shape == (5, len(Cs))
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))


def _three_classes():
    rng = np.random.default_rng(6)
    n, p = 150, 6
    X = rng.normal(size=(n, p))
    eta = np.column_stack([np.zeros(n), X[:, 0] - 0.5 * X[:, 1], 0.8 * X[:, 2] + 0.3])
    prob = np.exp(eta) / np.exp(eta).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in prob])
    return X, y


def test_logisticregressioncv_multinomial_matches_sklearn():
    X, y = _three_classes()
    Cs = np.logspace(-3, 1, 6)
    ours = LogisticRegressionCV(Cs=Cs, cv=5, scoring="neg_log_loss").fit(X, y)
    sk = sk_lm.LogisticRegressionCV(Cs=Cs, cv=5, l1_ratios=(0,), scoring="neg_log_loss",
                                    tol=1e-10, max_iter=10_000,
                                    use_legacy_attributes=False).fit(X, y)
    assert ours.coef_.shape == sk.coef_.shape == (3, 6)
    np.testing.assert_allclose(ours.C_, np.full(3, np.ravel(sk.C_)[0]))
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, sk.intercept_, atol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=1e-6)
    assert ours.scores_[0].shape == (5, len(Cs))
    # sklearn's scores: the held-out neg log loss per fold and C
    np.testing.assert_allclose(ours.scores_[0], np.asarray(sk.scores_).reshape(5, -1),
                               rtol=1e-6)


def test_logisticregressioncv_ovr_is_one_binary_cv_per_class():
    X, y = _three_classes()
    Cs = np.logspace(-3, 1, 6)
    folds = list(StratifiedKFold(4).split(X, y))
    ours = LogisticRegressionCV(Cs=Cs, cv=folds, multi_class="ovr").fit(X, y)
    assert ours.coef_.shape == (3, 6) and ours.C_.shape == (3,)
    for k in range(3):
        # scikit-learn's binary LogisticRegressionCV on "class k or not", same folds
        sk = sk_lm.LogisticRegressionCV(Cs=Cs, cv=folds, l1_ratios=(0,), scoring="accuracy",
                                        tol=1e-10, max_iter=10_000,
                                        use_legacy_attributes=False).fit(X, y == k)
        np.testing.assert_allclose(ours.scores_[k], np.asarray(sk.scores_).reshape(4, -1))
        assert ours.C_[k] == np.ravel(sk.C_)[0]
        np.testing.assert_allclose(ours.coef_[k], sk.coef_[0], atol=1e-5)
    prob = ours.predict_proba(X)
    np.testing.assert_allclose(prob.sum(1), 1.0)
    np.testing.assert_array_equal(ours.predict(X), np.argmax(prob, 1))


def test_ridgecv(data):
    X, y = data
    alphas = (0.1, 1.0, 10.0, 100.0)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    for sw in (None, w):
        ours = RidgeCV(alphas=alphas).fit(X, y, sample_weight=sw)
        sk = sk_lm.RidgeCV(alphas=alphas).fit(X, y, sample_weight=sw)
        assert ours.alpha_ == sk.alpha_
        np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-8)
        assert ours.intercept_ == pytest.approx(sk.intercept_, abs=1e-8)
        assert ours.best_score_ == pytest.approx(sk.best_score_, rel=1e-8)
    ours = RidgeCV(alphas=alphas, cv=5).fit(X, y)
    sk = sk_lm.RidgeCV(alphas=alphas, cv=5).fit(X, y)
    assert ours.alpha_ == sk.alpha_
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-6)
    assert ours.best_score_ == pytest.approx(sk.best_score_, rel=1e-6)


def test_glmcv_poisson_and_plots():
    rng = np.random.default_rng(5)
    n, p = 200, 15
    X = rng.normal(size=(n, p))
    y = rng.poisson(np.exp(0.3 + X[:, :3] @ np.array([0.5, -0.4, 0.3]))).astype(float)
    est = GLMCV("poisson", alphas=30, cv=5).fit(X, y)
    res = est.cv_results_[0]
    assert est.alpha_ == res.alpha_min and res.scores.shape == (5, 30)
    assert 0 < est.score(X, y) < 1
    # the chosen model is the Poisson lasso at alpha_ (glum, an external solver)
    glum = pytest.importorskip("glum")
    ref = glum.GeneralizedLinearRegressor(family="poisson", alpha=est.alpha_, l1_ratio=1.0,
                                          gradient_tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-6)
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from linjax.plotting import plot_path

    ax = est.plot()
    assert len(ax.lines) >= 3
    ax = plot_path(res.path)
    assert len(ax.lines) == p + 1
    matplotlib.pyplot.close("all")


def test_verbose_progress(data, capsys):
    pytest.importorskip("tqdm")
    X, y = data
    ElasticNetCV(l1_ratio=[0.2, 0.7], alphas=30, cv=5, verbose=1).fit(X, y)
    assert "ElasticNetCV" in capsys.readouterr().err


@pytest.mark.parametrize("est", [LassoCV(alphas=20, tol=1e-12),
                                 ElasticNetCV(l1_ratio=[0.3, 0.8], alphas=20, tol=1e-12)],
                         ids=["LassoCV", "ElasticNetCV"])
def test_weight_two_equals_a_duplicated_row_in_every_fold(data, est):
    """Weight 2 on a row == the row twice, each copy in the row's fold (the folds are given
    as groups, as scikit-learn's sample-weight check does)."""
    from sklearn.base import clone
    from sklearn.model_selection import LeaveOneGroupOut

    X, y = data
    rng = np.random.default_rng(8)
    w = rng.integers(1, 3, len(y)).astype(float)
    groups = np.arange(len(y)) % 5
    rows = np.repeat(np.arange(len(y)), w.astype(int))
    weighted = clone(est).set_params(cv=list(LeaveOneGroupOut().split(X, y, groups)))
    weighted.fit(X, y, sample_weight=w)
    repeated = clone(est).set_params(cv=list(LeaveOneGroupOut().split(X[rows], y[rows],
                                                                 groups[rows])))
    repeated.fit(X[rows], y[rows])
    assert weighted.alpha_ == pytest.approx(repeated.alpha_, rel=1e-12)
    np.testing.assert_allclose(weighted.mse_path_, repeated.mse_path_, rtol=1e-9)
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-9)
