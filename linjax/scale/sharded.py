"""`shard_rows`: place host data on devices, rows split over a mesh axis, for `lj.fit`.

`lj.fit` needs nothing else: under `jit`, XLA partitions the row reductions of every
solver (X' W X, X' r, sums of the loss) and inserts the all-reduces, so a fit on
row-sharded arrays gives the single-device answer (to rounding). The same code runs
across processes after `jax.distributed.initialize`: there each process passes only
its own rows, and the global arrays are assembled from the pieces.

Rows are padded to a multiple of the number of shards with zero-weight rows (X = 0, y a
valid response), which change no sum; the returned `weights` therefore always exist.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from linjax import validation


def default_mesh(axis="rows"):
    """A one-axis mesh over every device of every process."""
    return Mesh(np.asarray(jax.devices()), (axis,))


def _pad(a, total, fill):
    extra = total - a.shape[0]
    if extra == 0:
        return a
    pad = np.broadcast_to(np.asarray(fill, a.dtype), (extra,) + a.shape[1:])
    return np.concatenate([a, pad])


def shard_rows(X, y, weights=None, offset=None, mesh=None, axis=None, family=None):
    """(X, y, weights, offset) as global arrays with rows split over `axis` of `mesh`.

    X (n, p), y (n,), weights, offset (n,) are host (numpy) arrays: the whole data in a
    single process, or this process's rows after `jax.distributed.initialize` (processes
    may hold different numbers of rows). mesh: a `jax.sharding.Mesh` (default: every
    device on one axis "rows"); axis: the mesh axis for rows (default: the first).
    family: when given, y is checked against its support here, on the host.
    Returns arrays ready for `lj.fit(X, y, weights=weights, offset=offset, ...)`; `offset`
    stays None when not given.
    """
    mesh = default_mesh() if mesh is None else mesh
    axis = mesh.axis_names[0] if axis is None else axis
    X = np.asarray(validation.check_design(np.asarray(X)))
    dtype = validation.float_dtype_of(X, np.asarray(y) if np.issubdtype(np.asarray(y).dtype,
                                                                         np.floating) else None)
    X = X.astype(dtype)
    n = X.shape[0]
    y = np.asarray(validation.check_vector("y", np.asarray(y), n, dtype))
    w = np.ones(n, dtype) if weights is None else np.asarray(
        validation.check_vector("weights", weights, n, dtype))
    if (w < 0).any():
        raise ValueError("weights: negative values; weights must be >= 0.")
    o = None if offset is None else np.asarray(validation.check_vector("offset", offset, n,
                                                                       dtype))
    if family is not None:
        message = family.support_error(y)
        if message:
            raise ValueError(f"y: {message} (family {family!r}).")
    shards = mesh.shape[axis]
    row_spec = NamedSharding(mesh, PartitionSpec(axis))
    mat_spec = NamedSharding(mesh, PartitionSpec(axis, None))
    if jax.process_count() == 1:
        total = -(-n // shards) * shards
        put = jax.device_put
        Xg = put(_pad(X, total, 0.0), mat_spec)
        yg = put(_pad(y, total, y[0]), row_spec)
        wg = put(_pad(w, total, 0.0), row_spec)
        og = None if o is None else put(_pad(o, total, 0.0), row_spec)
        return Xg, yg, wg, og
    # Several processes: agree on a common local length, then assemble the global arrays.
    from jax.experimental import multihost_utils

    local_shards = shards // jax.process_count()
    if local_shards * jax.process_count() != shards:
        raise ValueError(f"mesh: axis {axis!r} has {shards} devices, not a multiple of the "
                         f"{jax.process_count()} processes.")
    counts = np.asarray(multihost_utils.process_allgather(np.asarray([n]))).reshape(-1)
    local = -(-int(counts.max()) // local_shards) * local_shards
    total = local * jax.process_count()

    def put(a, spec):
        return jax.make_array_from_process_local_data(spec, a, (total,) + a.shape[1:])

    Xg = put(_pad(X, local, 0.0), mat_spec)
    yg = put(_pad(y, local, y[0]), row_spec)
    wg = put(_pad(w, local, 0.0), row_spec)
    og = None if o is None else put(_pad(o, local, 0.0), row_spec)
    return Xg, yg, wg, og


def local_rows(a):
    """This process's rows of a row-sharded global array, as numpy (for checks and output)."""
    return np.concatenate([np.asarray(s.data) for s in sorted(
        a.addressable_shards, key=lambda s: s.index[0].start or 0)])


__all__ = ["shard_rows", "default_mesh", "local_rows"]
