"""linjax.dispersion: the negative binomial dispersion per problem, against statsmodels'
NegativeBinomial (maximum likelihood), a numpy/scipy Cox-Reid adjusted profile likelihood
(coefficients refitted at each alpha; scipy's bounded scalar optimizer and finite
differences), and the statuses of all-zero, underdispersed and zero-group responses."""

import warnings

import jax
import numpy as np
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from linjax.dispersion import NBDispersion, estimate_nb_dispersion
from linjax.solvers.status import Status, message

warnings.filterwarnings("ignore", module="statsmodels")

N = 40
M = 8


# -- an independent reference (numpy / scipy) ---------------------------------------------

def ref_beta(X, y, alpha, off, w):
    """The NB maximum likelihood coefficients at alpha: damped Newton to machine precision."""
    beta = np.linalg.lstsq(X * np.sqrt(w)[:, None], np.sqrt(w) * (np.log(y + 0.1) - off),
                           rcond=None)[0]

    def ll(b):
        mu = np.exp(X @ b + off)
        return np.sum(w * (y * np.log(mu) - (y + 1 / alpha) * np.log1p(alpha * mu)))

    for _ in range(200):
        mu = np.exp(X @ beta + off)
        u = 1 / (1 + alpha * mu)
        score = X.T @ (w * (y - mu) * u)
        step = np.linalg.solve(X.T @ (X * (w * mu * (1 + alpha * y) * u * u)[:, None]), score)
        k = 1.0
        while ll(beta + k * step) < ll(beta) - 1e-12 * abs(ll(beta)) and k > 1e-8:
            k /= 2
        beta = beta + k * step
        if abs(score @ step) < 1e-26:
            break
    return beta


def ref_criterion(t, X, y, off, w, method, prior=None):
    """C(t): the NB log-likelihood at beta_hat(exp(t)), minus 1/2 log det X'WX for Cox-Reid,
    plus the log normal prior density of t up to its constant."""
    a = np.exp(t)
    mu = np.exp(X @ ref_beta(X, y, a, off, w) + off)
    r = 1 / a
    c = np.sum(w * (gammaln(y + r) - gammaln(r) - gammaln(y + 1) + r * np.log(r / (r + mu))
                    + y * np.log(mu / (r + mu))))
    if method == "cox-reid":
        c -= 0.5 * np.linalg.slogdet(X.T @ (X * (w * mu / (1 + a * mu))[:, None]))[1]
    if prior is not None:
        c -= 0.5 * (t - prior[0]) ** 2 / prior[1]
    return c


def fd_derivative(t, *args, h=1e-4):
    return (ref_criterion(t + h, *args) - ref_criterion(t - h, *args)) / (2 * h)


# -- data: intercept + condition, size factors as offsets; rows with known situations ------

ALL_ZERO, UNDERDISPERSED, ZERO_GROUP = 5, 6, 7


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = np.c_[np.ones(N), np.repeat([0.0, 1.0], N // 2)]
    off = np.log(rng.uniform(0.5, 2.0, N))
    alpha = np.exp(rng.uniform(-3.0, 0.5, M))
    mu = np.exp(rng.uniform(0.5, 5.0, M))[:, None] * np.exp(off + 0.7 * X[:, 1])[None]
    Y = rng.negative_binomial(1 / alpha[:, None], 1 / (1 + alpha[:, None] * mu)).astype(float)
    Y[ALL_ZERO] = 0.0
    # binomial counts with means in proportion to the size factors: variance = mean / 2
    Y[UNDERDISPERSED] = rng.binomial(np.round(20 * np.exp(off)).astype(int), 0.5)
    Y[ZERO_GROUP, N // 2:] = 0.0                           # condition coefficient -> -inf
    Y[ZERO_GROUP, : N // 2] = rng.negative_binomial(5, 0.2, N // 2)
    fits = {m: estimate_nb_dispersion(X, Y, offset=off, method=m) for m in ("ml", "cox-reid")}
    return X, Y, off, fits


def regular_rows():
    return [i for i in range(M) if i not in (ALL_ZERO, UNDERDISPERSED, ZERO_GROUP)]


def test_result_shapes_and_no_nan(data):
    X, Y, off, fits = data
    for fit in fits.values():
        assert isinstance(fit, NBDispersion)
        assert fit.alpha.shape == (M,) and fit.coef.shape == (M, 2) and fit.mu.shape == (M, N)
        assert fit.status.shape == (M,) and fit.iterations.shape == (M,)
        for leaf in jax.tree_util.tree_leaves(fit):
            assert np.all(np.isfinite(np.asarray(leaf)))


def test_ml_equals_statsmodels(data):
    X, Y, off, fits = data
    fit = fits["ml"]
    for i in regular_rows():
        ref = sm.NegativeBinomial(Y[i], X, loglike_method="nb2", offset=off).fit(
            method="newton", maxiter=300, tol=1e-14, disp=0)
        assert int(fit.status[i]) == Status.CONVERGED
        np.testing.assert_allclose(fit.alpha[i], ref.params[-1], rtol=1e-6)
        np.testing.assert_allclose(fit.coef[i], ref.params[:-1], rtol=1e-6)
        np.testing.assert_allclose(fit.criterion[i], ref.llf, rtol=1e-10)


@pytest.mark.parametrize("method", ["ml", "cox-reid"])
def test_criterion_is_maximal_and_stationary(data, method):
    X, Y, off, fits = data
    fit = fits[method]
    w = np.ones(N)
    for i in regular_rows():
        args = (X, Y[i], off, w, method)
        t = float(np.log(fit.alpha[i]))
        best = minimize_scalar(lambda s, a=args: -ref_criterion(s, *a), bounds=(-8.0, 4.0),
                               method="bounded", options={"xatol": 1e-10})
        c_lj = ref_criterion(t, *args)
        np.testing.assert_allclose(fit.criterion[i], c_lj, rtol=1e-10)
        assert c_lj >= -best.fun - 1e-10
        # the derivative in log(alpha) vanishes (finite differences, error ~1e-7) ...
        assert abs(fd_derivative(t, *args)) < 1e-6
        # ... which a point 1e-3 away would fail
        assert abs(fd_derivative(t + 1e-3, *args)) > 1e-3


def test_all_zero_row_has_its_status_and_spoils_nothing(data):
    X, Y, off, fits = data
    for fit in fits.values():
        assert int(fit.status[ALL_ZERO]) == Status.NO_FINITE_ESTIMATE
        assert float(fit.alpha[ALL_ZERO]) == pytest.approx(1e-8)
        assert np.all(np.asarray(fit.mu[ALL_ZERO]) == 0)
    # the other rows alone give the same estimates
    keep = [i for i in range(M) if i != ALL_ZERO]
    alone = estimate_nb_dispersion(X, Y[keep], offset=off, method="cox-reid")
    np.testing.assert_allclose(alone.alpha, np.asarray(fits["cox-reid"].alpha)[keep],
                               rtol=1e-12)


@pytest.mark.parametrize("method", ["ml", "cox-reid"])
def test_underdispersed_row_sits_at_the_lower_bound(data, method):
    X, Y, off, fits = data
    fit = fits[method]
    assert int(fit.status[UNDERDISPERSED]) == Status.AT_BOUND
    assert float(fit.alpha[UNDERDISPERSED]) == pytest.approx(1e-8)
    # the criterion decreases from the bound inward
    args = (X, Y[UNDERDISPERSED], off, np.ones(N), method)
    t = np.log(1e-8)
    assert ref_criterion(t + 2.0, *args) < ref_criterion(t, *args)
    assert "Poisson" in message(Status.AT_BOUND)


@pytest.mark.parametrize("method", ["ml", "cox-reid"])
def test_zero_group_gets_the_limit(data, method):
    """A condition with only zeros: the condition coefficient has no finite estimate (its
    status says so), yet the criterion's limit has a maximum in alpha: the estimate with the
    zero rows dropped (their means -> 0; the Cox-Reid term's divergent part does not depend
    on alpha)."""
    X, Y, off, fits = data
    fit = fits[method]
    assert int(fit.status[ZERO_GROUP]) == Status.NO_FINITE_ESTIMATE
    assert float(fit.coef[ZERO_GROUP, 1]) < -10
    first = Y[ZERO_GROUP, : N // 2]
    half = estimate_nb_dispersion(X[: N // 2, :1], first, offset=off[: N // 2], method=method)
    assert int(half.status) == Status.CONVERGED
    np.testing.assert_allclose(fit.alpha[ZERO_GROUP], half.alpha, rtol=1e-4)


def test_prior_gives_the_maximum_a_posteriori(data):
    X, Y, off, _ = data
    rows = regular_rows()[:3]
    prior_mean = np.array([-1.0, 0.0, -2.0])
    fit = estimate_nb_dispersion(X, Y[rows], offset=off, prior_mean=prior_mean, prior_var=0.5)
    for k, i in enumerate(rows):
        args = (X, Y[i], off, np.ones(N), "cox-reid", (prior_mean[k], 0.5))
        t = float(np.log(fit.alpha[k]))
        np.testing.assert_allclose(fit.criterion[k], ref_criterion(t, *args), rtol=1e-10)
        assert abs(fd_derivative(t, *args)) < 1e-6
    # a tight prior holds alpha at exp(prior_mean)
    tight = estimate_nb_dispersion(X, Y[rows], offset=off, prior_mean=prior_mean,
                                   prior_var=1e-8)
    np.testing.assert_allclose(np.log(tight.alpha), prior_mean, atol=1e-5)


def test_weights_and_one_problem(data):
    X, Y, off, fits = data
    i = regular_rows()[0]
    w = np.random.default_rng(3).uniform(0.5, 2.0, N)
    fit = estimate_nb_dispersion(X, Y[i], offset=off, weights=w, method="cox-reid")
    assert fit.alpha.shape == () and fit.coef.shape == (2,)
    t = float(np.log(fit.alpha))
    args = (X, Y[i], off, w, "cox-reid")
    np.testing.assert_allclose(fit.criterion, ref_criterion(t, *args), rtol=1e-10)
    assert abs(fd_derivative(t, *args)) < 1e-6
    # a weight of 0 drops the row
    w0 = np.ones(N)
    w0[3] = 0.0
    zero_w = estimate_nb_dispersion(X, Y[i], offset=off, weights=w0, method="ml")
    ref = sm.NegativeBinomial(np.delete(Y[i], 3), np.delete(X, 3, axis=0),
                              loglike_method="nb2", offset=np.delete(off, 3)).fit(
        method="newton", maxiter=300, tol=1e-14, disp=0)
    np.testing.assert_allclose(zero_w.alpha, ref.params[-1], rtol=1e-6)


def test_bad_inputs_name_the_argument(data):
    X, Y, off, _ = data
    bad = Y.copy()
    bad[2, 3] = -1
    with pytest.raises(ValueError, match=r"Y: negative counts in 1 problem\(s\) \(rows 2\)"):
        estimate_nb_dispersion(X, bad)
    with pytest.raises(ValueError, match="method"):
        estimate_nb_dispersion(X, Y, method="reml")
    with pytest.raises(ValueError, match="Y: has 39 columns"):
        estimate_nb_dispersion(X, Y[:, 1:])
    with pytest.raises(ValueError, match="offset"):
        estimate_nb_dispersion(X, Y, offset=np.zeros((3, N)))
    with pytest.raises(ValueError, match="prior_var"):
        estimate_nb_dispersion(X, Y, prior_mean=0.0, prior_var=-1.0)
    with pytest.raises(ValueError, match="bounds"):
        estimate_nb_dispersion(X, Y, bounds=(1.0, 0.5))


@pytest.mark.parametrize("method", ["ml", "cox-reid"])
def test_family_prior_gives_the_maximum_a_posteriori_in_fit_and_fit_batch(data, method):
    """NegativeBinomial(alpha=None, prior=(mean, var)): lj.fit and fit_batch maximize the
    criterion plus the log prior density (its derivative zero by finite differences of the
    numpy/scipy reference), and the coefficients are the NB maximum likelihood at that alpha."""
    import linjax as lj
    from linjax.families import NegativeBinomial
    from linjax.penalties import L2

    X, Y, off, _ = data
    rows = regular_rows()[:2]
    prior_mean = np.array([-1.0, 0.5])
    batch = lj.fit_batch(X[:, 1:], Y[rows], family=NegativeBinomial(
        alpha=None, method=method, prior=(prior_mean, 0.5)), offset=off)
    for k, i in enumerate(rows):
        args = (X, Y[i], off, np.ones(N), method, (prior_mean[k], 0.5))
        single = lj.fit(X[:, 1:], Y[i], family=NegativeBinomial(
            alpha=None, method=method, prior=(prior_mean[k], 0.5)), offset=off)
        for result, a in ((single, single.family.alpha), (batch, batch.family.alpha[k])):
            t = float(np.log(a))
            assert abs(fd_derivative(t, *args)) < 1e-6
            coef = (np.r_[result.params["intercept"], result.params["coef"]] if result is single
                    else np.r_[result.params["intercept"][k], result.params["coef"][k]])
            np.testing.assert_allclose(coef, ref_beta(X, Y[i], float(a), off, np.ones(N)),
                                       rtol=1e-7, atol=1e-9)
        assert int(single.status) == Status.CONVERGED
    with pytest.raises(ValueError, match="prior on alpha is for unpenalized"):
        lj.fit(X[:, 1:], Y[rows[0]], family=NegativeBinomial(alpha=None, prior=(0.0, 1.0)),
               penalty=L2(1.0))
    with pytest.raises(ValueError, match=r"prior_var: must be > 0"):
        lj.fit(X[:, 1:], Y[rows[0]], family=NegativeBinomial(alpha=None, prior=(0.0, -1.0)))
