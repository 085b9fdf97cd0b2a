"""Design matrices that keep their structure: dense, sparse, categorical, and blocks of them.

Each type is a pytree (its arrays are leaves, its sizes static), so it passes through
`jit`, `vmap` over coefficients and `grad`, and provides

    X @ b            matvec (b of shape (p,) or (p, K))
    X.rmatvec(v)     X' v (v of shape (n,) or (n, K))
    X.gram(w)        X' diag(w) X, from the structure (never a dense one-hot)
    X.weighted_products(s, r, intercept)   (Z' diag(s) Z, r' Z) with Z = [1, X]
    X.column_means(w), X.column_stds(w)    weighted, without densifying
    X.to_dense()     the (n, p) array (tests, small problems)

A categorical column with L levels is its integer codes c_i in 0..L-1; the one-hot column
of level l is [c_i == l]. Its matvec is a gather b[c_i], its X' v a segment sum over the
codes, its Gram a diagonal of segment sums of w, and its cross products with other blocks
are segment sums too (2-D ones, over code pairs, for two categoricals). With
`drop_first` the column of level 0 is left out (treatment coding against the first level).
Sparse matrices are stored as (data, column index, row index) triplets sorted by row:
matvec and X' v are segment sums (measured faster than BCOO on CPU: docs/designs.md).
"""

import jax
import jax.numpy as jnp
import numpy as np

from linjax._pytree import pytree_dataclass, static_field
from linjax.designs.sparse_kernels import Pieces, device_copy
from linjax.solvers import gram as _gram


def _segment_sum(values, ids, n, sorted_ids=False):
    return jax.ops.segment_sum(values, ids, num_segments=n, indices_are_sorted=sorted_ids)


def _rows_scaled(w, M):
    """w_i M_i for a vector w and M of shape (n,) or (n, k)."""
    return w * M if M.ndim == 1 else w[:, None] * M


#: Functions `reader(X, dtype) -> design or None` that `Dense.astype` tries before copying a
#: numpy array to the device (`linjax.designs.in_place` adds its own when imported, which
#: importing `linjax.designs` does).
IN_PLACE_READERS = []


class AbstractDesign:
    """Common behaviour of the design types (`shape`, `dtype` and the products below)."""

    ndim = 2

    @property
    def size(self):
        return self.shape[0] * self.shape[1]

    def __matmul__(self, b):
        return self.matvec(b)

    def gram(self, w):
        """X' diag(w) X (p, p)."""
        raise NotImplementedError

    def weighted_products(self, s, r=None, intercept=False):
        """(Z' diag(s) Z, r' Z) with Z = [1, X] when `intercept` (intercept first), else X;
        the second is None without r. The intercept's row of the Gram is X' s."""
        hess = self.gram(s)
        grad = None if r is None else self.rmatvec(r)
        if intercept:
            xs = self.rmatvec(s)
            hess = jnp.block([[jnp.sum(s)[None, None], xs[None, :]], [xs[:, None], hess]])
            if r is not None:
                grad = jnp.concatenate([jnp.sum(r)[None], grad])
        return hess, grad

    def squared_rmatvec(self, w):
        """sum_i w_i x_ij^2 for each column j (the Gram's diagonal)."""
        raise NotImplementedError

    def cross_with(self, other, w):
        """self' diag(w) other from this type's own structure, or NotImplemented (then
        `cross` asks `other`, and else uses the rules for the types defined here)."""
        return NotImplemented

    def column_means(self, w=None):
        """sum_i w_i x_ij / sum_i w_i (w = None: equal weights)."""
        w = self._weights(w)
        return self.rmatvec(w) / jnp.sum(w)

    def column_stds(self, w=None):
        """sqrt(sum_i w_i (x_ij - m_j)^2 / sum_i w_i), the weighted population std."""
        w = self._weights(w)
        m = self.column_means(w)
        var = self.squared_rmatvec(w) / jnp.sum(w) - m * m
        return jnp.sqrt(jnp.maximum(var, 0.0))

    def _weights(self, w):
        return jnp.ones(self.shape[0], self.dtype) if w is None else jnp.asarray(w, self.dtype)


@pytree_dataclass
class Dense(AbstractDesign):
    """A dense (n, p) array as a design (its products are the array's own)."""

    X: jax.Array

    @property
    def shape(self):
        return tuple(self.X.shape)

    @property
    def dtype(self):
        return self.X.dtype

    def matvec(self, b):
        return self.X @ b

    def rmatvec(self, v):
        return v @ self.X if v.ndim == 1 else self.X.T @ v

    def gram(self, w):
        return _gram.weighted_gram(self.X, w)

    def weighted_products(self, s, r=None, intercept=False):
        return _gram.weighted_products(self.X, s, r, intercept)

    def squared_rmatvec(self, w):
        return w @ (self.X * self.X)

    def column_stds(self, w=None):
        w = self._weights(w)
        centred = self.X - self.column_means(w)
        return jnp.sqrt(w @ (centred * centred) / jnp.sum(w))

    def to_dense(self):
        return self.X

    def astype(self, dtype):
        """Dense of X in `dtype`, on the device: a numpy array of that dtype moves there with
        `jax.device_put`, one copy (`jnp.asarray` briefly held two), none when it is 64-byte
        aligned (JAX then uses it in place); already there and of that dtype: X itself. A
        large misaligned (or F-ordered) numpy array of that dtype on CPU becomes an
        `InPlaceDense` reading its memory in place (`linjax.designs.in_place`, which
        registers itself in `IN_PLACE_READERS`)."""
        X = self.X
        for reader in IN_PLACE_READERS:  # a large misaligned array: read in place, no copy
            read = reader(X, dtype)
            if read is not None:
                return read
        if X.dtype != jnp.dtype(dtype):
            X = X.astype(dtype)
        return Dense(jax.device_put(X) if isinstance(X, np.ndarray) else X)


@pytree_dataclass
class Sparse(AbstractDesign):
    """A sparse (n, p) matrix: entry data[k] at row rows[k], column cols[k], rows sorted.

    Build it with `Sparse.from_scipy` (CSR, CSC, COO) or `Sparse.from_bcoo`.
    """

    data: jax.Array
    cols: jax.Array
    rows: jax.Array
    shape: tuple = static_field()
    max_row_nnz: int = static_field(default=None)  # entries in the fullest row (the Gram's)
    # X b and X' v without scatter (`sparse_kernels`): the rows, and the columns, as pieces
    row_pieces: object = None
    col_pieces: object = None

    @classmethod
    def from_scipy(cls, A, dtype=None):
        """From any scipy.sparse matrix or array (converted to CSR, duplicates summed)."""
        A = A.tocsr()
        A.sum_duplicates()
        A.sort_indices()
        n, p = A.shape
        data = np.asarray(A.data, dtype=dtype if dtype is not None else _float_of(A.dtype))
        counts = np.diff(A.indptr)
        rows = np.repeat(np.arange(n, dtype=np.int32), counts)
        by_col = A.tocsc()   # scipy's CSC conversion keeps each column's rows sorted
        return cls(device_copy(data), device_copy(A.indices, np.int32), device_copy(rows),
                   (int(n), int(p)), int(counts.max(initial=0)),
                   Pieces.from_compressed(A.indptr, A.indices, data, n),
                   Pieces.from_compressed(by_col.indptr, by_col.indices,
                                          by_col.data.astype(data.dtype, copy=False), p))

    @classmethod
    def from_bcoo(cls, M):
        """From a 2-D `jax.experimental.sparse.BCOO` (entries sorted by row here)."""
        rows, cols = np.asarray(M.indices[:, 0]), np.asarray(M.indices[:, 1])
        data = np.asarray(M.data)
        order = np.lexsort((cols, rows))
        shape = tuple(int(s) for s in M.shape)
        top = int(np.bincount(rows, minlength=shape[0]).max(initial=0))
        by_col = np.lexsort((rows, cols))
        return cls(device_copy(data[order]), device_copy(cols[order], np.int32),
                   device_copy(rows[order], np.int32), shape, top,
                   Pieces.from_triplets(rows[order], cols[order], data[order], shape[0]),
                   Pieces.from_triplets(cols[by_col], rows[by_col], data[by_col], shape[1]))

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def nnz(self):
        return self.data.shape[0]

    def matvec(self, b):
        if self.row_pieces is not None:
            return self.row_pieces.product(b)
        terms = _rows_scaled(self.data, b[self.cols])
        return _segment_sum(terms, self.rows, self.shape[0], sorted_ids=True)

    def rmatvec(self, v):
        if self.col_pieces is not None:
            return self.col_pieces.product(v)
        return _segment_sum(_rows_scaled(self.data, v[self.rows]), self.cols, self.shape[1])

    def squared_rmatvec(self, w):
        if self.col_pieces is not None:
            return self.col_pieces.product(w, squared=True)
        return _segment_sum(self.data * self.data * w[self.rows], self.cols, self.shape[1])

    def _padded_rows(self):
        """(cols, data) as (n, m) arrays, row i's entries first and zeros after (m the
        fullest row's count): the ELL layout, O(nnz + n m)."""
        n, m = self.shape[0], max(int(self.max_row_nnz or 0), 1)
        counts = _segment_sum(jnp.ones_like(self.rows), self.rows, n, sorted_ids=True)
        starts = jnp.cumsum(counts) - counts
        pos = jnp.arange(self.nnz, dtype=self.rows.dtype) - starts[self.rows]
        cols = jnp.zeros((n, m), self.cols.dtype).at[self.rows, pos].set(self.cols)
        data = jnp.zeros((n, m), self.dtype).at[self.rows, pos].set(self.data)
        return cols, data

    def gram(self, w):
        """X' diag(w) X as a segment sum over each row's pairs of entries (n m^2 terms, m
        the fullest row's count; by row blocks so memory stays O(p^2 + block m^2))."""
        if self.max_row_nnz is None:
            return self.rmatvec(_rows_scaled(w, self.to_dense()))
        p = self.shape[1]
        cols, data = self._padded_rows()
        m = cols.shape[1]

        def block(c, d, wb):
            ids = (c[:, :, None] * p + c[:, None, :]).reshape(-1)
            vals = ((wb[:, None] * d)[:, :, None] * d[:, None, :]).reshape(-1)
            return _segment_sum(vals, ids, p * p)

        rows = max(1, (1 << 18) // (m * m))
        if cols.shape[0] <= rows:
            return block(cols, data, w).reshape(p, p)
        total = _gram.sum_row_blocks(block, (cols, data, w), rows, jnp.zeros(p * p, self.dtype))
        return total.reshape(p, p)

    def to_dense(self):
        out = jnp.zeros(self.shape, self.dtype)
        return out.at[self.rows, self.cols].add(self.data)

    def astype(self, dtype):
        pieces = [None if P is None else P.astype(dtype)
                  for P in (self.row_pieces, self.col_pieces)]
        return Sparse(self.data.astype(dtype), self.cols, self.rows, self.shape,
                      self.max_row_nnz, *pieces)


@pytree_dataclass
class Categorical(AbstractDesign):
    """A factor with `n_levels` levels as its integer codes (n,) in 0..n_levels-1.

    Columns: one indicator per level, or per level but the first with `drop_first`
    (treatment coding: level 0 is the reference). The indicators are never formed.
    """

    codes: jax.Array
    n_levels: int = static_field()
    drop_first: bool = static_field(default=False)
    dtype_name: str = static_field(default="")

    @classmethod
    def from_codes(cls, codes, n_levels=None, drop_first=False, dtype=None):
        """Checked construction: integer codes in 0..n_levels-1 (n_levels: max + 1)."""
        arr = np.asarray(codes)
        if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
            raise ValueError(f"codes: expected a 1-D array of integers, got shape "
                             f"{arr.shape} and dtype {arr.dtype}.")
        top = int(arr.max()) + 1 if arr.size else 0
        n_levels = top if n_levels is None else int(n_levels)
        if arr.size and (arr.min() < 0 or top > n_levels):
            raise ValueError(f"codes: must lie in 0..{n_levels - 1} (n_levels={n_levels}), got "
                             f"values from {int(arr.min())} to {top - 1}.")
        if n_levels - bool(drop_first) < 1:
            raise ValueError(f"n_levels: {n_levels} level(s) leave no column"
                             f"{' after drop_first' if drop_first else ''}.")
        dtype = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
        return cls(jax.device_put(np.asarray(arr, np.int32)), n_levels, bool(drop_first),
                   dtype.name)

    @property
    def shape(self):
        return (self.codes.shape[0], self.n_levels - int(self.drop_first))

    @property
    def dtype(self):
        return jnp.dtype(self.dtype_name or jnp.zeros(()).dtype)

    def _full(self, b):
        """b with the reference level's zero coefficient prepended (drop_first)."""
        if not self.drop_first:
            return b
        return jnp.concatenate([jnp.zeros((1,) + b.shape[1:], b.dtype), b])

    def matvec(self, b):
        return self._full(b)[self.codes]

    def level_sums(self, v):
        """sum_{i: c_i = l} v_i for every level l (n_levels,) or (n_levels, K)."""
        return _segment_sum(v, self.codes, self.n_levels)

    def rmatvec(self, v):
        return self.level_sums(v)[int(self.drop_first):]

    def squared_rmatvec(self, w):
        return self.rmatvec(w)

    def gram(self, w):
        return jnp.diag(self.rmatvec(w))

    def to_dense(self):
        levels = jnp.arange(int(self.drop_first), self.n_levels)
        return (self.codes[:, None] == levels).astype(self.dtype)

    def astype(self, dtype):
        return Categorical(self.codes, self.n_levels, self.drop_first, jnp.dtype(dtype).name)


@pytree_dataclass
class Split(AbstractDesign):
    """Blocks side by side: [B_1, ..., B_m], each a design with the same rows.

    Its Gram is assembled block by block: each block's own Gram on the diagonal and
    `cross` products (segment sums where a categorical is involved) off it.
    """

    blocks: tuple

    def __post_init__(self):
        flat = []
        for block in self.blocks:
            flat.extend(block.blocks if isinstance(block, Split) else [block])
        object.__setattr__(self, "blocks", tuple(flat))

    @property
    def shape(self):
        return (self.blocks[0].shape[0], sum(b.shape[1] for b in self.blocks))

    @property
    def dtype(self):
        return jnp.result_type(*[b.dtype for b in self.blocks])

    @property
    def offsets(self):
        """The first column of each block, and the total width last."""
        return tuple(np.cumsum([0] + [b.shape[1] for b in self.blocks]).tolist())

    def matvec(self, b):
        edges = self.offsets
        parts = [blk.matvec(b[lo:hi]).astype(self.dtype)
                 for blk, lo, hi in zip(self.blocks, edges[:-1], edges[1:], strict=True)]
        return sum(parts[1:], parts[0])

    def rmatvec(self, v):
        return jnp.concatenate([blk.rmatvec(v).astype(self.dtype) for blk in self.blocks])

    def squared_rmatvec(self, w):
        return jnp.concatenate([blk.squared_rmatvec(w) for blk in self.blocks])

    def gram(self, w):
        m = len(self.blocks)
        grid = [[None] * m for _ in range(m)]
        for i, a in enumerate(self.blocks):
            grid[i][i] = a.gram(w).astype(self.dtype)
            for j in range(i + 1, m):
                grid[i][j] = cross(a, self.blocks[j], w).astype(self.dtype)
                grid[j][i] = grid[i][j].T
        return jnp.block(grid)

    def to_dense(self):
        return jnp.concatenate([b.to_dense().astype(self.dtype) for b in self.blocks], axis=1)

    def astype(self, dtype):
        return Split(tuple(b.astype(dtype) for b in self.blocks))


def cross(a, b, w):
    """A' diag(w) B for two designs with the same rows (pa, pb), from their structure."""
    out = a.cross_with(b, w)
    if out is not NotImplemented:
        return out
    out = b.cross_with(a, w)
    if out is not NotImplemented:
        return out.T
    if isinstance(a, Categorical) and isinstance(b, Dense):
        return _categorical_dense(a, b.X, w)
    if isinstance(a, Dense) and isinstance(b, Categorical):
        return _categorical_dense(b, a.X, w).T
    if isinstance(b, Dense):
        return a.rmatvec(_rows_scaled(w, b.X))
    if isinstance(a, Dense):
        return b.rmatvec(_rows_scaled(w, a.X)).T
    if isinstance(a, Categorical) and isinstance(b, Categorical):
        pair = a.codes * b.n_levels + b.codes
        sums = _segment_sum(w, pair, a.n_levels * b.n_levels).reshape(a.n_levels, b.n_levels)
        return sums[int(a.drop_first):, int(b.drop_first):]
    if isinstance(a, Sparse) and isinstance(b, Categorical):
        return _sparse_categorical(a, b, w)
    if isinstance(a, Categorical) and isinstance(b, Sparse):
        return _sparse_categorical(b, a, w).T
    return a.rmatvec(_rows_scaled(w, b.to_dense()))


def _categorical_dense(cat, X, w):
    """G' diag(w) X for a categorical G and an (n, k) array X: the sums of w_i x_i over each
    level's rows. On CPU, by row blocks added into one (L, k) total in place, so the (n, k)
    product w * X is never formed (10^7 x 20 float64: 1.6 GB)."""
    n, k = X.shape
    rows = _gram.block_rows(k)
    skip = int(cat.drop_first)
    if n < 2 * rows:
        return cat.level_sums(_rows_scaled(w, X))[skip:]

    def add(total, c, x, wb):
        return total.at[c].add(wb[:, None] * x, indices_are_sorted=False)

    def by_blocks(codes, X, w):
        def body(i, total):
            part = [jax.lax.dynamic_slice_in_dim(a, i * rows, rows, 0) for a in (codes, X, w)]
            return add(total, *part)

        total = jax.lax.fori_loop(0, n // rows, body, jnp.zeros((cat.n_levels, k), X.dtype))
        tail = (n // rows) * rows
        return add(total, codes[tail:], X[tail:], w[tail:]) if tail < n else total

    def at_once(codes, X, w):
        return cat.level_sums(_rows_scaled(w, X))

    sums = jax.lax.platform_dependent(cat.codes, X, w, cpu=by_blocks, default=at_once)
    return sums[skip:]


def _sparse_categorical(a, b, w):
    """A' diag(w) B for sparse A and categorical B: entry (j, l) sums w_i a_ij over the rows
    of level l, one segment sum over A's entries."""
    ids = a.cols * b.n_levels + b.codes[a.rows]
    sums = _segment_sum(w[a.rows] * a.data, ids, a.shape[1] * b.n_levels)
    return sums.reshape(a.shape[1], b.n_levels)[:, int(b.drop_first):]


def _float_of(dtype):
    """A float dtype for data stored as `dtype` (integers and bools become the default)."""
    if np.issubdtype(dtype, np.floating) and np.dtype(dtype).itemsize >= 4:
        return jax.dtypes.canonicalize_dtype(dtype)
    return jnp.zeros(()).dtype


def is_design(X):
    """True for a linjax design object (not a plain array)."""
    return isinstance(X, AbstractDesign)


def weighted_products(X, s, r=None, intercept=False, single=False):
    """`gram.weighted_products` for arrays (their code path unchanged), the design's own
    structured products for a design (`single` applies to arrays only)."""
    if isinstance(X, AbstractDesign):
        return X.weighted_products(s, r, intercept)
    return _gram.weighted_products(X, s, r, intercept, single)
