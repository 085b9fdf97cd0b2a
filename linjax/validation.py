"""Eager input validation shared by every entry point.

Runs once, before tracing, on concrete inputs: each problem raises a
`ValueError` that names the argument, the problem and the fix. Inside `jit` or
`vmap` (traced inputs) only shapes are checked. Conversions: integer and
boolean arrays become the default float dtype; float16/bfloat16 are upcast to
float32; float32 stays float32 (dtype follows the input).
"""

import jax
import jax.numpy as jnp
import numpy as np

from linjax.families import (
    Binomial,
    Gamma,
    Gaussian,
    InverseGaussian,
    NegativeBinomial,
    Poisson,
    Tweedie,
)
from linjax.penalties import AbstractPenalty, Firth


def to_device(a, dtype=None):
    """`jnp.asarray(a, dtype)` without compiling: host data goes by `jax.device_put` of a
    numpy array (jax 0.10's `jnp.asarray` of a numpy array compiles a small program per shape
    and dtype, ~30 ms each on a first call); JAX arrays and tracers pass through jnp."""
    if isinstance(a, jax.Array | jax.core.Tracer):
        return a if dtype is None or a.dtype == dtype else jnp.asarray(a, dtype)
    return jax.device_put(np.asarray(a, dtype))


def is_traced(x):
    """True when the values of `x` cannot be inspected on this host: a tracer, or a global
    array spread over several processes (checked where its pieces were made, for instance
    by `linjax.shard_rows`)."""
    if isinstance(x, jax.core.Tracer):
        return True
    return isinstance(x, jax.Array) and not x.is_fully_addressable


def default_float():
    return jnp.zeros(()).dtype


def float_dtype_of(*arrays):
    """The floating dtype of the inputs: the widest float among them, else the default."""
    floats = [a.dtype for a in arrays if a is not None and jnp.issubdtype(a.dtype, jnp.floating)]
    if not floats:
        return default_float()
    dtype = jnp.result_type(*floats)
    if jnp.finfo(dtype).bits < 32:
        dtype = jnp.float32
    return jnp.dtype(jax.dtypes.canonicalize_dtype(dtype))


def _refuse_complex(name, dtype):
    if np.issubdtype(np.dtype(dtype), np.complexfloating):
        raise ValueError(f"{name}: complex values are not supported; pass real numbers.")


def _is_sparse(a):
    """A scipy.sparse matrix or array (recognised without importing scipy)."""
    return type(a).__module__.startswith("scipy.sparse") and hasattr(a, "toarray")


def _is_missing(v):
    """None, pandas.NA / NaT or a float NaN: a missing entry of an object array."""
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(v, float) and v != v


def _raise_if_missing(name, missing):
    """A ValueError for the True entries of the mask `missing`, if any."""
    missing = np.asarray(missing, dtype=bool)
    if not missing.any():
        return
    idx = np.unravel_index(int(np.flatnonzero(missing)[0]), missing.shape)
    where = int(idx[0]) if len(idx) == 1 else tuple(int(i) for i in idx)
    raise ValueError(
        f"{name}: {int(missing.sum())} missing value(s) (<NA>, None or NaN), the first at index "
        f"{where}; drop those rows or impute the values before fitting."
    )


def _object_as_float(name, arr):
    """An object array of numbers as floats; missing entries (pandas' nullable dtypes hold
    <NA>) and non-numbers each get their own message."""
    try:
        return arr.astype(float)
    except (TypeError, ValueError) as err:
        _raise_if_missing(name, np.vectorize(_is_missing, otypes=[bool])(arr))
        raise ValueError(
            f"{name}: contains non-numeric values (dtype object); encode categories as "
            "numbers (for example one-hot columns) before fitting."
        ) from err


def as_numeric(name, a):
    """`a` as a numpy or JAX array, refusing non-numeric content with a clear message."""
    if is_traced(a) or isinstance(a, jax.Array):
        _refuse_complex(name, a.dtype)
        return a
    if _is_sparse(a):
        raise ValueError(
            f"{name}: scipy.sparse input is not supported yet; convert it with {name}.toarray() "
            "if the dense array fits in memory."
        )
    missing = None
    if hasattr(a, "to_numpy") and not isinstance(a, np.ndarray):
        missing = getattr(a, "isna", None)  # pandas: <NA> may arrive as NaN
        a = a.to_numpy()
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: could not be read as a numeric array ({err}).") from err
    if arr.dtype == object:
        arr = _object_as_float(name, arr)
    if missing is not None and arr.shape and not all_finite_fast(arr):
        _raise_if_missing(name, missing())
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(
            f"{name}: expected numbers, got dtype {arr.dtype}; convert it to a numeric array."
        )
    _refuse_complex(name, arr.dtype)
    return arr


def on_accelerator(arr):
    """True for a JAX array held on a non-CPU device (reductions there beat a host copy)."""
    return isinstance(arr, jax.Array) and any(d.platform != "cpu" for d in arr.devices())


def all_finite_fast(arr):
    """A one-pass sufficient test: a finite sum means no NaN or inf in `arr` (either would
    make the sum NaN or inf). An accelerator's array is summed where it lives, so only a
    scalar crosses to the host; a sum that overflows only sends the caller to the exact
    test."""
    if arr.size == 0:
        return True
    if on_accelerator(arr):
        return bool(jnp.isfinite(jnp.sum(arr)))
    a = np.asarray(arr)
    if not np.issubdtype(a.dtype, np.floating):
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(a.sum()))


def check_finite(name, arr):
    if is_traced(arr) or all_finite_fast(arr):
        return
    a = np.asarray(arr)
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad)[0]), a.shape))
        raise ValueError(
            f"{name}: {int(bad.sum())} non-finite value(s) (NaN or inf), the first at index "
            f"{idx if len(idx) > 1 else idx[0]}; remove or impute them before fitting."
        )


#: Families whose support is an interval of y (for every value of their parameters).
_INTERVAL_SUPPORT = (Gaussian, Binomial, Poisson, Gamma, InverseGaussian, NegativeBinomial,
                     Tweedie)


def y_in_support_fast(Y, family):
    """True when every entry of Y is finite and in the family's support, decided from min(Y)
    and max(Y) alone (two reductions instead of the per-entry masks; 10,000 x 500: ~3 ms
    instead of ~9; an accelerator's Y is reduced on the device). False means "check entry
    by entry" (which raises the detailed error)."""
    if is_traced(Y) or type(family) not in _INTERVAL_SUPPORT:
        return False
    if Y.size == 0:
        return False
    a = Y if on_accelerator(Y) else np.asarray(Y)  # reduce where Y lives
    lo, hi = float(a.min()), float(a.max())        # NaN propagates through both
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return False
    return family.support_error(np.array([lo, hi])) is None


def check_design(X, name="X"):
    """X as a floating 2-D array with at least one row and finite values (design objects,
    scipy.sparse and frames with categories are `linjax.inputs.check_X`'s)."""
    X = as_numeric(name, X)
    if X.ndim == 1:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), got shape "
                         f"{X.shape}; use X.reshape(-1, 1) for a single feature.")
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), got shape "
                         f"{X.shape}.")
    if X.shape[0] == 0:
        raise ValueError(f"{name}: has 0 rows; at least one observation is needed.")
    check_finite(name, X)
    return X


def check_vector(name, a, n, dtype):
    """A length-n float vector (a column vector is flattened)."""
    a = as_numeric(name, a)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 0 and name != "y":
        a = (np.full if not is_traced(a) else jnp.full)((n,), a)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},) to match the {n} rows of X, got "
                         f"shape {tuple(a.shape)}.")
    check_finite(name, a)
    return to_device(a, dtype)


def check_fit_intercept(fit_intercept):
    """fit_intercept must be a bool (a string such as "no" is truthy and would fit one)."""
    if not isinstance(fit_intercept, bool | np.bool_):
        raise ValueError(f"fit_intercept: expected True or False, got {fit_intercept!r}.")


def check_penalty(penalty):
    """A `linjax.penalties` instance (or None) with alpha >= 0 and l1_ratio in [0, 1]."""
    if penalty is None:
        return
    if not isinstance(penalty, AbstractPenalty):
        hint = ""
        if isinstance(penalty, str):
            hint = (" A name is not enough, the penalty needs its strength: for example "
                    "penalty=linjax.penalties.L2(alpha=1.0) for 'l2'.")
        raise ValueError(
            f"penalty: expected None or a linjax.penalties instance (L2(alpha=...), "
            f"L1(alpha=...), ElasticNet(alpha=..., l1_ratio=...), GroupLasso(alpha=..., "
            f"groups=...)), got {penalty!r}.{hint}"
        )
    for field in ("alpha", "l1_ratio"):
        value = getattr(penalty, field, None)
        if value is None or is_traced(value):
            continue
        v = np.asarray(value)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"penalty {field}: must be finite, got {value}.")
        if field == "alpha" and np.any(v < 0):
            raise ValueError(f"penalty alpha: must be >= 0, got {value}.")
        if field == "l1_ratio" and np.any((v < 0) | (v > 1)):
            raise ValueError(f"penalty l1_ratio: must be in [0, 1], got {value}.")
    weights = getattr(penalty, "weights", None)
    if weights is not None and not is_traced(weights):
        w = np.asarray(weights)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("penalty weights: must be finite and >= 0 (0 leaves a coefficient "
                             "unpenalized).")


#: The one refusal of Firth() by every entry point other than lj.fit (same words everywhere).
FIRTH_ONLY_IN_FIT = (
    "penalty: Firth() (Firth's bias reduction, linjax.firth) is fitted by lj.fit alone, with "
    "its Newton solver and no bounds; fit each problem with lj.fit(X, y, family=Binomial(), "
    "penalty=Firth()).")

#: The one refusal of an estimated negative binomial alpha where it is not estimated.
ALPHA_ESTIMATED_ONLY_IN_FIT = (
    "family: NegativeBinomial(alpha=None) (alpha estimated, linjax.nb) is fitted by lj.fit and "
    "lj.fit_batch alone; pass a fixed alpha here, e.g. the estimate "
    "lj.fit(X, y, family=NegativeBinomial(alpha=None)).family.alpha.")


#: The one refusal of a non-smooth penalty by the Newton (IRLS) of blocked and streaming fits.
IRLS_NEEDS_SMOOTH = (
    "penalty: {name} is not smooth (it has an L1 part), which the Newton (IRLS) of fit_blocked "
    "and fit_streaming cannot handle. Use lj.fit (solver='cd' or 'proximal'), lj.path, or "
    "fit_streaming(solver='sgd').")


def refuse_nonsmooth_for_irls(penalty):
    """fit_blocked and fit_streaming's Newton refuse L1 parts (`IRLS_NEEDS_SMOOTH`)."""
    if not penalty.smooth:
        raise ValueError(IRLS_NEEDS_SMOOTH.format(name=type(penalty).__name__))


def refuse_firth(penalty):
    """Entry points without Firth's bias reduction refuse it (`FIRTH_ONLY_IN_FIT`)."""
    if isinstance(penalty, Firth):
        raise ValueError(FIRTH_ONLY_IN_FIT)


def refuse_estimated_alpha(family):
    """Entry points that do not estimate a negative binomial alpha refuse alpha=None."""
    if family.estimates_alpha:
        raise ValueError(ALPHA_ESTIMATED_ONLY_IN_FIT)


#: Solver fields that must be positive when given (None means the solver's default).
_POSITIVE_SOLVER_FIELDS = ("tol", "xtol", "learning_rate", "step_size")
#: Static integer solver fields and their smallest valid value.
_INTEGER_SOLVER_FIELDS = {"max_iter": 1, "batch_size": 1, "max_halvings": 0, "max_sweeps": 1,
                          "max_backtracks": 0, "memory_size": 1, "max_linesearch_steps": 1}


def check_solver_params(solver):
    """Reject (when concrete) non-positive tolerances and step sizes and iteration caps < 1.

    A negative tol or a max_iter of 0 would otherwise return an unconverged fit, or one
    stopped at the start, as if it were an answer.
    """
    name = type(solver).__name__
    for field in _POSITIVE_SOLVER_FIELDS:
        value = getattr(solver, field, None)
        if value is None or is_traced(value) or isinstance(value, str) or callable(value):
            continue
        v = np.asarray(value)
        if not np.issubdtype(v.dtype, np.number) or not np.all(np.isfinite(v)) or \
                np.any(v <= 0):
            raise ValueError(f"solver {field}: {name}({field}=...) must be a finite number > 0, "
                             f"got {value!r}; use None for the default.")
    for field, low in _INTEGER_SOLVER_FIELDS.items():
        value = getattr(solver, field, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"solver {field}: {name}({field}=...) must be an integer >= {low}, "
                             f"got {value!r}.")


def check_penalty_size(penalty, p):
    """Per-coefficient penalty factors must have one entry per column of X."""
    weights = getattr(penalty, "weights", None)
    if weights is None or is_traced(weights):
        return
    shape = np.shape(weights)
    if shape not in ((), (p,)) and not (len(shape) == 2 and shape[0] == p):
        raise ValueError(f"penalty weights: expected shape ({p},), one factor per column of X, "
                         f"got shape {shape}.")


def check_init(init, p, n_outputs=None):
    """`init` as {"coef": (p,) or (p, K), "intercept": ...} with finite values (when concrete)."""
    if init is None:
        return
    if not isinstance(init, dict) or "coef" not in init:
        raise ValueError('init: expected a dict {"coef": array, "intercept": number} of starting '
                         f"values, got {type(init).__name__}.")
    unknown = sorted(set(init) - {"coef", "intercept"})
    if unknown:
        raise ValueError(f'init: unknown key(s) {unknown}; expected "coef" and "intercept".')
    coef = as_numeric("init coef", init["coef"])
    want = (p,) if n_outputs is None else (p, n_outputs)
    if tuple(coef.shape) != want:
        raise ValueError(f"init: coef must have shape {want} to match X, got shape "
                         f"{tuple(coef.shape)}.")
    check_finite("init coef", coef)
    if init.get("intercept") is not None:
        check_finite("init intercept", as_numeric("init intercept", init["intercept"]))

