"""L-BFGS: optax's limited-memory BFGS with its zoom (strong Wolfe) line search.

Works on the flat vector of `problem.to_vector`, so the intercept is fixed when
`fit_intercept=False` and any user pytree is handled by raveling. Stops when the
largest gradient entry is at most `tol`. The zoom line search treats a
non-finite trial value as a failed decrease and shrinks the step; a step that
still does not decrease the objective is rejected, and the solver reports
LINE_SEARCH_FAILED unless the gradient is already at rounding level.

Smooth objectives only: L1 / elastic net need `ProximalGradient` or
`CoordinateDescent`; bounds need those or the projected `GradientDescent`.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from linjax._pytree import pytree_dataclass, static_field
from linjax.solvers import design_gradient
from linjax.solvers._common import Composite, require_smooth, require_unbounded, resolve_tol
from linjax.solvers.engine import AbstractSolver
from linjax.solvers.status import Status, code


class LBFGSState(NamedTuple):
    value: jax.Array
    grad_norm: jax.Array
    opt_state: Any
    converged: jax.Array
    stalled: jax.Array


@pytree_dataclass
class LBFGS(AbstractSolver):
    """Limited-memory BFGS (optax.lbfgs + optax.scale_by_zoom_linesearch).

    tol: largest absolute gradient entry at convergence (None: 1e-8 in float64,
    1e-4 in float32). memory_size: number of stored curvature pairs.
    """

    tol: object = None
    max_iter: int = static_field(default=500)
    memory_size: int = static_field(default=10)
    max_linesearch_steps: int = static_field(default=30)
    name = "lbfgs"

    def _optimizer(self):
        linesearch = optax.scale_by_zoom_linesearch(
            max_linesearch_steps=self.max_linesearch_steps, initial_guess_strategy="one")
        return optax.lbfgs(memory_size=self.memory_size, linesearch=linesearch)

    def init(self, problem, params):
        require_smooth(problem, "LBFGS")
        require_unbounded(problem, "LBFGS")
        comp = Composite(problem, params)
        x = comp.flatten(params)
        value, grad = jax.value_and_grad(design_gradient.value_fn(comp))(x)
        opt_state = self._optimizer().init(x)
        false = jnp.asarray(False)
        return LBFGSState(value, jnp.max(jnp.abs(grad), initial=0.0), opt_state, false, false)

    def step(self, problem, params, state):
        comp = Composite(problem, params)
        fun = design_gradient.value_fn(comp)   # a design's gradient by its own X' v
        x = comp.flatten(params)
        opt = self._optimizer()
        value, grad = optax.value_and_grad_from_state(fun)(x, state=state.opt_state)
        updates, opt_state = opt.update(grad, state.opt_state, x, value=value, grad=grad,
                                        value_fn=fun)
        x_new = x + updates
        new_value = optax.tree.get(opt_state, "value")
        new_grad = optax.tree.get(opt_state, "grad")
        eps = jnp.finfo(value.dtype).eps
        scale = jnp.maximum(jnp.abs(value), 1.0)
        ok = jnp.isfinite(new_value) & (new_value <= value + 8 * eps * scale) & jnp.all(
            jnp.isfinite(new_grad))
        moved = jnp.any(x_new != x)
        accepted = ok & moved
        grad_norm = jnp.max(jnp.abs(jnp.where(accepted, new_grad, grad)), initial=0.0)
        tol = resolve_tol(self.tol, value.dtype)
        converged = grad_norm <= tol
        at_floor = grad_norm <= jnp.sqrt(eps) * scale
        stalled = ~accepted & ~converged & ~at_floor
        converged = converged | (~accepted & at_floor)
        x_out = jnp.where(accepted, x_new, x)
        # A rejected step keeps the previous optimizer state, so the next call restarts there.
        opt_state = jax.tree_util.tree_map(lambda a, b: jnp.where(accepted, a, b), opt_state,
                                           state.opt_state)
        value_out = jnp.where(accepted, new_value, value)
        return comp.unflatten(x_out), LBFGSState(value_out, grad_norm, opt_state, converged,
                                                 stalled)

    def terminate(self, problem, params, state):
        status = jnp.where(state.stalled, code(Status.LINE_SEARCH_FAILED),
                           code(Status.CONVERGED))
        return state.converged | state.stalled, status
