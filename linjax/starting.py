"""Starting values for a GLM fit: R's first IRLS step, the multinomial start, the
log-linear intercept shift (from arrays, or from sums for fits that never hold all rows),
and the intercept-only fit.

Each piece of R's start has one definition here, and every entry point calls it in its own
layout (one problem from arrays: `initial_params` and `GLMProblem.irls_start_terms` /
`irls_start_point`; m problems: `scale/shared_newton`; sums over row blocks:
`scale/blocks`): the working weights and response (`start_working`), the intercept shift
(`log_intercept_shift`, `intercept_shift_from_sums`, when `shifts_intercept`), the
intercept-only fallback (`intercept_only_start`, `intercept_only_from_rows`) and the
finite-objective check that picks it (`keep_finite`).
"""

import jax
import jax.numpy as jnp

from linjax.model import init_params
from linjax.solvers.gram import prefers_single, weighted_products
from linjax.solvers.linalg import solve_psd
from linjax.solvers.newton_step import default_tols

#: Widest design object (coefficients) whose start is R's first IRLS step (as
#: `linjax.designs.fitting.NEWTON_MAX_WIDTH`); wider ones start at the intercept-only fit.
STRUCTURED_START_MAX_WIDTH = 4096


def start_link_terms(family, mu0):
    """(eta0, f0) at the family's starting means mu0: eta0 = link(mu0) and the Fisher weight
    f0 = mu'(eta0)^2 / V(mu0). A closed-form model (`scale/shared_newton`'s canonical ones)
    passes its own form of the same two to `start_working`."""
    eta0 = family.link.link(mu0)
    return eta0, family.link.inverse_deriv(eta0) ** 2 / family.variance(mu0)


def start_working(family, y, w, offset, link_terms=None):
    """(mu0, s0, s0 z0): R's first IRLS step's means, working weights and weighted working
    response, elementwise (any shape that y, w and offset broadcast to).

    mu0 = `starting_mu(y)`, s0 = w f0 with f0 = mu'(eta0)^2 / V(mu0) (0 where f0 is not
    finite), z0 = link(mu0) - offset (offset None: 0), and s0 z0 is 0 where s0 is 0 (a
    zero-weight or padding row whose z0 is not finite adds nothing). The start solves
    (Z' S0 Z + ridge) b = Z' S0 z0. link_terms(mu0) -> (eta0, f0): a closed form of
    `start_link_terms`.
    """
    mu0 = family.starting_mu(y)
    eta0, fisher = start_link_terms(family, mu0) if link_terms is None else link_terms(mu0)
    s0 = jnp.where(jnp.isfinite(fisher), w * fisher, 0.0)
    z0 = eta0 if offset is None else eta0 - offset
    return mu0, s0, jnp.where(s0 > 0, s0 * z0, 0.0)


def shifts_intercept(family, fit_intercept):
    """Whether R's start then moves its intercept to its optimum given the slopes, in closed
    form (the family's `intercept_shift_start`: a log-linear Poisson model)."""
    return bool(family.intercept_shift_start) and bool(fit_intercept)


def log_intercept_shift(total_y, eta, w):
    """log(total_y / sum w exp(eta)): the intercept step to its optimum in a log-linear
    Poisson model, the slopes held (0 where total_y is 0, which has none); from the rows
    (the last axis), as `intercept_shift_from_sums` from their totals."""
    lse = jax.nn.logsumexp(eta, b=w, axis=-1)
    return jnp.where(total_y > 0, jnp.log(jnp.where(total_y > 0, total_y, 1.0)) - lse, 0.0)


def intercept_shift_from_sums(total_y, total_mu):
    """`log_intercept_shift` from the sums: log(total_y / total_mu), 0 where either is 0."""
    ok = (total_y > 0) & (total_mu > 0)
    return jnp.where(ok, jnp.log(jnp.where(ok, total_y, 1.0))
                     - jnp.log(jnp.where(ok, total_mu, 1.0)), 0.0)


def intercept_only_start(link, mean_mu0, mean_offset):
    """The intercept-only start link(sum w mu0 / sum w) - sum w offset / sum w (mu0 the
    family's `starting_mu(y)`): where R's start has a non-finite objective, every start
    falls back to it (from sums: `scale/blocks.solve_start`; from rows:
    `intercept_only_from_rows`)."""
    return link.link(mean_mu0) - mean_offset


def intercept_only_from_rows(family, y, w, offset):
    """`intercept_only_start` from the rows (w normalized to sum 1 over the last axis; one
    problem per leading index of a batch): link(sum w mu0) - sum w offset."""
    mean_mu0 = jnp.sum(w * family.starting_mu(y), axis=-1)
    mean_offset = 0.0 if offset is None else jnp.sum(
        jnp.broadcast_to(w * offset, jnp.shape(y)), axis=-1)
    return intercept_only_start(family.link, mean_mu0, mean_offset)


def keep_finite(value, start, fallback):
    """start where its objective `value` is finite, else fallback, leaf by leaf (value a
    scalar, or (m,) for m problems along the leaves' leading axis)."""
    ok = jnp.isfinite(value)

    def pick(a, b):
        return jnp.where(jnp.reshape(ok, ok.shape + (1,) * (jnp.ndim(a) - ok.ndim)), a, b)

    return jax.tree_util.tree_map(pick, start, fallback)


def initial_params(problem):
    """R's first IRLS iteration: weighted least squares of link(mu0) on X.

    mu0 is the family's starting mean from y; the weights are the Fisher weights
    at mu0 (`start_working`). Where the family has `intercept_shift_start` (Poisson, log
    link), the intercept then moves by log(sum w y / sum w mu), its optimum given the slopes.
    Falls back to an intercept-only start when that start is not finite, and starts there
    for a design (sparse, categorical) wider than `STRUCTURED_START_MAX_WIDTH` coefficients,
    whose (p + 1)^2 Gram would not fit (a 100,000-column sparse X: 80 GB).
    """
    family, X, w = problem.family, problem.X, problem.weights
    dtype = X.dtype
    p = X.shape[1]
    fallback = init_params(p, dtype)
    if problem.fit_intercept:
        fallback["intercept"] = intercept_only_from_rows(family, problem.y, w, problem.offset)
    if hasattr(X, "rmatvec") and p + 1 > STRUCTURED_START_MAX_WIDTH:
        return fallback
    _, sw, swz = start_working(family, problem.y, w, problem.offset)
    ridge = problem.penalty.smooth_hess_diag(jnp.zeros((p,), dtype))
    hess, rhs = weighted_products(X, sw, swz, problem.fit_intercept, prefers_single(X))
    k = int(problem.fit_intercept)
    hess = hess.at[k:, k:].add(jnp.diag(ridge))
    beta, _ = solve_psd(hess, rhs)
    start = problem.from_vector(beta, init_params(p, dtype))
    if shifts_intercept(family, problem.fit_intercept):
        start["intercept"] = start["intercept"] + log_intercept_shift(
            jnp.sum(w * problem.y), problem.eta(start), w)
    return keep_finite(problem.value(start), start, fallback)



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

def intercept_only_fit(family, y, w, offset=None, tol=None, max_iter=50):
    """(b0, mu): the intercept-only GLM, min_b0 sum w nll(y, b0 + offset) / sum w, with its
    fitted means mu (a scalar without an offset, else one per row).

    Without an offset, the closed form: the score equation sum w (y - mu) mu' / V = 0 of a
    constant mu holds at the weighted mean, mu = sum w y / sum w for every link, and
    b0 = link(mu). With one (an array, zeros included), Newton on the scalar b0 with the
    exact second derivative and R's step halving, from `intercept_only_start` at the
    family's starting mean of the weighted mean of y (0 where not finite), until
    |g| / sqrt(h) <= tol, then one step more (tol None: the square root of Newton's
    decrement tolerance, `newton_step.default_tols`). The null model of `fit_statistics`
    and the path's alpha_max (`paths`) both fit it here.
    """
    if offset is None:
        mu = jnp.sum(w * y) / jnp.sum(w)
        return family.link.link(mu), mu
    w = w / jnp.sum(w)
    if tol is None:
        tol = default_tols(y.dtype)[0] ** 0.5
    b0 = intercept_only_start(family.link, family.starting_mu(jnp.sum(w * y)),
                              jnp.sum(w * offset))
    b0 = jnp.where(jnp.isfinite(b0), b0, 0.0)

    def loss(b0):
        return jnp.sum(jnp.where(w > 0, w * family.nll(y, b0 + offset), 0.0))

    def cond(c):
        _, it, done = c
        return ~done & (it < max_iter)

    def body(c):
        b0, it, _ = c
        g = jax.grad(loss)(b0)
        h = jax.grad(jax.grad(loss))(b0)
        h_safe = jnp.where(h > 0, h, 1.0)
        new = b0 - g / h_safe
        f0 = loss(b0)

        def trial(t):
            return loss(b0 + t * (new - b0))

        def halve(s):
            return s[0] / 2, trial(s[0] / 2), s[2] + 1

        # R's step halving: t from 1, halved while the loss rose, at most 30 times (the test
        # reads the carried loss: one that evaluated it in the loop's condition never ended
        # under vmap in a program compiled at XLA's optimization level 0)
        one = jnp.ones_like(b0)
        t, _, _ = jax.lax.while_loop(lambda s: (s[1] > f0) & (s[2] < 30), halve,
                                     (one, trial(one), jnp.zeros((), jnp.int32)))
        new = b0 + t * (new - b0)
        return new, it + 1, jnp.abs(g) * jnp.sqrt(jnp.maximum(1.0 / h_safe, 0.0)) <= tol

    b0, _, _ = jax.lax.while_loop(cond, body, (b0, jnp.zeros((), jnp.int32), jnp.asarray(False)))
    return b0, family.link.inverse(b0 + offset)
