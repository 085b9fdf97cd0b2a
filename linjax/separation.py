"""The separation warning, one check for `lj.fit` and the estimators.

A binomial fit without a penalty on separated classes has no maximum likelihood estimate:
the solver stops at some large, finite coefficients that only look converged. Nothing is
checked unless some fitted |eta| > SEPARATION_ETA; then the fit's own score proves overlap
in O(n p) on data that is not separated (`diagnostics.certify_overlap`), and only where it
cannot does the linear program of `diagnostics.check_separation` (scipy) decide. Without
scipy, a fitted direction that classifies every row is reported as complete separation, and
anything else as a possible separation that could not be checked.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs
from linjax.diagnostics import SeparationWarning, certify_overlap, check_separation
from linjax.families import eta_derivatives

#: |eta| beyond which a fitted binomial probability is 0 or 1 to about 7 digits.
SEPARATION_ETA = 15.0

#: What `lj.fit`'s warning recommends.
FIT_REMEDY = "add a penalty (L2), or use Firth's bias-reduced fit " \
             "(penalty=linjax.penalties.Firth())"


def warn_if_separated(X, y, weights, params, offset, family, fit_intercept, owner="fit",
                      remedy=FIT_REMEDY, stacklevel=3):
    """Warn (SeparationWarning, "{owner}: ...", ending with `remedy`) when a fitted binomial
    model's probabilities reach 0 or 1 because the data separate the classes. Eager only:
    X, y, weights (None: ones), params {"coef", "intercept"} and offset are concrete."""
    w = jax.device_put(np.ones(np.shape(y), X.dtype)) if weights is None else weights
    if isinstance(X, np.ndarray) and not _numpy_reaches(X, w, params, offset):
        return  # numpy data (the estimators): no program compiled for the common case
    linear, score, reaches = separation_screen(X, y, w, params, offset, family)
    if not bool(reaches):
        return
    y, w = np.asarray(y), np.asarray(w)
    if certify_overlap(X, y, np.asarray(score), w, fit_intercept):
        return
    try:
        kind = check_separation(X, y, fit_intercept=fit_intercept, weights=w).kind
    except ImportError:
        kind = fitted_direction_separation(np.asarray(linear), y, w)
    if kind == "none":
        return
    if kind == "unchecked":
        warnings.warn(
            f"{owner}: some fitted probabilities are 0 or 1 to 7 digits and the fit's score "
            "does not prove that the classes overlap, so they may be separated (then the "
            "maximum likelihood estimate does not exist and the coefficients are arbitrary "
            "large numbers). The exact check, linjax.diagnostics.check_separation, was "
            f"skipped: it needs scipy (pip install scipy). If separated, {remedy}.",
            SeparationWarning, stacklevel=stacklevel)
        return
    warnings.warn(
        f"{owner}: the classes are {kind}ly separated by the features of X, so the maximum "
        "likelihood estimate does not exist and the coefficients are arbitrary large "
        f"numbers. {remedy[0].upper()}{remedy[1:]}.", SeparationWarning, stacklevel=stacklevel)


def _numpy_reaches(X, w, params, offset):
    eta = X @ np.asarray(params["coef"]) + np.asarray(params["intercept"])
    if offset is not None:
        eta = eta + np.asarray(offset)
    return bool(np.any((np.asarray(w) > 0) & (np.abs(eta) > SEPARATION_ETA)))


@_programs.jit
def separation_screen(X, y, w, params, offset, family):
    """(X b + b0, the score contributions -w_i d nll_i / d eta_i, whether any weighted
    |eta_i| exceeds SEPARATION_ETA), in one pass over X."""
    linear = X @ params["coef"] + params["intercept"]
    eta = linear if offset is None else linear + offset
    score = -w * eta_derivatives(family, y, eta)[1]
    return linear, score, jnp.any((w > 0) & (jnp.abs(eta) > SEPARATION_ETA))


def fitted_direction_separation(linear, y, w):
    """Without scipy: "complete" when the fitted linear predictor (offset excluded) puts
    every weighted row strictly on its class's side (the fit's coefficients are then a
    separating direction), else "unchecked"."""
    keep = w > 0
    sign = np.where(y >= 1, 1.0, np.where(y <= 0, -1.0, 0.0))[keep]
    margin = sign * linear[keep]
    return "complete" if np.all(sign != 0) and np.all(margin > 0) else "unchecked"
