"""`fit_blocked`: one GLM on a tall X with sums accumulated over row blocks.

X is viewed as (n_blocks, block_size, p) (padded with zero-weight rows) and every
pass over the data is a `lax.scan` over the blocks, so besides X itself the working
memory is O(p^2 + block_size * p) instead of the O(n p) temporaries of the one-shot
X' diag(w) X. Newton (IRLS) runs in the solver engine unchanged, on a problem whose
value, gradient and Hessian are those block sums (`linjax.scale.blocks`); least
squares is a tall-skinny QR carried through the scan (accurate: X'X is never formed).
The answer is `lj.fit`'s.
"""


import jax
import jax.numpy as jnp

from linjax import _programs, inputs, validation
from linjax._pytree import pytree_dataclass
from linjax.families import Gaussian, get_family
from linjax.fit import FitResult, choose_solver
from linjax.penalties import NoPenalty
from linjax.scale import blocks
from linjax.scale.streaming import tsqr_solve
from linjax.solvers import LeastSquares, Newton
from linjax.solvers.lstsq import check_applicable
from linjax.solvers.problem import GLMProblem
from linjax.solvers.status import Status, code
from linjax.starting import keep_finite


@pytree_dataclass
class BlockedGLMProblem(GLMProblem):
    """`GLMProblem` over row blocks: X (nb, b, p), y / weights / offset (nb, b).

    `weights` are not normalized here; `total` is their sum. Same value, gradient,
    Hessian and coordinates as `GLMProblem` on the unblocked data.
    """

    total: jax.Array = None
    dense_rows = False  # X is (nb, b, p): no float32 curvature, no eta carried by Newton

    def _data(self):
        return (self.X, self.y, self.weights, self.offset)

    def value(self, params):
        B = self.to_vector(params)
        zero = jnp.zeros((), self.X.dtype)
        s = blocks.scan_blocks(lambda X, y, w, o: blocks.value_sum(
            B, X, y, w, o, self.family, self.fit_intercept), zero, self._data())
        return s / self.total + self.penalty.value(params["coef"])

    def newton_system(self, params, fisher=False):
        B = self.to_vector(params)
        k = B.shape[0]
        dtype = self.X.dtype
        init = (jnp.zeros((), dtype), jnp.zeros((k,), dtype), jnp.zeros((k, k), dtype))
        f, g, H = blocks.scan_blocks(lambda X, y, w, o: blocks.newton_sums(
            B, X, y, w, o, self.family, fisher, self.fit_intercept), init, self._data())
        coef = params["coef"]
        pg, ph = self.penalty.smooth_grad(coef), self.penalty.smooth_hess_diag(coef)
        if self.fit_intercept:
            pg = jnp.concatenate([jnp.zeros((1,), dtype), pg])
            ph = jnp.concatenate([jnp.zeros((1,), dtype), ph])
        value = f / self.total + self.penalty.value(coef)
        return value, g / self.total + pg, H / self.total + jnp.diag(ph)

    def initial_params(self):
        """`linjax.starting.initial_params` from block sums (`blocks.start_from_sums`)."""
        p = self.X.shape[-1]
        k = p + int(self.fit_intercept)
        dtype = self.X.dtype
        init = (jnp.zeros((k, k), dtype), jnp.zeros((k,), dtype)) + (jnp.zeros((), dtype),) * 3
        sums = blocks.scan_blocks(
            lambda X, y, w, o: blocks.start_sums(X, y, w, o, self.family, self.fit_intercept),
            init, self._data())
        B, fallback = blocks.start_from_sums(
            sums, self.penalty, self.family, self.fit_intercept,
            lambda B: blocks.scan_blocks(
                lambda X, y, w, o: blocks.shift_sums(B, X, y, w, o, self.fit_intercept),
                (jnp.zeros((), dtype),) * 2, self._data()))
        like = {"coef": jnp.zeros((p,), dtype), "intercept": jnp.zeros((), dtype)}
        start, fallback = self.from_vector(B, like), self.from_vector(fallback, like)
        return keep_finite(self.value(start), start, fallback)


def to_blocks(X, y, weights, offset, block_size):
    """Pad to a multiple of block_size with zero-weight rows and reshape to blocks."""
    n, p = X.shape
    nb = -(-n // block_size)
    pad = nb * block_size - n
    dtype = X.dtype
    w = jnp.ones((n,), dtype) if weights is None else weights
    o = jnp.zeros((n,), dtype) if offset is None else offset
    X = jnp.concatenate([X, jnp.zeros((pad, p), dtype)]).reshape(nb, block_size, p)
    y = jnp.concatenate([y, jnp.broadcast_to(y[:1], (pad,))]).reshape(nb, block_size)
    w = jnp.concatenate([w, jnp.zeros((pad,), dtype)]).reshape(nb, block_size)
    o = jnp.concatenate([o, jnp.zeros((pad,), dtype)]).reshape(nb, block_size)
    return X, y, w, o


@_programs.jit(static_argnames=("fit_intercept", "block_size"))
def _fit_blocked(X, y, weights, offset, init, family, penalty, solver, fit_intercept,
                 block_size):
    n = X.shape[0]
    Xb, yb, wb, ob = to_blocks(X, y, weights, offset, block_size)
    total = jnp.sum(wb)
    if isinstance(solver, LeastSquares):
        k = X.shape[1] + int(fit_intercept)
        R = jax.lax.scan(lambda R, b: (blocks.tsqr_merge(R, *b, fit_intercept), None),
                         jnp.zeros((k + 1, k + 1), X.dtype), (Xb, yb, wb, ob))[0]
        B, value, rank = tsqr_solve(R, total, n, penalty, fit_intercept)
        params = {"coef": B[int(fit_intercept):],
                  "intercept": B[0] if fit_intercept else jnp.zeros((), X.dtype)}
        status = jnp.where(rank < k, code(Status.SINGULAR), code(Status.CONVERGED))
        status = jnp.where(jnp.isfinite(value), status, code(Status.NON_FINITE))
        return FitResult(params, value, jnp.asarray(1, jnp.int32), status, status == 0, family,
                         penalty, {"rank": rank}, fit_intercept, "lstsq")
    problem = BlockedGLMProblem(Xb, yb, wb, ob, family, penalty, fit_intercept, total=total)
    if init is None:
        params = problem.initial_params()
    else:
        params = {"coef": jnp.asarray(init["coef"], X.dtype),
                  "intercept": jnp.asarray(init.get("intercept", 0.0), X.dtype)}
    sol = solver.minimise(problem, params)
    return FitResult(sol.params, sol.value, sol.n_iter, sol.status, sol.converged, family,
                     penalty, sol.state, fit_intercept, getattr(solver, "name", ""))


def fit_blocked(X, y, family=None, penalty=None, solver="auto", weights=None, offset=None,
                fit_intercept=True, init=None, block_size=65536):
    """`lj.fit` with sums over row blocks of `block_size` rows (see the module docstring).

    solver: "auto" (least squares for Gaussian-identity with no penalty or L2, else
    Newton), "newton", "lstsq", or a `Newton` / `LeastSquares` instance.
    """
    family = Gaussian() if family is None else get_family(family)
    penalty = NoPenalty() if penalty is None else penalty
    validation.refuse_firth(penalty)
    validation.refuse_estimated_alpha(family)
    validation.check_penalty(penalty)
    validation.refuse_nonsmooth_for_irls(penalty)
    if int(block_size) != block_size or block_size < 1:
        raise ValueError(f"block_size: expected a positive integer, got {block_size!r}.")
    X, y, weights, offset = inputs.fit_inputs(X, y, family, weights, offset, penalty,
                                                  fit_intercept)
    solver = choose_solver(solver, family, penalty, X.shape)
    if isinstance(solver, LeastSquares):
        check_applicable(family, penalty)
    elif not isinstance(solver, Newton):
        raise ValueError(f"solver: fit_blocked runs Newton or LeastSquares, not "
                         f"{type(solver).__name__}; use lj.fit for other solvers.")
    block_size = int(min(block_size, X.shape[0]))
    return _fit_blocked(X, y, weights, offset, init, family, penalty, solver, fit_intercept,
                        block_size)
