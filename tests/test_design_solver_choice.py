"""solver="auto" on a design with a many-level factor takes Newton (the factor's block of the
Hessian is a diagonal that its Schur-complement step solves) in every entry point, as in
`lj.fit`: the estimators and `fit_batch` count the factor's width the same way.

NEWTON_MAX_WIDTH and AUTO_MAX_WIDTH are lowered to 40 here so that a 60-level factor is
"wide" at a small size."""

import numpy as np
import pandas as pd
import pytest

import linjax as lj
from linjax import solver_choice
from linjax.designs import fitting
from linjax.estimators import PoissonRegressor
from linjax.solver_choice import choose_solver
from linjax.solvers import Newton


@pytest.fixture
def wide_factor(monkeypatch):
    monkeypatch.setattr(fitting, "NEWTON_MAX_WIDTH", 40)
    monkeypatch.setattr(solver_choice, "AUTO_MAX_WIDTH", 40)
    rng = np.random.default_rng(3)
    levels, n = 60, 240
    g = np.r_[np.arange(levels), rng.integers(0, levels, n - levels)]
    x = rng.standard_normal(n)
    y = rng.poisson(np.exp(0.3 * x + rng.normal(0, 0.3, levels)[g])).astype(float)
    return pd.DataFrame({"g": pd.Categorical(g), "x": x}), y


def test_every_entry_point_takes_newton_for_a_wide_factor(wide_factor):
    frame, y = wide_factor
    penalty = lj.penalties.L2(1e-3)
    reference = lj.fit(frame, y, family="poisson", penalty=penalty)
    assert reference.solver == "newton" and reference.converged
    estimator = PoissonRegressor(alpha=1e-3).fit(frame, y)
    assert estimator.result_.solver == "newton"
    batch = lj.fit_batch(frame, np.stack([y, y[::-1]]), family="poisson", penalty=penalty)
    assert batch.solver == "newton" and np.all(np.asarray(batch.status) == 0)
    assert int(batch.n_iter[0]) == int(reference.n_iter)
    np.testing.assert_allclose(np.asarray(batch.coef)[0], np.asarray(reference.coef),
                               rtol=1e-8, atol=1e-10)
    # without the factor's width counted, the same widths would not get Newton
    assert not isinstance(fitting.solver_for("auto", lj.families.Poisson(), penalty,
                                             (len(y), 61), False, choose_solver), Newton)
