"""Eager checks of a batch's inputs (`lj.fit_batch`, and the summaries and tests of its
results): shapes, per-problem rows, finiteness and support. Errors name the problems at fault
(rows of Y), listing the first `LISTED_PROBLEMS` of them."""

import jax
import jax.numpy as jnp
import numpy as np

from linjax import validation
from linjax.designs.types import is_design
from linjax.penalties import NoPenalty


def check_batch_array(name, a, m, n, dtype):
    """A per-problem array: (n,) shared, (m, n) per problem, or a scalar."""
    a = validation.as_numeric(name, a)
    if np.ndim(a) == 0:
        return jnp.full((n,), a, dtype), None
    if a.ndim == 1:
        return validation.check_vector(name, a, n, dtype), None
    if a.ndim != 2 or a.shape != (m, n):
        raise ValueError(f"{name}: expected shape ({n},) (shared by every problem) or ({m}, {n}) "
                         f"(one row per problem), got shape {tuple(a.shape)}.")
    check_finite_rows(name, a)
    return jnp.asarray(a, dtype), 0


#: Problems listed by index in an error message at most (then a count of the others).
LISTED_PROBLEMS = 20


def problem_list(bad_rows, m=None):
    """'problem 3' or 'problems 1, 4, 9' (the first `LISTED_PROBLEMS`, then how many more)."""
    rows = [int(i) for i in np.asarray(bad_rows).reshape(-1)]
    shown = ", ".join(str(i) for i in rows[:LISTED_PROBLEMS])
    more = f" and {len(rows) - LISTED_PROBLEMS} more" if len(rows) > LISTED_PROBLEMS else ""
    total = f" ({len(rows)} of {m})" if m is not None and len(rows) > 1 else ""
    return f"problem{'s' if len(rows) > 1 else ''} {shown}{more}{total}"


def row_error(name, bad_rows, message, m=None):
    i = int(np.asarray(bad_rows).reshape(-1)[0])
    return ValueError(f"{name}[{i}] ({problem_list(bad_rows, m)}): {message}")


def check_finite_rows(name, a, what="value(s)"):
    """Refuse non-finite entries of a per-problem array (leading axis m), listing the
    problems that hold them."""
    if validation.is_traced(a) or validation.all_finite_fast(a):
        return
    a = np.asarray(a)
    bad = np.flatnonzero(~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1))
    if bad.size:
        raise row_error(name, bad, f"non-finite {what} (NaN or inf); remove or impute them, "
                         "or leave those problems out of the batch.", a.shape[0])


def batch_inputs(X, Y, family, weights, offset, penalty, fit_intercept):
    """Eager validation of the whole batch; errors name the problem (row of Y) at fault."""
    structured = is_design(X)  # a shared linjax.designs object, checked by fit_batch
    X = X if structured else validation.as_numeric("X", X)
    if X.ndim not in (2, 3):
        raise ValueError(f"X: expected a shared design (n, p) or stacked designs (m, n, p), "
                         f"got shape {tuple(X.shape)}.")
    Y = validation.as_numeric("Y", Y)
    if Y.ndim != 2:
        raise ValueError(f"Y: expected shape (m, n), one row per problem, got shape "
                         f"{tuple(Y.shape)}; for a single problem use lj.fit or Y[None, :].")
    m, n = Y.shape
    if m == 0:
        raise ValueError("Y: has 0 rows, so there are no problems to fit.")
    if X.ndim == 3:
        if X.shape[:2] != (m, n):
            raise ValueError(f"X: stacked designs must have shape ({m}, {n}, p) to match Y "
                             f"{tuple(Y.shape)}, got {tuple(X.shape)}.")
        check_finite_rows("X", X)
    else:
        if not structured:
            validation.check_design(X)
        if X.shape[0] != n:
            raise ValueError(f"X: has {X.shape[0]} rows but Y has {n} columns (observations); "
                             "Y must have shape (m, n) with n the rows of X.")
    dtype = validation.float_dtype_of(X, Y if jnp.issubdtype(Y.dtype, jnp.floating) else None)
    p = X.shape[-1]
    if p == 0 and not fit_intercept:
        raise ValueError("X: has 0 columns and fit_intercept=False, so there is nothing to fit.")
    # per-problem family parameters (Tweedie power (m,)): checked row by row below
    y_ok = family_rows(family, m) is None and validation.y_in_support_fast(Y, family)
    if not y_ok:
        check_finite_rows("Y", Y)
    X = X.astype(dtype) if structured else jnp.asarray(X, dtype)
    Y = jnp.asarray(Y, dtype)
    w_ax = o_ax = None
    if weights is not None:
        weights, w_ax = check_batch_array("weights", weights, m, n, dtype)
    if offset is not None:
        offset, o_ax = check_batch_array("offset", offset, m, n, dtype)
    if weights is not None and not validation.is_traced(weights):
        w = np.asarray(weights).reshape(-1, n)
        neg = np.flatnonzero((w < 0).any(axis=1))
        if neg.size:
            raise row_error("weights", neg, "negative weight(s); weights must be >= 0.", m)
        empty = np.flatnonzero(~(w > 0).any(axis=1))
        if empty.size:
            raise row_error("weights", empty, "all weights are zero; every problem needs at "
                             "least one observation with positive weight.", m)
        if isinstance(penalty, NoPenalty):
            short = np.flatnonzero((w > 0).sum(axis=1) < p + int(fit_intercept))
            if short.size:
                raise row_error("weights", short, f"fewer observations with positive weight "
                                 f"than the {p + int(fit_intercept)} coefficients; the "
                                 "unpenalized fit is not identifiable. Add a penalty or give "
                                 "the problem more rows.", m)
    elif isinstance(penalty, NoPenalty) and p + int(fit_intercept) > n:
        raise ValueError(f"X: {p + int(fit_intercept)} coefficients but only {n} observations; "
                         "the unpenalized fits are not identifiable. Add a penalty (L2).")
    if not y_ok and not validation.is_traced(Y):
        check_support(np.asarray(Y), family, m)
    return X, Y, weights, offset, w_ax, o_ax


def family_rows(family, m):
    """The family of each problem when some of its parameters are per-problem arrays."""
    leaves, treedef = jax.tree_util.tree_flatten(family)
    batched = [np.ndim(leaf) >= 1 and np.shape(leaf)[0] == m for leaf in leaves]
    if not any(batched):
        return None
    return lambda i: jax.tree_util.tree_unflatten(
        treedef, [np.asarray(leaf)[i] if b else leaf for leaf, b in
                  zip(leaves, batched, strict=True)])


def check_support(Y, family, m):
    per_row = family_rows(family, m)
    if per_row is None and family.support_error(Y) is None:
        return
    rows = range(m)
    for i in rows:
        fam = family if per_row is None else per_row(i)
        message = fam.support_error(Y[i])
        if message:
            bad = [j for j in rows if (family if per_row is None else per_row(j))
                   .support_error(Y[j])]
            raise row_error("Y", np.asarray(bad), f"{message} (family {fam!r}).", m)
