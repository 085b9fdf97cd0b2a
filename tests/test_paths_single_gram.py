"""The "hessian" path solver forms its model Gram in float32 (it only shapes the steps; the
gradient is float64, so is the answer). Where X has nearly collinear columns, the float32
Gram is no longer a usable model (its coordinate descent stalls at the sweep cap); the
solver then forms it in float64 and still converges: every alpha converged, and satisfies
the lasso's optimality conditions computed here in numpy."""

import numpy as np

import linjax as lj


def test_nearly_collinear_columns_still_converge_to_the_optimum():
    rng = np.random.default_rng(0)
    n = 2000
    Z = rng.normal(size=(n, 3))
    X = np.column_stack([Z[:, 0], Z[:, 0] + 1e-6 * rng.normal(size=n), Z[:, 1],
                         3 * Z[:, 1] + 1e-6 * rng.normal(size=n), Z[:, 2]]
                        + [rng.normal(size=n) for _ in range(5)])
    y = rng.poisson(np.exp(0.2 + 0.3 * Z[:, 0] - 0.2 * Z[:, 1])).astype(float)
    grid = lj.alpha_grid(X, y, "poisson", 1.0, n_alphas=30, eps=1e-5)
    res = lj.path(X, y, "poisson", 1.0, grid)
    assert np.all(np.asarray(res.converged)), np.asarray(res.status)
    scale = np.sqrt((X**2).mean(0))
    for a, b, b0 in zip(grid, np.asarray(res.coef), np.asarray(res.intercept), strict=True):
        ge = (np.exp(X @ b + b0) - y) / n
        g = X.T @ ge
        on = b != 0
        np.testing.assert_allclose((g[on] + a * np.sign(b[on])) / scale[on], 0, atol=1e-6)
        assert np.all(np.abs(g[~on]) <= a + 1e-6 * scale[~on])
        assert abs(ge.sum()) < 1e-6
