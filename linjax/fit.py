"""`fit`: one GLM, from validated data to a `FitResult`, under jit, vmap and grad.

solver="auto" picks (documented rule; k = number of coefficients, p * K for Multinomial):
  - coefficient bounds: `CoordinateDescent` when k <= 500 and single-response, else
    `ProximalGradient`;
  - L1, elastic net or group lasso (non-smooth): `CoordinateDescent` (glmnet's method) when
    k <= 500 and single-response, else `ProximalGradient` (FISTA; wide or multinomial);
  - Gaussian with the identity link and no penalty or L2: `LeastSquares` (closed form);
  - any other smooth problem with k <= 500: `Newton` (IRLS / Fisher scoring);
  - wider smooth problems: `LBFGS` (two passes over X per iteration instead of n k^2 flops).

Names for `solver=`: "newton"/"irls", "lstsq"/"least_squares", "lbfgs", "gd"/
"gradient_descent", "sgd", "proximal"/"fista", "cd"/"coordinate_descent",
"projected_newton". Newton, LBFGS, ProjectedNewton and LeastSquares refuse L1 penalties
(ValueError naming the solvers to use). `bounds` are honoured by ProximalGradient,
CoordinateDescent, ProjectedNewton, and the projected GradientDescent and SGD.
"""


import warnings

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs, buckets, designs, implicit, inputs, validation
from linjax._pytree import replace
from linjax.designs import fitting as design_fitting
from linjax.estimability import no_finite_estimate
from linjax.families import Binomial, Gaussian, get_family
from linjax.firth import fit_firth
from linjax.fit_statistics import warn_if_rank_deficient
from linjax.model import init_params
from linjax.nb import fit_nb
from linjax.penalties import Firth, NoPenalty
from linjax.result import FitResult
from linjax.sample_weights import normalized_weights, weights_beyond_resolution
from linjax.separation import warn_if_separated
from linjax.solver_choice import AUTO_MAX_WIDTH, SOLVERS, check_solver, choose_solver  # noqa: F401
from linjax.solvers import SGD, Newton
from linjax.solvers.problem import GLMProblem
from linjax.solvers.status import Status, code
from linjax.starting import (  # noqa: F401
    initial_params,
    intercept_shift_from_sums,
    log_intercept_shift,
    multiclass_initial_params,
)

# AUTO_MAX_WIDTH, SOLVERS, check_solver and the intercept shifts (noqa: F401) are re-exported:
# linjax.fit held them before result, solver_choice, starting, sample_weights and
# estimability were split off, and `from linjax.fit import ...` keeps working.


def center_multiclass(problem, params):
    """The sum-to-zero representative of a softmax fit (see `families.Multinomial`)."""
    coef, intercept = params["coef"], params["intercept"]
    intercept = intercept - jnp.mean(intercept)
    if problem.penalty.smooth and not problem.bounded:
        coef = coef - jnp.mean(coef, axis=1, keepdims=True)
    return {"coef": coef, "intercept": intercept}


@_programs.jit(static_argnames=("fit_intercept", "start_in_loop"))
def fit_validated(X, y, weights, offset, init, family, penalty, solver, fit_intercept,
                  bounds=None, start_in_loop=False):
    """The compiled core of `fit` on validated inputs (weights None: ones; init None: R's
    start); shared with `linjax.scale`. start_in_loop (with init None and a single-response
    Newton): Newton computes R's start in its first pass (`Newton.irls_start`), so the
    program compiles one Hessian and solve instead of two. Not under vmap, where the
    pass's `lax.cond` would run both branches at every iteration."""
    if weights is None:
        weights = jnp.ones_like(y)
    lower, upper = (None, None) if bounds is None else bounds
    problem = GLMProblem(X, y, normalized_weights(weights), offset, family, penalty,
                         fit_intercept, lower, upper)
    multiclass = problem.multiclass
    if start_in_loop and init is None and isinstance(solver, Newton) and not multiclass:
        solver = replace(solver, irls_start=True)
        params = init_params(X.shape[1], X.dtype)
    elif init is None:
        params = multiclass_initial_params(problem) if multiclass else initial_params(problem)
    else:
        coef = jnp.asarray(init["coef"], X.dtype)
        params = {"coef": coef,
                  "intercept": jnp.broadcast_to(jnp.asarray(init.get("intercept", 0.0), X.dtype),
                                                coef.shape[1:])}
        if not fit_intercept:
            params["intercept"] = jnp.zeros_like(params["intercept"])
    if problem.bounded:
        params = problem.project(params)
    sol = implicit.minimise(solver, problem, params)
    out_params, value = sol.params, sol.value
    if multiclass:
        out_params = center_multiclass(problem, out_params)
        value = problem.value(out_params)
    info = sol.state
    if getattr(info, "eta", None) is not None:  # Newton's per-observation cache: not a result
        info = info._replace(eta=None, start=None)
    status = jnp.where(weights_beyond_resolution(weights) & (sol.status == Status.CONVERGED),
                       code(Status.SINGULAR), sol.status)
    status = jnp.where(no_finite_estimate(family, y, weights, fit_intercept),
                       code(Status.NO_FINITE_ESTIMATE), status)
    return FitResult(out_params, value, sol.n_iter, status, status == Status.CONVERGED, family,
                     penalty, info, fit_intercept, getattr(solver, "name", ""))


#: The names tests, benchmarks and linjax.scale.batch used before these became public.
_fit = fit_validated


def check_bounds(bounds, p, dtype):
    """(lower, upper) as arrays of shape () or (p,), or a ValueError naming the problem."""
    if not (isinstance(bounds, tuple | list) and len(bounds) == 2):
        raise ValueError("bounds: expected a pair (lower, upper) of scalars or per-coefficient "
                         "arrays; use -np.inf / np.inf (or None) for no bound on a side.")
    out = []
    for side, b, fill in (("lower", bounds[0], -np.inf), ("upper", bounds[1], np.inf)):
        b = fill if b is None else b
        arr = validation.as_numeric(f"bounds {side}", b)  # refuses complex and non-numbers
        arr = arr if validation.is_traced(arr) else np.asarray(arr, dtype=float)
        if arr.ndim not in (0, 1) or (arr.ndim == 1 and arr.shape[0] != p):
            raise ValueError(f"bounds: {side} must be a scalar or have shape ({p},), got shape "
                             f"{tuple(arr.shape)}.")
        if not validation.is_traced(arr) and np.any(np.isnan(arr)):
            raise ValueError(f"bounds: {side} contains NaN.")
        out.append(jnp.asarray(arr, dtype))
    lo, hi = out
    if not (validation.is_traced(lo) or validation.is_traced(hi)) and np.any(
            np.asarray(lo) > np.asarray(hi)):
        raise ValueError("bounds: some lower bound exceeds its upper bound.")
    return lo, hi


_check_bounds = check_bounds


def fit(X, y, family=None, penalty=None, solver="auto", weights=None, offset=None,
        fit_intercept=True, init=None, bounds=None):
    """Fit a GLM: minimise sum_i w_i nll_i / sum_i w_i + penalty(coef) (docs/objective.md).

    X: (n, p); y: (n,); family: a `linjax.families` instance or name (default Gaussian);
    penalty: a `linjax.penalties` instance (default none); solver: "auto", a name or a
    `linjax.solvers` instance; weights: sample weights (binomial: number of trials);
    offset: added to the linear predictor; init: starting params {"coef", "intercept"}.
    bounds: (lower, upper) on the coefficients (never the intercept), scalars or (p,)
    arrays, None or +-inf for an open side; e.g. (0, None) for non-negativity. Needs
    solver "auto", "cd", "proximal", "projected_newton", "gd" or "sgd". Multinomial: y
    holds labels 0..K-1, coef is (p, K) and intercept (K,) (sum-to-zero convention, see
    `families.Multinomial`).
    Returns a `FitResult`. Works under `jax.jit` and `jax.vmap`.
    """
    family = Gaussian() if family is None else get_family(family)
    penalty = NoPenalty() if penalty is None else penalty
    if isinstance(penalty, Firth):  # Firth's bias reduction: linjax.firth
        return fit_firth(X, y, family, weights, offset, fit_intercept, init,
                         _firth_solver(solver, bounds))
    if family.estimates_alpha:  # NegativeBinomial(alpha=None): linjax.nb
        if bounds is not None:
            raise ValueError("bounds: NegativeBinomial(alpha=None) estimates alpha without "
                             "coefficient bounds; fix alpha (NegativeBinomial(alpha=...)) to "
                             "fit with bounds.")
        return fit_nb(X, y, family, penalty, weights, offset, fit_intercept, init, solver)
    validation.check_penalty(penalty)
    X, y, weights, offset = inputs.fit_inputs(X, y, family, weights, offset, penalty,
                                                  fit_intercept)
    if family.multiclass and family.n_classes is None:
        if validation.is_traced(y):
            raise ValueError("family: Multinomial(n_classes=K) is needed under jit/vmap, where "
                             "the labels are traced.")
        y_np = np.asarray(y)
        family = replace(family, n_classes=int(y_np.shape[1] if y_np.ndim == 2
                                               else y_np.max() + 1))
    validation.check_penalty_size(penalty, X.shape[1])
    validation.check_init(init, X.shape[1], family.n_classes if family.multiclass else None)
    if bounds is not None:
        bounds = check_bounds(bounds, X.shape[1], X.dtype)
    structured = designs.is_design(X)  # sparse / categorical: linjax.designs.fitting
    if structured:
        solver = design_fitting.solver_for(solver, family, penalty, X.shape,
                                            bounds is not None, choose_solver,
                                            design_fitting.diagonal_width(X))
    else:
        solver = choose_solver(solver, family, penalty, X.shape, bounded=bounds is not None)
    validation.check_solver_params(solver)
    padded = (X, y, weights, offset) if isinstance(solver, SGD) or structured else \
        buckets.pad_fit_inputs(X, y, weights, offset)  # SGD draws its batches from the rows
    traced = any(validation.is_traced(a) for a in (X, y, weights, offset))
    result = _fit_eigen_on_demand(padded, init, family, penalty, solver, fit_intercept,
                                  bounds, traced, structured)
    _warn_if_weights_unresolved(weights)
    X = design_fitting.dense_for_checks(X)  # None: a large design skips the next two
    if X is not None:
        _warn_if_separated(result, X, y, weights, offset, family, penalty)
        _warn_if_rank_deficient(result, X, y, weights, offset, family, penalty)
    return result


def _fit_eigen_on_demand(padded, init, family, penalty, solver, fit_intercept, bounds, traced,
                         structured):
    """`fit_validated`; eager dense Newton fits first run the program without the eigen
    fallback (`Newton(eigen_fallback=False)`: no LAPACK call, so lowering it imports no scipy,
    and less to compile), and only when that stopped on a singular Hessian (status
    NON_FINITE) the one with it, from the start: the answer is then the latter program's.
    Traced inputs (a caller's jit, vmap or grad) and designs: the one program, as given."""
    leaves = jax.tree_util.tree_leaves((padded, init, family, penalty, solver, bounds))
    if (traced or structured or not (isinstance(solver, Newton) and solver.eigen_fallback)
            or any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)):
        return fit_validated(*padded, init, family, penalty, solver, fit_intercept, bounds,
                             start_in_loop=not traced)  # a caller's vmap: see fit_validated
    result = fit_validated(*padded, init, family, penalty, replace(solver, eigen_fallback=False),
                           fit_intercept, bounds, start_in_loop=True)
    if int(np.asarray(result.status)) != Status.NON_FINITE:
        return result
    return fit_validated(*padded, init, family, penalty, solver, fit_intercept, bounds,
                         start_in_loop=True)


def _firth_solver(solver, bounds):
    """Firth's fit runs Newton on its own objective: None (its default) for "auto", "newton"
    or "irls", a `Newton` instance as given; other solvers and bounds are refused, never
    dropped."""
    if bounds is not None:
        raise ValueError("bounds: Firth() (linjax.firth) does not take coefficient bounds; "
                         "fit without bounds, or use an L2 penalty with bounds.")
    if isinstance(solver, str) and solver.lower() in ("auto", "newton", "irls"):
        return None
    if isinstance(solver, Newton):
        return solver
    raise ValueError(f"solver: Firth() (linjax.firth) is fitted by Newton, got {solver!r}; use "
                     "solver='auto' or 'newton', or a linjax.solvers.Newton instance.")


def _warn_if_rank_deficient(result, X, y, weights, offset, family, penalty):
    """Eager unpenalized fits the solver found singular: a RankWarning naming the aliased
    columns (`linjax.inference.warn_if_rank_deficient`, R's test). Skipped under jit/vmap."""
    if (not isinstance(penalty, NoPenalty) or family.multiclass
            or any(validation.is_traced(a) for a in (X, y, weights, offset, result.status))
            or int(np.asarray(result.status)) != Status.SINGULAR):
        return
    warn_if_rank_deficient(result, X, y, weights, offset, stacklevel=3)


def _warn_if_weights_unresolved(weights):
    """Eager: say why a fit with weights spanning more than 1 / eps^2 reports SINGULAR."""
    if weights is None or validation.is_traced(weights):
        return
    w = np.asarray(weights)
    if not bool(weights_beyond_resolution(jnp.asarray(w))):
        return

    ratio = w.max() / w[w > 0].min()
    warnings.warn(
        f"weights: the largest weight is {ratio:.3g} times the smallest positive one, beyond "
        f"what {w.dtype} resolves (1/eps^2 = {1 / np.finfo(w.dtype).eps ** 2:.3g}): the rows "
        "with the small weights cannot influence the fit, so it is reported as singular "
        "(status 4). Bring the weights' range within that, or drop the rows whose weights are "
        "negligible.", RuntimeWarning, stacklevel=3)


def _warn_if_separated(result, X, y, weights, offset, family, penalty):
    """Eager binomial fits without a penalty: warn when the data separate the classes
    (`linjax.separation.warn_if_separated`). Skipped under jit/vmap (traced inputs)."""
    if not isinstance(family, Binomial) or not isinstance(penalty, NoPenalty) or any(
            validation.is_traced(a) for a in (X, y, weights, offset, result.params["coef"])):
        return
    if isinstance(X, jax.Array) and all(d.platform == "cpu" for d in X.devices()):
        X = np.asarray(X)  # screened by a host product: no program compiled for most fits
    warn_if_separated(X, y, weights, result.params, offset, family, result.fit_intercept,
                      stacklevel=4)
