"""Truncated Newton (Newton-CG): Newton directions by conjugate gradients on Hessian-vector
products, never the Hessian itself (scikit-learn's newton-cg, liblinear's TRON).

For a GLM, in the coordinates of `to_vector` (intercept first), the Hessian is
H = Z' diag(s) Z + diag(P), Z = [1, X], s_i = w_i d^2 nll_i / d eta_i^2 (the observed
curvature for a canonical link; else observed where positive, expected elsewhere, as
Newton's default) and P the penalty's curvature, so that

    H v = [sum u, X' u + P v_coef],   u = s * (X v_coef + v_0)

costs one X v and one X' u: for a sparse or categorical design its own matvec and rmatvec
(`linjax.designs`), never a (k, k) matrix. Each iteration solves H d = -g by conjugate
gradients, preconditioned by H's diagonal [sum s, (X^2)' s + P] (one more pass), to a
residual |r| <= min(0.5, sqrt|g|) |g| (the forcing sequence of Nocedal & Wright's
Algorithm 7.1: superlinear convergence), and sums X d from the products it made, so that the
line search along eta + t X d (halving from t = 1 until Armijo's decrease) makes no pass over
X. Passes over X per iteration: one for the gradient's X' r, one for the diagonal, two per
CG step. Stops when the largest gradient entry is at most `tol`, as L-BFGS.

Any other problem (a user's function) gets H v from autodiff (forward over reverse) and no
preconditioner. Smooth, unbounded, single-response problems only.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from linjax._pytree import pytree_dataclass, static_field
from linjax.families import eta_derivatives
from linjax.solvers._common import Composite, require_smooth, require_unbounded, resolve_tol
from linjax.solvers.engine import AbstractSolver
from linjax.solvers.problem import weighted_sum, weighted_terms
from linjax.solvers.status import Status, code

#: Armijo's sufficient-decrease fraction of the directional derivative.
ARMIJO = 1e-4


class NewtonCGState(NamedTuple):
    value: jax.Array
    grad: jax.Array        # the objective's gradient at the iterate (flat coordinates)
    grad_norm: jax.Array   # its largest absolute entry
    cg_steps: jax.Array    # conjugate-gradient steps (Hessian-vector products) so far
    converged: jax.Array
    stalled: jax.Array
    eta: object = None     # a GLM's linear predictor at the iterate (dropped from FitResult.info)
    start: object = None   # unused (FitResult.info drops `eta` and `start`, as Newton's)


@pytree_dataclass
class NewtonCG(AbstractSolver):
    """Truncated Newton: conjugate gradients on Hessian-vector products (module docstring).

    tol: largest absolute gradient entry at convergence (None: 1e-8 in float64, 1e-4 in
    float32). max_iter: Newton iterations; max_cg_iter: CG steps per iteration.
    precondition: scale CG by the Hessian's diagonal (one pass over X per iteration; for
    columns of very different scales, such as unbalanced categorical levels).
    """

    tol: object = None
    max_iter: int = static_field(default=100)
    max_cg_iter: int = static_field(default=200)
    max_linesearch_steps: int = static_field(default=30)
    precondition: bool = static_field(default=True)
    name = "newton_cg"

    def init(self, problem, params):
        require_smooth(problem, "NewtonCG")
        require_unbounded(problem, "NewtonCG")
        model = _model(problem, params)
        x = model.comp.flatten(params)
        eta = model.eta(x)
        value, grad = model.value_and_grad(x, eta)
        false = jnp.asarray(False)
        return NewtonCGState(value, grad, _max_abs(grad), jnp.asarray(0, jnp.int32), false,
                             false, eta)

    def step(self, problem, params, state):
        model = _model(problem, params)
        x, eta, value, grad = model.comp.flatten(params), state.eta, state.value, state.grad
        hess_vec, diag = model.curvature(x, eta, self.precondition)
        direction, eta_step, steps = _truncated_cg(hess_vec, diag, grad, self.max_cg_iter, eta)
        eps = jnp.finfo(value.dtype).eps
        scale = jnp.maximum(jnp.abs(value), 1.0)
        t, new_value, ok = _armijo(lambda t: model.value_at(x + t * direction, _along(
            eta, t, eta_step)), value, ARMIJO * (grad @ direction), 8 * eps * scale,
            self.max_linesearch_steps, value.dtype)
        x_new, eta_new = x + t * direction, _along(eta, t, eta_step)
        moved = jnp.any(x_new != x)
        accepted = ok & moved & jnp.isfinite(new_value)
        x_out = jnp.where(accepted, x_new, x)
        eta_out = None if eta is None else jnp.where(accepted, eta_new, eta)
        new_value, new_grad = model.value_and_grad(x_out, eta_out)
        grad_norm = _max_abs(new_grad)
        tol = resolve_tol(self.tol, value.dtype)
        at_floor = grad_norm <= jnp.sqrt(eps) * scale
        converged = (grad_norm <= tol) | (~accepted & at_floor)
        stalled = ~accepted & ~converged
        return model.comp.unflatten(x_out), NewtonCGState(
            new_value, new_grad, grad_norm, state.cg_steps + steps, converged, stalled, eta_out)

    def terminate(self, problem, params, state):
        status = jnp.where(state.stalled, code(Status.LINE_SEARCH_FAILED),
                           code(Status.CONVERGED))
        return state.converged | state.stalled, status


def _max_abs(v):
    return jnp.max(jnp.abs(v), initial=0.0)


def _along(eta, t, eta_step):
    return None if eta is None else eta + t * eta_step


def _model(problem, params):
    comp = Composite(problem, params)
    if comp.glm and getattr(problem, "dense_rows", False):
        if problem.multiclass:
            raise ValueError("solver: NewtonCG takes single-response families; for "
                             "Multinomial use solver='newton' or 'lbfgs'.")
        return _GLMModel(comp)
    return _FunctionModel(comp)


class _GLMModel:
    """A GLM's value, gradient and Hessian-vector products from X v and X' u, carrying eta."""

    def __init__(self, comp):
        self.comp, self.problem, self.like = comp, comp.problem, comp.like

    def eta(self, x):
        return self.problem.eta(self.comp.unflatten(x))

    def value_at(self, x, eta):
        return self.problem.value_at(self.comp.unflatten(x), eta)

    def _flat(self, coef_part, intercept_part, like_intercept):
        intercept = jnp.reshape(intercept_part, jnp.shape(like_intercept))
        return self.problem.to_vector({"coef": coef_part, "intercept": intercept})

    def value_and_grad(self, x, eta):
        """(f, df/dx) with one X' r: df/dcoef = X' r + penalty', df/dintercept = sum r."""
        problem = self.problem
        params = self.comp.unflatten(x)
        nll, g_eta, _ = eta_derivatives(problem.family, problem.y, eta)
        r = weighted_terms(problem.weights, g_eta)
        coef = params["coef"]
        value = weighted_sum(problem.weights, nll) + problem.penalty.value(coef)
        grad = self._flat(rmatvec(problem.X, r).astype(x.dtype) + problem.penalty.smooth_grad(
            coef), jnp.sum(r), params["intercept"])
        return value, grad.astype(x.dtype)

    def curvature(self, x, eta, precondition):
        """(v -> (H v, X v_coef + v_0), the diagonal of H or ones)."""
        problem, like = self.problem, self.like
        family = problem.family
        fisher = False if family.is_canonical else "auto"
        _, _, h_eta = eta_derivatives(family, problem.y, eta, fisher)
        s = weighted_terms(problem.weights, h_eta)
        coef = self.comp.unflatten(x)["coef"]
        pen = problem.penalty.smooth_hess_diag(coef)

        def hess_vec(v):
            xv = problem.eta_change(v, like)
            u = s * xv
            v_coef = self.comp.unflatten(v)["coef"]
            hv = self._flat(rmatvec(problem.X, u).astype(v.dtype) + pen * v_coef, jnp.sum(u),
                            like["intercept"])
            return hv, xv

        if not precondition:
            return hess_vec, jnp.ones_like(x)
        diag = self._flat(squared_rmatvec(problem.X, s).astype(x.dtype) + pen, jnp.sum(s),
                          like["intercept"])
        return hess_vec, jnp.where(diag > 0, diag, 1.0)


class _FunctionModel:
    """Any smooth problem: the gradient by autodiff, H v by forward over reverse."""

    def __init__(self, comp):
        self.comp = comp
        self.fun = comp.smooth_full

    def eta(self, x):
        return None

    def value_at(self, x, eta):
        return self.fun(x)

    def value_and_grad(self, x, eta):
        return jax.value_and_grad(self.fun)(x)

    def curvature(self, x, eta, precondition):
        grad = jax.grad(self.fun)

        def hess_vec(v):
            return jax.jvp(grad, (x,), (v,))[1], None

        return hess_vec, jnp.ones_like(x)


def rmatvec(X, u):
    """X' u for an array or a design (its own X' v)."""
    return X.rmatvec(u) if hasattr(X, "rmatvec") else u @ X  # not X.T @ u: XLA:CPU copies X.T


def squared_rmatvec(X, s):
    """(X^2)' s, the diagonal of X' diag(s) X, for an array or a design."""
    return X.squared_rmatvec(s) if hasattr(X, "squared_rmatvec") else s @ (X * X)


def _truncated_cg(hess_vec, diag, grad, max_steps, eta):
    """Preconditioned CG on H d = -g from d = 0 until |r| <= min(0.5, sqrt|g|) |g|.

    Returns (d, X d (None when eta is None), steps). A direction of non-positive curvature ends
    the loop; met at the first step, d is that direction (-g / diag), as in Steihaug's CG.
    """
    g_norm = jnp.sqrt(grad @ grad)
    target = jnp.minimum(0.5, jnp.sqrt(g_norm)) * g_norm
    residual = -grad
    z = residual / diag
    eta_zero = None if eta is None else jnp.zeros_like(eta)

    def cond(carry):
        _, _, r, _, _, k, done = carry
        return ~done & (jnp.sqrt(r @ r) > target) & (k < max_steps)

    def body(carry):
        d, xd, r, p, rz, k, _ = carry
        hp, xp = hess_vec(p)
        curv = p @ hp
        positive = curv > 0
        a = jnp.where(positive, rz / jnp.where(positive, curv, 1.0), 0.0)
        first = (k == 0) & ~positive   # Steihaug: no curvature at all along -g / diag
        a = jnp.where(first, 1.0, a)
        d = d + a * p
        xd = None if xd is None else xd + a * xp
        r = r - a * hp
        z = r / diag
        rz_new = r @ z
        p = z + (rz_new / rz) * p
        return d, xd, r, p, rz_new, k + 1, ~positive

    carry = (jnp.zeros_like(grad), eta_zero, residual, z, residual @ z,
             jnp.asarray(0, jnp.int32), jnp.asarray(False))
    d, xd, _, _, _, steps, _ = jax.lax.while_loop(cond, body, carry)
    return d, xd, steps


def _armijo(trial, value, slope, slack, max_halvings, dtype):
    """Halve t from 1 until trial(t) <= value + t slope + slack (slope = ARMIJO g'd < 0;
    slack: the objective's rounding, so that a step whose decrease rounding hides is taken)
    or the halvings run out. Returns (t, trial(t), accepted); a NaN trial is too high."""

    def ok(t, f_t):
        return f_t <= value + t * slope + slack

    def too_high(carry):
        t, f_t, i = carry
        return ~ok(t, f_t) & (i < max_halvings)

    def halve(carry):
        t, _, i = carry
        return t / 2, trial(t / 2), i + 1

    one = jnp.ones((), dtype)
    t, f_t, _ = jax.lax.while_loop(too_high, halve, (one, trial(one), 0))
    return t, f_t, ok(t, f_t)
