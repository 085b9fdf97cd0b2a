"""Truncated Newton (`linjax.solvers.NewtonCG`): the fit of a sparse or categorical design
equals the dense Newton fit of the same data to 1e-10; a user's function reaches its closed-
form minimum; "auto" takes it for designs wider than Newton's limit; what it refuses."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import linjax as lj
from linjax.designs import Categorical, Dense, Split
from linjax.solvers import Newton, NewtonCG

N, P = 300, 40
TOL = 1e-10


@pytest.fixture(scope="module")
def data():
    """CSR (an empty column, ragged rows), its dense copy, and responses."""
    A = sp.random(N, P, density=0.2, format="lil", random_state=1)
    A[:, 5] = 0.0
    A = A.tocsr()
    rng = np.random.default_rng(0)
    eta = A @ rng.normal(scale=0.3, size=P)
    return {"A": A, "M": A.toarray(), "binomial": (rng.random(N) < 1 / (1 + np.exp(-eta)))
            .astype(float), "poisson": rng.poisson(np.exp(eta)).astype(float),
            "gamma": rng.gamma(2.0, np.exp(eta) / 2.0), "weights": rng.uniform(0.5, 2.0, N),
            "offset": rng.normal(scale=0.1, size=N)}


def _close(got, want):
    np.testing.assert_allclose(got.coef, want.coef, atol=TOL, rtol=0)
    np.testing.assert_allclose(got.intercept, want.intercept, atol=TOL, rtol=0)


@pytest.mark.filterwarnings("ignore:fit. the design is rank deficient")  # column 5 is empty
@pytest.mark.parametrize("family, penalty", [
    ("binomial", lj.penalties.L2(1e-2)),
    ("poisson", None),
    (lj.families.Gamma(link=lj.links.Log()), lj.penalties.L2(1e-3)),  # non-canonical link
])
def test_sparse_fit_equals_dense_newton(data, family, penalty):
    name = family if isinstance(family, str) else "gamma"
    y = data[name]
    want = lj.fit(data["M"], y, family, penalty=penalty, solver=Newton(tol=1e-30, xtol=1e-14))
    for X in (data["A"], data["M"]):   # scipy CSR (a Sparse design) and the dense array
        got = lj.fit(X, y, family, penalty=penalty, solver=NewtonCG(tol=1e-12))
        assert got.solver == "newton_cg" and int(got.status) == 0
        assert 0 < int(got.n_iter) < 20 and int(got.info.cg_steps) > int(got.n_iter)
        _close(got, want)


def test_weights_offset_and_no_intercept(data):
    y, w, off = data["poisson"], data["weights"], data["offset"]
    pen = lj.penalties.L2(1e-3)
    kw = {"weights": w, "offset": off, "fit_intercept": False, "penalty": pen}
    want = lj.fit(data["M"], y, "poisson", solver=Newton(tol=1e-30, xtol=1e-14), **kw)
    got = lj.fit(data["A"], y, "poisson", solver=NewtonCG(tol=1e-12), **kw)
    assert int(got.status) == 0 and float(got.intercept) == 0.0
    _close(got, want)


def test_unpreconditioned_categorical_design_equals_dense():
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 12, N)
    Z = rng.normal(size=(N, 2))
    y = rng.poisson(np.exp(0.3 * Z[:, 0] + 0.1 * codes / 12)).astype(float)
    X = Split((Categorical.from_codes(codes, 12, drop_first=True), Dense(jnp.asarray(Z))))
    want = lj.fit(X.to_dense(), y, "poisson", solver=Newton(tol=1e-30, xtol=1e-14))
    for solver in (NewtonCG(tol=1e-12), NewtonCG(tol=1e-12, precondition=False)):
        got = lj.fit(X, y, "poisson", solver=solver)
        assert int(got.status) == 0
        _close(got, want)


def test_user_function_reaches_the_quadratic_minimum():
    """f(x) = x'Ax / 2 - b'x + sum(x^4) / 4 ... without the quartic: x* = A^{-1} b."""
    rng = np.random.default_rng(2)
    B = rng.normal(size=(6, 6))
    A, b = B @ B.T + 6 * np.eye(6), rng.normal(size=6)

    def quadratic(params, A, b):
        x = params["x"]
        return 0.5 * x @ A @ x - b @ x

    sol = NewtonCG(tol=1e-12).run(quadratic, {"x": jnp.zeros(6)}, A, b)
    assert int(sol.status) == 0
    np.testing.assert_allclose(sol.params["x"], np.linalg.solve(A, b), atol=1e-10)


def test_auto_takes_newton_cg_for_a_wide_sparse_design():
    """Wider than designs.fitting.NEWTON_MAX_WIDTH: "auto" takes NewtonCG; its solution meets
    the L2 logistic optimality condition X'(mu - y) / n + alpha b = 0, sum(mu - y) = 0."""
    from linjax.designs.fitting import NEWTON_MAX_WIDTH

    n, p, alpha = 200, NEWTON_MAX_WIDTH + 10, 0.01
    A = sp.random(n, p, density=0.01, format="csr", random_state=5)
    y = (np.random.default_rng(5).random(n) < 0.4).astype(float)
    got = lj.fit(A, y, "binomial", penalty=lj.penalties.L2(alpha))
    assert got.solver == "newton_cg" and int(got.status) == 0
    b, b0 = np.asarray(got.coef), float(got.intercept)
    resid = 1 / (1 + np.exp(-(A @ b + b0))) - y
    np.testing.assert_allclose(A.T @ resid / n + alpha * b, 0.0, atol=1e-8)
    assert abs(resid.sum() / n) <= 1e-8


def test_refusals(data):
    with pytest.raises(ValueError, match="not smooth"):
        lj.fit(data["A"], data["binomial"], "binomial", penalty=lj.penalties.L1(0.1),
               solver="newton_cg")
    with pytest.raises(ValueError, match="bounds"):
        lj.fit(data["M"], data["poisson"], "poisson", solver="newton_cg", bounds=(0, None))
    labels = (data["poisson"] % 3).astype(int)
    with pytest.raises(ValueError, match="single-response"):
        lj.fit(data["M"], labels, lj.families.Multinomial(3), solver=NewtonCG())
