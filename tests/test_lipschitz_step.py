"""Gradient descent's fixed step 1 / L (`step_rule="lipschitz"`): L from each family's
curvature bound (`AbstractFamily.curvature_bound`) and the largest eigenvalue of the
weighted Gram, checked against numpy's closed form, and the fits against statsmodels."""

import numpy as np
import pytest

import linjax as lj
from linjax.solvers.gradient import lipschitz_bound
from linjax.solvers.problem import GLMProblem

F, S = lj.families, lj.solvers

N, P = 200, 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((N, P))
    w = rng.uniform(0.5, 2.0, N)
    eta = 0.3 + X @ np.array([0.8, -0.5, 0.3])
    return {"X": X, "w": w, "gaussian": eta + rng.standard_normal(N),
            "binomial": (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float)}


@pytest.mark.parametrize("family, c", [(F.Gaussian(), 1.0), (F.Binomial(), 0.25),
                                       (F.Multinomial(n_classes=3), 0.5)])
def test_bound_is_the_curvature_bound_times_the_largest_gram_eigenvalue(data, family, c):
    X, w = data["X"], data["w"] / data["w"].sum()
    y = np.zeros(N) if family.multiclass else data["gaussian"]
    problem = GLMProblem(X, y, w, None, family, lj.penalties.NoPenalty(), True)
    Z = np.column_stack([np.ones(N), X])
    expected = c * np.linalg.eigvalsh(Z.T @ (w[:, None] * Z))[-1]
    np.testing.assert_allclose(float(lipschitz_bound(problem)), expected, rtol=1e-12)


@pytest.mark.parametrize("family", [F.Poisson(), F.Binomial(link="probit"),
                                    F.Gaussian(link="log")])
def test_families_without_a_bound_are_refused(data, family):
    y = np.abs(data["gaussian"]) if isinstance(family, F.Poisson) else data["binomial"]
    if isinstance(family, F.Gaussian):
        y = np.abs(data["gaussian"]) + 0.1
    with pytest.raises(ValueError, match="step_rule: 'lipschitz' needs a loss with bounded"):
        lj.fit(data["X"], y, family=family,
               solver=S.GradientDescent(step_rule="lipschitz", max_iter=5))


@pytest.mark.parametrize("name", ["gaussian", "binomial"])
def test_fixed_step_reaches_the_statsmodels_optimum(data, name):
    sm = pytest.importorskip("statsmodels.api")
    X, y, w = data["X"], data[name], data["w"]
    family = {"gaussian": sm.families.Gaussian(), "binomial": sm.families.Binomial()}[name]
    ref = sm.GLM(y, sm.add_constant(X), family=family, var_weights=w).fit(tol=1e-14)
    res = lj.fit(X, y, family=name, weights=w,
                 solver=S.GradientDescent(step_rule="lipschitz", tol=1e-10, max_iter=50000))
    assert int(res.status) == 0
    np.testing.assert_allclose(res.params["coef"], ref.params[1:], atol=1e-7)
    np.testing.assert_allclose(res.params["intercept"], ref.params[0], atol=1e-7)
