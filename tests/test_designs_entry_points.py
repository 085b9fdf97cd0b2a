"""Structured designs (sparse, categorical, blocks) through paths, cross-validation, fit_batch,
summarize and the diagnostics: each equals the same call on the dense matrix (to 1e-10)."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import zoo

import linjax as lj
from linjax.designs import Categorical, Dense, Sparse, Split

TOL = 1e-10


@pytest.fixture(scope="module")
def data():
    """zoo's Poisson problem (weights, offset) with a categorical and a sparse block added:
    (design, its dense matrix built with numpy/scipy, y, weights, offset, the scipy block)."""
    X, y, w, off = zoo.problem("poisson")
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 4, zoo.N)
    A = sp.random(zoo.N, 4, density=0.4, format="csr", random_state=8)
    design = Split((Dense(jnp.asarray(X)), Categorical.from_codes(codes, 4, drop_first=True),
                    Sparse.from_scipy(A)))
    one_hot = (codes[:, None] == np.arange(1, 4)).astype(float)
    return design, np.column_stack([X, one_hot, A.toarray()]), y, w, off, A


def _same_path(got, want):
    np.testing.assert_allclose(got.alphas, want.alphas, rtol=1e-12)
    np.testing.assert_allclose(got.coef, want.coef, atol=TOL)
    np.testing.assert_allclose(got.intercept, want.intercept, atol=TOL)
    np.testing.assert_allclose(got.deviance, want.deviance, atol=TOL)
    np.testing.assert_array_equal(got.df, want.df)
    assert np.all(np.asarray(got.status) == 0)


@pytest.mark.parametrize("family,l1_ratio", [("poisson", 0.5), ("gaussian", 1.0)])
def test_path_equals_dense_path(data, family, l1_ratio):
    """The design's path (IRLS with structured Grams) against the dense path (residual CD
    for Poisson, the covariance solver for Gaussian), default grid from alpha_max."""
    design, M, y, w, off, _ = data
    if family == "gaussian":
        y = zoo.problem("gaussian")[1]
    kw = dict(n_alphas=12, weights=w, offset=off, tol=1e-12)
    _same_path(lj.path(design, y, family, l1_ratio, **kw), lj.path(M, y, family, l1_ratio, **kw))


def test_cv_path_equals_dense(data):
    design, M, y, w, off, _ = data
    kw = dict(n_alphas=8, folds=4, weights=w, offset=off, tol=1e-12, warn_edge=False)
    got = lj.selection.cv_path(design, y, "poisson", 1.0, **kw)
    want = lj.selection.cv_path(M, y, "poisson", 1.0, **kw)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-10)
    np.testing.assert_allclose(got.fold_paths.coef, want.fold_paths.coef, atol=TOL)
    _same_path(got.path, want.path)
    ic = lj.selection.information_criteria(got.path, design, y, "poisson", w, off)
    ic_dense = lj.selection.information_criteria(want.path, M, y, "poisson", w, off)
    np.testing.assert_allclose(ic.aic, ic_dense.aic, rtol=1e-10)


def test_path_refusals(data):
    design, _, y, *_ = data
    with pytest.raises(ValueError, match="method: 'covariance' needs a dense X"):
        lj.path(design, y, "gaussian", alphas=[0.1], method="covariance")
    wide = Sparse.from_scipy(sp.random(zoo.N, 5000, density=0.001, format="csr",
                                       random_state=0))
    with pytest.raises(ValueError, match="limited to p <= 4096"):
        lj.path(wide, y, "poisson", alphas=[0.1])


def test_fit_batch_shared_design_equals_dense(data):
    design, M, y, w, off, A = data
    Y = np.stack([y, y[::-1], zoo.problem("poisson", seed=1)[1]])
    got = lj.fit_batch(design, Y, "poisson", weights=w, offset=off)
    want = lj.fit_batch(M, Y, "poisson", weights=w, offset=off)
    np.testing.assert_allclose(got.coef, want.coef, atol=TOL)
    np.testing.assert_allclose(got.intercept, want.intercept, atol=TOL)
    assert np.all(np.asarray(got.status) == 0)
    l2 = lj.penalties.L2(0.01)
    got = lj.fit_batch(A, Y, "poisson", penalty=l2)   # scipy.sparse as it comes
    np.testing.assert_allclose(got.coef, lj.fit_batch(A.toarray(), Y, "poisson",
                                                      penalty=l2).coef, atol=TOL)
    yg = zoo.problem("gaussian")[1]
    got = lj.fit_batch(design, np.stack([yg, yg[::-1]]), weights=w)   # auto: Newton
    want = lj.fit_batch(M, np.stack([yg, yg[::-1]]), weights=w)       # least squares
    np.testing.assert_allclose(got.coef, want.coef, atol=TOL)
    with pytest.raises(ValueError, match="needs the rows of a dense X"):
        lj.fit_batch(design, Y, "poisson", solver="lstsq")


def test_summarize_and_diagnostics_equal_dense(data):
    design, M, y, w, off, _ = data
    kw = dict(weights=w, offset=off)
    got, want = lj.fit(design, y, "poisson", **kw), lj.fit(M, y, "poisson", **kw)
    s, s_dense = (lj.inference.summarize(got, design, y, **kw),
                  lj.inference.summarize(want, M, y, **kw))
    np.testing.assert_allclose(s.params, s_dense.params, atol=TOL)
    np.testing.assert_allclose(s.bse, s_dense.bse, rtol=1e-10)
    D = lj.diagnostics
    for kind in ("pearson", "deviance", "working"):
        np.testing.assert_allclose(D.residuals(got, design, y, kind, **kw),
                                   D.residuals(want, M, y, kind, **kw), atol=TOL)
    np.testing.assert_allclose(D.leverage(got, design, y, **kw), D.leverage(want, M, y, **kw),
                               atol=TOL)
    np.testing.assert_allclose(D.cooks_distance(got, design, y, **kw)[0],
                               D.cooks_distance(want, M, y, **kw)[0], atol=TOL)
    np.testing.assert_allclose(D.vif(design), D.vif(M), rtol=1e-10)
    np.testing.assert_allclose(D.condition_number(design), D.condition_number(M), rtol=1e-10)


def test_auto_solver_for_designs():
    """"auto" for a design: Newton up to NEWTON_MAX_WIDTH coefficients besides its widest
    factor (whose diagonal block the Schur step solves), NewtonCG beyond, never lstsq."""
    from linjax.designs.fitting import NEWTON_MAX_WIDTH, solver_for
    from linjax.solver_choice import choose_solver
    from linjax.solvers import LBFGS, Newton, NewtonCG

    fam, none = lj.families.Poisson(), lj.penalties.NoPenalty()
    wide = (10_000, 1000)
    assert isinstance(choose_solver("auto", fam, none, wide), LBFGS)   # dense: L-BFGS
    assert isinstance(solver_for("auto", fam, none, wide, False, choose_solver), NewtonCG)
    factor = solver_for("auto", fam, none, wide, False, choose_solver, arrow_width=990)
    assert isinstance(factor, Newton)   # a 990-level factor and 10 more columns
    widest = (10_000, NEWTON_MAX_WIDTH + 1)
    assert isinstance(solver_for("auto", fam, none, widest, False, choose_solver), NewtonCG)
    assert isinstance(solver_for("lbfgs", fam, none, wide, False, choose_solver), LBFGS)
    gauss = lj.families.Gaussian()
    assert isinstance(solver_for("auto", gauss, none, (50, 3), False, choose_solver), Newton)


def test_wide_sparse_design_starts_without_its_gram():
    """A sparse X wider than the structured start's limit (4096 columns) fits from the
    intercept-only start (R's first IRLS step would form a (p + 1)^2 Gram: 80 GB at
    p = 100,000) and reaches scikit-learn's L2 logistic optimum on the same CSR."""
    from sklearn.linear_model import LogisticRegression

    n, p, alpha = zoo.N, 4200, 0.01
    A = sp.random(n, p, density=0.01, format="csr", random_state=2)
    y = zoo.problem("binomial")[1]
    pen = lj.penalties.L2(alpha)
    got = lj.fit(A, y, "binomial", penalty=pen)
    assert got.solver == "newton_cg" and int(got.status) == 0
    sk = LogisticRegression(C=1.0 / (n * alpha), tol=1e-12, max_iter=10_000).fit(A, y)
    want = {"coef": sk.coef_[0], "intercept": sk.intercept_[0]}
    np.testing.assert_allclose(got.coef, want["coef"], atol=1e-6)
    design = Sparse.from_scipy(A)
    assert float(got.objective) <= float(lj.objective(want, design, y, "binomial", pen)) + 1e-12
    from linjax.solvers.problem import GLMProblem
    from linjax.starting import initial_params

    problem = GLMProblem(design, jnp.asarray(y), jnp.full(n, 1.0 / n), None,
                         lj.families.Binomial(), pen, True, None, None)
    start = initial_params(problem)
    np.testing.assert_array_equal(start["coef"], 0.0)
    mu0 = np.mean((y + 0.5) / 2)   # R's binomial start (y + 0.5) / 2, averaged
    np.testing.assert_allclose(start["intercept"], np.log(mu0 / (1 - mu0)), rtol=1e-12)
