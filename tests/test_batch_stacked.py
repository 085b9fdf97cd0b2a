"""fit_batch with a design per problem (m, n, p): the batched Newton
(`shared_newton.StackedDesign`) gives each problem its own lj.fit's answer, in one batch and
in chunks, with weights, offsets and a ridge strength per problem.

Reference: a loop of `lj.fit` (checked against R, statsmodels and closed forms elsewhere)."""

import numpy as np
import pytest

import linjax as lj
from linjax.scale import batch, shared_newton
from tests import zoo

M, N, P = 6, 50, 3


def _data(family, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(M, N, P))
    eta = 0.3 + np.einsum("mnp,mp->mn", X, rng.normal(scale=0.4, size=(M, P)))
    return X, zoo.draw_response(family, eta, rng), rng


@pytest.mark.parametrize("family", ["poisson", "binomial", "gaussian"])
def test_each_stacked_problem_equals_its_own_fit(family, monkeypatch):
    X, Y, rng = _data(family)
    w = rng.uniform(0.5, 2.0, size=(M, N))
    off = rng.normal(scale=0.1, size=(M, N))
    alphas = np.geomspace(1e-3, 1e-1, M)
    made = []
    make = shared_newton.make_model
    monkeypatch.setattr(shared_newton, "make_model",
                        lambda *a, **k: made.append(make(*a, **k)) or made[-1])
    for batch_size in (None, 4):    # one batch; chunks of 4 (the last one padded)
        res = lj.fit_batch(X, Y, family=family, weights=w, offset=off,
                           penalty=lj.penalties.L2(alpha=alphas), batch_size=batch_size,
                           solver="newton")   # Gaussian: auto would pick least squares
        for i in range(M):
            one = lj.fit(X[i], Y[i], family=family, weights=w[i], offset=off[i],
                         penalty=lj.penalties.L2(alpha=alphas[i]))
            np.testing.assert_allclose(res.params["coef"][i], one.params["coef"], rtol=1e-8,
                                       atol=1e-10, err_msg=f"problem {i}")
            np.testing.assert_allclose(res.params["intercept"][i], one.params["intercept"],
                                       rtol=1e-8, atol=1e-10)
            assert int(res.status[i]) == int(one.status)
    assert made and all(isinstance(model, shared_newton.StackedDesign) for model in made)


def test_stacked_chunks_fit_in_cache():
    X = np.zeros((1000, 5000, 20))
    size = batch.pairs_batch_size(X, 1000, 5000)
    assert 1 <= size and size * 5000 * 20 * 8 <= batch.CPU_STACKED_CHUNK_BYTES
    assert batch.pairs_batch_size(np.zeros((3, 10, 2)), 3, 10) is None
