"""The statistics of a fitted GLM, matching R's `summary.glm`, `logLik`, `AIC` (public as
`lj.inference`, which adds the hypothesis tests of `linjax.hypothesis`).

`summarize(result, X, y, ...)` returns a `linjax.summary.Summary`. Everything
below the eager input handling is one jit-compiled pure function of arrays, so
`summarize` also runs under `jax.jit` and `jax.vmap` (over data, weights,
offsets or a batch of fits). Statistical output needs float64 (`jax_enable_x64`).

Conventions (R's, stated once):

- Covariance, "nonrobust": dispersion x the inverse expected (Fisher)
  information, (X' W X)^-1 with W = w (d mu / d eta)^2 / V(mu), computed from
  the QR factor of W^(1/2) X (never the inverse of X' W X), as R's glm.
- Dispersion (`scale`): Pearson chi2 / df_resid for families that estimate it
  (Gaussian, Gamma, InverseGaussian, Tweedie), 1 otherwise (Binomial, Poisson,
  NegativeBinomial as `MASS::glm.nb`). `dispersion=` overrides it: a number, or
  "pearson" to estimate it for any family (R's quasi families).
- t statistics with df_resid where the dispersion is estimated, z otherwise.
- Aliased (rank-deficient) designs, as R's glm.fit: a column whose part orthogonal to
  the earlier columns of the weighted design W^(1/2) [1, X] has norm below 1e-11 x its
  own norm (LINPACK dqrdc2's test, in column order, so the later column of a dependent
  set is the aliased one) is aliased: its coefficient is NaN (`Summary.aliased` marks
  it), the others are the fit on the remaining columns (same fitted values), and k
  below counts only those (the rank).
- df_resid = nobs - k with nobs the observations of positive weight and k the
  coefficients (intercept included) that are estimated: not aliased, not set to zero by
  an L1 penalty; df_model = k - intercept.
- llf with R's constants: Gaussian uses the dispersion deviance / nobs and the
  prior weights as precisions (R's gaussian()$aic); Gamma and InverseGaussian
  use deviance / sum(weights) with the weights multiplying each log density;
  Binomial counts weights as trials (log C(n, k) included); Poisson and
  NegativeBinomial multiply each log mass by its weight; Tweedie (no R
  value) uses the Pearson dispersion / weight in Dunn and Smyth's series.
  k in AIC/BIC counts the dispersion where it is estimated and alpha when a
  negative binomial alpha was estimated. BIC uses log(nobs).
- null deviance: the deviance of the intercept-only model fitted with the same
  offset and weights (R refits it when there is an offset); without an
  intercept the null model is mu = linkinv(offset).
- Robust covariance (`cov_type`): the sandwich B M B with B the inverse
  information and M built from the per-observation scores s_i = w_i x_i (dnll_i /
  deta_i): HC0 (M = S'S), HC1 (HC0 x nobs / (nobs - k), R's sandwich), HC2
  (s_i^2 / (1 - h_i)), HC3 (s_i^2 / (1 - h_i)^2) with h_i the diagonal of the
  weighted hat matrix, and "cluster" with `groups` (sums of scores per group,
  times G / (G - 1) x (nobs - 1) / (nobs - k), as statsmodels and Stata).
  `information="observed"` uses the observed instead of the expected
  information in B (statsmodels' GLM default for robust covariances with
  non-canonical links; the two coincide for canonical links).

Penalized fits:

- L2 (ridge): the estimates are posterior modes under a Gaussian prior
  (`L2.log_prior`). "nonrobust" reports the Bayesian posterior (Laplace)
  covariance dispersion x (X' W X + sum(w) alpha diag(f))^-1, so intervals are
  credible intervals; the HC types give the frequentist ridge sandwich
  B M B with B = (X' W X + sum(w) alpha diag(f))^-1. A note in the table says so.
- L1 / elastic net: no standard error is reported for coefficients the penalty
  set to exactly zero (NaN in `bse`, "-" in the table); the others get the
  covariance of the active set (with the elastic net's ridge part) conditional
  on the selected model, which ignores the selection step. A note says so.
- Firth (`linjax.penalties.Firth`): Wald statistics from the inverse Fisher
  information at the Firth estimate, as R's logistf.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc
from jax.scipy.stats import norm

from linjax import _programs, inputs, validation
from linjax import families as F
from linjax._pytree import replace
from linjax.batch_checks import batch_inputs  # the validation of fit_batch
from linjax.designs import frames
from linjax.families import eta_derivatives
from linjax.penalties import L2, NoPenalty
from linjax.solvers.gram import augmented, weighted_gram
from linjax.starting import intercept_only_fit
from linjax.summary import Summary

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")
DISP_MODES = ("family", "pearson", "fixed")

#: R's glm.fit tolerance for aliased columns (the `tol` it gives LINPACK's dqrdc2): the
#: relative norm of a column's part orthogonal to the earlier columns.
ALIAS_TOL = 1e-11


class RankWarning(UserWarning):
    """The design is rank deficient: some columns are linear combinations of earlier ones."""


# -- Student t and normal tails, pure JAX -----------------------------------------------

@_programs.jit
def t_sf2(t, df):
    """Two-sided tail P(|T| > |t|) for Student's t: I_{df / (df + t^2)}(df / 2, 1 / 2)."""
    t = jnp.abs(t)
    x = df / (df + t * t)
    return betainc(df / 2.0, 0.5, x)


@_programs.jit(static_argnames=("n_iter",))
def t_ppf(p, df, n_iter=40):
    """Quantile of Student's t for p in (0.5, 1), by Newton's method on log P(T > t).

    Iterates on u = log t from the normal quantile; the log tail is close to
    linear in u for heavy tails and smooth for light ones, so a fixed number of
    steps reaches rounding level for every df >= 1.
    """
    p = jnp.asarray(p, jnp.result_type(float))
    p, df = jnp.broadcast_arrays(p, jnp.asarray(df, p.dtype))
    log_q = jnp.log1p(-p)
    from jax.scipy.stats import t as t_dist

    def body(_, u):
        t = jnp.exp(u)
        sf = 0.5 * t_sf2(t, df)
        g = jnp.log(sf) - log_q
        dg = -t_dist.pdf(t, df) * t / sf
        return u - g / dg

    u = jax.lax.fori_loop(0, n_iter, body, jnp.log(norm.ppf(p)))
    return jnp.exp(u)


def _quantile(alpha, df, use_t):
    p = 1.0 - alpha / 2.0
    return t_ppf(p, df) if use_t else norm.ppf(p)


def _two_sided_p(stat, df, use_t):
    return t_sf2(stat, df) if use_t else 2.0 * norm.sf(jnp.abs(stat))


# -- the public function ----------------------------------------------------------------

def summarize(result, X, y, family=None, weights=None, offset=None, cov_type="nonrobust",
              alpha=0.05, groups=None, dispersion=None, information="expected",
              feature_names=None):
    """Coefficient table, tests, intervals and fit statistics of a fitted GLM (docs/statistics.md).

    result: a `FitResult` from `lj.fit` (or `lj.firth`, `lj.nb`); X, y, weights,
    offset: the data it was fitted on; family: defaults to `result.family`;
    cov_type: "nonrobust", "HC0", "HC1", "HC2", "HC3" or "cluster" (with
    `groups`, one label per observation; giving `groups` alone selects
    "cluster"); alpha: 1 - confidence level of `conf_int`; dispersion: None
    (the family's rule), "pearson", or a number; information: "expected"
    (R) or "observed" for the bread of robust covariances; feature_names:
    labels (default: DataFrame columns, else x1..xp). See the module docstring
    for every convention. Returns a `Summary`. A `lj.fit_batch` result (with its X, Y
    (m, n) and weights / offset) gives one summary per problem: every statistic has a
    leading axis m, and `summary[i]` is problem i's. Raises ValueError for alpha outside
    (0, 1), a dispersion that is not a finite positive number, or an X whose columns do not
    match the fitted coefficients.
    """
    family = result.family if family is None else F.get_family(family)
    if family.multiclass:
        raise NotImplementedError("summarize: multinomial (p, K) fits have no R-style table "
                                  "yet; summarize one binary (one-vs-rest) fit per class.")
    _check_alpha(alpha)
    _check_dispersion(dispersion)
    if np.ndim(result.params["coef"]) == 2:  # a fit_batch result: one summary per problem
        return _summarize_batch(result, X, y, family, weights, offset, cov_type, alpha, groups,
                                dispersion, information, feature_names)
    if np.ndim(result.params["coef"]) != 1:
        raise ValueError(f"result: expected the FitResult of one fit (coef of shape (p,)) or "
                         f"of lj.fit_batch ((m, p)), got coef of shape "
                         f"{np.shape(result.params['coef'])}.")
    if groups is not None and cov_type == "nonrobust":
        cov_type = "cluster"
    cov_type = _normalize_cov_type(cov_type)
    if cov_type == "cluster" and groups is None:
        raise ValueError("groups: cov_type='cluster' needs `groups`, one cluster label per "
                         "observation.")
    if information not in ("expected", "observed"):
        raise ValueError(f"information: expected 'expected' or 'observed', got {information!r}.")
    fit_intercept = bool(result.fit_intercept)
    names = _names(X, feature_names, fit_intercept)
    X, y, weights, offset = inputs.fit_inputs(X, y, family, weights, offset,
                                                  result.penalty, fit_intercept)
    if hasattr(X, "to_dense"):  # a linjax.designs object: the statistics need the matrix
        X = X.to_dense()
    n = X.shape[0]
    p = np.shape(result.params["coef"])[0]
    if X.shape[1] != p:
        raise ValueError(f"X: expected {p} columns, one per fitted coefficient (the design the "
                         f"result was fitted on), got shape {tuple(X.shape)}.")
    if len(names) != X.shape[1] + int(fit_intercept):
        raise ValueError(f"feature_names: expected {X.shape[1]} names, got "
                         f"{len(names) - int(fit_intercept)}.")
    if groups is not None:
        groups = _group_codes(groups, n)
    if dispersion is None:
        disp_mode, disp_value = "family", 1.0
    elif isinstance(dispersion, str):
        if dispersion != "pearson":
            raise ValueError(f"dispersion: expected None, 'pearson' or a number, got "
                             f"{dispersion!r}.")
        disp_mode, disp_value = "pearson", 1.0
    else:
        disp_mode, disp_value = "fixed", dispersion
    info = getattr(result, "info", None)
    nb_alpha_se = getattr(info, "alpha_se", None)
    use_t = bool(family.estimates_dispersion) if disp_mode == "family" else (
        disp_mode == "pearson")
    n_groups_codes = groups if groups is not None else jnp.zeros(n, jnp.int32)
    out = _summarize(result.params, X, y, weights, offset, family, result.penalty,
                     n_groups_codes, validation.to_device(alpha, X.dtype),
                     validation.to_device(disp_value, X.dtype),
                     validation.to_device(int(nb_alpha_se is not None), np.int32),
                     fit_intercept, cov_type, information == "observed", disp_mode, use_t)
    notes = _notes(result.penalty, cov_type) + _dispersion_note(out["scale"], out["df_resid"])
    nb_alpha = family.alpha if nb_alpha_se is not None else None
    link = family.link
    return Summary(**out, alpha=jnp.asarray(alpha, X.dtype), nb_alpha=nb_alpha,
                   nb_alpha_se=nb_alpha_se, names=tuple(names),
                   family_name=family.name, link_name=getattr(link, "name", type(link).__name__),
                   cov_type=cov_type, use_t=use_t, notes=notes)


def _check_alpha(alpha):
    """alpha (1 - the confidence level) must be a real number strictly between 0 and 1."""
    if validation.is_traced(alpha):
        return
    a = np.asarray(alpha)
    if (a.ndim != 0 or a.dtype == bool or not np.issubdtype(a.dtype, np.number)
            or np.iscomplexobj(a) or not 0.0 < float(a) < 1.0):
        raise ValueError(f"alpha: expected a number in the open interval (0, 1), 1 minus the "
                         f"confidence level (0.05 gives 95% intervals), got {alpha!r}.")


def _check_dispersion(dispersion):
    """A fixed dispersion must be a finite positive number (None and "pearson" are checked
    where they are read)."""
    if dispersion is None or isinstance(dispersion, str) or validation.is_traced(dispersion):
        return
    d = np.asarray(dispersion)
    if (d.ndim != 0 or d.dtype == bool or not np.issubdtype(d.dtype, np.number)
            or np.iscomplexobj(d) or not (np.isfinite(d) and float(d) > 0)):
        raise ValueError(f"dispersion: expected a finite positive number (the GLM dispersion "
                         f"phi), None or 'pearson', got {dispersion!r}; standard errors scale "
                         "with sqrt(dispersion), so a dispersion <= 0 gives none.")


def _dispersion_note(scale, df_resid):
    """A note (and a warning) when the estimated dispersion is not a positive number."""
    if validation.is_traced(scale) or validation.is_traced(df_resid) or np.ndim(scale) != 0:
        return ()
    scale, df_resid = float(scale), float(df_resid)
    if np.isfinite(scale) and scale > 0:
        return ()
    if df_resid <= 0:
        why = (f"no residual degrees of freedom (df_resid = {df_resid:g}): the model has as "
               "many estimated coefficients as observations")
    else:
        why = f"the Pearson residuals are all zero (an exact fit), so the dispersion is {scale:g}"
    note = (f"Note: the dispersion cannot be estimated: {why}; standard errors, statistics, "
            "p-values and intervals are not defined. Pass dispersion=<a positive number> to "
            "use a known one.")
    warnings.warn(f"summarize: {note[6:]}", RuntimeWarning, stacklevel=3)
    return (note,)


def _summarize_batch(result, X, Y, family, weights, offset, cov_type, alpha, groups,
                     dispersion, information, feature_names):
    """`summarize` of every problem of a `lj.fit_batch` result (vmapped): each statistic gets
    a leading axis m; `summary[i]` is problem i's summary. X: shared (n, p) or stacked
    (m, n, p); Y: (m, n); weights, offset: (n,) or (m, n), as given to fit_batch."""
    coef = result.params["coef"]
    m, p = np.shape(coef)
    if np.ndim(X) not in (2, 3) or np.shape(X)[-1] != p:
        raise ValueError(f"X: expected the shared design (n, {p}) or the stacked designs "
                         f"(m, n, {p}) the batch was fitted on, got shape {np.shape(X)}.")
    if np.ndim(Y) != 2 or np.shape(Y)[0] != m:
        raise ValueError(f"y: expected shape ({m}, n) for a batch of {m} fits, one row per "
                         f"problem (as Y of fit_batch), got shape {np.shape(Y)}.")
    if feature_names is None and np.ndim(X) == 2:
        feature_names = _names(X, None, False)
    X, Y, weights, offset, w_ax, o_ax = batch_inputs(X, Y, family, weights, offset,
                                                     result.penalty, bool(result.fit_intercept))

    per_problem_family = family is result.family  # its numeric leaves carry the axis m

    def one(r, X, y, w, off):
        return summarize(r, X, y, r.family if per_problem_family else family, w, off,
                         cov_type, alpha, groups, dispersion, information, feature_names)

    def leaf_axis(a):
        return 0 if np.ndim(a) >= 1 and np.shape(a)[0] == m else None

    r_ax = jax.tree_util.tree_map(leaf_axis, result)
    return jax.vmap(one, in_axes=(r_ax, 0 if X.ndim == 3 else None, 0, w_ax, o_ax))(
        result, X, Y, weights, offset)


def _normalize_cov_type(cov_type):
    for name in COV_TYPES:
        if str(cov_type).lower() == name.lower():
            return name
    raise ValueError(f"cov_type: unknown covariance {cov_type!r}; choose one of {COV_TYPES}.")


def _names(X, feature_names, fit_intercept):
    if feature_names is None and frames.has_categories(X):  # `col[level]`, as lj.fit codes it
        feature_names = frames.encode_frame(X, drop_first=fit_intercept)[1].names
    if feature_names is None:
        columns = getattr(X, "columns", None)
        if columns is not None:
            feature_names = [str(c) for c in columns]
        else:
            p = np.shape(X)[1] if np.ndim(X) == 2 else 0
            feature_names = [f"x{j + 1}" for j in range(p)]
    return (["Intercept"] if fit_intercept else []) + list(feature_names)


def _group_codes(groups, n):
    if validation.is_traced(groups):
        return jnp.asarray(groups, jnp.int32)
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups: expected shape ({n},), one label per observation, got "
                         f"{g.shape}.")
    _, codes = np.unique(g, return_inverse=True)
    return jnp.asarray(codes.reshape(-1), jnp.int32)


def _notes(penalty, cov_type):
    notes = []
    if isinstance(penalty, L2):
        if cov_type == "nonrobust":
            notes.append("Note: ridge (L2) fit. Standard errors are the Bayesian posterior "
                         "(Gaussian prior) form; intervals are credible intervals, and the "
                         "estimates are shrunk toward 0. Use an HC cov_type for the ridge "
                         "sandwich.")
        else:
            notes.append("Note: ridge (L2) fit. Standard errors are the ridge sandwich; the "
                         "estimates are shrunk toward 0, so intervals are not centred on the "
                         "truth.")
    elif not getattr(penalty, "smooth", True):
        notes.append("Note: L1-penalized fit. No standard errors are reported for coefficients "
                     "set to zero ('-'); the others are conditional on the selected model and "
                     "ignore the selection step.")
    elif type(penalty).__name__ == "Firth":
        notes.append("Note: Firth bias-reduced fit; Wald statistics from the inverse Fisher "
                     "information at the Firth estimate (as R's logistf).")
    elif not isinstance(penalty, NoPenalty):
        notes.append(f"Note: penalized fit ({type(penalty).__name__}); the covariance is the "
                     "inverse penalized information.")
    return tuple(notes)


# -- the traced core --------------------------------------------------------------------

def param_vector(params, fit_intercept):
    coef = params["coef"]
    if fit_intercept:
        return jnp.concatenate([jnp.reshape(params["intercept"], (1,)), coef])
    return coef


def _active_and_ridge(penalty, coef, fit_intercept, dtype):
    """Which coefficients get a standard error, and the ridge diagonal (per unit weight)."""
    ridge = penalty.smooth_hess_diag(coef)
    if getattr(penalty, "smooth", True):
        active = jnp.ones(coef.shape, bool)
    else:
        active = coef != 0
    if fit_intercept:
        ridge = jnp.concatenate([jnp.zeros((1,), dtype), ridge])
        active = jnp.concatenate([jnp.ones((1,), bool), active])
    return active, ridge


def information_parts(params, X, y, weights, offset, family, penalty, fit_intercept):
    """Pieces every statistic needs: design, mean, elementwise derivatives, active set."""
    dtype = X.dtype
    w = jnp.ones(X.shape[0], dtype) if weights is None else weights
    off = jnp.zeros(X.shape[0], dtype) if offset is None else offset
    Xd = augmented(X, fit_intercept)
    beta = param_vector(params, fit_intercept)
    eta = Xd @ beta + off
    mu = family.link.inverse(eta)
    _, g, h_exp = eta_derivatives(family, y, eta, fisher=True)
    active, ridge = _active_and_ridge(penalty, params["coef"], fit_intercept, dtype)
    return dict(w=w, off=off, Xd=Xd, beta=beta, eta=eta, mu=mu, g=g, h=h_exp, active=active,
                ridge=ridge * jnp.sum(w))


def inverse_information(parts):
    """(X' W X + ridge)^-1 restricted to the active set, from the QR factor of W^(1/2) X.

    Inactive coefficients are decoupled (an identity block) and then reported as NaN.
    """
    Xd, active = parts["Xd"], parts["active"]
    sw = jnp.sqrt(jnp.maximum(parts["w"] * parts["h"], 0.0))
    A = sw[:, None] * jnp.where(active, Xd, 0.0)
    aug = jnp.diag(jnp.sqrt(jnp.where(active, parts["ridge"], 1.0)))
    R = jnp.linalg.qr(jnp.concatenate([A, aug], axis=0), mode="r")
    Rinv = jax.scipy.linalg.solve_triangular(R, jnp.eye(R.shape[0], dtype=R.dtype), lower=False)
    return Rinv @ Rinv.T


def alias_tol(dtype):
    """R's 1e-11, or 1000 eps where the dtype cannot resolve it (float32: 1.2e-4)."""
    return max(ALIAS_TOL, 1000 * float(jnp.finfo(dtype).eps))


def ordered_qr(A, tol):
    """Column-ordered rank-revealing QR of A (m x k), R's glm.fit test (LINPACK dqrdc2).

    Column j is aliased when its part orthogonal to the earlier non-aliased columns has norm
    below tol x its own norm (a zero column is aliased), so of a dependent set the later
    columns are the aliased ones. Gram-Schmidt with one reorthogonalization (as accurate as
    Householder for this test). Returns (Q, R, aliased): the non-aliased columns of A equal
    Q R on them; Q's aliased columns are 0 and R's aliased rows and columns are the
    identity's, so R b = Q' r gives b = 0 at aliased columns and the least-squares
    coefficients of r on the other columns.
    """
    k = A.shape[1]

    def column(j, carry):
        Q, R, aliased = carry
        a = jax.lax.dynamic_index_in_dim(A, j, axis=1, keepdims=False)
        c1 = a @ Q  # Q' a (XLA:CPU copies Q' for Q.T @ a: 6x slower at n = 200,000)
        v = a - Q @ c1
        c2 = v @ Q
        v = v - Q @ c2
        r = jnp.linalg.norm(v)
        norm = jnp.linalg.norm(a)
        dead = r < tol * jnp.where(norm > 0, norm, 1.0)
        q = jnp.where(dead, 0.0, v / jnp.where(dead, 1.0, r))
        col = jnp.where(dead, 0.0, c1 + c2).at[j].set(jnp.where(dead, 1.0, r))
        return Q.at[:, j].set(q), R.at[:, j].set(col), aliased.at[j].set(dead)

    start = (jnp.zeros_like(A), jnp.zeros((k, k), A.dtype), jnp.zeros((k,), bool))
    return jax.lax.fori_loop(0, k, column, start)


#: `identified_coefficients` runs `ordered_qr` (k passes over the n x k design) only where the
#: Cholesky factor of the weighted Gram finds a column whose squared residual norm is below
#: ALIAS_SCREEN k eps (or tol, if larger) times its squared norm, or an active zero column.
ALIAS_SCREEN = 1e4
#: Designs with fewer elements (n k) take the exact test directly: its k passes are cheap
#: there, and the screen's Gram and factorization would only add to the program to compile.
ALIAS_SCREEN_MIN_ELEMENTS = 1 << 20


def may_alias(Xd, s, active, ridge, tol):
    """Whether `ordered_qr` could call an active column of A = [diag(s)^(1/2) Xd; diag(ridge)
    ^(1/2)] (inactive columns zeroed) aliased, from the Cholesky factor L of G = A'A, formed
    by the one Gram kernel (about 1/20 of the time of a Householder QR of A at n = 200,000,
    k = 101). L_jj^2 is column j's squared residual norm after the earlier columns, as in
    `ordered_qr` up to its first aliased column; computed from G it carries an error of
    about k eps G_jj, so a column whose L_jj^2 / G_jj exceeds max(tol, ALIAS_SCREEN k eps)
    (residual norm ratio above ~1e-5 in float64, against R's tol 1e-11) is not aliased, and
    a design whose every active column passes is full rank. Anything else (a failed or
    non-finite factorization included) goes to the exact test."""
    k = Xd.shape[1]
    both = active[:, None] & active[None, :]
    G = weighted_gram(jnp.where(active, Xd, 0.0), s)
    G = jnp.where(both, G, jnp.eye(k, dtype=G.dtype)) + jnp.diag(jnp.where(active, ridge, 0.0))
    diag = jnp.diagonal(G)
    L = jnp.linalg.cholesky(G)
    floor = jnp.maximum(tol, ALIAS_SCREEN * k * jnp.finfo(G.dtype).eps)
    passes = jnp.diagonal(L) ** 2 > floor * diag
    return jnp.any(active & ~(passes & (diag > 0)))


def identified_coefficients(parts):
    """(aliased, beta): R's aliased columns of the weighted design W^(1/2) [1, X] (with the
    rows sqrt(ridge) of a smooth penalty, which identify every penalized column) and the
    coefficients with the same linear predictor, 0 at aliased columns (R's estimates).

    Columns an L1 penalty set to zero are not reported as aliased. Where nothing is
    aliased, beta is the fitted one unchanged.
    """
    Xd, active, ridge = parts["Xd"], parts["active"], parts["ridge"]
    s = jnp.maximum(parts["w"] * parts["h"], 0.0)
    tol = alias_tol(Xd.dtype)

    def exact(_):
        sw, root_ridge = jnp.sqrt(s), jnp.sqrt(jnp.where(active, ridge, 0.0))
        A = jnp.concatenate([sw[:, None] * jnp.where(active, Xd, 0.0), jnp.diag(root_ridge)])
        Q, R, dead = ordered_qr(A, tol)
        aliased = dead & active
        rhs = jnp.concatenate([sw * (parts["eta"] - parts["off"]), root_ridge * parts["beta"]])
        reduced = jax.scipy.linalg.solve_triangular(R, rhs @ Q, lower=False)
        return aliased, jnp.where(jnp.any(aliased), reduced, parts["beta"])

    def full_rank(_):
        return jnp.zeros(active.shape, bool), parts["beta"]

    if Xd.shape[0] * Xd.shape[1] < ALIAS_SCREEN_MIN_ELEMENTS:  # static
        return exact(None)
    return jax.lax.cond(may_alias(Xd, s, active, ridge, tol), exact, full_rank, None)


@_programs.jit(static_argnames=("fit_intercept",))
def _identify(params, X, y, weights, offset, family, penalty, fit_intercept):
    parts = information_parts(params, X, y, weights, offset, family, penalty, fit_intercept)
    return identified_coefficients(parts)


def _identified(result, X, y, weights, offset):
    """(aliased mask over the coefficient table, R's coefficient vector), eagerly, from
    validated inputs."""
    family = result.family
    X, y, weights, offset = inputs.fit_inputs(X, y, family, weights, offset, result.penalty,
                                                  bool(result.fit_intercept))
    p = np.shape(result.params["coef"])
    if np.ndim(result.params["coef"]) != 1 or X.shape[1] != p[0]:
        raise ValueError(f"X: expected {p[0] if p else 0} columns, one per fitted coefficient "
                         f"of a single (non-batch, non-multinomial) fit, got shape "
                         f"{tuple(X.shape)}.")
    aliased, beta = _identify(result.params, X, y, weights, offset, family, result.penalty,
                              bool(result.fit_intercept))
    return np.asarray(aliased), beta


def aliased_columns(result, X, y, weights=None, offset=None):
    """0-based indices of X's columns that R's glm would report as NA (not defined because
    of singularities): linear combinations of earlier columns or of the intercept, by the
    test `summarize` uses (`identified_coefficients`). [] for a full-rank design."""
    aliased, _ = _identified(result, X, y, weights, offset)
    k = int(bool(result.fit_intercept))
    return [int(j) - k for j in np.flatnonzero(aliased)]


def drop_aliased(result, X, y, weights=None, offset=None):
    """`result` with R's coefficients for a rank-deficient design: 0 at the aliased columns
    (`aliased_columns`) and the others fitted without them. The linear predictor on the
    fitting data is unchanged; on new rows where the aliased columns are no longer those
    combinations, `lj.predict` then gives R's predictions (R ignores aliased columns),
    where the minimum-norm coefficients of `lj.fit` do not. Full rank: `result` unchanged."""
    aliased, beta = _identified(result, X, y, weights, offset)
    if not aliased.any():
        return result
    k = int(bool(result.fit_intercept))
    params = result.params
    new = {"coef": beta[k:].astype(params["coef"].dtype),
           "intercept": beta[0] if k else jnp.zeros_like(params["intercept"])}
    return replace(result, params=new)


def warn_if_rank_deficient(result, X, y, weights=None, offset=None, stacklevel=2):
    """Eager: a `RankWarning` naming the aliased columns of X, if any (used by `lj.fit`)."""
    columns = aliased_columns(result, X, y, weights, offset)
    if not columns:
        return
    k = np.shape(result.params["coef"])[0] + int(bool(result.fit_intercept))
    warnings.warn(
        f"fit: the design is rank deficient (rank {k - len(columns)} of {k} coefficients): "
        f"X's column(s) {columns} (0-based) are linear combinations of earlier columns (or of "
        "the intercept). The coefficients are the minimum-norm solution (the fitted values "
        "are R's); summarize reports R's table, with these columns not defined (aliased); "
        "linjax.inference.drop_aliased(result, X, y, ...) gives R's coefficients (0 at these "
        "columns). Drop the columns, or add an L2 penalty.", RankWarning,
        stacklevel=stacklevel + 1)


def observed_inverse_information(parts, y, family):
    """Inverse observed information (exact second derivatives), restricted to the active set."""
    Xd, active = parts["Xd"], parts["active"]
    _, _, h_obs = eta_derivatives(family, y, parts["eta"], fisher=False)
    Xa = jnp.where(active, Xd, 0.0)
    H = Xa.T @ ((parts["w"] * h_obs)[:, None] * Xa)
    H = H + jnp.diag(jnp.where(active, parts["ridge"], 1.0))
    return jnp.linalg.solve(H, jnp.eye(H.shape[0], dtype=H.dtype))


def hat_diagonal(parts, bread):
    """h_i = w_i W_i x_i' B x_i, without forming the n x n hat matrix."""
    Xa = jnp.where(parts["active"], parts["Xd"], 0.0)
    return parts["w"] * parts["h"] * jnp.sum((Xa @ bread) * Xa, axis=1)


def robust_covariance(parts, bread, groups, nobs, k, cov_type):
    """The sandwich covariance B M B of `cov_type` ("HC0", "HC1", "HC2", "HC3", "cluster";
    static: a summary compiles only the one it reports). Meats, with s_i = w_i g_i x_i:
    HC0 sum s_i s_i'; HC1 HC0 n / (n - k); HC2 and HC3 scale s_i s_i' by 1 / (1 - h_i) and
    1 / (1 - h_i)^2; cluster sum_g S_g S_g' G / (G - 1) (n - 1) / (n - k), S_g the groups'
    score sums."""
    Xa = jnp.where(parts["active"], parts["Xd"], 0.0)
    scores = (parts["w"] * parts["g"])[:, None] * Xa
    pos = parts["w"] > 0
    if cov_type in ("HC0", "HC1"):
        meat = scores.T @ scores
        if cov_type == "HC1":
            meat = meat * nobs / (nobs - k)
    elif cov_type in ("HC2", "HC3"):
        one_minus_h = jnp.where(pos, 1.0 - hat_diagonal(parts, bread), 1.0)
        power = 1 if cov_type == "HC2" else 2
        meat = scores.T @ (jnp.where(pos, 1.0 / one_minus_h**power, 0.0)[:, None] * scores)
    else:
        n = Xa.shape[0]
        sums = jax.ops.segment_sum(scores, groups, num_segments=n)
        counts = jax.ops.segment_sum(pos.astype(scores.dtype), groups, num_segments=n)
        n_groups = jnp.sum(counts > 0)
        meat = sums.T @ sums * n_groups / (n_groups - 1.0) * (nobs - 1.0) / (nobs - k)
    return bread @ meat @ bread


def null_mean(y, weights, offset, family, fit_intercept):
    """The fitted mean of the null model: intercept only (refitted with the offset), by
    `linjax.starting.intercept_only_fit` (without an offset, the weighted mean of y)."""
    dtype = y.dtype
    n = y.shape[0]
    w = jnp.ones(n, dtype) if weights is None else weights
    if not fit_intercept:
        off = jnp.zeros(n, dtype) if offset is None else offset
        return family.link.inverse(off)
    _, mu = intercept_only_fit(family, y, w, offset)
    return jnp.broadcast_to(mu, (n,))


def log_likelihood(family, y, mu, w, deviance, nobs, scale):
    """R's log-likelihood at the fitted mean (see the module docstring)."""
    pos = w > 0
    w_safe = jnp.where(pos, w, 1.0)
    if isinstance(family, F.Gaussian):
        lp = family.log_prob(y, mu, (deviance / nobs) / w_safe)
        return jnp.sum(jnp.where(pos, lp, 0.0))
    if isinstance(family, F.Gamma | F.InverseGaussian):
        lp = family.log_prob(jnp.where(pos, y, 1.0), mu, deviance / jnp.sum(w))
        return jnp.sum(jnp.where(pos, w * lp, 0.0))
    if isinstance(family, F.Binomial):
        lp = family.log_prob(y, mu, trials=w)
        return jnp.sum(jnp.where(pos, lp, 0.0))
    if isinstance(family, F.Tweedie):
        lp = family.log_prob(y, mu, scale / w_safe)
        return jnp.sum(jnp.where(pos, lp, 0.0))
    lp = family.log_prob(y, mu)
    return jnp.sum(jnp.where(pos, w * lp, 0.0))


@_programs.jit(static_argnames=("fit_intercept", "cov_type", "observed", "disp_mode",
                                "use_t"))
def _summarize(params, X, y, weights, offset, family, penalty, groups, alpha, disp_value,
               extra_k, fit_intercept, cov_type, observed, disp_mode, use_t):
    """The traced core. cov_type, observed (information), disp_mode and use_t (t or normal
    reference) are static: each summary compiles only what it reports (a first summary's
    compilation was larger than its fit's when every choice was compiled in). extra_k: 1
    when the negative binomial alpha was estimated (counted in AIC/BIC)."""
    parts = information_parts(params, X, y, weights, offset, family, penalty, fit_intercept)
    aliased, beta = identified_coefficients(parts)
    parts = dict(parts, beta=beta, active=parts["active"] & ~aliased)
    w, mu, active = parts["w"], parts["mu"], parts["active"]
    dtype = X.dtype
    pos = w > 0
    nobs = jnp.sum(pos).astype(dtype)
    k = jnp.sum(active).astype(dtype)
    df_resid = nobs - k
    df_model = k - float(fit_intercept)

    y_safe = jnp.where(pos, y, mu)
    deviance = jnp.sum(jnp.where(pos, w * family.unit_deviance(y_safe, mu), 0.0))
    pearson = jnp.sum(jnp.where(pos, w * (y_safe - mu) ** 2 / family.variance(mu), 0.0))
    estimated = (bool(family.estimates_dispersion) if disp_mode == "family"
                 else disp_mode == "pearson")
    if disp_mode == "fixed":
        scale = jnp.asarray(disp_value, dtype)
    elif estimated:
        scale = pearson / jnp.where(df_resid > 0, df_resid, jnp.nan)
    else:
        scale = jnp.ones((), dtype)

    if cov_type == "nonrobust" and not observed:
        cov = scale * inverse_information(parts)
    else:
        bread = (observed_inverse_information(parts, y, family) if observed
                 else inverse_information(parts))
        cov = (scale * bread if cov_type == "nonrobust"
               else robust_covariance(parts, bread, groups, nobs, k, cov_type))
    mask = active[:, None] & active[None, :]
    cov = jnp.where(mask, cov, jnp.nan)
    bse = jnp.sqrt(jnp.diag(cov))
    beta = jnp.where(aliased, jnp.nan, beta)
    stat = beta / bse
    pvalues = _two_sided_p(stat, df_resid, use_t)
    q = _quantile(alpha, df_resid, use_t)
    conf_int = jnp.stack([beta - q * bse, beta + q * bse], axis=1)

    llf = log_likelihood(family, y_safe, mu, w, deviance, nobs, scale)
    k_llf = k + float(family.estimates_dispersion) + extra_k.astype(dtype)
    aic = -2.0 * llf + 2.0 * k_llf
    bic = -2.0 * llf + jnp.log(nobs) * k_llf
    mu0 = null_mean(y, weights, offset, family, fit_intercept)
    null_deviance = jnp.sum(jnp.where(pos, w * family.unit_deviance(y_safe, mu0), 0.0))
    return dict(params=beta, bse=bse, statistic=stat, pvalues=pvalues, conf_int=conf_int,
                cov_params=cov, llf=llf, deviance=deviance, null_deviance=null_deviance,
                aic=aic, bic=bic, scale=scale, pearson_chi2=pearson, df_resid=df_resid,
                df_model=df_model, nobs=nobs, aliased=aliased)


# -- multiple testing -------------------------------------------------------------------

PVALUE_ADJUSTMENTS = ("bh", "by", "holm", "bonferroni")


def adjust_pvalues(p, method="bh", axis=-1):
    """Multiple-testing adjusted p-values along `axis`, as R's `p.adjust` (docs/statistics.md).

    With p_(1) <= ... <= p_(m) the sorted p-values of one family of m tests:

    - "bonferroni": min(1, m p_(i));
    - "holm": min(1, max_{j <= i} (m - j + 1) p_(j)) (step-down; family-wise error);
    - "bh" (Benjamini-Hochberg, R's "BH"/"fdr"): min(1, min_{j >= i} m / j p_(j))
      (step-up; false discovery rate);
    - "by" (Benjamini-Yekutieli): "bh" times c(m) = sum_{k=1}^m 1 / k (any dependence).

    NaN p-values stay NaN and are not counted in m, as R's default (`p.adjust(p)` with
    NA p-values: n = the number of non-NA ones). Ties get equal adjusted values; a family
    of one (m = 1) is returned unchanged. p: any array (numpy or jax) of numbers in [0, 1]
    or NaN; each slice along `axis` is one family. Returns a float jax array of p's shape.
    Runs under `jit` and `vmap` (the range of p is checked only when it is concrete).
    """
    if method not in PVALUE_ADJUSTMENTS:
        raise ValueError(f"method: expected one of {PVALUE_ADJUSTMENTS} (R's 'BH', 'BY', "
                         f"'holm', 'bonferroni'), got {method!r}.")
    if validation.is_traced(p):
        p = jnp.asarray(p)
    else:
        p = validation.as_numeric("p", p)
        values = np.asarray(p, float)
        bad = ~np.isnan(values) & ~((values >= 0) & (values <= 1))
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"p: p-values must lie in [0, 1] (or be NaN for a test not "
                             f"done); p[{', '.join(map(str, first))}] = {float(values[bad][0])!r} "
                             f"({int(bad.sum())} value(s) out of range).")
    if p.ndim == 0:
        return _adjust_last(jnp.reshape(p, (1,)), method)[0]
    if not -p.ndim <= axis < p.ndim:
        raise ValueError(f"axis: {axis} is out of range for p of shape {tuple(p.shape)}.")
    moved = jnp.moveaxis(p, axis, -1)
    return jnp.moveaxis(_adjust_last(moved, method), -1, axis)


@_programs.jit(static_argnames=("method",))
def _adjust_last(p, method):
    """`adjust_pvalues` along the last axis (NaN sorted after every number)."""
    p = p.astype(jnp.result_type(p.dtype, float))
    missing = jnp.isnan(p)
    m = jnp.sum(~missing, axis=-1, keepdims=True).astype(p.dtype)
    order = jnp.argsort(jnp.where(missing, jnp.inf, p), axis=-1, stable=True)
    ps = jnp.take_along_axis(p, order, axis=-1)
    present = jnp.take_along_axis(~missing, order, axis=-1)
    rank = jnp.arange(1, p.shape[-1] + 1, dtype=p.dtype)
    if method == "bonferroni":
        adj = m * ps
    elif method == "holm":  # NaNs come last, so they never enter a running maximum
        adj = jax.lax.cummax(jnp.where(present, (m - rank + 1.0) * ps, -jnp.inf), axis=ps.ndim - 1)
    else:
        scale = m / rank
        if method == "by":
            harmonic = jnp.cumsum(1.0 / rank)  # c(k) = sum_{j <= k} 1 / j
            c = jnp.take(harmonic, jnp.maximum(m.astype(jnp.int32) - 1, 0))
            scale = scale * c
        adj = jax.lax.cummin(jnp.where(present, scale * ps, jnp.inf), axis=ps.ndim - 1,
                             reverse=True)
    adj = jnp.where(present, jnp.minimum(adj, 1.0), jnp.nan)
    inverse = jnp.argsort(order, axis=-1)
    return jnp.take_along_axis(adj, inverse, axis=-1)
