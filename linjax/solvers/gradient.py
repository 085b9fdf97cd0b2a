"""Gradient descent (full batch) and mini-batch stochastic gradient descent.

`GradientDescent`: x+ = prox(x - s grad f(x)) with s from a backtracking line
search (the majorization condition of `proximal.py`, halving on failure or on a
non-finite trial value, growing by 1/0.9 after a success) or a fixed step from
the Lipschitz bound of the gradient (`step_rule="lipschitz"`: Gaussian/identity,
Binomial/logit, Multinomial; 1/L with L = c * lambda_max(Z' W Z) + ridge, c the
largest curvature of the unit loss). With no penalty and no bounds the prox is
the identity: plain gradient descent. With bounds it is projected gradient
descent; with L1 it is ISTA. Stops when ||x+ - x||_inf / s <= tol.

`SGD`: mini-batch stochastic gradient with any optax transformation (default
Adam), rows reshuffled every epoch from a seeded key, the batches of an epoch
run inside one `lax.scan`, one engine step per epoch. The last ragged batch of
each epoch is dropped (a different one each epoch, so no row is left out for
good). The reported parameters are the average of the iterates over the last
epoch (Polyak-Ruppert tail averaging), which removes most of the noise of a
constant learning rate. Stops when the full objective changes by at most
tol * max(|objective|, 1) between epochs (MAX_ITER when the epochs run out first): CONVERGED
when the full gradient (projected, with bounds) is then below sqrt(tol) * max(|objective|, 1),
else STALLED (a flat objective is no certificate: SGD's noise floor can sit well away from
the optimum).
`SGD.init(params)` / `SGD.update(grads, state, params)` are the optax pair, for
users who drive the loop themselves (a GLM head inside a larger model).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from linjax._pytree import pytree_dataclass, static_field
from linjax.solvers import linalg
from linjax.solvers._common import Composite, is_glm, require_smooth, resolve_tol
from linjax.solvers.engine import AbstractSolver, iterate
from linjax.solvers.gram import weighted_gram
from linjax.solvers.proximal import (
    ProximalState,
    check_prox_bounds,
    proximal_step,
    proximal_terminate,
)
from linjax.solvers.status import Status, code


def lipschitz_bound(problem):
    """A Lipschitz constant of the gradient of the data loss (plus ridge): the family's
    curvature bound c times the largest eigenvalue of Z' diag(w) Z, plus the largest ridge
    curvature; a ValueError for a family without a bound."""
    family = getattr(problem, "family", None)
    c = None if family is None else family.curvature_bound()
    if c is None:
        raise ValueError(
            f"step_rule: 'lipschitz' needs a loss with bounded curvature (Gaussian/identity, "
            f"Binomial/logit, Multinomial), not {family!r}; use step_rule='linesearch'."
        )
    lam = linalg.eigvalsh(weighted_gram(problem.X, problem.weights, problem.fit_intercept))[-1]
    ridge = jnp.max(problem.penalty.smooth_hess_diag(problem.X[0]), initial=0.0)
    return c * lam + ridge


@pytree_dataclass
class GradientDescent(AbstractSolver):
    """Full-batch (proximal / projected) gradient descent.

    step_rule: "linesearch" (backtracking, default), "lipschitz" (fixed 1/L) or "fixed"
    (`step_size`). tol: largest entry of (x - x+) / s at convergence (None: 1e-8 in
    float64, 1e-4 in float32).
    """

    tol: object = None
    step_size: object = None
    max_iter: int = static_field(default=20000)
    step_rule: str = static_field(default="linesearch")
    max_backtracks: int = static_field(default=60)
    name = "gd"

    def _first_step(self, problem, dtype):
        if self.step_rule == "lipschitz":
            if not is_glm(problem):
                raise ValueError("step_rule: 'lipschitz' needs a GLM problem; use "
                                 "step_rule='linesearch'.")
            return (1.0 / lipschitz_bound(problem)).astype(dtype)
        if self.step_rule == "fixed":
            if self.step_size is None:
                raise ValueError("step_size: step_rule='fixed' needs a step_size.")
            return jnp.asarray(self.step_size, dtype)
        if self.step_rule != "linesearch":
            raise ValueError(f"step_rule: expected 'linesearch', 'lipschitz' or 'fixed', got "
                             f"{self.step_rule!r}.")
        return jnp.asarray(1.0 if self.step_size is None else self.step_size, dtype)

    def minimise(self, problem, params):
        if hasattr(problem, "project"):
            params = problem.project(params)
        return iterate(self, problem, params)

    def init(self, problem, params):
        check_prox_bounds(problem)
        comp = Composite(problem, params)
        x = comp.flatten(params)
        value = comp.value(x)
        false = jnp.asarray(False)
        return ProximalState(value, x, jnp.ones((), value.dtype),
                             self._first_step(problem, value.dtype),
                             jnp.asarray(jnp.inf, value.dtype), false, false)

    def step(self, problem, params, state):
        # without acceleration the extrapolation point y stays at x
        return proximal_step(problem, params, state, self.tol, accelerate=False,
                             backtrack=self.step_rule == "linesearch",
                             max_backtracks=self.max_backtracks)

    def terminate(self, problem, params, state):
        return proximal_terminate(state)


class SGDState(NamedTuple):
    value: jax.Array
    x: jax.Array
    opt_state: Any
    epoch: jax.Array
    change: jax.Array
    converged: jax.Array
    stalled: jax.Array = False  # the objective stopped changing away from a stationary point


class _EpochLoop:
    """The engine-facing view of SGD: one engine step is one epoch of mini-batches."""

    def __init__(self, sgd, n_rows, data, batch_loss):
        self.sgd = sgd
        self.max_iter = sgd.max_iter
        self.n_rows = n_rows
        self.data = data
        self.batch_loss = batch_loss

    def init(self, problem, params):
        comp = Composite(problem, params)
        x = comp.flatten(params)
        value = comp.value(x)
        return SGDState(value, x, self.sgd.transformation().init(x),
                        jnp.asarray(0, jnp.int32), jnp.asarray(jnp.inf, value.dtype),
                        jnp.asarray(False), jnp.asarray(False))

    def step(self, problem, params, state):
        comp = Composite(problem, params)
        opt = self.sgd.transformation()
        bs = min(self.sgd.batch_size, self.n_rows)
        n_batches = self.n_rows // bs
        key = jax.random.fold_in(jax.random.PRNGKey(self.sgd.seed), state.epoch)
        perm = jax.random.permutation(key, self.n_rows)[: n_batches * bs].reshape(n_batches, bs)
        project = comp.flatten if not hasattr(problem, "project") else (
            lambda v: comp.flatten(problem.project(comp.unflatten(v))))

        def one_batch(carry, idx):
            x, opt_state, x_sum = carry
            batch = jax.tree_util.tree_map(lambda a: a[idx], self.data)
            grad = jax.grad(self.batch_loss)(x, batch)
            updates, opt_state = opt.update(grad, opt_state, x)
            x = project(x + updates) if getattr(problem, "bounded", False) else x + updates
            return (x, opt_state, x_sum + x), None

        (x, opt_state, x_sum), _ = jax.lax.scan(one_batch, (state.x, state.opt_state,
                                                            jnp.zeros_like(state.x)), perm)
        x_out = x_sum / n_batches if self.sgd.average else x
        value = comp.value(x_out)
        change = jnp.abs(value - state.value)
        tol = resolve_tol(self.sgd.tol, value.dtype) if self.sgd.tol is not None else (
            jnp.asarray(1e-7 if jnp.finfo(value.dtype).bits >= 64 else 1e-5, value.dtype))
        scale = jnp.maximum(jnp.abs(value), 1.0)
        flat = change <= tol * scale
        # a flat objective certifies nothing: the full gradient (projected where bounded)
        # must also be below sqrt(tol) * max(|f|, 1), else the status says STALLED
        stationary = jax.lax.cond(flat, lambda v: _stationarity(comp, problem, v) <= (
            jnp.sqrt(tol) * scale), lambda v: jnp.asarray(False), x_out)
        return comp.unflatten(x_out), SGDState(value, x, opt_state, state.epoch + 1, change,
                                               flat & stationary, flat & ~stationary)

    def terminate(self, problem, params, state):
        status = jnp.where(state.stalled, code(Status.STALLED), code(Status.CONVERGED))
        return state.converged | state.stalled, status


def _stationarity(comp, problem, x):
    """max |x - P(x - grad f(x))|: the largest gradient entry (the projected gradient's where
    the problem has bounds), 0 exactly at a stationary point."""
    value = comp.smooth_full if is_glm(problem) else comp.value
    grad = jax.grad(value)(x)
    if getattr(problem, "bounded", False):
        grad = x - comp.flatten(problem.project(comp.unflatten(x - grad)))
    return jnp.max(jnp.abs(grad), initial=0.0)


@pytree_dataclass
class SGD(AbstractSolver):
    """Mini-batch stochastic gradient descent with an optax transformation.

    optimizer: an optax GradientTransformation (static); None uses
    optax.adam(learning_rate). batch_size: rows per mini-batch. max_iter: the
    number of epochs. seed: the shuffling seed. average: report the mean iterate
    of the last epoch. tol: relative objective change between epochs at which to
    stop (None: 1e-7 in float64, 1e-5 in float32).

    `solver.run(fun, params, *data)`: `fun(params, *batch)` is the mean loss over
    a batch, and every array in `data` is split into mini-batches along axis 0.
    """

    learning_rate: object = 1e-2
    tol: object = None
    optimizer: object = static_field(default=None)
    batch_size: int = static_field(default=256)
    max_iter: int = static_field(default=100)
    seed: int = static_field(default=0)
    average: bool = static_field(default=True)
    name = "sgd"

    def transformation(self):
        return optax.adam(self.learning_rate) if self.optimizer is None else self.optimizer

    # -- the optax pair, for user-driven loops --------------------------------------
    def init(self, params):
        """Optax state for `params` (any pytree)."""
        return self.transformation().init(params)

    def update(self, grads, state, params=None):
        """(updates, new_state) from the gradients of the user's mini-batch loss."""
        return self.transformation().update(grads, state, params)

    # -- the solver ----------------------------------------------------------------
    def minimise(self, problem, params):
        if is_glm(problem):
            require_smooth(problem, "SGD")
            if hasattr(problem, "project"):
                params = problem.project(params)
            n = problem.X.shape[0]
            offset = problem.offset
            data = (problem.X, problem.y, problem.weights,
                    jnp.zeros_like(problem.weights) if offset is None else offset)

            def batch_loss(x, batch):
                Xb, yb, wb, ob = batch
                prm = problem.from_vector(x, params)
                eta = Xb @ prm["coef"] + prm["intercept"]
                eta = eta + (ob if eta.ndim == 1 else ob[:, None])
                data_loss = jnp.sum(wb * problem.family.nll(yb, eta)) * (n / Xb.shape[0])
                return data_loss + problem.penalty.value(prm["coef"])
        else:
            args = problem.args
            if not args:
                raise ValueError("SGD.run: pass the data to split into mini-batches as *args "
                                 "(arrays with the rows on axis 0).")
            n = jax.tree_util.tree_leaves(args)[0].shape[0]
            data = args

            def batch_loss(x, batch):
                return problem.fun(problem.from_vector(x, params), *batch)

        return iterate(_EpochLoop(self, n, data, batch_loss), problem, params)
