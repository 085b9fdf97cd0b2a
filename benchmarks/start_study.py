"""Newton iterations from three Poisson-log starts, on simulated data (numpy only).

R: weighted least squares of log(y + 0.1) with weights y + 0.1 (glm.fit's first IRLS
step). R+shift (linjax's, `Poisson.intercept_shift_start`): the same, then the intercept
moved by log(sum y / sum mu), its optimum given the slopes. log: least squares of
log(y + 1/2), unweighted, then the same intercept shift. Newton then runs with linjax's
rules (decrement below 1e-20 max(|f|, 1), or a full step whose decrement extrapolated
quadratically one step ahead is below it; step halving; whole steps at rounding level).

Printed: the mean number of Newton iterations after each start, as "R / R+shift / log",
for each intercept (rows) and standard deviation of the rest of the linear predictor
(columns). Each start costs one Gram-sized product besides: R's is weighted by y + 0.1,
the log start's is unweighted (one Gram shared by every problem of `fit_batch`).

    python benchmarks/start_study.py [--n 1000] [--p 10] [--reps 12]
"""

import argparse

import numpy as np


def newton_iterations(Z, y, b, tol=1e-20, max_iter=100):
    n = len(y)
    eps = np.finfo(float).eps

    def objective(b):
        eta = Z @ b
        return np.mean(np.exp(eta) - y * eta)

    value, prev = objective(b), np.inf
    for it in range(1, max_iter + 1):
        mu = np.exp(Z @ b)
        grad = Z.T @ (mu - y) / n
        hess = Z.T @ (mu[:, None] * Z) / n
        d = -np.linalg.solve(hess, grad)
        dec = -grad @ d
        scale = max(abs(value), 1.0)
        at_floor = dec <= np.sqrt(eps) * scale
        t = 1.0
        while True:
            f_t = objective(b + t * d)
            if f_t <= value + 8 * eps * scale or (at_floor and np.isfinite(f_t)) or t < 1e-12:
                break
            t /= 2
        b, value = b + t * d, f_t
        if dec <= tol * scale:
            return it
        if t == 1 and np.isfinite(prev) and dec <= prev and dec ** 3 / prev ** 2 <= tol * scale:
            return it
        prev = dec
    return max_iter


def r_start(Z, y):
    mu0 = y + 0.1
    return np.linalg.solve(Z.T @ (mu0[:, None] * Z), Z.T @ (mu0 * np.log(mu0)))


def shifted(Z, y, b):
    b = b.copy()
    b[0] += np.log(y.sum() / np.exp(Z @ b).sum())
    return b


def log_start(Z, y):
    return shifted(Z, y, np.linalg.lstsq(Z, np.log(y + 0.5), rcond=None)[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--p", type=int, default=10)
    ap.add_argument("--reps", type=int, default=12)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    spreads = (0.5, 1.0, 2.0, 3.0)
    print(f"n={args.n}, p={args.p}, {args.reps} problems per cell; mean Newton iterations, "
          "R / R+shift / log")
    print("intercept | " + " | ".join(f"sd {s}" for s in spreads))
    for intercept in (-3.0, -1.0, 0.5, 2.0, 5.0):
        cells = []
        for sd in spreads:
            counts = ([], [], [])
            for _ in range(args.reps):
                X = rng.normal(size=(args.n, args.p)) / np.sqrt(args.p)
                beta = rng.normal(size=args.p)
                beta *= sd / np.linalg.norm(beta) * np.sqrt(args.p)
                y = rng.poisson(np.exp(intercept + X @ beta)).astype(float)
                Z = np.column_stack([np.ones(args.n), X])
                b = r_start(Z, y)
                for out, start in zip(counts, (b, shifted(Z, y, b), log_start(Z, y)),
                                      strict=True):
                    out.append(newton_iterations(Z, y, start))
            cells.append(" / ".join(f"{np.mean(c):.1f}" for c in counts))
        print(f"{intercept:9.1f} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
