"""Diagnostics against statsmodels (residuals, GLMInfluence, variance_inflation_factor),
R's residuals (shipped in statsmodels' test suite), and scikit-learn (calibration_curve,
brier_score_loss); check_separation on separated and overlapping designs."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.calibration import calibration_curve as sk_calibration_curve
from sklearn.metrics import brier_score_loss
from statsmodels.genmod.tests.results import results_glm as R
from statsmodels.stats.outliers_influence import variance_inflation_factor

import linjax as lj
from linjax import diagnostics as D
from linjax import families as F
from linjax import links as L
from tests import zoo

warnings.filterwarnings("ignore", module="statsmodels")

SM_FAMILIES = {
    "poisson": (F.Poisson(), sm.families.Poisson()),
    "binomial": (F.Binomial(), sm.families.Binomial()),
    "gamma": (F.Gamma(link=L.Log()), sm.families.Gamma(sm.families.links.Log())),
    "inverse_gaussian": (F.InverseGaussian(link=L.Log()),
                         sm.families.InverseGaussian(sm.families.links.Log())),
    "negative_binomial": (F.NegativeBinomial(alpha=0.5),
                          sm.families.NegativeBinomial(alpha=0.5)),
    "tweedie": (F.Tweedie(power=1.5), sm.families.Tweedie(var_power=1.5)),
    "gaussian": (F.Gaussian(), sm.families.Gaussian()),
}


@pytest.fixture(scope="module", params=list(SM_FAMILIES))
def fitted(request):
    name = request.param
    fam, smfam = SM_FAMILIES[name]
    X, y, w, off = zoo.problem(name)
    if name == "tweedie":
        y = np.maximum(y, 0.0) + 1e-3  # statsmodels' Anscombe residual needs y > 0 here
    result = lj.fit(X, y, family=fam, weights=w, offset=off,
                    solver=lj.solvers.Newton(fisher=False))
    m = sm.GLM(y, sm.add_constant(X), family=smfam, var_weights=w, offset=off).fit(tol=1e-13)
    return name, (X, y, w, off), result, m


def test_residuals_against_statsmodels(fitted):
    name, (X, y, w, off), result, m = fitted
    kw = dict(weights=w, offset=off)
    ref = {"response": m.resid_response, "pearson": m.resid_pearson,
           "deviance": m.resid_deviance, "working": m.resid_working,
           "anscombe": m.resid_anscombe_unscaled}
    for kind, expected in ref.items():
        got = D.residuals(result, X, y, kind=kind, **kw)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9, err_msg=kind)


def test_influence_against_statsmodels(fitted):
    name, (X, y, w, off), result, m = fitted
    infl = m.get_influence(observed=False)
    h = D.leverage(result, X, y, weights=w, offset=off)
    np.testing.assert_allclose(h, infl.hat_matrix_diag, rtol=1e-7, atol=1e-12)
    cooks = D.cooks_distance(result, X, y, weights=w, offset=off)
    np.testing.assert_allclose(cooks.distance, infl.cooks_distance[0], rtol=1e-6, atol=1e-14)
    np.testing.assert_array_equal(cooks.influential, infl.cooks_distance[0] > 4 / len(y))


def test_residuals_against_r_cpunish_tweedie():
    """R's residuals(glm(..., tweedie(var.power=1.5, link.power=1))), results_glm.py."""
    ref = R.CpunishTweediePower15()
    df = sm.datasets.cpunish.load().data
    X = np.column_stack([df.INCOME, df.SOUTH]).astype(float)
    y = np.asarray(df.EXECUTIONS, float)
    result = lj.fit(X, y, family=F.Tweedie(power=1.5, link=L.Identity()), fit_intercept=False,
                    solver=lj.solvers.Newton(fisher=False))
    for kind, expected in [("response", ref.resid_response), ("pearson", ref.resid_pearson),
                           ("deviance", ref.resid_deviance), ("working", ref.resid_working)]:
        # R stopped at glm's looser deviance tolerance: agreement to ~1e-5
        np.testing.assert_allclose(D.residuals(result, X, y, kind=kind), expected, rtol=2e-5,
                                   atol=2e-5, err_msg=kind)


def test_vif_and_condition_number():
    rng = np.random.default_rng(0)
    X = zoo.design(0)
    X = np.column_stack([X, X[:, 0] + 0.3 * X[:, 1] + 0.1 * rng.normal(size=len(X))])
    Xc = sm.add_constant(X)
    expected = [variance_inflation_factor(Xc, j) for j in range(1, Xc.shape[1])]
    np.testing.assert_allclose(D.vif(X), expected, rtol=1e-9)
    expected0 = [variance_inflation_factor(X, j, standardize=False) for j in range(X.shape[1])]
    np.testing.assert_allclose(D.vif(X, fit_intercept=False), expected0, rtol=1e-9)
    np.testing.assert_allclose(D.condition_number(X), np.linalg.cond(X), rtol=1e-9)
    np.testing.assert_allclose(D.condition_number(X, fit_intercept=True), np.linalg.cond(Xc),
                               rtol=1e-9)
    # the Longley design is famously ill-conditioned (statsmodels' OLS condition number)
    longley = sm.datasets.longley.load()
    ols = sm.OLS(longley.endog, sm.add_constant(longley.exog)).fit()
    np.testing.assert_allclose(
        D.condition_number(np.asarray(longley.exog, float), fit_intercept=True),
        ols.condition_number, rtol=1e-6)
    batched = jax.vmap(D.vif)(jnp.stack([jnp.asarray(X), jnp.asarray(X[::-1])]))
    np.testing.assert_allclose(batched[1], expected, rtol=1e-9)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_and_brier_against_sklearn(strategy):
    X, y, w, _ = zoo.problem("binomial")
    result = lj.fit(X, y, family=F.Binomial())
    prob = np.asarray(lj.predict(result.params, X, F.Binomial()))
    curve = jax.jit(D.calibration_curve, static_argnames=("n_bins", "strategy"))(
        y, prob, n_bins=8, strategy=strategy)
    keep = np.asarray(curve.counts) > 0
    prob_true, prob_pred = sk_calibration_curve(y, prob, n_bins=8, strategy=strategy)
    np.testing.assert_allclose(np.asarray(curve.prob_true)[keep], prob_true, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(curve.prob_pred)[keep], prob_pred, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(D.brier_score)(y, prob), brier_score_loss(y, prob),
                               rtol=1e-12)
    np.testing.assert_allclose(D.brier_score(y, prob, weights=w),
                               brier_score_loss(y, prob, sample_weight=w), rtol=1e-12)


def test_calibration_empty_bins_are_nan():
    prob = np.array([0.05, 0.1, 0.92, 0.95])
    curve = D.calibration_curve(np.array([0, 0, 1, 1]), prob, n_bins=4)
    np.testing.assert_array_equal(np.asarray(curve.counts), [2, 0, 0, 2])
    assert np.isnan(curve.prob_true[1]) and curve.prob_true[3] == 1.0


def test_leverage_and_residuals_under_jit_and_vmap():
    X, y, w, off = zoo.problem("poisson")
    fam = F.Poisson()
    solver = lj.solvers.Newton(fisher=False)  # as the fixture: one compiled fit
    result = lj.fit(X, y, family=fam, weights=w, offset=off, solver=solver)
    eager = D.leverage(result, X, y, weights=w, offset=off)
    np.testing.assert_allclose(np.sum(eager), 4.0, rtol=1e-10)  # trace of the hat matrix

    def run(yy):
        r = lj.fit(X, yy, family=fam, weights=w, offset=off, solver=solver)
        return (D.leverage(r, X, yy, weights=w, offset=off),
                D.residuals(r, X, yy, kind="anscombe", weights=w, offset=off))

    hb, rb = jax.vmap(jax.jit(run))(jnp.stack([jnp.asarray(y), jnp.asarray(y) + 1.0]))
    np.testing.assert_allclose(hb[0], eager, rtol=1e-9)
    assert rb.shape == (2, len(y))


def _separation_cases():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 2))
    complete_y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)
    quasi_x = np.column_stack([np.r_[np.zeros(10), np.ones(30)], rng.normal(size=40)])
    quasi_y = np.r_[np.zeros(10), (rng.random(30) < 0.5).astype(float)]  # x1 = 0 -> y = 0
    quasi_y[10:12] = [0.0, 1.0]
    single = np.r_[np.linspace(-2, -0.1, 10), np.linspace(0.1, 2, 10)][:, None]
    return {
        "complete": (x, complete_y, "complete"),
        "quasi": (quasi_x, quasi_y, "quasi-complete"),
        "complete-1d": (single, np.r_[np.zeros(10), np.ones(10)], "complete"),
        "overlap": (x, (rng.random(40) < 1 / (1 + np.exp(-x[:, 0]))).astype(float), "none"),
        "overlap-zoo": (*zoo.problem("binomial")[:2], "none"),
        "overlap-1d": (single, np.r_[np.zeros(9), 1.0, 0.0, np.ones(9)], "none"),
    }


@pytest.mark.parametrize("case", list(_separation_cases()))
def test_check_separation(case):
    X, y, kind = _separation_cases()[case]
    sep = D.check_separation(X, y)
    assert sep.kind == kind
    # firthmodels' independent implementation of Konis' LP check agrees
    from firthmodels import detect_separation

    assert sep.separated == bool(detect_separation(X, y).separation)
    if kind != "none":
        # the direction separates: s_i x_i' b >= 0 for all, > 0 for the flagged rows
        Xd = np.column_stack([np.ones(len(y)), X])
        margin = (2 * y - 1) * (Xd @ sep.direction)
        assert np.all(margin >= -1e-8)
        assert np.all(margin[sep.separated_rows] > 0) and sep.separated_rows.any()


def test_bad_inputs():
    X, y, _, _ = zoo.problem("poisson")
    result = lj.fit(X, y, family=F.Poisson())
    with pytest.raises(ValueError, match="kind"):
        D.residuals(result, X, y, kind="studentized")
    with pytest.raises(ValueError, match="strategy"):
        D.calibration_curve(y > 1, np.full(len(y), 0.5), strategy="kmeans")
    with pytest.raises(ValueError, match="y"):
        D.check_separation(X, y[:5])
