"""The scikit-learn estimators on scipy.sparse X and on DataFrames with categorical columns:
the same fit as on the dense matrix (the one-hot matrix pandas builds, for a frame) to 1e-10,
categorical blocks never densified, unseen levels refused by name."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from linjax.designs import Categorical, Sparse, Split
from linjax.estimators import (
    GLM,
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    TweedieRegressor,
)

N = 150
TOL = 1e-10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    A = sp.random(N, 6, density=0.3, format="csr", random_state=1)
    D = A.toarray()
    eta = 0.3 + D @ np.linspace(-0.5, 0.5, 6)
    counts = rng.poisson(np.exp(eta)).astype(float)
    labels = np.where(rng.random(N) < 1 / (1 + np.exp(-eta)), "yes", "no")
    frame = pd.DataFrame({"x": rng.normal(size=N),
                          "region": pd.Categorical(rng.choice(["n", "s", "e"], N),
                                                   categories=["n", "s", "e"]),
                          "tariff": rng.choice(["b", "a", "c"], N)})
    return A, D, counts, labels, frame


def one_hot(frame):
    """pandas' treatment-coded one-hot matrix (the first level of each column dropped)."""
    return pd.get_dummies(frame, columns=["region", "tariff"], drop_first=True,
                          dtype=float).to_numpy()


def _close(a, b, tol=TOL):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=tol)


REGRESSORS = [PoissonRegressor(alpha=0.01, tol=1e-12), Ridge(alpha=0.5), LinearRegression(),
              Lasso(alpha=0.01, tol=1e-12), ElasticNet(alpha=0.01, tol=1e-12),
              GLM("gamma", alpha=0.01, tol=1e-12), TweedieRegressor(power=1.5, alpha=0.01,
                                                                   tol=1e-12)]


@pytest.mark.parametrize("est", REGRESSORS, ids=lambda e: type(e).__name__)
def test_sparse_regressors_equal_dense(data, est):
    A, D, counts, _, _ = data
    y = counts + 1.0 if isinstance(est, GLM) else counts  # gamma: y > 0
    sparse_fit = est.__class__(**est.get_params()).fit(A, y)
    dense_fit = est.__class__(**est.get_params()).fit(D, y)
    assert isinstance(sparse_fit._train[0], Sparse)  # fitted as a sparse design
    _close(sparse_fit.coef_, dense_fit.coef_)
    _close(sparse_fit.intercept_, dense_fit.intercept_)
    _close(sparse_fit.predict(A), dense_fit.predict(D))
    _close(sparse_fit.predict(D), dense_fit.predict(D))  # a dense X still predicts
    _close(sparse_fit.score(A, y), dense_fit.score(D, y))


def test_sparse_formats_and_sample_weight(data):
    A, D, counts, _, _ = data
    w = np.linspace(0.5, 2.0, N)
    dense = PoissonRegressor(alpha=0.01, tol=1e-12).fit(D, counts, sample_weight=w)
    for M in (A.tocsc(), A.tocoo(), sp.csr_array(A), A.todok()):
        est = PoissonRegressor(alpha=0.01, tol=1e-12).fit(M, counts, sample_weight=w)
        _close(est.coef_, dense.coef_)
        _close(est.predict(M), dense.predict(D))


def test_sparse_logistic_equals_dense(data):
    A, D, _, labels, _ = data
    for kwargs in ({"C": 10.0}, {"C": 1.0, "l1_ratio": 1.0}):
        s = LogisticRegression(tol=1e-12, **kwargs).fit(A, labels)
        d = LogisticRegression(tol=1e-12, **kwargs).fit(D, labels)
        _close(s.coef_, d.coef_)
        _close(s.intercept_, d.intercept_)
        _close(s.predict_proba(A), d.predict_proba(D))
        assert (s.predict(A) == d.predict(D)).all()
    three = np.array(["a", "b", "c"])[np.arange(N) % 3]
    for mode in ("ovr", "multinomial"):
        s = LogisticRegression(C=1.0, tol=1e-12, multi_class=mode).fit(A, three)
        d = LogisticRegression(C=1.0, tol=1e-12, multi_class=mode).fit(D, three)
        _close(s.predict_proba(A), d.predict_proba(D))


def test_sparse_summary_equals_dense(data):
    A, D, counts, _, _ = data
    s = PoissonRegressor(alpha=0.0, tol=1e-12).fit(A, counts)
    d = PoissonRegressor(alpha=0.0, tol=1e-12).fit(D, counts)
    ss, ds = s.summary(), d.summary()
    assert list(ss.names) == list(ds.names)
    _close(ss.bse, ds.bse)
    _close(s.summary(A, counts).bse, ds.bse)


@pytest.mark.parametrize("est", [PoissonRegressor(alpha=0.0, tol=1e-12),
                                 Ridge(alpha=0.5), LogisticRegression(C=10.0, tol=1e-12)],
                         ids=lambda e: type(e).__name__)
def test_frame_equals_one_hot(data, est):
    _, _, counts, labels, frame = data
    y = labels if isinstance(est, LogisticRegression) else counts
    f = est.__class__(**est.get_params()).fit(frame, y)
    d = est.__class__(**est.get_params()).fit(one_hot(frame), y)
    design = f._train[0] if f._train is not None else None
    if design is not None:  # categorical blocks, never a one-hot matrix
        assert isinstance(design, Split)
        assert sum(isinstance(b, Categorical) for b in design.blocks) == 2
    _close(f.coef_, d.coef_)
    _close(f.intercept_, d.intercept_)
    if isinstance(est, LogisticRegression):
        _close(f.predict_proba(frame), d.predict_proba(one_hot(frame)))
    else:
        _close(f.predict(frame), d.predict(one_hot(frame)))
    _close(f.score(frame, y), d.score(one_hot(frame), y))
    assert f.n_features_in_ == 3 and list(f.feature_names_in_) == ["x", "region", "tariff"]


def test_frame_summary_names_and_values(data):
    _, _, counts, _, frame = data
    f = PoissonRegressor(alpha=0.0, tol=1e-12).fit(frame, counts)
    d = PoissonRegressor(alpha=0.0, tol=1e-12).fit(one_hot(frame), counts)
    table = f.summary()
    # levels: the category's own order (n, s, e); sorted values for a string column (a, b, c)
    assert list(table.names) == ["Intercept", "x", "region[s]", "region[e]", "tariff[b]",
                                 "tariff[c]"]
    _close(table.params, d.summary().params)
    _close(table.bse, d.summary().bse)


def test_frame_new_data_with_known_levels(data):
    _, _, counts, _, frame = data
    f = PoissonRegressor(alpha=0.01, tol=1e-12).fit(frame, counts)
    d = PoissonRegressor(alpha=0.01, tol=1e-12).fit(one_hot(frame), counts)
    new = frame.iloc[:4].copy()
    new["tariff"] = ["c", "c", "a", "b"]  # a subset of the levels, in another order
    new["region"] = new["region"].astype(str)  # strings for a fitted category column
    expected = d.predict(pd.get_dummies(new.astype({"region": frame["region"].dtype,
                                                    "tariff": pd.CategoricalDtype(["a", "b",
                                                                                   "c"])}),
                                        columns=["region", "tariff"], drop_first=True,
                                        dtype=float).to_numpy())
    _close(f.predict(new), expected)


def test_frame_unseen_level_and_wrong_input_refused(data):
    _, _, counts, _, frame = data
    f = PoissonRegressor(alpha=0.01).fit(frame, counts)
    new = frame.iloc[:5].copy()
    new["tariff"] = new["tariff"].astype(object)
    new.loc[new.index[2], "tariff"] = "z"
    with pytest.raises(ValueError, match=r"PoissonRegressor: X: column 'tariff' has level 'z'"):
        f.predict(new)
    with pytest.raises(ValueError, match="X must be a DataFrame with the columns"):
        f.predict(one_hot(frame))
    with pytest.raises(ValueError, match="region"):
        f.predict(frame.drop(columns=["region"]))


def test_structured_standardize_refused(data):
    A, _, counts, _, _ = data
    with pytest.raises(ValueError, match="standardize=True needs a dense X"):
        PoissonRegressor(standardize=True).fit(A, counts)


def test_sparse_cv_estimators_equal_dense(data):
    from linjax.estimators import GLMCV, LogisticRegressionCV, RidgeCV

    A, D, counts, labels, _ = data
    cases = [(GLMCV(alphas=[0.05, 0.01, 0.002], cv=3, tol=1e-12), counts),
             (RidgeCV(alphas=(0.1, 1.0, 10.0)), counts),
             (LogisticRegressionCV(Cs=[0.1, 1.0, 10.0], cv=3, tol=1e-12), labels)]
    for est, y in cases:
        s = est.__class__(**est.get_params()).fit(A, y)
        d = est.__class__(**est.get_params()).fit(D, y)
        assert np.any(d.coef_ != 0), type(est).__name__
        _close(s.coef_, d.coef_)
        _close(s.intercept_, d.intercept_)
        _close(s.predict(A), d.predict(D)) if not isinstance(est, LogisticRegressionCV) else \
            _close(s.predict_proba(A), d.predict_proba(D))


def test_frame_cv_estimator_equals_one_hot(data):
    from linjax.estimators import GLMCV

    _, _, counts, _, frame = data
    est = GLMCV(alphas=[0.05, 0.01, 0.002], cv=3, tol=1e-12)
    f = est.__class__(**est.get_params()).fit(frame, counts)
    d = est.__class__(**est.get_params()).fit(one_hot(frame), counts)
    _close(f.coef_, d.coef_)
    _close(f.alpha_, d.alpha_)
    _close(f.predict(frame), d.predict(one_hot(frame)))
    _close(f.score(frame, counts), d.score(one_hot(frame), counts))
