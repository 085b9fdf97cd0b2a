"""linjax.estimators against scikit-learn (and statsmodels): API checks, optima, workflows.

References: scikit-learn's own estimators (fitted to tight tolerances with their
Newton solvers where available) and statsmodels' GLM; objectives are computed here
from scikit-learn's documented formulas, not from linjax.
"""

import pickle
import sys
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
import sklearn.linear_model as sk
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler as SkStandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from linjax import families
from linjax.estimators import (
    GLM,
    GLMCV,
    ElasticNet,
    ElasticNetCV,
    GammaRegressor,
    Lasso,
    LassoCV,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    PoissonRegressor,
    PolynomialFeatures,
    Ridge,
    RidgeCV,
    SeparationWarning,
    StandardScaler,
    TweedieRegressor,
)

# The CV estimators are checked with small grids (the checks are about API behaviour) and
# tight tolerances: scikit-learn's sample-weight check compares a weighted fit with one on
# repeated rows to 1e-7, closer than the default tolerance (1e-8 on a coordinate move)
# guarantees; GLMCV's grid stops at 0.05 alpha_max, as a Poisson lasso on that check's
# data (30 columns, 45 rows) at 1e-3 alpha_max needs ~1e5 coordinate sweeps.
ESTIMATORS = [LinearRegression(), Ridge(), Lasso(), ElasticNet(), LogisticRegression(),
              PoissonRegressor(), GammaRegressor(), TweedieRegressor(), GLM(),
              StandardScaler(), PolynomialFeatures(), RidgeCV(), LassoCV(alphas=5, tol=1e-12),
              ElasticNetCV(alphas=5, tol=1e-12), LogisticRegressionCV(Cs=3),
              GLMCV(alphas=5, eps=0.05, tol=1e-12)]


def test_every_public_estimator_is_checked():
    import linjax.estimators as E

    public = {name for name in E.__all__ if isinstance(getattr(E, name), type) and
              issubclass(getattr(E, name), BaseEstimator)}
    assert public == {type(est).__name__ for est in ESTIMATORS}

#: Checks expected to fail, with the reason. Empty: every estimator passes every check.
EXPECTED_FAILED_CHECKS = {}


def _expected_failures(est):
    return EXPECTED_FAILED_CHECKS.get(type(est).__name__, {})


# The cross-validated estimators refit a whole CV per check (2.5 min of the default suite's
# ~16 on 2 cores): their checks run with the slow tests, which CI runs.
SLOW_CHECKS = (LassoCV, LogisticRegressionCV, GLMCV)


@parametrize_with_checks([e for e in ESTIMATORS if not isinstance(e, SLOW_CHECKS)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_api(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([e for e in ESTIMATORS if isinstance(e, SLOW_CHECKS)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_api_cross_validated(estimator, check):
    check(estimator)


# -- data ------------------------------------------------------------------------------

def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


def _weights(n, seed=0):
    return np.random.default_rng(seed).uniform(0.2, 3.0, n)


def _breast_cancer():
    """500 rows, 10 standardized features: the same padded shape as diabetes (one compile)."""
    X, y = load_breast_cancer(return_X_y=True)
    return SkStandardScaler().fit_transform(X)[:500, :10], y[:500]


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


# -- objectives in scikit-learn's scaling, computed independently -------------------------

def _sq_obj(est, X, y, w, kind):
    r = y - X @ est.coef_ - est.intercept_
    b = est.coef_
    if kind == "ridge":
        return np.sum(w * r**2) + est.alpha * b @ b
    loss = np.sum(w * r**2) / (2 * np.sum(w))
    l1 = 1.0 if kind == "lasso" else est.l1_ratio
    return loss + est.alpha * (l1 * np.abs(b).sum() + (1 - l1) / 2 * b @ b)


def _glm_obj(est, X, y, w, family):
    mu = est.predict(X)
    dev = np.asarray(family.unit_deviance(y, mu))
    return np.sum(w * dev) / (2 * np.sum(w)) + est.alpha / 2 * est.coef_ @ est.coef_


def _logistic_obj(est, X, y, s):
    """C sum_i s_i logloss_i + l1_ratio ||W||_1 + (1 - l1_ratio) / 2 ||W||^2 (scikit-learn)."""
    logp = est.predict_log_proba(X)
    idx = np.searchsorted(est.classes_, y)
    loss = -np.sum(s * logp[np.arange(len(y)), idx])
    W = est.coef_
    if est.coef_.shape[0] == 1:
        pen = est.l1_ratio * np.abs(W).sum() + (1 - est.l1_ratio) / 2 * np.sum(W**2)
    else:
        pen = est.l1_ratio * np.abs(W).sum() + (1 - est.l1_ratio) / 2 * np.sum(W**2)
    return est.C * loss + pen


# -- coefficients and objectives against scikit-learn --------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", ["linear", "ridge", "lasso", "enet"])
def test_least_squares_match_sklearn(name, weighted):
    X, y = _diabetes()
    w = _weights(len(y)) if weighted else np.ones(len(y))
    sw = w if weighted else None
    ours, ref, kind = {
        "linear": (LinearRegression(), sk.LinearRegression(), None),
        "ridge": (Ridge(alpha=0.5), sk.Ridge(alpha=0.5), "ridge"),
        "lasso": (Lasso(alpha=0.2), sk.Lasso(alpha=0.2, tol=1e-14, max_iter=100_000), "lasso"),
        "enet": (ElasticNet(alpha=0.01, l1_ratio=0.3),
                 sk.ElasticNet(alpha=0.01, l1_ratio=0.3, tol=1e-14, max_iter=100_000), "enet"),
    }[name]
    ours.fit(X, y, sample_weight=sw)
    ref.fit(X, y, sample_weight=sw)
    assert _rel(ours.coef_, ref.coef_) < 1e-6
    assert abs(ours.intercept_ - ref.intercept_) < 1e-6 * max(1.0, abs(ref.intercept_))
    np.testing.assert_allclose(ours.score(X, y, sw), ref.score(X, y, sw), rtol=1e-8)
    if kind is not None:
        ours_obj, ref_obj = _sq_obj(ours, X, y, w, kind), _sq_obj(ref, X, y, w, kind)
        assert ours_obj <= ref_obj * (1 + 1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", ["poisson", "gamma", "tweedie"])
def test_glm_regressors_match_sklearn(name, weighted):
    X, y = _diabetes()
    y = y / 100.0
    w = _weights(len(y), 1) if weighted else np.ones(len(y))
    sw = w if weighted else None
    opts = dict(tol=1e-12, max_iter=1000, solver="newton-cholesky")
    ours, ref, family = {
        "poisson": (PoissonRegressor(alpha=0.01), sk.PoissonRegressor(alpha=0.01, **opts),
                    families.Poisson()),
        "gamma": (GammaRegressor(alpha=0.01), sk.GammaRegressor(alpha=0.01, **opts),
                  families.Gamma(link="log")),
        "tweedie": (TweedieRegressor(power=1.5, alpha=0.01),
                    sk.TweedieRegressor(power=1.5, alpha=0.01, **opts),
                    families.Tweedie(power=1.5)),
    }[name]
    ours.fit(X, y, sample_weight=sw)
    ref.fit(X, y, sample_weight=sw)
    assert _rel(ours.coef_, ref.coef_) < 1e-6
    assert abs(ours.intercept_ - ref.intercept_) < 1e-6 * max(1.0, abs(ref.intercept_))
    np.testing.assert_allclose(ours.score(X, y, sw), ref.score(X, y, sw), rtol=1e-8)
    assert _glm_obj(ours, X, y, w, family) <= _glm_obj(ref, X, y, w, family) * (1 + 1e-12)


def test_glm_class_matches_named_regressors():
    X, y = _diabetes()
    y = y / 100.0
    a = GLM(family="poisson", alpha=0.01).fit(X, y)
    b = PoissonRegressor(alpha=0.01).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10)
    c = TweedieRegressor(power=0.0, alpha=0.0).fit(X, y)
    d = LinearRegression().fit(X, y)
    np.testing.assert_allclose(c.coef_, d.coef_, rtol=1e-8)
    e = GLM(family="gaussian", alpha=0.2, l1_ratio=1.0).fit(X, y)
    f = sk.Lasso(alpha=0.2, tol=1e-14, max_iter=100_000).fit(X, y)
    assert _rel(e.coef_, f.coef_) < 1e-6


@pytest.mark.parametrize("case", ["plain", "sample_weight", "balanced", "dict", "no_penalty"])
def test_binary_logistic_matches_sklearn(case):
    X, y = _breast_cancer()
    s = np.ones(len(y))
    kw, fit_kw = {}, {}
    if case == "sample_weight":
        fit_kw["sample_weight"] = _weights(len(y), 2)
        s = fit_kw["sample_weight"]
    elif case == "balanced":
        kw["class_weight"] = "balanced"
        counts = np.bincount(y)
        s = (len(y) / (2 * counts))[y]
    elif case == "dict":
        kw["class_weight"] = {0: 3.0, 1: 0.5}
        s = np.where(y == 0, 3.0, 0.5)
    elif case == "no_penalty":
        kw["C"] = np.inf
        X = X[:, :4]
    ours = LogisticRegression(**kw).fit(X, y, **fit_kw)
    ref = sk.LogisticRegression(**kw, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    ref.fit(X, y, **fit_kw)
    assert _rel(ours.coef_, ref.coef_) < 1e-6
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-8)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    if np.isfinite(ours.C):
        assert _logistic_obj(ours, X, y, s) <= _logistic_obj(ref, X, y, s) * (1 + 1e-12)


def test_l1_logistic_matches_saga():
    X, y = _breast_cancer()
    ours = LogisticRegression(C=0.5, l1_ratio=1.0).fit(X, y)
    ref = sk.LogisticRegression(C=0.5, l1_ratio=1.0, solver="saga", tol=1e-10,
                                max_iter=100_000).fit(X, y)
    s = np.ones(len(y))
    assert _logistic_obj(ours, X, y, s) <= _logistic_obj(ref, X, y, s) * (1 + 1e-9)
    assert _rel(ours.coef_, ref.coef_) < 1e-4
    np.testing.assert_array_equal(ours.coef_ == 0, np.abs(ref.coef_) < 1e-8)


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_multinomial_logistic_matches_sklearn(class_weight):
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    sw = _weights(len(y), 3)
    ours = LogisticRegression(C=2.0, class_weight=class_weight).fit(X, labels, sample_weight=sw)
    ref = sk.LogisticRegression(C=2.0, class_weight=class_weight, solver="newton-cholesky",
                                tol=1e-12, max_iter=1000).fit(X, labels, sample_weight=sw)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    assert _rel(ours.coef_, ref.coef_) < 1e-6
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-7)
    np.testing.assert_allclose(ours.predict_log_proba(X), ref.predict_log_proba(X), atol=1e-6)
    assert ours.score(X, labels) == ref.score(X, labels)
    cw = np.ones(3) if class_weight is None else sw.sum() / (3 * np.bincount(y, weights=sw))
    s = sw * cw[y]
    assert _logistic_obj(ours, X, labels, s) <= _logistic_obj(ref, X, labels, s) * (1 + 1e-12)


def test_one_vs_rest_matches_sklearn():
    X, y = load_iris(return_X_y=True)
    ours = LogisticRegression(multi_class="ovr").fit(X, y)
    ref = OneVsRestClassifier(sk.LogisticRegression(solver="newton-cholesky", tol=1e-12,
                                                    max_iter=1000)).fit(X, y)
    ref_coef = np.vstack([e.coef_ for e in ref.estimators_])
    assert _rel(ours.coef_, ref_coef) < 1e-6
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-7)
    np.testing.assert_allclose(ours.predict_proba(X).sum(axis=1), 1.0)
    assert ours.n_iter_.shape == (3,)


def test_label_types():
    X, y = _breast_cancer()
    for labels in (y.astype(bool), np.where(y == 1, "yes", "no"), y * 10 - 3):
        est = LogisticRegression().fit(X, labels)
        np.testing.assert_array_equal(est.classes_, np.unique(labels))
        assert est.predict(X).dtype == np.asarray(labels).dtype
        assert est.score(X, labels) > 0.9


# -- offsets and inference against statsmodels -----------------------------------------

def test_offset_and_summary_match_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["age", "dose", "z"])
    exposure = rng.uniform(0.5, 2.0, 200)
    y = rng.poisson(exposure * np.exp(0.3 + X @ np.array([0.2, -0.4, 0.1])))
    est = PoissonRegressor(alpha=0.0).fit(X, y, offset=np.log(exposure))
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson(),
                 offset=np.log(exposure)).fit()
    np.testing.assert_allclose(np.r_[est.intercept_, est.coef_], ref.params, rtol=1e-8)
    np.testing.assert_allclose(est.predict(X, offset=np.log(exposure)),
                               ref.predict(sm.add_constant(X), offset=np.log(exposure)),
                               rtol=1e-8)
    summ = est.summary(cov_type="HC1")
    ref_hc = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson(),
                    offset=np.log(exposure)).fit(cov_type="HC0")
    assert summ.names == ("Intercept", "age", "dose", "z")
    # HC1 = HC0 * n / (n - k), R's sandwich (statsmodels' GLM HC1 omits the factor).
    np.testing.assert_allclose(summ.bse, ref_hc.bse * np.sqrt(200 / 196), rtol=1e-6)
    assert "dose" in str(summ)


def test_logistic_summary_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    X, y = _breast_cancer()
    X = X[:, :3]
    est = LogisticRegression(C=np.inf).fit(X, y)
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0)
    np.testing.assert_allclose(est.summary().bse, ref.bse, rtol=1e-6)
    np.testing.assert_allclose(est.summary(X, y).params, ref.params, rtol=1e-6)


# -- warnings and validation -----------------------------------------------------------

def test_convergence_warning_carries_solver_message():
    X, y = _diabetes()
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        PoissonRegressor(max_iter=1).fit(X, y / 100)


def test_separation_warning_names_the_fix():
    X = np.array([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    with pytest.warns(SeparationWarning, match="Firth"):
        LogisticRegression(C=np.inf).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        LogisticRegression(C=1.0).fit(X, y)


@pytest.mark.parametrize("est, match", [
    (Ridge(alpha=-1.0), "alpha must be >= 0"),
    (TweedieRegressor(power=0.5), "power"),
    (GLM(family="bogus"), "family"),
    (GLM(family="multinomial"), "LogisticRegression"),
    (LogisticRegression(C=0.0), "C must be > 0"),
    (LogisticRegression(class_weight="weird"), "class_weight"),
    (Lasso(max_iter=0), "max_iter"),
    (ElasticNet(l1_ratio=1.5), "l1_ratio"),
])
def test_bad_parameters_raise_clear_errors(est, match):
    X, y = _breast_cancer()
    with pytest.raises(ValueError, match=match):
        est.fit(X[:50], y[:50] + 1.0 if not isinstance(est, LogisticRegression) else y[:50])


def test_bad_data_raise_clear_errors():
    X, y = _diabetes()
    with pytest.raises(ValueError, match="y has"):
        PoissonRegressor().fit(X, y - 200)
    with pytest.raises(ValueError, match="offset must have shape"):
        PoissonRegressor().fit(X, y, offset=np.zeros(3))
    with pytest.raises(ValueError, match="only one class"):
        LogisticRegression().fit(X, np.ones(len(y)))


# -- workflows -------------------------------------------------------------------------

def test_pipeline_and_grid_search_match_sklearn():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:500, :10], y[:500]
    grid = {"logisticregression__C": [0.01, 0.1, 1.0]}
    ours = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()), grid, cv=3)
    ref = GridSearchCV(make_pipeline(SkStandardScaler(), sk.LogisticRegression(
        solver="newton-cholesky", tol=1e-10)), grid, cv=3)
    ours.fit(X, y)
    ref.fit(X, y)
    assert ours.best_params_ == ref.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    reg = GridSearchCV(Lasso(), {"alpha": [0.01, 0.1, 1.0]}, cv=3).fit(*_diabetes())
    assert reg.best_params_ == GridSearchCV(sk.Lasso(tol=1e-10, max_iter=100_000),
                                            {"alpha": [0.01, 0.1, 1.0]},
                                            cv=3).fit(*_diabetes()).best_params_


@pytest.mark.parametrize("est", [GLM(family="gamma", alpha=0.1, l1_ratio=0.5),
                                 LogisticRegression(C=0.3)])
def test_clone_params_and_pickle(est):
    X, y = _breast_cancer()
    target = y if isinstance(est, LogisticRegression) else y + 1.0
    params = est.get_params()
    twin = clone(est)
    assert twin.get_params() == params and twin is not est
    est.fit(X, target)
    assert not hasattr(clone(est), "coef_")
    twin.set_params(**{"alpha" if "alpha" in params else "C": 1.0})
    assert twin.get_params()["alpha" if "alpha" in params else "C"] == 1.0
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    method = "predict_proba" if hasattr(est, "predict_proba") else "predict"
    np.testing.assert_array_equal(getattr(restored, method)(X), getattr(est, method)(X))


# -- input types, dtypes, standardize, warm start, compile once ---------------------------

def test_dataframes_lists_and_jax_arrays():
    X, y = _diabetes()
    cols = [f"f{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=cols)
    est = Ridge().fit(frame, y)
    np.testing.assert_array_equal(est.feature_names_in_, cols)
    assert est.summary().names[1:] == tuple(cols)
    base = Ridge().fit(X, y)
    np.testing.assert_allclose(est.coef_, base.coef_)
    np.testing.assert_allclose(Ridge().fit(X.tolist(), y.tolist()).coef_, base.coef_)
    np.testing.assert_allclose(Ridge().fit(jax.numpy.asarray(X), y).coef_, base.coef_)
    pl = pytest.importorskip("polars")
    pest = Ridge().fit(pl.DataFrame(frame), y)
    np.testing.assert_array_equal(pest.feature_names_in_, cols)
    np.testing.assert_allclose(pest.coef_, base.coef_)
    np.testing.assert_allclose(pest.predict(pl.DataFrame(frame)), base.predict(X))


def test_float32_stays_float32():
    X, y = _breast_cancer()
    X, y = X[:100, :5], y[:100]  # the padded shape of scikit-learn's dtype check
    est = LogisticRegression().fit(X.astype(np.float32), y)
    assert est.coef_.dtype == np.float32
    assert est.predict_proba(X.astype(np.float32)).dtype == np.float32
    ref = LogisticRegression().fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-3, atol=1e-4)


def test_standardize_reports_original_scale():
    X, y = _diabetes()
    X = X * np.arange(1, 11) + 5.0
    ours = Lasso(alpha=0.3, standardize=True).fit(X, y)
    sc = SkStandardScaler().fit(X)
    ref = sk.Lasso(alpha=0.3, tol=1e-14, max_iter=100_000).fit(sc.transform(X), y)
    assert _rel(ours.coef_, ref.coef_ / sc.scale_) < 1e-6
    np.testing.assert_allclose(ours.predict(X), ref.predict(sc.transform(X)), rtol=1e-8)
    # Without a penalty, standardizing changes nothing.
    a = PoissonRegressor(alpha=0.0, standardize=True).fit(X, y / 100)
    b = PoissonRegressor(alpha=0.0).fit(X, y / 100)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-7)
    np.testing.assert_allclose(a.summary().bse, b.summary().bse, rtol=1e-6)


def test_warm_start_reuses_solution():
    X, y = _diabetes()
    est = PoissonRegressor(alpha=0.01, warm_start=True).fit(X, y / 100)
    first = est.n_iter_
    est.fit(X, y / 100)
    assert est.n_iter_ < first


def test_refit_same_shape_does_not_recompile():
    fit_module = sys.modules["linjax.fit"]
    X, y = _diabetes()
    est = Ridge(alpha=1.0).fit(X, y)
    before = fit_module._fit._cache_size()
    est.set_params(alpha=5.0).fit(X[::-1], y[::-1], sample_weight=_weights(len(y)))
    Ridge(alpha=0.1).fit(X[:400], y[:400])  # padded to the same bucket
    assert fit_module._fit._cache_size() == before
