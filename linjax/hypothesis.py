"""Wald, likelihood-ratio and score tests of fitted GLMs, one per problem of a batch.

Each function takes a single fit or a `lj.fit_batch` result (every problem tested on its
own) and returns a `HypothesisTest` whose numbers carry the batch's leading axis m. The
conventions are R's (`anova.glm`) and statsmodels' (`GLMResults.wald_test`, `score_test`),
stated in docs/statistics.md; they are also reached as `lj.inference.wald_test`, etc.

- Wald: W = (C b - c)' (C V C')^-1 (C b - c) with V the summary's covariance; chi2(q), or
  F = W / q on (q, df_resid) degrees of freedom where the dispersion is estimated.
- Likelihood ratio: D = deviance(reduced) - deviance(full) on df = df_resid(reduced) -
  df_resid(full); chi2: D / phi ~ chi2(df); F: (D / df) / phi ~ F(df, df_resid(full)), with
  phi the full model's dispersion (R's `anova(reduced, full, test=)`).
- Score (Rao): S = U' I^-1 U / phi at the reduced fit, U and I the score and expected
  information of the full design; the quadratic form is the explained sum of squares of
  the Pearson residuals regressed on the weighted full design (R's `anova(test="Rao")`).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc, gammaincc

from linjax import _programs, inputs, validation
from linjax import fit_statistics as inf
from linjax._pytree import pytree_dataclass, static_field
from linjax.batch_checks import batch_inputs
from linjax.penalties import NoPenalty
from linjax.solvers import linalg
from linjax.solvers.gram import augmented
from linjax.summary import Summary


@pytree_dataclass
class HypothesisTest:
    """The outcome of a test: `statistic` (chi2 or F value), `pvalue`, `df` (restrictions
    tested), `df_denom` (F's denominator degrees of freedom; inf for chi2), and, for the
    likelihood-ratio test, `deviance` (the deviance difference). For a batch each number
    has a leading axis m and `test[i]` is problem i's."""

    statistic: jax.Array
    pvalue: jax.Array
    df: jax.Array
    df_denom: jax.Array
    deviance: object = None
    test: str = static_field(default="")
    distribution: str = static_field(default="chi2")

    def __getitem__(self, index):
        return jax.tree_util.tree_map(lambda a: a[index], self)

    def __str__(self):
        stat = np.asarray(self.statistic, float)
        if stat.ndim == 0:
            dist = (f"F({float(self.df):g}, {float(self.df_denom):g})"
                    if self.distribution == "F" else f"chi2({float(self.df):g})")
            return (f"{self.test} test: {dist} = {float(stat):.6g}, "
                    f"p-value = {float(self.pvalue):.4g}")
        p = np.asarray(self.pvalue, float)
        finite = p[np.isfinite(p)]
        spread = (f"median {np.median(finite):.4g}, {int(np.sum(finite < 0.05))} below 0.05"
                  if finite.size else "none defined")
        return (f"{self.test} tests of {stat.shape[0]} problems ({self.distribution}): "
                f"p-values {spread}; test[i] is problem i's")

    __repr__ = __str__


# -- reference distributions, pure JAX --------------------------------------------------

def chi2_sf(x, df):
    """P(X > x) for X ~ chi2(df): the regularized upper gamma function Q(df / 2, x / 2)."""
    return gammaincc(df / 2.0, x / 2.0)


def f_sf(f, df1, df2):
    """P(F > f) for F ~ F(df1, df2) = I_{df2 / (df2 + df1 f)}(df2 / 2, df1 / 2); df2 = inf
    gives the chi2(df1) tail of df1 f (R's F test with a known dispersion)."""
    finite = jnp.isfinite(df2)
    d2 = jnp.where(finite, df2, 1.0)
    p = betainc(d2 / 2.0, df1 / 2.0, d2 / (d2 + df1 * f))
    return jnp.where(finite, p, chi2_sf(df1 * f, df1))


def _result(statistic, df, df_denom, use_f, test, deviance=None):
    """Tail probability of the statistic; NaN where df <= 0 or the statistic is negative
    (as R's stat.anova)."""
    df, df_denom = jnp.asarray(df, statistic.dtype), jnp.asarray(df_denom, statistic.dtype)
    defined = (df > 0) & (statistic >= 0)
    statistic = jnp.where(defined, statistic, jnp.nan)
    safe_df = jnp.where(df > 0, df, 1.0)
    p = f_sf(statistic, safe_df, df_denom) if use_f else chi2_sf(statistic, safe_df)
    return HypothesisTest(statistic, jnp.where(defined, p, jnp.nan), df, df_denom, deviance,
                          test, "F" if use_f else "chi2")


# -- inputs -----------------------------------------------------------------------------

def _summary_of(result, X, y, weights, offset, name, **options):
    """The `Summary` to test: `result` itself, or `summarize` of a FitResult on its data."""
    if isinstance(result, Summary):
        if X is not None or y is not None:
            raise ValueError(f"{name}: is a Summary, which already holds its statistics; pass "
                             "X and y only with a FitResult.")
        return result
    if not hasattr(result, "params"):
        raise TypeError(f"{name}: expected a FitResult (lj.fit, lj.fit_batch) or the Summary "
                        f"of one, got {type(result).__name__}.")
    if X is None or y is None:
        raise ValueError(f"{name}: a FitResult is tested on the data it was fitted on: pass X "
                         "and y (and its weights and offset), or pass its Summary.")
    return inf.summarize(result, X, y, weights=weights, offset=offset, **options)


def _n_problems(summary):
    return None if np.ndim(summary.params) == 1 else int(np.shape(summary.params)[0])


def _require_unpenalized(result, name):
    penalty = getattr(result, "penalty", None)
    if penalty is not None and not isinstance(penalty, NoPenalty):
        raise ValueError(f"{name}: is a penalized fit ({type(penalty).__name__}); likelihood-"
                         "ratio and score tests assume maximum likelihood estimates. Refit "
                         "without a penalty, or use wald_test.")


# -- Wald --------------------------------------------------------------------------------

def _solve(V, d):
    return jnp.linalg.solve(V, d)


_solve_one = linalg.sequential_on_cpu(_solve)   # no batched LAPACK kernel on CPU under vmap


def _wald_quadratic(params, cov, C, c):
    """(C b - c)' (C V C')^-1 (C b - c); coefficients the contrast does not involve may be
    NaN (aliased, or without a standard error) without spoiling the statistic."""
    unused = jnp.all(C == 0, axis=0)
    b = jnp.where(unused, 0.0, params)
    V = jnp.where(unused[:, None] | unused[None, :], 0.0, cov)
    d = C @ b - c
    return d @ _solve_one(C @ V @ C.T, d)


@_programs.jit(static_argnames=("batch", "batch_value"))
def _wald_statistics(params, cov, C, c, batch, batch_value):
    if not batch:
        return _wald_quadratic(params, cov, C, c)
    return jax.vmap(_wald_quadratic, in_axes=(0, 0, None, 0 if batch_value else None))(
        params, cov, C, c)


def wald_test(result, contrast, X=None, y=None, *, value=0.0, use_f=None, weights=None,
              offset=None, cov_type="nonrobust", dispersion=None):
    """Wald test of C beta = c per problem (docs/statistics.md), as statsmodels' wald_test.

    result: a `Summary` (of one fit or a batch), or a FitResult with its data X, y (and
    weights, offset; `cov_type`, `dispersion` as `summarize`). contrast: C, a vector (one
    restriction) or a (q, k) matrix over the k coefficients of the table (the intercept
    first); value: c, a number, (q,), or (m, q) per problem. use_f: F = W / q on (q,
    df_resid) degrees of freedom; default where the dispersion is estimated (t
    statistics), else chi2(q) on W (statsmodels' GLM default is use_f=False).
    """
    s = _summary_of(result, X, y, weights, offset, "result", cov_type=cov_type,
                    dispersion=dispersion)
    m = _n_problems(s)
    k = np.shape(s.params)[-1]
    C = validation.as_numeric("contrast", contrast)
    C = np.atleast_2d(np.asarray(C, float))
    if C.ndim != 2 or C.shape[1] != k or C.shape[0] == 0:
        raise ValueError(f"contrast: expected a vector of {k} numbers or a (q, {k}) matrix, one "
                         f"column per coefficient of the table ({', '.join(s.names)}), got "
                         f"shape {np.shape(contrast)}.")
    if not np.all(np.isfinite(C)):
        raise ValueError("contrast: has non-finite entries.")
    q = C.shape[0]
    if np.linalg.matrix_rank(C) < q:
        raise ValueError(f"contrast: its {q} rows are linearly dependent (rank "
                         f"{np.linalg.matrix_rank(C)}); drop the redundant restrictions.")
    c = validation.as_numeric("value", value)
    batch_value = m is not None and np.ndim(c) == 2
    want = (m, q) if batch_value else (q,)
    if np.ndim(c) > 2 or (np.ndim(c) == 2 and (m is None or np.shape(c) != (m, q))) or (
            np.ndim(c) == 1 and np.shape(c) != (q,)):
        raise ValueError(f"value: expected a number, shape ({q},), or ({m}, {q}) for a batch "
                         f"of {m}, got shape {np.shape(c)}." if m else
                         f"value: expected a number or shape ({q},), got shape {np.shape(c)}.")
    dtype = jnp.asarray(s.params).dtype
    C = jnp.asarray(C, dtype)
    c = jnp.broadcast_to(jnp.asarray(c, dtype), want)
    use_f = bool(s.use_t) if use_f is None else bool(use_f)
    W = _wald_statistics(s.params, s.cov_params, C, c, m is not None, batch_value)
    df_denom = s.df_resid if use_f else jnp.full(jnp.shape(W), jnp.inf, dtype)
    return _result(W / q if use_f else W, jnp.full(jnp.shape(W), q, dtype), df_denom, use_f,
                   "Wald")


# -- likelihood ratio ------------------------------------------------------------------------

LR_TESTS = ("F", "chisq")


def lr_test(full, reduced, X_full=None, X_reduced=None, y=None, *, weights=None, offset=None,
            test=None, dispersion=None):
    """Likelihood-ratio (analysis of deviance) test of a reduced model nested in a full one,
    per problem, as R's `anova(reduced, full, test=)` (docs/statistics.md).

    full, reduced: `Summary`s of unpenalized fits on the same data (single or batch), or
    FitResults with X_full / X_reduced and y (weights, offset). test: "chisq" (D / phi ~
    chi2(df); R's "Chisq"/"LRT") or "F" ((D / df) / phi ~ F(df, df_resid of full)); default
    "F" where the dispersion phi is estimated (the full model's), else "chisq". dispersion:
    a known phi (a number), passed to `summarize`. Problems where the full model has no more
    coefficients than the reduced one get NaN.
    """
    if isinstance(full, Summary) != isinstance(reduced, Summary):
        raise ValueError("full, reduced: pass two Summaries or two FitResults.")
    for name, r in (("full", full), ("reduced", reduced)):
        _require_unpenalized(r, name)
    if dispersion is not None and isinstance(full, Summary):
        raise ValueError("dispersion: give it to summarize when making the Summaries (or pass "
                         "FitResults with their data).")
    options = {} if dispersion is None else {"dispersion": dispersion}
    sf = _summary_of(full, X_full, y, weights, offset, "full", **options)
    sr = _summary_of(reduced, X_reduced, y, weights, offset, "reduced", **options)
    if _n_problems(sf) != _n_problems(sr):
        raise ValueError(f"full, reduced: must both be single fits or batches of the same m, "
                         f"got {_n_problems(sf)} and {_n_problems(sr)} problems.")
    if sf.family_name != sr.family_name:
        raise ValueError(f"full, reduced: the models must share a family, got "
                         f"{sf.family_name!r} and {sr.family_name!r}.")
    if test is None:
        test = "F" if sf.use_t else "chisq"
    test = {"lrt": "chisq", "chisq": "chisq", "f": "F"}.get(str(test).lower())
    if test is None:
        raise ValueError(f"test: expected 'F' or 'chisq' (R's 'Chisq' / 'LRT'), got "
                         f"{test!r}.")
    df = sr.df_resid - sf.df_resid
    if not validation.is_traced(df):
        if np.any(np.asarray(sf.nobs) != np.asarray(sr.nobs)):
            raise ValueError("full, reduced: were fitted on different observations (nobs "
                             "differs); both models must be fitted on the same data.")
        if np.all(np.asarray(df) <= 0):
            raise ValueError(f"full, reduced: the full model must have more coefficients "
                             f"than the reduced one (residual df {np.asarray(sf.df_resid)} "
                             f"vs {np.asarray(sr.df_resid)}); pass (full, reduced) in that "
                             "order, with the reduced model nested in the full one.")
    deviance = sr.deviance - sf.deviance
    scale = sf.scale
    if test == "F":
        df_denom = jnp.where(sf.use_t, sf.df_resid, jnp.inf) * jnp.ones_like(deviance)
        stat = deviance / jnp.where(df > 0, df, 1.0) / scale
    else:
        df_denom = jnp.full(jnp.shape(deviance), jnp.inf, deviance.dtype)
        stat = deviance / scale
    return _result(stat, df, df_denom, test == "F", "Likelihood-ratio", deviance)


# -- score (Rao) --------------------------------------------------------------------------------

@_programs.jit(static_argnames=("fit_intercept",))
def _score_parts(params, X_reduced, X_full, y, weights, offset, family, fit_intercept):
    """(U' I^-1 U at dispersion 1, rank(full) - rank(reduced), Pearson chi2 and residual df
    of the reduced fit), from column-ordered QR factors (aliased columns drop out)."""
    parts = inf.information_parts(params, X_reduced, y, weights, offset, family, NoPenalty(),
                                  fit_intercept)
    w, h, g, mu = parts["w"], parts["h"], parts["g"], parts["mu"]
    pos = (w > 0) & (h > 0)
    sw = jnp.sqrt(jnp.where(pos, w * h, 0.0))
    tol = inf.alias_tol(X_full.dtype)
    _, _, dead_r = inf.ordered_qr(sw[:, None] * parts["Xd"], tol)
    Q, _, dead_f = inf.ordered_qr(sw[:, None] * augmented(X_full, fit_intercept),
                                  tol)
    # U = Xf' (w g) = A' z with A = sqrt(w h) Xf, z = sqrt(w / h) g (minus the Pearson residual)
    z = jnp.where(pos, jnp.sqrt(jnp.where(pos, w / h, 0.0)) * g, 0.0)
    quadratic = jnp.sum((Q.T @ z) ** 2)
    rank_r = jnp.sum(~dead_r).astype(z.dtype)
    df = jnp.sum(~dead_f).astype(z.dtype) - rank_r
    nobs = jnp.sum(w > 0).astype(z.dtype)
    y_safe = jnp.where(w > 0, y, mu)
    pearson = jnp.sum(jnp.where(w > 0, w * (y_safe - mu) ** 2 / family.variance(mu), 0.0))
    return quadratic, df, pearson, nobs - rank_r


def score_test(reduced, X_reduced, X_full, y, *, weights=None, offset=None, dispersion=None):
    """Rao score test of the reduced fit against the full design X_full, per problem (only
    the reduced model is fitted), as R's `anova(reduced, full, test="Rao")` and statsmodels'
    `GLMResults.score_test` (docs/statistics.md).

    reduced: an unpenalized FitResult (lj.fit, or lj.fit_batch with Y (m, n)); X_reduced: its
    design; X_full: the full design, whose columns span X_reduced's (the intercept follows
    the reduced fit's); weights, offset: as fitted. The statistic S = U' I^-1 U / phi is
    chi2 on rank(full) - rank(reduced) degrees of freedom. dispersion phi: None (1, or the
    reduced model's Pearson estimate for families that estimate it, as statsmodels),
    "pearson" (estimated for any family), or known numbers (one, or (m,) per problem; R's
    Rao column uses the full model's estimate, `summarize(full).scale`).
    """
    _require_unpenalized(reduced, "reduced")
    if not hasattr(reduced, "params"):
        raise TypeError(f"reduced: expected a FitResult, got {type(reduced).__name__}.")
    family = reduced.family
    if family.multiclass:
        raise NotImplementedError("score_test: multinomial fits are not supported.")
    fit_intercept = bool(reduced.fit_intercept)
    coef = reduced.params["coef"]
    batch = np.ndim(coef) == 2
    if batch:
        m = np.shape(coef)[0]
        if np.ndim(X_reduced) not in (2, 3) or np.shape(X_reduced)[-1] != np.shape(coef)[1]:
            raise ValueError(f"X_reduced: expected (n, {np.shape(coef)[1]}) or (m, n, "
                             f"{np.shape(coef)[1]}), the design the batch was fitted on, got "
                             f"shape {np.shape(X_reduced)}.")
        Xr, Y, w, off, w_ax, o_ax = batch_inputs(X_reduced, y, family, weights, offset,
                                                 reduced.penalty, fit_intercept)
        Xf = batch_inputs(X_full, Y, family, w, off, reduced.penalty, fit_intercept)[0]
        if Xf.shape[-2] != Xr.shape[-2]:
            raise ValueError("X_full: must have the rows of X_reduced.")

        def leaf_axis(a):
            return 0 if np.ndim(a) >= 1 and np.shape(a)[0] == m else None

        axes = (jax.tree_util.tree_map(leaf_axis, reduced.params),
                0 if Xr.ndim == 3 else None, 0 if Xf.ndim == 3 else None, 0, w_ax, o_ax,
                jax.tree_util.tree_map(leaf_axis, family))

        def one(params, xr, xf, yy, ww, oo, fam):
            return _score_parts(params, xr, xf, yy, ww, oo, fam, fit_intercept)

        quadratic, df, pearson, df_resid = jax.vmap(one, in_axes=axes)(
            reduced.params, Xr, Xf, Y, w, off, family)
    else:
        if np.ndim(coef) != 1 or np.ndim(X_reduced) != 2 or np.shape(X_reduced)[1] != np.shape(
                coef)[0]:
            raise ValueError(f"X_reduced: expected {np.shape(coef)[-1]} columns, one per "
                             f"coefficient of the reduced fit, got shape {np.shape(X_reduced)}.")
        Xr, Y, w, off = inputs.fit_inputs(X_reduced, y, family, weights, offset,
                                              reduced.penalty, fit_intercept)
        Xf = inputs.fit_inputs(X_full, Y, family, None, None, None, fit_intercept)[0]
        quadratic, df, pearson, df_resid = _score_parts(reduced.params, Xr, Xf, Y, w, off,
                                                        family, fit_intercept)
    if dispersion is None or isinstance(dispersion, str):
        if dispersion not in (None, "pearson"):
            raise ValueError(f"dispersion: expected None, 'pearson' or positive numbers, got "
                             f"{dispersion!r}.")
        estimated = dispersion == "pearson" or bool(family.estimates_dispersion)
        scale = (pearson / jnp.where(df_resid > 0, df_resid, jnp.nan) if estimated
                 else jnp.ones_like(quadratic))
    else:
        phi = validation.as_numeric("dispersion", dispersion)
        if not validation.is_traced(phi) and (
                np.ndim(phi) > 1 or (np.ndim(phi) == 1 and np.shape(phi) != np.shape(quadratic))
                or not np.all(np.isfinite(phi)) or np.any(np.asarray(phi) <= 0)):
            raise ValueError(f"dispersion: expected finite positive numbers, one or one per "
                             f"problem (shape {np.shape(quadratic)}), got {dispersion!r}.")
        scale = jnp.asarray(phi, quadratic.dtype)
    df_denom = jnp.full(jnp.shape(quadratic), jnp.inf, quadratic.dtype)
    if not validation.is_traced(df) and np.all(np.asarray(df) <= 0):
        raise ValueError("X_full: adds no column outside the span of X_reduced (and the "
                         "intercept), so there is nothing to test; pass the full design.")
    return _result(quadratic / scale, df, df_denom, False, "Score")
