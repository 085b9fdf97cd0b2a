"""Structured designs against their dense equivalent and glum: the insurance-shaped Poisson.

n rows (default 600,000), 8 categorical columns (5 to 100 levels, 317 indicator columns
after dropping each first level) and 3 numeric ones, Poisson with the log link, no
penalty. linjax gets the DataFrame (categorical blocks, `linjax.designs`); glum (if
installed) gets the same DataFrame (its tabmat categorical path), with alpha=0. Times are
the best of `repeats` fits after a first (compiling) one; objectives are compared as the
mean Poisson deviance. The dense one-hot linjax fit runs only for n <= 200,000.
Usage: python -m benchmarks.bench_designs [n] [repeats]
"""

import sys
import time

import jax
import numpy as np

LEVELS = (5, 8, 12, 20, 30, 60, 90, 100)


def insurance_frame(n, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols, eta = {}, np.full(n, -1.5)
    for j, k in enumerate(LEVELS):
        codes = rng.integers(0, k, n)
        effects = rng.normal(0, 0.3, k)
        eta += effects[codes]
        cols[f"c{j}"] = pd.Categorical.from_codes(codes, [f"l{i}" for i in range(k)])
    for j in range(3):
        x = rng.normal(size=n)
        eta += 0.1 * (j + 1) * x
        cols[f"x{j}"] = x
    y = rng.poisson(np.exp(eta)).astype(float)
    return pd.DataFrame(cols), y


def _best(fn, repeats):
    out = fn()
    jax.block_until_ready(getattr(out, "coef", out))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        jax.block_until_ready(getattr(out, "coef", out))
        times.append(time.perf_counter() - start)
    return min(times), out


def _deviance(y, mu):
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return 2 * np.mean(term - (y - mu))


def main(n=600_000, repeats=3):
    jax.config.update("jax_enable_x64", True)
    import pandas as pd

    import linjax as lj
    from linjax.designs.frames import encode_frame

    df, y = insurance_frame(n)
    design = encode_frame(df)[0]
    rows = []
    t, res = _best(lambda: lj.fit(design, y, "poisson", solver="newton"), repeats)
    mu = np.asarray(lj.predict(res.params, design, "poisson"))
    rows.append(("linjax categorical blocks", t, _deviance(y, mu), int(res.n_iter)))
    if n <= 200_000:
        dense = np.asarray(design.to_dense())
        t, res = _best(lambda: lj.fit(dense, y, "poisson", solver="newton"), repeats)
        rows.append(("linjax dense one-hot", t, _deviance(y, np.asarray(
            lj.predict(res.params, dense, "poisson"))), int(res.n_iter)))
    try:
        from glum import GeneralizedLinearRegressor
    except ImportError:
        GeneralizedLinearRegressor = None
    if GeneralizedLinearRegressor is not None:
        def glum_fit():
            model = GeneralizedLinearRegressor(family="poisson", alpha=0.0, drop_first=True,
                                               gradient_tol=1e-8)
            return model.fit(df, y)

        t, model = _best(glum_fit, repeats)
        rows.append(("glum (tabmat, DataFrame)", t, _deviance(y, model.predict(df)),
                     int(model.n_iter_)))
    print(f"insurance-shaped Poisson: n={n:,}, {len(LEVELS)} categoricals "
          f"({sum(LEVELS) - len(LEVELS)} columns) + 3 numerics; best of {repeats}")
    base = rows[0][1]
    for name, t, dev, iters in rows:
        print(f"  {name:28s} {t:8.3f} s  ({t / base:5.2f}x linjax)  mean deviance "
              f"{dev:.10f}  iterations {iters}")
    return pd.DataFrame(rows, columns=["tool", "seconds", "mean_deviance", "n_iter"])


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
