"""fit_batch with NegativeBinomial(alpha=None): each gene's status is the one lj.fit gives it,
also where the refit at the estimated alpha alone would say SINGULAR (a group of zeros, a
gene with one non-zero count: the estimate's own diagnosis names the cause)."""

import numpy as np
import pytest

import linjax as lj
from linjax.families import NegativeBinomial
from linjax.solvers.status import Status

N = 24


def _genes():
    rng = np.random.default_rng(0)
    x = np.repeat([0.0, 1.0], N // 2)[:, None]
    Y = rng.negative_binomial(5, 5 / (5 + np.exp(2 + 0.5 * x[:, 0])), size=(8, N)).astype(float)
    Y[1, :N // 2] = 0                      # first group all zero
    Y[2, N // 2:] = 0                      # second group all zero
    Y[3] = 0
    Y[3, 5] = 7                            # one non-zero count
    Y[5] = 0
    Y[5, 20] = 1
    Y[6] = 0
    Y[6, :2] = 3
    Y[7] = 0
    Y[7, N // 2:] = 1000
    return x, Y, rng.normal(0.0, 0.2, N)


@pytest.mark.parametrize("method", ["cox-reid"])
def test_statuses_equal_lj_fit_per_gene(method):
    x, Y, offset = _genes()
    family = NegativeBinomial(alpha=None, method=method)
    batch = lj.fit_batch(x, Y, family=family, offset=offset)
    single = [int(lj.fit(x, y, family=family, offset=offset).status) for y in Y]
    assert np.asarray(batch.status).tolist() == single
    assert set(single) >= {int(Status.CONVERGED), int(Status.NO_FINITE_ESTIMATE)}
    assert not np.asarray(batch.converged)[np.asarray(single) != Status.CONVERGED].any()
