"""A first linjax fit: Poisson regression of visit counts with an exposure offset."""

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import linjax as lj  # noqa: E402

rng = np.random.default_rng(0)
n = 1_000
hours_open = rng.uniform(4, 12, size=n)  # exposure
foot_traffic = rng.normal(size=n)
rain = rng.binomial(1, 0.3, size=n).astype(float)
X = np.column_stack([foot_traffic, rain])
rate = np.exp(1.0 + 0.5 * foot_traffic - 0.3 * rain)
visits = rng.poisson(rate * hours_open).astype(float)

result = lj.fit(X, visits, family=lj.families.Poisson(), offset=np.log(hours_open))
print("status:", result.message, "after", int(result.n_iter), "Newton steps")
print("intercept (true 1.0):", float(result.params["intercept"]))
print("coefficients (true [0.5, -0.3]):", np.asarray(result.params["coef"]))
print("rate ratios:", np.exp(np.asarray(result.params["coef"])))
