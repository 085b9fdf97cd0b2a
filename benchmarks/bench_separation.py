"""Cost of the separation check after an unpenalized logistic fit, against the fit itself.

The workload of the defect report: n = 200,000, p = 100, coefficients ~ N(0, 0.3^2). Seed
10 (the default) is one where a fitted |eta| exceeds 15, so the check runs; seed 0 is one
where it does not. Usage: python -m benchmarks.bench_separation [seed] [repeats]
"""

import sys
import time

import jax
import numpy as np

import linjax as lj
from linjax import inputs

FIT = sys.modules["linjax.fit"]


def main(seed=10, repeats=3):
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(seed)
    n, p = 200_000, 100
    X = rng.standard_normal((n, p))
    beta = rng.normal(0, 0.3, p)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ beta)))).astype(float)
    family, penalty = lj.families.Binomial(), lj.penalties.NoPenalty()
    Xj, yj, _, _ = inputs.fit_inputs(X, y, family, None, None, penalty, True)
    solver = FIT.choose_solver("auto", family, penalty, X.shape)

    def fit():
        return FIT._fit(Xj, yj, None, None, None, family, penalty, solver, True)

    def check(result):
        FIT._warn_if_separated(result, Xj, yj, None, None, family, penalty)

    result = fit()
    check(result)  # compile both
    fits, checks = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = jax.block_until_ready(fit())
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        check(result)
        checks.append(time.perf_counter() - start)
    eta = X @ np.asarray(result.coef) + float(result.intercept)
    print(f"fit min {min(fits):.3f} s, check min {min(checks):.3f} s "
          f"({min(checks) / min(fits):.1%}); n_iter {int(result.n_iter)}, "
          f"rows with fitted |eta| > 15: {int((np.abs(eta) > 15).sum())}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
