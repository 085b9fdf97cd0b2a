"""`fit`: one GLM, from validated data to a `FitResult`, under jit, vmap and grad.

solver="auto" picks (documented rule):
  - Gaussian with the identity link and no penalty or L2: `LeastSquares` (closed form);
  - any other smooth problem: `Newton` (IRLS / Fisher scoring);
  - L1 or elastic net: raises until a proximal or coordinate solver is available.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from linjax import links, validation
from linjax._pytree import pytree_dataclass, static_field
from linjax.families import Gaussian, get_family
from linjax.model import init_params
from linjax.penalties import L2, NoPenalty
from linjax.solvers import LeastSquares, Newton, message
from linjax.solvers.newton import solve_psd
from linjax.solvers.problem import GLMProblem

SOLVERS = {"newton": Newton, "irls": Newton, "lstsq": LeastSquares,
           "least_squares": LeastSquares}


@pytree_dataclass
class FitResult:
    """A fitted GLM: a pytree, so it passes through jit and vmap and can be saved.

    params: {"coef", "intercept"}; objective: the objective at params (API.md section 1);
    n_iter, status (0 = converged, see `linjax.solvers.Status`), converged;
    family, penalty: as fitted; info: the solver's final state (diagnostics such as
    the Newton decrement or the least-squares rank); fit_intercept, solver: static.
    """

    params: dict
    objective: jax.Array
    n_iter: jax.Array
    status: jax.Array
    converged: jax.Array
    family: object
    penalty: object
    info: object = None
    fit_intercept: bool = static_field(default=True)
    solver: str = static_field(default="")

    @property
    def coef(self):
        return self.params["coef"]

    @property
    def intercept(self):
        return self.params["intercept"]

    @property
    def message(self):
        """The status message (host-side; for batched results, one per problem)."""
        status = np.asarray(self.status)
        if status.ndim == 0:
            return message(status)
        return [message(s) for s in status.reshape(-1)]


def choose_solver(solver, family, penalty, shape=None):
    """A solver instance from "auto", a name, or an instance (see the module docstring)."""
    if not isinstance(solver, str):
        return solver
    key = solver.lower()
    if key == "auto":
        if isinstance(family, Gaussian) and isinstance(family.link, links.Identity) and \
                isinstance(penalty, NoPenalty | L2):
            return LeastSquares()
        if penalty.smooth:
            return Newton()
        raise ValueError(
            f"penalty: {type(penalty).__name__} is not smooth; Newton cannot handle L1. Use "
            "solver='proximal' (ProximalGradient) or solver='cd' (CoordinateDescent)."
        )
    if key not in SOLVERS:
        raise ValueError(f"solver: unknown solver {solver!r}; choose 'auto' or one of "
                         f"{sorted(SOLVERS)}, or pass a linjax.solvers instance.")
    return SOLVERS[key]()


def initial_params(problem):
    """R's first IRLS iteration: weighted least squares of link(mu0) on X.

    mu0 is the family's starting mean from y; the weights are the Fisher weights
    at mu0. Falls back to an intercept-only start when that start is not finite.
    """
    family, X, w = problem.family, problem.X, problem.weights
    dtype = X.dtype
    mu0 = family.starting_mu(problem.y)
    eta0 = family.link.link(mu0)
    offset = jnp.zeros_like(eta0) if problem.offset is None else problem.offset
    z = eta0 - offset
    fisher_w = family.link.inverse_deriv(eta0) ** 2 / family.variance(mu0)
    sw = jnp.where(jnp.isfinite(fisher_w), w * fisher_w, 0.0)
    p = X.shape[1]
    ridge = problem.penalty.smooth_hess_diag(jnp.zeros((p,), dtype))
    hess = X.T @ (sw[:, None] * X) + jnp.diag(ridge)
    rhs = X.T @ (sw * z)
    if problem.fit_intercept:
        xs = X.T @ sw
        hess = jnp.block([[jnp.sum(sw)[None, None], xs[None, :]], [xs[:, None], hess]])
        rhs = jnp.concatenate([jnp.sum(sw * z)[None], rhs])
    beta, _ = solve_psd(hess, rhs)
    start = problem.from_vector(beta, init_params(p, dtype))
    mean_mu = jnp.sum(w * mu0)
    fallback = init_params(p, dtype)
    if problem.fit_intercept:
        fallback["intercept"] = family.link.link(mean_mu) - jnp.sum(w * offset)
    ok = jnp.isfinite(problem.value(start))
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), start, fallback)


@functools.partial(jax.jit, static_argnames=("fit_intercept",))
def _fit(X, y, weights, offset, init, family, penalty, solver, fit_intercept):
    if weights is None:
        weights = jnp.ones_like(y)
    problem = GLMProblem(X, y, weights / jnp.sum(weights), offset, family, penalty,
                         fit_intercept)
    if init is None:
        params = initial_params(problem)
    else:
        params = {"coef": jnp.asarray(init["coef"], X.dtype),
                  "intercept": jnp.asarray(init.get("intercept", 0.0), X.dtype)}
        if not fit_intercept:
            params["intercept"] = jnp.zeros_like(params["intercept"])
    sol = solver.minimise(problem, params)
    return FitResult(sol.params, sol.value, sol.n_iter, sol.status, sol.converged, family,
                     penalty, sol.state, fit_intercept, getattr(solver, "name", ""))


def fit(X, y, family=None, penalty=None, solver="auto", weights=None, offset=None,
        fit_intercept=True, init=None, bounds=None):
    """Fit a GLM: minimise sum_i w_i nll_i / sum_i w_i + penalty(coef) (API.md section 1).

    X: (n, p); y: (n,); family: a `linjax.families` instance or name (default Gaussian);
    penalty: a `linjax.penalties` instance (default none); solver: "auto", a name or a
    `linjax.solvers` instance; weights: sample weights (binomial: number of trials);
    offset: added to the linear predictor; init: starting params {"coef", "intercept"}.
    Returns a `FitResult`. Works under `jax.jit` and `jax.vmap`.
    """
    family = Gaussian() if family is None else get_family(family)
    penalty = NoPenalty() if penalty is None else penalty
    if bounds is not None:
        raise NotImplementedError(
            "bounds: coefficient bounds need a projected solver (ProximalGradient or "
            "CoordinateDescent), which this version does not provide yet."
        )
    validation.check_penalty(penalty)
    X, y, weights, offset = validation.fit_inputs(X, y, family, weights, offset, penalty,
                                                  fit_intercept)
    solver = choose_solver(solver, family, penalty, X.shape)
    return _fit(X, y, weights, offset, init, family, penalty, solver, fit_intercept)
