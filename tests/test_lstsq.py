"""LeastSquares on NIST StRD certified problems (Longley, Norris) and rank-deficient designs."""

import json
import pathlib

import numpy as np
import pytest

import linjax as lj

DATA = pathlib.Path(__file__).parent / "data"


def _nist(name):
    d = json.loads((DATA / f"{name}.json").read_text())
    X = np.array(d["x"], dtype=float)
    X = X[:, None] if X.ndim == 1 else X
    y = np.array(d["y"], dtype=float)
    cert = d["certified"]
    return X, y, np.array(cert["coef"], float), float(cert["residual_sd"]), int(
        cert["df_residual"])


def _significant_digits(got, want):
    rel = np.abs(np.asarray(got) - want) / np.abs(want)
    return float(-np.log10(np.maximum(rel, 1e-17)).min())


@pytest.mark.parametrize("name", ["Longley", "Norris"])
@pytest.mark.parametrize("method", ["qr", "svd", "auto", "cholesky"])
def test_nist_certified_values(name, method):
    X, y, coef, resid_sd, df = _nist(name)
    res = lj.fit(X, y, solver=lj.solvers.LeastSquares(method=method))
    assert bool(res.converged), res.message
    if method in ("auto", "cholesky"):
        # Longley is too ill-conditioned for the normal equations: the guard takes QR;
        # Norris (one centred column) is not
        assert bool(res.info.normal) == (name == "Norris")
    got = np.concatenate([[res.params["intercept"]], res.params["coef"]])
    assert _significant_digits(got, coef) >= 9, (got, coef)
    rss = 2 * len(y) * float(res.objective)  # objective = RSS / (2 n)
    assert _significant_digits(np.sqrt(rss / df), resid_sd) >= 9


def test_rank_deficient_design_gives_min_norm_solution_and_rank():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    X = np.column_stack([X, X[:, 0] + X[:, 1]])  # rank 3
    y = X[:, :3] @ np.array([1.0, 2.0, -1.0]) + rng.normal(size=50)
    res = lj.fit(X, y)
    assert int(res.status) == lj.solvers.Status.SINGULAR
    assert int(res.info.rank) == 3
    Xc = X - X.mean(0)
    ref = np.linalg.lstsq(Xc, y - y.mean(), rcond=None)[0]  # numpy's minimum-norm solution
    np.testing.assert_allclose(res.params["coef"], ref, rtol=1e-9)


def test_least_squares_run_solves_a_quadratic():
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])
    sol = lj.solvers.LeastSquares().run(lambda x: 0.5 * x @ A @ x - b @ x, np.zeros(2))
    np.testing.assert_allclose(sol.params, np.linalg.solve(A, b), rtol=1e-12)


def test_least_squares_refuses_other_families():
    X = np.ones((4, 1)) * np.arange(4)[:, None]
    with pytest.raises(ValueError, match="LeastSquares"):
        lj.fit(X, np.array([0.0, 1, 2, 3]), family=lj.families.Poisson(), solver="lstsq")


def test_intercept_only_least_squares_is_the_weighted_mean():
    rng = np.random.default_rng(2)
    y, w = rng.normal(size=20), rng.uniform(0.5, 2, size=20)
    res = lj.fit(np.zeros((20, 0)), y, weights=w, solver="lstsq")
    np.testing.assert_allclose(res.params["intercept"], np.average(y, weights=w), rtol=1e-13)
    assert bool(res.converged)
