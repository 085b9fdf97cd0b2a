"""summarize() against R (values shipped in statsmodels' test suite) and statsmodels.

R references: statsmodels/genmod/tests/results/results_glm.py (classes Longley, Star98,
Lbw, Scotvote, Cpunish, Cpunish_offset, InvGauss, Committee, CpunishTweediePower15),
hard-coded there from R's summary(glm(...)); the data sets are statsmodels.datasets
(longley, star98, scotland, cpunish, committee) and the CSV files next to results_glm.py.
Robust covariances: statsmodels' GLM / OLS / WLS `cov_type` results.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
import statsmodels.api as sm
from statsmodels.genmod.tests.results import results_glm as R

import linjax as lj
from linjax import families as F
from linjax import inference
from linjax import links as L
from tests import zoo

warnings.filterwarnings("ignore", module="statsmodels")

# Exact Newton (observed information) converges quadratically on every case; Fisher
# scoring stalls near 1e-7 relative accuracy on the ill-conditioned committee design.
TIGHT = lj.solvers.Newton(fisher=False)


def _const_first(a):
    """statsmodels' R results put the constant last; linjax puts the intercept first."""
    a = np.asarray(a, float)
    return np.r_[a[-1], a[:-1]]


def _cpunish():
    d = sm.datasets.cpunish.load()
    X = np.asarray(d.exog, float).copy()
    X[:, 3] = np.log(X[:, 3])
    return X, np.asarray(d.endog, float)


def _case(name):
    """(X, y, weights, offset, family, fit_intercept, R reference, k for R's AIC)."""
    if name == "longley":  # gaussian identity
        d = sm.datasets.longley.load()
        return (np.asarray(d.exog, float), np.asarray(d.endog, float), None, None,
                F.Gaussian(), True, R.Longley())
    if name == "star98":  # binomial with trials as weights
        d = sm.datasets.star98.load()
        Y = np.asarray(d.endog, float)
        trials = Y.sum(axis=1)
        return (np.asarray(d.exog, float), Y[:, 0] / trials, trials, None, F.Binomial(), True,
                R.Star98())
    if name == "lbw":  # bernoulli logit
        ref = R.Lbw()
        return (np.asarray(ref.exog, float)[:, :-1], np.asarray(ref.endog, float), None, None,
                F.Binomial(), True, ref)
    if name == "scotvote":  # gamma, inverse link
        d = sm.datasets.scotland.load()
        return (np.asarray(d.exog, float), np.asarray(d.endog, float), None, None, F.Gamma(),
                True, R.Scotvote())
    if name == "cpunish_offset":  # poisson log, exposure 100 (offset log 100)
        # Cpunish_offset prints 4 digits; the same fit without the offset (class Cpunish,
        # 7 digits) has the same slopes, deviances, llf and standard errors, and the
        # intercept shifted by -log(100).
        X, y = _cpunish()
        ref = R.Cpunish()
        ref.params = np.r_[ref.params[:-1], ref.params[-1] - np.log(100.0)]
        return X, y, None, np.full(len(y), np.log(100.0)), F.Poisson(), True, ref
    if name == "invgauss":  # inverse gaussian, canonical 1/mu^2 link
        ref = R.InvGauss()
        return (np.asarray(ref.exog, float)[:, :-1], np.asarray(ref.endog, float), None, None,
                F.InverseGaussian(), True, ref)
    if name == "committee":  # negative binomial, theta = 1, log link
        d = sm.datasets.committee.load()
        X = np.asarray(d.exog, float).copy()
        X[:, 2] = np.log(X[:, 2])
        X = np.column_stack([X, X[:, 2] * X[:, 1]])
        return X, np.asarray(d.endog, float), None, None, F.NegativeBinomial(alpha=1.0), True, \
            R.Committee()
    if name == "tweedie":  # tweedie(var.power=1.5, link.power=1), no intercept
        df = sm.datasets.cpunish.load().data
        X = np.column_stack([df.INCOME, df.SOUTH]).astype(float)
        return (X, np.asarray(df.EXECUTIONS, float), None, None,
                F.Tweedie(power=1.5, link=L.Identity()), False, R.CpunishTweediePower15())
    raise ValueError(name)


R_CASES = ["longley", "star98", "lbw", "scotvote", "cpunish_offset", "invgauss", "committee",
           "tweedie"]


@pytest.fixture(scope="module", params=R_CASES)
def r_case(request):
    X, y, w, off, family, fi, ref = _case(request.param)
    result = lj.fit(X, y, family=family, weights=w, offset=off, fit_intercept=fi, solver=TIGHT)
    # R's summary.glm for negative.binomial(theta) estimates the dispersion (Pearson)
    disp = "pearson" if request.param == "committee" else None
    s = inference.summarize(result, X, y, weights=w, offset=off, dispersion=disp)
    return request.param, s, ref, (X, y, w, off, family, fi, result)


def test_against_r(r_case):
    name, s, ref, _ = r_case
    fi = name != "tweedie"
    params = _const_first(ref.params) if fi else ref.params
    bse = _const_first(ref.bse) if fi else ref.bse
    # R printed 7-10 significant digits. Where R's looser convergence (glm's epsilon
    # 1e-8 on the deviance) or rounding shows, the tolerance says so.
    p_rtol = {"committee": 1e-3, "cpunish_offset": 2e-6, "tweedie": 5e-6}.get(name, 1e-6)
    b_rtol = {"committee": 1e-4, "tweedie": 1e-4, "lbw": 3e-5}.get(name, 1e-5)
    np.testing.assert_allclose(s.params, params, rtol=p_rtol, atol=1e-10)
    np.testing.assert_allclose(s.bse, bse, rtol=b_rtol)
    np.testing.assert_allclose(s.deviance, ref.deviance, rtol=1e-6 if name == "committee"
                               else 1e-9)
    if hasattr(ref, "null_deviance"):
        np.testing.assert_allclose(s.null_deviance, ref.null_deviance, rtol=1e-6)
    if hasattr(ref, "aic_R"):
        np.testing.assert_allclose(s.aic, ref.aic_R, rtol=1e-6)
        # R: logLik = k - AIC / 2, k counting the dispersion where it is estimated
        k = float(s.df_model) + 1 + (name in ("longley", "scotvote", "invgauss"))
        np.testing.assert_allclose(s.llf, k - ref.aic_R / 2, rtol=1e-6)
    if name in ("longley", "star98", "cpunish_offset", "committee"):  # llf printed from R
        np.testing.assert_allclose(s.llf, ref.llf, rtol=1e-6)
    if name in ("longley", "scotvote"):
        np.testing.assert_allclose(s.scale, ref.scale, rtol=1e-6)
    assert int(s.df_resid) == ref.df_resid
    if fi:  # statsmodels' df_model is rank - 1 even without an intercept; linjax's is k
        assert int(s.df_model) == ref.df_model


def test_against_statsmodels_tight(r_case):
    """The same fits against statsmodels' GLM at tight tolerance: bse to 1e-7."""
    name, s, ref, (X, y, w, off, family, fi, result) = r_case
    if name in ("longley",):
        pytest.skip("longley is ill-conditioned beyond what statsmodels' pinv reaches")
    sm_fam = {
        "star98": sm.families.Binomial(), "lbw": sm.families.Binomial(),
        "scotvote": sm.families.Gamma(), "cpunish": sm.families.Poisson(),
        "cpunish_offset": sm.families.Poisson(), "invgauss": sm.families.InverseGaussian(),
        "committee": sm.families.NegativeBinomial(alpha=1.0),
        "tweedie": sm.families.Tweedie(var_power=1.5, link=sm.families.links.Identity()),
    }[name]
    Xs = sm.add_constant(X, prepend=True) if fi else X
    kw = {"var_weights": w} if w is not None else {}
    m = sm.GLM(y, Xs, family=sm_fam, offset=off, **kw).fit(
        tol=1e-13, scale="x2" if name == "committee" else None, use_t=s.use_t)
    # committee's design is ill-conditioned (columns from 0.4 to 119 in scale): the
    # optimum itself is determined to ~1e-7 relative in double precision
    rtol = 1e-6 if name == "committee" else 1e-7
    np.testing.assert_allclose(s.params, m.params, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(s.bse, m.bse, rtol=rtol)
    np.testing.assert_allclose(s.pvalues, m.pvalues, rtol=1e-6, atol=1e-300)


@pytest.fixture(scope="module")
def poisson_zoo():
    X, y, w, off = zoo.problem("poisson")
    result = lj.fit(X, y, family=F.Poisson(), weights=w, offset=off, solver=TIGHT)
    m = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson(), var_weights=w,
               offset=off).fit(tol=1e-13)
    return X, y, w, off, result, m


def _irls_wls(m, X, w, off, link_deriv):
    """statsmodels WLS of the working response with the final IRLS weights."""
    mu = m.fittedvalues
    eta = np.log(mu)
    dmu = link_deriv(eta)
    z = eta - off + (m.model.endog - mu) / dmu
    W = w * dmu**2 / m.model.family.variance(mu)
    return sm.WLS(z, sm.add_constant(X), weights=W)


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_hc_against_statsmodels(poisson_zoo, cov_type):
    X, y, w, off, result, m = poisson_zoo
    s = inference.summarize(result, X, y, weights=w, offset=off, cov_type=cov_type)
    if cov_type == "HC0":
        ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson(), var_weights=w,
                     offset=off).fit(tol=1e-13, cov_type="HC0")
        np.testing.assert_allclose(s.cov_params, ref.cov_params(), rtol=1e-8)
    # statsmodels' GLM returns HC0 for every HCx; its WLS on the IRLS working response
    # (the GLM's sandwich, as R's sandwich::vcovHC(glm)) has HC1-HC3.
    ref = _irls_wls(m, X, w, off, np.exp).fit(cov_type=cov_type)
    np.testing.assert_allclose(s.cov_params, ref.cov_params(), rtol=1e-8)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3"])
def test_gaussian_against_ols(cov_type):
    X, y, _, _ = zoo.problem("gaussian")
    result = lj.fit(X, y)
    s = inference.summarize(result, X, y, cov_type=cov_type)
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type=cov_type)
    np.testing.assert_allclose(s.cov_params, ref.cov_params(), rtol=1e-8)
    if cov_type == "nonrobust":
        np.testing.assert_allclose(s.pvalues, ref.pvalues, rtol=1e-8)
        np.testing.assert_allclose(s.conf_int, ref.conf_int(), rtol=1e-8)
        np.testing.assert_allclose(s.llf, ref.llf, rtol=1e-10)
        np.testing.assert_allclose(s.aic, ref.aic + 2, rtol=1e-10)  # R counts sigma
        np.testing.assert_allclose(s.bic, ref.bic + np.log(len(y)), rtol=1e-10)


def test_cluster_against_statsmodels(poisson_zoo):
    X, y, w, off, result, _ = poisson_zoo
    groups = np.repeat(np.arange(24), 5)[np.random.default_rng(3).permutation(len(y))]
    labels = np.array([f"g{g}" for g in groups])  # any hashable labels
    s = inference.summarize(result, X, y, weights=w, offset=off, groups=labels)
    assert s.cov_type == "cluster"
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson(), var_weights=w,
                 offset=off).fit(tol=1e-13, cov_type="cluster", cov_kwds={"groups": groups})
    np.testing.assert_allclose(s.cov_params, ref.cov_params(), rtol=1e-8)


def test_observed_information_matches_statsmodels_noncanonical():
    X, y, w, off = zoo.problem("gamma")
    fam = F.Gamma(link=L.Log())
    result = lj.fit(X, y, family=fam, weights=w, offset=off, solver=TIGHT)
    smf = sm.families.Gamma(sm.families.links.Log())
    base = sm.GLM(y, sm.add_constant(X), family=smf, var_weights=w, offset=off)
    s = inference.summarize(result, X, y, weights=w, offset=off, cov_type="HC0",
                            information="observed")
    ref = base.fit(tol=1e-13, cov_type="HC0")  # statsmodels' bread: observed Hessian
    np.testing.assert_allclose(s.cov_params, ref.cov_params(), rtol=1e-7)
    s = inference.summarize(result, X, y, weights=w, offset=off)
    ref = base.fit(tol=1e-13, use_t=True)
    np.testing.assert_allclose(s.bse, ref.bse, rtol=1e-7)  # expected information, t
    np.testing.assert_allclose(s.scale, ref.scale, rtol=1e-9)
    np.testing.assert_allclose(s.pvalues, ref.pvalues, rtol=1e-6)
    np.testing.assert_allclose(s.null_deviance, ref.null_deviance, rtol=1e-9)


def test_student_t_tails_and_quantiles():
    df = jnp.array([1.0, 2.5, 5.0, 30.0, 1000.0])
    for t in [0.0, 0.3, 1.96, 4.0, 25.0]:
        np.testing.assert_allclose(inference.t_sf2(t, df), 2 * scipy.stats.t.sf(t, df),
                                   rtol=1e-10)
    for p in [0.6, 0.975, 0.995, 1 - 1e-6]:
        np.testing.assert_allclose(inference.t_ppf(p, df), scipy.stats.t.ppf(p, df),
                                   rtol=1e-9)


def test_logit_odds_ratios_table_and_frame():
    X, y, _, _ = zoo.problem("binomial")
    result = lj.fit(X, y, family=F.Binomial())
    s = inference.summarize(result, X, y, alpha=0.1, feature_names=["age", "dose", "bmi"])
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial()).fit(tol=1e-13)
    np.testing.assert_allclose(s.odds_ratios, np.exp(ref.params), rtol=1e-7)
    np.testing.assert_allclose(s.odds_ratio_conf_int, np.exp(ref.conf_int(alpha=0.1)),
                               rtol=1e-7)
    text = str(s)
    assert "Odds ratio" in text and "dose" in text and "z value" in text
    assert "binomial family taken to be 1" in text
    frame = s.to_frame()
    assert list(frame.index) == ["Intercept", "age", "dose", "bmi"]
    np.testing.assert_allclose(frame["P>|z|"], ref.pvalues, rtol=1e-6)
    np.testing.assert_allclose(frame["odds ratio"], np.exp(ref.params), rtol=1e-7)
    with pytest.raises(ValueError, match="logit"):
        _ = inference.summarize(lj.fit(X, y, family=F.Poisson()), X, y).odds_ratios


def test_jit_and_vmap(poisson_zoo):
    X, y, w, off, result, _ = poisson_zoo
    fam = F.Poisson()
    eager = inference.summarize(result, X, y, weights=w, offset=off, cov_type="HC3")

    @jax.jit
    def run(X, y, w, off):
        r = lj.fit(X, y, family=fam, weights=w, offset=off, solver=TIGHT)
        return inference.summarize(r, X, y, weights=w, offset=off, cov_type="HC3")

    W = jnp.stack([jnp.asarray(w), jnp.ones(len(y))])
    batched = jax.vmap(run, in_axes=(None, None, 0, None))(jnp.asarray(X), jnp.asarray(y), W,
                                                           jnp.asarray(off))
    assert batched.bse.shape == (2, 4)
    np.testing.assert_allclose(batched[0].bse, eager.bse, rtol=1e-9)
    np.testing.assert_allclose(batched[0].null_deviance, eager.null_deviance, rtol=1e-9)
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson(), offset=off).fit(
        tol=1e-13, cov_type="HC0")
    np.testing.assert_allclose(batched[1].params, ref.params, rtol=1e-8)
    assert "batch of 2" in repr(batched)
    assert "Intercept" in str(batched[1])


@pytest.fixture(scope="module")
def ridge_binomial():
    X, y, w, _ = zoo.problem("binomial")
    pen = lj.penalties.L2(alpha=0.05)
    return X, y, w, pen, lj.fit(X, y, family=F.Binomial(), weights=w, penalty=pen,
                                solver=TIGHT)


def test_ridge_is_posterior_and_sandwich(ridge_binomial):
    X, y, w, pen, result = ridge_binomial
    alpha = 0.05
    s = inference.summarize(result, X, y, weights=w)
    Xd = np.column_stack([np.ones(len(y)), X])
    beta = np.asarray(s.params)
    mu = 1 / (1 + np.exp(-Xd @ beta))
    H = Xd.T @ ((w * mu * (1 - mu))[:, None] * Xd)
    P = np.diag(np.r_[0.0, np.full(3, alpha * w.sum())])
    np.testing.assert_allclose(s.cov_params, np.linalg.inv(H + P), rtol=1e-8)
    assert "posterior" in str(s)
    s0 = inference.summarize(result, X, y, weights=w, cov_type="HC0")
    B = np.linalg.inv(H + P)
    S = (w * (y - mu))[:, None] * Xd
    np.testing.assert_allclose(s0.cov_params, B @ S.T @ S @ B, rtol=1e-8)


def test_l1_reports_no_se_for_zero_coefficients():
    X, y, _, _ = zoo.problem("poisson")
    Xw = np.column_stack([X, np.random.default_rng(1).normal(size=len(y)) * 0.01])
    X = Xw[:, :3]
    params = {"coef": jnp.array([0.35, 0.0, 0.15]), "intercept": jnp.array(0.3)}
    result = lj.FitResult(params=params, objective=jnp.array(0.0), n_iter=jnp.array(1),
                          status=jnp.array(0), converged=jnp.array(True), family=F.Poisson(),
                          penalty=lj.penalties.L1(alpha=0.1), fit_intercept=True)
    s = inference.summarize(result, X, y)
    assert np.isnan(s.bse[2]) and np.all(np.isfinite(np.asarray(s.bse)[[0, 1, 3]]))
    assert int(s.df_model) == 2
    # the active set's covariance: the unpenalized information over the active columns
    Xa = np.column_stack([np.ones(len(y)), X[:, [0, 2]]])
    mu = np.exp(Xa @ np.array([0.3, 0.35, 0.15]))
    np.testing.assert_allclose(np.asarray(s.bse)[[0, 1, 3]],
                               np.sqrt(np.diag(np.linalg.inv(Xa.T @ (mu[:, None] * Xa)))),
                               rtol=1e-9)
    text = str(s)
    assert "No standard errors are reported for coefficients set to zero" in text


def test_bad_inputs(poisson_zoo):
    X, y, _, _, result, _ = poisson_zoo
    with pytest.raises(ValueError, match="cov_type"):
        inference.summarize(result, X, y, cov_type="HC9")
    with pytest.raises(ValueError, match="groups"):
        inference.summarize(result, X, y, cov_type="cluster")
    with pytest.raises(ValueError, match="groups"):
        inference.summarize(result, X, y, groups=np.arange(5))
    with pytest.raises(ValueError, match="y"):
        inference.summarize(result, X, -y - 1)
    with pytest.raises(ValueError, match="feature_names"):
        inference.summarize(result, X, y, feature_names=["a"])
    with pytest.raises(ValueError, match="information"):
        inference.summarize(result, X, y, information="hessian")
    with pytest.raises(ValueError, match="dispersion"):
        inference.summarize(result, X, y, dispersion="deviance")


def test_map_with_gaussian_prior_is_ridge(ridge_binomial):
    """Bayesian reading of L2: the MAP under L2.log_prior is the ridge fit."""
    X, y, w, pen, ridge = ridge_binomial
    fam = F.Binomial()
    n = w.sum()

    def neg_log_posterior(params):
        mu = lj.predict(params, jnp.asarray(X), fam)
        loglik = jnp.sum(w * fam.log_prob(jnp.asarray(y), mu))
        return -(loglik + pen.log_prior(params["coef"], n=n))

    # the log posterior is concave, so a stationary point is its maximum: the ridge fit
    grad = jax.jit(jax.grad(neg_log_posterior))
    g = grad(ridge.params)
    scale = grad(lj.init_params(3))
    assert float(jnp.max(jnp.abs(g["coef"]))) < 1e-9 * float(jnp.max(jnp.abs(scale["coef"])))
    assert abs(float(g["intercept"])) < 1e-9 * abs(float(scale["intercept"]))


def test_log_prior_densities():
    coef = jnp.array([0.3, -1.2, 0.0, 2.0])
    n, alpha = 50.0, 0.2
    np.testing.assert_allclose(
        lj.penalties.L2(alpha=alpha).log_prior(coef, n=n),
        scipy.stats.norm.logpdf(np.asarray(coef), scale=1 / np.sqrt(n * alpha)).sum(),
        rtol=1e-12)
    np.testing.assert_allclose(
        lj.penalties.L1(alpha=alpha).log_prior(coef, n=n),
        scipy.stats.laplace.logpdf(np.asarray(coef), scale=1 / (n * alpha)).sum(), rtol=1e-12)
    # a zero penalty factor is a flat prior: that coefficient adds nothing
    weighted = lj.penalties.L2(alpha=alpha, weights=jnp.array([1.0, 1.0, 1.0, 0.0]))
    np.testing.assert_allclose(
        weighted.log_prior(coef, n=n),
        scipy.stats.norm.logpdf(np.asarray(coef[:3]), scale=1 / np.sqrt(n * alpha)).sum(),
        rtol=1e-12)


@pytest.mark.parametrize("alpha", [1.5, -0.1, 0.0, 1.0, np.nan, "0.05"])
def test_alpha_outside_zero_one_is_refused(poisson_zoo, alpha):
    X, y, _, _, result, _ = poisson_zoo
    with pytest.raises(ValueError, match=r"alpha: expected a number in the open interval \(0, 1\)"):
        inference.summarize(result, X, y, alpha=alpha)


@pytest.mark.parametrize("dispersion", [-1.0, 0.0, np.nan, np.inf])
def test_non_positive_dispersion_is_refused(poisson_zoo, dispersion):
    X, y, _, _, result, _ = poisson_zoo
    with pytest.raises(ValueError, match="dispersion: expected a finite positive number"):
        inference.summarize(result, X, y, dispersion=dispersion)


def test_dispersion_without_residual_df_is_reported():
    """R: NaN dispersion and standard errors when df_resid = 0; linjax says why."""
    X, y, _, _ = zoo.problem("gaussian")
    X, y = X[:4], y[:4]
    result = lj.fit(X, y)
    with pytest.warns(RuntimeWarning, match="no residual degrees of freedom"):
        s = inference.summarize(result, X, y)
    assert np.isnan(float(s.scale)) and np.all(np.isnan(np.asarray(s.bse)))
    assert "dispersion cannot be estimated" in str(s)


def test_wrongly_shaped_x_names_x(poisson_zoo):
    X, y, _, _, result, _ = poisson_zoo
    with pytest.raises(ValueError, match=r"X: expected 3 columns"):
        inference.summarize(result, X[:, :2], y)
    with pytest.raises(ValueError, match=r"X: expected 3 columns"):
        inference.summarize(result, np.column_stack([X, X[:, 0]]), y)


def test_summarize_a_fit_batch_result_per_problem():
    """A batch result gives one summary per problem (docs/scale.md): each equals the summary of
    that problem's own fit, and statsmodels'."""
    X, y, w, _ = zoo.problem("poisson")
    rng = np.random.default_rng(5)
    Y = np.stack([y, rng.poisson(np.exp(0.2 + X @ zoo.TRUE_COEF)).astype(float)])
    batch = lj.fit_batch(X, Y, family=F.Poisson(), weights=w)
    s = inference.summarize(batch, X, Y, weights=w)
    assert s.bse.shape == (2, 4) and s.aic.shape == (2,)
    for i in range(2):
        ref = sm.GLM(Y[i], sm.add_constant(X), family=sm.families.Poisson(),
                     var_weights=w).fit(tol=1e-13)
        np.testing.assert_allclose(s[i].params, ref.params, rtol=1e-7)
        np.testing.assert_allclose(s[i].bse, ref.bse, rtol=1e-7)
        np.testing.assert_allclose(s[i].aic, ref.aic, rtol=1e-9)
    assert "Intercept" in str(s[1])
    with pytest.raises(ValueError, match=r"y: expected shape \(2, n\)"):
        inference.summarize(batch, X, y, weights=w)
