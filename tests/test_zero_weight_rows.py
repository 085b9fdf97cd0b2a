"""Rows of weight zero count for nothing, even where their mean leaves the family's domain."""

import numpy as np
import statsmodels.api as sm

import linjax as lj


def test_zero_weight_rows_outside_the_links_domain_do_not_stop_the_fit():
    """Gamma with the inverse link on the Scottish vote data (R's intercept is negative):
    all-zero rows of weight 0 have mu = 1 / intercept < 0, a NaN loss, which stopped Newton
    at intercept 0 with status 0. The answer must be statsmodels' on the real rows."""
    data = sm.datasets.scotland.load()
    X = np.asarray(data.exog, float)
    y = np.asarray(data.endog, float)
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Gamma()).fit(tol=1e-12)
    Xp = np.vstack([X, np.zeros((5, X.shape[1]))])
    yp = np.concatenate([y, np.full(5, y.mean())])
    w = np.concatenate([np.ones(len(y)), np.zeros(5)])
    result = lj.fit(Xp, yp, family=lj.families.Gamma(), weights=w)
    assert int(result.status) == 0
    np.testing.assert_allclose(result.intercept, ref.params[0], rtol=1e-7)
    np.testing.assert_allclose(result.coef, ref.params[1:], rtol=1e-6, atol=1e-10)
    objective = lj.objective(result.params, Xp, yp, lj.families.Gamma(), weights=w)
    assert np.isfinite(objective)
    np.testing.assert_allclose(result.objective, objective, rtol=1e-12)
