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


import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs, buckets, implicit, links, validation
from linjax._pytree import pytree_dataclass, replace, static_field
from linjax.families import Gaussian, get_family
from linjax.model import init_params
from linjax.penalties import L2, NoPenalty
from linjax.solvers import (
    LBFGS,
    SGD,
    CoordinateDescent,
    GradientDescent,
    LeastSquares,
    Newton,
    ProjectedNewton,
    ProximalGradient,
    message,
)
from linjax.solvers.gram import prefers_single, weighted_products
from linjax.solvers.newton import solve_psd
from linjax.solvers.problem import GLMProblem
from linjax.solvers.status import Status, code

SOLVERS = {"newton": Newton, "irls": Newton, "lstsq": LeastSquares,
           "least_squares": LeastSquares, "lbfgs": LBFGS, "gd": GradientDescent,
           "gradient_descent": GradientDescent, "sgd": SGD, "proximal": ProximalGradient,
           "fista": ProximalGradient, "cd": CoordinateDescent,
           "coordinate_descent": CoordinateDescent, "projected_newton": ProjectedNewton}

#: Widest problem (number of coefficients) for which "auto" picks Newton or CD.
AUTO_MAX_WIDTH = 500

_NONSMOOTH_SOLVERS = (ProximalGradient, CoordinateDescent, GradientDescent)
_BOUNDED_SOLVERS = (ProximalGradient, CoordinateDescent, GradientDescent, SGD, ProjectedNewton)


@pytree_dataclass
class FitResult:
    """A fitted GLM: a pytree, so it passes through jit and vmap and can be saved.

    params: {"coef", "intercept"}; objective: the objective at params (docs/objective.md);
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


def choose_solver(solver, family, penalty, shape=None, bounded=False):
    """A solver instance from "auto", a name, or an instance (see the module docstring).

    Raises a ValueError when the chosen solver cannot handle the penalty (L1 with Newton,
    LBFGS or LeastSquares) or the bounds, naming the solvers that can.
    """
    multiclass = getattr(family, "multiclass", False)
    width = 0 if shape is None else shape[1] * ((family.n_classes or 2) if multiclass else 1)
    if isinstance(solver, str):
        key = solver.lower()
        if key == "auto":
            solver = _auto_solver(family, penalty, width, multiclass, bounded)
        elif key not in SOLVERS:
            raise ValueError(f"solver: unknown solver {solver!r}; choose 'auto' or one of "
                             f"{sorted(SOLVERS)}, or pass a linjax.solvers instance.")
        else:
            solver = SOLVERS[key]()
    check_solver(solver, penalty, bounded)
    return solver


def _auto_solver(family, penalty, width, multiclass, bounded):
    small = width <= AUTO_MAX_WIDTH and not multiclass
    if bounded or not penalty.smooth:
        return CoordinateDescent() if small else ProximalGradient()
    if isinstance(family, Gaussian) and isinstance(family.link, links.Identity) and \
            isinstance(penalty, NoPenalty | L2):
        return LeastSquares()
    return Newton() if width <= AUTO_MAX_WIDTH else LBFGS()


def check_solver(solver, penalty, bounded=False):
    """Refuse (eagerly) a solver that cannot handle a non-smooth penalty or bounds."""
    name = type(solver).__name__
    if not penalty.smooth and not isinstance(solver, _NONSMOOTH_SOLVERS):
        raise ValueError(
            f"penalty: {type(penalty).__name__} is not smooth (it has an L1 part), which "
            f"{name} cannot handle. Use solver='cd' (CoordinateDescent) or solver='proximal' "
            "(ProximalGradient); solver='gd' (proximal GradientDescent) also works."
        )
    if bounded and not isinstance(solver, _BOUNDED_SOLVERS):
        raise ValueError(
            f"bounds: {name} does not handle coefficient bounds. Use solver='cd' "
            "(CoordinateDescent), solver='proximal' (ProximalGradient) or "
            "solver='projected_newton'; solver='gd' (projected GradientDescent) also works."
        )


def initial_params(problem):
    """R's first IRLS iteration: weighted least squares of link(mu0) on X.

    mu0 is the family's starting mean from y; the weights are the Fisher weights
    at mu0. Where the family has `intercept_shift_start` (Poisson, log link), the
    intercept then moves by log(sum w y / sum w mu), its optimum given the slopes.
    Falls back to an intercept-only start when that start is not finite.
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
    hess, rhs = weighted_products(X, sw, sw * z, problem.fit_intercept, prefers_single(X))
    k = int(problem.fit_intercept)
    hess = hess.at[k:, k:].add(jnp.diag(ridge))
    beta, _ = solve_psd(hess, rhs)
    start = problem.from_vector(beta, init_params(p, dtype))
    if family.intercept_shift_start and problem.fit_intercept:
        start["intercept"] = start["intercept"] + log_intercept_shift(
            jnp.sum(w * problem.y), problem.eta(start), w)
    mean_mu = jnp.sum(w * mu0)
    fallback = init_params(p, dtype)
    if problem.fit_intercept:
        fallback["intercept"] = family.link.link(mean_mu) - jnp.sum(w * offset)
    ok = jnp.isfinite(problem.value(start))
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), start, fallback)


def log_intercept_shift(total_y, eta, w):
    """log(total_y / sum w exp(eta)): the intercept step to its optimum in a log-linear
    Poisson model, the slopes held (0 where total_y is 0, which has none)."""
    lse = jax.nn.logsumexp(eta, b=w, axis=-1)
    return jnp.where(total_y > 0, jnp.log(jnp.where(total_y > 0, total_y, 1.0)) - lse, 0.0)


def intercept_shift_from_sums(total_y, total_mu):
    """`log_intercept_shift` from the sums: log(total_y / total_mu), 0 where either is 0."""
    ok = (total_y > 0) & (total_mu > 0)
    return jnp.where(ok, jnp.log(jnp.where(ok, total_y, 1.0))
                     - jnp.log(jnp.where(ok, total_mu, 1.0)), 0.0)


def no_finite_estimate(family, y, weights, fit_intercept):
    """Whether the likelihood has no finite maximiser because, on every row of positive
    weight, y sits at the edge of its support, with an intercept (traced; a bool array).

    Count families with the log link (Poisson, NegativeBinomial, Tweedie with
    1 <= power < 2) with every y = 0: sum w mu only falls as the intercept goes to -inf.
    Binomial with a link onto (0, 1) and every y = 0 (or every y = 1): the intercept's
    optimum is -inf (+inf). The solver then stops at an arbitrary point along the way.
    """
    from linjax.families import Binomial, NBCanonicalLink, NegativeBinomial, Poisson, Tweedie

    false = jnp.asarray(False)
    if not fit_intercept or getattr(family, "multiclass", False):
        return false
    positive = weights > 0
    all_zero = jnp.all(jnp.where(positive, y == 0, True))
    if isinstance(family, Binomial) and isinstance(family.link, links.Logit | links.Probit
                                                   | links.CLogLog | links.LogLog
                                                   | links.Cauchit):
        return all_zero | jnp.all(jnp.where(positive, y == 1, True))
    if not isinstance(family.link, links.Log | NBCanonicalLink):
        return false
    if isinstance(family, Poisson | NegativeBinomial):
        return all_zero
    if isinstance(family, Tweedie):
        return all_zero & (family.power >= 1) & (family.power < 2)
    return false


def multiclass_initial_params(problem):
    """Zero coefficients and centred log class frequencies (weighted) as intercepts."""
    K = problem.family.n_classes
    X = problem.X
    params = init_params(X.shape[1], X.dtype, n_outputs=K)
    if problem.fit_intercept:
        y = problem.y
        onehot = y if y.ndim == 2 else (y[:, None] == jnp.arange(K, dtype=y.dtype))
        freq = problem.weights @ onehot.astype(X.dtype)
        log_freq = jnp.log(freq + 1.0 / (K * X.shape[0]))
        params["intercept"] = log_freq - jnp.mean(log_freq)
    return params


def center_multiclass(problem, params):
    """The sum-to-zero representative of a softmax fit (see `families.Multinomial`)."""
    coef, intercept = params["coef"], params["intercept"]
    intercept = intercept - jnp.mean(intercept)
    if problem.penalty.smooth and not problem.bounded:
        coef = coef - jnp.mean(coef, axis=1, keepdims=True)
    return {"coef": coef, "intercept": intercept}


def normalized_weights(weights):
    """w / sum(w), scaled first by the power of two that brings max(w) into [0.5, 1), so that
    the sum cannot overflow (weights of 1e308 are as good as ones). A power of two scales
    exactly; dividing by max(w) would not: XLA divides by multiplying with the reciprocal,
    and 1 / 1e308 is subnormal, flushed to 0."""
    _, exponent = jnp.frexp(jnp.max(weights, axis=-1, keepdims=True))
    unit = jnp.ldexp(weights, -exponent)
    return unit / jnp.sum(unit, axis=-1, keepdims=True)


def weights_beyond_resolution(weights):
    """Whether max(w) / min(w > 0) exceeds 1 / eps^2 of the dtype: then even sqrt(w) x_i of
    the light rows falls below the rounding of the heaviest, no factorization in this dtype
    sees them, and a fit that reports convergence would be silently wrong (traced)."""
    eps = jnp.finfo(weights.dtype).eps
    top = jnp.max(weights, axis=-1)
    low = jnp.min(jnp.where(weights > 0, weights, top[..., None]), axis=-1)
    return top > low / (eps * eps)


@_programs.jit(static_argnames=("fit_intercept",))
def _fit(X, y, weights, offset, init, family, penalty, solver, fit_intercept, bounds=None):
    if weights is None:
        weights = jnp.ones_like(y)
    lower, upper = (None, None) if bounds is None else bounds
    problem = GLMProblem(X, y, normalized_weights(weights), offset, family, penalty,
                         fit_intercept, lower, upper)
    multiclass = problem.multiclass
    if init is None:
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
        info = info._replace(eta=None)
    status = jnp.where(weights_beyond_resolution(weights) & (sol.status == Status.CONVERGED),
                       code(Status.SINGULAR), sol.status)
    status = jnp.where(no_finite_estimate(family, y, weights, fit_intercept),
                       code(Status.NO_FINITE_ESTIMATE), status)
    return FitResult(out_params, value, sol.n_iter, status, status == Status.CONVERGED, family,
                     penalty, info, fit_intercept, getattr(solver, "name", ""))


def _check_bounds(bounds, p, dtype):
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
    if type(penalty).__name__ == "Firth":  # Firth's bias reduction: linjax.firth
        from linjax.firth import fit_firth
        return fit_firth(X, y, family, weights, offset, fit_intercept, init,
                         None if isinstance(solver, str) else solver)
    if getattr(family, "alpha", 0.0) is None:  # NegativeBinomial(alpha=None): linjax.nb
        from linjax.nb import fit_nb
        return fit_nb(X, y, family, penalty, weights, offset, fit_intercept, init, solver)
    validation.check_penalty(penalty)
    X, y, weights, offset = validation.fit_inputs(X, y, family, weights, offset, penalty,
                                                  fit_intercept)
    if getattr(family, "multiclass", False) and family.n_classes is None:
        if validation.is_traced(y):
            raise ValueError("family: Multinomial(n_classes=K) is needed under jit/vmap, where "
                             "the labels are traced.")
        y_np = np.asarray(y)
        family = replace(family, n_classes=int(y_np.shape[1] if y_np.ndim == 2
                                               else y_np.max() + 1))
    validation.check_penalty_size(penalty, X.shape[1])
    validation.check_init(init, X.shape[1], family.n_classes if getattr(
        family, "multiclass", False) else None)
    if bounds is not None:
        bounds = _check_bounds(bounds, X.shape[1], X.dtype)
    solver = choose_solver(solver, family, penalty, X.shape, bounded=bounds is not None)
    validation.check_solver_params(solver)
    padded = (X, y, weights, offset) if isinstance(solver, SGD) else \
        buckets.pad_fit_inputs(X, y, weights, offset)  # SGD draws its batches from the rows
    result = _fit(*padded, init, family, penalty, solver, fit_intercept, bounds)
    _warn_if_weights_unresolved(weights)
    _warn_if_separated(result, X, y, weights, offset, family, penalty)
    _warn_if_rank_deficient(result, X, y, weights, offset, family, penalty)
    return result


def _warn_if_rank_deficient(result, X, y, weights, offset, family, penalty):
    """Eager unpenalized fits the solver found singular: a RankWarning naming the aliased
    columns (`linjax.inference.warn_if_rank_deficient`, R's test). Skipped under jit/vmap."""
    if (not isinstance(penalty, NoPenalty) or getattr(family, "multiclass", False)
            or any(validation.is_traced(a) for a in (X, y, weights, offset, result.status))
            or int(np.asarray(result.status)) != Status.SINGULAR):
        return
    from linjax.inference import warn_if_rank_deficient

    warn_if_rank_deficient(result, X, y, weights, offset, stacklevel=3)


def _warn_if_weights_unresolved(weights):
    """Eager: say why a fit with weights spanning more than 1 / eps^2 reports SINGULAR."""
    if weights is None or validation.is_traced(weights):
        return
    w = np.asarray(weights)
    if not bool(weights_beyond_resolution(jnp.asarray(w))):
        return
    import warnings

    ratio = w.max() / w[w > 0].min()
    warnings.warn(
        f"weights: the largest weight is {ratio:.3g} times the smallest positive one, beyond "
        f"what {w.dtype} resolves (1/eps^2 = {1 / np.finfo(w.dtype).eps ** 2:.3g}): the rows "
        "with the small weights cannot influence the fit, so it is reported as singular "
        "(status 4). Bring the weights' range within that, or drop the rows whose weights are "
        "negligible.", RuntimeWarning, stacklevel=3)


#: |eta| beyond which a fitted binomial probability is 0 or 1 to about 7 digits.
SEPARATION_ETA = 15.0


def _warn_if_separated(result, X, y, weights, offset, family, penalty):
    """Eager binomial fits without a penalty: warn when the data separate the classes.

    Then the maximum likelihood estimate does not exist and the solver stops at some large,
    finite coefficients that only look converged. Nothing to check unless some fitted
    |eta| > SEPARATION_ETA; then the fit's own score proves overlap in O(n p) on data that
    is not separated (`diagnostics.certify_overlap`), and only where it cannot does the
    linear program of `check_separation` (scipy) decide. Without scipy, a fitted direction
    that classifies every row is reported as complete separation, and anything else as a
    possible separation that could not be checked. Skipped under jit/vmap (traced inputs).
    """
    from linjax.families import Binomial

    if not isinstance(family, Binomial) or not isinstance(penalty, NoPenalty) or any(
            validation.is_traced(a) for a in (X, y, weights, offset, result.params["coef"])):
        return
    w = jnp.ones(y.shape, X.dtype) if weights is None else weights
    linear, score, reaches = _separation_screen(X, y, w, result.params, offset, family)
    if not bool(reaches):
        return
    import warnings

    from linjax.diagnostics import SeparationWarning, certify_overlap, check_separation

    y, w = np.asarray(y), np.asarray(w)
    if certify_overlap(X, y, np.asarray(score), w, result.fit_intercept):
        return
    try:
        kind = check_separation(X, y, fit_intercept=result.fit_intercept, weights=w).kind
    except ImportError:
        kind = _fitted_direction_separation(np.asarray(linear), y, w)
    if kind == "none":
        return
    if kind == "unchecked":
        warnings.warn(
            "fit: some fitted probabilities are 0 or 1 to 7 digits and the fit's score does not "
            "prove that the classes overlap, so they may be separated (then the maximum "
            "likelihood estimate does not exist and the coefficients are arbitrary large "
            "numbers). The exact check, linjax.diagnostics.check_separation, was skipped: it "
            "needs scipy (pip install scipy). If separated, add a penalty (L2) or use Firth's "
            "bias-reduced fit (penalty=linjax.penalties.Firth()).",
            SeparationWarning, stacklevel=3)
        return
    warnings.warn(
        f"fit: the classes are {kind}ly separated by the features of X, so the maximum "
        "likelihood estimate does not exist and the coefficients are arbitrary large "
        "numbers. Add a penalty (L2), or use Firth's bias-reduced fit "
        "(penalty=linjax.penalties.Firth()).", SeparationWarning, stacklevel=3)


@_programs.jit
def _separation_screen(X, y, w, params, offset, family):
    """(X b + b0, the score contributions -w_i d nll_i / d eta_i, whether any weighted
    |eta_i| exceeds SEPARATION_ETA), in one pass over X."""
    from linjax.families import eta_derivatives

    linear = X @ params["coef"] + params["intercept"]
    eta = linear if offset is None else linear + offset
    score = -w * eta_derivatives(family, y, eta)[1]
    return linear, score, jnp.any((w > 0) & (jnp.abs(eta) > SEPARATION_ETA))


def _fitted_direction_separation(linear, y, w):
    """Without scipy: "complete" when the fitted linear predictor (offset excluded) puts
    every weighted row strictly on its class's side (the fit's coefficients are then a
    separating direction), else "unchecked"."""
    keep = w > 0
    sign = np.where(y >= 1, 1.0, np.where(y <= 0, -1.0, 0.0))[keep]
    margin = sign * linear[keep]
    return "complete" if np.all(sign != 0) and np.all(margin > 0) else "unchecked"
