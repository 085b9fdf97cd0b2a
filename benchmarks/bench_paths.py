"""Lasso path of 100 alphas on n=10,000, p=1,000 against scikit-learn, glum and skglm,
and 5-fold CV against scikit-learn's LassoCV, on the same data in one process.

    python benchmarks/bench_paths.py [--n 10000] [--p 1000] [--repeats 3]

linjax is timed cold (first call: tracing + XLA compilation + run) and warm (best of
--repeats). Every peer gets the same alphas (linjax's grid, equal to scikit-learn's) and
tol tight enough that the paths agree; the largest coefficient difference to linjax is
printed next to each time. Tests never assert on time; this script only reports.
"""

import argparse
import os
import platform
import time
import warnings

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import linjax as lj  # noqa: E402


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--p", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, p = args.n, args.p
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, p))
    beta = np.zeros(p)
    beta[:20] = rng.normal(size=20)
    y = X @ beta + rng.normal(size=n)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"jax {jax.__version__} on {jax.devices()[0].platform}; n={n}, p={p}, 100 alphas")

    t = time.perf_counter()
    res = lj.path(X, y, n_alphas=100)
    jax.block_until_ready(res)
    cold = time.perf_counter() - t
    alphas = np.asarray(res.alphas)
    warm, res = best_of(lambda: jax.block_until_ready(lj.path(X, y, alphas=alphas)),
                        args.repeats)
    coef = np.asarray(res.coef)
    print(f"linjax path      cold {cold:7.3f} s   warm {warm:7.3f} s   "
          f"(status max {int(np.max(res.status))}, nonzeros at the end {int(res.df[-1])})")

    from sklearn.linear_model import LassoCV, enet_path
    Xc, yc = X - X.mean(0), y - y.mean()
    t_sk, (_, sk_coef, _) = best_of(lambda: enet_path(Xc, yc, alphas=alphas, tol=1e-8,
                                                      precompute=True, max_iter=10_000),
                                   args.repeats)
    print(f"sklearn enet_path          warm {t_sk:7.3f} s   ratio {t_sk / warm:6.2f}x   "
          f"max |diff| {np.abs(sk_coef.T - coef).max():.1e}")

    try:
        import glum
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")

            def run_glum():
                return glum.GeneralizedLinearRegressor(
                    family="normal", alpha_search=True, alphas=alphas, l1_ratio=1.0,
                    gradient_tol=1e-8).fit(X, y).coef_path_
            t_glum, glum_coef = best_of(run_glum, args.repeats)
        print(f"glum {glum.__version__:<8}              warm {t_glum:7.3f} s   ratio "
              f"{t_glum / warm:6.2f}x   max |diff| {np.abs(glum_coef - coef).max():.1e}")
    except ImportError:
        print("glum: not installed")

    try:
        import skglm
        from skglm.datafits import Quadratic
        from skglm.penalties import L1
        from skglm.solvers import AndersonCD

        def run_skglm():
            solver = AndersonCD(tol=1e-8, fit_intercept=False, warm_start=True)
            out = solver.path(Xc, yc, Quadratic(), L1(1.0),
                              alphas=alphas)
            return out[1]
        t = time.perf_counter()
        run_skglm()
        cold_skglm = time.perf_counter() - t
        t_skglm, skglm_coef = best_of(run_skglm, args.repeats)
        print(f"skglm {skglm.__version__:<7} cold {cold_skglm:7.3f} s   warm {t_skglm:7.3f} s   "
              f"ratio {t_skglm / warm:6.2f}x   max |diff| "
              f"{np.abs(np.asarray(skglm_coef).T - coef).max():.1e}")
    except Exception as err:  # noqa: BLE001 - report and carry on
        print(f"skglm: {type(err).__name__}: {err}")

    t = time.perf_counter()
    cv = lj.cv_path(X, y, alphas=alphas, folds=5)
    cold_cv = time.perf_counter() - t
    warm_cv, cv = best_of(lambda: lj.cv_path(X, y, alphas=alphas, folds=5), args.repeats)
    print(f"linjax 5-fold CV cold {cold_cv:7.3f} s   warm {warm_cv:7.3f} s   "
          f"alpha_min {cv.alpha_min:.5g}")
    t_lcv, lcv = best_of(lambda: LassoCV(alphas=alphas, cv=5, tol=1e-8,
                                                      max_iter=10_000).fit(X, y),
                         args.repeats)
    print(f"sklearn LassoCV            warm {t_lcv:7.3f} s   ratio {t_lcv / warm_cv:6.2f}x   "
          f"alpha_ {lcv.alpha_:.5g}")


if __name__ == "__main__":
    main()
