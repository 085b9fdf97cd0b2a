"""Column transforms as pure functions for JAX code (no scikit-learn; they run under `jit`,
`vmap` and `grad`). `linjax.preprocessing` re-exports them beside the scikit-learn
transformers built on them (`linjax.estimators`).

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
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from linjax._pytree import pytree_dataclass

__all__ = [
    "Standardizer", "fit_standardizer", "standardize", "unstandardize", "params_to_original",
    "params_to_standardized", "polynomial_powers", "polynomial_features",
    "polynomial_feature_names", "interaction_features",
]


@pytree_dataclass
class Standardizer:
    """Column statistics: `mean` (p,) (zeros without centring) and `scale` (p,) (> 0)."""

    mean: jax.Array
    scale: jax.Array


def _float_design(X):
    X = jnp.asarray(X)
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(jnp.zeros(()).dtype)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D array (n_samples, n_features), got shape "
                         f"{tuple(X.shape)}; use X.reshape(-1, 1) for a single feature.")
    return X


def fit_standardizer(X, weights=None, with_mean=True, with_std=True):
    """Weighted column means and standard deviations of `X` as a `Standardizer`.

    weights: (n,) non-negative sample weights (default 1); the variance divides by
    sum(weights) (population variance, as scikit-learn and glmnet). Columns with zero
    spread get scale 1, so standardizing never divides by zero.
    """
    X = _float_design(X)
    n = X.shape[0]
    w = jnp.ones((n,), X.dtype) if weights is None else jnp.asarray(weights, X.dtype)
    if w.shape != (n,):
        raise ValueError(f"weights: expected shape ({n},) to match the rows of X, got "
                         f"{tuple(w.shape)}.")
    w = w / jnp.sum(w)
    mean = w @ X if with_mean else jnp.zeros((X.shape[1],), X.dtype)
    if with_std:
        var = w @ ((X - mean) ** 2)
        scale = jnp.sqrt(var)
        tiny = 10 * jnp.finfo(X.dtype).eps * jnp.maximum(jnp.abs(mean), 1.0)
        scale = jnp.where(scale > tiny, scale, 1.0)
    else:
        scale = jnp.ones((X.shape[1],), X.dtype)
    return Standardizer(mean, scale)


def standardize(X, stats):
    """(X - stats.mean) / stats.scale."""
    X = _float_design(X)
    return (X - stats.mean.astype(X.dtype)) / stats.scale.astype(X.dtype)


def unstandardize(Z, stats):
    """The inverse of `standardize`: Z * scale + mean."""
    Z = _float_design(Z)
    return Z * stats.scale.astype(Z.dtype) + stats.mean.astype(Z.dtype)


def _per_row(v, coef):
    return v.reshape(v.shape + (1,) * (coef.ndim - 1))


def params_to_original(params, stats):
    """Parameters fitted on `standardize(X, stats)` expressed for the original X."""
    coef = params["coef"] / _per_row(stats.scale, params["coef"]).astype(params["coef"].dtype)
    intercept = params["intercept"] - stats.mean.astype(coef.dtype) @ coef
    return {"coef": coef, "intercept": intercept}


def params_to_standardized(params, stats):
    """Parameters for the original X expressed for `standardize(X, stats)`."""
    coef = jnp.asarray(params["coef"])
    intercept = jnp.asarray(params["intercept"]) + stats.mean.astype(coef.dtype) @ coef
    return {"coef": coef * _per_row(stats.scale, coef).astype(coef.dtype),
            "intercept": intercept}


def polynomial_powers(n_features, degree=2, interaction_only=False, include_bias=False):
    """(n_output, n_features) integer exponents, in scikit-learn's PolynomialFeatures order."""
    if not (isinstance(degree, int | np.integer) and degree >= 0):
        raise ValueError(f"degree: expected a non-negative integer, got {degree!r}.")
    combine = itertools.combinations if interaction_only else \
        itertools.combinations_with_replacement
    start = 0 if include_bias else 1
    rows = []
    for d in range(start, degree + 1):
        for combo in combine(range(n_features), d):
            row = np.zeros(n_features, dtype=int)
            for j in combo:
                row[j] += 1
            rows.append(row)
    return np.array(rows, dtype=int).reshape(len(rows), n_features)


def polynomial_features(X, degree=2, interaction_only=False, include_bias=False):
    """Columns prod_j X[:, j]^powers[k, j] for every row k of `polynomial_powers`."""
    X = _float_design(X)
    powers = polynomial_powers(X.shape[1], degree, interaction_only, include_bias)
    columns = []
    for row in powers:
        col = jnp.ones((X.shape[0],), X.dtype)
        for j in np.flatnonzero(row):
            col = col * X[:, j] ** int(row[j])
        columns.append(col)
    if not columns:
        return jnp.zeros((X.shape[0], 0), X.dtype)
    return jnp.stack(columns, axis=1)


def interaction_features(X):
    """The pairwise products x_i * x_j for i < j (no squares, no original columns)."""
    X = _float_design(X)
    pairs = list(itertools.combinations(range(X.shape[1]), 2))
    if not pairs:
        return jnp.zeros((X.shape[0], 0), X.dtype)
    i, j = (np.array(idx) for idx in zip(*pairs, strict=True))
    return X[:, i] * X[:, j]


def polynomial_feature_names(names, powers):
    """Labels for the columns of `polynomial_features` ("1", "x0", "x0 x1", "x0^2")."""
    out = []
    for row in powers:
        terms = [n if p == 1 else f"{n}^{p}" for n, p in zip(names, row, strict=True) if p]
        out.append(" ".join(terms) if terms else "1")
    return np.asarray(out, dtype=object)

