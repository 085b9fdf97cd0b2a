"""`solve_psd` without LAPACK: the Cholesky factorization and substitutions as XLA loops.

References: numpy.linalg (cholesky, solve, pinv). The eager dense Newton fit's program holds
no LAPACK call (so a first `lj.fit` never imports scipy), and a singular Hessian still gets
the minimum-norm answer through the program with the eigen fallback.
"""

import json
import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax.solvers import linalg


def _psd(k, cond, seed):
    """A symmetric positive definite (k, k) matrix with eigenvalues from 1 down to 1 / cond."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((k, k)))
    H = (q * np.geomspace(1.0, 1.0 / cond, k)) @ q.T
    return (H + H.T) / 2, rng.standard_normal(k)


@pytest.mark.parametrize("k", [1, 7, 40])
@pytest.mark.parametrize("cond", [1e2, 1e10])
def test_loop_cholesky_matches_numpy(k, cond):
    """Pivots equal numpy's Cholesky diagonal; x solves H x = b to numpy's accuracy (a
    forward error within cond * eps of numpy.linalg.solve), for one and for several
    right-hand sides."""
    H, b = _psd(k, cond, seed=k)
    solve = jax.jit(linalg.loop_cholesky_solve)
    x, pivots, finite = (np.asarray(a) for a in solve(jnp.asarray(H), jnp.asarray(b)))
    assert bool(finite)
    np.testing.assert_allclose(pivots, np.diag(np.linalg.cholesky(H)), rtol=1e-12 * cond)
    ref = np.linalg.solve(H, b)
    scale = np.max(np.abs(ref))
    assert np.max(np.abs(x - ref)) <= 50 * cond * np.finfo(float).eps * scale
    assert np.linalg.norm(H @ x - b) <= 50 * np.finfo(float).eps * np.linalg.norm(H) \
        * np.linalg.norm(x)
    B = np.c_[b, np.arange(k, dtype=float)]
    X = np.asarray(solve(jnp.asarray(H), jnp.asarray(B))[0])
    np.testing.assert_allclose(X, np.linalg.solve(H, B), rtol=0,
                               atol=50 * cond * np.finfo(float).eps * np.max(np.abs(
                                   np.linalg.solve(H, B))))


def test_solve_without_fallback_keeps_the_singular_test():
    """`solve_psd_or_nan` (loops) on a well-posed system agrees with numpy and with
    `solve_psd` (LAPACK), not singular; on an exactly aliased column it is singular with NaN,
    where `solve_psd` gives the minimum-norm solution (numpy's pinv); on a column repeated up
    to 1e-7 (relative pivot ~1e-14, below the 1e-13 floor) both call it singular."""
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((50, 6))
    H = Z.T @ Z
    b = rng.standard_normal(6)
    assert linalg.LOOP_CHOLESKY_MAX >= 7
    x, singular = linalg.solve_psd_or_nan(jnp.asarray(H), jnp.asarray(b))
    assert not bool(singular)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(H, b), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(x), np.asarray(linalg.solve_psd(H, b)[0]), rtol=1e-12)

    Za = np.c_[Z, Z[:, 1] - 2 * Z[:, 4]]
    Ha, ba = Za.T @ Za, Za.T @ rng.standard_normal(50)
    x, singular = linalg.solve_psd(jnp.asarray(Ha), jnp.asarray(ba))
    assert bool(singular)
    np.testing.assert_allclose(np.asarray(x), np.linalg.pinv(Ha) @ ba, rtol=1e-8)
    x, singular = linalg.solve_psd_or_nan(jnp.asarray(Ha), jnp.asarray(ba))
    assert bool(singular) and np.all(np.isnan(np.asarray(x)))

    Zn = np.c_[Z, Z[:, 0] + 1e-7 * rng.standard_normal(50)]
    Hn = Zn.T @ Zn
    relative_pivot = np.linalg.cholesky(Hn)[-1, -1] ** 2 / Hn[-1, -1]
    assert 1e-16 < relative_pivot < 1e-13
    assert bool(linalg.solve_psd_or_nan(jnp.asarray(Hn), jnp.asarray(Zn.T @ b[:1].repeat(50)))[1])
    assert bool(linalg.solve_psd(jnp.asarray(Hn), jnp.asarray(Zn.T @ b[:1].repeat(50)))[1])


def _newton_program(X, y, eigen_fallback):
    """The StableHLO of lj.fit's program for a dense logistic fit (lowered, not compiled)."""
    import importlib

    from linjax._pytree import replace
    from linjax.penalties import NoPenalty

    fit_module = importlib.import_module("linjax.fit")
    family = lj.families.Binomial()
    solver = replace(lj.solvers.Newton(), eigen_fallback=eigen_fallback)
    return fit_module.fit_validated.lower(
        jnp.asarray(X), jnp.asarray(y), None, None, None, family, NoPenalty(), solver, True,
        None, start_in_loop=True).as_text()


def test_eager_newton_program_has_no_lapack_call():
    """Without the eigen fallback the program holds no custom call at all (no LAPACK); with
    it (a caller's jit), LAPACK's Cholesky, two triangular solves and eigendecomposition."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5))
    y = (rng.random(64) < 0.5).astype(float)
    assert "custom_call" not in _newton_program(X, y, eigen_fallback=False)
    with_fallback = _newton_program(X, y, eigen_fallback=True)
    assert with_fallback.count("custom_call") == 4
    assert all(name in with_fallback for name in ("potrf", "trsm", "syevd"))


def test_singular_fit_reruns_with_the_fallback():
    """An aliased column: the eager fit (its first program stops on the singular Hessian)
    returns SINGULAR with the same answer as the fit under a caller's jit (one program with
    the eigen fallback), and the minimum-norm coefficients split the aliased pair equally."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 3))
    X = np.c_[X, X[:, 0]]
    y = (rng.random(120) < 1 / (1 + np.exp(-X[:, 0] + X[:, 1]))).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = lj.fit(X, y, family="binomial")
    jitted = jax.jit(lambda X, y: lj.fit(X, y, family="binomial"))(X, y)
    assert int(eager.status) == int(jitted.status) == lj.solvers.Status.SINGULAR
    np.testing.assert_allclose(np.asarray(eager.coef), np.asarray(jitted.coef), rtol=1e-10)
    assert abs(float(eager.coef[0] - eager.coef[3])) < 1e-8


_CHILD = """
import json, sys
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import linjax as lj
rng = np.random.default_rng(0)
X = rng.standard_normal((200, 4))
y = (rng.random(200) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
res = lj.fit(X, y, family="binomial")
print(json.dumps({"status": int(res.status), "scipy": "scipy.linalg" in sys.modules,
                  "linjax": lj.__file__}))
"""


def test_first_fit_imports_no_scipy():
    """A first lj.fit (logistic, dense) in a fresh process, persistent cache off: lowering its
    program never needs LAPACK, so scipy.linalg is not imported."""
    env = dict(os.environ, LINJAX_COMPILATION_CACHE="off", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert os.path.dirname(got["linjax"]) == os.path.dirname(lj.__file__)
    assert got["status"] == lj.solvers.Status.CONVERGED
    assert not got["scipy"]
