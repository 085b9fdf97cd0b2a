"""Property tests (hypothesis) across families and solvers.

Shapes are fixed (N x P) so JAX compiles each fit once; hypothesis draws the data
seed, the permutation, the integer weights and the scales. Few examples,
derandomized, no deadline: CI-deterministic and fast.
"""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import linjax as lj
from linjax import families as F

N, P = 40, 3
SETTINGS = settings(max_examples=10, deadline=None, derandomize=True, database=None)
FAMILIES = [F.Gaussian(), F.Poisson(), F.Binomial(), F.Gamma(link=lj.links.Log()),
            F.NegativeBinomial(alpha=0.5)]


def data(seed, family):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, P))
    eta = 0.3 * X @ np.array([1.0, -0.5, 0.25])
    if isinstance(family, F.Binomial):
        y = (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float)
        y[:2] = [0.0, 1.0]
    elif isinstance(family, F.Poisson | F.NegativeBinomial):
        y = rng.poisson(np.exp(eta)).astype(float)
    elif isinstance(family, F.Gamma):
        y = rng.gamma(2.0, np.exp(eta) / 2.0)
    else:
        y = eta + rng.normal(size=N)
    return X, y


def coef_vector(res):
    return np.r_[float(res.params["intercept"]), np.asarray(res.params["coef"])]


seeds = st.integers(0, 2**31 - 1)
families = st.sampled_from(FAMILIES)


@SETTINGS
@given(seed=seeds, family=families)
def test_row_permutation_invariance(seed, family):
    X, y = data(seed, family)
    perm = np.random.default_rng(seed + 1).permutation(N)
    a = lj.fit(X, y, family=family)
    b = lj.fit(X[perm], y[perm], family=family)
    np.testing.assert_allclose(coef_vector(b), coef_vector(a), rtol=1e-7, atol=1e-9)


@SETTINGS
@given(seed=seeds, family=families, counts=st.lists(st.integers(1, 3), min_size=N, max_size=N))
def test_duplicated_rows_equal_integer_weights(seed, family, counts):
    """Weight k on a row == the row repeated k times (fixed total rows: pad with weight 0)."""
    X, y = data(seed, family)
    counts = np.asarray(counts)
    idx = np.repeat(np.arange(N), counts)
    total = 3 * N                      # one compiled shape for every draw
    rows = np.r_[idx, np.zeros(total - idx.size, int)]
    w_rep = np.r_[np.ones(idx.size), np.zeros(total - idx.size)]
    a = lj.fit(X, y, family=family, weights=counts.astype(float))
    b = lj.fit(X[rows], y[rows], family=family, weights=w_rep)
    np.testing.assert_allclose(coef_vector(b), coef_vector(a), rtol=1e-7, atol=1e-9)


@SETTINGS
@given(seed=seeds, family=families, beta=st.floats(-0.5, 0.5, allow_subnormal=False))
def test_offset_equals_fixed_coefficient(seed, family, beta):
    """An offset beta * x_j gives the other coefficients of the fit whose x_j coefficient
    is fixed at beta (bounds lower = upper = beta)."""
    X, y = data(seed, family)
    if isinstance(family, F.Gaussian):
        y = y + beta * X[:, 2]
    a = lj.fit(X[:, :2], y, family=family, offset=beta * X[:, 2])
    b = lj.fit(X, y, family=family, bounds=(np.array([-np.inf, -np.inf, beta]),
                                            np.array([np.inf, np.inf, beta])),
               solver="projected_newton")
    assert float(b.params["coef"][2]) == np.float64(beta)
    np.testing.assert_allclose(coef_vector(b)[:3], coef_vector(a), rtol=1e-6, atol=1e-8)


@SETTINGS
@given(seed=seeds, family=families, j=st.integers(0, P - 1), log_scale=st.floats(-3, 3))
def test_column_scaling_rescales_coefficient(seed, family, j, log_scale):
    X, y = data(seed, family)
    c = 10.0**log_scale
    Xs = X.copy()
    Xs[:, j] *= c
    a = lj.fit(X, y, family=family)
    b = lj.fit(Xs, y, family=family)
    expect = coef_vector(a)
    expect[1 + j] /= c
    np.testing.assert_allclose(coef_vector(b), expect, rtol=1e-6, atol=1e-9)


@settings(max_examples=5, deadline=None, derandomize=True, database=None)
@given(seed=seeds, family=st.sampled_from([F.Gaussian(), F.Poisson(), F.Binomial()]))
def test_solvers_agree(seed, family):
    """Newton, L-BFGS, coordinate descent, FISTA (and least squares for Gaussian) reach the
    same ridge optimum: compared by objective value and coefficients."""
    X, y = data(seed, family)
    pen = lj.penalties.L2(alpha=0.05)
    ref = lj.fit(X, y, family=family, penalty=pen, solver="newton")
    names = ["lbfgs", "cd", "proximal"] + (["lstsq"] if isinstance(family, F.Gaussian) else [])
    for name in names:
        res = lj.fit(X, y, family=family, penalty=pen, solver=name)
        assert float(res.objective) <= float(ref.objective) + 1e-8
        np.testing.assert_allclose(coef_vector(res), coef_vector(ref), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


@SETTINGS
@given(seed=seeds, family=families, log_scale=st.floats(-2, 2))
def test_predictions_finite(seed, family, log_scale):
    X, y = data(seed, family)
    res = lj.fit(X, y, family=family)
    Xnew = np.random.default_rng(seed).normal(size=(N, P)) * 10.0**log_scale * 10
    mu = np.asarray(lj.predict(res.params, Xnew, family))
    assert np.all(np.isfinite(mu))
    if isinstance(family, F.Binomial):
        assert np.all((mu >= 0) & (mu <= 1))
    if isinstance(family, F.Poisson | F.Gamma | F.NegativeBinomial):
        assert np.all(mu >= 0)


@settings(max_examples=3, deadline=None, derandomize=True, database=None)
@given(seed=seeds, family=st.sampled_from([F.Gaussian(), F.Poisson(), F.Binomial()]))
def test_vmap_equals_loop(seed, family):
    rng = np.random.default_rng(seed)
    Xs, ys = zip(*[data(int(s), family) for s in rng.integers(0, 2**31, 4)], strict=True)
    Xs, ys = jnp.asarray(np.stack(Xs)), jnp.asarray(np.stack(ys))
    batched = jax.vmap(lambda X, y: lj.fit(X, y, family=family).params)(Xs, ys)
    for i in range(4):
        one = lj.fit(Xs[i], ys[i], family=family).params
        np.testing.assert_allclose(np.asarray(batched["coef"][i]), np.asarray(one["coef"]),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(float(batched["intercept"][i]), float(one["intercept"]),
                                   rtol=1e-9, atol=1e-12)
