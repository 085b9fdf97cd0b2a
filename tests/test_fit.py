"""lj.fit against statsmodels' GLM (IRLS at tight tolerance), with weights and an offset."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm

import linjax as lj
from linjax import families as F
from linjax import links as L
from tests import zoo

sml = sm.families.links

# (name, linjax family, statsmodels family, zoo data)
CASES = [
    ("gaussian", F.Gaussian(), sm.families.Gaussian(), "gaussian"),
    ("binomial-logit", F.Binomial(), sm.families.Binomial(), "binomial"),
    ("binomial-probit", F.Binomial(link=L.Probit()), sm.families.Binomial(sml.Probit()),
     "binomial"),
    ("binomial-cloglog", F.Binomial(link=L.CLogLog()), sm.families.Binomial(sml.CLogLog()),
     "binomial"),
    ("poisson-log", F.Poisson(), sm.families.Poisson(), "poisson"),
    ("poisson-sqrt", F.Poisson(link=L.Sqrt()), sm.families.Poisson(sml.Sqrt()), "poisson"),
    ("gamma-inverse", F.Gamma(), sm.families.Gamma(), "gamma_inverse"),
    ("gamma-log", F.Gamma(link=L.Log()), sm.families.Gamma(sml.Log()), "gamma"),
    ("invgauss-canonical", F.InverseGaussian(), sm.families.InverseGaussian(),
     "inverse_gaussian_canonical"),
    ("invgauss-log", F.InverseGaussian(link=L.Log()), sm.families.InverseGaussian(sml.Log()),
     "inverse_gaussian"),
    ("negbin-log", F.NegativeBinomial(alpha=0.5), sm.families.NegativeBinomial(alpha=0.5),
     "negative_binomial"),
    ("tweedie-log", F.Tweedie(power=1.5), sm.families.Tweedie(var_power=1.5), "tweedie"),
]


@pytest.fixture(autouse=True)
def _quiet_statsmodels_domain_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sm.tools.sm_exceptions.DomainWarning)
        yield


def _statsmodels_fit(sm_family, X, y, weights, offset):
    model = sm.GLM(y, sm.add_constant(X), family=sm_family, var_weights=weights, offset=offset)
    return model.fit(tol=1e-14, maxiter=200).params


@pytest.mark.parametrize("name, family, sm_family, data", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights+offset"])
def test_fit_matches_statsmodels(name, family, sm_family, data, weighted):
    X, y, weights, offset = zoo.problem(data)
    if not weighted:
        weights = offset = None
    result = lj.fit(X, y, family=family, weights=weights, offset=offset)
    assert bool(result.converged), result.message
    ref = _statsmodels_fit(sm_family, X, y, weights, offset)
    ours = np.concatenate([[result.params["intercept"]], result.params["coef"]])
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)
    ref_params = {"coef": jnp.asarray(ref[1:]), "intercept": jnp.asarray(ref[0])}
    ref_obj = lj.objective(ref_params, X, y, family, weights=weights, offset=offset)
    np.testing.assert_allclose(result.objective, ref_obj, rtol=1e-10)
    assert float(result.objective) <= float(ref_obj) + 1e-12 * abs(float(ref_obj))


def test_result_objective_is_the_objective_function():
    X, y, w, off = zoo.problem("poisson")
    pen = lj.penalties.L2(alpha=0.1)
    result = lj.fit(X, y, family=F.Poisson(), penalty=pen, weights=w, offset=off)
    direct = lj.objective(result.params, X, y, F.Poisson(), pen, weights=w, offset=off)
    np.testing.assert_allclose(result.objective, direct, rtol=1e-13)


def test_ridge_newton_equals_least_squares_and_closed_form():
    X, y, w, off = zoo.problem("gaussian")
    alpha = 0.3
    pen = lj.penalties.L2(alpha=alpha)
    ls = lj.fit(X, y, penalty=pen, weights=w, offset=off, solver="lstsq")
    nt = lj.fit(X, y, penalty=pen, weights=w, offset=off, solver="newton")
    # Closed form: centre with weights, then (Xc' W Xc + alpha sum(w) I) b = Xc' W yc.
    sw = w / w.sum()
    xm, ym = sw @ X, sw @ (y - off)
    Xc, yc = X - xm, y - off - ym
    coef = np.linalg.solve(Xc.T @ (sw[:, None] * Xc) + alpha * np.eye(3), Xc.T @ (sw * yc))
    np.testing.assert_allclose(ls.params["coef"], coef, rtol=1e-10)
    np.testing.assert_allclose(ls.params["intercept"], ym - xm @ coef, rtol=1e-10)
    np.testing.assert_allclose(nt.params["coef"], coef, rtol=1e-8)


def test_penalty_factors_and_no_intercept():
    X, y, _, _ = zoo.problem("poisson")
    pen = lj.penalties.L2(alpha=0.5, weights=jnp.array([0.0, 1.0, 2.0]))
    res = lj.fit(X, y, family=F.Poisson(), penalty=pen, fit_intercept=False)
    assert float(res.params["intercept"]) == 0.0
    # First-order condition: X'(mu - y)/n + alpha * f * coef = 0.
    mu = np.exp(X @ np.asarray(res.params["coef"]))
    grad = X.T @ (mu - y) / len(y) + 0.5 * np.array([0.0, 1.0, 2.0]) * res.params["coef"]
    np.testing.assert_allclose(grad, 0.0, atol=1e-10)


def test_binomial_proportions_with_trials_match_statsmodels():
    rng = np.random.default_rng(5)
    X = zoo.design(5)
    trials = rng.integers(1, 30, size=len(X)).astype(float)
    successes = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-(X @ zoo.TRUE_COEF))))
    res = lj.fit(X, successes / trials, family=F.Binomial(), weights=trials)
    ref = sm.GLM(np.column_stack([successes, trials - successes]), sm.add_constant(X),
                 family=sm.families.Binomial()).fit(tol=1e-14).params
    np.testing.assert_allclose(res.params["coef"], ref[1:], rtol=1e-7)


def test_fit_under_jit():
    X, y, w, off = zoo.problem("poisson")
    fitted = jax.jit(lambda X, y, w, o: lj.fit(X, y, family=F.Poisson(), weights=w, offset=o))
    a = fitted(X, y, w, off)
    b = lj.fit(X, y, family=F.Poisson(), weights=w, offset=off)
    np.testing.assert_allclose(a.params["coef"], b.params["coef"], rtol=1e-12)
    assert bool(a.converged)


def test_vmap_over_responses_equals_loop():
    X, _, _, _ = zoo.problem("poisson")
    Ys = np.stack([zoo.problem("poisson", seed=s)[1] for s in range(5)])
    batched = jax.vmap(lambda y: lj.fit(X, y, family=F.Poisson()))(Ys)
    for i, y in enumerate(Ys):
        single = lj.fit(X, y, family=F.Poisson())
        np.testing.assert_allclose(batched.params["coef"][i], single.params["coef"], rtol=1e-10)
    assert batched.converged.shape == (5,) and bool(np.all(batched.converged))


def test_vmap_over_weights_offsets_and_penalty_strength():
    X, y, w, off = zoo.problem("binomial")
    fam = F.Binomial()
    W = np.stack([w, np.ones_like(w), w[::-1]])
    batched = jax.vmap(lambda w: lj.fit(X, y, family=fam, weights=w))(W)
    for i in range(3):
        single = lj.fit(X, y, family=fam, weights=W[i])
        np.testing.assert_allclose(batched.params["coef"][i], single.params["coef"], rtol=1e-10)
    O = np.stack([off, -off])
    batched = jax.vmap(lambda o: lj.fit(X, y, family=fam, offset=o))(O)
    single = lj.fit(X, y, family=fam, offset=O[1])
    np.testing.assert_allclose(batched.params["coef"][1], single.params["coef"], rtol=1e-10)
    alphas = jnp.array([0.01, 0.1, 1.0])
    batched = jax.vmap(lambda a: lj.fit(X, y, family=fam, penalty=lj.penalties.L2(alpha=a)))(
        alphas)
    single = lj.fit(X, y, family=fam, penalty=lj.penalties.L2(alpha=1.0))
    np.testing.assert_allclose(batched.params["coef"][2], single.params["coef"], rtol=1e-10)


@pytest.mark.parametrize("family, data", [(F.Gaussian(), "gaussian"), (F.Binomial(), "binomial"),
                                          (F.Poisson(), "poisson"),
                                          (F.Gamma(link=L.Log()), "gamma")],
                         ids=["gaussian", "binomial", "poisson", "gamma"])
def test_float32_agrees_with_float64(family, data):
    X, y, w, off = zoo.problem(data)
    ref = lj.fit(X, y, family=family, weights=w, offset=off)
    with jax.enable_x64(False):
        res = lj.fit(X.astype(np.float32), y.astype(np.float32), family=family,
                     weights=w.astype(np.float32), offset=off.astype(np.float32))
        assert res.params["coef"].dtype == jnp.float32
        assert bool(res.converged), res.message
    np.testing.assert_allclose(res.params["coef"], ref.params["coef"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-4)


def test_float32_input_stays_float32_with_x64_on():
    X, y, _, _ = zoo.problem("poisson")
    res = lj.fit(X.astype(np.float32), y.astype(np.float32), family=F.Poisson())
    assert res.params["coef"].dtype == jnp.float32


def test_newton_run_minimises_a_user_objective_over_a_pytree():
    target = {"a": jnp.array([1.0, -2.0]), "b": {"c": jnp.array(3.0)}}

    def fun(params, scale):
        sq = jax.tree_util.tree_map(lambda p, t: jnp.sum((p - t) ** 4 + (p - t) ** 2), params,
                                    target)
        return scale * sum(jax.tree_util.tree_leaves(sq))

    init = jax.tree_util.tree_map(jnp.zeros_like, target)
    sol = lj.solvers.Newton().run(fun, init, 2.0)
    assert bool(sol.converged)
    leaves = zip(jax.tree_util.tree_leaves(sol.params), jax.tree_util.tree_leaves(target),
                 strict=True)
    for got, want in leaves:
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_max_iter_status_and_message():
    X, y, _, _ = zoo.problem("poisson")
    res = lj.fit(X, y, family=F.Poisson(), solver=lj.solvers.Newton(max_iter=1))
    assert int(res.status) == lj.solvers.Status.MAX_ITER and not bool(res.converged)
    assert "max_iter" in res.message


def test_non_finite_status_under_jit():
    X, y, _, _ = zoo.problem("poisson")
    y_bad = y.copy()
    y_bad[3] = np.nan  # validation is skipped under jit: the solver must report, not hide it
    res = jax.jit(lambda X, y: lj.fit(X, y, family=F.Poisson()))(X, y_bad)
    assert int(res.status) == lj.solvers.Status.NON_FINITE and not bool(res.converged)


def test_poisson_log_start_is_r_start_with_the_optimal_intercept():
    """Poisson-log starts from R's first IRLS step (weighted least squares of log(y + 0.1)
    - offset, weights w (y + 0.1); numpy's lstsq) with the intercept then moved so that
    sum w mu = sum w y; other links keep R's start as it is."""
    import importlib

    from linjax.solvers.problem import GLMProblem

    fit_module = importlib.import_module("linjax.fit")
    X, y, w, o = zoo.problem("poisson")
    wn = w / w.sum()
    Z = np.column_stack([np.ones(len(y)), X])
    mu0 = y + 0.1
    for link, z, fisher in ((L.Log(), np.log(mu0), mu0), (L.Sqrt(), np.sqrt(mu0), 4.0)):
        problem = GLMProblem(jnp.asarray(X), jnp.asarray(y), jnp.asarray(wn), jnp.asarray(o),
                             F.Poisson(link=link), lj.penalties.NoPenalty(), True)
        start = fit_module.initial_params(problem)
        sw = np.sqrt(wn * fisher)
        ref = np.linalg.lstsq(sw[:, None] * Z, sw * (z - o), rcond=None)[0]
        np.testing.assert_allclose(np.asarray(start["coef"]), ref[1:], rtol=1e-10)
        if isinstance(link, L.Log):
            mu = np.exp(Z @ np.r_[float(start["intercept"]), ref[1:]] + o)
            np.testing.assert_allclose(np.sum(wn * mu), np.sum(wn * y), rtol=1e-12)
            assert abs(float(start["intercept"]) - ref[0]) > 1e-3     # the shift moved it
        else:
            np.testing.assert_allclose(float(start["intercept"]), ref[0], rtol=1e-10)


def test_halving_search_takes_a_finite_step_whole_at_the_floor():
    """A trial above value + slack is halved, unless `whole` (decrement at rounding level);
    a non-finite trial is halved either way."""
    from linjax.solvers._common import halving_search

    def noisy(t):                      # 1e-12 above the start at t = 1, below it at t < 1
        return jnp.where(t == 1.0, 1e-12, -1e-12 * t)

    t, _, ok = halving_search(noisy, jnp.asarray(0.0), 1e-15, 40, jnp.float64)
    assert float(t) == 0.5 and bool(ok)
    t, f, ok = halving_search(noisy, jnp.asarray(0.0), 1e-15, 40, jnp.float64, whole=True)
    assert float(t) == 1.0 and float(f) == 1e-12 and bool(ok)
    t, _, ok = halving_search(lambda t: jnp.where(t > 0.3, jnp.nan, 0.0), jnp.asarray(0.0),
                              1e-15, 40, jnp.float64, whole=True)
    assert float(t) == 0.25 and bool(ok)
