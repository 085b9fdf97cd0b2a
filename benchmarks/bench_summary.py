"""A statsmodels-like summary of a large unpenalized logistic fit, against statsmodels.

The first-call benchmark's logistic data (n = 200,000, p = 100 by default). Times, warm
(after one call that compiles): `lj.fit`, `lj.inference.summarize` of it, and statsmodels'
GLM fit and its `summary()`; prints the largest difference between the two tables' standard
errors. Usage: python -m benchmarks.bench_summary [n] [repeats]
"""

import sys
import time

import jax
import numpy as np


def _best(call, repeats):
    out, best = None, np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - start)
    return out, best


def main(n=200_000, repeats=3):
    jax.config.update("jax_enable_x64", True)
    import statsmodels.api as sm

    import linjax as lj

    from .first_call import _glm_data

    X, y = _glm_data("binomial", n=n)

    def fit():
        result = lj.fit(X, y, family="binomial")
        jax.block_until_ready(result.coef)
        return result

    result = fit()
    summary = lj.inference.summarize(result, X, y, "binomial")  # compiles
    result, t_fit = _best(fit, repeats)
    summary, t_sum = _best(lambda: lj.inference.summarize(result, X, y, "binomial"), repeats)
    str(summary)

    X1 = sm.add_constant(X)
    sm_fit, t_sm_fit = _best(lambda: sm.GLM(y, X1, family=sm.families.Binomial()).fit(),
                             repeats)
    _, t_sm_sum = _best(lambda: str(sm_fit.summary()), repeats)
    diff = np.max(np.abs(np.asarray(summary.bse) - sm_fit.bse) / sm_fit.bse)
    print(f"n={n}, p={X.shape[1]}, best of {repeats} warm calls (s)")
    print(f"linjax       fit {t_fit:.3f}  summarize {t_sum:.3f}")
    print(f"statsmodels  fit {t_sm_fit:.3f}  summary {t_sm_sum:.3f}")
    print(f"standard errors: largest relative difference {diff:.2e}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
