"""Inference on lj.fit_batch results: summaries with a leading axis m, and per-problem Wald,
likelihood-ratio and score tests; each problem's answer equals the single-fit answer (whose
values test_inference.py checks against R and statsmodels), and the tests are checked
against statsmodels and R's closed forms."""

import dataclasses
import warnings

import numpy as np
import pytest

import linjax as lj
from linjax import families as F
from linjax import inference
from tests import zoo

warnings.filterwarnings("ignore", module="statsmodels")
warnings.filterwarnings("ignore", message="score test has not been verified")

M = 3
STATS = ("params", "bse", "statistic", "pvalues", "conf_int", "cov_params", "llf", "deviance",
         "null_deviance", "aic", "bic", "scale", "pearson_chi2", "df_resid", "df_model", "nobs")


def _batch_data(name, stacked):
    """M problems of zoo's family `name`: stacked designs (M, n, p) or zoo's design of seed 0
    shared by all, with per-problem weights and offsets."""
    data = [zoo.problem(name, seed=s) for s in range(M)]
    X = np.stack([d[0] for d in data]) if stacked else data[0][0]
    Y, W, O = (np.stack([d[k] for d in data]) for k in (1, 2, 3))
    return X, Y, W, O


def _one(a, i):
    return a[i] if np.ndim(a) == 3 or (np.ndim(a) == 2 and np.shape(a)[0] == M) else a


SUMMARY_CASES = {
    "gamma": (lambda: F.Gamma(link="log"), True, False),
    "tweedie_power_per_problem": (lambda: F.Tweedie(power=np.array([1.3, 1.5, 1.7])), False,
                                  True),
    "gaussian": (lambda: F.Gaussian(), False, True),
    "inverse_gaussian": (lambda: F.InverseGaussian(link="log"), True, True),
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if SUMMARY_CASES[c][2]
                                  else c for c in SUMMARY_CASES])
def test_batch_summary_equals_each_problems_own_summary(case):
    """Every statistic of a batch summary has a leading axis m, and problem i's statistics
    are those of summarize(lj.fit(...)) of problem i (dispersion estimated per problem)."""
    make_family, stacked, _ = SUMMARY_CASES[case]
    name = case.split("_power")[0]
    X, Y, W, O = _batch_data(name, stacked)
    family = make_family()
    batch = lj.fit_batch(X, Y, family=family, weights=W, offset=O)
    s = inference.summarize(batch, X, Y, weights=W, offset=O)
    k = np.shape(X)[-1] + 1
    assert s.params.shape == (M, k) and s.conf_int.shape == (M, k, 2)
    assert s.cov_params.shape == (M, k, k) and s.scale.shape == (M,) and s.aic.shape == (M,)
    assert s.use_t and len(set(np.round(np.asarray(s.scale), 12))) == M  # one scale each
    for i in range(M):
        fam_i = F.Tweedie(power=float(family.power[i])) if "power" in case else family
        single = lj.fit(_one(X, i), Y[i], family=fam_i, weights=W[i], offset=O[i])
        ref = inference.summarize(single, _one(X, i), Y[i], weights=W[i], offset=O[i])
        for field in STATS:
            np.testing.assert_allclose(getattr(s[i], field), getattr(ref, field), rtol=1e-8,
                                       atol=1e-12, err_msg=f"{case} problem {i}: {field}")


def test_batch_summary_prints_a_description_and_stacks_its_frames():
    X, Y, W, O = _batch_data("gamma", True)
    batch = lj.fit_batch(X, Y, family=F.Gamma(link="log"), weights=W, offset=O)
    s = inference.summarize(batch, X, Y, weights=W, offset=O)
    text = str(s)
    assert text.startswith(f"Generalized linear models: a batch of {M} fits, gamma family")
    assert "Coefficients (4): Intercept, x1, x2, x3" in text
    scales = np.asarray(s.scale)
    assert f"median {np.median(scales):.6g}" in text.split("Dispersion:")[1].split("\n")[0]
    assert "Estimate" not in text and len(text.splitlines()) < 12  # not m tables
    assert repr(s) == f"Summary(batch of {M} fits)"
    frame = s.to_frame()
    assert frame.shape == (M * 4, 6) and frame.index.names == ["problem", "term"]
    np.testing.assert_array_equal(frame.loc[2].to_numpy(), s[2].to_frame().to_numpy())
    assert "Intercept" in str(s[1]) and "Estimate" in str(s[1])


# -- Wald, likelihood-ratio and score tests ---------------------------------------------------

import scipy.stats  # noqa: E402
import statsmodels.api as sm  # noqa: E402

from linjax import hypothesis  # noqa: E402

SM_FAMILIES = {"poisson": lambda: sm.families.Poisson(),
               "gamma": lambda: sm.families.Gamma(sm.families.links.Log())}
LJ_FAMILIES = {"poisson": lambda: F.Poisson(), "gamma": lambda: F.Gamma(link="log")}
C2 = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])  # x2 = x3 = 0: full vs reduced


def _sm_fits(name, X, y, w, off):
    fam = SM_FAMILIES[name]
    full = sm.GLM(y, sm.add_constant(X), family=fam(), var_weights=w, offset=off).fit(tol=1e-13)
    reduced = sm.GLM(y, sm.add_constant(X[:, :1]), family=fam(), var_weights=w,
                     offset=off).fit(tol=1e-13)
    return full, reduced


@pytest.mark.parametrize("name", ["poisson", "gamma"])
def test_single_fit_tests_match_statsmodels_and_r(name):
    """Problem 0 of the batch tests below (so the compiled programs are shared)."""
    X, y, w, off = zoo.problem(name)
    family = LJ_FAMILIES[name]()
    data = {"weights": w, "offset": off}
    full = lj.fit(X, y, family=family, **data)
    reduced = lj.fit(X[:, :1], y, family=family, **data)
    sm_full, sm_reduced = _sm_fits(name, X, y, w, off)
    estimated = name == "gamma"

    for use_f in (False, True):  # statsmodels' wald_test, with value c != 0 for one row
        ref = sm_full.wald_test((C2, [0.1, 0.0]), use_f=use_f, scalar=True)
        got = hypothesis.wald_test(full, C2, X, y, value=[0.1, 0.0], use_f=use_f,
                                   **data)
        np.testing.assert_allclose(got.statistic, ref.statistic, rtol=1e-7)
        np.testing.assert_allclose(got.pvalue, ref.pvalue, rtol=1e-6)
        assert got.distribution == ("F" if use_f else "chi2") and float(got.df) == 2
    default = hypothesis.wald_test(full, C2[1], X, y, **data)
    assert default.distribution == ("F" if estimated else "chi2")  # F where phi is estimated
    ref = sm_full.wald_test(C2[1:], use_f=estimated, scalar=True)
    np.testing.assert_allclose(default.statistic, ref.statistic, rtol=1e-7)

    # R's anova(reduced, full, test=): D = deviance difference, phi = the full model's
    deviance = sm_reduced.deviance - sm_full.deviance
    phi = sm_full.pearson_chi2 / sm_full.df_resid if estimated else 1.0
    chisq = hypothesis.lr_test(full, reduced, X, X[:, :1], y, test="chisq", **data)
    np.testing.assert_allclose(chisq.deviance, deviance, rtol=1e-7)
    np.testing.assert_allclose(chisq.statistic, deviance / phi, rtol=1e-7)
    np.testing.assert_allclose(chisq.pvalue, scipy.stats.chi2.sf(deviance / phi, 2), rtol=1e-6)
    if not estimated:  # 2 (llf_full - llf_reduced), statsmodels' likelihood ratio
        np.testing.assert_allclose(chisq.statistic, 2 * (sm_full.llf - sm_reduced.llf),
                                   rtol=1e-7)
    f_test = hypothesis.lr_test(full, reduced, X, X[:, :1], y, test="F", **data)
    df2 = sm_full.df_resid if estimated else np.inf
    f_value = deviance / 2 / phi
    np.testing.assert_allclose(f_test.statistic, f_value, rtol=1e-7)
    f_tail = (scipy.stats.f.sf(f_value, 2, df2) if estimated  # R: pf(F, 2, Inf) below
              else scipy.stats.chi2.sf(2 * f_value, 2))
    np.testing.assert_allclose(f_test.pvalue, f_tail, rtol=1e-6)
    default = hypothesis.lr_test(full, reduced, X, X[:, :1], y, **data)
    assert default.distribution == ("F" if estimated else "chi2")

    # statsmodels' score test with the expected information (R's Rao; equal to the observed
    # one for Poisson's canonical link), dispersion of the reduced model
    ref = sm_reduced.score_test(exog_extra=X[:, 1:], observed=False)
    got = hypothesis.score_test(reduced, X[:, :1], X, y, **data)
    np.testing.assert_allclose(got.statistic, ref.statistic[0], rtol=1e-7)
    np.testing.assert_allclose(got.pvalue, ref.pvalue[0], rtol=1e-6)
    assert float(got.df) == 2
    # lj.inference exports them
    assert inference.wald_test is hypothesis.wald_test and inference.lr_test is hypothesis.lr_test


def _rao_closed_form(X_full, y, w, off, mu):
    """R's anova(test="Rao") for a log-link Poisson reduced fit with mean mu: the explained
    weighted sum of squares of the working residuals (y - mu) / mu regressed on [1, X_full]
    with the working weights w mu."""
    A = np.column_stack([np.ones(len(y)), X_full]) * np.sqrt(w * mu)[:, None]
    z = (y - mu) / mu * np.sqrt(w * mu)
    fitted = A @ np.linalg.lstsq(A, z, rcond=None)[0]
    return fitted @ fitted


@pytest.mark.parametrize("name", ["poisson", pytest.param("gamma", marks=pytest.mark.slow)])
def test_batch_tests_equal_each_problems_tests(name):
    """Per-problem weights and offsets, a shared design: problem i's Wald, likelihood-ratio
    and score tests from the batch equal those of problem i's own fits."""
    X, Y, W, O = _batch_data(name, stacked=False)
    family = LJ_FAMILIES[name]()
    Xr = X[:, :1]
    full = lj.fit_batch(X, Y, family=family, weights=W, offset=O)
    reduced = lj.fit_batch(Xr, Y, family=family, weights=W, offset=O)
    values = np.array([[0.0, 0.1], [0.2, 0.0], [0.0, 0.0]])  # c per problem
    wald = hypothesis.wald_test(full, C2, X, Y, weights=W, offset=O, value=values)
    lr = hypothesis.lr_test(full, reduced, X, Xr, Y, weights=W, offset=O)
    score = hypothesis.score_test(reduced, Xr, X, Y, weights=W, offset=O)
    for t in (wald, lr, score):
        assert t.statistic.shape == t.pvalue.shape == t.df.shape == (M,)
    assert str(lr).startswith(f"Likelihood-ratio tests of {M} problems")
    for i in range(M):
        one_full = lj.fit(X, Y[i], family=family, weights=W[i], offset=O[i])
        one_reduced = lj.fit(Xr, Y[i], family=family, weights=W[i], offset=O[i])
        singles = (
            hypothesis.wald_test(one_full, C2, X, Y[i], weights=W[i], offset=O[i],
                                 value=values[i]),
            hypothesis.lr_test(one_full, one_reduced, X, Xr, Y[i], weights=W[i], offset=O[i]),
            hypothesis.score_test(one_reduced, Xr, X, Y[i], weights=W[i], offset=O[i]))
        for batch_test, single in zip((wald, lr, score), singles, strict=True):
            for field in ("statistic", "pvalue", "df", "df_denom"):
                np.testing.assert_allclose(getattr(batch_test[i], field), getattr(single, field),
                                           rtol=1e-8, err_msg=f"{single.test} {i} {field}")
        if name == "poisson":
            mu = np.exp(float(one_reduced.intercept) + Xr @ np.asarray(one_reduced.coef)
                        + O[i])
            np.testing.assert_allclose(score[i].statistic,
                                       _rao_closed_form(X, Y[i], W[i], O[i], mu), rtol=1e-7)


def test_test_arguments_are_checked():
    X, y, _, _ = zoo.problem("poisson")
    full, reduced = lj.fit(X, y, family="poisson"), lj.fit(X[:, :1], y, family="poisson")
    s = inference.summarize(full, X, y)
    with pytest.raises(ValueError, match=r"contrast: expected a vector of 4 numbers"):
        hypothesis.wald_test(s, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"contrast: its 2 rows are linearly dependent"):
        hypothesis.wald_test(s, [[0, 1, 0, 0], [0, 2, 0, 0]])
    with pytest.raises(ValueError, match=r"value: expected a number or shape \(1,\)"):
        hypothesis.wald_test(s, [0, 1, 0, 0], value=[0.0, 1.0])
    with pytest.raises(ValueError, match=r"result: a FitResult is tested on the data"):
        hypothesis.wald_test(full, [0, 1, 0, 0])
    with pytest.raises(ValueError, match=r"the full model must have more coefficients"):
        hypothesis.lr_test(reduced, full, X[:, :1], X, y)
    ridge = lj.fit(X, y, family="poisson", penalty=lj.penalties.L2(0.1))
    with pytest.raises(ValueError, match=r"full: is a penalized fit \(L2\)"):
        hypothesis.lr_test(ridge, reduced, X, X[:, :1], y)
    with pytest.raises(ValueError, match=r"X_full: adds no column"):
        hypothesis.score_test(reduced, X[:, :1], 2.0 * X[:, :1], y)
    np.testing.assert_allclose(hypothesis.wald_test(s, [0, 1, 0, 0]).statistic,
                               (s.params[1] / s.bse[1]) ** 2, rtol=1e-12)  # z^2
    # an aliased coefficient (NaN estimate and covariance, as summarize reports it) spoils
    # only the contrasts that involve it
    nan_row = np.zeros((4, 4), bool)
    nan_row[3, :] = nan_row[:, 3] = True
    aliased = dataclasses.replace(s, params=s.params.at[3].set(np.nan),
                                  cov_params=np.where(nan_row, np.nan, s.cov_params))
    np.testing.assert_allclose(hypothesis.wald_test(aliased, [0, 1, 0, 0]).statistic,
                               (s.params[1] / s.bse[1]) ** 2, rtol=1e-12)
    assert np.isnan(hypothesis.wald_test(aliased, [0, 1, 0, 1]).pvalue)


@pytest.mark.slow
def test_score_test_on_stacked_designs_matches_statsmodels():
    X, Y, _, _ = _batch_data("poisson", stacked=True)
    reduced = lj.fit_batch(X[:, :, :1], Y, family="poisson")
    score = hypothesis.score_test(reduced, X[:, :, :1], X, Y)
    for i in range(M):
        ref = sm.GLM(Y[i], sm.add_constant(X[i, :, :1]), family=sm.families.Poisson()).fit(
            tol=1e-13).score_test(exog_extra=X[i, :, 1:])
        np.testing.assert_allclose(score.statistic[i], ref[0][0], rtol=1e-7)
        np.testing.assert_allclose(score.pvalue[i], ref[1][0], rtol=1e-6)
