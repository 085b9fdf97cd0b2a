"""fit_batch, blocked and streaming fits against loops of lj.fit, statsmodels and numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm

import linjax as lj
from linjax.families import Binomial, NegativeBinomial, Poisson
from linjax.penalties import L1, L2
from linjax.scale import batch, fit_batch
from tests import zoo

M, N, P = 200, 120, 3


def stacked(params):
    return np.column_stack([np.asarray(params["intercept"]), np.asarray(params["coef"])])


def poisson_batch(m=M, n=N, p=P, seed=0):
    """Per-gene style problems: shared design, a size-factor offset per problem."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = rng.normal(scale=0.3, size=(m, p))
    size = np.log(rng.uniform(0.5, 2.0, size=(m, n)))
    Y = rng.poisson(np.exp(0.5 + beta @ X.T + size)).astype(float)
    return X, Y, size


def test_poisson_shared_design_matches_statsmodels_and_fit_loop():
    X, Y, offset = poisson_batch()
    res = fit_batch(X, Y, family="poisson", offset=offset)
    assert res.params["coef"].shape == (M, P) and res.converged.shape == (M,)
    assert np.all(np.asarray(res.converged)) and np.all(np.asarray(res.status) == 0)
    ours = stacked(res.params)
    Xc = sm.add_constant(X)
    ref = np.array([sm.GLM(Y[i], Xc, family=sm.families.Poisson(), offset=offset[i])
                    .fit(tol=1e-14).params for i in range(M)])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-8)
    loop = [lj.fit(X, Y[i], family="poisson", offset=offset[i]) for i in range(40)]
    np.testing.assert_allclose(ours[:40], np.array([np.r_[r.intercept, r.coef] for r in loop]),
                               rtol=0, atol=1e-10)
    np.testing.assert_array_equal(np.asarray(res.n_iter[:40]), [int(r.n_iter) for r in loop])
    np.testing.assert_allclose(np.asarray(res.objective[:40]),
                               [float(r.objective) for r in loop], rtol=1e-12)


@pytest.mark.parametrize("gram", ["pairs"])
def test_paths_and_chunking_agree(gram):
    X, Y, offset = poisson_batch(m=37)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=Y.shape)
    weights[3, :50] = 0.0                              # a ragged problem: zero-weight rows
    full = fit_batch(X, Y, family="poisson", offset=offset, weights=weights, penalty=L2(0.05),
                     gram=gram)
    chunked = fit_batch(X, Y, family="poisson", offset=offset, weights=weights,
                        penalty=L2(0.05), gram=gram, batch_size=8)
    np.testing.assert_allclose(stacked(chunked.params), stacked(full.params), atol=1e-12)
    np.testing.assert_array_equal(np.asarray(chunked.n_iter), np.asarray(full.n_iter))
    ragged = lj.fit(X[50:], Y[3, 50:], family="poisson", offset=offset[3, 50:],
                    weights=weights[3, 50:], penalty=L2(0.05))
    np.testing.assert_allclose(stacked(full.params)[3], np.r_[ragged.intercept, ragged.coef],
                               atol=1e-10)


@pytest.mark.parametrize("groups", [2, 3])
def test_cpu_groups_on_threads_equal_one_call(monkeypatch, groups):
    """The CPU path that fits groups of problems from concurrent threads gives the one-call
    result, per-problem offsets, weights, starts and L2 strengths included, also when the
    last group overlaps the one before (41 problems); singular problems (a repeated column)
    get the same minimum-norm steps from the LAPACK-free eigen fallback."""
    X, Y, offset = poisson_batch(m=41)
    rng = np.random.default_rng(2)
    weights = rng.uniform(0.5, 2.0, size=Y.shape)
    init = {"coef": rng.normal(scale=0.1, size=(41, P)), "intercept": np.zeros(41)}
    Xs = np.column_stack([X, X[:, 0]])
    calls = [dict(X=X, Y=Y, family="poisson", offset=offset, weights=weights, init=init,
                  penalty=L2(alpha=np.geomspace(1e-4, 1e-1, 41))),
             dict(X=Xs, Y=Y, family="poisson", offset=offset[0])]
    for kw in calls:
        monkeypatch.setattr(batch, "cpu_groups", lambda m: 1)
        one = fit_batch(**kw)
        monkeypatch.setattr(batch, "cpu_groups", lambda m: groups)
        grouped = fit_batch(**kw)
        assert grouped.params["coef"].shape == one.params["coef"].shape
        np.testing.assert_allclose(stacked(grouped.params), stacked(one.params), atol=1e-10)
        np.testing.assert_allclose(grouped.objective, one.objective, rtol=1e-12)
        np.testing.assert_array_equal(grouped.status, one.status)
        np.testing.assert_array_equal(grouped.n_iter, one.n_iter)
    assert np.all(np.asarray(grouped.status) == int(lj.solvers.Status.SINGULAR))


def test_cpu_groups_follow_the_callers_x64_context(monkeypatch):
    """The pool's threads do not inherit a caller's thread-local `jax.enable_x64(True)`: the
    groups must still fit in float64 (as the one-call fit does)."""
    X, Y, _ = poisson_batch(m=41)
    monkeypatch.setattr(batch, "cpu_groups", lambda m: 2)
    ref = fit_batch(X, Y, family="poisson")
    jax.config.update("jax_enable_x64", False)
    try:
        enable_x64 = jax.enable_x64 if hasattr(jax, "enable_x64") else jax.experimental.enable_x64
        with enable_x64(True):
            res = fit_batch(X, Y, family="poisson")
            assert res.params["coef"].dtype == jnp.float64
            np.testing.assert_allclose(stacked(res.params), stacked(ref.params), atol=1e-12)
    finally:
        jax.config.update("jax_enable_x64", True)


def test_cpu_groups_compile_no_lapack_kernel():
    """Grouped calls run concurrently, and jaxlib 0.10's CPU LAPACK kernels can hang when two
    calls run them at once: the grouped program must call none (the one-call program does,
    in its eigen fallback)."""
    X, Y, _ = poisson_batch(m=8)
    args = (jnp.asarray(X), jnp.asarray(Y), None, None, None, Poisson(), lj.penalties.NoPenalty(),
            lj.solvers.Newton(), True)
    static = dict(batch_size=None, use_pairs=True, axes=(None, None, None, None, (), (), None))
    grouped = batch._fit_batch.lower(*args, lo=0, group_size=4, **static).as_text()
    one = batch._fit_batch.lower(*args, **static).as_text()
    assert "lapack" in one.lower() and "lapack" not in grouped.lower()


def test_stacked_designs_binomial_matches_statsmodels():
    rng = np.random.default_rng(2)
    m, n = 12, 150
    X = rng.normal(size=(m, n, P))
    beta = rng.normal(size=(m, P))
    Y = (rng.random((m, n)) < 1 / (1 + np.exp(-np.einsum("mnp,mp->mn", X, beta)))).astype(float)
    res = fit_batch(X, Y, family=Binomial(), batch_size=5)      # lax.map, with a remainder
    ref = np.array([sm.GLM(Y[i], sm.add_constant(X[i]), family=sm.families.Binomial())
                    .fit(tol=1e-14).params for i in range(m)])
    np.testing.assert_allclose(stacked(res.params), ref, atol=1e-8)


def test_negative_binomial_per_problem_dispersion():
    rng = np.random.default_rng(3)
    m, n = 10, 200
    X = rng.normal(size=(n, 2))
    alpha = rng.uniform(0.2, 1.5, size=m)
    size = np.log(rng.uniform(0.5, 2.0, size=n))
    mu = np.exp(1.0 + X @ np.array([0.3, -0.2]) + size)
    Y = np.stack([rng.negative_binomial(1 / a, 1 / (1 + a * mu)) for a in alpha]).astype(float)
    res = fit_batch(X, Y, family=NegativeBinomial(alpha=alpha), offset=size)
    ref = np.array([sm.GLM(Y[i], sm.add_constant(X), offset=size,
                           family=sm.families.NegativeBinomial(alpha=alpha[i]))
                    .fit(tol=1e-14).params for i in range(m)])
    np.testing.assert_allclose(stacked(res.params), ref, atol=1e-8)


def test_gaussian_least_squares_batch_matches_numpy():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 4))
    Y = rng.normal(size=(25, 60))
    res = fit_batch(X, Y)                              # solver auto: LeastSquares, vmapped
    ref = np.linalg.lstsq(np.column_stack([np.ones(60), X]), Y.T, rcond=None)[0].T
    np.testing.assert_allclose(stacked(res.params), ref, atol=1e-10)
    res_newton = fit_batch(X, Y, solver="newton")
    np.testing.assert_allclose(stacked(res_newton.params), ref, atol=1e-10)


def test_per_problem_status_and_no_intercept():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 2))
    Y = (rng.random((4, 40)) < 0.5).astype(float)
    Y[2] = (X[:, 0] > 0).astype(float)                 # perfectly separable: no finite optimum
    res = fit_batch(X, Y, family="binomial", fit_intercept=False,
                    solver=lj.solvers.Newton(max_iter=15))
    conv = np.asarray(res.converged)
    assert conv[[0, 1, 3]].all() and not conv[2]
    assert np.asarray(res.status)[2] != 0
    assert np.all(np.asarray(res.params["intercept"]) == 0)
    one = lj.fit(X, Y[1], family="binomial", fit_intercept=False)
    np.testing.assert_allclose(np.asarray(res.coef[1]), np.asarray(one.coef), atol=1e-10)


def test_fit_batch_under_jit():
    X, Y, offset = poisson_batch(m=6)
    f = jax.jit(lambda Y: fit_batch(X, Y, family=Poisson(), offset=offset).params["coef"])
    eager = fit_batch(X, Y, family=Poisson(), offset=offset).params["coef"]
    np.testing.assert_allclose(f(jnp.asarray(Y)), eager, atol=1e-12)


def test_batch_validation_names_the_problem():
    X, Y, _ = poisson_batch(m=5)
    bad = Y.copy()
    bad[3, 7] = -1.0
    with pytest.raises(ValueError, match=r"Y\[3\].*problem 3"):
        fit_batch(X, bad, family="poisson")
    nan = Y.copy()
    nan[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"Y\[1\] \(problem 1\): non-finite"):
        fit_batch(X, nan, family="poisson")
    w = np.ones_like(Y)
    w[4] = 0.0
    with pytest.raises(ValueError, match=r"weights\[4\].*all weights are zero"):
        fit_batch(X, Y, family="poisson", weights=w)
    with pytest.raises(ValueError, match=r"Y: expected shape \(m, n\)"):
        fit_batch(X, Y[0], family="poisson")
    with pytest.raises(ValueError, match="rows but Y has"):
        fit_batch(X[:-1], Y, family="poisson")
    with pytest.raises(ValueError, match="offset: expected shape"):
        fit_batch(X, Y, family="poisson", offset=np.zeros((2, N)))
    with pytest.raises(ValueError, match="batch_size"):
        fit_batch(X, Y, family="poisson", batch_size=0)
    with pytest.raises(ValueError, match="gram='pairs' needs"):
        fit_batch(np.stack([X] * 5), Y, family="poisson", gram="pairs")
    with pytest.raises(ValueError, match="gram: expected"):
        fit_batch(X, Y, family="poisson", gram="dense")


@pytest.mark.parametrize("solver, penalty", [("auto", L1(0.02))])
def test_generic_path_any_solver_matches_fit_loop(solver, penalty):
    X, Y, offset = poisson_batch(m=4)
    res = fit_batch(X, Y, family="poisson", offset=offset, solver=solver, penalty=penalty)
    for i in range(4):
        one = lj.fit(X, Y[i], family="poisson", offset=offset[i], solver=solver,
                     penalty=penalty)
        np.testing.assert_allclose(stacked(res.params)[i], np.r_[one.intercept, one.coef],
                                   atol=1e-10)
        assert int(res.n_iter[i]) == int(one.n_iter)


# ----------------------------------------------------------------------------- streaming
def chunked(arrays, n_chunks):
    """A callable returning a fresh iterator over n_chunks row chunks (never all at once)."""
    n = arrays[0].shape[0]
    edges = np.linspace(0, n, n_chunks + 1).astype(int)

    def source():
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            yield tuple(x[a:b] for x in arrays)

    return source


@pytest.mark.parametrize("family, penalty", [("poisson", L2(0.05)),
                                             ("gamma", None)])
def test_streaming_newton_over_50_chunks_equals_in_memory_fit(family, penalty):


    X, y, w, o = zoo.problem(family, n=1003)
    res = lj.fit_streaming(chunked((X, y, w, o), 50), family=family, penalty=penalty)
    ref = lj.fit(X, y, family=family, weights=w, offset=o, penalty=penalty, solver="newton")
    assert bool(res.converged), res.message
    np.testing.assert_allclose(np.r_[res.intercept, res.coef], np.r_[ref.intercept, ref.coef],
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(float(res.objective), float(ref.objective), rtol=1e-12)
    assert int(res.n_iter) == int(ref.n_iter)
    # one pass for the start, one per Newton step (more where a step was halved)
    assert res.info["passes"] >= int(res.n_iter) + 2 and res.info["n_rows"] == 1003


def test_streaming_least_squares_tsqr_on_longley_certified_values():
    import json
    import pathlib

    d = json.loads((pathlib.Path(__file__).parent / "data" / "Longley.json").read_text())
    X, y = np.array(d["x"], float), np.array(d["y"], float)
    res = lj.fit_streaming(chunked((X, y), 5), solver="lstsq")
    got = np.r_[res.intercept, res.coef]
    cert = np.array(d["certified"]["coef"], float)
    assert np.max(np.abs(got - cert) / np.abs(cert)) < 1e-9
    rss = 2 * len(y) * float(res.objective)
    resid_sd = np.sqrt(rss / int(d["certified"]["df_residual"]))
    assert abs(resid_sd / float(d["certified"]["residual_sd"]) - 1) < 1e-9


def test_streaming_least_squares_ridge_matches_fit():


    X, y, w, o = zoo.problem("gaussian", n=1000)
    for pen in (None, L2(0.3)):
        res = lj.fit_streaming(chunked((X, y, w, o), 50), solver="lstsq", penalty=pen)
        ref = lj.fit(X, y, weights=w, offset=o, penalty=pen)
        np.testing.assert_allclose(np.r_[res.intercept, res.coef],
                                   np.r_[ref.intercept, ref.coef], atol=1e-10)
        np.testing.assert_allclose(float(res.objective), float(ref.objective), rtol=1e-10)


def test_streaming_sgd_approaches_the_optimum():


    X, y, w, o = zoo.problem("poisson", n=1000)
    ref = lj.fit(X, y, family="poisson", weights=w, offset=o)
    res = lj.fit_streaming(chunked((X, y, w, o), 20), family="poisson", solver="sgd",
                           learning_rate=0.05, n_epochs=15)
    assert float(res.objective) - float(ref.objective) < 1e-3
    np.testing.assert_allclose(np.asarray(res.coef), np.asarray(ref.coef), atol=0.05)


def test_streaming_input_errors():
    X, y = np.ones((10, 2)), np.ones(10)
    with pytest.raises(ValueError, match="generator or iterator can be read only once"):
        lj.fit_streaming((c for c in [(X, y)]), family="poisson")
    with pytest.raises(ValueError, match=r"chunk 1: X has \(3,\) columns"):
        lj.fit_streaming([(X, y), (np.ones((10, 3)), y)])
    with pytest.raises(ValueError, match=r"chunk 0: y: .*outside the support"):
        lj.fit_streaming([(X, -y)], family="poisson")
    with pytest.raises(ValueError, match="yielded no chunks"):
        lj.fit_streaming(lambda: iter([]))
    with pytest.raises(ValueError, match="not smooth"):
        lj.fit_streaming([(X, y)], penalty=L1(0.1))


# ----------------------------------------------------------------------------- blocked
@pytest.mark.parametrize("family, penalty", [("poisson", L2(0.1)), ("gaussian", L2(0.1))])
def test_blocked_fit_equals_fit(family, penalty):
    from linjax.scale import fit_blocked

    X, y, w, o = zoo.problem(family, n=1003)          # 1003 rows: the last block is padded
    ref = lj.fit(X, y, family=family, weights=w, offset=o, penalty=penalty)
    res = fit_blocked(X, y, family=family, weights=w, offset=o, penalty=penalty, block_size=100)
    assert res.solver == ref.solver and bool(res.converged)
    np.testing.assert_allclose(np.r_[res.intercept, res.coef], np.r_[ref.intercept, ref.coef],
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(float(res.objective), float(ref.objective), rtol=1e-12)


def test_blocked_tsqr_longley_certified_values():
    import json
    import pathlib

    from linjax.scale import fit_blocked

    d = json.loads((pathlib.Path(__file__).parent / "data" / "Longley.json").read_text())
    X, y = np.array(d["x"], float), np.array(d["y"], float)
    res = fit_blocked(X, y, solver="lstsq", block_size=4)
    cert = np.array(d["certified"]["coef"], float)
    assert np.max(np.abs(np.r_[res.intercept, res.coef] - cert) / np.abs(cert)) < 1e-9
    with pytest.raises(ValueError, match="fit_blocked runs Newton or LeastSquares"):
        fit_blocked(X, y, solver="lbfgs")
