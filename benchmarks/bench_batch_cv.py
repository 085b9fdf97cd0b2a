"""Per-problem cross-validation: m Poisson elastic-net problems sharing X (issue 23's goal:
1,000 problems, n = 10,000, p = 100, 50 strengths, 5 folds).

linjax: `cv_path_batch` (each problem's own grid, path and 5 fold paths, one compiled
program) on `m` problems, first call and warm call, wall and CPU time per problem, scaled to
`total` problems. Peer: glum's `GeneralizedLinearRegressorCV` on `peer` of the same
problems with the same grids and folds (KFold, contiguous: linjax's `kfold`), one problem
after another, scaled alike. Accuracy: each tool's selected coefficients against an
independent `lj.fit` at the strength it chose (max |difference|), and how often the two
choose the same strength. Usage:
python -m benchmarks.bench_batch_cv [m] [n] [p] [n_alphas] [folds] [peer] [total] [glum_tol]
"""

import os
import sys
import time
import warnings

import jax
import numpy as np

L1_RATIO = 0.5


def data(m, n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) / np.sqrt(p)
    B = np.zeros((m, p))
    B[:, :10] = rng.normal(size=(m, 10))
    Y = rng.poisson(np.exp(0.3 + B @ X.T)).astype(float)
    return X, Y


def _timed(fun):
    w, c = time.perf_counter(), time.process_time()
    out = fun()
    return out, time.perf_counter() - w, time.process_time() - c


def _fit_error(lj, X, y, alpha, coef, intercept):
    one = lj.fit(X, y, family="poisson",
                 penalty=lj.penalties.ElasticNet(alpha=float(alpha), l1_ratio=L1_RATIO))
    return max(np.max(np.abs(np.asarray(one.params["coef"]) - coef)),
               abs(float(one.params["intercept"]) - intercept))


def main(m=8, n=10_000, p=100, n_alphas=50, folds=5, peer=2, total=1000, glum_tol=1e-8):
    jax.config.update("jax_enable_x64", True)
    import linjax as lj
    from linjax.scale.batch_selection import cv_path_batch

    X, Y = data(m, n, p)
    print(f"per-problem CV: {m} Poisson elastic-net problems (l1_ratio {L1_RATIO}), n={n}, "
          f"p={p}, {n_alphas} strengths, {folds} folds (float64, {jax.devices()[0].platform}; "
          f"load {os.getloadavg()[0]:.1f})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = lambda: cv_path_batch(X, Y, "poisson", L1_RATIO, n_alphas=n_alphas,  # noqa: E731
                                    folds=folds)
        cv, first, _ = _timed(run)
        cv, wall, cpu = _timed(run)
    print(f"linjax cv_path_batch: first call {first:.2f} s, warm {wall:.2f} s (CPU {cpu:.2f} s)"
          f" = {wall / m:.3f} s per problem, {total} problems ~{wall / m * total:.0f} s")
    errors = [_fit_error(lj, X, Y[i], cv.alpha_min[i], cv.coef_min[i], cv.intercept_min[i])
              for i in range(min(m, 3))]
    print(f"  selected fit vs lj.fit at alpha_min (problems 0-{len(errors) - 1}): max |diff| "
          f"{max(errors):.1e}")
    if peer < 1:
        return
    try:
        from glum import GeneralizedLinearRegressorCV
        from sklearn.model_selection import KFold
    except ImportError:
        print("glum: not installed")
        return
    walls, cpus, same, glum_errors = [], [], 0, []
    for i in range(min(peer, m)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est, w, c = _timed(lambda i=i: GeneralizedLinearRegressorCV(
                family="poisson", l1_ratio=L1_RATIO, alphas=cv.alphas[i], cv=KFold(folds),
                gradient_tol=glum_tol).fit(X, Y[i]))
        walls.append(w)
        cpus.append(c)
        same += int(np.isclose(est.alpha_, cv.alpha_min[i], rtol=1e-12))
        glum_errors.append(_fit_error(lj, X, Y[i], est.alpha_, est.coef_, est.intercept_))
    per = float(np.mean(walls))
    print(f"glum GeneralizedLinearRegressorCV (gradient_tol {glum_tol:g}), {len(walls)} "
          f"problems one by one: {per:.2f} s per problem (CPU {np.mean(cpus):.2f} s), "
          f"{total} problems ~{per * total:.0f} s; same alpha as linjax {same}/{len(walls)}; "
          f"its fit vs lj.fit at its alpha max |diff| {max(glum_errors):.1e}")
    print(f"speed-up (wall per problem): {per / (wall / m):.1f}x; CPU: "
          f"{np.mean(cpus) / (cpu / m):.1f}x (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    args = [float(a) if "e" in a or "." in a else int(a) for a in sys.argv[1:]]
    main(*args)
