"""Shared machinery of the scikit-learn estimators: validation, conversion, fitting, warnings.

Every estimator turns its scikit-learn style hyperparameters into a family, a
penalty and a solver, calls `linjax.fit` once (or once per class for one-vs-rest)
and stores numpy coefficients. The compile-once rule is in the package docstring.
"""

import numbers
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import _check_sample_weight, _check_y, check_array, check_is_fitted

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - scikit-learn < 1.6
    def validate_data(est, X="no_validation", y="no_validation", reset=True, **kwargs):
        return est._validate_data(X, y, reset=reset, **kwargs)

from linjax import families as F
from linjax import links as L
from linjax import transforms as P
from linjax._pytree import replace
from linjax.designs import Categorical, Dense, Sparse, Split, frames, is_design
from linjax.designs import fitting as design_fitting
from linjax.diagnostics import SeparationWarning  # noqa: F401 (re-exported, one class for all)
from linjax.fit import fit
from linjax.inference import summarize
from linjax.penalties import L1, L2, ElasticNet, NoPenalty
from linjax.result import FitResult
from linjax.solver_choice import choose_solver
from linjax.solvers import LeastSquares, Status

#: scikit-learn solver names accepted as aliases of linjax's (see `solver` in the docstrings).
#: The dtypes the estimators fit in (scikit-learn's `dtype=` of check_array / validate_data).
FLOATS = [np.float64, np.float32]

#: What the estimators' separation warning recommends (`linjax.separation`).
SEPARATION_REMEDY = ("add a penalty (a finite C for LogisticRegression, alpha > 0 for GLM) or "
                     "use Firth's bias-reduced logistic regression (linjax.firth)")

SOLVER_ALIASES = {"newton-cholesky": "newton", "newton-cg": "newton", "cholesky": "lstsq",
                  "liblinear": "cd", "saga": "proximal", "sag": "proximal"}



# -- parameter validation (eager, messages name the argument, the problem and the fix) ------

def check_number(owner, name, value, low=None, high=None, low_open=False, high_open=False,
                 integer=False, allow_none=False, allow_inf=False):
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a real number"
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r} "
                         f"({type(value).__name__}).")
    if np.isnan(value):
        raise ValueError(f"{owner}: {name} must not be NaN.")
    if np.isinf(value) and not allow_inf:
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}.")
    if low is not None and (value < low or (low_open and value == low)):
        sign = ">" if low_open else ">="
        raise ValueError(f"{owner}: {name} must be {sign} {low}, got {value!r}.")
    if high is not None and (value > high or (high_open and value == high)):
        sign = "<" if high_open else "<="
        raise ValueError(f"{owner}: {name} must be {sign} {high}, got {value!r}.")
    return value


def check_fit_data(owner, X, y, regressor):
    """Eager checks of fit's (X, y) whose scikit-learn messages name neither argument:
    X and y of different lengths, and (regressors) a y that is not numeric."""
    from sklearn.utils.validation import _num_samples

    if y is None:
        return
    try:
        n_X, n_y = _num_samples(X), _num_samples(y)
    except TypeError:
        return  # sklearn's own validation explains what X or y is
    if n_X != n_y:
        raise ValueError(f"{owner}: X has {n_X} rows but y has {n_y} values; pass one target "
                         "per row of X (inconsistent numbers of samples).")
    if regressor:
        values = np.asarray(y)
        if values.dtype.kind in "OUSV":
            try:
                values.astype(float)
            except (TypeError, ValueError):
                first = next((v for v in values.ravel() if not _is_number(v)), None)
                raise ValueError(f"{owner}: y must be numeric (a regression target), got "
                                 f"{first!r}; convert y to numbers, or use a classifier for "
                                 "class labels.") from None


def _is_number(v):
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def validate_fit_data(est, X, y, **kwargs):
    """scikit-learn's `validate_data` for fit, with messages that name X or y.

    The wording of scikit-learn's messages is kept after ours (its estimator checks
    match parts of it, such as "0 feature(s)")."""
    owner = type(est).__name__
    check_fit_data(owner, X, y, regressor=kwargs.get("y_numeric", False))
    try:
        return validate_data(est, X, y, **kwargs)
    except ValueError as err:
        text = str(err)
        if "0 sample(s)" in text:
            raise ValueError(f"{owner}: X has no rows; fit needs at least one sample. "
                             f"({text})") from None
        if "0 feature(s)" in text:
            raise ValueError(f"{owner}: X has no columns; pass at least one feature (for an "
                             f"intercept-only model use linjax.fit). ({text})") from None
        if "Expected 2D array" in text:
            raise ValueError(f"{owner}: X must be 2-D (n_samples, n_features). ({text})") \
                from None
        if text.startswith("y should be a 1d array"):
            raise ValueError(f"{owner}: y must be 1-D, one target per row of X. ({text})") \
                from None
        raise


# -- structured X: scipy.sparse and DataFrames with categorical columns ---------------------

#: scipy.sparse formats the estimators take, as scikit-learn's (kept sparse: a linjax Sparse).
SPARSE_FORMATS = ["csr", "csc", "coo"]


def is_structured(X):
    """scipy.sparse X, or a DataFrame with a category or string column."""
    return design_fitting.is_scipy_sparse(X) or frames.has_categories(X)


def validate_fit_input(est, X, y, **kwargs):
    """`validate_fit_data` for any X fit accepts: (X, y) with X a numpy array, a
    `linjax.designs.Sparse` for scipy.sparse X, or for a DataFrame with category/string
    columns the design of `frames.encode_frame` (categorical blocks, treatment coded when
    fit_intercept; the encoding is kept as `encoding_` for predict)."""
    est.__dict__.pop("encoding_", None)
    if design_fitting.is_scipy_sparse(X):
        X, y = validate_fit_data(est, X, y, accept_sparse=SPARSE_FORMATS, **kwargs)
        return Sparse.from_scipy(X, fit_dtype(X)), y
    if not frames.has_categories(X):
        return validate_fit_data(est, X, y, **kwargs)
    check_fit_data(type(est).__name__, X, y, regressor=kwargs.get("y_numeric", False))
    validate_data(est, X, skip_check_array=True)  # feature_names_in_, n_features_in_
    y = _check_y(y, multi_output=kwargs.get("multi_output", False),
                 y_numeric=kwargs.get("y_numeric", False), estimator=est)
    design, est.encoding_ = frames.encode_frame(X, drop_first=est.fit_intercept)
    return design_fitting.checked(design, fit_intercept=est.fit_intercept), y


def validated_X(est, X, dtype):
    """X for predict / summary as it was fitted: a numpy array or scipy.sparse matrix
    (either, whatever fit saw), or for a frame-fitted estimator the frame's design with
    the fitted levels (a level not seen in fit is refused naming the column and level)."""
    encoding = getattr(est, "encoding_", None)
    if encoding is None:
        X = validate_data(est, X, reset=False, accept_sparse=SPARSE_FORMATS, dtype=FLOATS)
        return X.astype(dtype, copy=False)
    if not frames.is_frame(X):
        raise ValueError(f"{type(est).__name__}: X must be a DataFrame with the columns "
                         f"{[c for c, _ in encoding.columns][:20]} (the estimator was fitted on "
                         f"one with categorical columns), got {type(X).__name__}.")
    validate_data(est, X, skip_check_array=True, reset=False)
    try:
        return encoding.transform(X, dtype=dtype)
    except ValueError as err:  # the estimators have no unseen= option: say what to do instead
        text = str(err).replace("pass unseen='reference' to give such rows the reference "
                                "level, or refit with that level", "map it to a fitted level, "
                                "or refit with rows of that level")
        raise ValueError(f"{type(est).__name__}: {text}") from None


def as_dtype(X, dtype):
    """X (array, scipy.sparse or design) in `dtype`."""
    if is_design(X):
        return X if X.dtype == dtype else X.astype(dtype)
    return X.astype(dtype, copy=False)


def matvec(X, coef):
    """X @ coef in numpy for an array, a scipy.sparse matrix or a design (categorical blocks
    as a lookup of their level's coefficient; no compiled program)."""
    if not is_design(X):
        return np.asarray(X @ coef)
    coef = np.asarray(coef)
    blocks = X.blocks if isinstance(X, Split) else (X,)
    edges = np.cumsum([0] + [b.shape[1] for b in blocks])
    out = np.zeros((X.shape[0],) + coef.shape[1:], coef.dtype)
    for block, lo, hi in zip(blocks, edges[:-1], edges[1:], strict=True):
        part = coef[lo:hi]
        if isinstance(block, Categorical):
            if block.drop_first:
                part = np.concatenate([np.zeros((1,) + part.shape[1:], part.dtype), part])
            out += part[np.asarray(block.codes)]
        elif isinstance(block, Dense):
            out += np.asarray(block.X) @ part
        else:
            out += np.asarray(block @ jnp.asarray(part))
    return out


def check_choice(owner, name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {sorted(choices)}, got {value!r}.")
    return value


def check_bool(owner, name, value):
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}.")
    return bool(value)


def fit_dtype(X):
    """float32 stays float32; anything else becomes the default float (float64 under x64)."""
    if X.dtype == np.float32:
        return np.dtype(np.float32)
    return np.dtype(jnp.zeros(()).dtype)


def as_1d(owner, name, a, n, dtype):
    a = check_array(a, ensure_2d=False, dtype=None, input_name=name)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 0:
        a = np.full(n, a)
    if a.shape != (n,):
        raise ValueError(f"{owner}: {name} must have shape ({n},) to match the {n} rows of X, "
                         f"got shape {a.shape}.")
    return np.asarray(a, dtype)


def feature_names(est, n_features):
    encoding = getattr(est, "encoding_", None)
    if encoding is not None:
        return list(encoding.names)
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{j + 1}" for j in range(n_features)]


class LinjaxMixin:
    """Fitting machinery shared by all linjax estimators (mixed into BaseEstimator)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # scipy.sparse X stays sparse (a linjax Sparse design)
        tags.input_tags.categorical = True  # category / string columns of a DataFrame
        return tags

    # -- hooks ------------------------------------------------------------------------
    def _family(self):
        raise NotImplementedError

    def _penalty(self, weight_sum):
        """The linjax penalty for the current hyperparameters (weight_sum: sum of weights)."""
        raise NotImplementedError

    def _bounds(self):
        return (0.0, None) if getattr(self, "positive", False) else None

    def _warn_singular(self):
        return True

    # -- shared pieces ------------------------------------------------------------------
    def _validate_common(self):
        name = type(self).__name__
        check_bool(name, "fit_intercept", self.fit_intercept)
        check_bool(name, "warm_start", getattr(self, "warm_start", False))
        check_bool(name, "standardize", getattr(self, "standardize", False))
        check_number(name, "max_iter", getattr(self, "max_iter", None), low=1, integer=True,
                     allow_none=True)
        check_number(name, "tol", getattr(self, "tol", None), low=0, low_open=True,
                     allow_none=True)
        if "positive" in self.get_params():
            check_bool(name, "positive", self.positive)

    def _solver(self, family, penalty, shape, bounded, design=None):
        """The solver instance: `solver` (name, alias or instance) with max_iter / tol applied
        (for a `design`, `linjax.designs.fitting.solver_for`'s choice, which counts its widest
        factor as the diagonal it is to Newton, as `lj.fit` does)."""
        solver = getattr(self, "solver", "auto")
        if isinstance(solver, str):
            key = SOLVER_ALIASES.get(solver.lower(), solver)
            if key == "svd":
                solver = LeastSquares(method="svd")
            else:
                solver = key
        elif not hasattr(solver, "minimise"):
            raise ValueError(f"{type(self).__name__}: solver must be 'auto', a solver name or a "
                             f"linjax.solvers instance, got {solver!r}.")
        if design is not None:
            solver = design_fitting.solver_for(solver, family, penalty, shape, bounded,
                                               choose_solver,
                                               design_fitting.diagonal_width(design))
        else:
            solver = choose_solver(solver, family, penalty, shape, bounded=bounded)
        changes = {}
        max_iter = getattr(self, "max_iter", None)
        tol = getattr(self, "tol", None)
        fields = getattr(solver, "__dataclass_fields__", {})
        if max_iter is not None and "max_iter" in fields:
            changes["max_iter"] = int(max_iter)
        if tol is not None and "tol" in fields:
            changes["tol"] = float(tol)
        return replace(solver, **changes) if changes else solver

    def _run_fit(self, X, y, w, offset, family, penalty, init=None, stats=None):
        """One `linjax.fit` call on numpy inputs; returns (FitResult, params on X's scale).

        The design is padded to a bucketed shape (`padded_shape`): extra rows get weight
        0, extra columns are zero with a unit L2 / L1 factor so their coefficients stay
        exactly 0; the penalty is rewritten as strength 1 with per-coefficient factors
        (alpha on the real columns), the same objective. The returned FitResult has the
        real columns and the nominal penalty. A design (sparse or categorical X) is fitted
        as it is, without padding.
        """
        if is_design(X):
            return self._run_design_fit(X, y, w, offset, family, penalty, init)
        dtype = X.dtype
        n, p = X.shape
        bounds = self._bounds()
        Xf = X if stats is None else np.asarray(P.standardize(X, stats), dtype)
        if init is not None and stats is not None:
            init = P.params_to_standardized(init, stats)
        n_pad, p_pad = padded_shape(n, p)
        Xp, yp, wp, offp = Xf, np.asarray(y, dtype), w, offset
        if (n_pad, p_pad) != (n, p):
            # padding rows repeat a row of positive weight (with weight 0): a row of zeros
            # would have eta = intercept, which may leave the link's domain (Gamma's
            # inverse link with a negative intercept) and make the weighted objective NaN
            # there, so the fit would stop at the domain's edge
            r = int(np.argmax(w > 0))
            Xp = np.zeros((n_pad, p_pad), dtype)
            Xp[:n, :p] = Xf
            Xp[n:, :p] = Xf[r]
            yp = np.empty((n_pad,), dtype)
            yp[:n] = y
            yp[n:] = y[r]
            wp = np.zeros((n_pad,), dtype)
            wp[:n] = w
            if offset is not None:
                offp = np.empty((n_pad,), dtype)
                offp[:n] = offset
                offp[n:] = offset[r]
        if init is not None:
            coef = np.asarray(init["coef"], dtype)
            pad = np.zeros((p_pad - p,) + coef.shape[1:], dtype)
            init = {"coef": jnp.asarray(np.concatenate([coef, pad])),
                    "intercept": jnp.asarray(np.asarray(init["intercept"], dtype))}
        penalty_p = padded_penalty(penalty, p, p_pad, dtype)
        solver = self._solver(family, penalty_p, Xp.shape, bounds is not None)
        result = fit(jnp.asarray(Xp), jnp.asarray(yp), family=family, penalty=penalty_p,
                     solver=solver, weights=jnp.asarray(wp),
                     offset=None if offp is None else jnp.asarray(offp),
                     fit_intercept=self.fit_intercept, init=init, bounds=bounds)
        fitted = {"coef": result.params["coef"][:p], "intercept": result.params["intercept"]}
        result = replace(result, params=fitted, penalty=penalty)
        params = fitted if stats is None else P.params_to_original(fitted, stats)
        params = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), params)
        self._check_status(result)
        return result, params

    def _run_design_fit(self, X, y, w, offset, family, penalty, init):
        dtype = np.dtype(X.dtype)
        bounds = self._bounds()
        solver = self._solver(family, penalty, X.shape, bounds is not None, design=X)
        if init is not None:
            init = {k: jnp.asarray(np.asarray(v, dtype)) for k, v in init.items()}
        result = fit(X, jax.device_put(np.asarray(y, dtype)), family=family, penalty=penalty,
                     solver=solver, weights=jax.device_put(w),
                     offset=None if offset is None else jax.device_put(offset),
                     fit_intercept=self.fit_intercept, init=init, bounds=bounds)
        params = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), result.params)
        self._check_status(result)
        return result, params

    def _standardizer(self, X, w):
        if not getattr(self, "standardize", False):
            return None
        if is_design(X):
            raise ValueError(f"{type(self).__name__}: standardize=True needs a dense X (scaling "
                             "a sparse or categorical design would densify it); scale the "
                             "numeric columns beforehand, or pass a dense array.")
        return P.fit_standardizer(X, w, with_mean=self.fit_intercept)

    def _check_status(self, result):
        status = int(np.asarray(result.status).reshape(-1)[0])
        if status == Status.CONVERGED:
            return
        if status == Status.SINGULAR and not self._warn_singular():
            return
        warnings.warn(
            f"{type(self).__name__}: the {result.solver or 'linjax'} solver did not converge "
            f"after {int(np.asarray(result.n_iter).reshape(-1)[0])} iteration(s): "
            f"{result.message}.", ConvergenceWarning, stacklevel=4)

    def _warm_init(self, n_features, shape):
        if not (getattr(self, "warm_start", False) and hasattr(self, "coef_")):
            return None
        coef = np.asarray(self._coef_for_fit())
        if coef.shape != shape:
            return None
        return {"coef": coef, "intercept": np.asarray(self._intercept_for_fit())}

    def _sample_weight(self, sample_weight, X, dtype):
        w = _check_sample_weight(sample_weight, X, dtype=dtype, ensure_non_negative=True)
        if not np.all(np.isfinite(w)):
            raise ValueError(f"{type(self).__name__}: sample_weight contains NaN or inf; pass "
                             "finite non-negative weights.")
        if not np.any(w > 0):
            raise ValueError(f"{type(self).__name__}: sample_weight is zero for every sample; at "
                             "least one sample needs a positive weight.")
        return np.asarray(w, dtype)

    def _offset(self, offset, n, dtype):
        if offset is None:
            return None
        off = as_1d(type(self).__name__, "offset", offset, n, dtype)
        if not np.all(np.isfinite(off)):
            raise ValueError(f"{type(self).__name__}: offset contains NaN or inf.")
        return off

    def _check_y_support(self, y, family):
        message = family.support_error(np.asarray(y))
        if message:
            raise ValueError(f"{type(self).__name__}: y has {message} (family {family!r}).")

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_train", None)
        return state

    # -- inference --------------------------------------------------------------------
    def _summary_result(self):
        """A FitResult with the original-scale params and an equivalent penalty."""
        result = self.result_
        params = {"coef": jnp.asarray(self._coef_for_fit()),
                  "intercept": jnp.asarray(self._intercept_for_fit())}
        penalty = result.penalty
        alpha = getattr(penalty, "alpha", None)
        if isinstance(penalty, L2 | ElasticNet | L1) and alpha is not None and \
                float(np.asarray(alpha)) == 0.0:
            penalty = NoPenalty()
        stats = getattr(self, "_stats", None)
        if stats is not None and not isinstance(penalty, NoPenalty):
            scale = np.asarray(stats.scale)
            factors = scale if isinstance(penalty, L1) else scale**2
            if getattr(penalty, "weights", None) is not None:
                factors = factors * np.asarray(penalty.weights)
            penalty = replace(penalty, weights=jnp.asarray(factors, params["coef"].dtype))
        return replace(result, params=params, penalty=penalty)

    def _summary_data(self, X, y, sample_weight, offset):
        if X is None and y is None:
            train = getattr(self, "_train", None)
            if train is None:
                raise ValueError(f"{type(self).__name__}.summary: the training data is not "
                                 "stored (the estimator was pickled or loaded); pass X and y "
                                 "(and sample_weight, offset) as used in fit.")
            return train
        if X is None or y is None:
            raise ValueError(f"{type(self).__name__}.summary: pass both X and y, or neither to "
                             "use the training data.")
        X = self._validate_X(X)
        if design_fitting.is_scipy_sparse(X):
            X = Sparse.from_scipy(X, X.dtype)
        y = self._encode_y_for_summary(y)
        w = self._summary_weights(y, sample_weight, X)
        return X, y, w, self._offset(offset, X.shape[0], X.dtype)

    def _summary_weights(self, y, sample_weight, X):
        return self._sample_weight(sample_weight, X, X.dtype)

    def _encode_y_for_summary(self, y):
        return np.asarray(check_array(y, ensure_2d=False, dtype=None, input_name="y"), float)

    def summary(self, X=None, y=None, sample_weight=None, offset=None, cov_type="nonrobust",
                alpha=0.05, **kwargs):
        """The inference `Summary` (`linjax.inference.summarize`) with feature names.

        Uses the training data (kept in memory, not pickled) unless X and y are given.
        cov_type: "nonrobust", "HC0".."HC3" or "cluster" (with groups=); alpha: 1 -
        confidence level. Other keywords go to `summarize`. Penalized fits follow the
        conventions of `linjax.inference` (posterior covariance for ridge, active set
        for L1). Statistical output needs float64 (`jax_enable_x64`).
        """
        check_is_fitted(self)
        self._check_summary_supported()
        X, y, w, off = self._summary_data(X, y, sample_weight, offset)
        names = feature_names(self, X.shape[1])
        return summarize(self._summary_result(), X if is_design(X) else np.asarray(X),
                         np.asarray(y, X.dtype),
                         weights=w, offset=off, cov_type=cov_type, alpha=alpha,
                         feature_names=names, **kwargs)

    def _check_summary_supported(self):
        return None

    def _coef_for_fit(self):
        return self.coef_

    def _intercept_for_fit(self):
        return self.intercept_


#: Designs up to this many rows are padded to the next power of two (compile reuse).
PAD_ROWS_UP_TO = 4096
#: Designs up to this many columns are padded to the next power of two.
PAD_COLS_UP_TO = 32


def _next_power(m, base, minimum):
    size = minimum
    while size < m:
        size *= base
    return size


def padded_shape(n, p):
    """The bucketed (rows, columns) a design of shape (n, p) is fitted at.

    Rows: 128, 512, 2048 or 8192 (the next power of four from 128) for n up to
    PAD_ROWS_UP_TO, else n; columns: 8, 16 or 32 for p up to PAD_COLS_UP_TO, else p.
    Small problems of nearby shapes (cross-validation folds, feature subsets) then
    share one compiled fit, at a cost that is negligible at these sizes; large
    designs are neither copied nor padded.
    """
    n_pad = _next_power(n, 4, 512) if n <= PAD_ROWS_UP_TO else n
    p_pad = _next_power(p, 2, 16) if p <= PAD_COLS_UP_TO else p
    return n_pad, p_pad


def padded_penalty(penalty, p, p_pad, dtype):
    """`penalty` on p coefficients as strength 1 with factors, unit factors on the padding."""
    alpha = float(np.asarray(penalty.alpha))
    factors = np.ones(p, dtype) if penalty.weights is None else np.asarray(penalty.weights,
                                                                             dtype)
    factors = jnp.asarray(np.concatenate([alpha * factors, np.ones(p_pad - p, dtype)]))
    if isinstance(penalty, L1):  # the same objective; shares the compiled elastic-net fit
        return ElasticNet(alpha=1.0, l1_ratio=1.0, weights=factors)
    return replace(penalty, alpha=1.0, weights=factors)


#: Families whose response is non-negative (scikit-learn's `positive_only` target tag).
POSITIVE_FAMILIES = (F.Poisson, F.Gamma, F.InverseGaussian, F.NegativeBinomial, F.Tweedie)


def family_target_tags(tags, family_of):
    """scikit-learn tags with `positive_only` set when the estimator's family (from the
    callable `family_of`) needs y >= 0; unchanged when the family setting is invalid."""
    try:
        family = family_of()
    except ValueError:
        return tags
    tags.target_tags.positive_only = isinstance(family, POSITIVE_FAMILIES)
    return tags


def family_from(name_or_family, link=None, owner="GLM"):
    """A linjax family from a name (and link name) or an instance."""
    if isinstance(name_or_family, F.AbstractFamily):
        if link is not None:
            return replace(name_or_family, link=L.get_link(link) if isinstance(link, str)
                           else link)
        return name_or_family
    try:
        return F.get_family(name_or_family, link=link if isinstance(link, str | None) else None)
    except ValueError as err:
        raise ValueError(f"{owner}: family: {err}") from err


def penalty_from(alpha, l1_ratio):
    """L2 for l1_ratio == 0 (or alpha == 0), L1 for l1_ratio == 1, else ElasticNet."""
    if l1_ratio == 0 or alpha == 0:
        return L2(alpha=float(alpha))
    if l1_ratio == 1:
        return L1(alpha=float(alpha))
    return ElasticNet(alpha=float(alpha), l1_ratio=float(l1_ratio))


def result_to_numpy(result):
    """The FitResult with numpy leaves (smaller pickles, no device buffers)."""
    if not isinstance(result, FitResult):
        return result
    return jax.tree_util.tree_map(np.asarray, result)
