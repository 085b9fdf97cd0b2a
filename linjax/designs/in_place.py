"""A dense block read in place from numpy memory that JAX's CPU backend will not take whole.

`jax.device_put` uses a numpy array's memory in place on CPU only when its data start on a
64-byte boundary (`linjax.designs.host`); numpy's own large arrays start 16 bytes past
one, so a user's (n, p) float64 array, or a DataFrame's float columns, would be copied
whole (10^7 x 20: 1.6 GB more). `InPlaceDense` instead views the memory from its first
64-byte boundary on, which `device_put` takes in place, keeps the few rows before it as a
small copy (`head`), and forms every product by row blocks of that view:

    rows i >= h of a row-major (n, p) array:  X[i, j] = part[i p + j - skip]
    rows i >= h of column arrays:             X[i, j] = part_j[i - skip_j]

(skip: the elements before the boundary; h the rows holding any of them). Each block
(`rows_per_block` rows, about 2 MiB) is a dynamic slice of the view, so a product reads X
once and never holds a copy of it: X b, X' v, Z' diag(s) Z with r' Z in the same pass
(Z = [1, X]), sum_i w_i x_ij^2, centred column spreads, and the cross products with a
factor (segment sums over each block's codes) or another dense block.

`Dense.astype` makes one of a numpy array of the fit's dtype that is not 64-byte aligned
(or is F-ordered) and holds at least `MIN_BYTES` (CPU only; elsewhere the data move to the
device anyway), as `frames.FrameEncoding.transform` does for a frame's float columns. The
memory is the caller's: changing the array changes the design.
"""

import jax
import jax.numpy as jnp
import numpy as np

from linjax._pytree import pytree_dataclass, static_field
from linjax.designs import types as _types
from linjax.designs.types import AbstractDesign, Categorical, Dense
from linjax.solvers import gram as _gram

#: Bytes from which a misaligned numpy block is read in place rather than copied (below
#: it one copy is cheap, and the whole-array products of `Dense` are a little faster).
MIN_BYTES = 1 << 27
#: Rows per block when set (tests force several small blocks); None: 2^18 elements a block.
ROWS_PER_BLOCK = None
#: The alignment `jax.device_put` needs to use host memory in place on CPU.
ALIGNMENT = 64


def on_cpu():
    return jax.default_backend() == "cpu"


def _skip(a):
    """Elements of the 1-D contiguous `a` before its first 64-byte boundary (None: its data
    are not even aligned to their item size)."""
    address = a.ctypes.data
    if address % a.itemsize:
        return None
    return ((-address) % ALIGNMENT) // a.itemsize


def wanted(a, dtype):
    """True when the numpy array `a` should be read in place as a design of `dtype`: on
    CPU, of that dtype, 2-D and C-contiguous, at least `MIN_BYTES`, not 64-byte aligned."""
    return (isinstance(a, np.ndarray) and a.ndim == 2 and a.dtype == np.dtype(dtype)
            and a.flags.c_contiguous and a.nbytes >= MIN_BYTES and a.shape[1] > 0
            and a.ctypes.data % ALIGNMENT != 0 and _skip(a.reshape(-1)) is not None
            and on_cpu())


def of_array(a, dtype):
    """An `InPlaceDense` reading the numpy array `a` in place where it should be (`wanted`;
    or F-ordered, at least `MIN_BYTES` and of `dtype`, whose columns `device_put` would
    otherwise transpose into a copy), else None."""
    if wanted(a, dtype):
        return InPlaceDense.from_array(a)
    if (isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[1] > 1
            and a.flags.f_contiguous and not a.flags.c_contiguous):
        columns = [a[:, j] for j in range(a.shape[1])]
        if columns_wanted(columns, dtype):
            return InPlaceDense.from_columns(columns)
    return None


def columns_wanted(columns, dtype):
    """True when 1-D numpy columns (a frame's floats) should be read in place together."""
    cols = list(columns)
    return (bool(cols) and all(isinstance(c, np.ndarray) and c.ndim == 1
                               and c.dtype == np.dtype(dtype) and c.flags.c_contiguous
                               and _skip(c) is not None and c.shape == cols[0].shape
                               for c in cols)
            and sum(c.nbytes for c in cols) >= MIN_BYTES and on_cpu())


def _in_place(a):
    """`a` (1-D, contiguous, 64-byte aligned) as a JAX array using its memory."""
    return jax.device_put(a)


@pytree_dataclass
class InPlaceDense(AbstractDesign):
    """A dense (n, p) block viewed in place (module docstring). Build it with
    `from_array` or `from_columns`; it has `Dense`'s products."""

    head: jax.Array      # (h, p): the rows before every part's aligned view starts
    parts: tuple         # one 1-D view (row-major) or one per column
    shape: tuple = static_field()
    skips: tuple = static_field()
    by_rows: bool = static_field()
    rows_per_block: int = static_field()

    @classmethod
    def from_array(cls, a, rows_per_block=None):
        """A C-contiguous (n, p) numpy array, its memory used in place."""
        a = np.asarray(a)
        if a.ndim != 2 or not a.flags.c_contiguous:
            raise ValueError(f"X: expected a C-contiguous 2-D array, got shape {a.shape}.")
        n, p = a.shape
        flat = a.reshape(-1)
        skip = _skip(flat)
        if skip is None:
            raise ValueError("X: the array's data are not aligned to its item size; pass "
                             "np.ascontiguousarray(X) or a copy.")
        h = min(n, -(-skip // p))
        view = flat[skip:] if h < n else flat[:0]
        return cls(jax.device_put(np.ascontiguousarray(a[:h])), (_in_place(view),), (n, p),
                   (skip,), True, _block_rows(p, rows_per_block))

    @classmethod
    def from_columns(cls, columns, rows_per_block=None):
        """1-D numpy columns of equal length and dtype (a frame's), used in place."""
        columns = [np.asarray(c) for c in columns]
        n, p = columns[0].shape[0], len(columns)
        skips = tuple(_skip(c) for c in columns)
        if any(s is None for s in skips) or any(c.shape != (n,) for c in columns):
            raise ValueError("X: columns must be 1-D, of one length, aligned to their "
                             "item size.")
        h = min(n, max(skips))
        head = np.stack([c[:h] for c in columns], axis=1)
        parts = tuple(_in_place(c[s:] if h < n else c[:0])
                      for c, s in zip(columns, skips, strict=True))
        return cls(jax.device_put(head), parts, (n, p), skips, False,
                   _block_rows(p, rows_per_block))

    # -- layout -------------------------------------------------------------------------

    @property
    def dtype(self):
        return self.head.dtype

    @property
    def n_head(self):
        return self.head.shape[0]

    def rows(self, start, count):
        """X[start:start + count] (count static, start >= `n_head`, possibly traced)."""
        p = self.shape[1]
        if self.size >= 2**31 and not isinstance(start, int):  # element offsets past int32
            start = jnp.asarray(start).astype(jnp.int64)
        if self.by_rows:
            flat = jax.lax.dynamic_slice_in_dim(self.parts[0], start * p - self.skips[0],
                                                count * p)
            return flat.reshape(count, p)
        return jnp.stack([jax.lax.dynamic_slice_in_dim(part, start - skip, count)
                          for part, skip in zip(self.parts, self.skips, strict=True)], axis=1)

    def fold(self, step, arrays, init):
        """step(total, start, X[rows], *[a[rows] for a in arrays]) over the head and row
        blocks of X (a `fori_loop`), from `init`; `arrays` (n, ...) arrays or dense designs
        (`row_slice`) with X's rows."""
        n, h, r = self.shape[0], self.n_head, self.rows_per_block
        total = init
        if h:
            total = step(total, 0, self.head, *[row_slice(a, 0, h) for a in arrays])
        blocks = (n - h) // r

        def body(i, total):
            start = h + i * r
            return step(total, start, self.rows(start, r),
                        *[row_slice(a, start, r) for a in arrays])

        if blocks == 1:
            total = body(0, total)
        elif blocks:
            total = jax.lax.fori_loop(0, blocks, body, total)
        tail = h + blocks * r
        if tail < n:
            total = step(total, tail, self.rows(tail, n - tail),
                         *[row_slice(a, tail, n - tail) for a in arrays])
        return total

    # -- products -----------------------------------------------------------------------

    def matvec(self, b):
        b = jnp.asarray(b)
        dtype = jnp.result_type(self.dtype, b.dtype)

        def step(out, start, x):
            return jax.lax.dynamic_update_slice_in_dim(out, (x @ b).astype(dtype), start, 0)

        return self.fold(step, (), jnp.zeros((self.shape[0],) + b.shape[1:], dtype))

    def rmatvec(self, v):
        v = jnp.asarray(v)
        zero = jnp.zeros((self.shape[1],) + v.shape[1:], jnp.result_type(self.dtype, v.dtype))
        return self.fold(lambda t, _, x, vb: t + x.T @ vb, (v,), zero)

    def squared_rmatvec(self, w):
        w = jnp.asarray(w, self.dtype)
        return self.fold(lambda t, _, x, wb: t + wb @ (x * x), (w,),
                         jnp.zeros(self.shape[1], self.dtype))

    def gram(self, w):
        return self.weighted_products(w)[0]

    def weighted_products(self, s, r=None, intercept=False):
        """(Z' diag(s) Z, r' Z), Z = [1, X] with an intercept (first), by row blocks; r' Z
        comes from the same block product, Z' [s z, r]."""
        k = self.shape[1] + int(intercept)
        s = jnp.asarray(s, self.dtype)
        with_r = r is not None

        def step(total, _, x, sb, *rb):
            z = _gram._augmented(x, intercept, self.dtype)
            right = sb[:, None] * z
            if with_r:
                right = jnp.concatenate([right, rb[0][:, None]], axis=1)
            return total + z.T @ right

        arrays = (s, jnp.asarray(r, self.dtype)) if with_r else (s,)
        total = self.fold(step, arrays, jnp.zeros((k, k + int(with_r)), self.dtype))
        hess = total[:, :k]
        hess = 0.5 * (hess + hess.T)
        return hess, (total[:, k] if with_r else None)

    def column_means(self, w=None):
        w = self._weights(w)
        return self.rmatvec(w) / jnp.sum(w)

    def column_stds(self, w=None):
        w = self._weights(w)
        m = self.column_means(w)
        spread = self.fold(lambda t, _, x, wb: t + wb @ ((x - m) ** 2), (w,),
                           jnp.zeros(self.shape[1], self.dtype))
        return jnp.sqrt(spread / jnp.sum(w))

    def to_dense(self):
        """The (n, p) array (a copy: tests, small problems)."""
        n, h = self.shape[0], self.n_head
        return jnp.concatenate([self.head, self.rows(h, n - h)], axis=0) if h < n else self.head

    def astype(self, dtype):
        """Itself in its own dtype; otherwise a `Dense` copy in `dtype`."""
        if jnp.dtype(dtype) == self.dtype:
            return self
        return Dense(self.to_dense().astype(dtype))

    def cross_with(self, other, w):
        """self' diag(w) other for a categorical or dense `other` by row blocks (`cross`)."""
        if isinstance(other, Categorical):
            return factor_cross(other, self, w).T
        if isinstance(other, Dense | InPlaceDense):
            return dense_cross(self, other, w)
        return NotImplemented


def _block_rows(p, rows_per_block):
    rows_per_block = rows_per_block or ROWS_PER_BLOCK
    return max(1, int(rows_per_block)) if rows_per_block else _gram.block_rows(p)


def row_slice(a, start, count):
    """Rows start..start + count - 1 of an array, `Dense` or `InPlaceDense` (start traced
    or static, count static)."""
    if isinstance(a, InPlaceDense):
        if isinstance(start, int) and start < a.n_head:
            if start + count <= a.n_head:
                return a.head[start:start + count]
            return jnp.concatenate([a.head[start:], a.rows(a.n_head, start + count - a.n_head)])
        return a.rows(start, count)
    a = getattr(a, "X", a)  # Dense
    if isinstance(start, int):
        return a[start:start + count]
    return jax.lax.dynamic_slice_in_dim(a, start, count, 0)


def factor_cross(cat, X, w):
    """G' diag(w) X for a categorical G and an `InPlaceDense` X: each block's w_i x_i added
    into its level's row of an (L, p) total (no n x p temporary)."""
    zero = jnp.zeros((cat.n_levels, X.shape[1]), X.dtype)
    sums = X.fold(lambda t, _, x, c, wb: t.at[c].add(wb[:, None] * x), (cat.codes, w), zero)
    return sums[int(cat.drop_first):]


def dense_cross(a, b, w):
    """A' diag(w) B for an `InPlaceDense` A and a dense B (array rows: `row_slice`)."""
    zero = jnp.zeros((a.shape[1], b.shape[1]), jnp.result_type(a.dtype, b.dtype))
    return a.fold(lambda t, _, x, bb, wb: t + x.T @ (wb[:, None] * bb), (b, w), zero)


def check_finite(name, X, rows=1 << 16):
    """A ValueError when X (an `InPlaceDense`) holds a NaN or inf: checked on the host by
    row blocks of its memory (no device copy)."""
    parts = [np.asarray(p) for p in X.parts]
    bad = not np.isfinite(np.asarray(X.head)).all()
    for part in parts:
        for lo in range(0, part.shape[0], rows * max(1, X.shape[1])):
            if bad:
                break
            bad = not np.isfinite(part[lo:lo + rows * max(1, X.shape[1])]).all()
    if bad:
        raise ValueError(f"{name}: non-finite value(s) (NaN or inf) in its dense block; "
                         "remove or impute them before fitting.")


_types.IN_PLACE_READERS.append(of_array)  # Dense.astype reads large misaligned arrays in place
