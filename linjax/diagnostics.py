"""Diagnostics of a fitted GLM and of a design: residuals, influence, collinearity,
calibration and separation.

Pure and traceable (jit / vmap) where the inputs are arrays, except
`check_separation`, which solves a linear program with scipy at the eager layer
(it is a check to run on concrete data before fitting).

- `residuals(result, X, y, kind=...)`: "response" y - mu; "pearson"
  (y - mu) sqrt(w / V(mu)); "deviance" sign(y - mu) sqrt(w d(y, mu));
  "working" (y - mu) d eta / d mu (R's working residuals); "anscombe"
  (A(y) - A(mu)) sqrt(w) / V(mu)^(1/6) with A(y) = int V(t)^(-1/3) dt
  (statsmodels' unscaled Anscombe residuals).
- `leverage`: the diagonal of the weighted hat matrix W^(1/2) X (X' W X)^-1 X' W^(1/2)
  (with the intercept column), from row norms of Q in a QR factorization, never an
  n x n matrix.
- `cooks_distance`: D_i = r_i^2 h_i / (phi k (1 - h_i)^2) with r_i the Pearson
  residual (statsmodels' GLMInfluence), flagged when D_i > 4 / n.
- `vif(X)`: 1 / (1 - R_j^2) of each column regressed on the others (with an
  intercept unless fit_intercept=False); `condition_number(X)`.
- `calibration_curve`, `brier_score`: binned observed rate against mean prediction
  (scikit-learn's bins), and the mean squared error of probabilities.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import beta as beta_fn
from jax.scipy.special import betainc

from linjax import _programs, inputs, validation
from linjax import families as F
from linjax.fit_statistics import information_parts
from linjax.solvers.gram import augmented

RESIDUAL_KINDS = ("response", "pearson", "deviance", "working", "anscombe")


def _prepare(result, X, y, family, weights, offset, scale=None):
    """Validate eagerly, then run the one compiled core (all residuals, leverage, Cook's)."""
    family = result.family if family is None else F.get_family(family)
    X, y, weights, offset = inputs.fit_inputs(X, y, family, weights, offset,
                                                  result.penalty, result.fit_intercept)
    if hasattr(X, "to_dense"):  # a linjax.designs object: leverage needs the matrix's QR
        X = X.to_dense()
    scale = jnp.asarray(jnp.nan if scale is None else scale, X.dtype)
    return _core(result.params, X, y, weights, offset, family, result.penalty, scale,
                 result.fit_intercept)


def residuals(result, X, y, kind="deviance", family=None, weights=None, offset=None):
    """Residuals of a fit: kind in response, pearson, deviance, working, anscombe."""
    if kind not in RESIDUAL_KINDS:
        raise ValueError(f"kind: unknown residual {kind!r}; choose one of {RESIDUAL_KINDS}.")
    out = _prepare(result, X, y, family, weights, offset)
    if kind not in out["residuals"]:
        raise NotImplementedError(f"anscombe residuals are not defined for {result.family!r}.")
    return out["residuals"][kind]


@_programs.jit(static_argnames=("fit_intercept",))
def _core(params, X, y, weights, offset, family, penalty, scale, fit_intercept):
    parts = information_parts(params, X, y, weights, offset, family, penalty, fit_intercept)
    mu, eta, w = parts["mu"], parts["eta"], parts["w"]
    kinds = RESIDUAL_KINDS if _has_anscombe(family) else RESIDUAL_KINDS[:-1]
    res = {kind: _residuals(family, y, mu, eta, w, kind) for kind in kinds}
    h = _leverage(parts)
    r = res["pearson"]
    pos = w > 0
    n = jnp.sum(pos)
    k = jnp.sum(parts["active"])
    chi2 = jnp.sum(jnp.where(pos, r**2, 0.0))
    default = chi2 / (n - k) if family.estimates_dispersion else jnp.ones((), X.dtype)
    phi = jnp.where(jnp.isnan(scale), default, scale)
    cooks = r**2 * h / (phi * k * (1.0 - h) ** 2)
    return {"residuals": res, "leverage": h, "cooks": cooks, "threshold": 4.0 / n}


def _has_anscombe(family):
    return isinstance(family, F.Gaussian | F.Poisson | F.Gamma | F.InverseGaussian | F.Binomial
                      | F.Tweedie | F.NegativeBinomial)


def _residuals(family, y, mu, eta, w, kind):
    r = y - mu
    if kind == "response":
        return r
    if kind == "pearson":
        return r * jnp.sqrt(w / family.variance(mu))
    if kind == "deviance":
        d = jnp.maximum(family.unit_deviance(y, mu), 0.0)
        return jnp.sign(r) * jnp.sqrt(w * d)
    if kind == "working":
        return r / family.link.inverse_deriv(eta)
    return (anscombe_transform(family, y) - anscombe_transform(family, mu)) * jnp.sqrt(w) / (
        family.variance(mu) ** (1.0 / 6.0))


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)


def anscombe_transform(family, y):
    """A(y) = int_0^y V(t)^(-1/3) dt, the variance-stabilizing transform of Anscombe."""
    if isinstance(family, F.Gaussian):
        return y
    if isinstance(family, F.Poisson):
        return 1.5 * y ** (2.0 / 3.0)
    if isinstance(family, F.Gamma):
        return 3.0 * y ** (1.0 / 3.0)
    if isinstance(family, F.InverseGaussian):
        return jnp.log(y)
    if isinstance(family, F.Binomial):
        a = 2.0 / 3.0
        return betainc(a, a, y) * beta_fn(a, a)
    if isinstance(family, F.Tweedie):
        p = family.power
        c = jnp.where(p == 3, 1.0, (3.0 - p) / 3.0)
        return jnp.where(p == 3, jnp.log(y), y**c / c)
    if isinstance(family, F.NegativeBinomial):
        # t = u^3: int_0^{y^(1/3)} 3 u (1 + alpha u^3)^(-1/3) du, a smooth integrand.
        upper = y ** (1.0 / 3.0)
        u = 0.5 * upper[..., None] * (jnp.asarray(_GL_NODES, y.dtype) + 1.0)
        f = 3.0 * u * (1.0 + family.alpha * u**3) ** (-1.0 / 3.0)
        return 0.5 * upper * jnp.sum(jnp.asarray(_GL_WEIGHTS, y.dtype) * f, axis=-1)
    raise NotImplementedError(f"anscombe residuals are not defined for {family!r}.")


def leverage(result, X, y, family=None, weights=None, offset=None):
    """Diagonal of the weighted hat matrix (intercept included), O(n p^2), no n x n matrix."""
    return _prepare(result, X, y, family, weights, offset)["leverage"]


def _leverage(parts):
    Xd, active = parts["Xd"], parts["active"]
    sw = jnp.sqrt(jnp.maximum(parts["w"] * parts["h"], 0.0))
    A = sw[:, None] * jnp.where(active, Xd, 0.0)
    aug = jnp.diag(jnp.sqrt(jnp.where(active, parts["ridge"], 1.0)))
    q, _ = jnp.linalg.qr(jnp.concatenate([A, aug], axis=0), mode="reduced")
    return jnp.sum(q[: Xd.shape[0]] ** 2, axis=1)


class CooksDistance(NamedTuple):
    """Cook's distance per observation, the 4 / n threshold and which exceed it."""

    distance: jax.Array
    influential: jax.Array
    threshold: jax.Array


def cooks_distance(result, X, y, family=None, weights=None, offset=None, scale=None):
    """Cook's distance r_i^2 h_i / (phi k (1 - h_i)^2) (Pearson r_i), flagged above 4 / n.

    phi is the fit's dispersion (Pearson chi2 / df_resid for families that estimate it,
    else 1) unless `scale` is given.
    """
    out = _prepare(result, X, y, family, weights, offset, scale)
    d = out["cooks"]
    return CooksDistance(d, d > out["threshold"], out["threshold"])


@_programs.jit(static_argnames=("fit_intercept",))
def vif(X, fit_intercept=True):
    """Variance inflation factor of every column: 1 / (1 - R_j^2), column j on the others.

    With an intercept the columns are centred and VIF_j is the j-th diagonal element
    of the inverse correlation matrix, read from the QR factor of the standardized
    design. fit_intercept=False uses uncentred R^2 (statsmodels on a design
    without a constant column).
    """
    X = X.to_dense() if hasattr(X, "to_dense") else jnp.asarray(X)  # a design: its matrix
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(validation.default_float())
    Z = X - jnp.mean(X, axis=0) if fit_intercept else X
    Z = Z / jnp.linalg.norm(Z, axis=0)
    R = jnp.linalg.qr(Z, mode="r")
    Rinv = jax.scipy.linalg.solve_triangular(R, jnp.eye(R.shape[0], dtype=R.dtype), lower=False)
    return jnp.sum(Rinv**2, axis=1)


@_programs.jit(static_argnames=("fit_intercept", "standardize"))
def condition_number(X, fit_intercept=False, standardize=False):
    """Ratio of the largest to the smallest singular value of the design.

    fit_intercept adds a column of ones first; standardize scales each column to unit
    norm first (Belsley's scaled condition number).
    """
    X = X.to_dense() if hasattr(X, "to_dense") else jnp.asarray(X)  # a design: its matrix
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(validation.default_float())
    X = augmented(X, fit_intercept)
    if standardize:
        X = X / jnp.linalg.norm(X, axis=0)
    s = jnp.linalg.svd(X, compute_uv=False)
    return s[0] / s[-1]


class CalibrationCurve(NamedTuple):
    """Per bin: observed rate, mean prediction and count (NaN rates in empty bins).

    `prob_true[counts > 0]` and `prob_pred[counts > 0]` are scikit-learn's
    `calibration_curve` output; the fixed length keeps the function jit/vmap friendly.
    """

    prob_true: jax.Array
    prob_pred: jax.Array
    counts: jax.Array


def calibration_curve(y, prob, n_bins=5, strategy="uniform", weights=None):
    """Observed rate against mean predicted probability in `n_bins` bins (scikit-learn's
    binning: `uniform` edges on [0, 1] or `quantile` edges of `prob`)."""
    y = jnp.asarray(y)
    prob = jnp.asarray(prob)
    dtype = jnp.result_type(prob.dtype, float)
    prob = prob.astype(dtype)
    y = y.astype(dtype)
    w = jnp.ones_like(prob) if weights is None else jnp.asarray(weights, dtype)
    if strategy == "uniform":
        edges = jnp.linspace(0.0, 1.0, n_bins + 1, dtype=dtype)
    elif strategy == "quantile":
        edges = jnp.percentile(prob, jnp.linspace(0.0, 100.0, n_bins + 1, dtype=dtype))
    else:
        raise ValueError(f"strategy: expected 'uniform' or 'quantile', got {strategy!r}.")
    ids = jnp.searchsorted(edges[1:-1], prob, side="left")
    counts = jax.ops.segment_sum(w, ids, num_segments=n_bins)
    sums = jax.ops.segment_sum(w * prob, ids, num_segments=n_bins)
    trues = jax.ops.segment_sum(w * y, ids, num_segments=n_bins)
    safe = jnp.where(counts > 0, counts, 1.0)
    nan = jnp.asarray(jnp.nan, dtype)
    return CalibrationCurve(jnp.where(counts > 0, trues / safe, nan),
                            jnp.where(counts > 0, sums / safe, nan), counts)


@_programs.jit
def brier_score(y, prob, weights=None):
    """Mean squared difference between 0/1 outcomes and predicted probabilities."""
    y = jnp.asarray(y)
    prob = jnp.asarray(prob)
    dtype = jnp.result_type(prob.dtype, float)
    err = (y.astype(dtype) - prob.astype(dtype)) ** 2
    if weights is None:
        return jnp.mean(err)
    w = jnp.asarray(weights, dtype)
    return jnp.sum(w * err) / jnp.sum(w)


class SeparationWarning(UserWarning):
    """The classes are (quasi-)completely separated: the maximum likelihood estimate is infinite."""


class Separation(NamedTuple):
    """Result of `check_separation`.

    separated: some direction b separates the classes (quasi-complete or complete);
    complete: every observation is strictly on its side; direction: such a b
    (intercept first when fit_intercept) scaled to max |b_j| = 1, None if not
    separated; separated_rows: observations on the separating boundary's strict side,
    whose fitted probabilities go to 0 or 1 along the direction.
    """

    separated: bool
    complete: bool
    direction: object
    separated_rows: object

    @property
    def kind(self):
        if self.complete:
            return "complete"
        return "quasi-complete" if self.separated else "none"


#: Rows in the first, sampled try of `certify_overlap` (at least 20 per coefficient).
OVERLAP_SAMPLE_ROWS = 2000


def certify_overlap(X, y, score, weights=None, fit_intercept=True):
    """True when the fit's score proves that no direction separates the classes. O(n p).

    Stiemke's lemma: no b with s_i z_i' b >= 0 for every binary row (s_i = +1 for y = 1,
    -1 for y = 0; z_i = [1, x_i] with an intercept), x_j' b = 0 for the proportions
    0 < y_j < 1, and one inequality strict, exists iff some lambda with
    lambda_i s_i > 0 on every binary row (any sign on proportions) has sum_i lambda_i z_i = 0.
    The score contributions c_i = -w_i d nll_i / d eta_i of any finite fit have the
    signs s_i, and their sum g = Z' c is ~0 at the optimum. Moving c by a weighted least
    squares step on a set S of rows, lambda = c - |c| * [i in S] (Z d) with
    H_S d = g, H_S = sum_{i in S} |c_i| z_i z_i', gives Z' lambda = 0 exactly; its signs
    stay those of c where s_i z_i' d < 1 on S. The test asks for 1/2 after adding a
    bound on the rounding of g and of the solve. Tried on ~`OVERLAP_SAMPLE_ROWS` evenly
    spaced rows (m k^2 flops), then on all rows (one Hessian); False when neither proves
    it (separation, or a fit too far from its optimum): then run `check_separation`.
    Zero-weight rows are ignored.
    """
    X_dev = X if isinstance(X, jax.Array) else jnp.asarray(X)
    column_max = _column_abs_max(X_dev)  # dispatched now, runs beside numpy's X' c below
    X = np.asarray(X, float)
    n = X.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, float).reshape(-1)
    y = np.asarray(y, float).reshape(-1)
    c = np.where(w > 0, np.asarray(score, float).reshape(-1), 0.0)
    sign = np.where(w > 0, np.where(y >= 1, 1.0, np.where(y <= 0, -1.0, 0.0)), 0.0)
    binary = sign != 0
    if not np.all(np.isfinite(c)) or np.any(sign[binary] * c[binary] <= 0):
        return False
    g = X.T @ c
    bound = np.abs(c).sum() * np.asarray(column_max, float)
    if fit_intercept:
        g, bound = np.r_[c.sum(), g], np.r_[np.abs(c).sum(), bound]
    k = g.shape[0]
    eps = np.finfo(float).eps
    rounding = 2 * (n + k + 2) * eps * bound
    stride = max(1, n // max(OVERLAP_SAMPLE_ROWS, 20 * k))
    tries = (slice(None, None, stride), slice(None)) if stride > 1 else (slice(None),)
    for rows in tries:
        if _overlap_on_rows(X[rows], c[rows], sign[rows], g, rounding, fit_intercept):
            return True
    return False


@_programs.jit
def _column_abs_max(X):
    return jnp.max(jnp.abs(X), axis=0)


def _overlap_on_rows(Xs, c, sign, g, rounding, fit_intercept):
    """`certify_overlap`'s test on one set of rows S (see there)."""
    Z = np.column_stack([np.ones(len(c)), Xs]) if fit_intercept else Xs
    h = np.abs(c)
    H = Z.T @ (h[:, None] * Z)
    try:
        chol = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return False
    eps = np.finfo(float).eps
    if not np.all(np.diag(chol) ** 2 > Z.shape[1] * eps * np.diag(H)):
        return False
    chol_inv = np.linalg.inv(chol)
    d = chol_inv.T @ (chol_inv @ g)
    Zd = Z @ d
    # what is left of g - H_S d after rounding: the residual, the rounding of g, of H_S
    # and of the product, bounded entrywise
    residual = (np.abs(H @ d - g) + rounding
                + 2 * len(c) * eps * (np.abs(Z).T @ (h * np.abs(Zd)))
                + 2 * Z.shape[1] * eps * (np.abs(H) @ np.abs(d)))
    # |z_i' H_S^-1 r| <= |L^-1 z_i| |L^-1 r| <= |z_i| |L^-1|_F^2 |r| (H_S = L L')
    slack = np.linalg.norm(Z, axis=1) * np.sum(chol_inv**2) * np.linalg.norm(residual)
    binary = sign != 0
    return bool(np.all(np.isfinite(Zd)) and np.all(sign[binary] * Zd[binary]
                                                    + slack[binary] <= 0.5))


def check_separation(X, y, fit_intercept=True, weights=None, tol=1e-7):
    """Detect complete or quasi-complete separation of a binary (or proportion) response.

    A separating direction b is a recession direction of the logistic loss:
    s_i x_i' b >= 0 for every observation (s_i = +1 for y = 1, -1 for y = 0,
    and x_i' b = 0 for 0 < y < 1), with at least one strict inequality; then the
    maximum likelihood estimate does not exist (Albert and Anderson 1984). This
    solves Konis' (2007) linear program max sum_i s_i x_i' b over the box |b_j| <= 1
    with scipy's HiGHS (on standardized columns), then max t subject to
    s_i x_i' b >= t for complete separation. Eager only: it runs on concrete data,
    once, before fitting. Zero-weight rows are ignored. Needs scipy (an optional
    dependency: `pip install scipy`); `certify_overlap` proves the absence of separation
    from a fit without it.
    """
    try:
        from scipy.optimize import linprog
    except ImportError as err:
        raise ImportError("check_separation solves a linear program with scipy, which is not "
                          "installed: pip install scipy.") from err

    X = np.asarray(validation.check_design(X), float)
    y = np.asarray(y, float).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y: expected {X.shape[0]} values to match X, got {y.shape[0]}.")
    keep = np.ones(len(y), bool) if weights is None else np.asarray(weights) > 0
    X, y = X[keep], y[keep]
    if fit_intercept:
        X = np.column_stack([np.ones(len(y)), X])
    norms = np.linalg.norm(X, axis=0)
    norms[norms == 0] = 1.0
    Z = X / norms
    s = np.where(y >= 1, 1.0, np.where(y <= 0, -1.0, 0.0))
    signed = s[s != 0, None] * Z[s != 0]
    mid = Z[s == 0]
    k = Z.shape[1]
    bounds = [(-1.0, 1.0)] * k
    eq = dict(A_eq=mid, b_eq=np.zeros(len(mid))) if len(mid) else {}
    lp = linprog(-signed.sum(axis=0), A_ub=-signed, b_ub=np.zeros(len(signed)), bounds=bounds,
                 method="highs", **eq)
    scale = max(1.0, float(np.abs(signed).sum()))
    separated = bool(lp.status == 0 and -lp.fun > tol * scale)
    if not separated:
        return Separation(False, False, None, np.zeros(keep.sum(), bool))
    b = lp.x
    complete = False
    if not len(mid):
        # max t s.t. s_i z_i' b >= t, |b| <= 1, t <= 1
        c = np.r_[np.zeros(k), -1.0]
        A = np.column_stack([-signed, np.ones(len(signed))])
        lp2 = linprog(c, A_ub=A, b_ub=np.zeros(len(signed)), bounds=bounds + [(None, 1.0)],
                      method="highs")
        if lp2.status == 0 and -lp2.fun > tol:
            complete = True
            b = lp2.x[:k]
    margin = s * (Z @ b)
    rows = margin > tol * np.abs(Z).sum(axis=1).max()
    direction = b / norms
    direction = direction / np.max(np.abs(direction))
    full_rows = np.zeros(len(keep), bool)
    full_rows[np.flatnonzero(keep)] = rows
    return Separation(True, complete, direction, full_rows)
