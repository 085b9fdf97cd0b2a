"""Solver-by-solver time to tolerance on L2-penalized logistic regression, n=200k, p=100.

Every linjax solver and scikit-learn's `lbfgs` and `newton-cholesky` minimise the
same objective (mean log-loss + alpha/2 ||coef||^2, scikit-learn's C = 1 / (alpha n))
on the same data in the same process. The reference optimum f* is a Newton fit at
tight tolerance; each row reports the relative objective gap (f - f*) / f*, the
number of iterations, the steady-state wall time (best of `--repeats` runs after a
warm-up call) and, for linjax, the compile time (measured separately by lowering and
compiling the jitted fit once).

    python benchmarks/bench_solvers.py [--n 200000] [--p 100] [--repeats 3] [--float32]
"""

import argparse
import os
import platform
import time

import jax

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n", type=int, default=200_000)
parser.add_argument("--p", type=int, default=100)
parser.add_argument("--alpha", type=float, default=1e-4)
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--float32", action="store_true")
args = parser.parse_args()
jax.config.update("jax_enable_x64", not args.float32)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import linjax as lj  # noqa: E402
from linjax.fit import _fit  # noqa: E402


def make_data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) / np.sqrt(p)
    X[:, : p // 4] *= 3.0  # some spread in the column scales
    coef = rng.normal(size=p)
    eta = 0.3 + X @ coef
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return X, y


def objective(params, X, y, penalty):
    return float(lj.objective(params, X, y, lj.families.Binomial(), penalty))


def time_linjax(solver, X, y, penalty, repeats):
    family = lj.families.Binomial()
    t0 = time.perf_counter()
    lowered = _fit.lower(X, y, None, None, None, family, penalty, solver, True)
    lowered.compile()
    compile_s = time.perf_counter() - t0
    result = lj.fit(X, y, family, penalty=penalty, solver=solver)  # warm-up (jit cache)
    jax.block_until_ready(result.params)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = lj.fit(X, y, family, penalty=penalty, solver=solver)
        jax.block_until_ready(result.params)
        best = min(best, time.perf_counter() - t0)
    return result, best, compile_s


def main():
    dtype = np.float32 if args.float32 else np.float64
    X_np, y_np = make_data(args.n, args.p)
    X_np, y_np = X_np.astype(dtype), y_np.astype(dtype)
    X, y = jnp.asarray(X_np), jnp.asarray(y_np)
    penalty = lj.penalties.L2(alpha=args.alpha)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"jax {jax.__version__} on {jax.devices()[0].platform}, dtype {np.dtype(dtype).name}")
    print(f"logistic regression, n={args.n}, p={args.p}, L2 alpha={args.alpha}")
    ref = lj.fit(X, y, lj.families.Binomial(), penalty=penalty,
                 solver=lj.solvers.Newton(tol=1e-24 if dtype == np.float64 else None))
    f_star = float(ref.objective)
    print(f"f* = {f_star:.15f} (Newton, {int(ref.n_iter)} iterations)\n")
    header = f"{'solver':<28}{'time (s)':>10}{'compile (s)':>13}{'iters':>7}{'rel. gap':>12}" \
             f"{'status':>8}"
    print(header)
    print("-" * len(header))
    rows = {}
    solvers = {
        "linjax newton": lj.solvers.Newton(),
        "linjax lbfgs": lj.solvers.LBFGS(),
        "linjax cd": lj.solvers.CoordinateDescent(),
        "linjax proximal (fista)": lj.solvers.ProximalGradient(),
        "linjax gd": lj.solvers.GradientDescent(max_iter=5000),
        "linjax sgd (3 epochs)": lj.solvers.SGD(learning_rate=1e-3, batch_size=1024,
                                                max_iter=3),
    }
    for name, solver in solvers.items():
        result, secs, compile_s = time_linjax(solver, X, y, penalty, args.repeats)
        gap = (float(result.objective) - f_star) / abs(f_star)
        rows[name] = secs
        print(f"{name:<28}{secs:>10.3f}{compile_s:>13.2f}{int(result.n_iter):>7}{gap:>12.1e}"
              f"{int(result.status):>8}")
    C = 1.0 / (args.alpha * args.n)
    for method in ("lbfgs", "newton-cholesky"):
        model = LogisticRegression(C=C, solver=method, tol=1e-8, max_iter=10000)
        best = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model.fit(X_np, y_np)
            best = min(best, time.perf_counter() - t0)
        params = {"coef": jnp.asarray(model.coef_[0], dtype),
                  "intercept": jnp.asarray(model.intercept_[0], dtype)}
        gap = (objective(params, X, y, penalty) - f_star) / abs(f_star)
        name = f"sklearn {method}"
        rows[name] = best
        print(f"{name:<28}{best:>10.3f}{'-':>13}{int(model.n_iter_[0]):>7}{gap:>12.1e}"
              f"{'-':>8}")
    base = rows["sklearn newton-cholesky"]
    print("\ntime relative to sklearn newton-cholesky: " + ", ".join(
        f"{k} {v / base:.2f}x" for k, v in rows.items()))


if __name__ == "__main__":
    main()
