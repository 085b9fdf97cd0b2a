"""The GLM as pure functions of a parameter pytree {"coef": (p,) or (p, K), "intercept"}.

    eta = X @ coef + intercept + offset,   mu = link^{-1}(eta)
    objective = sum_i w_i nll_i / sum_i w_i + penalty(coef)

with nll_i half the unit deviance (API.md section 1).
"""

import jax.numpy as jnp

from linjax.families import Gaussian
from linjax.penalties import NoPenalty


def init_params(n_features, dtype=float, n_outputs=None):
    """Zero coefficients and intercept; `n_outputs` gives (p, K) coefficients."""
    shape = (n_features,) if n_outputs is None else (n_features, n_outputs)
    return {"coef": jnp.zeros(shape, dtype), "intercept": jnp.zeros(shape[1:], dtype)}


def linear_predictor(params, X, offset=None):
    """eta = X @ coef + intercept (+ offset)."""
    eta = X @ params["coef"] + params["intercept"]
    if offset is not None:
        offset = jnp.asarray(offset)
        eta = eta + (offset if offset.ndim == eta.ndim else offset[:, None])
    return eta


def predict(params, X, family=None, offset=None):
    """The mean mu = link^{-1}(eta)."""
    family = Gaussian() if family is None else family
    return family.link.inverse(linear_predictor(params, X, offset))


def mean_loss(params, X, y, family, weights=None, offset=None):
    """sum_i w_i nll_i / sum_i w_i (the data term of the objective)."""
    nll = family.nll(y, linear_predictor(params, X, offset))
    if weights is None:
        return jnp.mean(nll)
    weights = jnp.asarray(weights, nll.dtype)
    return jnp.sum(weights * nll) / jnp.sum(weights)


def objective(params, X, y, family=None, penalty=None, weights=None, offset=None):
    """The objective of API.md section 1: mean weighted half deviance plus the penalty."""
    family = Gaussian() if family is None else family
    penalty = NoPenalty() if penalty is None else penalty
    return mean_loss(params, X, y, family, weights, offset) + penalty.value(params["coef"])
