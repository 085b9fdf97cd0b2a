"""Choose penalty strengths by gradient descent on a held-out loss (hypergradients).

    tune(X_train, y_train, X_val, y_val, family, make_penalty)

minimises  L_val(theta*(alpha)),  theta*(alpha) = argmin of the training objective,
over log(alpha) (one strength, or a vector such as per-feature penalty factors),
with d L_val / d log(alpha) from implicit differentiation through `lj.fit`.
Each step costs one fit plus one linear solve, instead of one fit per grid point.
The validation loss is the mean weighted half deviance (the objective's data term).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from linjax.fit import fit
from linjax.model import mean_loss


class TuneResult(NamedTuple):
    alpha: jax.Array
    val_loss: jax.Array
    history_alpha: jax.Array
    history_loss: jax.Array
    result: object


def tune(X_train, y_train, X_val, y_val, family, make_penalty, alpha0=0.1, steps=30,
         learning_rate=0.3, weights=None, val_weights=None, offset=None, val_offset=None,
         solver="auto"):
    """Gradient descent (Adam) on log(alpha); returns the best alpha seen and the history.

    make_penalty: alpha -> penalty (e.g. `lambda a: L2(alpha=a)`, or
    `lambda a: L2(alpha=1.0, weights=a)` for per-feature factors with a vector alpha0).
    """

    def val_loss(log_alpha):
        res = fit(X_train, y_train, family=family, penalty=make_penalty(jnp.exp(log_alpha)),
                  solver=solver, weights=weights, offset=offset)
        return mean_loss(res.params, X_val, y_val, family, val_weights, val_offset)

    value_and_grad = jax.jit(jax.value_and_grad(val_loss))
    optimizer = optax.adam(learning_rate)
    log_alpha = jnp.log(jnp.asarray(alpha0, jnp.result_type(float)))
    state = optimizer.init(log_alpha)
    alphas, losses = [], []
    for _ in range(steps):
        loss, grad = value_and_grad(log_alpha)
        alphas.append(jnp.exp(log_alpha))
        losses.append(loss)
        updates, state = optimizer.update(grad, state)
        log_alpha = optax.apply_updates(log_alpha, updates)
    history_alpha, history_loss = jnp.stack(alphas), jnp.stack(losses)
    best = int(jnp.argmin(history_loss))
    alpha = history_alpha[best]
    result = fit(X_train, y_train, family=family, penalty=make_penalty(alpha), solver=solver,
                 weights=weights, offset=offset)
    return TuneResult(alpha, history_loss[best], history_alpha, history_loss, result)
