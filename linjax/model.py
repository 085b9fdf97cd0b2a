"""The GLM as pure functions of a parameter pytree {"coef": (p,) or (p, K), "intercept"}.

    eta = X @ coef + intercept + offset,   mu = link^{-1}(eta)
    objective = sum_i w_i nll_i / sum_i w_i + penalty(coef)

with nll_i half the unit deviance (docs/objective.md).
"""

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs
from linjax.families import Gaussian, get_family
from linjax.penalties import AbstractPenalty, NoPenalty
from linjax.validation import check_penalty


def init_params(n_features, dtype=float, n_outputs=None):
    """Zero coefficients and intercept; `n_outputs` gives (p, K) coefficients."""
    shape = (n_features,) if n_outputs is None else (n_features, n_outputs)
    return {"coef": jnp.zeros(shape, dtype), "intercept": jnp.zeros(shape[1:], dtype)}


def _check_columns(X, coef):
    """X's last axis must match coef's first (a static shape check, valid under jit)."""
    p = jnp.shape(coef)[0] if jnp.ndim(coef) else None
    if p is None or (X.ndim >= 1 and X.shape[-1] == p):
        return
    raise ValueError(f"X: expected {p} columns, one per coefficient in params['coef'] (shape "
                     f"{tuple(jnp.shape(coef))}), got an array of shape {tuple(X.shape)}.")


def linear_predictor(params, X, offset=None):
    """eta = X @ coef + intercept (+ offset)."""
    if not hasattr(X, "shape"):
        X = jnp.asarray(X)
    _check_columns(X, params["coef"])
    eta = X @ params["coef"] + params["intercept"]
    if offset is not None:
        offset = jnp.asarray(offset)
        eta = eta + (offset if offset.ndim == eta.ndim else offset[:, None])
    return eta


def predict(params, X, family=None, offset=None):
    """The mean mu = link^{-1}(eta); `family` an instance or a name, as in `lj.fit`."""
    family = Gaussian() if family is None else get_family(family)
    if not isinstance(X, jax.Array | jax.core.Tracer) and not hasattr(X, "rmatvec"):
        X = np.asarray(X)  # a frame or a list: numbers, as jnp would take them
    _check_columns(X, params["coef"])
    # one compiled program per shape (eager, each operation would compile its own, outside
    # linjax's program budget)
    return _predict(params, X, family, offset)


@_programs.jit
def _predict(params, X, family, offset):
    return family.link.inverse(linear_predictor(params, X, offset))


def mean_loss(params, X, y, family, weights=None, offset=None):
    """sum_i w_i nll_i / sum_i w_i (the data term of the objective)."""
    nll = family.nll(y, linear_predictor(params, X, offset))
    if weights is None:
        return jnp.mean(nll)
    weights = jnp.asarray(weights, nll.dtype)
    # zero-weight rows count exactly 0, even where their eta leaves the link's domain
    return jnp.sum(jnp.where(weights > 0, weights * nll, 0.0)) / jnp.sum(weights)


def objective(params, X, y, family=None, penalty=None, weights=None, offset=None):
    """The objective of docs/objective.md: mean weighted half deviance plus the penalty."""
    family = Gaussian() if family is None else get_family(family)
    penalty = NoPenalty() if penalty is None else penalty
    if not isinstance(penalty, AbstractPenalty):
        check_penalty(penalty)  # raises the message naming `penalty`
    return mean_loss(params, X, y, family, weights, offset) + penalty.value(params["coef"])
