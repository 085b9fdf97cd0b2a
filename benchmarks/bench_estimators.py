"""fit + predict of every linjax estimator against its scikit-learn counterpart, same data.

For each pair both estimators fit the same simulated data (n rows, p features) and
predict on it, in the same process. "cold" is the first fit+predict of a fresh
estimator (for linjax it includes tracing and XLA compilation of the fit); "warm"
is the best of `--repeats` further fit+predict calls on a fresh clone with the same
hyperparameters and data shape (the compiled fit is reused). Both libraries use their
default tolerances and solvers; the last column is the relative objective difference
(linjax - scikit-learn) / |scikit-learn| of scikit-learn's objective, computed here,
so a negative value means linjax reached a lower objective.

    python benchmarks/bench_estimators.py [--n 20000] [--p 20] [--repeats 5] [--float32]
"""

import argparse
import os
import platform
import time

import jax

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n", type=int, default=20_000)
parser.add_argument("--p", type=int, default=20)
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--float32", action="store_true")
args = parser.parse_args()
jax.config.update("jax_enable_x64", not args.float32)

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import sklearn.linear_model as sk  # noqa: E402
from sklearn.base import clone  # noqa: E402

import linjax.estimators as lj  # noqa: E402
from linjax import families  # noqa: E402


def make_data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = rng.normal(size=p) * 0.3 / np.sqrt(p)
    eta = X @ beta
    data = {
        "gaussian": eta + rng.normal(size=n),
        "binary": (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int),
        "multiclass": np.argmax(X[:, :3] * 0.5 + rng.gumbel(size=(n, 3)), axis=1),
        "poisson": rng.poisson(np.exp(eta)).astype(float),
        "gamma": rng.gamma(2.0, np.exp(eta) / 2.0),
        "tweedie": rng.poisson(np.exp(eta)) * rng.gamma(2.0, 0.5, size=n),
    }
    dtype = np.float32 if args.float32 else np.float64
    return X.astype(dtype), data


def sq_obj(est, X, y, kind):
    r = y - est.predict(X)
    b = np.ravel(est.coef_)
    if kind == "ols":
        return np.sum(r**2)
    if kind == "ridge":
        return np.sum(r**2) + est.alpha * b @ b
    l1 = 1.0 if kind == "lasso" else est.l1_ratio
    return np.mean(r**2) / 2 + est.alpha * (l1 * np.abs(b).sum() + (1 - l1) / 2 * b @ b)


def glm_obj(family):
    def objective(est, X, y, kind):
        dev = np.asarray(family.unit_deviance(y, est.predict(X)))
        return np.mean(dev) / 2 + est.alpha / 2 * np.ravel(est.coef_) @ np.ravel(est.coef_)
    return objective


def logistic_obj(est, X, y, kind):
    logp = est.predict_log_proba(X)
    loss = -np.sum(logp[np.arange(len(y)), np.searchsorted(est.classes_, y)])
    return est.C * loss + 0.5 * np.sum(est.coef_**2)


CASES = [
    ("LinearRegression", lj.LinearRegression(), sk.LinearRegression(), "gaussian",
     lambda e, X, y, k: sq_obj(e, X, y, "ols")),
    ("Ridge", lj.Ridge(alpha=1.0), sk.Ridge(alpha=1.0), "gaussian",
     lambda e, X, y, k: sq_obj(e, X, y, "ridge")),
    ("Lasso", lj.Lasso(alpha=0.01), sk.Lasso(alpha=0.01), "gaussian",
     lambda e, X, y, k: sq_obj(e, X, y, "lasso")),
    ("ElasticNet", lj.ElasticNet(alpha=0.01), sk.ElasticNet(alpha=0.01), "gaussian",
     lambda e, X, y, k: sq_obj(e, X, y, "enet")),
    ("LogisticRegression", lj.LogisticRegression(), sk.LogisticRegression(), "binary",
     logistic_obj),
    ("LogisticRegression(3 classes)", lj.LogisticRegression(), sk.LogisticRegression(),
     "multiclass", logistic_obj),
    ("PoissonRegressor", lj.PoissonRegressor(alpha=0.01), sk.PoissonRegressor(alpha=0.01),
     "poisson", glm_obj(families.Poisson())),
    ("GammaRegressor", lj.GammaRegressor(alpha=0.01), sk.GammaRegressor(alpha=0.01), "gamma",
     glm_obj(families.Gamma(link="log"))),
    ("TweedieRegressor(1.5)", lj.TweedieRegressor(power=1.5, alpha=0.01),
     sk.TweedieRegressor(power=1.5, alpha=0.01), "tweedie",
     glm_obj(families.Tweedie(power=1.5))),
    ("GLM(poisson)", lj.GLM(family="poisson", alpha=0.01), sk.PoissonRegressor(alpha=0.01),
     "poisson", glm_obj(families.Poisson())),
]


def fit_predict(est, X, y):
    start = time.perf_counter()
    est.fit(X, y)
    out = est.predict(X)
    np.asarray(out)
    return time.perf_counter() - start


def timed(template, X, y, repeats):
    est = clone(template)
    cold = fit_predict(est, X, y)
    warm = min(fit_predict(clone(template), X, y) for _ in range(repeats))
    return est, cold, warm


def main():
    X, data = make_data(args.n, args.p)
    print(f"# bench_estimators: n={args.n} p={args.p} dtype={X.dtype} repeats={args.repeats}")
    print(f"# machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} "
          f"jax {jax.__version__} backend={jax.default_backend()} "
          f"scikit-learn {sklearn.__version__}")
    header = (f"{'estimator':32s} {'linjax cold':>11s} {'linjax warm':>11s} "
              f"{'sklearn cold':>12s} {'sklearn warm':>12s} {'warm ratio':>10s} "
              f"{'obj rel diff':>12s}")
    print(header)
    for name, ours, ref, target, objective in CASES:
        y = data[target]
        e1, lj_cold, lj_warm = timed(ours, X, y, args.repeats)
        e2, sk_cold, sk_warm = timed(ref, X, y, args.repeats)
        f1, f2 = objective(e1, X, y, target), objective(e2, X, y, target)
        print(f"{name:32s} {lj_cold * 1e3:9.1f}ms {lj_warm * 1e3:9.1f}ms "
              f"{sk_cold * 1e3:10.1f}ms {sk_warm * 1e3:10.1f}ms "
              f"{sk_warm / lj_warm:9.2f}x {(f1 - f2) / abs(f2):12.2e}", flush=True)
    print("# warm ratio = scikit-learn warm time / linjax warm time (> 1: linjax faster)")


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    main()
