"""Newton / IRLS for many GLMs that share one design X, explicitly batched.

All m problems advance together. Each iteration forms every gradient with one
(m, n) @ (n, k) product and every Hessian with one (m, n) @ (n, k(k+1)/2) product against
the column-pair products of [1, X], formed once (`gram.column_pairs`, docs/scale.md).

Per iteration the m x n arrays are touched as few times as possible (the cost at small p is
memory traffic over them, not flops):

- the line search's trial point computes, in one elementwise pass after the product
  eta = B [1, X]', the objective *and* the per-observation arrays the next Newton system
  needs; when the step is accepted (nearly always) they are carried to the next iteration,
  so no iteration evaluates the linear predictor or the likelihood twice;
- canonical links with closed forms (`CANONICAL`: Poisson-log, Binomial-logit,
  Gaussian-identity) use hand-written value, gradient and curvature of the loss
  b(eta) - y eta + c(y) instead of autodiff; Poisson-log needs a single array,
  W exp(eta): its gradient is (W exp(eta)) [1, X] - (W y) [1, X] with the second term
  formed once, and the objective is sum(W exp(eta)) - B . (W y)[1, X] + const, so the
  response is never read inside the loop. Other families and links use autodiff
  (`linjax.families.eta_derivatives`);
- the k x k systems (k = p + 1) are solved by the batched PSD solve of
  `linjax.solvers.linalg` (`solve_packed`: a Cholesky factorization written with XLA
  operations over the whole batch, unrolled for k <= `UNROLL_MAX`, no per-problem LAPACK
  call; the minimum-norm eigen pseudo-solve and status SINGULAR where a pivot fails).

The iteration is `linjax.solvers.Newton`'s, problem by problem: the same start
(`linjax.starting.initial_params`), its curvature choice (exact where the loss is convex in
eta, Fisher scoring elsewhere), and the same step and stopping rule, called here on (m,)
arrays (`linjax.solvers.newton_step`: `damping`, `damped_step`, `stopping_rule`,
`newton_status`); a problem stops (and is frozen: its direction is zero from then on) when
it converges, fails or leaves finite values, and the loop ends when all have stopped or
after max_iter.
"""

import math
from decimal import Decimal

import jax
import jax.numpy as jnp
import numpy as np

from linjax import links as L
from linjax.families import Binomial, Gaussian, Poisson, eta_derivatives
from linjax.solvers.gram import augmented, column_pairs, weighted_gram
from linjax.solvers.linalg import (  # noqa: F401 (UNROLL_MAX, jacobi_eigh: re-exported)
    UNROLL_MAX,
    jacobi_eigh,
    pair_indices,
    solve_packed,
)
from linjax.solvers.newton import NewtonState
from linjax.solvers.newton_step import (
    damped_step,
    damping,
    newton_status,
    resolve_tols,
    stopping_rule,
)
from linjax.solvers.status import Status, code
from linjax.starting import (
    intercept_only_from_rows,
    intercept_shift_from_sums,
    keep_finite,
    log_intercept_shift,
    shifts_intercept,
    start_link_terms,
    start_working,
)


# ----------------------------------------------------------------------------- the models
def _affine_shift(starting_mu):
    """a when starting_mu(y) is y + a (checked on numbers at trace time), else None."""
    probe = np.array([0.0, 1.0, 7.0])
    try:
        out = np.asarray(starting_mu(probe), dtype=float)
    except Exception:                                        # noqa: BLE001  (not numpy-able)
        return None
    a = float(out[0])
    return a if np.allclose(out, probe + a, rtol=0, atol=1e-15) and a > 0 else None


def _split_ln2():
    """ln 2 = hi + lo with hi on 25 significant bits, so k * hi is exact for |k| < 2^28."""
    ln2 = Decimal("0.69314718055994530941723212145817656807550013436")
    hi = np.array(float(ln2)).view(np.int64) & ~np.int64((1 << 28) - 1)
    hi = float(hi.view(np.float64))
    return hi, float(ln2 - Decimal(hi))


_LN2_HI, _LN2_LO = _split_ln2()
#: 2 atanh(s) = f - f^2/2 + s (f^2/2 + R), R = sum_j 2 s^(2j) / (2j + 1) (j = 1..10: the
#: first omitted term is below 2^-56 of the result for |s| <= 3 - 2 sqrt 2).
_ATANH_TERMS = tuple(2.0 / (2 * j + 1) for j in range(1, 11))
_MANTISSA = np.int64((1 << 52) - 1)
_EXPONENT_ONE = np.int64(1023 << 52)


def log_positive(x):
    """log x for positive, finite, normal x (the callers' arrays are bounded below by a
    positive normal number): x = 2^k m with m in [sqrt(2)/2, sqrt 2) from the bits,
    log x = k ln 2 + 2 atanh(s), s = (m - 1) / (m + 1), the series to s^21 (within 1 ulp
    of numpy's log), about twice as fast as XLA:CPU's general log, which also handles
    zero, negative, subnormal and non-finite input. Other dtypes use `jnp.log`."""
    if x.dtype != jnp.float64:
        return jnp.log(x)
    bits = jax.lax.bitcast_convert_type(x, jnp.int64)
    m = jax.lax.bitcast_convert_type((bits & _MANTISSA) | _EXPONENT_ONE, jnp.float64)  # [1, 2)
    big = m > math.sqrt(2.0)
    m = jnp.where(big, 0.5 * m, m)
    k = ((bits >> 52) - 1023 + big.astype(jnp.int64)).astype(jnp.float64)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    R = _ATANH_TERMS[-1]
    for c in _ATANH_TERMS[-2::-1]:
        R = R * z + c
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + R * z) + k * _LN2_LO)) - f)


_INV_LN2 = 1.44269504088896338700e+00


def exp_bounded(x):
    """exp x for |x| <= 708 (2^k stays a normal number; the callers clip to
    `linjax.links.Log`'s bound, 707.78) or NaN (kept): Cody-Waite reduction x = k ln 2 + r
    (ln 2 in two parts, k ln2_hi exact), the Taylor polynomial of degree 13 on
    |r| <= ln(2) / 2 (truncation < 1e-17 relative) and 2^k from the exponent bits; within
    1 ulp of numpy's exp. About 10% faster than XLA:CPU's exp, which also handles overflow,
    underflow and infinities. Other dtypes use `jnp.exp`."""
    if x.dtype != jnp.float64:
        return jnp.exp(x)
    k = jnp.round(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / math.factorial(13)
    for j in range(12, -1, -1):
        p = p * r + 1.0 / math.factorial(j)
    return p * jax.lax.bitcast_convert_type((k.astype(jnp.int64) + 1023) << 52, jnp.float64)


def _xlogx(y):
    """y log y (0 at y = 0) for y >= 0. Written without `where` around the log, which (like
    `jax.scipy.special.xlogy`) stops XLA:CPU from vectorizing it (5x slower); below the
    smallest normal number y log y is under 1e-305 either way. (XLA's log, not
    `log_positive`: these terms are summed in a reduction kernel that the integer bit
    manipulation would split in two, 3 ms slower at 500 x 500.)"""
    return y * jnp.log(jnp.maximum(y, jnp.finfo(y.dtype).tiny))


class SharedDesign:
    """m GLMs over one design X (n, p): Y (m, n); W (m, n) or (1, n), weights normalized to
    sum 1 per problem; O (m, n), (1, n) or None (no offset).

    `trial(B)` returns the objective at B and `aux`, the per-observation arrays that
    `system(B, aux)` turns into gradients and packed Hessians. This generic model uses
    autodiff of `family.nll`; `aux` is eta."""

    def __init__(self, X, Y, W, O, family, penalty, fit_intercept, fisher=False):
        self.X, self.Y, self.W, self.O = X, Y, W, O
        self.family, self.penalty, self.fit_intercept = family, penalty, fit_intercept
        self.fisher = fisher
        self.Xa = augmented(X, fit_intercept)
        self.XT = X.T
        self.pairs = column_pairs(self.Xa)
        self.p = X.shape[1]
        self.k = self.p + int(fit_intercept)

    # -- helpers
    def split(self, B):
        if self.fit_intercept:
            return B[:, 1:], B[:, 0]
        return B, jnp.zeros(B.shape[:1], B.dtype)

    def eta(self, B):
        coef, intercept = self.split(B)
        eta = coef @ self.XT
        if self.fit_intercept:
            eta = eta + intercept[:, None]
        return eta if self.O is None else eta + self.O

    #: vmap axes of the penalty's leaves (a pytree like it, 0 for a per-problem leaf of
    #: leading length m, None for a shared one); None: every leaf shared. `make_model` sets it.
    penalty_axes = None

    def per_problem_penalty(self, method, coef):
        """penalty.method(coef[i]) for every problem, each with its own penalty leaves."""
        return jax.vmap(lambda pen, c: getattr(pen, method)(c),
                        in_axes=(self.penalty_axes, 0))(self.penalty, coef)

    def penalty_value(self, B):
        return self.per_problem_penalty("value", self.split(B)[0])

    def penalty_terms(self, B):
        """(gradient (m, k), Hessian diagonal (m, k)) of the smooth penalty."""
        coef, _ = self.split(B)
        grad = self.per_problem_penalty("smooth_grad", coef)
        diag = self.per_problem_penalty("smooth_hess_diag", coef)
        if self.fit_intercept:
            grad = jnp.concatenate([jnp.zeros_like(grad[:, :1]), grad], axis=1)
            diag = jnp.concatenate([jnp.zeros_like(diag[:, :1]), diag], axis=1)
        return grad, diag

    def with_penalty(self, B, grad, Hp):
        pen_grad, pen_diag = self.penalty_terms(B)
        rows, cols, _ = pair_indices(self.k)
        on_diag = np.flatnonzero(rows == cols)
        Hp = jnp.broadcast_to(Hp, (B.shape[0], Hp.shape[1])).at[:, on_diag].add(pen_diag)
        return grad + pen_grad, Hp

    def row_sum(self, a):
        return jnp.sum(a, axis=1)

    #: Whether the singular fallback may call LAPACK (`eigen_solve`); `make_model` sets it.
    lapack = True
    # -- the interface
    def value(self, B):
        return self.trial(B)[0]

    def trial(self, B):
        eta = self.eta(B)
        return self.row_sum(self.W * self.family.nll(self.Y, eta)) + self.penalty_value(B), eta

    def system(self, B, eta):
        _, g, h = eta_derivatives(self.family, self.Y, eta, self.fisher)
        R, S = self.W * g, self.W * h
        return self.with_penalty(B, R @ self.Xa, S @ self.pairs)

    def start_link_terms(self, mu0):
        """(eta0, Fisher weight mu'(eta0)^2 / V(mu0)) at R's starting means mu0
        (`linjax.starting.start_link_terms`; the closed-form models write their own)."""
        return start_link_terms(self.family, mu0)

    def start_working(self):
        """(mu0, s0, s0 z0) of R's first IRLS step for every problem
        (`linjax.starting.start_working`)."""
        return start_working(self.family, self.Y, self.W, self.O, self.start_link_terms)

    def start_system(self):
        """(mu0, X'Wz, packed X'WX) of the first IRLS step (weights W mu'^2 / V at mu0)."""
        mu0, sw, swz = self.start_working()
        return mu0, swz @ self.Xa, sw @ self.pairs

    def initial(self):
        """`linjax.fit.initial_params` for every problem (R's first IRLS step, then the
        intercept shift where the family asks for it), with the objective and `aux` there:
        (B, value, aux). (`newton` solves the start's system inside its loop instead.)"""
        rhs, Hp = self.start_equations()
        return self.start_from(solve_packed(Hp, rhs, lapack=self.lapack)[0])

    def start_equations(self):
        """(rhs, packed Hessian) of R's first IRLS step, with the penalty's ridge part."""
        _, rhs, Hp = self.start_system()
        zero = jnp.zeros((self.Y.shape[0], self.k), rhs.dtype)
        return rhs, self.with_penalty(zero, zero, Hp)[1]   # the ridge part only

    def start_from(self, start):
        """(B, value, aux) at the solution `start` of `start_equations` (`initial`)."""
        family = self.family
        if shifts_intercept(family, self.fit_intercept):
            start, value, aux = self.shifted_trial(start)
        else:
            value, aux = self.trial(start)
        ok = jnp.isfinite(value)

        def fallback(_):
            B = jnp.zeros_like(start)
            if self.fit_intercept:
                # mu0 again (not kept from start_system: as an operand of the lax.cond an
                # (m, n) array would be written out on every call)
                B = B.at[:, 0].set(intercept_only_from_rows(family, self.Y, self.W, self.O))
            B = keep_finite(value, start, B)
            return (B,) + tuple(self.trial(B))

        return jax.lax.cond(jnp.all(ok), lambda _: (start, value, aux), fallback, None)

    def shifted_trial(self, B):
        """(B', value, aux) at B' = B with the intercept moved to its optimum given the
        slopes (`linjax.starting.log_intercept_shift`)."""
        total_y = self.row_sum(self.W * self.Y)
        B = B.at[:, 0].add(log_intercept_shift(total_y, self.eta(B), self.W))
        return (B,) + tuple(self.trial(B))

class PoissonLog(SharedDesign):
    """Poisson with the log link in closed form: aux = W mu, mu = exp(eta) (eta clipped as
    `linjax.links.Log`). Gradient (W mu) Xa - (W y) Xa, objective
    sum(W mu) - B . (W y) Xa + sum W (y log y - y - y o): the response enters only
    through (W y) Xa and the constant, both formed once."""


    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        Y, W = self.Y, self.W
        if self.fit_intercept:
            # pair (0, j) of [1, X] is column j itself: S @ pairs holds S @ Xa already
            _, _, packed = pair_indices(self.k)
            self.Q, self.grad_cols, self.hess_cols = self.pairs, packed[0], slice(None)
        else:
            self.Q = jnp.concatenate([self.Xa, self.pairs], axis=1)
            self.grad_cols, self.hess_cols = slice(0, self.k), slice(self.k, None)
        # Shared weights (1, n) fold into the design side: Y @ (W' * Q) needs no (m, n) W * Y.
        # With an intercept that product is also the start's Hessian (from mu0 = y + a).
        self.shared_w = W.shape[0] == 1
        self.YWQ = Y @ (W.T * self.Q) if self.shared_w else (W * Y) @ self.Q
        self.c = self.YWQ[:, self.grad_cols]                  # (W y) Xa, (m, k)
        const = W * (_xlogx(Y) - Y)
        if self.O is not None:
            const = const - W * Y * self.O
        self.const = self.row_sum(const)

    def start_system(self):
        a = _affine_shift(self.family.starting_mu)
        if a is None:
            return super().start_system()
        # mu0 = starting_mu(y) = y + a >= a > 0; Fisher weight mu'^2 / V = mu0
        mu0, sw, swz = start_working(self.family, self.Y, self.W, self.O,
                                     lambda mu0: (log_positive(mu0), mu0))
        rhs = swz @ self.Xa
        if self.shared_w:
            # (W (y + a)) @ pairs = (W y) @ pairs + a W @ pairs, the first term formed already
            Hp = self.YWQ[:, self.hess_cols] + a * (self.W @ self.pairs)
        else:
            Hp = sw @ self.pairs
        return mu0, rhs, Hp

    def trial(self, B, eta=None):
        eta = self.eta(B) if eta is None else eta
        bound = L.maxlog(eta)
        S = self.W * exp_bounded(jnp.clip(eta, -bound, bound))
        value = (self.row_sum(S) - jnp.sum(B * self.c, axis=1) + self.const
                 + self.penalty_value(B))
        return value, S

    def shifted_trial(self, B):
        """As `SharedDesign.shifted_trial` from one exp pass: at B + delta e_0, S scales by
        e^delta and the objective moves by sum S (e^delta - 1) - delta sum W y (c's column
        0); where the bounded exp clipped an eta, the trial is evaluated again."""
        eta = self.eta(B)
        value, S = self.trial(B, eta)
        total_y, total_mu = self.c[:, 0], self.row_sum(S)
        delta = intercept_shift_from_sums(total_y, total_mu)
        B = B.at[:, 0].add(delta)
        factor = jnp.exp(delta)
        value = value + total_mu * (factor - 1.0) - delta * total_y
        S = S * factor[:, None]
        unclipped = jnp.max(jnp.abs(eta)) + jnp.max(jnp.abs(delta)) < L.maxlog(eta)
        return jax.lax.cond(unclipped, lambda _: (B, value, S),
                            lambda _: (B,) + tuple(self.trial(B)), None)

    def system(self, B, S):
        M = S @ self.Q
        return self.with_penalty(B, M[:, self.grad_cols] - self.c, M[:, self.hess_cols])


class BinomialLogit(SharedDesign):
    """Binomial with the logit link in closed form, one exp and one log1p per observation:
    loss y softplus(-eta) + (1 - y) softplus(eta) (as `Binomial.nll`), gradient
    sigmoid(eta) - y, curvature e / (1 + e)^2 with e = exp(-|eta|); aux = (W g, W h)."""


    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        y = self.Y
        self.const = self.row_sum(self.W * (_xlogx(y) + _xlogx(1 - y)))

    def trial(self, B):
        eta = self.eta(B)
        y = self.Y
        e = jnp.exp(-jnp.abs(eta))
        log1pe = jnp.log1p(e)
        sp_pos = jnp.maximum(eta, 0.0) + log1pe      # softplus(eta) = -log(1 - mu)
        sp_neg = jnp.maximum(-eta, 0.0) + log1pe     # softplus(-eta) = -log(mu)
        nll = y * sp_neg + (1.0 - y) * sp_pos
        inv = 1.0 / (1.0 + e)
        mu = jnp.where(eta >= 0, inv, e * inv)
        value = self.row_sum(self.W * nll) + self.const + self.penalty_value(B)
        return value, (self.W * (mu - y), self.W * (e * inv * inv))

    def system(self, B, aux):
        R, S = aux
        return self.with_penalty(B, R @ self.Xa, S @ self.pairs)

    def start_link_terms(self, mu0):
        return jnp.log(mu0) - jnp.log1p(-mu0), mu0 * (1.0 - mu0)


class GaussianIdentity(SharedDesign):
    """Gaussian with the identity link: loss (y - eta)^2 / 2, gradient eta - y, curvature 1,
    so every Hessian is the weighted Gram, formed once; aux = W (eta - y)."""


    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.gram = self.W @ self.pairs                # (m or 1, K2)

    def trial(self, B):
        r = self.eta(B) - self.Y
        value = 0.5 * self.row_sum(self.W * r * r) + self.penalty_value(B)
        return value, self.W * r

    def system(self, B, R):
        return self.with_penalty(B, R @ self.Xa, self.gram)

    def start_link_terms(self, mu0):
        return mu0, jnp.ones((1, 1), mu0.dtype)   # weights W: shared rows stay (1, n)


class StackedDesign(SharedDesign):
    """m GLMs with a design each: X (m, n, p) (`fit_batch`'s stacked designs). The same
    iteration as `SharedDesign` (autodiff of `family.nll`, aux = eta), with the products
    batched over the problems: eta = einsum(X, coef) and gradients Xa_i' r_i as one
    product each, Hessians Xa_i' diag(s_i) Xa_i one problem after another in a `lax.map`;
    one Newton loop for all problems instead of m single-problem loops under `vmap` (which
    run every problem's while loops to the slowest one's count, many small kernels each)."""


    def __init__(self, X, Y, W, O, family, penalty, fit_intercept, fisher=False):
        self.X, self.Y, self.W, self.O = X, Y, W, O
        self.family, self.penalty, self.fit_intercept = family, penalty, fit_intercept
        self.fisher = fisher
        self.Xa = augmented(X, fit_intercept)
        self.p = X.shape[2]
        self.k = self.p + int(fit_intercept)

    def eta(self, B):
        coef, intercept = self.split(B)
        eta = jnp.einsum("mnp,mp->mn", self.X, coef)
        if self.fit_intercept:
            eta = eta + intercept[:, None]
        return eta if self.O is None else eta + self.O

    def products(self, R):
        """Xa_i' r_i for every problem: (m, k)."""
        return jnp.einsum("mn,mnk->mk", R, self.Xa)

    def packed_hessians(self, S):
        """Xa_i' diag(s_i) Xa_i for every problem, packed upper triangles (m, k(k+1)/2)."""
        rows, cols, _ = pair_indices(self.k)
        S = jnp.broadcast_to(S, self.Xa.shape[:2])
        # one Gram per problem in a sequential map (`gram.weighted_gram`): XLA:CPU's batched
        # dot_general (problems as its batch dimension) measured 4-10x slower here
        H = jax.lax.map(lambda a: weighted_gram(a[0], a[1], self.fit_intercept), (self.X, S))
        return H[:, rows, cols]

    def system(self, B, eta):
        _, g, h = eta_derivatives(self.family, self.Y, eta, self.fisher)
        return self.with_penalty(B, self.products(self.W * g), self.packed_hessians(self.W * h))

    def start_system(self):
        mu0, sw, swz = self.start_working()
        return mu0, self.products(swz), self.packed_hessians(sw)


#: (family type, link type) -> closed-form model.
CANONICAL = {(Poisson, L.Log): PoissonLog, (Binomial, L.Logit): BinomialLogit,
             (Gaussian, L.Identity): GaussianIdentity}


def make_model(X, Y, W, O, family, penalty, fit_intercept, solver, closed_form=True,
               lapack=True, penalty_axes=None):
    """The batched model for `family` (X (n, p) shared, or (m, n, p): `StackedDesign`):
    closed form for `CANONICAL` pairs (where observed and
    expected curvature coincide, so any `solver.fisher` gives the same iteration), autodiff
    otherwise. lapack=False: no LAPACK kernel in the compiled code (`eigen_solve`).
    penalty_axes: 0 or None per penalty leaf (in `jax.tree_util.tree_leaves` order): 0 for a
    leaf that holds one value (alpha) or one row (weights) per problem."""
    fisher = solver.fisher if solver.fisher is not None else (
        False if family.is_canonical else "auto")
    cls = CANONICAL.get((type(family), type(family.link))) if closed_form else None
    if X.ndim == 3:   # a design per problem: the generic model with batched products
        cls = StackedDesign
    model = (cls or SharedDesign)(X, Y, W, O, family, penalty, fit_intercept, fisher)
    model.lapack = lapack
    if penalty_axes is not None and any(a == 0 for a in penalty_axes):
        model.penalty_axes = jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(penalty), list(penalty_axes))
    return model


# ----------------------------------------------------------------------------- Newton, batched
def _new_state(value, *fields):
    """A `NewtonState` of (m,) arrays; fields not given (flags) are False."""
    false = jnp.zeros(value.shape, bool)
    given = (value,) + fields
    return NewtonState(*given, *([false] * (len(NewtonState._fields) - len(given))))


def _select(mask, new, old):
    return jax.tree_util.tree_map(
        lambda a, b: jnp.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)


def newton(model, B=None, solver=None):
    """Run Newton from B (m, k) (None: the IRLS start); returns
    (B, value, n_iter, status, NewtonState).

    Without B the loop's first pass solves the start's equations (`start_equations`) with
    the same batched solve as its Newton steps and finishes the start there
    (`start_from`), as `linjax.solvers.Newton`'s irls_start does: the program holds one
    copy of the solve (the unrolled Cholesky and its eigen fallback) instead of two."""
    start = None
    if B is None:
        start = model.start_equations()
        B = jnp.zeros_like(start[0])
        value, aux = jax.eval_shape(model.trial, B)   # placeholders until the start's pass
        value = jnp.zeros(value.shape, value.dtype)
        aux = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), aux)
    else:
        value, aux = model.trial(B)
    dtype = B.dtype
    tol, xtol = resolve_tols(solver.tol, getattr(solver, "xtol", None), dtype)
    m = B.shape[0]
    max_halvings = getattr(solver, "max_halvings", 40)

    def make_body(model):
        def step(carry, grad, direction, singular):
            B, aux, state, i, done, status, n_iter = carry
            active = ~done
            value, prev = state.value, state.decrement
            direction = jnp.where(active[:, None], direction, 0.0)   # stopped: stay put
            decrement = -jnp.sum(grad * direction, axis=1)
            # Newton's step and stopping rule (`linjax.solvers.newton_step`), per problem
            scale, slack, at_floor = damping(value, decrement)
            t, f_t, aux_t, accepted = damped_step(
                lambda t: model.trial(B + t[:, None] * direction), value, slack, max_halvings,
                model.trial(B + direction), whole=at_floor, active=active)
            converged, stalled = stopping_rule(decrement, prev, t, direction, B, accepted,
                                               at_floor, scale, tol, xtol)
            new_B = jnp.where(accepted[:, None], B + t[:, None] * direction, B)
            new_value = jnp.where(accepted, f_t, value)
            new_state = _new_state(new_value, decrement, t, converged, stalled, singular)
            new_status = newton_status(stalled, singular)
            stop = converged | stalled

            finite = jnp.all(jnp.isfinite(new_B), axis=1) & jnp.isfinite(new_state.value)
            move = active & finite
            B = jnp.where(move[:, None], new_B, B)
            state = _select(move, new_state, state)
            # The trial's aux is the one at the new B wherever the problem goes on: an active
            # problem that did not move to the trial point (rejected step or non-finite
            # values) stops in this iteration, and a stopped problem's aux is never read
            # again (its direction is zero, its state and status frozen). So no selection
            # (a (m, n) copy per iteration) is needed.
            aux = aux_t
            status = jnp.where(done, status, jnp.where(finite, new_status,
                                                       code(Status.NON_FINITE)))
            n_iter = n_iter + active.astype(n_iter.dtype)
            done = done | stop | ~finite
            return B, aux, state, i + 1, done, status, n_iter

        def body(carry):
            B, aux, state, i, done, status, n_iter = carry[:7]
            active = ~done
            if start is None:
                grad, Hp = model.system(B, aux)
            else:   # the start's pass solves the start's equations (rhs = -grad)
                first = carry[7]
                grad, Hp = jax.lax.cond(first, lambda: (-start[0], start[1]),
                                        lambda: model.system(B, aux))
            direction, singular = solve_packed(Hp, -grad, active, model.lapack)
            if start is None:
                return step(carry, grad, direction, singular)
            return jax.lax.cond(first, lambda: begin(direction, i),
                                lambda: step(carry[:7], grad, direction, singular)) + (
                                    jnp.zeros_like(first),)
        return body

    def begin(start_B, i):
        """The carry at R's start (the start's pass; `Newton.irls_start`'s)."""
        B, value, aux = model.start_from(start_B)
        state = _new_state(value, jnp.full((m,), jnp.inf, dtype), jnp.ones((m,), dtype))
        start_finite = jnp.all(jnp.isfinite(B), axis=1) & jnp.isfinite(value)
        status = jnp.where(start_finite, code(Status.MAX_ITER), code(Status.NON_FINITE))
        return B, aux, state, i + 1, ~start_finite, status, jnp.zeros((m,), jnp.int32)

    passes = solver.max_iter + (start is not None)   # the start's pass first

    def cond(carry):
        done, i = carry[4], carry[3]
        return jnp.any(~done) & (i < passes)

    state = _new_state(value, jnp.full((m,), jnp.inf, dtype), jnp.ones((m,), dtype))
    start_finite = jnp.all(jnp.isfinite(B), axis=1) & jnp.isfinite(value)
    if start is not None:
        start_finite = jnp.ones((m,), bool)
    status = jnp.where(start_finite, code(Status.MAX_ITER), code(Status.NON_FINITE))
    carry = (B, aux, state, jnp.asarray(0, jnp.int32), ~start_finite, status,
             jnp.zeros((m,), jnp.int32))
    if start is not None:
        carry = carry + (jnp.asarray(True),)
    carry = jax.lax.while_loop(cond, make_body(model), carry)
    B, _, state, _, done, status, n_iter = carry[:7]
    status = jnp.where(done, status, code(Status.MAX_ITER))
    return B, state.value, n_iter, status, state
