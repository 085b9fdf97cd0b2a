"""`solver.run` on a user's objective takes numpy data as it takes JAX arrays."""

import jax.numpy as jnp
import numpy as np

import linjax as lj


def test_sgd_run_takes_numpy_arrays():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=64)

    def loss(params, X, y):
        return 0.5 * jnp.mean((X @ params["w"] - y) ** 2)

    init = {"w": jnp.zeros(3)}
    sgd = lj.solvers.SGD(learning_rate=0.05, batch_size=16, max_iter=200)
    from_numpy = sgd.run(loss, init, X, y)
    from_jax = sgd.run(loss, init, jnp.asarray(X), jnp.asarray(y))
    np.testing.assert_array_equal(from_numpy.params["w"], from_jax.params["w"])
    best = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(from_numpy.params["w"], best, atol=0.05)
