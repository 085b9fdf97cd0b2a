"""The one loop engine: every iterative solver is init / step / terminate inside it.

A solver defines

    init(problem, params) -> state            (state has a `value` field)
    step(problem, params, state) -> (params, state)
    terminate(problem, params, state) -> (done, status)

and the engine owns the `lax.while_loop`, the `max_iter` cap and the check that
every step left finite values (otherwise it keeps the last finite iterate and
reports NON_FINITE).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax.solvers.problem import FunctionProblem
from linjax.solvers.status import Status, code


class Solution(NamedTuple):
    """What a solver returns: the minimiser and how the search ended."""

    params: Any
    value: jax.Array
    n_iter: jax.Array
    status: jax.Array
    converged: jax.Array
    state: Any


def tree_all_finite(tree):
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def tree_select(pred, on_true, on_false):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def iterate(solver, problem, params):
    """Run `solver` on `problem` from `params` until it terminates or hits max_iter."""
    state = solver.init(problem, params)

    def cond(carry):
        _, _, i, done, _ = carry
        return (~done) & (i < solver.max_iter)

    def body(carry):
        params, state, i, _, _ = carry
        new_params, new_state = solver.step(problem, params, state)
        finite = tree_all_finite(new_params) & jnp.isfinite(new_state.value)
        done, status = solver.terminate(problem, new_params, new_state)
        params = tree_select(finite, new_params, params)
        state = tree_select(finite, new_state, state)
        done = done | ~finite
        status = jnp.where(finite, status, code(Status.NON_FINITE))
        return params, state, i + 1, done, status

    start_finite = tree_all_finite(params) & jnp.isfinite(state.value)
    carry = (params, state, jnp.asarray(0, jnp.int32), ~start_finite,
             jnp.where(start_finite, code(Status.MAX_ITER), code(Status.NON_FINITE)))
    params, state, n_iter, done, status = jax.lax.while_loop(cond, body, carry)
    status = jnp.where(done, status, code(Status.MAX_ITER))
    return Solution(params, state.value, n_iter, status, status == Status.CONVERGED, state)


class AbstractSolver:
    """Base class: subclasses define `init`, `step` and `terminate` (or override `minimise`)."""

    name = "abstract"

    def minimise(self, problem, params):
        return iterate(self, problem, params)

    def run(self, fun, init_params, *args):
        """Minimise `fun(params, *args)` over any parameter pytree from `init_params`.

        numpy arrays among `args` are taken as JAX arrays (SGD indexes them with traced
        mini-batch indices)."""
        args = jax.tree_util.tree_map(
            lambda a: jnp.asarray(a) if isinstance(a, np.ndarray) else a, args)
        return self.minimise(FunctionProblem(fun, args), init_params)
