"""Newton's Schur-complement step for designs with a categorical block
(`linjax.designs.block_solve`): the same fits as the dense matrix's (numpy one-hot, to 1e-10),
the same linear algebra as numpy's, and no (k, k) matrix in the compiled fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax.designs import Categorical, Dense, Split, block_solve, standard_errors
from linjax.solvers import Newton

N, LEVELS = 300, 12
TOL = 1e-10


def _one_hot(codes, n_levels, drop_first):
    full = (codes[:, None] == np.arange(n_levels)).astype(float)
    return full[:, 1:] if drop_first else full


@pytest.fixture(scope="module")
def data():
    """Codes with an empty level (4) and a level whose rows all have weight 0 (7)."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, LEVELS, N)
    codes[codes == 4] = 5
    Z = rng.normal(size=(N, 3))
    y = rng.poisson(np.exp(0.3 * Z[:, 0] + 0.5 * rng.normal(size=LEVELS)[codes])).astype(float)
    w = rng.uniform(0.5, 2.0, N)
    w[codes == 7] = 0.0
    offset = rng.normal(scale=0.1, size=N)
    return codes, Z, y, w, offset


def _design(codes, Z, drop_first, codes2=None):
    """[Z[:, :1], factor, Z[:, 1:] (, second factor)] as a Split and as numpy columns."""
    blocks = [Dense(jnp.asarray(Z[:, :1])), Categorical.from_codes(codes, LEVELS, drop_first),
              Dense(jnp.asarray(Z[:, 1:]))]
    cols = [Z[:, :1], _one_hot(codes, LEVELS, drop_first), Z[:, 1:]]
    if codes2 is not None:
        blocks.append(Categorical.from_codes(codes2, 3, True))
        cols.append(_one_hot(codes2, 3, True))
    return Split(tuple(blocks)), np.column_stack(cols)


@pytest.mark.parametrize("drop_first,penalized,intercept", [
    (True, True, True), (True, False, True), (False, True, True), (False, False, True),
    (False, True, False)])
def test_fit_equals_the_dense_fit(data, drop_first, penalized, intercept):
    """Poisson with weights, offset, an empty and a zero-weight level; unpenalized ones are
    singular (and drop_first=False with an intercept aliased): the minimum-norm answer."""
    codes, Z, y, w, offset = data
    X, M = _design(codes, Z, drop_first)
    pen = lj.penalties.L2(1e-3) if penalized else None
    kw = dict(penalty=pen, weights=w, offset=offset, fit_intercept=intercept)
    with np.errstate(all="ignore"), pytest.warns() if not penalized else _no_warning():
        ours = lj.fit(X, y, "poisson", solver=Newton(), **kw)
    with np.errstate(all="ignore"), pytest.warns() if not penalized else _no_warning():
        dense = lj.fit(M, y, "poisson", solver=Newton(), **kw)
    assert int(ours.status) == int(dense.status)
    np.testing.assert_allclose(ours.coef, dense.coef, atol=TOL, rtol=0)
    np.testing.assert_allclose(ours.intercept, dense.intercept, atol=TOL, rtol=0)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_two_factors_and_gamma_equal_the_dense_fit(data):
    """The widest factor is the diagonal block, the other joins the border; a non-canonical
    link (Gamma, log) with L2."""
    codes, Z, y, w, offset = data
    codes2 = np.random.default_rng(5).integers(0, 3, N)
    X, M = _design(codes, Z, True, codes2)
    yg = y + 0.5
    pen = lj.penalties.L2(1e-2)
    ours = lj.fit(X, yg, "gamma", penalty=pen, solver=Newton(), weights=w)
    dense = lj.fit(M, yg, "gamma", penalty=pen, solver=Newton(), weights=w)
    np.testing.assert_allclose(ours.coef, dense.coef, atol=TOL, rtol=0)
    np.testing.assert_allclose(ours.intercept, dense.intercept, atol=TOL, rtol=0)


def test_arrow_hessian_parts_solve_and_inverse_diagonal(data):
    """to_dense equals Z' diag(s) Z + diag(pen) from numpy; solve equals numpy's solve;
    inverse_diagonal equals the diagonal of numpy's inverse."""
    codes, Z, _, w, _ = data
    X, M = _design(codes, Z, True)
    s = jnp.asarray(w + 0.1)
    pen = np.random.default_rng(2).uniform(0.1, 1.0, M.shape[1] + 1)
    H = block_solve.arrow_products(X, s, True).add_diagonal(jnp.asarray(pen))
    Zm = np.column_stack([np.ones(N), M])
    dense = Zm.T @ (np.asarray(s)[:, None] * Zm) + np.diag(pen)
    np.testing.assert_allclose(H.to_dense(), dense, atol=1e-12)
    rhs = np.random.default_rng(3).normal(size=dense.shape[0])
    x, singular = jax.jit(lambda H, r: H.solve(r))(H, jnp.asarray(rhs))
    assert not bool(singular)
    np.testing.assert_allclose(x, np.linalg.solve(dense, rhs), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H.inverse_diagonal(), np.diag(np.linalg.inv(dense)), rtol=1e-10)


def _shapes(jaxpr):
    """Every array shape that a jaxpr (and the jaxprs inside it) produces."""
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            yield tuple(getattr(var.aval, "shape", ()))
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _shapes(inner)


def test_the_fit_never_forms_the_full_hessian():
    """A 2,000-level factor beside 2 numerics: no (2003, 2003) array in the Newton fit (the
    dense system would be one), and the answer equals the dense one's (L2)."""
    rng = np.random.default_rng(4)
    n, levels = 4000, 2000
    codes = rng.integers(0, levels, n)
    Z = rng.normal(size=(n, 2))
    y = rng.poisson(np.exp(0.2 * Z[:, 0] + 0.3 * rng.normal(size=levels)[codes])).astype(float)
    X = Split((Categorical.from_codes(codes, levels, True), Dense(jnp.asarray(Z))))
    pen = lj.penalties.L2(1e-4)
    k = X.shape[1] + 1
    from linjax.fit import fit_validated

    def run(y):
        return fit_validated(X, y, None, None, None, lj.families.Poisson(), pen, Newton(),
                             True, start_in_loop=True).params["coef"]

    shapes = set(_shapes(jax.make_jaxpr(run)(jnp.asarray(y)).jaxpr))
    assert (k, k) not in shapes and (k - 1, k - 1) not in shapes
    ours = lj.fit(X, y, "poisson", penalty=pen, solver=Newton())
    dense = lj.fit(X, y, "poisson", penalty=pen, solver=Newton(schur=False))
    np.testing.assert_allclose(ours.coef, dense.coef, atol=TOL, rtol=0)


def test_standard_errors_equal_statsmodels_and_the_dense_summary(data):
    """Unpenalized Poisson: statsmodels' GLM bse; Gamma with L2 and weights (Pearson
    dispersion, posterior covariance): summarize's bse on the dense matrix."""
    import statsmodels.api as sm

    from linjax.inference import summarize

    codes, Z, y, w, offset = data
    codes = np.where(codes == 4, 6, codes)  # every level has rows (4 was empty)
    codes[:LEVELS] = np.arange(LEVELS)
    X, M = _design(codes, Z, True)
    fit = lj.fit(X, y, "poisson", solver=Newton(), offset=offset)
    ref = sm.GLM(y, sm.add_constant(M), family=sm.families.Poisson(), offset=offset).fit()
    np.testing.assert_allclose(standard_errors.standard_errors(fit, X, y, offset=offset), ref.bse,
                               rtol=1e-7)
    yg = y + 0.5
    pen = lj.penalties.L2(1e-2)
    fit = lj.fit(X, yg, "gamma", penalty=pen, solver=Newton(), weights=w + 0.1)
    dense = summarize(lj.fit(M, yg, "gamma", penalty=pen, solver=Newton(), weights=w + 0.1),
                      M, yg, weights=w + 0.1)
    np.testing.assert_allclose(standard_errors.standard_errors(fit, X, yg, weights=w + 0.1),
                               dense.bse, rtol=1e-9)


def test_auto_takes_newton_for_a_wide_factor():
    """4,200 levels + 2 numerics (4,203 coefficients, above designs.fitting.NEWTON_MAX_WIDTH):
    "auto" takes Newton, whose Schur step costs as 3 coefficients, and converges."""
    from linjax.designs.fitting import NEWTON_MAX_WIDTH

    rng = np.random.default_rng(6)
    n, levels = 6000, 4200
    codes = rng.integers(0, levels, n)
    Z = rng.normal(size=(n, 2))
    y = rng.poisson(np.exp(0.2 * Z[:, 0])).astype(float)
    X = Split((Categorical.from_codes(codes, levels, True), Dense(jnp.asarray(Z))))
    assert X.shape[1] + 1 > NEWTON_MAX_WIDTH
    fit = lj.fit(X, y, "poisson", penalty=lj.penalties.L2(1e-3))
    assert fit.solver == "newton" and int(fit.status) == 0
