"""Preprocessing as pure functions for JAX code, and as scikit-learn transformers.

Pure functions (no scikit-learn needed; they run under `jit`, `vmap` and `grad`), from
`linjax.transforms` (its docstring lists them): `fit_standardizer`, `standardize`,
`unstandardize`, `params_to_original`, `params_to_standardized`,
`polynomial_features`, `polynomial_powers`, `polynomial_feature_names`,
`interaction_features`.

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
