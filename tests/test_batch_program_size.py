"""fit_batch's compiled program: one copy of the batched solve, one program per call.

The grouped shared-design path (concurrent groups on CPU) used to solve R's start outside
its Newton loop and the steps inside it, so its program held the unrolled Cholesky and
its Jacobi eigen fallback twice; the start's pass now runs inside the loop. Its results
are checked against numpy's IRLS (R's glm.fit) below; `test_batch_speed_paths` checks the
iteration against lj.fit.
"""

import jax
import jax.monitoring
import numpy as np
import pytest

import linjax as lj
from linjax.scale import batch

M, N, P = 256, 41, 10   # two concurrent groups of 128 problems (batch.cpu_groups)


@pytest.fixture(scope="module")
def problems():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N, P)) / np.sqrt(P)
    beta = rng.normal(scale=0.3, size=(M, P))
    Y = rng.poisson(np.exp(0.3 + beta @ X.T)).astype(float)
    return X, Y


def _irls(X, y, iters=50):
    """R's glm.fit for Poisson-log in numpy (start mu = y + 0.1)."""
    Xa = np.column_stack([np.ones(len(y)), X])
    mu = y + 0.1
    eta = np.log(mu)
    for _ in range(iters):
        z = eta + (y - mu) / mu
        beta = np.linalg.solve(Xa.T @ (mu[:, None] * Xa), Xa.T @ (mu * z))
        eta = Xa @ beta
        mu = np.exp(eta)
    return beta


def test_grouped_program_holds_one_batched_solve(problems):
    X, Y = problems
    if batch.cpu_groups(M) < 2:
        pytest.skip("one core: fit_batch runs one group")
    k = P + 1
    args = (X, Y, None, None, None, lj.families.Poisson(), lj.penalties.NoPenalty(),
            lj.solvers.Newton(), True)
    axes = (None, None, None, None, (), (), None)
    text = batch._fit_batch.lower(*args, batch_size=None, use_pairs=True, axes=axes, lo=0,
                                  group_size=M // 2).as_text()
    # the unrolled Cholesky stacks each column and every second unknown of its backward
    # substitution behind an optimization barrier: k + ceil(k / 2) barriers per copy
    barriers = text.count("stablehlo.optimization_barrier")
    assert barriers == k + (k + 1) // 2


def test_grouped_fit_batch_compiles_one_program_and_equals_irls(problems):
    X, Y = problems
    if batch.cpu_groups(M) < 2:
        pytest.skip("one core: fit_batch runs one group")
    compiled = []

    def count(event, secs, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(secs)

    jax.monitoring.register_event_duration_secs_listener(count)
    try:
        result = lj.fit_batch(X, Y, family="poisson")
        jax.block_until_ready(result.params)
    finally:
        jax.monitoring.unregister_event_duration_listener(count)
    assert len(compiled) <= 1          # the groups' program (none if already compiled)
    assert np.all(np.asarray(result.status) == 0)
    got = np.column_stack([result.params["intercept"], result.params["coef"]])
    for i in (0, 127, 128, M - 1):     # both groups, both ends
        np.testing.assert_allclose(got[i], _irls(X, Y[i]), rtol=0, atol=1e-10)
