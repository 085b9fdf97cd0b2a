"""Newton's method / IRLS: exact Newton where the loss is convex in eta, Fisher scoring elsewhere.

Each step solves H d = -g (Cholesky; an eigen pseudo-solve when the Cholesky
factor is not finite), then halves the step until the objective does not
increase, as R's glm.fit does for a non-finite deviance; once the decrement is at
rounding level (below sqrt(eps) max(|f|, 1)) a finite step is taken whole. It
stops when the step is below xtol * (1 + max|x|) (the criterion that still works in
float32, where the objective resolves coefficients only to about sqrt(eps)), or the
Newton decrement g' H^{-1} g (twice the predicted decrease of the objective) is
below tol * max(|f|, 1), or after a full step whose decrement, extrapolated one
iteration ahead (lam2_k^3 / lam2_{k-1}^2), is below it. Smooth penalties enter the
gradient and Hessian; L1 does not (use ProximalGradient or CoordinateDescent).

The step halving, the stopping rule, the status and the tolerances are
`linjax.solvers.newton_step`'s, which `fit_batch` and `fit_streaming` call too.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from linjax._pytree import pytree_dataclass, replace, static_field
from linjax.solvers._common import require_smooth, require_unbounded
from linjax.solvers.engine import AbstractSolver, iterate
from linjax.solvers.gram import prefers_single
from linjax.solvers.linalg import (  # noqa: F401 (solve_psd & co: re-exported, as before)
    PIVOT_FLOOR_F64,
    cholesky_or_eigen,
    pivot_floor,
    solve_psd,
    solve_psd_or_nan,
)
from linjax.solvers.newton_step import (  # noqa: F401 (default_tols, extrapolated_stop: re-exported)
    damped_step,
    damping,
    default_tols,
    extrapolated_stop,
    newton_status,
    resolve_tols,
    stopping_rule,
)


def solve_system(H, rhs, fallback=True):
    """(x, singular) with H x = rhs: `solve_psd` for an array (`solve_psd_or_nan`, NaN where
    singular, when not fallback), the Schur-complement solve for a design's
    `linjax.designs.block_solve.ArrowHessian`."""
    if hasattr(H, "add_diagonal"):  # an ArrowHessian (imported lazily: designs import this)
        return H.solve(rhs)
    return solve_psd(H, rhs) if fallback else solve_psd_or_nan(H, rhs)


class NewtonState(NamedTuple):
    value: jax.Array
    decrement: jax.Array
    step_size: jax.Array
    converged: jax.Array
    stalled: jax.Array
    singular: jax.Array
    single: jax.Array = False  # the next Hessian's products in float32 (precision="mixed")
    eta: object = None  # a GLM's linear predictor at the iterate (dropped from FitResult.info)
    start: object = None  # irls_start: true before the first step (dropped from FitResult.info)


@pytree_dataclass
class Newton(AbstractSolver):
    """Newton / IRLS with step halving.

    fisher: None = exact Newton for canonical links (where it equals Fisher scoring) and,
    for non-canonical links, the observed curvature of each observation where it is
    positive with the expected one elsewhere ("auto" of `eta_derivatives`: exact, hence
    quadratically convergent, Newton wherever the loss is convex in eta); True forces
    Fisher scoring (R's glm), False the observed curvature throughout.
    tol: decrement tolerance relative to max(|objective|, 1); xtol: step tolerance relative
    to 1 + max|x|. None picks them from the dtype (float64: 1e-20, 1e-10; float32: 1e-12, 1e-6).
    precision: "full" forms the Hessian in the data's dtype; "mixed" (GLMs with float64 data)
    forms its products in float32 (`gram.weighted_products`, about 2x faster) while the
    gradient, objective and stopping tests stay in float64, and returns to "full" for good
    after a step that is singular, rejected, or, near the optimum (decrement <= 1e-6 |f|),
    shrinks the decrement by less than 100x (the linear rate of an inexact Hessian, about
    cond(H) * 1e-7, showing). "auto": "mixed" where one Hessian costs n k^2 >=
    `gram.SINGLE_MIN_WORK` multiply-adds (k coefficients), else "full".
    irls_start: the loop's first pass computes R's start (`linjax.starting.initial_params`)
    from params at zero (a single-response GLM), so the program forms its Hessians and
    solves in one place instead of two (about a fifth less to compile). `lj.fit` sets it
    when no `init` is given; n_iter and max_iter count the Newton steps after the start.
    schur: for a design with a categorical block (`linjax.designs`), solve each step through
    the Schur complement of the categorical's diagonal block (`designs.block_solve`: O(L q^2)
    for L levels and q other coefficients, the (k, k) Hessian never formed); False forms
    and solves the whole system as for a dense X. Same steps either way (to rounding).
    eigen_fallback: a singular Hessian (a failed Cholesky pivot, `solve_psd`) is solved in
    the program by its eigendecomposition. False leaves that out of the program (smaller,
    and without LAPACK: see `linalg.LOOP_CHOLESKY_MAX`): a singular (dense) Hessian ends the
    loop with a NaN objective, status NON_FINITE and the last iterate, for a caller that
    then runs the fallback's program (`lj.fit` does, outside a caller's jit).
    """

    tol: object = None
    xtol: object = None
    max_iter: int = static_field(default=100)
    fisher: object = static_field(default=None)
    max_halvings: int = static_field(default=40)
    precision: str = static_field(default="auto")
    irls_start: bool = static_field(default=False)
    schur: bool = static_field(default=True)
    eigen_fallback: bool = static_field(default=True)
    name = "newton"

    def _arrow(self, problem):
        """Whether the step solves through the Schur complement (static; module docstring)."""
        return self.schur and getattr(problem, "arrow_hessian", False)

    def _mixed(self, problem):
        """Whether this problem starts with float32 Hessian products (static)."""
        if self.precision not in ("auto", "full", "mixed"):
            raise ValueError(f"precision: expected 'auto', 'full' or 'mixed', got "
                             f"{self.precision!r}.")
        X = getattr(problem, "X", None)
        if (self.precision == "full" or not getattr(problem, "dense_rows", False)
                or X.dtype != jnp.float64 or hasattr(X, "weighted_products")):  # a design: full
            return False
        if self.precision == "mixed":
            return True
        k = (X.shape[1] + 1) * ((problem.family.n_classes or 2) if problem.multiclass else 1)
        return prefers_single(X, k)

    def _fisher(self, problem):
        if self.fisher is not None:
            return self.fisher
        family = getattr(problem, "family", None)
        if family is None or family.is_canonical:
            return False
        return "auto"

    def _starts_in_loop(self, problem):
        """irls_start on a problem that has R's start (a single-response dense-row GLM)."""
        if not self.irls_start:
            return False
        if (not getattr(problem, "dense_rows", False) or not hasattr(problem, "family")
                or problem.multiclass):
            raise ValueError("solver: Newton(irls_start=True) needs a single-response GLM; "
                             "leave irls_start at False and pass starting params.")
        return True

    def minimise(self, problem, params):
        if not self._starts_in_loop(problem):
            return iterate(self, problem, params)
        sol = iterate(replace(self, max_iter=self.max_iter + 1), problem, params)
        return sol._replace(n_iter=jnp.maximum(sol.n_iter - 1, 0))

    def init(self, problem, params):
        require_smooth(problem, "Newton")
        require_unbounded(problem, "Newton")
        start = None
        if self._starts_in_loop(problem):  # params are zero; the value is the start's, later
            eta, start = problem.eta_at_zero(), jnp.asarray(True)
            value = jnp.zeros((), eta.dtype)
        else:
            eta = problem.eta(params) if getattr(problem, "dense_rows", False) else None
            value = problem.value(params) if eta is None else problem.value_at(params, eta)
        false = jnp.asarray(False)
        return NewtonState(value, jnp.asarray(jnp.inf, value.dtype), jnp.ones((), value.dtype),
                           false, false, false, jnp.asarray(self._mixed(problem)), eta, start)

    def step(self, problem, params, state):
        mixed = self._mixed(problem)
        extra = (state.single,) if mixed else ()
        cached = state.eta is not None  # static: a GLM carries eta from step to step
        first = state.start  # irls_start: None, or true for the pass that computes the start
        keywords = {"eta": state.eta} if cached else {}
        if first is not None:
            keywords["irls_start"] = first
        if self._arrow(problem):
            keywords["arrow"] = True
        value, grad, hess = problem.newton_system(params, self._fisher(problem), *extra,
                                                  **keywords)
        fallback = self.eigen_fallback or hasattr(hess, "add_diagonal")  # (static)
        direction, singular = solve_system(hess, -grad, fallback)
        decrement = -jnp.dot(grad, direction)
        x = problem.to_vector(params)
        tol, xtol = resolve_tols(self.tol, self.xtol, value.dtype)
        scale, slack, at_floor = damping(value, decrement)

        if cached:
            delta = problem.eta_change(direction, params)

            def trial(t):
                return problem.value_at(problem.from_vector(x + t * direction, params),
                                        state.eta + t * delta), ()
        else:
            def trial(t):
                return problem.value(problem.from_vector(x + t * direction, params)), ()

        # (the damped step, `newton_step.damped_step`; a finite step is taken whole at a
        # rounding-level decrement, and always on the start's pass)
        halvings = self.max_halvings if first is None else jnp.where(first, 0, self.max_halvings)
        if not fallback:  # a NaN direction: no halving can help
            halvings = jnp.where(singular, 0, halvings)
        t, f_t, _, accepted = damped_step(trial, value, slack, halvings, trial(1.0),
                                          whole=at_floor if first is None else at_floor | first)
        converged, stalled = stopping_rule(decrement, state.decrement, t, direction, x, accepted,
                                           at_floor, scale, tol, xtol)
        new_x = jnp.where(accepted, x + t * direction, x)
        new_params = problem.from_vector(new_x, params)
        # A rejected step in float32 products is not a failure: the next step is in full
        # precision (below).
        stalled = stalled & ~state.single
        new_value = jnp.where(accepted, f_t, value)
        single = state.single
        if mixed:
            slow = (t == 1) & (decrement <= 1e-6 * scale) & (decrement > 1e-2 * state.decrement)
            single = single & accepted & ~singular & ~slow
        new_eta = jnp.where(accepted, state.eta + t * delta, state.eta) if cached else None
        if first is not None:  # the start's pass: R's start, then Newton from it
            new_params, new_eta, new_value = jax.lax.cond(
                first, lambda: problem.irls_start_point(problem.from_vector(x + direction, params),
                                                        state.eta + delta),
                lambda: (new_params, new_eta, new_value))
            decrement = jnp.where(first, jnp.inf, decrement)
            t = jnp.where(first, 1.0, t).astype(value.dtype)
            converged, stalled = converged & ~first, stalled & ~first
            single = jnp.where(first, state.single, single)
            first = jnp.zeros_like(first)
        if not fallback:  # unsolved: the engine stops at the last iterate
            new_value = jnp.where(singular, jnp.nan, new_value)
        return new_params, NewtonState(new_value, decrement, t, converged, stalled, singular,
                                       single, new_eta, first)

    def terminate(self, problem, params, state):
        return state.converged | state.stalled, newton_status(state.stalled, state.singular)
