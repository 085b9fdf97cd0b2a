"""Every estimator gives `linjax.fit`'s answer on every case where `lj.fit` is tested against R.

The cases are tests/test_inference.py's (R's glm results shipped with statsmodels); there
`lj.fit` reproduces R's coefficients, so each estimator that fits the same model (same
family, link, offset, weights, intercept, no penalty) must reproduce them too, or warn.
"""

import functools
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import linjax as lj
from linjax import families as F
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
from tests.test_inference import TIGHT, _case, _const_first


def _glm_for(family, fi, **kw):
    return GLM(family=family, fit_intercept=fi, **kw)


#: case -> estimators that fit the same model as `lj.fit` on it
ESTIMATORS = {
    "longley": lambda fam, fi: [LinearRegression(), Ridge(alpha=0.0), Lasso(alpha=0.0),
                                ElasticNet(alpha=0.0), TweedieRegressor(power=0, alpha=0.0),
                                _glm_for(fam, fi)],
    "star98": lambda fam, fi: [_glm_for(fam, fi), _glm_for(fam, fi, standardize=True)],
    "lbw": lambda fam, fi: [LogisticRegression(C=np.inf), _glm_for(fam, fi)],
    "scotvote": lambda fam, fi: [_glm_for(fam, fi), _glm_for("gamma", fi),
                                 _glm_for(fam, fi, standardize=True)],
    "cpunish_offset": lambda fam, fi: [PoissonRegressor(alpha=0.0),
                                       TweedieRegressor(power=1, alpha=0.0), _glm_for(fam, fi)],
    "invgauss": lambda fam, fi: [_glm_for(fam, fi), _glm_for("inverse_gaussian", fi)],
    "committee": lambda fam, fi: [_glm_for(fam, fi)],
    "tweedie": lambda fam, fi: [TweedieRegressor(power=1.5, link="identity", alpha=0.0,
                                                 fit_intercept=False), _glm_for(fam, fi)],
}

#: (case, estimator) pairs where a ConvergenceWarning is the expected outcome: coordinate
#: descent with alpha = 0 on Longley's condition number (1e8) stops at max_iter, as
#: scikit-learn's Lasso(alpha=0) does.
MAY_WARN = {("longley", "Lasso")}

CASES = [(name, i) for name, make in ESTIMATORS.items()
         for i in range(len(make(F.Gaussian(), True)))]


@functools.cache
def _reference(name):
    """The case's data and `lj.fit`'s answer (R's, checked against R below)."""
    X, y, w, off, family, fi, ref = _case(name)
    expected = lj.fit(X, y, family=family, weights=w, offset=off, fit_intercept=fi,
                      solver=TIGHT)
    want = np.r_[expected.params["intercept"], expected.params["coef"]] if fi else \
        np.asarray(expected.params["coef"])
    r_params = _const_first(ref.params) if fi else ref.params
    np.testing.assert_allclose(want, r_params, rtol=1e-3)  # lj.fit is R's answer
    return (X, y, w, off, family, fi), want


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_estimator_gives_fit_answer(name, index):
    (X, y, w, off, family, fi), want = _reference(name)
    est = ESTIMATORS[name](family, fi)[index]
    kwargs = {} if off is None else {"offset": off}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y, sample_weight=w, **kwargs)
    if any(issubclass(c.category, ConvergenceWarning) for c in caught):
        assert (name, type(est).__name__) in MAY_WARN
        return  # a warned non-convergence is an allowed outcome
    coef = np.asarray(est.coef_).reshape(-1)
    intercept = float(np.asarray(est.intercept_).reshape(-1)[0])
    got = np.r_[intercept, coef] if fi else coef
    np.testing.assert_allclose(got, want, rtol=1e-6)
