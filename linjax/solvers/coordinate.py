"""Coordinate descent for elastic net GLMs: glmnet's method.

Outer loop (one engine step): the IRLS quadratic model of the smooth part at
the current coefficients beta0, with gradient g and Hessian H = Z' W Z (+ ridge)
from `GLMProblem.newton_system` (Z = [1, X], the Gram / covariance matrix):

    Q(beta) = g'(beta - beta0) + (beta - beta0)' H (beta - beta0) / 2 + sum_j l_j |beta_j|

Inner loop: cyclic coordinate minimisation of Q with covariance updates. With
u = H beta kept up to date (one column of H per changed coordinate, O(p)), the
update of coordinate j is closed form,

    beta_j <- clip(S(H_jj beta_j - a_j - u_j, l_j) / H_jj, lower_j, upper_j),  a = g - H beta0,

S the soft-threshold (the clip is exact for a one-dimensional convex problem:
bounds cost nothing). Active set: a full sweep, then sweeps over the nonzero
(and unpenalized) coordinates until they settle, then a full sweep again; the
inner loop ends when a full sweep changes nothing beyond tol / 10. The outer
step then halves towards beta0 until the true objective does not increase (as
Newton's step halving). Converged when the quadratic model's minimiser moves
every coordinate by at most tol in the Hessian's scale (max_j sqrt(H_jj) |d_j|,
comparable to a gradient norm) -- at the optimum that move is exactly zero.

`GroupLasso`: block coordinate descent -- each group takes a proximal-gradient
step on its block of Q with step 1 / L_g (L_g: Gershgorin bound on the block's
largest eigenvalue), which is block soft-thresholding; ungrouped coordinates
and the intercept keep the scalar update.

Single-response GLMs (`(p,)` coefficients); for Multinomial use Newton, LBFGS or
ProximalGradient.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax._pytree import pytree_dataclass, static_field
from linjax.penalties import soft_threshold
from linjax.solvers._common import halving_search, is_glm, resolve_tol
from linjax.solvers.engine import AbstractSolver
from linjax.solvers.status import Status, code


class CDState(NamedTuple):
    value: jax.Array
    change: jax.Array
    sweeps: jax.Array
    step_size: jax.Array
    converged: jax.Array
    stalled: jax.Array


def _bound_vectors(problem, d, k, dtype):
    """Lower / upper bounds over the flat vector (intercept unbounded)."""
    p = d - k
    lo = jnp.full((p,), -jnp.inf, dtype) if problem.lower is None else jnp.broadcast_to(
        jnp.asarray(problem.lower, dtype), (p,))
    hi = jnp.full((p,), jnp.inf, dtype) if problem.upper is None else jnp.broadcast_to(
        jnp.asarray(problem.upper, dtype), (p,))
    free = jnp.full((k,), jnp.inf, dtype)
    return jnp.concatenate([-free, lo]), jnp.concatenate([free, hi])


def _scalar_update(H, a, lam, lo, hi, beta, u, j):
    """Exact minimisation of Q over coordinate j; returns (beta, u, weighted change)."""
    hjj = H[j, j]
    pos = hjj > 0
    z = hjj * beta[j] - a[j] - u[j]
    new = jnp.where(pos, soft_threshold(z, lam[j]) / jnp.where(pos, hjj, 1.0), 0.0)
    new = jnp.clip(new, lo[j], hi[j])
    delta = new - beta[j]
    u = u + H[:, j] * delta
    return beta.at[j].set(new), u, jnp.sqrt(jnp.maximum(hjj, 0.0)) * jnp.abs(delta)


@pytree_dataclass
class CoordinateDescent(AbstractSolver):
    """glmnet-style coordinate descent (IRLS outer loop, covariance updates, active sets).

    tol: largest Hessian-scaled coefficient move at convergence (None: 1e-8 in float64,
    1e-4 in float32). max_iter: outer IRLS iterations; max_sweeps: coordinate sweeps per
    outer iteration. fisher: as Newton (None = Fisher scoring for non-canonical links).
    """

    tol: object = None
    max_iter: int = static_field(default=100)
    max_sweeps: int = static_field(default=10000)
    fisher: object = static_field(default=None)
    max_halvings: int = static_field(default=40)
    name = "cd"

    def _fisher(self, problem):
        if self.fisher is not None:
            return self.fisher
        return not problem.family.is_canonical

    def init(self, problem, params):
        if not is_glm(problem):
            raise ValueError("CoordinateDescent minimises GLM problems (lj.fit); for a user "
                             "objective use LBFGS, Newton, GradientDescent or ProximalGradient.")
        if problem.multiclass:
            raise ValueError("solver: CoordinateDescent fits single-response GLMs; for "
                             "Multinomial use solver='newton', 'lbfgs' or 'proximal'.")
        if getattr(problem.penalty, "grouped", False) and problem.bounded:
            raise ValueError("bounds: GroupLasso with coefficient bounds is not supported; drop "
                             "the bounds or use an elementwise penalty.")
        value = problem.value(params)
        false = jnp.asarray(False)
        return CDState(value, jnp.asarray(jnp.inf, value.dtype), jnp.asarray(0, jnp.int32),
                       jnp.ones((), value.dtype), false, false)

    def minimise(self, problem, params):
        return super().minimise(problem, problem.project(params))

    # -- the inner loop ----------------------------------------------------------------
    def _sweep_fn(self, problem, H, a, lam, lo, hi, k):
        """sweep(beta, u, mask) -> (beta, u, max change) over the coordinates in `mask`."""
        d = H.shape[0]
        penalty = problem.penalty
        if not getattr(penalty, "grouped", False):
            def sweep(beta, u, mask):
                def body(j, c):
                    beta, u, change = c

                    def update(c):
                        beta, u, change = c
                        beta, u, dj = _scalar_update(H, a, lam, lo, hi, beta, u, j)
                        return beta, u, jnp.maximum(change, dj)

                    return jax.lax.cond(mask[j], update, lambda c: c, (beta, u, change))

                return jax.lax.fori_loop(0, d, body, (beta, u, jnp.zeros((), H.dtype)))
            return sweep

        ids, n_groups, _ = penalty.group_index()
        ids = np.concatenate([np.full(k, -1), ids])
        scalar = np.flatnonzero(ids < 0)
        members = jnp.asarray(ids[None, :] == np.arange(n_groups)[:, None], H.dtype)  # (G, d)
        gw = penalty.weights_per_group(H.dtype) * penalty.alpha
        absH = jnp.abs(H)
        # Gershgorin: lambda_max(H_gg) <= max_i sum_{j in g} |H_ij| over i in g.
        gersh = jnp.max(jnp.where(members > 0, members @ absH, 0.0) * 1.0, axis=1)
        L = jnp.maximum(gersh, jnp.finfo(H.dtype).tiny)
        scalar_idx = jnp.asarray(scalar, jnp.int32)

        def sweep(beta, u, mask):
            def scalar_body(i, c):
                beta, u, change = c
                j = scalar_idx[i]
                beta, u, dj = _scalar_update(H, a, lam, lo, hi, beta, u, j)
                return beta, u, jnp.maximum(change, dj)

            carry = jax.lax.fori_loop(0, len(scalar), scalar_body,
                                      (beta, u, jnp.zeros((), H.dtype)))

            def group_body(g, c):
                beta, u, change = c
                m = members[g]

                def update(c):
                    beta, u, change = c
                    grad = a + u
                    v = beta - grad / L[g]
                    norm = jnp.sqrt(jnp.sum(m * v * v))
                    thr = gw[g] / L[g]
                    shrink = jnp.where(norm > thr, 1.0 - thr / jnp.where(norm > 0, norm, 1.0),
                                       0.0)
                    new = jnp.where(m > 0, v * shrink, beta)
                    delta = new - beta
                    u = u + H @ delta
                    dg = jnp.max(jnp.sqrt(jnp.maximum(jnp.diag(H), 0.0)) * jnp.abs(delta))
                    return new, u, jnp.maximum(change, dg)

                active = jnp.any((m > 0) & mask)
                return jax.lax.cond(active, update, lambda c: c, (beta, u, change))

            return jax.lax.fori_loop(0, n_groups, group_body, carry)

        return sweep

    def _inner(self, problem, H, a, lam, lo, hi, beta0, k, tol):
        d = H.shape[0]
        sweep = self._sweep_fn(problem, H, a, lam, lo, hi, k)
        always = (lam <= 0) | (jnp.arange(d) < k)
        all_on = jnp.ones((d,), bool)

        def cond(c):
            _, _, _, done, sweeps = c
            return ~done & (sweeps < self.max_sweeps)

        def body(c):
            beta, u, full, _, sweeps = c
            mask = jnp.where(full, all_on, (beta != 0) | always)
            beta, u, change = sweep(beta, u, mask)
            small = change <= tol / 10
            done = small & full
            # After a full sweep: work on the active set; when it settles: a full sweep.
            full = small & ~full
            return beta, u, full, done, sweeps + 1

        beta, u, _, _, sweeps = jax.lax.while_loop(
            cond, body, (beta0, H @ beta0, jnp.asarray(True), jnp.asarray(False), 0))
        return beta, sweeps

    # -- the outer loop ----------------------------------------------------------------
    def step(self, problem, params, state):
        value, grad, H = problem.newton_system(params, self._fisher(problem))
        x0 = problem.to_vector(params)
        d = x0.shape[0]
        k = d - params["coef"].size
        dtype = x0.dtype
        lam = jnp.concatenate([jnp.zeros((k,), dtype),
                               problem.penalty.l1_strength(params["coef"]).reshape(-1)])
        lo, hi = _bound_vectors(problem, d, k, dtype)
        tol = resolve_tol(self.tol, dtype)
        a = grad - H @ x0
        beta, sweeps = self._inner(problem, H, a, lam, lo, hi, x0, k, tol)
        direction = beta - x0
        change = jnp.max(jnp.sqrt(jnp.maximum(jnp.diag(H), 0.0)) * jnp.abs(direction),
                         initial=0.0)

        scale = jnp.maximum(jnp.abs(value), 1.0)
        slack = 8 * jnp.finfo(dtype).eps * scale

        def trial(t):
            return problem.value(problem.from_vector(x0 + t * direction, params))

        t, f_t, accepted = halving_search(trial, value, slack, self.max_halvings, dtype)
        converged = change <= tol
        at_floor = change <= jnp.sqrt(jnp.finfo(dtype).eps) * scale
        stalled = ~accepted & ~at_floor & ~converged
        converged = converged | (~accepted & at_floor)
        new_x = jnp.where(accepted, x0 + t * direction, x0)
        new_value = jnp.where(accepted, f_t, value)
        return problem.from_vector(new_x, params), CDState(
            new_value, change, state.sweeps + sweeps, t, converged, stalled)

    def terminate(self, problem, params, state):
        status = jnp.where(state.stalled, code(Status.LINE_SEARCH_FAILED),
                           code(Status.CONVERGED))
        return state.converged | state.stalled, status
