"""What `lj.fit` does differently for a design object (the array path never comes here).

- `checked`: a DataFrame with category/string columns becomes a `Split`
  (`frames.encode_frame`), scipy.sparse becomes `Sparse`, `Dense` unwraps to its array
  (the dense path), other designs are checked (rows, finite values, codes in range)
  when concrete.
- `solver_for`: "auto" picks Newton where it would pick LeastSquares (QR needs the dense
  matrix), and NewtonCG where it would pick L-BFGS beyond Newton's width; solvers that
  need the rows themselves (LeastSquares, SGD) are refused.
- `dense_for_checks`: the dense matrix of a small design for the eager separation and
  rank-deficiency checks (skipped above `CHECK_MAX_ELEMENTS`).
"""

import jax
import jax.numpy as jnp
import numpy as np

from linjax.designs import frames
from linjax.designs.block_solve import diagonal_width  # noqa: F401  (lj.fit's solver choice)
from linjax.designs.in_place import InPlaceDense
from linjax.designs.in_place import check_finite as check_in_place
from linjax.designs.types import AbstractDesign, Categorical, Dense, Sparse, Split
from linjax.solvers import LBFGS, SGD, LeastSquares, Newton, NewtonCG

#: Largest n * p for which `lj.fit` densifies a design for its eager warnings.
CHECK_MAX_ELEMENTS = 1 << 22
#: Widest design (coefficients, not counting its widest factor, whose diagonal block Newton's
#: Schur step solves in O(levels)) for which "auto" takes Newton; wider ones take NewtonCG,
#: which never forms the Hessian. As a dense X's limit: beyond it the dense part of the
#: Gram costs more than the passes of truncated Newton (logistic, sparse n = 20,000,
#: p = 2,000 at 1%: Newton 11.3 s CPU, NewtonCG 0.84 s; two 3,000-level factors and 5
#: numerics on 200,000 rows, Poisson: Newton 26-32 s, NewtonCG 0.26 s).
NEWTON_MAX_WIDTH = 500


def is_scipy_sparse(a):
    """A scipy.sparse matrix or array (recognised without importing scipy)."""
    return type(a).__module__.startswith("scipy.sparse") and hasattr(a, "toarray")


def accepts(X):
    """True when `checked` takes X: a design, a scipy.sparse matrix, or a DataFrame with a
    category or string column (an all-numeric frame stays on the array path)."""
    return isinstance(X, AbstractDesign) or is_scipy_sparse(X) or frames.has_categories(X)


def _concrete(a):
    return not isinstance(a, jax.core.Tracer)


def _host_finite(values, rows=1 << 16):
    """np.isfinite(values).all() by row blocks (no full-size temporary, no device copy)."""
    return all(np.isfinite(values[lo:lo + rows]).all() for lo in range(0, len(values), rows))


def _check_finite(name, values):
    if isinstance(values, np.ndarray):
        if not _host_finite(values):
            raise ValueError(f"{name}: {int((~np.isfinite(values)).sum())} non-finite value(s) "
                             "(NaN or inf) in its stored entries; remove or impute them before "
                             "fitting.")
        return
    if _concrete(values) and not bool(jnp.all(jnp.isfinite(values))):
        bad = int(jnp.sum(~jnp.isfinite(values)))
        raise ValueError(f"{name}: {bad} non-finite value(s) (NaN or inf) in its stored "
                         "entries; remove or impute them before fitting.")


def checked(X, name="X", fit_intercept=True):
    """X as a design ready for `fit` (see the module docstring), or a ValueError. A frame's
    categories are treatment-coded (first level dropped) when there is an intercept."""
    if frames.is_frame(X):
        X = frames.encode_frame(X, drop_first=fit_intercept)[0]
    if is_scipy_sparse(X):
        if len(X.shape) != 2:
            raise ValueError(f"{name}: expected a 2-D sparse matrix, got shape {X.shape}.")
        if np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError(f"{name}: complex values are not supported; pass real numbers.")
        X = Sparse.from_scipy(X)
    if isinstance(X, Dense):
        return X.X
    if X.shape[0] == 0:
        raise ValueError(f"{name}: has 0 rows; at least one observation is needed.")
    for block in X.blocks if isinstance(X, Split) else (X,):
        if isinstance(block, Dense):
            _check_finite(name, block.X)
        elif isinstance(block, InPlaceDense):
            check_in_place(name, block)
        elif isinstance(block, Sparse):
            _check_finite(name, block.data)
        elif isinstance(block, Categorical) and _concrete(block.codes):
            codes = np.asarray(block.codes)
            if codes.size and (codes.min() < 0 or codes.max() >= block.n_levels):
                raise ValueError(f"{name}: a categorical block's codes must lie in "
                                 f"0..{block.n_levels - 1}, got {codes.min()}..{codes.max()}.")
    return X


def solver_for(solver, family, penalty, shape, bounded, choose, arrow_width=0):
    """`choose(solver, family, penalty, shape, bounded)` (linjax's solver choice) for a
    design: "auto" never gives LeastSquares, takes Newton instead of L-BFGS up to
    `NEWTON_MAX_WIDTH` coefficients not counting `arrow_width` (the widest categorical
    block's columns, which Newton's Schur-complement step solves as a diagonal:
    `linjax.designs.block_solve`) and truncated Newton (`NewtonCG`) beyond; LeastSquares,
    SGD and multiclass families are refused with the way out."""
    if family.multiclass:
        raise ValueError("X: multiclass families need a dense X for now; pass "
                         "X.to_dense() (or a numpy array) with Multinomial.")
    auto = isinstance(solver, str) and solver.lower() == "auto"
    chosen = choose(solver, family, penalty, shape, bounded=bounded)
    if auto and isinstance(chosen, LeastSquares):
        return Newton()
    if auto and type(chosen) is LBFGS and shape[1] + 1 - arrow_width <= NEWTON_MAX_WIDTH:
        return Newton()
    if auto and type(chosen) is LBFGS:   # Hessian-vector products by X v and X' u
        return NewtonCG()
    if isinstance(chosen, LeastSquares | SGD):
        raise ValueError(f"solver: {type(chosen).__name__} needs the rows of a dense X; with a "
                         "sparse or categorical design use solver='newton', 'lbfgs', 'cd' or "
                         "'proximal' (or 'auto').")
    return chosen


def dense_for_checks(X):
    """X itself for an array; a design's dense matrix when n * p <= CHECK_MAX_ELEMENTS
    (the eager warnings work on arrays), else None (those checks are skipped)."""
    if not isinstance(X, AbstractDesign):
        return X
    if X.size > CHECK_MAX_ELEMENTS or any(not _concrete(a) for a in jax.tree.leaves(X)):
        return None
    return X.to_dense()
