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
no per-problem LAPACK call (the p x p systems are swept in closed form, vectorized over
problems) and no `jax.hessian`; every derivative is written out below. The t-gradient is
exact (the implicit term dC/dbeta . dbeta/dt included); its curvature drops the
beta-dependence of the Cox-Reid curvature, which costs speed, never exactness. The first
iteration sits at the lower bound (a Poisson fit there), which decides whether the
optimum is at the bound; then t starts at the moment estimate and safeguarded Newton
(bisection of the bracket where a Newton step leaves it or the curvature is not negative)
runs until |dt| <= tol and the Newton decrement of beta is below tol.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs, validation
from linjax.families import NegativeBinomial
from linjax.solvers.status import Status

METHODS = ("ml", "cox-reid")

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
                           prior_mean=None, prior_var=None, bounds=(1e-8, 1e4), tol=None,
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
        prior_mean, prior_var = _check_prior(prior_mean, prior_var, m, dtype)
    else:
        prior_mean, prior_var = jnp.zeros((m,), dtype), jnp.ones((), dtype)
    lo, hi = _check_bounds(bounds)
    tol = _default_tol(dtype) if tol is None else float(tol)
    if not tol > 0:
        raise ValueError(f"tol: must be > 0, got {tol}.")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter: must be >= 1, got {max_iter}.")
    chunk = max(1, min(m, CHUNK_ENTRIES // n))
    out = _estimate(X, Y_arr, offset, weights, prior_mean, prior_var,
                    jnp.asarray([np.log(lo), np.log(hi)], dtype), jnp.asarray(tol, dtype),
                    method=method, use_prior=use_prior, max_iter=int(max_iter), chunk=chunk)
    if single:
        out = jax.tree_util.tree_map(lambda a: a[0], out)
    return out


# -- eager checks ------------------------------------------------------------------------

def _default_tol(dtype):
    return 1e-8 if jnp.dtype(dtype) == jnp.float64 else 1e-4


def _check_counts(Y, dtype):
    validation._check_finite("Y", Y)
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
    validation._check_finite(name, a)
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


def _check_prior(mean, var, m, dtype):
    if mean is None or var is None:
        raise ValueError("prior_mean, prior_var: give both (the normal prior on log(alpha)) "
                         "or neither.")
    mean = validation.as_numeric("prior_mean", mean)
    if mean.ndim == 0:
        mean = jnp.full((m,), mean)
    if mean.shape != (m,):
        raise ValueError(f"prior_mean: expected a scalar or shape ({m},), got "
                         f"{tuple(mean.shape)}.")
    validation._check_finite("prior_mean", mean)
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
    m, n = Y.shape
    return nb_dispersion(X, Y, jnp.broadcast_to(offset, (m, n)),
                         jnp.broadcast_to(weights, (m, n)), prior_mean, prior_var,
                         log_bounds, tol, method=method, use_prior=use_prior,
                         max_iter=max_iter, chunk=chunk)


def nb_dispersion(X, Y, offset, weights, prior_mean, prior_var, log_bounds, tol, *,
                  method="cox-reid", use_prior=False, max_iter=100, chunk=None):
    """The traceable estimate behind `estimate_nb_dispersion` (no checks): Y, offset,
    weights (m, n); prior_mean (m,); prior_var, tol scalars; log_bounds (2,) log alpha.
    Runs under jit and vmap."""
    m, n = Y.shape
    chunk = m if chunk is None else min(chunk, m)
    consts = _design_constants(X)

    def one_chunk(args):
        y, off, w, pm = args
        return _estimate_chunk(consts, y, off, w, pm, prior_var, log_bounds, tol,
                               method=method, use_prior=use_prior, max_iter=max_iter)

    if chunk >= m:
        return one_chunk((Y, offset, weights, prior_mean))
    k = -(-m // chunk)
    pad = k * chunk - m

    def blocks(a):
        a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])]) if pad else a
        return a.reshape((k, chunk) + a.shape[1:])

    out = jax.lax.map(one_chunk, tuple(blocks(a) for a in (Y, offset, weights, prior_mean)))
    return jax.tree_util.tree_map(lambda a: a.reshape((k * chunk,) + a.shape[2:])[:m], out)


class _Design(NamedTuple):
    X: jax.Array      # (n, p)
    XX: jax.Array     # (n, p*p): row i is vec(x_i x_i')
    p: int


def _design_constants(X):
    n, p = X.shape
    return _Design(X, (X[:, :, None] * X[:, None, :]).reshape(n, p * p), p)


def _gram(d, v):
    """X' diag(v_k) X for every row v_k of v (c, n): (c, p, p), one matrix product."""
    return (v @ d.XX).reshape(v.shape[0], d.p, d.p)


def _sweep_inverse(A):
    """Inverse and log-determinant of each SPD matrix in A (c, p, p) by Gauss-Jordan sweeps
    (vectorized over c, no LAPACK); ok is False where a pivot is not positive."""
    c, p, _ = A.shape
    eye = jnp.eye(p, dtype=A.dtype)
    # a pivot may be tiny and still exact (a group whose means run to 0); only a pivot that
    # is not positive means the matrix is not positive definite (X is checked for full rank)
    tiny = jnp.finfo(A.dtype).tiny

    def sweep(k, carry):
        A, logdet, ok = carry
        e = eye[k]
        d = A[:, k, k]
        ok = ok & (d > tiny)
        d = jnp.where(d > tiny, d, tiny)
        col = A[:, :, k]
        row = A[:, k, :]
        off_col = col * (1 - e)          # column k without its pivot
        off_row = row * (1 - e)
        A = A - off_col[:, :, None] * off_row[:, None, :] / d[:, None, None]
        # row/column k: divided by the pivot, pivot -> -1/d
        A = A * (1 - e)[None, :, None] * (1 - e)[None, None, :] + (
            (off_col / d[:, None])[:, :, None] * e[None, None, :]
            + (off_row / d[:, None])[:, None, :] * e[None, :, None]
            - (1 / d)[:, None, None] * (e[:, None] * e[None, :])[None])
        return A, logdet + jnp.log(d), ok

    A, logdet, ok = jax.lax.fori_loop(
        0, p, sweep, (A, jnp.zeros((c,), A.dtype), jnp.ones((c,), bool)))
    return -A, logdet, ok


def _matvec(A, v):
    return jnp.einsum("cij,cj->ci", A, v)


def _shifted_sums(x):
    """sum_{j<8} 1/(x+j) and sum_{j<8} 1/(x+j)^2 from Q = prod (x+j): Q'/Q and
    (Q'/Q)^2 - Q''/Q (one division instead of eight)."""
    q, q1, q2 = jnp.ones_like(x), jnp.zeros_like(x), jnp.zeros_like(x)
    for j in range(8):
        xj = x + j
        q2 = q2 * xj + 2 * q1
        q1 = q1 * xj + q
        q = q * xj
    iq = 1 / q
    s1 = q1 * iq
    return s1, s1 * s1 - q2 * iq


def _psi_differences(y, r):
    """psi(y + r) - psi(r) and psi'(y + r) - psi'(r) (digamma, trigamma), y >= 0, r > 0.

    Asymptotic series at arguments >= 8 (after the recurrence psi(x) = psi(x+8) -
    sum_{j<8} 1/(x+j) where r < 8), written as differences so that both stay accurate for
    r up to 1e8 and more (alpha -> 0), where they are O(y / r) and O(y / r^2)."""
    shift = jnp.where(r < 8, 8.0, 0.0).astype(y.dtype)
    z0 = r + shift
    z1 = y + z0
    i0, i1 = 1 / z0, 1 / z1
    d_inv = -y * i0 * i1                          # 1/z1 - 1/z0
    q0, q1 = i0 * i0, i1 * i1

    def p_psi(q):   # psi(z) = log z - 1/(2z) - p_psi(1/z^2)
        return q * (1 / 12 - q * (1 / 120 - q * (1 / 252 - q * (1 / 240 - q / 132))))

    def p_tri(i, q):   # psi'(z) = 1/z + 1/(2z^2) + p_tri
        return i * q * (1 / 6 - q * (1 / 30 - q * (1 / 42 - q * (1 / 30 - q * 5 / 66))))

    d1 = jnp.log1p(y * i0) - 0.5 * d_inv - (p_psi(q1) - p_psi(q0))
    d2 = d_inv + 0.5 * d_inv * (i1 + i0) + (p_tri(i1, q1) - p_tri(i0, q0))
    s1y, s2y = _shifted_sums(y + r)
    s1r, s2r = _shifted_sums(r)
    use = shift > 0
    d1 = d1 - jnp.where(use, s1y - s1r, 0.0)
    d2 = d2 + jnp.where(use, s2y - s2r, 0.0)
    return d1, d2


class _Chunk(NamedTuple):
    t: jax.Array          # (c,) log alpha
    beta: jax.Array       # (c, p)
    lower: jax.Array      # (c,) bracket on t: C'(lower) > 0 (or the bound)
    upper: jax.Array      # (c,) C'(upper) < 0 (or the bound)
    done: jax.Array       # (c,) bool
    status: jax.Array     # (c,) int32
    it: jax.Array         # () iterations run
    n_it: jax.Array       # (c,) iterations per problem


def _estimate_chunk(d, y, off, w, pm, pv, log_bounds, tol, *, method, use_prior, max_iter):
    dtype = y.dtype
    X, p = d.X, d.p
    c, n = y.shape
    t_lo, t_hi = log_bounds[0], log_bounds[1]
    zero = jnp.sum(w * y, axis=1) <= 0                  # all-zero response: no estimate
    y = jnp.where(zero[:, None], 1.0, y).astype(dtype)  # a harmless stand-in, overwritten
    cox_reid = method == "cox-reid"

    def eta_of(beta):
        return beta @ X.T + off

    # 1. Start: weighted least squares of log(y + 0.1) - offset, then Poisson-like Newton
    #    steps (alpha at its lower bound) on the coefficients.
    z = jnp.log(y + 0.1) - off
    G0, _, _ = _sweep_inverse(_gram(d, w))
    beta = _matvec(G0, (w * z) @ X)
    a_lo = jnp.exp(t_lo)

    def beta_newton(beta, _):
        mu = jnp.exp(jnp.minimum(eta_of(beta), 700.0))
        u = 1 / (1 + a_lo * mu)
        Dinv, _, _ = _sweep_inverse(_gram(d, w * mu * (1 + a_lo * y) * u * u))
        step = _matvec(Dinv, (w * (y - mu) * u) @ X)
        return beta + _capped(step, X), None

    beta, _ = jax.lax.scan(beta_newton, beta, None, length=6)

    # 2. Joint Newton in (beta, t), the first iteration at the lower bound.
    def quantities(t, beta):
        a = jnp.exp(t)[:, None]
        r = 1 / a
        eta = eta_of(beta)
        mu = jnp.exp(jnp.minimum(eta, 700.0))
        u = 1 / (1 + a * mu)
        amu = a * mu
        wres = w * (y - mu)
        s = wres * u                                      # score per row (eta)
        D = w * mu * (1 + a * y) * u * u                  # observed information (eta)
        cvec = -wres * amu * u * u                        # d score / dt
        d1, d2 = _psi_differences(y, r)
        lgap = jnp.log1p(amu) - d1
        l_t = w * (r * lgap + (y - mu) * u)
        l_tt = w * (-r * lgap + r * r * d2 + mu * u - (y - mu) * amu * u * u)
        Dinv, _, ok = _sweep_inverse(_gram(d, D))
        score = s @ X
        xc = cvec @ X
        dbdt = _matvec(Dinv, xc)
        g = jnp.sum(l_t, axis=1)
        K = jnp.sum(l_tt, axis=1)
        if cox_reid:
            V = w * mu * u
            V1 = -V * amu * u
            V2 = V1 * (1 - amu) * u
            Binv, _, ok_b = _sweep_inverse(_gram(d, V))
            ok = ok & ok_b
            h = Binv.reshape(c, p * p) @ d.XX.T          # h_i = x_i' B^-1 x_i
            B1 = _gram(d, V1)
            M = jnp.einsum("cij,cjk->cik", Binv, B1)
            cr_b = -0.5 * ((h * w * mu * u * u) @ X)
            g = g - 0.5 * jnp.sum(h * V1, axis=1) + jnp.sum(cr_b * dbdt, axis=1)
            K = K - 0.5 * (jnp.sum(h * V2, axis=1) - jnp.einsum("cij,cji->c", M, M))
        if use_prior:
            g = g - (t - pm) / pv
            K = K - 1 / pv
        # profile (Schur complement) gradient and curvature for the joint step
        Dscore = _matvec(Dinv, score)
        g_prof = g + jnp.sum(xc * Dscore, axis=1)
        K_prof = K + jnp.sum(xc * dbdt, axis=1)
        decrement = jnp.sum(score * Dscore, axis=1)
        return g_prof, K_prof, Dscore, dbdt, decrement, ok

    a_mom = _moment_estimate(X, y, w, jnp.exp(jnp.minimum(eta_of(beta), 700.0)), p)
    t_start = jnp.clip(jnp.log(jnp.maximum(a_mom, 1e-300)), t_lo + 1.0, t_hi - 1.0)

    def beta_step(t, beta):
        """One Newton step on the coefficients at t; returns it and its Newton decrement."""
        a = jnp.exp(t)[:, None]
        mu = jnp.exp(jnp.minimum(eta_of(beta), 700.0))
        u = 1 / (1 + a * mu)
        Dinv, _, _ = _sweep_inverse(_gram(d, w * mu * (1 + a * y) * u * u))
        score = (w * (y - mu) * u) @ X
        step = _matvec(Dinv, score)
        return beta + _capped(step, X), jnp.sum(score * step, axis=1)

    def cond(s):
        return (s.it < max_iter) & ~jnp.all(s.done)

    def body(s):
        # a Newton step on beta first: the gradient in t below is then taken at a beta
        # whose error is the square of the previous one ("trusted" once that was < tol)
        beta, dec_before = beta_step(s.t, s.beta)
        g, K, Dscore, dbdt, dec, ok = quantities(s.t, beta)
        trusted = dec_before <= tol
        first = s.it == 0
        finite = jnp.isfinite(g) & jnp.isfinite(K) & jnp.all(jnp.isfinite(Dscore), axis=1)
        lower = jnp.where(trusted & (g > 0), jnp.maximum(s.lower, s.t), s.lower)
        upper = jnp.where(trusted & (g <= 0), jnp.minimum(s.upper, s.t), s.upper)
        newton = s.t - g / jnp.where(K < 0, K, -1.0)
        inside = (K < 0) & (newton > lower) & (newton < upper)
        # outside the bracket: bisect it where the gradient is trusted, else stay at t
        # and let the coefficients converge first
        t_new = jnp.where(inside, newton, jnp.where(trusted, 0.5 * (lower + upper), s.t))
        t_new = jnp.where(first, jnp.maximum(t_start, lower), t_new)
        t_new = jnp.clip(t_new, t_lo, t_hi)
        dt = t_new - s.t
        at_lo = (s.t <= t_lo) & (g <= 0)
        at_hi = (s.t >= t_hi) & (g >= 0)
        converged = ~first & trusted & (K < 0) & (jnp.abs(newton - s.t) <= tol)
        bound = (at_lo | at_hi) & trusted
        stop = ~s.done & (converged | bound | ~finite | ~ok)
        dt = jnp.where(converged, jnp.clip(newton, t_lo, t_hi) - s.t, dt)
        beta_next = beta + _capped(Dscore + dbdt * dt[:, None], X)
        # a converged problem takes its last (tiny) Newton step; a bound one keeps its t
        t_next = jnp.where(bound | ~finite, s.t,
                           jnp.where(converged, jnp.clip(newton, t_lo, t_hi), t_new))
        beta_next = jnp.where(finite[:, None], beta_next, s.beta)
        new_status = jnp.where(
            ~finite, int(Status.NON_FINITE),
            jnp.where(~ok, int(Status.SINGULAR),
                      jnp.where(bound, int(Status.AT_BOUND), int(Status.CONVERGED))))
        keep = s.done
        return _Chunk(
            t=jnp.where(keep, s.t, t_next),
            beta=jnp.where(keep[:, None], s.beta, beta_next),
            lower=jnp.where(keep, s.lower, lower),
            upper=jnp.where(keep, s.upper, upper),
            done=s.done | stop,
            status=jnp.where(stop, new_status, s.status).astype(jnp.int32),
            it=s.it + 1,
            n_it=jnp.where(keep, s.n_it, s.n_it + 1),
        )

    state = _Chunk(t=jnp.full((c,), t_lo, dtype), beta=beta, lower=jnp.full((c,), t_lo, dtype),
                   upper=jnp.full((c,), t_hi, dtype), done=zero,
                   status=jnp.where(zero, int(Status.NO_FINITE_ESTIMATE),
                                    int(Status.MAX_ITER)).astype(jnp.int32),
                   it=jnp.asarray(0, jnp.int32), n_it=jnp.zeros((c,), jnp.int32))
    state = jax.lax.while_loop(cond, body, state)

    # 3. Report: the criterion at the estimate; no estimate for an all-zero response.
    alpha = jnp.exp(state.t)
    mu = jnp.exp(jnp.minimum(eta_of(state.beta), 700.0))
    crit = jnp.sum(w * NegativeBinomial(alpha=alpha[:, None]).log_prob(y, mu), axis=1)
    if cox_reid:
        _, logdet, _ = _sweep_inverse(_gram(d, w * mu / (1 + alpha[:, None] * mu)))
        crit = crit - 0.5 * logdet
    if use_prior:
        crit = crit - 0.5 * (state.t - pm) ** 2 / pv
    return NBDispersion(
        alpha=jnp.where(zero, jnp.exp(t_lo), alpha),
        coef=jnp.where(zero[:, None], 0.0, state.beta),
        mu=jnp.where(zero[:, None], 0.0, mu),
        criterion=jnp.where(zero, 0.0, crit),
        status=state.status,
        iterations=state.n_it,
    )


def _capped(step, X, limit=5.0):
    """A coefficient step scaled so that no linear predictor moves by more than `limit`
    (a far start would otherwise overshoot exp's range)."""
    move = jnp.max(jnp.abs(step @ X.T), axis=1)
    return step * jnp.minimum(1.0, limit / jnp.maximum(move, 1e-300))[:, None]


def _moment_estimate(X, y, w, mu, p):
    """sum_i w_i ((y_i - mu_i)^2 - mu_i) / mu_i^2 / (sum_i w_i - p), the start of t."""
    dof = jnp.maximum(jnp.sum(w, axis=1) - p, 1.0)
    return jnp.sum(w * ((y - mu) ** 2 - mu) / mu**2, axis=1) / dof
