"""Sparse products without scatter: each row's entries cut into pieces of fixed width.

A compressed matrix (CSR for X b, its CSC copy for X' v) is stored as P pieces of `width`
entries: piece k holds up to `width` entries of one output row (`target[k]`), its
column indices in `index[k]` and its values in `values[k]` (padding: index 0, value 0).
The product is then

    s_k = sum_j values[k, j] vec[index[k, j]]       (a gather and a row sum)
    out_r = sum_{k: target[k] = r} s_k              (a sorted segment sum over P pieces)

so the work over the nnz entries is a gather, a multiply and a small dot with ones,
and only the P piece sums (P ~ nnz / width) go through a scatter. The pieces are
processed `block` at a time under `lax.map`, so no intermediate of nnz size is formed.

Why: on XLA:CPU a gather or scatter over all nnz entries materializes an nnz-long array
(page faults on a fresh buffer each call) and a scatter-add is an element-by-element
loop; at n = p = 100,000 and 0.1% density (10 million entries) the segment-sum products
took 80 ms (X b) and 60 ms (X' v) of CPU against 21 ms for the pieces (docs/designs.md).
"""

import jax
import jax.numpy as jnp
import numpy as np

from linjax._pytree import pytree_dataclass, static_field

#: Candidate piece widths; `choose_width` takes the cheapest for the row lengths.
WIDTHS = (8, 16, 32, 64, 128)
#: The cost of one piece (its row sum, its entry in the segment sum) in units of one
#: entry's gather-multiply-add (fitted to timings of widths 16 to 128 at 10^7 entries).
PIECE_COST = 4
#: Entries per block of pieces under `lax.map` (values and indices ~1.5 MB: cache-sized).
BLOCK_ENTRIES = 1 << 17


def choose_width(counts):
    """The width w minimising the work sum_r ceil(c_r / w) (w + PIECE_COST) for row
    lengths `counts` (padding to whole pieces against per-piece overhead)."""
    counts = np.asarray(counts, np.int64)

    def cost(w):
        return int(np.sum(-(-counts // w))) * (w + PIECE_COST)

    return min(WIDTHS, key=cost)


def _aligned_zeros(shape, dtype):
    """Zeros whose data start on a 64-byte boundary, which `jax.device_put` then uses in
    place on CPU instead of copying (as `linjax.designs.host.aligned_empty`)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(nbytes + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def device_copy(a, dtype=None):
    """A JAX array holding a copy of `a` (in `dtype`), written into aligned numpy memory that
    `jax.device_put` takes in place on CPU. (`jnp.asarray` of an unaligned array copies it
    twice into XLA's buffers, whose fresh pages fault 4 KB at a time: 39,000 page faults for
    80 MB against about 100 for numpy's, which asks for huge pages.)"""
    a = np.asarray(a)
    out = _aligned_zeros(a.shape, a.dtype if dtype is None else dtype)
    out[...] = a
    return jax.device_put(out)


@pytree_dataclass
class Pieces:
    """One compressed matrix as pieces (see the module docstring): `index` and `values`
    of shape (blocks, block, width), `target` (blocks * block,) sorted; `n_out` rows."""

    index: jax.Array
    values: jax.Array
    target: jax.Array
    n_out: int = static_field()

    @classmethod
    def from_compressed(cls, indptr, indices, data, n_out, dtype=None):
        """From CSR arrays (indptr (n_out + 1,), indices, data; row r's entries
        indptr[r]:indptr[r + 1]); None when there are no entries."""
        indptr = np.asarray(indptr, np.int64)
        counts = np.diff(indptr)
        nnz = int(indptr[-1])
        if nnz == 0 or n_out == 0:
            return None
        width = choose_width(counts)
        per_row = -(-counts // width)
        n_pieces = int(per_row.sum())
        block = max(1, min(BLOCK_ENTRIES // width, n_pieces))
        n_blocks = -(-n_pieces // block)
        total = n_blocks * block
        # Piece k of row r holds that row's entries (k - first[r]) w ...: a boolean mask of the
        # (pieces, w) grid marks the filled slots in order, so the entries go in by one
        # sequential masked copy (no nnz-sized slot array, no scatter).
        first = np.cumsum(per_row) - per_row
        target = np.full(total, n_out - 1, np.int32)   # padding adds 0 to the last row
        target[:n_pieces] = np.repeat(np.arange(n_out, dtype=np.int32), per_row)
        owner = target[:n_pieces]
        filled = np.minimum(counts[owner] - (np.arange(n_pieces) - first[owner]) * width, width)
        mask = np.arange(width) < filled[:, None]
        index = _aligned_zeros((total, width), np.int32)
        values = _aligned_zeros((total, width), np.asarray(data).dtype if dtype is None else dtype)
        index[:n_pieces][mask] = indices
        values[:n_pieces][mask] = data
        shape = (n_blocks, block, width)
        # device_put uses an aligned numpy buffer in place on CPU (jnp.asarray copies it)
        return cls(jax.device_put(index.reshape(shape)), jax.device_put(values.reshape(shape)),
                   device_copy(target), int(n_out))

    @classmethod
    def from_triplets(cls, out_ids, in_ids, data, n_out):
        """From entries sorted by `out_ids` (the output row of each), as `from_compressed`."""
        counts = np.bincount(np.asarray(out_ids, np.int64), minlength=n_out)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return cls.from_compressed(indptr, in_ids, data, n_out)

    def astype(self, dtype):
        return Pieces(self.index, self.values.astype(dtype), self.target, self.n_out)

    def product(self, vec, squared=False):
        """sum over each row's entries of value * vec[index] (vec (n_in,) or (n_in, K));
        squared: value^2 instead of value."""

        def piece_sums(blk):
            index, values = blk
            if squared:
                values = values * values
            gathered = vec[index]
            if vec.ndim == 1:
                terms = values * gathered
                return terms @ jnp.ones(terms.shape[-1], terms.dtype)
            return jnp.einsum("bw,bwk->bk", values, gathered)

        if self.index.shape[0] == 1:
            sums = piece_sums((self.index[0], self.values[0]))
        else:
            sums = jax.lax.map(piece_sums, (self.index, self.values))
            sums = sums.reshape((-1,) + sums.shape[2:])
        return jax.ops.segment_sum(sums, self.target, num_segments=self.n_out,
                                   indices_are_sorted=True)
