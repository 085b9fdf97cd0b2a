"""Shape buckets: row counts padded with zero-weight rows, so a new n reuses a program.

XLA compiles one program per input shape. Eager calls of `lj.fit` pad the rows of their
data up to the next bucket size, a number of the form m * 2^e with an 8..15 mantissa m
(eight sizes per doubling), so at most n/8 rows are added. The added rows repeat the
first row with weight 0: they are in the family's support, contribute nothing to the
objective, its gradient or curvature (sum_i w_i nll_i / sum_i w_i), and every statistic
is computed later from the caller's own, unpadded data. Under a caller's `jit`/`vmap`
(traced inputs) shapes are the caller's and nothing is padded.

Large designs (over `MAX_PADDED_BYTES`) are padded only once a second row count of the same
bucket shows up: copying X costs a few percent of each fit, which a caller who fits one
data set again and again should not pay, while a loop over sizes shares one program after
its second size.
"""

import jax
import jax.numpy as jnp
import numpy as np

#: Row counts below this are used as they are.
EXACT_BELOW = 16
#: Designs larger than this (bytes of X) are padded only from the second row count of a
#: bucket on (`padded_size`): copying them costs a noticeable part of a warm fit.
MAX_PADDED_BYTES = 1 << 23
#: Row counts remembered per (entry point, columns, dtype, bucket) for large designs.
_seen_rows = {}
_MAX_REMEMBERED = 4096


def bucket_rows(n):
    """The bucket of a row count: the least m * 2^e >= n with 8 <= m <= 15.

    n itself below `EXACT_BELOW`; the padding is at most n / 8 rows.
    """
    n = int(n)
    if n < EXACT_BELOW:
        return n
    shift = n.bit_length() - 4  # n >> shift has four bits: 8..15
    return -((-n) >> shift) << shift  # ceil(n / 2^shift) * 2^shift


def padded_size(X, entry="fit"):
    """The row count to pad X to for a call of `entry`: its bucket, except for a design over
    `MAX_PADDED_BYTES` whose bucket has seen no other row count yet (then its own n, and the
    same choice again whenever that n comes back, so its program is reused)."""
    n = X.shape[0]
    bucket = bucket_rows(n)
    if bucket == n or X.size * X.dtype.itemsize <= MAX_PADDED_BYTES:
        return bucket
    if len(_seen_rows) > _MAX_REMEMBERED:
        _seen_rows.clear()
    seen = _seen_rows.setdefault((entry, X.shape[1:], str(X.dtype), bucket), {})
    if n not in seen:
        seen[n] = bucket if seen else n
    return seen[n]


def pad_rows(n_to, *arrays, lib=np):
    """Each array (None passes through) padded along axis 0 to `n_to` rows with copies of
    its first row (`lib`: numpy for host arrays, jax.numpy for device arrays)."""
    return [a if a is None or a.shape[0] >= n_to else
            lib.concatenate([a, lib.broadcast_to(a[:1], (n_to - a.shape[0],) + a.shape[1:])])
            for a in arrays]


def padded_weights(weights, n, n_to, dtype, lib=np):
    """Sample weights of the padded rows: the caller's (or ones) followed by zeros."""
    w = lib.ones(n, dtype) if weights is None else lib.asarray(weights, dtype)
    return lib.concatenate([w, lib.zeros(n_to - n, dtype)])


def pad_fit_inputs(X, y, weights, offset, entry="fit"):
    """(X, y, weights, offset) of an eager call of `entry` padded to `padded_size` rows.

    Returned unchanged when any input is traced (the caller's `jit`/`vmap` owns the
    shapes) or sharded over several devices.
    Padding builds host arrays for data on the CPU and device arrays elsewhere.
    """
    arrays = (X, y, weights, offset)
    if any(isinstance(a, jax.core.Tracer) for a in arrays):
        return arrays
    if any(isinstance(a, jax.Array) and (not a.is_fully_addressable
                                         or len(a.sharding.device_set) > 1) for a in arrays):
        return arrays  # sharded rows: their layout is the caller's
    n = X.shape[0]
    n_to = padded_size(X, entry)
    if n_to == n:
        return arrays
    on_cpu = all(d.platform == "cpu" for a in arrays if isinstance(a, jax.Array)
                 for d in a.devices())
    lib = np if on_cpu else jnp
    host = [None if a is None else (np.asarray(a) if on_cpu else a) for a in arrays]
    Xp, yp, op = pad_rows(n_to, host[0], host[1], host[3], lib=lib)
    wp = padded_weights(host[2], n, n_to, host[0].dtype, lib=lib)
    # device_put, not jnp.asarray: that would compile a small program per shape (jax 0.10)
    return tuple(None if a is None else (jax.device_put(a) if on_cpu else a)
                 for a in (Xp, yp, wp, op))
