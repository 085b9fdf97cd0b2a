"""Accelerator check: fit_batch of many small GLMs and one large logistic fit, float32.

On a GPU (default sizes): fit_batch of 100,000 Poisson GLMs (n=200, p=8) and one logistic
regression with n = 10^7, p = 100 (X is 4 GB in float32). For each it prints compile
and run times, and for the large fit the achieved bandwidth per IRLS iteration (bytes
of X read per pass, passes per iteration counted from the solver's work) against the
device's memory bandwidth, measured here with a large streaming kernel.

    python benchmarks/gpu_check.py            # accelerator sizes
    python benchmarks/gpu_check.py --small    # tiny sizes: runs anywhere, CPU included

CPU figures from --small say nothing about an accelerator; they only show the script runs.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import linjax as lj
from linjax.fit import _fit
from linjax.solvers import Newton


def measured_bandwidth(n_bytes):
    """Bytes per second of x -> x * 2 + 1 over an array of n_bytes (one read, one write)."""
    x = jnp.ones((n_bytes // 4,), jnp.float32)
    f = jax.jit(lambda x: x * 2 + 1)
    jax.block_until_ready(f(x))
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(f(x))
        best = min(best, time.perf_counter() - t)
    return 2 * x.size * 4 / best


def batch_check(m, n, p):
    key = jax.random.PRNGKey(0)
    kx, kb, ky = jax.random.split(key, 3)
    X = jax.random.normal(kx, (n, p), jnp.float32) / np.sqrt(p)
    beta = 0.3 * jax.random.normal(kb, (m, p), jnp.float32)
    Y = jax.random.poisson(ky, jnp.exp(0.5 + beta @ X.T)).astype(jnp.float32)
    X, Y = np.asarray(X), np.asarray(Y)
    t = time.perf_counter()
    r = lj.fit_batch(X, Y, family="poisson")
    jax.block_until_ready(r.params)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    r = lj.fit_batch(X, Y, family="poisson")
    jax.block_until_ready(r.params)
    warm = time.perf_counter() - t
    conv = float(np.mean(np.asarray(r.converged)))
    iters = int(np.max(np.asarray(r.n_iter)))
    print(f"fit_batch: {m} Poisson GLMs (n={n}, p={p}, float32): cold {cold:.3f} s, warm "
          f"{warm:.3f} s ({warm / m * 1e6:.1f} us per GLM), {conv:.1%} converged, "
          f"max {iters} Newton iterations")


def logistic_check(n, p, peak):
    key = jax.random.PRNGKey(1)
    kx, ky = jax.random.split(key)
    X = jax.random.normal(kx, (n, p), jnp.float32) / np.sqrt(p)
    eta = X @ jnp.linspace(-1.0, 1.0, p, dtype=jnp.float32)
    y = (jax.random.uniform(ky, (n,)) < jax.nn.sigmoid(eta)).astype(jnp.float32)
    jax.block_until_ready((X, y))
    family = lj.families.Binomial()
    penalty = lj.penalties.NoPenalty()
    solver = Newton()
    # The compiled fit (lj.fit's validation copies X to the host to check it; skipped here).
    args = (X, y, None, None, None, family, penalty, solver, True)
    t = time.perf_counter()
    compiled = _fit.lower(*args).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    r = compiled(*args[:-1])
    jax.block_until_ready(r.params)
    run = time.perf_counter() - t
    n_iter = int(r.n_iter)
    # Passes over X per fit: 2 for the start (Gram, value), then per Newton iteration one for
    # the linear predictor + gradient/Hessian and at least one trial value.
    passes = 2 + 2 * n_iter
    x_bytes = X.size * X.dtype.itemsize
    achieved = passes * x_bytes / run
    print(f"logistic fit: n={n}, p={p}, float32 (X {x_bytes / 2**30:.2f} GiB): compile "
          f"{compile_s:.2f} s, run {run:.3f} s, {n_iter} Newton iterations, "
          f"{run / max(n_iter, 1) * 1e3:.1f} ms per iteration, converged={bool(r.converged)}")
    print(f"  achieved bandwidth ~{achieved / 1e9:.0f} GB/s ({passes} passes over X) against "
          f"{peak / 1e9:.0f} GB/s measured peak: {achieved / peak:.0%}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="tiny sizes, for a CPU smoke run")
    args = ap.parse_args()
    dev = jax.devices()[0]
    print(f"jax {jax.__version__}, device: {dev.platform} {getattr(dev, 'device_kind', '')}, "
          f"x64={jax.config.jax_enable_x64}")
    if args.small:
        m, n_small, p_small, n, p, band = 500, 100, 4, 100_000, 20, 64 * 2**20
    else:
        m, n_small, p_small, n, p, band = 100_000, 200, 8, 10_000_000, 100, 2 * 2**30
    if dev.platform == "cpu" and not args.small:
        print("note: no accelerator found; these CPU figures are not GPU figures")
    peak = measured_bandwidth(band)
    print(f"measured memory bandwidth (x*2+1 over {band / 2**20:.0f} MiB): "
          f"{peak / 1e9:.1f} GB/s")
    batch_check(m, n_small, p_small)
    logistic_check(n, p, peak)


if __name__ == "__main__":
    main()
