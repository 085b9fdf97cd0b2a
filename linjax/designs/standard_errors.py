"""Standard errors of a fit on a design with a many-level factor, without the dense matrix:
the diagonal of the inverse information from the Schur complement of the factor's
diagonal block (`linjax.designs.block_solve`)."""

import jax.numpy as jnp

from linjax.designs.block_solve import applies, arrow_products
from linjax.designs.fitting import checked
from linjax.model import linear_predictor


def standard_errors(result, X, y, weights=None, offset=None, dispersion=None):
    """Standard errors of an `lj.fit` result on a design with a categorical block (`applies`),
    intercept first, without the dense matrix: sqrt(phi diag(I^-1)) with the information
    I = Z' diag(w mu'(eta)^2 / V(mu)) Z + sum(w) diag(penalty curvature) (`inverse_diagonal`
    of its `ArrowHessian`). These are `linjax.inference.summarize`'s "nonrobust" `bse` (with
    L2, its posterior standard deviations), which needs the dense (n, p) matrix. phi: the
    Pearson chi2 / (nobs - k) where the family estimates it, else 1; or `dispersion`. A
    level with no weight (and no penalty) has none: NaN. Assumes the design has full rank.
    """
    family, penalty = result.family, result.penalty
    intercept = bool(result.fit_intercept)
    X = checked(X, fit_intercept=intercept)
    dtype = jnp.asarray(result.params["coef"]).dtype
    X = X.astype(dtype) if hasattr(X, "astype") else X
    y, weights, offset = (None if a is None else jnp.asarray(a, dtype)
                          for a in (y, weights, offset))
    if not applies(X):
        raise ValueError("X: standard_errors needs a design with a categorical block "
                         "(linjax.designs.Categorical or a Split holding one); for other X "
                         "use linjax.inference.summarize.")
    w = jnp.ones_like(y) if weights is None else weights
    eta = linear_predictor(result.params, X, offset)
    mu = family.link.inverse(eta)
    variance = family.variance(mu)
    fisher = jnp.where(w > 0, w * family.link.inverse_deriv(eta) ** 2 / variance, 0.0)
    coef = result.params["coef"]
    pen = jnp.sum(w) * penalty.smooth_hess_diag(coef)
    H = arrow_products(X, fisher, intercept).add_diagonal(
        jnp.concatenate([jnp.zeros(int(intercept), pen.dtype), pen]))
    if dispersion is None and family.estimates_dispersion:
        pearson = jnp.sum(jnp.where(w > 0, w * (y - mu) ** 2 / variance, 0.0))
        dispersion = pearson / (jnp.sum(w > 0) - (coef.shape[0] + int(intercept)))
    phi = 1.0 if dispersion is None else dispersion
    diag = H.inverse_diagonal()
    defined = H.join(H.d > 0, jnp.ones(H.C.shape[0], bool))
    return jnp.where(defined, jnp.sqrt(phi * diag), jnp.nan)
