"""Write saved models with the linjax that runs this script, plus the predictions that
linjax made, so that later versions are tested on files an earlier one wrote
(tests/test_saved_model_fixtures.py).

    python tests/data/saved_models/make_fixtures.py OUT_DIR

The committed files in this folder were written by linjax at commit dd80b60 (before the
module layout of FitResult, the solver choice and the starting values changed).
"""

import json
import sys
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import linjax as lj  # noqa: E402
from linjax import io  # noqa: E402
from linjax.estimators import LogisticRegression, PoissonRegressor, Ridge  # noqa: E402


def data():
    rng = np.random.default_rng(2026)
    X = rng.normal(size=(60, 3))
    eta = 0.3 + X @ np.array([0.4, -0.3, 0.2])
    y_count = rng.poisson(np.exp(eta)).astype(float)
    y_class = (rng.random(60) < 1 / (1 + np.exp(-eta))).astype(float)
    y_real = eta + rng.normal(scale=0.5, size=60)
    return X, y_count, y_class, y_real


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    X, y_count, y_class, y_real = data()
    X_new = X[:7] * 1.5
    expected = {"linjax_version": lj.__version__}
    fits = {
        "fit_poisson": lj.fit(X, y_count, family="poisson"),
        "fit_logistic_l2": lj.fit(X, y_class, family="binomial",
                                  penalty=lj.penalties.L2(alpha=0.1)),
        "fit_gamma_lasso": lj.fit(X, np.exp(y_real / 4), family="gamma",
                                  penalty=lj.penalties.L1(alpha=0.01)),
    }
    for name, result in fits.items():
        io.save(out / f"{name}.linjax", result)
        expected[name] = {"coef": np.asarray(result.coef).tolist(),
                          "intercept": float(result.intercept),
                          "status": int(result.status),
                          "predict": np.asarray(lj.predict(result.params, X_new,
                                                           result.family)).tolist()}
    estimators = {
        "est_poisson": PoissonRegressor(alpha=0.01).fit(X, y_count),
        "est_logistic": LogisticRegression(C=2.0).fit(X, y_class),
        "est_ridge": Ridge(alpha=1.0).fit(X, y_real),
    }
    for name, est in estimators.items():
        io.save(out / f"{name}.linjax", est)
        entry = {"predict": np.asarray(est.predict(X_new)).tolist()}
        if hasattr(est, "predict_proba"):
            entry["predict_proba"] = np.asarray(est.predict_proba(X_new)).tolist()
        expected[name] = entry
    (out / "expected.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
