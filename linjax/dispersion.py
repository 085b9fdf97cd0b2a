"""Negative binomial dispersion estimated per problem: maximum likelihood or Cox-Reid.

m count responses (genes) share one design X (n x p, used as given: include the intercept
column yourself). For each row y of Y, with log link mu = exp(X beta + offset) and NB2
variance mu + alpha mu^2, `estimate_nb_dispersion` maximizes over t = log(alpha)

    C(t) = l(alpha, beta_hat(alpha))                                       method="ml"
    C(t) = l(alpha, beta_hat(alpha)) - 1/2 log det(X' W X)                 method="cox-reid"
           W = diag(w_i mu_i / (1 + alpha mu_i))    (the NB IRLS weights at beta_hat(alpha))

plus, with a prior, - (t - prior_mean)^2 / (2 prior_var) (DESeq2's maximum a posteriori
estimate). l is the full weighted NB2 log-likelihood sum_i w_i log p(y_i | mu_i, alpha) and
beta_hat(alpha) its maximizer at that alpha, so "ml" is the joint maximum likelihood of
MASS::glm.nb and statsmodels' NegativeBinomial, and "cox-reid" the adjusted profile
likelihood of edgeR (DESeq2 and glmGamPoi maximize the same adjustment with the means held
at a previous fit instead of refitted; see docs/dispersion.md).

Method. One compiled program runs Newton's method jointly in (beta, t) for every problem
at once, chunk by chunk of problems (each chunk stops when its own problems have stopped):
no per-problem LAPACK call (the weighted designs' QR by Gram-Schmidt, vectorized over
problems) and no `jax.hessian`; every derivative is written out below. The t-gradient is
exact (the implicit term dC/dbeta . dbeta/dt included); its curvature drops the
beta-dependence of the Cox-Reid curvature, which costs speed, never exactness. t starts at
the moment estimate from a least-squares fit of log(y + 0.1); safeguarded Newton (the
bracket bisected where a Newton step leaves it or the curvature is not negative, once the
coefficients have converged at that t) runs until the Newton step in t is below tol with
the coefficients' Newton decrement below tol^2. A problem whose gradient still points
outward at a bound stops there (status AT_BOUND). A coefficient whose estimate is infinite
(a group of zero counts) is stopped where its Newton step gains less than tol in
log-likelihood; alpha is then its limit to ~sqrt(tol) (status NO_FINITE_ESTIMATE).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs, validation
from linjax.solvers.status import Status
from linjax.special import lgamma_difference, lgamma_digamma, psi_differences

METHODS = ("ml", "cox-reid")

#: The default range of alpha (alpha -> 0 is the Poisson limit).
DEFAULT_BOUNDS = (1e-8, 1e4)

#: Problems handled together in one chunk: about this many entries of Y per chunk, so the
#: chunk's temporaries stay in cache (measured: 5x faster than whole (10,000 x 100) arrays).
CHUNK_ENTRIES = 50_000


class NBDispersion(NamedTuple):
    """The estimate per problem (leading axis m; no axis for a 1-D `Y`).

    alpha: the dispersion (V(mu) = mu + alpha mu^2); coef: (m, p) the NB maximum
    likelihood coefficients at that alpha; mu: (m, n) the fitted means; criterion: C at the
    estimate (the log-likelihood, minus half the log-determinant for Cox-Reid, plus the
    log prior density up to its constant); status: `linjax.solvers.Status` codes
    (CONVERGED, MAX_ITER, NON_FINITE, NO_FINITE_ESTIMATE for an all-zero response,
    AT_BOUND when alpha sits at a bound); iterations: Newton iterations used.
    """

    alpha: jax.Array
    coef: jax.Array
    mu: jax.Array
    criterion: jax.Array
    status: jax.Array
    iterations: jax.Array


def estimate_nb_dispersion(X, Y, *, offset=None, weights=None, method="cox-reid",
                           prior_mean=None, prior_var=None, bounds=DEFAULT_BOUNDS, tol=None,
                           max_iter=100):
    """Negative binomial dispersion and coefficients per row of Y (module docstring).

    X: (n, p) design shared by every problem, used as given (no intercept added); Y: (m, n)
    counts, one row per problem, or (n,) for one problem; offset, weights: (n,) or (m, n)
    (offset: log size factors); method: "ml" or "cox-reid"; prior_mean (scalar or (m,)) and
    prior_var (scalar): a normal prior on log(alpha) (maximum a posteriori); bounds:
    (lower, upper) on alpha; tol: on the Newton step in log(alpha) and the Newton decrement
    of the coefficients (default 1e-8 in float64, 1e-4 in float32); max_iter: Newton
    iterations. Returns `NBDispersion`.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}.")
    X = validation.check_design(X)
    Y_arr = validation.as_numeric("Y", Y)
    single = Y_arr.ndim == 1
    Y_arr = Y_arr[None, :] if single else Y_arr
    if Y_arr.ndim != 2:
        raise ValueError(f"Y: expected (m, n) counts (one row per problem) or (n,), got shape "
                         f"{tuple(Y_arr.shape)}.")
    n, p = X.shape
    m = Y_arr.shape[0]
    if Y_arr.shape[1] != n:
        raise ValueError(f"Y: has {Y_arr.shape[1]} columns but X has {n} rows; Y is (m, n) "
                         "with one row per problem (transpose a samples x genes table).")
    if m == 0:
        raise ValueError("Y: has 0 rows (problems).")
    dtype = validation.float_dtype_of(X, Y_arr if jnp.issubdtype(Y_arr.dtype, jnp.floating)
                                      else None)
    X = jnp.asarray(X, dtype)
    Y_arr = _check_counts(Y_arr, dtype)
    offset = _per_problem("offset", offset, m, n, dtype, 0.0)
    weights = _per_problem("weights", weights, m, n, dtype, 1.0)
    _check_weights(weights, p)
    use_prior = prior_mean is not None or prior_var is not None
    if use_prior:
        prior_mean, prior_var = check_prior(prior_mean, prior_var, m, dtype)
    else:
        prior_mean, prior_var = jnp.zeros((m,), dtype), jnp.ones((), dtype)
    lo, hi = _check_bounds(bounds)
    tol = _default_tol(dtype) if tol is None else float(tol)
    if not tol > 0:
        raise ValueError(f"tol: must be > 0, got {tol}.")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter: must be >= 1, got {max_iter}.")
    chunk = max(1, min(m, CHUNK_ENTRIES // n))
    settings = (prior_var, jnp.asarray([np.log(lo), np.log(hi)], dtype),
                jnp.asarray(tol, dtype))
    static = dict(method=method, use_prior=use_prior, chunk=chunk)
    out = _estimate(X, Y_arr, offset, weights, prior_mean, *settings, max_iter=int(max_iter),
                    **static)
    if single:
        out = jax.tree_util.tree_map(lambda a: a[0], out)
    return out


# -- eager checks ------------------------------------------------------------------------

def _default_tol(dtype):
    return 1e-8 if jnp.dtype(dtype) == jnp.float64 else 1e-4


def _check_counts(Y, dtype):
    validation.check_finite("Y", Y)
    if not validation.is_traced(Y):
        a = np.asarray(Y)
        bad = np.flatnonzero((a < 0).any(axis=1))
        if bad.size:
            raise ValueError(f"Y: negative counts in {bad.size} problem(s) (rows {_listed(bad)});"
                             " the negative binomial needs y >= 0.")
    return jnp.asarray(Y, dtype)


def _listed(idx, k=10):
    shown = ", ".join(str(int(i)) for i in idx[:k])
    return shown + (", ..." if len(idx) > k else "")


def _per_problem(name, a, m, n, dtype, default):
    """None, (n,) or (m, n) as an (m, n) array (a shared vector is broadcast, not copied
    until the program needs it)."""
    if a is None:
        return jnp.full((1, n), default, dtype)
    a = validation.as_numeric(name, a)
    if a.ndim == 1 and a.shape[0] == n:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != n or a.shape[0] not in (1, m):
        raise ValueError(f"{name}: expected shape ({n},) (shared) or ({m}, {n}) (one row per "
                         f"problem), got {tuple(a.shape)}.")
    validation.check_finite(name, a)
    return jnp.asarray(a, dtype)


def _check_weights(w, p):
    if validation.is_traced(w):
        return
    a = np.asarray(w)
    if (a < 0).any():
        raise ValueError("weights: negative values in problem(s) "
                         f"{_listed(np.flatnonzero((a < 0).any(axis=1)))}; weights must be >= 0.")
    few = np.flatnonzero((a > 0).sum(axis=1) <= p)
    if few.size:
        raise ValueError(f"weights: problem(s) {_listed(few)} have at most p = {p} observations "
                         "with positive weight, too few to estimate a dispersion.")


def check_prior(mean, var, m, dtype):
    """(prior_mean (m,), prior_var scalar) checked: a normal prior on log(alpha)."""
    if mean is None or var is None:
        raise ValueError("prior_mean, prior_var: give both (the normal prior on log(alpha)) "
                         "or neither.")
    mean = validation.as_numeric("prior_mean", mean)
    if mean.ndim == 0:
        mean = jnp.full((m,), mean)
    if mean.shape != (m,):
        raise ValueError(f"prior_mean: expected a scalar or shape ({m},), got "
                         f"{tuple(mean.shape)}.")
    validation.check_finite("prior_mean", mean)
    var = validation.as_numeric("prior_var", var)
    if var.ndim != 0:
        raise ValueError(f"prior_var: expected a scalar, got shape {tuple(var.shape)}.")
    if not validation.is_traced(var) and not float(var) > 0:
        raise ValueError(f"prior_var: must be > 0 (the variance of log(alpha)), got "
                         f"{float(var)}.")
    return jnp.asarray(mean, dtype), jnp.asarray(var, dtype)


def _check_bounds(bounds):
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError) as err:
        raise ValueError(f"bounds: expected (lower, upper) on alpha, got {bounds!r}.") from err
    if not (0 < lo < hi < np.inf):
        raise ValueError(f"bounds: need 0 < lower < upper < inf, got {bounds!r}.")
    return lo, hi


# -- the compiled estimate ------------------------------------------------------------

@_programs.jit(static_argnames=("method", "use_prior", "max_iter", "chunk"))
def _estimate(X, Y, offset, weights, prior_mean, prior_var, log_bounds, tol, *, method,
              use_prior, max_iter, chunk):
    return nb_dispersion(X, Y, offset, weights, prior_mean, prior_var, log_bounds, tol,
                         method=method, use_prior=use_prior, max_iter=max_iter, chunk=chunk)


def nb_dispersion(X, Y, offset, weights, prior_mean, prior_var, log_bounds, tol, *,
                  method="cox-reid", use_prior=False, max_iter=100, chunk=None):
    """The traceable estimate behind `estimate_nb_dispersion` (no checks): Y (m, n); offset,
    weights (m, n) or (1, n) (shared); prior_mean (m,); prior_var, tol scalars; log_bounds
    (2,) log alpha. Runs under jit and vmap.

    Every Newton step works on `chunk` rows gathered from the problems still running (then
    on chunk / 8 rows once fewer than that run), so each problem takes as many steps as it
    needs and no problem waits for a slower one."""
    m, n = Y.shape
    size = m if chunk is None else max(1, min(chunk, m))
    k = -(-m // size)
    pad = k * size - m

    def padded(a):
        if a.shape[0] == 1 and m > 1:
            return a
        return jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])]) if pad else a

    Y, offset, weights, prior_mean = (padded(a) for a in (Y, offset, weights, prior_mean))
    rows_of = _rows_of(k * size)
    bounds = (log_bounds[0], log_bounds[1])

    def blockwise(fun, *args):
        if k == 1:
            return fun(*args)
        out = jax.lax.map(lambda b: fun(*b), jax.tree_util.tree_map(
            lambda a: (a.reshape((k, size) + a.shape[1:]) if a.shape[0] == k * size
                       else jnp.broadcast_to(a, (k,) + a.shape)), args))
        return jax.tree_util.tree_map(lambda a: a.reshape((k * size,) + a.shape[2:]), out)

    state = blockwise(lambda y, o, w: _start(X, y, o, w, *bounds), Y, offset, weights)
    state = state._replace(done=state.done | (jnp.arange(k * size) >= m))
    step = functools.partial(_step, X, prior_var=prior_var, log_bounds=bounds, tol=tol,
                             method=method, use_prior=use_prior, max_iter=max_iter)
    data = (Y, offset, weights, prior_mean)
    small = max(1, size // 8)
    state = _run(state, data, step, rows_of, size, small if small < size else 0)
    if small < size:
        state = _run(state, data, step, rows_of, small, 0)
    out = blockwise(lambda y, o, w, pm, s: _report(X, y, o, w, pm, s, prior_var, bounds[0],
                                                   method=method, use_prior=use_prior),
                    Y, offset, weights, prior_mean, state)
    return jax.tree_util.tree_map(lambda a: a[:m], out)


def _rows_of(total):
    def rows_of(a, idx):
        return a if a.shape[0] == 1 and total > 1 else a[idx]
    return rows_of


def _run(state, data, step, rows_of, size, leave):
    """Newton steps on `size` rows gathered from the running problems (a done problem
    fills the rest: a step leaves it unchanged) while more than `leave` problems run."""
    def cond(s):
        return jnp.sum(~s.done) > leave

    def body(s):
        running = ~s.done
        idx = jnp.nonzero(running, size=size, fill_value=jnp.argmin(running))[0]
        rows = jax.tree_util.tree_map(lambda a: a[idx], s)
        new = step(*(rows_of(a, idx) for a in data), rows)
        return jax.tree_util.tree_map(lambda a, b: a.at[idx].set(b), s, new)

    return jax.lax.while_loop(cond, body, state)


def _weighted_qr(X, s):
    """Thin QR of diag(s_k) X for every row s_k of s (c, n): Q (c, p, n) with orthonormal
    rows, R (c, p, p) upper triangular with R_kk >= 0, by classical Gram-Schmidt with one
    reorthogonalization, vectorized over c (no LAPACK).

    QR rather than the Gram matrix X' diag(s^2) X: where a group of means runs to 0 (a
    condition with only zero counts) the Gram matrix's condition number is the square of
    the weighted design's, and its inverse loses every digit long before the estimate has
    converged."""
    c, n = s.shape
    p = X.shape[1]
    if p > 16:
        return _weighted_qr_loop(X, s)
    if p <= 2:
        return _weighted_qr_small(X, s)
    qs, rows = [], []
    for k in range(p):
        v = s * X[:, k][None, :]
        r = [jnp.zeros((c,), s.dtype) for _ in range(p)]
        for _ in range(2 if k else 0):
            coef = [jnp.sum(q * v, axis=1) for q in qs]
            for j, q in enumerate(qs):
                v = v - coef[j][:, None] * q
                r[j] = r[j] + coef[j]
        norm = jnp.sqrt(jnp.sum(v * v, axis=1))
        r[k] = norm
        qs.append(v / jnp.where(norm > 0, norm, 1.0)[:, None])
        rows.append(jnp.stack(r, axis=1))
    return jnp.stack(qs, axis=1), jnp.stack(rows, axis=2)


def _weighted_qr_small(X, s):
    """`_weighted_qr` for one or two columns in closed form: R = [[sqrt(a), k sqrt(a)],
    [0, sqrt(b)]] with a = |s x0|^2, k = <s x0, s x1> / a, b = |s (x1 - k x0)|^2 (the second
    column orthogonalized before it is squared, so b keeps the digits that the Gram
    matrix's determinant a |s x1|^2 - (k a)^2 would cancel). A few fused sums over the
    samples instead of Gram-Schmidt's passes."""
    c, n = s.shape
    x0 = X[:, 0][None, :]
    s2 = s * s
    a = jnp.sum(s2 * x0 * x0, axis=1)
    ra = jnp.sqrt(a)
    q0 = s * x0 / jnp.where(ra > 0, ra, 1.0)[:, None]
    if X.shape[1] == 1:
        return q0[:, None, :], ra[:, None, None]
    x1 = X[:, 1][None, :]
    k = jnp.sum(s2 * x0 * x1, axis=1) / jnp.where(a > 0, a, 1.0)
    x1c = x1 - k[:, None] * x0
    b = jnp.sum(s2 * x1c * x1c, axis=1)
    rb = jnp.sqrt(b)
    q1 = s * x1c / jnp.where(rb > 0, rb, 1.0)[:, None]
    zero = jnp.zeros_like(a)
    R = jnp.stack([jnp.stack([ra, zero], axis=1), jnp.stack([k * ra, rb], axis=1)], axis=2)
    return jnp.stack([q0, q1], axis=1), R


def _weighted_qr_loop(X, s):
    """`_weighted_qr` as a loop over the columns (wide designs: a small program)."""
    c, n = s.shape
    p = X.shape[1]
    eye = jnp.eye(p, dtype=s.dtype)

    def column(k, carry):
        Q, R = carry
        v = s * jax.lax.dynamic_index_in_dim(X, k, axis=1, keepdims=False)[None, :]
        r = jnp.zeros((c, p), s.dtype)
        for _ in range(2):                       # rows >= k of Q are still 0
            coef = jnp.sum(Q * v[:, None, :], axis=2)
            v = v - jnp.sum(coef[:, :, None] * Q, axis=1)
            r = r + coef
        norm = jnp.sqrt(jnp.sum(v * v, axis=1))
        q = v / jnp.where(norm > 0, norm, 1.0)[:, None]
        Q = jax.lax.dynamic_update_index_in_dim(Q, q, k, axis=1)
        R = jax.lax.dynamic_update_index_in_dim(R, r + norm[:, None] * eye[k], k, axis=2)
        return Q, R

    init = (jnp.zeros((c, p, n), s.dtype), jnp.zeros((c, p, p), s.dtype))
    return jax.lax.fori_loop(0, p, column, init)


def _qt(Q, v):
    """Q' v for each problem: (c, p)."""
    return jnp.sum(Q * v[:, None, :], axis=2)


def _solve_upper(R, b):
    """x with R x = b for each problem (back substitution, vectorized over c)."""
    p = R.shape[1]
    diag = jnp.diagonal(R, axis1=1, axis2=2)
    diag = jnp.where(diag > 0, diag, 1.0)

    def row(i, x):
        k = p - 1 - i
        rk = jax.lax.dynamic_index_in_dim(R, k, axis=1, keepdims=False)
        bk = jax.lax.dynamic_index_in_dim(b, k, axis=1, keepdims=False)
        dk = jax.lax.dynamic_index_in_dim(diag, k, axis=1, keepdims=False)
        xk = (bk - jnp.sum(rk * x, axis=1)) / dk    # x_k is still 0 in the sum
        return jax.lax.dynamic_update_index_in_dim(x, xk, k, axis=1)

    return jax.lax.fori_loop(0, p, row, jnp.zeros_like(b), unroll=p <= 16)


def _full_rank(R):
    return jnp.all(jnp.diagonal(R, axis1=1, axis2=2) > 0, axis=1)


def _newton_parts(X, w, y, mu, u, a, other):
    """The Newton system of the coefficients at (alpha, beta) through the QR of
    diag(sqrt(D)) X, D = w mu (1 + alpha y) / (1 + alpha mu)^2 the observed information:
    returns R, Q'(s / sqrt D) (s = w (y - mu) / (1 + alpha mu), the score), and
    Q'(v / sqrt D) for `other` v (None: skipped)."""
    sd = jnp.sqrt(w * mu * (1 + a * y)) * u
    Q, R = _weighted_qr(X, sd)
    inv = jnp.where(sd > 0, 1 / jnp.where(sd > 0, sd, 1.0), 0.0)
    e_s = _qt(Q, w * (y - mu) * u * inv)
    e_o = None if other is None else _qt(Q, other * inv)
    return R, e_s, e_o


class _State(NamedTuple):
    """Per problem (leading axis: problems)."""
    t: jax.Array          # log alpha
    beta: jax.Array       # (p,)
    lower: jax.Array      # bracket on t: C'(lower) > 0 (or the bound)
    upper: jax.Array      # C'(upper) < 0 (or the bound)
    done: jax.Array       # bool
    status: jax.Array     # int32
    n_it: jax.Array       # Newton iterations
    frozen: jax.Array     # bool: a coefficient ran off to infinity and was stopped
    t_prev: jax.Array     # the previous iterate (for backtracking the coefficients)
    beta_prev: jax.Array  # (p,)
    ll_prev: jax.Array    # its log-likelihood's beta-dependent part
    zero: jax.Array       # bool: an all-zero response (no estimate)


def _eta(X, beta, off):
    return jnp.minimum(beta @ X.T + off, 700.0)


def _start(X, y, off, w, t_lo, t_hi):
    """The starting state: two Poisson IRLS steps from R's start mu = y + 0.1 (means close
    to the data's even for small counts, where a least-squares fit of log(y + c) is far
    below), and log(alpha) at the moment estimate from those means."""
    dtype = y.dtype
    c = y.shape[0]
    zero = jnp.sum(w * y, axis=1) <= 0                  # all-zero response: no estimate
    mu = y + 0.1
    eta = jnp.log(mu)
    for _ in range(2):
        s = jnp.sqrt(w * mu)
        Q, R = _weighted_qr(X, s)
        beta = _solve_upper(R, _qt(Q, s * (eta + (y - mu) / mu - off)))
        eta = _eta(X, beta, off)
        mu = jnp.exp(eta)
    a_mom = _moment_estimate(y, w, mu, X.shape[1])
    t = jnp.clip(jnp.log(jnp.maximum(a_mom, 1e-300)), t_lo, t_hi - 1.0)
    t = jnp.where(jnp.isfinite(t), t, 0.0)
    beta = jnp.where(jnp.isfinite(beta), beta, 0.0)
    return _State(t=t, beta=beta, lower=jnp.full((c,), t_lo, dtype),
                  upper=jnp.full((c,), t_hi, dtype), done=zero,
                  status=jnp.where(zero, int(Status.NO_FINITE_ESTIMATE),
                                   int(Status.MAX_ITER)).astype(jnp.int32),
                  n_it=jnp.zeros((c,), jnp.int32), frozen=jnp.zeros((c,), bool),
                  t_prev=jnp.full((c,), jnp.inf, dtype), beta_prev=beta,
                  ll_prev=jnp.full((c,), -jnp.inf, dtype), zero=zero)


def _quantities(X, y, off, w, pm, t, beta, prior_var, *, method, use_prior):
    """The profile (Schur complement) gradient and curvature in t of the joint Newton step,
    the coefficients' Newton step at t and their derivative in t, the Newton decrement,
    full rank, and the beta-dependent part of the log-likelihood."""
    a = jnp.exp(t)[:, None]
    r = 1 / a
    eta = _eta(X, beta, off)
    mu = jnp.exp(eta)
    u = 1 / (1 + a * mu)
    amu = a * mu
    cvec = -w * (y - mu) * amu * u * u                # d score / dt
    R, e_s, e_c = _newton_parts(X, w, y, mu, u, a, cvec)
    ok = _full_rank(R)
    d1, d2 = psi_differences(y, r)
    log1p_amu = jnp.log1p(amu)
    lgap = log1p_amu - d1
    # the log-likelihood's part that depends on beta (for the step's backtracking)
    ll = jnp.sum(w * (y * eta - (y + r) * log1p_amu), axis=1)
    g = jnp.sum(w * (r * lgap + (y - mu) * u), axis=1)
    K = jnp.sum(w * (-r * lgap + r * r * d2 + mu * u - (y - mu) * amu * u * u), axis=1)
    dbdt = _solve_upper(R, e_c)
    if method == "cox-reid":
        # -1/2 log det(X'VX), V = w mu u: leverages and traces from the QR of sqrt(V) X
        QV, RV = _weighted_qr(X, jnp.sqrt(w * mu * u))
        ok = ok & _full_rank(RV)
        lev = jnp.sum(QV * QV, axis=1)               # h_i V_i
        rho1 = -amu * u                               # (dV/dt) / V
        rho2 = rho1 * (1 - amu) * u                   # (d2V/dt2) / V
        M = jnp.einsum("cjn,ckn->cjk", QV * rho1[:, None, :], QV)
        # the implicit term dCR/dbeta . dbeta/dt, dCR/deta_i = -1/2 h_i V_i u_i
        cr_b = -0.5 * jnp.sum(lev * u * (dbdt @ X.T), axis=1)
        g = g - 0.5 * jnp.sum(lev * rho1, axis=1) + cr_b
        K = K - 0.5 * (jnp.sum(lev * rho2, axis=1) - jnp.sum(M * M, axis=(1, 2)))
    if use_prior:
        g = g - (t - pm) / prior_var
        K = K - 1 / prior_var
    Dscore = _solve_upper(R, e_s)
    g_prof = g + jnp.sum(e_c * e_s, axis=1)
    K_prof = K + jnp.sum(e_c * e_c, axis=1)
    decrement = jnp.sum(e_s * e_s, axis=1)
    return g_prof, K_prof, Dscore, dbdt, decrement, ok, ll


def _step(X, y, off, w, pm, s, *, prior_var, log_bounds, tol, method, use_prior, max_iter):
    """One safeguarded joint Newton step in (beta, t) for the rows of state s (a done row
    is left as it is)."""
    t_lo, t_hi = log_bounds
    y = jnp.where(s.zero[:, None], 1.0, y).astype(y.dtype)   # a harmless stand-in
    g, K, Dscore, dbdt, dec, ok, ll = _quantities(X, y, off, w, pm, s.t, s.beta, prior_var,
                                                  method=method, use_prior=use_prior)
    # a coefficient step at fixed t that lowered the likelihood (Newton overshoots where
    # the NB log-likelihood flattens, at large means) is halved instead
    worse = (s.t == s.t_prev) & (ll < s.ll_prev - 1e-12 * jnp.abs(s.ll_prev))
    # False where the coefficients' Newton step would gain less than tol in log-likelihood
    # yet move a linear predictor by more than 0.1: a coefficient whose estimate is
    # infinite (a group of zero counts, whose means each step divides by e) stops running
    # off there, before the QR of its vanishing weights runs out of digits. Near an
    # ordinary optimum a step that small in log-likelihood moves every linear predictor by
    # far less.
    move = ~((dec <= tol) & (jnp.max(jnp.abs(Dscore @ X.T), axis=1) > 0.1))
    frozen = s.frozen | ~move
    # the sign of the gradient is trusted (for the bracket and the bound) where the
    # coefficients' error is negligible: a Newton decrement below tol^2 (below tol where a
    # coefficient is at infinity and the decrement stays at the stopping point)
    trusted = dec <= jnp.where(frozen, tol, tol * tol)
    finite = jnp.isfinite(g) & jnp.isfinite(K) & jnp.all(jnp.isfinite(Dscore), axis=1)
    lower = jnp.where(trusted & (g > 0), jnp.maximum(s.lower, s.t), s.lower)
    upper = jnp.where(trusted & (g <= 0), jnp.minimum(s.upper, s.t), s.upper)
    newton = s.t - g / jnp.where(K < 0, K, -1.0)
    inside = (K < 0) & (newton > lower) & (newton < upper)
    # outside the bracket: bisect it where the gradient is trusted (toward a lower bound no
    # point has beaten yet: the bound itself, where the test for an estimate at the bound
    # is made; toward such an upper bound, the bound once it is within 1), else stay at t
    # while the coefficients converge
    toward_lo = jnp.where(K < 0, newton <= lower, g < 0)
    fallback = jnp.where(toward_lo & (lower <= t_lo), t_lo, 0.5 * (lower + upper))
    fallback = jnp.where(~toward_lo & (upper >= t_hi) & (t_hi - s.t <= 1.0), t_hi, fallback)
    t_new = jnp.clip(jnp.where(inside, newton, jnp.where(trusted, fallback, s.t)),
                     t_lo, t_hi)
    at_bound = (((s.t <= t_lo) & (g <= 0)) | ((s.t >= t_hi) & (g >= 0))) & trusted
    # with a coefficient at infinity, the zero rows' means stop at ~tol, and alpha is
    # their limit's to ~sqrt(tol)
    t_tol = jnp.where(frozen, jnp.sqrt(tol), tol)
    converged = trusted & (K < 0) & (jnp.abs(newton - s.t) <= t_tol)
    stop = ~s.done & ~worse & (converged | at_bound | ~finite | ~ok)
    # a converged problem takes its last (tiny) Newton step; a bound one keeps its t
    t_new = jnp.where(converged, jnp.clip(newton, t_lo, t_hi), t_new)
    t_next = jnp.where(at_bound | ~finite, s.t, t_new)
    dt = t_next - s.t
    beta_next = s.beta + _capped(jnp.where(move[:, None], Dscore, 0.0)
                                 + dbdt * dt[:, None], X)
    beta_next = jnp.where(finite[:, None], beta_next, s.beta)
    t_next = jnp.where(worse, s.t, t_next)
    beta_next = jnp.where(worse[:, None], 0.5 * (s.beta + s.beta_prev), beta_next)
    lower = jnp.where(worse, s.lower, lower)
    upper = jnp.where(worse, s.upper, upper)
    new_status = jnp.where(
        ~finite, int(Status.NON_FINITE),
        jnp.where(~ok, int(Status.SINGULAR),
                  jnp.where(at_bound, int(Status.AT_BOUND),
                            jnp.where(frozen, int(Status.NO_FINITE_ESTIMATE),
                                      int(Status.CONVERGED)))))
    keep = s.done
    n_it = jnp.where(keep, s.n_it, s.n_it + 1)
    return _State(
        t=jnp.where(keep, s.t, t_next),
        beta=jnp.where(keep[:, None], s.beta, beta_next),
        lower=jnp.where(keep, s.lower, lower),
        upper=jnp.where(keep, s.upper, upper),
        done=s.done | stop | (n_it >= max_iter),
        status=jnp.where(stop, new_status, s.status).astype(jnp.int32),
        n_it=n_it,
        frozen=jnp.where(keep | worse, s.frozen, frozen),
        t_prev=jnp.where(keep | worse, s.t_prev, s.t),
        beta_prev=jnp.where((keep | worse)[:, None], s.beta_prev, s.beta),
        ll_prev=jnp.where(keep | worse, s.ll_prev, ll),
        zero=s.zero,
    )


def _report(X, y, off, w, pm, s, prior_var, t_lo, *, method, use_prior):
    """The estimate and the criterion there; no estimate for an all-zero response."""
    zero = s.zero
    y = jnp.where(zero[:, None], 1.0, y).astype(y.dtype)
    alpha = jnp.exp(s.t)
    mu = jnp.exp(_eta(X, s.beta, off))
    crit = _nb_loglik(y, mu, alpha[:, None], w)
    if method == "cox-reid":
        _, RV = _weighted_qr(X, jnp.sqrt(w * mu / (1 + alpha[:, None] * mu)))
        crit = crit - jnp.sum(jnp.log(jnp.diagonal(RV, axis1=1, axis2=2)), axis=1)
    if use_prior:
        crit = crit - 0.5 * (s.t - pm) ** 2 / prior_var
    return NBDispersion(
        alpha=jnp.where(zero, jnp.exp(t_lo), alpha),
        coef=jnp.where(zero[:, None], 0.0, s.beta),
        mu=jnp.where(zero[:, None], 0.0, mu),
        criterion=jnp.where(zero, 0.0, crit),
        status=s.status,
        iterations=s.n_it,
    )


def _nb_loglik(y, mu, alpha, w):
    """sum_i w_i log p(y_i | mu_i, alpha), the NB2 log-likelihood (the family's log_prob),
    with lgamma(y + 1/alpha) - lgamma(1/alpha) as one difference (`linjax.special`):

        lgamma(y + r) - lgamma(r) - lgamma(y + 1) - r log(1 + alpha mu)
        + y log(alpha mu / (1 + alpha mu)),   r = 1/alpha."""
    r = 1 / alpha
    amu = alpha * mu
    log1p_amu = jnp.log1p(amu)
    value = (lgamma_difference(y, r) - lgamma_digamma(y + 1)[0] - r * log1p_amu
             + jnp.where(y > 0, y * (jnp.log(amu) - log1p_amu), 0.0))
    return jnp.sum(w * value, axis=1)


def _capped(step, X, limit=5.0):
    """A coefficient step scaled so that no linear predictor moves by more than `limit`
    (a far start would otherwise overshoot exp's range)."""
    move = jnp.max(jnp.abs(step @ X.T), axis=1)
    return step * jnp.minimum(1.0, limit / jnp.maximum(move, 1e-300))[:, None]


def _moment_estimate(y, w, mu, p):
    """sum_i w_i ((y_i - mu_i)^2 - mu_i) / mu_i^2 / (sum_i w_i - p), the start of alpha."""
    dof = jnp.maximum(jnp.sum(w, axis=1) - p, 1.0)
    return jnp.sum(w * ((y - mu) ** 2 - mu) / mu**2, axis=1) / dof
