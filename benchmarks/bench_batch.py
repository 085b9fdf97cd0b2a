"""Benchmark: m independent Poisson GLMs sharing one design, linjax.fit_batch vs loops.

Default: 2,000 problems, n = 500, p = 10 (plus intercept), float64, unpenalized. Peers
on the same data in the same run: a loop of statsmodels GLM (IRLS), scikit-learn
PoissonRegressor(solver="newton-cholesky", alpha=0) and glum GeneralizedLinearRegressor
(if installed: `pip install linjax[bench]`). linjax is timed cold (first call: tracing
and compilation included) and warm (best of --repeat calls). Also checks agreement.

    python benchmarks/bench_batch.py [--m 2000] [--n 500] [--p 10] [--repeat 3]

Also: the same m problems on a 20-column design with an L2 strength per problem
(`L2(alpha=(m,))`) against one shared strength, warm times interleaved (the per-problem
strength must cost nothing extra), each checked against lj.fit on a few problems.
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


def data(m, n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) / np.sqrt(p)
    beta = rng.normal(scale=0.5, size=(m, p))
    Y = rng.poisson(np.exp(0.5 + beta @ X.T)).astype(float)
    return X, Y


def timed(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def stack(params):
    return np.column_stack([np.asarray(params["intercept"]), np.asarray(params["coef"])])


def per_problem_strength_rows(m, n, repeat, p=20):
    """Warm times of fit_batch (Poisson, L2) with one strength per problem and with one
    shared strength, on the same data, calls interleaved; answers checked against lj.fit."""
    X, Y = data(m, n, p, seed=1)
    alphas = np.geomspace(1e-4, 1e-1, m)
    calls = {"shared L2 strength": lj.penalties.L2(alpha=1e-2),
             "per-problem L2 strength (m,), all 1e-2": lj.penalties.L2(alpha=np.full(m, 1e-2)),
             "per-problem L2 strength (m,), 1e-4..1e-1": lj.penalties.L2(alpha=alphas)}
    best = dict.fromkeys(calls, np.inf)
    results = {}
    for round_ in range(1 + max(repeat, 5)):     # round 0 compiles: not timed
        for label, penalty in calls.items():
            t = time.perf_counter()
            results[label] = jax.block_until_ready(
                lj.fit_batch(X, Y, family="poisson", penalty=penalty))
            if round_:
                best[label] = min(best[label], time.perf_counter() - t)
    per = results["per-problem L2 strength (m,), 1e-4..1e-1"]
    assert bool(np.all(np.asarray(per.converged)))
    for i in (0, m // 2, m - 1):
        one = lj.fit(X, Y[i], family="poisson", penalty=lj.penalties.L2(alpha=alphas[i]))
        assert np.allclose(per.coef[i], one.coef, rtol=1e-8, atol=1e-10), i
    print(f"{m} Poisson GLMs, n={n}, p={p}, warm time / shared strength's "
          "(Newton iterations in all):")
    for label, t in best.items():
        print(f"  {label:45s} {t / best['shared L2 strength']:5.2f} "
              f"({int(np.sum(results[label].n_iter))})")
    return [(f"linjax fit_batch p={p}, {label} (warm)", t) for label, t in best.items()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=2000)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--p", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peer-subset", type=int, default=None,
                    help="time the peer loops on this many problems and scale up (default: all)")
    args = ap.parse_args()
    X, Y = data(args.m, args.n, args.p)
    m = args.m
    print(f"{m} Poisson GLMs, n={args.n}, p={args.p}; jax {jax.__version__} on "
          f"{jax.devices()[0].platform} ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs)")
    rows = []

    def run_linjax(label, **kw):
        def call():
            r = lj.fit_batch(X, Y, family="poisson", **kw)
            jax.block_until_ready(r.params)
            return r
        cold, res = timed(call)
        warm, res = timed(call, args.repeat)
        assert bool(np.all(np.asarray(res.converged))), label
        rows.append((label + " (cold)", cold))
        rows.append((label + " (warm)", warm))
        return stack(res.params)

    rows += per_problem_strength_rows(m, args.n, args.repeat)
    ours = run_linjax("linjax fit_batch, shared-X Newton", gram="pairs")
    vm = run_linjax("linjax fit_batch, vmap of lj.fit (chunks of 128)", gram="vmap")
    print(f"max |pairs - vmap| = {np.abs(ours - vm).max():.2e}")

    k = m if args.peer_subset is None else min(args.peer_subset, m)
    scale = m / k

    import statsmodels.api as sm
    Xc = sm.add_constant(X)

    def sm_loop():
        return np.array([sm.GLM(Y[i], Xc, family=sm.families.Poisson()).fit(tol=1e-10).params
                         for i in range(k)])

    t, ref = timed(sm_loop)
    rows.append(("statsmodels GLM loop", t * scale))
    print(f"max |linjax - statsmodels| = {np.abs(ours[:k] - ref).max():.2e}")

    from sklearn.linear_model import PoissonRegressor

    def sk_loop():
        out = []
        for i in range(k):
            r = PoissonRegressor(alpha=0.0, solver="newton-cholesky", tol=1e-10,
                                 max_iter=100).fit(X, Y[i])
            out.append(np.r_[r.intercept_, r.coef_])
        return np.array(out)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, sk = timed(sk_loop)
    rows.append(("scikit-learn PoissonRegressor(newton-cholesky) loop", t * scale))
    print(f"max |linjax - scikit-learn| = {np.abs(ours[:k] - sk).max():.2e}")

    try:
        from glum import GeneralizedLinearRegressor
    except ImportError:
        print("glum not installed: skipped (pip install glum)")
    else:
        def glum_loop():
            out = []
            for i in range(k):
                r = GeneralizedLinearRegressor(family="poisson", alpha=0.0, gradient_tol=1e-10,
                                               solver="irls-ls").fit(X, Y[i])
                out.append(np.r_[r.intercept_, r.coef_])
            return np.array(out)

        t, gl = timed(glum_loop)
        rows.append(("glum GeneralizedLinearRegressor loop", t * scale))
        print(f"max |linjax - glum| = {np.abs(ours[:k] - gl).max():.2e}")

    base = dict(rows)["linjax fit_batch, shared-X Newton (warm)"]
    print(f"\n{'method':58s} {'seconds':>9s} {'x linjax warm':>14s}")
    for name, t in rows:
        print(f"{name:58s} {t:9.3f} {t / base:14.1f}")
    if k < m:
        print(f"(peer loops timed on {k} problems and scaled by {scale:g})")


if __name__ == "__main__":
    main()
