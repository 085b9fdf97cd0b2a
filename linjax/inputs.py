"""The inputs of a fit checked and converted: `fit_inputs` for every entry point that takes
(X, y, weights, offset), and `check_X` for an X that may be a design object.

Above `linjax.validation` (array checks) and `linjax.designs` (design objects), so that
neither needs the other.
"""

import jax.numpy as jnp
import numpy as np

from linjax import validation
from linjax.designs import fitting as design_fitting
from linjax.penalties import NoPenalty


def check_X(X, name="X", fit_intercept=True):
    """X as a floating 2-D array (`validation.check_design`), or a design object: a design is
    checked, scipy.sparse becomes `Sparse` and a frame with category/string columns a `Split`
    (treatment coding when there is an intercept; `designs.fitting.checked`)."""
    if design_fitting.accepts(X):
        return design_fitting.checked(X, name, fit_intercept)
    return validation.check_design(X, name)


def fit_inputs(X, y, family, weights=None, offset=None, penalty=None, fit_intercept=True):
    """Validate and convert the inputs of `fit`: returns (X, y, weights, offset) as arrays."""
    validation.check_fit_intercept(fit_intercept)
    X = check_X(X, fit_intercept=fit_intercept)
    y_arr = validation.as_numeric("y", y)
    floating_y = y_arr if jnp.issubdtype(y_arr.dtype, jnp.floating) else None
    dtype = validation.float_dtype_of(X, floating_y)
    n, p = X.shape
    X = X.astype(dtype) if hasattr(X, "rmatvec") else validation.to_device(X, dtype)  # a design
    y = validation.check_vector("y", y_arr, n, dtype)
    weights = None if weights is None else validation.check_vector("weights", weights, n, dtype)
    offset = None if offset is None else validation.check_vector("offset", offset, n, dtype)
    if p == 0 and not fit_intercept:
        raise ValueError("X: has 0 columns and fit_intercept=False, so there is nothing to fit; "
                         "add features or set fit_intercept=True.")
    if weights is not None and not validation.is_traced(weights):
        w = np.asarray(weights)
        if (w < 0).any():
            raise ValueError(f"weights: {int((w < 0).sum())} negative value(s), the first at "
                             f"index {int(np.flatnonzero(w < 0)[0])}; weights must be >= 0.")
        if not (w > 0).any():
            raise ValueError("weights: all weights are zero; at least one observation needs a "
                             "positive weight.")
    if not validation.is_traced(y) and not validation.y_in_support_fast(y, family):
        message = family.support_error(np.asarray(y))
        if message:
            raise ValueError(f"y: {message} (family {family!r}).")
    penalty = NoPenalty() if penalty is None else penalty
    if isinstance(penalty, NoPenalty) and not validation.is_traced(weights):
        n_eff = n if weights is None else int((np.asarray(weights) > 0).sum())
        k = p + int(fit_intercept)
        if k > n_eff:
            raise ValueError(
                f"X: {k} coefficients but only {n_eff} observations with positive weight; the "
                "unpenalized fit is not identifiable. Add a penalty (L2, L1) or drop columns."
            )
    return X, y, weights, offset
