"""Preprocessing as pure functions for JAX code, and as scikit-learn transformers.

Pure functions (no scikit-learn needed; they run under `jit`, `vmap` and `grad`):

- `fit_standardizer(X, weights=None, with_mean=True, with_std=True) -> Standardizer`:
  weighted column means and standard deviations (population variance, divisor sum(w),
  as scikit-learn's `StandardScaler` and glmnet). Constant columns get scale 1.
  Without centring (`with_mean=False`) the scale is the root mean square about zero.
- `standardize(X, stats)` and `unstandardize(Z, stats)`: (X - mean) / scale and back.
- `params_to_original(params, stats)` / `params_to_standardized(params, stats)`: move
  GLM parameters {"coef", "intercept"} between the standardized and the original
  column scale (eta is unchanged): coef = coef_s / scale, intercept = intercept_s -
  mean @ coef. This is how `standardize=True` on the estimators reports
  coefficients on the original scale, as glmnet does.
- `polynomial_features(X, degree=2, interaction_only=False, include_bias=False)`:
  products of columns in scikit-learn's `PolynomialFeatures` order;
  `polynomial_powers(n_features, ...)` gives the exponent matrix and
  `polynomial_feature_names(names, powers)` the labels ("x0 x1", "x0^2").
- `interaction_features(X)`: the pairwise products x_i x_j, i < j.

Transformers (`StandardScaler`, `PolynomialFeatures`), importable from here, live in
`linjax.estimators` and need scikit-learn; they are loaded on first access so that
importing this module never imports scikit-learn.
"""

from linjax.transforms import (
    Standardizer,
    fit_standardizer,
    interaction_features,
    params_to_original,
    params_to_standardized,
    polynomial_feature_names,
    polynomial_features,
    polynomial_powers,
    standardize,
    unstandardize,
)

__all__ = [
    "Standardizer", "fit_standardizer", "standardize", "unstandardize", "params_to_original",
    "params_to_standardized", "polynomial_powers", "polynomial_features",
    "polynomial_feature_names", "interaction_features",
]


def __getattr__(name):
    if name in ("StandardScaler", "PolynomialFeatures"):
        from linjax.estimators import _preprocessing

        return getattr(_preprocessing, name)
    raise AttributeError(f"module 'linjax.preprocessing' has no attribute {name!r}")
