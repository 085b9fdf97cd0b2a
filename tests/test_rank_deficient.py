"""Rank-deficient designs, as R's glm: aliased columns, n - rank residual df, R's statistics.

R drops the aliased columns (the later ones of each dependent set, LINPACK dqrdc2 in column
order) and fits the rest, so its coefficients, standard errors, dispersion and AIC are those
of the reduced design: the references here are statsmodels' GLM on the reduced design and
scipy's log densities (R's logLik), and the alias pattern is checked with numpy's rank.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
import statsmodels.api as sm

import linjax as lj
from linjax import families as F
from linjax import inference
from linjax.inference import RankWarning
from linjax.solvers import Status
from tests import zoo

warnings.filterwarnings("ignore", module="statsmodels")

#: X's columns 2 (a duplicate of column 0) and 4 (x1 - 0.5 x2 + 2 x3) are aliased.
ALIASED_COLUMNS = [2, 4]
FAMILIES = {"gaussian": (F.Gaussian(), sm.families.Gaussian()),
            "poisson": (F.Poisson(), sm.families.Poisson()),
            "binomial": (F.Binomial(), sm.families.Binomial())}


def deficient(X):
    """[x1, x2, x1, x3, x1 - 0.5 x2 + 2 x3]: rank 3 (+ intercept) of 5 columns."""
    return np.column_stack([X[:, 0], X[:, 1], X[:, 0], X[:, 2],
                            X[:, 0] - 0.5 * X[:, 1] + 2.0 * X[:, 2]])


def data(name):
    """(X reduced (n, 3), y, weights, offset); binomial: proportions with integer trials."""
    X, y, w, off = zoo.problem("gaussian" if name == "binomial" else name)
    if name == "binomial":
        rng = np.random.default_rng(7)
        w = rng.integers(1, 5, size=len(y)).astype(float)
        eta = 0.3 + X @ zoo.TRUE_COEF + off
        y = rng.binomial(w.astype(int), 1 / (1 + np.exp(-eta))) / w
    return X, y, w, off


def r_aic(name, y, mu, w, deviance, rank):
    """R's AIC: -2 logLik + 2 (rank + 1 if the dispersion is estimated)."""
    if name == "gaussian":  # R's gaussian()$aic + 2 rank, the dispersion counted
        n = len(y)
        return n * (np.log(2 * np.pi * deviance / n) + 1) + 2 - np.log(w).sum() + 2 * rank
    if name == "poisson":
        return -2 * np.sum(w * scipy.stats.poisson.logpmf(y, mu)) + 2 * rank
    trials = w.astype(int)
    return -2 * np.sum(scipy.stats.binom.logpmf(np.rint(y * w), trials, mu)) + 2 * rank


@pytest.fixture(scope="module", params=list(FAMILIES))
def deficient_fit(request):
    name = request.param
    X, y, w, off = data(name)
    family, sm_family = FAMILIES[name]
    Xd = deficient(X)
    with pytest.warns(RankWarning, match=r"column\(s\) \[2, 4\]"):
        result = lj.fit(Xd, y, family=family, weights=w, offset=off)
    if name == "binomial":  # R's binomial with trials: successes and failures
        endog = np.column_stack([y * w, (1 - y) * w])
        ref = sm.GLM(endog, sm.add_constant(X), family=sm_family, offset=off).fit(tol=1e-13)
    else:
        ref = sm.GLM(y, sm.add_constant(X), family=sm_family, var_weights=w, offset=off).fit(
            tol=1e-13, use_t=name == "gaussian")  # R's t tests where phi is estimated
    return name, Xd, y, w, off, family, result, ref


def test_alias_pattern_is_rs(deficient_fit):
    """Later columns of each dependent set are aliased; the rest has the design's rank."""
    _, Xd, y, w, off, family, result, _ = deficient_fit
    s = inference.summarize(result, Xd, y, weights=w, offset=off)
    design = np.column_stack([np.ones(len(y)), Xd])
    aliased = np.asarray(s.aliased)
    np.testing.assert_array_equal(np.flatnonzero(aliased) - 1, ALIASED_COLUMNS)
    rank = np.linalg.matrix_rank(design)
    assert np.linalg.matrix_rank(design[:, ~aliased]) == rank == (~aliased).sum()
    for j in np.flatnonzero(aliased):  # each aliased column is in the span of earlier ones
        assert np.linalg.matrix_rank(design[:, :j + 1]) == np.linalg.matrix_rank(design[:, :j])


def test_summary_equals_r_on_the_reduced_design(deficient_fit):
    name, Xd, y, w, off, family, result, ref = deficient_fit
    s = inference.summarize(result, Xd, y, weights=w, offset=off)
    keep = ~np.asarray(s.aliased)
    for got, want in ((s.params, ref.params), (s.bse, ref.bse), (s.pvalues, ref.pvalues),
                      (s.statistic, ref.tvalues), (s.conf_int, ref.conf_int())):
        got = np.asarray(got)
        np.testing.assert_allclose(got[keep], want, rtol=1e-7, atol=1e-10)
        assert np.all(np.isnan(got[~keep]))
    rank = keep.sum()
    assert float(s.df_resid) == len(y) - rank == ref.df_resid
    assert float(s.df_model) == rank - 1
    np.testing.assert_allclose(float(s.scale), ref.scale, rtol=1e-8)
    np.testing.assert_allclose(float(s.deviance), ref.deviance, rtol=1e-8)
    np.testing.assert_allclose(float(s.aic),
                               r_aic(name, y, ref.fittedvalues, w, ref.deviance, rank),
                               rtol=1e-8)
    assert "Coefficients: (2 not defined because of singularities)" in str(s)


def test_fitted_values_and_r_coefficients_for_prediction(deficient_fit):
    """lj.fit keeps the minimum-norm coefficients (R's fitted values); drop_aliased gives
    R's coefficients, so predictions on new rows ignore the aliased columns as R's do."""
    name, Xd, y, w, off, family, result, ref = deficient_fit
    assert int(result.status) == Status.SINGULAR
    np.testing.assert_allclose(lj.predict(result.params, Xd, family, offset=off),
                               ref.fittedvalues, rtol=1e-7)
    assert inference.aliased_columns(result, Xd, y, weights=w, offset=off) == ALIASED_COLUMNS
    r_fit = inference.drop_aliased(result, Xd, y, weights=w, offset=off)
    coef = np.asarray(r_fit.params["coef"])
    np.testing.assert_array_equal(coef[ALIASED_COLUMNS], 0.0)
    np.testing.assert_allclose(np.r_[r_fit.params["intercept"], coef[[0, 1, 3]]], ref.params,
                               rtol=1e-7)
    # new rows where the aliased columns are no longer combinations of the others
    Xnew = np.random.default_rng(3).normal(size=(10, 5))
    np.testing.assert_allclose(lj.predict(r_fit.params, Xnew, family),
                               ref.predict(sm.add_constant(Xnew[:, [0, 1, 3]]),
                                           offset=np.zeros(10)), rtol=1e-7)
    with pytest.raises(ValueError, match="X: expected 5 columns"):
        inference.drop_aliased(result, Xd[:, :3], y, weights=w, offset=off)


def test_jit_summary_equals_eager(deficient_fit):
    """Under jit the fit keeps its solver's coefficients; summarize still gives R's table."""
    _, Xd, y, w, off, family, result, _ = deficient_fit
    eager = inference.summarize(result, Xd, y, weights=w, offset=off)

    @jax.jit
    def run(Xd, y, w, off):
        r = lj.fit(Xd, y, family=family, weights=w, offset=off)
        return inference.summarize(r, Xd, y, weights=w, offset=off)

    traced = run(jnp.asarray(Xd), jnp.asarray(y), jnp.asarray(w), jnp.asarray(off))
    np.testing.assert_array_equal(traced.aliased, eager.aliased)
    for field in ("params", "bse", "pvalues"):
        np.testing.assert_allclose(getattr(traced, field), getattr(eager, field), rtol=1e-7)
    np.testing.assert_allclose(traced.aic, eager.aic, rtol=1e-10)


@pytest.mark.parametrize("family", ["gaussian", "poisson", "binomial"])
def test_newton_reports_singular_on_a_copy_of_the_intercept(family):
    """A column of ones beside the intercept left the Hessian's last Cholesky pivot at
    rounding level: Newton stepped along the null space and said converged (or max_iter)."""
    X, y, w, _ = zoo.problem(family)
    Xc = np.column_stack([X, np.ones(len(y))])  # the intercept column again
    with pytest.warns(RankWarning, match=r"column\(s\) \[3\]"):
        result = lj.fit(Xc, y, family=family, solver="newton")
    assert int(result.status) == Status.SINGULAR
    ref = lj.fit(X, y, family=family, solver="newton")
    np.testing.assert_allclose(lj.predict(result.params, Xc, family),
                               lj.predict(ref.params, X, family), rtol=1e-8)
    assert np.all(np.abs(np.asarray(result.params["coef"])) < 10)  # no drift along the null space


def test_full_rank_and_ridge_have_nothing_aliased():
    X, y, w, off = zoo.problem("poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RankWarning)
        full = lj.fit(X, y, family="poisson", weights=w, offset=off)
        ridge = lj.fit(deficient(X), y, family="poisson", weights=w, offset=off,
                       penalty=lj.penalties.L2(alpha=0.1))
    s = inference.summarize(full, X, y, weights=w, offset=off)
    assert not np.any(np.asarray(s.aliased)) and float(s.df_resid) == len(y) - 4
    assert "singularities" not in str(s)
    # an L2 penalty identifies every penalized column: nothing is aliased
    s = inference.summarize(ridge, deficient(X), y, weights=w, offset=off)
    assert not np.any(np.asarray(s.aliased)) and np.all(np.isfinite(np.asarray(s.bse)))
