"""`fit_streaming`: exact fits over data read in chunks, one chunk in memory at a time.

`chunks` is a callable returning a fresh iterable of chunks, or a re-iterable collection
(a list, or an object whose `__iter__` starts over). Each chunk is `(X, y)`,
`(X, y, weights)` or `(X, y, weights, offset)`. A one-shot generator is refused: IRLS
reads the data once per iteration.

- solver="newton": exact IRLS. One pass accumulates the objective, gradient and
  Hessian (`linjax.scale.blocks.newton_sums`); the step, its halving and the stopping
  rules are `linjax.solvers.Newton`'s, so the answer is the in-memory `lj.fit`'s. The
  first pass computes R's starting values, as `lj.fit` does (a second pass moves the
  intercept where the family asks for it: Poisson with the log link).
- solver="lstsq" (Gaussian, identity link, no penalty or L2): one pass of a tall-skinny
  QR (`blocks.tsqr_merge`), accurate on ill-conditioned designs (never forms X'X).
- solver="sgd": mini-batch stochastic gradient (optax Adam) over the chunks, for data
  where exact passes cost too much: an approximate answer, `n_epochs` passes.

Memory: one chunk plus O(p^2). Chunks shorter than the first are padded with
zero-weight rows so that JAX compiles each pass once.

Example (pyarrow, optional): read a Parquet file in record batches::

    import pyarrow.parquet as pq

    def chunks():
        for batch in pq.ParquetFile("data.parquet").iter_batches(batch_size=1_000_000):
            frame = batch.to_pandas()
            yield frame[features].to_numpy(), frame["y"].to_numpy()

    result = lj.fit_streaming(chunks, family="poisson")
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs, inputs, validation
from linjax.families import Gaussian, get_family
from linjax.fit import FitResult
from linjax.penalties import L2, NoPenalty
from linjax.scale import blocks
from linjax.solvers.linalg import solve_psd
from linjax.solvers.lstsq import check_applicable
from linjax.solvers.newton import NewtonState
from linjax.solvers.newton_step import (
    damping,
    host_damped_step,
    newton_status,
    resolve_tols,
    stopping_rule,
)
from linjax.solvers.status import Status

_newton_sums = _programs.jit(blocks.newton_sums, static_argnames=("fisher", "fit_intercept"))
_value_sum = _programs.jit(blocks.value_sum, static_argnames=("fit_intercept",))
_start_sums = _programs.jit(blocks.start_sums, static_argnames=("fit_intercept",))
_shift_sums = _programs.jit(blocks.shift_sums, static_argnames=("fit_intercept",))
_tsqr_merge = _programs.jit(blocks.tsqr_merge, static_argnames=("fit_intercept",))
_solve_psd = _programs.jit(solve_psd)


def _source(chunks):
    if callable(chunks):
        return chunks
    try:
        it = iter(chunks)
    except TypeError as err:
        raise ValueError("chunks: expected a callable returning an iterable of (X, y[, weights"
                         "[, offset]]) chunks, or a list of chunks.") from err
    if it is chunks:
        raise ValueError(
            "chunks: a generator or iterator can be read only once, but an exact fit reads the "
            "data once per iteration; pass a callable that returns a new iterator (for example "
            "`lambda: read_chunks(path)`) or a list of chunks.")
    return lambda: chunks


class _Reader:
    """Validates chunks (on the first pass) and pads them to one shape; counts passes."""

    def __init__(self, chunks, family):
        self.source = _source(chunks)
        self.family = family
        self.rows = None
        self.p = None
        self.dtype = None
        self.passes = 0
        self.n = 0

    def __call__(self):
        self.passes += 1
        n_total = 0
        count = 0
        for i, chunk in enumerate(self.source()):
            count += 1
            yield self._prepare(i, chunk)
            n_total += self._last_rows
        if count == 0:
            raise ValueError("chunks: the source yielded no chunks" + (
                " on a second pass; a callable must return a new iterator each time."
                if self.passes > 1 else "."))
        self.n = n_total

    def _prepare(self, i, chunk):
        if not isinstance(chunk, tuple | list) or not 2 <= len(chunk) <= 4:
            raise ValueError(f"chunks: chunk {i} must be a tuple (X, y[, weights[, offset]]), "
                             f"got {type(chunk).__name__}.")
        X, y, w, o = (tuple(chunk) + (None, None))[:4]
        if self.passes == 1:                   # full validation on the first pass only
            try:
                # dense chunks only: fit_inputs would pass a sparse or structured design
                X = validation.as_numeric("X", X)
                inputs.fit_inputs(X, y, self.family, w, o, penalty=L2(1.0))
            except ValueError as err:
                raise ValueError(f"chunk {i}: {err}") from err
        X = np.asarray(X)
        if self.p is None:
            self.p, self.rows = X.shape[1], X.shape[0]
            self.dtype = validation.float_dtype_of(X, np.asarray(y))
        elif X.ndim != 2 or X.shape[1] != self.p:
            raise ValueError(f"chunk {i}: X has {X.shape[1:]} columns, the first chunk had "
                             f"{self.p}.")
        n = X.shape[0]
        dtype = self.dtype
        X = X.astype(dtype, copy=False)
        y = np.asarray(y, dtype).reshape(-1)
        w = np.ones(n, dtype) if w is None else np.broadcast_to(np.asarray(w, dtype).reshape(-1)
                                                                 if np.ndim(w) else w, (n,))
        o = np.zeros(n, dtype) if o is None else np.broadcast_to(np.asarray(o, dtype).reshape(-1)
                                                                  if np.ndim(o) else o, (n,))
        self._last_rows = n
        if n < self.rows:                      # pad to the first chunk's shape: zero weights
            pad = self.rows - n
            X = np.concatenate([X, np.zeros((pad, self.p), dtype)])
            y = np.concatenate([y, np.full(pad, y[0], dtype)])
            w = np.concatenate([w, np.zeros(pad, dtype)])
            o = np.concatenate([o, np.zeros(pad, dtype)])
        return X, y, w, o


def _add(acc, new):
    return new if acc is None else jax.tree_util.tree_map(jnp.add, acc, new)


def fit_streaming(chunks, family=None, penalty=None, solver="newton", fit_intercept=True,
                  init=None, max_iter=100, tol=None, xtol=None, max_halvings=40,
                  learning_rate=1e-2, n_epochs=10, key=None):
    """Fit one GLM over data that arrive in chunks; see the module docstring.

    family, penalty (smooth: none or L2 for "newton" and "lstsq"; any with a proximal
    map for "sgd"), fit_intercept, init: as `lj.fit`. max_iter, tol, xtol, max_halvings:
    as `linjax.solvers.Newton`. learning_rate, n_epochs: for solver="sgd".
    Returns a `FitResult`; `info` holds the number of passes over the data.
    """
    family = Gaussian() if family is None else get_family(family)
    penalty = NoPenalty() if penalty is None else penalty
    validation.refuse_firth(penalty)
    validation.refuse_estimated_alpha(family)
    validation.check_penalty(penalty)
    reader = _Reader(chunks, family)
    if solver == "newton":
        validation.refuse_nonsmooth_for_irls(penalty)
        return _newton(reader, family, penalty, fit_intercept, init, max_iter, tol, xtol,
                       max_halvings)
    if solver == "lstsq":
        check_applicable(family, penalty)
        return _lstsq(reader, family, penalty, fit_intercept)
    if solver == "sgd":
        return _sgd(reader, family, penalty, fit_intercept, init, learning_rate, n_epochs)
    raise ValueError(f"solver: expected 'newton', 'lstsq' or 'sgd', got {solver!r}.")


def _params(B, p, fit_intercept):
    coef, intercept = blocks.split(jnp.asarray(B), fit_intercept)
    return {"coef": coef, "intercept": jnp.asarray(intercept)}


def _newton(reader, family, penalty, fit_intercept, init, max_iter, tol, xtol, max_halvings):
    fisher = False if family.is_canonical else "auto"   # as linjax.solvers.Newton

    def start():
        acc = None
        for X, y, w, o in reader():
            acc = _add(acc, _start_sums(X, y, w, o, family, fit_intercept))
        return acc

    sums = start()
    total_w = sums[2]
    p, dtype = reader.p, reader.dtype

    def pen_parts(B):
        coef, _ = blocks.split(B, fit_intercept)
        g, h = penalty.smooth_grad(coef), penalty.smooth_hess_diag(coef)
        if fit_intercept:
            g = jnp.concatenate([jnp.zeros((1,), dtype), g])
            h = jnp.concatenate([jnp.zeros((1,), dtype), h])
        return penalty.value(coef), g, h

    def newton_pass(B):
        acc = None
        for X, y, w, o in reader():
            acc = _add(acc, _newton_sums(B, X, y, w, o, family, fisher, fit_intercept))
        f, g, H = acc
        pv, pg, ph = pen_parts(B)
        return f / total_w + pv, g / total_w + pg, H / total_w + jnp.diag(ph)

    if init is None:
        def shift_pass(B):
            sums = None
            for X, y, w, o in reader():
                sums = _add(sums, _shift_sums(B, X, y, w, o, fit_intercept))
            return sums

        B, fallback = blocks.start_from_sums(sums, penalty, family, fit_intercept, shift_pass)
        value, grad, hess = newton_pass(B)
        if not np.isfinite(float(value)):
            B = fallback
            value, grad, hess = newton_pass(B)
    else:
        B = jnp.asarray(init["coef"], dtype)
        if fit_intercept:
            B = jnp.concatenate([jnp.asarray(init.get("intercept", 0.0), dtype)[None], B])
        value, grad, hess = newton_pass(B)
    tol, xtol = resolve_tols(tol, xtol, dtype)
    status, n_iter = (Status.MAX_ITER, 0) if np.isfinite(float(value)) else (Status.NON_FINITE, 0)
    state = NewtonState(value, jnp.asarray(np.inf, dtype), jnp.ones((), dtype), False, False,
                        False)

    def trial(B, direction):
        def at(t):                                     # (objective, the whole pass) at t
            candidate = newton_pass(B + t * direction)
            return candidate[0], candidate
        return at

    # Newton's step and stopping rule (`linjax.solvers.newton_step`), each trial one pass
    while status == Status.MAX_ITER and n_iter < max_iter:
        n_iter += 1
        direction, singular = _solve_psd(hess, -grad)
        decrement = -jnp.dot(grad, direction)
        scale, slack, at_floor = damping(value, decrement)
        t, f_t, candidate, accepted = host_damped_step(trial(B, direction), value, slack,
                                                       max_halvings, whole=at_floor)
        t = jnp.asarray(t, dtype)
        converged, stalled = stopping_rule(decrement, state.decrement, t, direction, B,
                                           jnp.asarray(accepted), at_floor, scale, tol, xtol)
        if accepted:
            new_B = B + t * direction
            if not (np.all(np.isfinite(np.asarray(new_B))) and np.isfinite(float(f_t))):
                status = Status.NON_FINITE
                break
            B, (value, grad, hess) = new_B, candidate
        state = NewtonState(value, decrement, t, converged, stalled, singular)
        if bool(converged | stalled):
            status = Status(int(newton_status(stalled, singular)))
    info = {"passes": reader.passes, "n_rows": reader.n, "newton": state}
    return FitResult(_params(B, p, fit_intercept), jnp.asarray(value),
                     jnp.asarray(n_iter, jnp.int32),
                     jnp.asarray(int(status), jnp.int32), jnp.asarray(status == Status.CONVERGED),
                     family, penalty, info, fit_intercept, "newton")


@_programs.jit(static_argnames=("fit_intercept",))
def tsqr_solve(Raug, total_w, n_rows, penalty, fit_intercept, rcond=None):
    """Coefficients and objective from the TSQR factor of [sqrt(w) Xa | sqrt(w) (y - o)].

    Ridge enters as rows sqrt(W alpha f_j) e_j (W the total weight); a rank-deficient R
    gets the minimum-norm solution from its SVD. Returns (B, objective, rank). Traceable.
    """
    k = Raug.shape[0] - 1
    dtype = Raug.dtype
    p = k - int(fit_intercept)
    if isinstance(penalty, L2):
        pen = penalty.smooth_hess_diag(jnp.zeros((p,), dtype)) * total_w
        if fit_intercept:
            pen = jnp.concatenate([jnp.zeros((1,), dtype), pen])
        rows = jnp.concatenate([jnp.diag(jnp.sqrt(pen)), jnp.zeros((k, 1), dtype)], axis=1)
        Raug = jnp.linalg.qr(jnp.concatenate([Raug, rows]), mode="r")[: k + 1]
    R, qtb, rho = Raug[:k, :k], Raug[:k, k], Raug[k, k]
    diag = jnp.abs(jnp.diag(R))
    if rcond is None:
        rcond = jnp.finfo(dtype).eps * jnp.maximum(n_rows, k)
    full_rank = jnp.all(diag > rcond * jnp.max(diag))

    def triangular():
        safe = jnp.where(full_rank, R, jnp.eye(k, dtype=dtype))
        return jax.scipy.linalg.solve_triangular(safe, qtb, lower=False), jnp.asarray(k)

    def svd():
        u, s, vt = jnp.linalg.svd(R)
        keep = s > rcond * s[0]
        inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
        return vt.T @ (inv * (u.T @ qtb)), jnp.sum(keep)

    B, rank = jax.lax.cond(full_rank, triangular, svd)
    objective = (rho**2 + jnp.sum((R @ B - qtb) ** 2)) / (2 * total_w)
    return B, objective, rank


def _lstsq(reader, family, penalty, fit_intercept):
    Raug, total_w = None, 0.0
    for X, y, w, o in reader():
        if Raug is None:
            k = X.shape[1] + int(fit_intercept)
            Raug = jnp.zeros((k + 1, k + 1), X.dtype)
        Raug = _tsqr_merge(Raug, X, y, w, o, fit_intercept)
        total_w = total_w + jnp.sum(w)
    B, objective, rank = tsqr_solve(Raug, total_w, reader.n, penalty, fit_intercept)
    k = Raug.shape[0] - 1
    rank = int(rank)
    status = Status.CONVERGED if rank == k else Status.SINGULAR
    info = {"passes": reader.passes, "n_rows": reader.n, "rank": rank}
    return FitResult(_params(B, reader.p, fit_intercept), objective, jnp.asarray(1),
                     jnp.asarray(int(status), jnp.int32), jnp.asarray(status == 0), family,
                     penalty, info, fit_intercept, "lstsq")


def _sgd(reader, family, penalty, fit_intercept, init, learning_rate, n_epochs):
    import optax

    opt = optax.adam(learning_rate)

    @functools.partial(jax.jit, static_argnames=("fit_intercept",))
    def update(params, opt_state, X, y, w, o, fit_intercept):
        def loss(params):
            eta = X @ params["coef"] + params["intercept"] + o
            return jnp.sum(w * family.nll(y, eta)) / jnp.sum(w)

        grads = jax.grad(loss)(params)
        if not fit_intercept:
            grads["intercept"] = jnp.zeros_like(grads["intercept"])
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        params["coef"] = penalty.prox(params["coef"], learning_rate)
        return params, opt_state

    params, opt_state = None, None
    for _ in range(n_epochs):
        for X, y, w, o in reader():
            if params is None:
                if init is not None:
                    params = {"coef": jnp.asarray(init["coef"], X.dtype),
                              "intercept": jnp.asarray(init.get("intercept", 0.0), X.dtype)}
                else:
                    params = {"coef": jnp.zeros((X.shape[1],), X.dtype),
                              "intercept": jnp.zeros((), X.dtype)}
                opt_state = opt.init(params)
            params, opt_state = update(params, opt_state, X, y, w, o, fit_intercept)
    acc, total_w = 0.0, 0.0
    B = jnp.concatenate([params["intercept"][None], params["coef"]]) if fit_intercept else \
        params["coef"]
    for X, y, w, o in reader():
        acc = acc + _value_sum(B, X, y, w, o, family, fit_intercept)
        total_w = total_w + jnp.sum(w)
    objective = acc / total_w + penalty.value(params["coef"])
    info = {"passes": reader.passes, "n_rows": reader.n}
    return FitResult(params, objective, jnp.asarray(n_epochs), jnp.asarray(int(Status.MAX_ITER),
                     jnp.int32), jnp.asarray(False), family, penalty, info, fit_intercept, "sgd")
