"""Every iterative solver on every problem it applies to, against outside references.

References: statsmodels GLM (unpenalized), scikit-learn Lasso / ElasticNet /
LogisticRegression / PoissonRegressor (penalized), scipy (user objectives).
Shapes follow tests/zoo.py (n=120, p=3) and every fit passes weights and an
offset (ones / zeros for the unweighted variant) so each solver x family
compiles once.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import statsmodels.api as sm
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, PoissonRegressor

import linjax as lj
from linjax.solvers import Status
from tests import zoo

ITERATIVE = ["newton", "lbfgs", "gd", "proximal", "cd"]
FAMILIES = {
    "gaussian": (lj.families.Gaussian(), sm.families.Gaussian()),
    "binomial": (lj.families.Binomial(), sm.families.Binomial()),
    "poisson": (lj.families.Poisson(), sm.families.Poisson()),
    "gamma": (lj.families.Gamma(link=lj.links.Log()),
              sm.families.Gamma(sm.families.links.Log())),
}


def _flat(params):
    return np.r_[np.atleast_1d(np.asarray(params["intercept"])), np.asarray(params["coef"])]


def _data(name, weighted):
    X, y, w, off = zoo.problem(name)
    if not weighted:
        w, off = np.ones_like(w), np.zeros_like(off)
    return X, y, w, off


@pytest.fixture(scope="module")
def statsmodels_refs():
    refs = {}
    for name, (_, sm_family) in FAMILIES.items():
        for weighted in (False, True):
            X, y, w, off = _data(name, weighted)
            res = sm.GLM(y, sm.add_constant(X), family=sm_family, var_weights=w,
                         offset=off).fit(tol=1e-14, maxiter=200)
            refs[name, weighted] = res.params
    return refs


def _gradient(params, X, y, family, penalty, w, off):
    return jax.grad(lambda p: lj.objective(p, X, y, family, penalty, w, off))(params)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights+offset"])
@pytest.mark.parametrize("family_name", list(FAMILIES))
@pytest.mark.parametrize("solver", ITERATIVE)
def test_unpenalized_grid_matches_statsmodels(solver, family_name, weighted, statsmodels_refs):
    family = FAMILIES[family_name][0]
    X, y, w, off = _data(family_name, weighted)
    result = lj.fit(X, y, family, solver=solver, weights=w, offset=off)
    assert int(result.status) == Status.CONVERGED, result.message
    ref = statsmodels_refs[family_name, weighted]
    ref_params = {"coef": jnp.asarray(ref[1:]), "intercept": jnp.asarray(ref[0])}
    ref_obj = float(lj.objective(ref_params, X, y, family, None, w, off))
    # Objective to 1e-9 relative, coefficients to 1e-6, first-order condition.
    assert float(result.objective) == pytest.approx(ref_obj, rel=1e-9)
    assert float(result.objective) == pytest.approx(
        float(lj.objective(result.params, X, y, family, None, w, off)), rel=1e-12)
    np.testing.assert_allclose(_flat(result.params), ref, atol=1e-6)
    grad = _gradient(result.params, X, y, family, None, w, off)
    assert np.max(np.abs(_flat(grad))) < 1e-6


# -- penalized problems against scikit-learn ------------------------------------------------

@pytest.fixture(scope="module")
def gaussian_data():
    X, y, w, off = zoo.problem("gaussian")
    return X, y - off, w  # scikit-learn has no offset: fold it into the response


@pytest.mark.parametrize("solver,kind", [("cd", "lasso"), ("proximal", "lasso"), ("gd", "lasso"),
                                         ("cd", "enet"), ("proximal", "enet")])
def test_lasso_and_elastic_net_match_sklearn(solver, kind, gaussian_data):
    X, y, w = gaussian_data
    if kind == "lasso":
        alpha, penalty = 0.18, lj.penalties.L1(alpha=0.18)
        ref = Lasso(alpha=alpha, tol=1e-14, max_iter=100000).fit(X, y, sample_weight=w)
    else:
        penalty = lj.penalties.ElasticNet(alpha=0.25, l1_ratio=0.7)
        ref = ElasticNet(alpha=0.25, l1_ratio=0.7, tol=1e-14, max_iter=100000).fit(
            X, y, sample_weight=w)
    assert np.sum(ref.coef_ == 0) >= 1, "the reference should have exact zeros"
    result = lj.fit(X, y, solver=solver, penalty=penalty, weights=w)
    assert int(result.status) == Status.CONVERGED, result.message
    coef = np.asarray(result.params["coef"])
    np.testing.assert_allclose(coef, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(float(result.params["intercept"]), ref.intercept_, atol=1e-6)
    np.testing.assert_array_equal(coef == 0, ref.coef_ == 0)
    ref_obj = lj.objective({"coef": jnp.asarray(ref.coef_), "intercept": ref.intercept_},
                           X, y, None, penalty, w)
    assert float(result.objective) == pytest.approx(float(ref_obj), rel=1e-9)


@pytest.fixture(scope="module")
def binomial_data():
    X, y, w, _ = zoo.problem("binomial")
    return X, y, w


@pytest.mark.parametrize("solver", ["newton", "lbfgs", "cd", "proximal"])
def test_logistic_l2_matches_sklearn(solver, binomial_data):
    X, y, w = binomial_data
    C = 0.3
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10000).fit(X, y, sample_weight=w)
    penalty = lj.penalties.L2(alpha=1.0 / (C * w.sum()))
    result = lj.fit(X, y, lj.families.Binomial(), penalty=penalty, solver=solver, weights=w)
    assert int(result.status) == Status.CONVERGED
    np.testing.assert_allclose(np.asarray(result.params["coef"]), ref.coef_[0], atol=1e-6)
    np.testing.assert_allclose(float(result.params["intercept"]), ref.intercept_[0], atol=1e-6)


@pytest.mark.parametrize("solver", ["cd", "proximal"])
def test_logistic_l1_matches_sklearn(solver, binomial_data):
    X, y, w = binomial_data
    C = 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(C=C, l1_ratio=1.0, solver="saga", tol=1e-13,
                                 max_iter=200000).fit(X, y, sample_weight=w)
    penalty = lj.penalties.L1(alpha=1.0 / (C * w.sum()))
    family = lj.families.Binomial()
    result = lj.fit(X, y, family, penalty=penalty, solver=solver, weights=w)
    assert int(result.status) == Status.CONVERGED
    coef = np.asarray(result.params["coef"])
    assert np.sum(ref.coef_ == 0) >= 1
    np.testing.assert_array_equal(coef == 0, ref.coef_[0] == 0)
    np.testing.assert_allclose(coef, ref.coef_[0], atol=1e-6)
    ref_obj = float(lj.objective({"coef": jnp.asarray(ref.coef_[0]),
                                  "intercept": ref.intercept_[0]}, X, y, family, penalty, w))
    # saga is the less precise of the two: linjax must be at least as low.
    assert float(result.objective) <= ref_obj + 1e-12


@pytest.mark.parametrize("solver", ["newton", "proximal", "cd"])
def test_poisson_l2_matches_sklearn(solver):
    X, y, w, _ = zoo.problem("poisson")
    alpha = 0.05
    ref = PoissonRegressor(alpha=alpha, tol=1e-12, max_iter=10000).fit(X, y, sample_weight=w)
    result = lj.fit(X, y, lj.families.Poisson(), penalty=lj.penalties.L2(alpha=alpha),
                    solver=solver, weights=w)
    assert int(result.status) == Status.CONVERGED
    np.testing.assert_allclose(np.asarray(result.params["coef"]), ref.coef_, atol=1e-6)
    np.testing.assert_allclose(float(result.params["intercept"]), ref.intercept_, atol=1e-6)


# -- refusals and the "auto" rule -----------------------------------------------------------

@pytest.mark.parametrize("solver", ["newton", "lbfgs", "lstsq"])
def test_l1_with_a_smooth_solver_names_the_alternatives(solver, gaussian_data):
    X, y, _ = gaussian_data
    with pytest.raises(ValueError, match="solver='cd'.*solver='proximal'"):
        lj.fit(X, y, penalty=lj.penalties.L1(alpha=0.1), solver=solver)


def test_bounds_with_lbfgs_is_refused(gaussian_data):
    X, y, _ = gaussian_data
    with pytest.raises(ValueError, match="bounds: LBFGS"):
        lj.fit(X, y, solver="lbfgs", bounds=(0.0, None))


def test_auto_rule():
    from linjax.fit import choose_solver
    S = lj.solvers
    gauss, pois, multi = lj.families.Gaussian(), lj.families.Poisson(), \
        lj.families.Multinomial(n_classes=3)
    none, l1, l2 = lj.penalties.NoPenalty(), lj.penalties.L1(), lj.penalties.L2()
    assert isinstance(choose_solver("auto", gauss, none, (100, 5)), S.LeastSquares)
    assert isinstance(choose_solver("auto", gauss, l2, (100, 5)), S.LeastSquares)
    assert isinstance(choose_solver("auto", pois, l2, (100, 5)), S.Newton)
    assert isinstance(choose_solver("auto", pois, none, (100, 2000)), S.LBFGS)
    assert isinstance(choose_solver("auto", gauss, l1, (100, 5)), S.CoordinateDescent)
    assert isinstance(choose_solver("auto", pois, l1, (100, 2000)), S.ProximalGradient)
    assert isinstance(choose_solver("auto", multi, l1, (100, 5)), S.ProximalGradient)
    assert isinstance(choose_solver("auto", gauss, none, (100, 5), bounded=True),
                      S.CoordinateDescent)
    with pytest.raises(ValueError, match="unknown solver"):
        choose_solver("bfgs", gauss, none)


# -- result codes, each provoked --------------------------------------------------------

@pytest.mark.parametrize("solver", [lj.solvers.ProximalGradient(max_iter=2),
                                    lj.solvers.CoordinateDescent(max_iter=1)],
                         ids=["proximal", "cd"])
def test_too_few_iterations_is_max_iter(solver, binomial_data):
    X, y, w = binomial_data
    result = lj.fit(X, y, lj.families.Binomial(), solver=solver, weights=w)
    assert int(result.status) == Status.MAX_ITER
    assert not bool(result.converged)
    assert "max_iter" in result.message


@pytest.mark.parametrize("solver", ["proximal", "cd"])
def test_nan_injected_under_jit_is_non_finite(solver, binomial_data):
    X, y, w = binomial_data
    X = X.copy()
    X[5, 1] = np.nan

    @jax.jit
    def fit(X):
        return lj.fit(X, y, lj.families.Binomial(), solver=solver, weights=w)

    result = fit(X)
    assert int(result.status) == Status.NON_FINITE
    assert "non-finite" in result.message


def _nan_away_from_start(x):
    """Finite only at the starting point: every trial step of a line search is NaN."""
    start = jnp.ones_like(x["a"])
    bad = jnp.any(x["a"] != start)
    return jnp.sum((x["a"] - 3.0) ** 2) + jnp.where(bad, jnp.nan, 0.0)


@pytest.mark.parametrize("solver", [lj.solvers.LBFGS(), lj.solvers.GradientDescent(),
                                    lj.solvers.ProximalGradient()], ids=["lbfgs", "gd", "fista"])
def test_unreachable_decrease_is_line_search_failed(solver):
    sol = jax.jit(solver.run, static_argnums=0)(_nan_away_from_start, {"a": jnp.ones(2)})
    assert int(sol.status) == Status.LINE_SEARCH_FAILED
    np.testing.assert_array_equal(np.asarray(sol.params["a"]), 1.0)


def test_singular_hessian_is_singular(binomial_data):
    X, y, w = binomial_data
    X = np.column_stack([X, X[:, 0]])  # duplicated column: X'WX is singular
    result = lj.fit(X, y, lj.families.Binomial(), solver="newton", weights=w)
    assert int(result.status) == Status.SINGULAR
    assert "singular" in result.message


@pytest.mark.parametrize("family", [lj.families.Poisson(),
                                    lj.families.Gamma(link=lj.links.Log())])
def test_duplicated_column_is_singular_for_counts(family, binomial_data):
    # Rounding lets Cholesky "succeed" on X'WX of a duplicated column with pivots at the
    # eps level; the scale-free pivot test must still call it singular. The minimum-norm
    # answer splits the coefficient equally between the copies.
    X, _, _ = binomial_data
    rng = np.random.default_rng(3)
    y = rng.poisson(np.exp(0.3 + X @ (0.2 * np.ones(X.shape[1])))) + 0.5
    result = lj.fit(np.column_stack([X, X[:, 0]]), y, family, solver="newton")
    assert int(result.status) == Status.SINGULAR
    coef = np.asarray(result.coef)
    np.testing.assert_allclose(coef[0], coef[-1], rtol=1e-6)
    full = lj.fit(X, y, family, solver="newton")
    np.testing.assert_allclose(coef[0] + coef[-1], float(full.coef[0]), rtol=1e-6)


@pytest.mark.parametrize("solver,dtype", [
    (lj.solvers.LBFGS(), np.float32), (lj.solvers.GradientDescent(), np.float32),
    (lj.solvers.GradientDescent(), np.float64), (lj.solvers.ProximalGradient(), np.float32),
    (lj.solvers.ProximalGradient(), np.float64)],
    ids=["lbfgs-f32", "gd-f32", "gd-f64", "fista-f32", "fista-f64"])
def test_line_search_shrinks_past_overflow(solver, dtype):
    # The first trial step from x = 1 lands near -1e7, where cosh overflows to inf.
    def fun(x):
        return jnp.sum(jnp.cosh(20.0 * x["a"])) / 400.0

    sol = solver.run(fun, {"a": jnp.ones(1, dtype)})
    assert sol.params["a"].dtype == dtype
    assert int(sol.status) == Status.CONVERGED
    assert abs(float(sol.params["a"][0])) < (1e-3 if dtype == np.float32 else 1e-7)


# -- vmap over 100 responses equals the loop -----------------------------------------------

@pytest.mark.parametrize("solver", ["newton", "lbfgs", "gd", "sgd", "proximal", "cd"])
def test_vmap_over_responses_equals_loop(solver, binomial_data):
    X, _, w = binomial_data
    off = zoo.problem("binomial")[3]
    rng = np.random.default_rng(7)
    eta = 0.2 + X @ np.array([0.5, -0.4, 0.3])
    Y = (rng.random((100, X.shape[0])) < 1 / (1 + np.exp(-eta))).astype(float)
    family = lj.families.Binomial()
    batched = jax.vmap(lambda yy: lj.fit(X, yy, family, solver=solver, weights=w,
                                         offset=off))(Y)
    loop = [lj.fit(X, yy, family, solver=solver, weights=w, offset=off) for yy in Y]
    coef = np.stack([np.asarray(r.params["coef"]) for r in loop])
    objective = np.array([float(r.objective) for r in loop])
    np.testing.assert_allclose(np.asarray(batched.params["coef"]), coef, atol=1e-7)
    np.testing.assert_allclose(np.asarray(batched.objective), objective, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(batched.status), [int(r.status) for r in loop])


# -- user objectives over nested pytrees --------------------------------------------------

def _head_loss(params, X, y):
    """A GLM head (logistic) on a fixed two-layer feature map, plus a quadratic extra leaf."""
    hidden = jnp.tanh(X @ params["features"]["scale"] + 0.1)
    eta = hidden @ params["head"]["coef"] + params["head"]["intercept"]
    nll = jnp.mean(jax.nn.softplus(eta) - y * eta)
    extra = jnp.sum((params["extra"]["shift"] - jnp.array([1.0, -2.0])) ** 2)
    ridge = 0.05 * (jnp.sum(params["head"]["coef"] ** 2) + jnp.sum(
        (params["features"]["scale"] - 0.3) ** 2))
    return nll + extra + ridge


def _head_init():
    return {"features": {"scale": jnp.full((2, 2), 0.3)},
            "head": {"coef": jnp.zeros(2), "intercept": jnp.zeros(())},
            "extra": {"shift": jnp.zeros(2)}}


@pytest.fixture(scope="module")
def head_reference(binomial_data):
    X, y, _ = binomial_data
    X = X[:, :2]
    flat0, unravel = jax.flatten_util.ravel_pytree(_head_init())
    value_and_grad = jax.jit(jax.value_and_grad(lambda u: _head_loss(unravel(u), X, y)))

    def fun(v):
        f, g = value_and_grad(jnp.asarray(v))
        return float(f), np.asarray(g)

    return scipy.optimize.minimize(fun, np.asarray(flat0), jac=True, method="BFGS",
                                   options={"gtol": 1e-11})


@pytest.mark.parametrize("solver", [lj.solvers.LBFGS(), lj.solvers.Newton(),
                                    lj.solvers.GradientDescent(), lj.solvers.ProximalGradient()],
                         ids=["lbfgs", "newton", "gd", "fista"])
def test_run_minimises_a_nested_dict_objective(solver, binomial_data, head_reference):
    X, y, _ = binomial_data
    X = X[:, :2]
    init = _head_init()
    ref = head_reference
    sol = solver.run(_head_loss, init, X, y)
    assert int(sol.status) == Status.CONVERGED
    assert jax.tree_util.tree_structure(sol.params) == jax.tree_util.tree_structure(init)
    assert float(sol.value) == pytest.approx(ref.fun, rel=1e-9)
    np.testing.assert_allclose(jax.flatten_util.ravel_pytree(sol.params)[0], ref.x, atol=1e-5)


# -- SGD ----------------------------------------------------------------------------------

def test_sgd_reaches_newton_objective():
    # The 10^6-row version (mini-batches of 1024) is benchmarks/bench_sgd.py.
    X, y, w, off = zoo.problem("binomial")
    family = lj.families.Binomial()
    newton = lj.fit(X, y, family, solver="newton", weights=w, offset=off)
    sgd = lj.fit(X, y, family, solver="sgd", weights=w, offset=off)
    # a flat objective at Adam's noise floor, not a stationary point: reported as such
    assert int(sgd.status) == Status.STALLED
    assert float(sgd.objective) == pytest.approx(float(newton.objective), rel=1e-4)
    assert float(sgd.objective) >= float(newton.objective) - 1e-12


def test_sgd_optax_pair_drives_a_user_loop(binomial_data):
    X, y, _ = binomial_data
    sgd = lj.solvers.SGD(learning_rate=0.05)
    family = lj.families.Binomial()
    params = lj.init_params(X.shape[1])
    state = sgd.init(params)
    loss = jax.jit(lambda p: lj.objective(p, X, y, family))
    start = float(loss(params))

    @jax.jit
    def train_step(params, state):
        grads = jax.grad(lambda p: lj.objective(p, X, y, family))(params)
        updates, state = sgd.update(grads, state, params)
        return jax.tree_util.tree_map(jnp.add, params, updates), state

    for _ in range(300):
        params, state = train_step(params, state)
    n = X.shape[0]
    best = float(lj.fit(X, y, family, solver="newton", weights=np.ones(n),
                        offset=np.zeros(n)).objective)
    assert float(loss(params)) < start
    assert float(loss(params)) == pytest.approx(best, rel=1e-4)


def test_exact_curvature_beats_fisher_scoring_on_gamma_log(binomial_data):
    # Gamma with the log link is convex in eta, so the default Newton uses the observed
    # curvature (quadratic convergence) where Fisher scoring converges linearly.
    X, _, _ = binomial_data
    rng = np.random.default_rng(5)
    y = rng.gamma(2.0, np.exp(0.2 + X @ (0.3 * np.ones(X.shape[1]))) / 2.0)
    fam = lj.families.Gamma(link=lj.links.Log())
    exact = lj.fit(X, y, fam, solver=lj.solvers.Newton())
    fisher = lj.fit(X, y, fam, solver=lj.solvers.Newton(fisher=True))
    assert bool(exact.converged) and bool(fisher.converged)
    np.testing.assert_allclose(np.asarray(exact.coef), np.asarray(fisher.coef), rtol=1e-8)
    assert int(exact.n_iter) < int(fisher.n_iter)
