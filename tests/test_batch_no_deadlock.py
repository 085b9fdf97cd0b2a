"""No batched path may deadlock (jaxlib 0.10's batched CPU LAPACK kernels, linjax.solvers.linalg).

A batched LAPACK kernel whose work passes ~2e5 flops blocks an XLA pool thread until its
chunks run on the same pool; as many of them at once as there are pool threads hang the
process at 0% CPU. The hang is a race, so two checks: the compiled batch programs hold no
batched LAPACK call (deterministic), and every family and solver that `fit_batch` accepts
runs at m = 100, 1,000 and 5,000 in a subprocess under a timeout.
"""

import json
import os
import selectors
import subprocess
import sys
import textwrap

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax.solvers import linalg

F, P, S = lj.families, lj.penalties, lj.solvers

#: primitives that lower to a LAPACK custom call on CPU, and the operand holding the matrices
LAPACK_PRIMITIVES = {"cholesky", "eigh", "svd", "geqrf", "geqp3", "householder_product", "lu",
                     "triangular_solve", "qr", "schur", "eig", "tridiagonal_solve"}


def _subjaxprs(params):
    for value in params.values():
        for v in value if isinstance(value, list | tuple) else (value,):
            if isinstance(v, jax.extend.core.ClosedJaxpr):
                yield v.jaxpr
            elif isinstance(v, jax.extend.core.Jaxpr):
                yield v


def batched_lapack_calls(jaxpr):
    """Names and shapes of LAPACK primitives in a jaxpr (and its sub-jaxprs) whose matrix
    operand carries a batch dimension."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in LAPACK_PRIMITIVES:
            shape = eqn.invars[0].aval.shape
            if len(shape) > 2 and int(np.prod(shape[:-2])) > 1:
                found.append(f"{eqn.primitive.name}{shape}")
        for sub in _subjaxprs(eqn.params):
            found += batched_lapack_calls(sub)
    return found


def _data(m, family, n=50, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    eta = 0.3 * X @ np.array([0.5, -0.3, 0.2]) + rng.normal(scale=0.1, size=(m, n))
    if isinstance(family, F.Multinomial):
        Y = np.minimum(rng.poisson(np.exp(eta)), 2).astype(float)   # labels 0, 1, 2
    elif isinstance(family, F.Binomial):
        Y = (rng.uniform(size=(m, n)) < 1 / (1 + np.exp(-eta))).astype(float)
    elif isinstance(family, F.Poisson | F.NegativeBinomial | F.Tweedie):
        Y = rng.poisson(np.exp(eta)).astype(float)
    elif isinstance(family, F.Gamma | F.InverseGaussian):
        Y = rng.gamma(5.0, np.exp(eta) / 5.0)
    else:
        Y = eta + rng.normal(size=(m, n))
    return X, Y


def _cases():
    """(name, family, fit_batch keywords): every family with its default solver, and every
    solver, with the penalty or bounds it needs."""
    cases = [(f"family={type(fam).__name__}", fam, {}) for fam in (
        F.Gaussian(), F.Binomial(), F.Poisson(), F.Gamma(), F.InverseGaussian(),
        F.NegativeBinomial(alpha=0.5), F.Tweedie(power=1.5), F.Multinomial(n_classes=3))]
    cases += [
        ("solver=lstsq+L2", F.Gaussian(), {"solver": "lstsq", "penalty": P.L2(alpha=0.1)}),
        ("solver=newton(gram=vmap)", F.Poisson(), {"solver": "newton", "gram": "vmap"}),
        ("solver=lbfgs", F.Poisson(), {"solver": S.LBFGS(max_iter=20)}),
        ("solver=gd(lipschitz)", F.Binomial(),
         {"solver": S.GradientDescent(step_rule="lipschitz", max_iter=20)}),
        ("solver=gd", F.Poisson(), {"solver": S.GradientDescent(max_iter=20)}),
        ("solver=sgd", F.Poisson(), {"solver": S.SGD(max_iter=5)}),
        ("solver=proximal+L1", F.Poisson(),
         {"solver": S.ProximalGradient(max_iter=20), "penalty": P.L1(alpha=0.01)}),
        ("solver=cd+L1", F.Poisson(), {"solver": "cd", "penalty": P.L1(alpha=0.01)}),
        ("solver=projected_newton", F.Poisson(), {"solver": "projected_newton"}),
        ("stacked X, solver=newton", F.Poisson(), {"solver": "newton", "stacked": True}),
    ]
    return cases


def run_case(family, kw, m, Y=None):
    """fit_batch on case data with m problems (X stacked (m, n, p) when kw["stacked"])."""
    kw = dict(kw)
    X, Y0 = _data(m, family)
    Y = Y0 if Y is None else Y
    if kw.pop("stacked", False):
        X = np.broadcast_to(X, (m,) + X.shape)
    return lj.fit_batch(X, Y, family=family, **kw)


@pytest.mark.parametrize("name, family, kw", _cases(), ids=[c[0] for c in _cases()])
def test_batch_programs_hold_no_batched_lapack_call(name, family, kw):
    _, Y = _data(100, family)
    jaxpr = jax.make_jaxpr(lambda Y: run_case(family, kw, 100, Y))(Y)
    assert batched_lapack_calls(jaxpr.jaxpr) == [], name


def test_vmapped_fit_holds_no_batched_lapack_call():
    X, Y = _data(100, F.Gaussian())
    for solver in ("lstsq", "newton"):
        jaxpr = jax.make_jaxpr(jax.vmap(lambda y, s=solver: lj.fit(X, y, solver=s).params))(Y)
        assert batched_lapack_calls(jaxpr.jaxpr) == [], solver


def test_sequential_on_cpu_loops_and_keeps_answers_and_derivatives():
    H = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3, 3)))
    H = H @ jnp.swapaxes(H, 1, 2) + 3 * jnp.eye(3)
    assert batched_lapack_calls(jax.make_jaxpr(jax.vmap(linalg.cholesky))(H).jaxpr) == []
    np.testing.assert_allclose(jax.vmap(linalg.cholesky)(H), jnp.linalg.cholesky(H),
                               rtol=1e-13)
    np.testing.assert_allclose(jax.vmap(jax.vmap(linalg.eigh))(H[None])[0][0],
                               jnp.linalg.eigh(H)[0], rtol=1e-13)

    def loss(a, chol):
        return jnp.sum(chol(a @ a.T + 3 * jnp.eye(3)) ** 2)

    # reverse mode, forward mode and second order: central differences of the plain call
    g = jax.grad(loss)(H[0], linalg.cholesky)
    e = np.zeros((3, 3))
    e[1, 2] = 1e-6
    fd = (loss(H[0] + e, jnp.linalg.cholesky) - loss(H[0] - e, jnp.linalg.cholesky)) / 2e-6
    np.testing.assert_allclose(g[1, 2], fd, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(loss), (0, None))(H, linalg.cholesky)[0], g)
    hess = jax.hessian(loss)(H[0], linalg.cholesky)
    np.testing.assert_allclose(hess, jax.hessian(loss)(H[0], jnp.linalg.cholesky), rtol=1e-10)


GRID_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    sys.path.insert(0, {tests!r})
    import test_batch_no_deadlock as t
    for name, family, kw in t._cases():
        for m in (100, 1000, 5000):
            print(json.dumps({{"case": name, "m": m}}), flush=True)
            r = t.run_case(family, kw, m)
            jax.block_until_ready(r.params)
            assert np.all(np.isfinite(np.asarray(r.params["coef"]))), (name, m)
    print(json.dumps({{"case": "done"}}), flush=True)
""")


#: Seconds without progress (one case: compile and fit) that count as a hang; a case takes
#: a few seconds on an idle 2-core machine, a hang never ends.
STALL_SECONDS = 150


@pytest.mark.slow
def test_every_family_and_solver_finishes_at_100_1000_5000_problems():
    """One subprocess for the whole grid (compiles shared); a case that makes no progress
    for STALL_SECONDS fails the test, naming the case."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # XLA's default threads
    env["LINJAX_COMPILATION_CACHE"] = "off"
    script = GRID_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True)
    lines, started = [], {"case": "import linjax", "m": None}
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if not sel.select(timeout=STALL_SECONDS):
                proc.kill()
                proc.wait()
                pytest.fail(f"fit_batch hung (no progress in {STALL_SECONDS} s) at "
                            f"{started['case']}, m = {started['m']}:\n" + "\n".join(lines[-20:]))
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("{"):
                started = json.loads(line)
    assert proc.wait() == 0, "\n".join(lines[-30:])
    assert started == {"case": "done"}


@pytest.mark.parametrize("penalty, solver", [(None, "newton"), (P.L1(alpha=0.01), "cd")])
def test_gradient_of_a_batch_holds_no_batched_lapack_call(penalty, solver):
    """jax.grad through fit_batch: the implicit backward solves run one problem at a time."""
    X, Y = _data(100, F.Poisson())

    def loss(Y):
        return lj.fit_batch(X, Y, family=F.Poisson(), penalty=penalty,
                            solver=solver).params["coef"].sum()

    assert batched_lapack_calls(jax.make_jaxpr(jax.grad(loss))(Y).jaxpr) == []
