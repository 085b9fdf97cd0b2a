"""Inference on lj.fit_batch results: summaries with a leading axis m, and per-problem Wald,
likelihood-ratio and score tests; each problem's answer equals the single-fit answer (whose
values test_inference.py checks against R and statsmodels), and the tests are checked
against statsmodels and R's closed forms."""

import warnings

import numpy as np
import pytest

import linjax as lj
from linjax import families as F
from linjax import inference
from tests import zoo

warnings.filterwarnings("ignore", module="statsmodels")

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
                                  False),
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
