"""Every weighted Gram of linjax: Z' diag(s) Z (Z = [1, X] with an intercept) and its
relatives, formed by one row-block engine.

    weighted_products(X, s, r, intercept, single)        (Z' diag(s) Z, r' Z): Newton's system
    weighted_gram(X, s, intercept, single)                the Gram alone
    pair_grams(X, C, intercept, single)                   Z' diag(C[:, j]) Z for every column j
    triangle_zeros / triangle_add / triangle_finish       a symmetric Gram from the upper block
                                                          triangle (`paths.centred_moments`,
                                                          `selection`'s fold moments)
    column_pairs(Xa)                                      the packed pair products of a small
                                                          shared X: S @ pairs holds m Grams
                                                          (`fit_batch`)
    augmented(X, intercept)                               [1, X]

The kernel is a static choice made here from shapes, dtype and platform, so every caller
keeps its fast path:

- row blocks (`sum_row_blocks`, a `fori_loop` of dynamic slices) on CPU once n spans two
  blocks: XLA:CPU would otherwise write the scaled copy s * X (n x p) to memory before the
  GEMM reads it back, which doubles the time (n=200k, p=101: 0.129 s one product, 0.068 s
  by blocks). One product elsewhere (GPU) and for short X.
- the upper block triangle of column blocks (`triangle_add`, about p (p + C) / 2 products per
  row instead of p^2; XLA:CPU has no syrk) where X has two column blocks or more
  (`gram_width`: float64 products from about 96 columns, float32 from 384); the whole
  product below.
- `single=True`: each block's products in float32, accumulated in X's dtype: twice as fast
  again (0.035 s), with a relative error near 1e-7 per entry. Enough for a Newton direction
  when the gradient stays in float64 (the iteration then converges linearly at a rate of
  about cond(H) * 1e-7), not for standard errors. Each block is cast as it is read: a
  float32 copy of X made once per fit (n=200k, p=100) made each Gram about 10% cheaper but
  the whole warm logistic fit (4-5 Gram passes) 7% slower in CPU (the cast and a fresh
  n p 4-byte buffer per fit), so it was not kept.
- the intercept: a column of ones joins each block in cache, as it is cast (measured at
  n=200k, p=100, float32: 8% faster than its row and column from s' X and sum(s), which
  cost one more reduction over the block).
- packed pairs (`column_pairs`, for fit_batch's small shared X): the n x k(k+1)/2 products
  x_i x_j formed once, then every problem's Gram is one row of S @ pairs.
"""

import jax
import jax.numpy as jnp
import numpy as np

from linjax.solvers.linalg import pair_indices

#: Elements of X per row block of `weighted_products` (2^18 float64 = 2 MiB, about one
#: core's share of cache).
BLOCK_ELEMENTS = 1 << 18
#: n * k^2 (multiply-adds of one Hessian) from which `prefers_single` says float32 pays.
SINGLE_MIN_WORK = 1e8
#: Elements per row block of the moment passes (`triangle_rows`: 2^19 float64 = 4 MiB;
#: measured at p=1000: 512-row blocks a little faster than 1024 or 2048).
TRIANGLE_BLOCK_ELEMENTS = 1 << 19
#: Target width of the column blocks whose upper-triangular products form a Gram matrix.
COLUMN_BLOCK = 256
#: The same for `weighted_products`' float64 products (measured on CPU, by row blocks: at
#: p = 100 two blocks of 50 take 0.7x the whole product's time, at p = 200 three 0.55x, at
#: p = 500 0.25x; at p <= 50 the whole product is faster). Its float32 products keep
#: COLUMN_BLOCK: below 384 columns the whole float32 product is as fast.
COLUMN_BLOCK_F64 = 64


def block_rows(p):
    """Rows per block for p columns: BLOCK_ELEMENTS / p, at least 256."""
    return max(256, BLOCK_ELEMENTS // max(p, 1))


def triangle_rows(p):
    """Rows per block of the moment passes for p columns (256 to 4096)."""
    return int(min(4096, max(256, TRIANGLE_BLOCK_ELEMENTS // max(p, 1))))


def prefers_single(X, k=None):
    """True when X is float64 and one Hessian costs n * k^2 >= SINGLE_MIN_WORK (k = number of
    coefficients, default p + 1): where float32 curvature buys time (static: shapes, dtype)."""
    n, p = X.shape
    k = p + 1 if k is None else k
    return X.dtype == jnp.float64 and n * k * k >= SINGLE_MIN_WORK


def augmented(X, intercept):
    """[1, X] (ones first along the last axis) with an intercept, else X."""
    if not intercept:
        return X
    return jnp.concatenate([jnp.ones(X.shape[:-1] + (1,), X.dtype), X], axis=-1)


def _augmented(x, intercept, work):
    return augmented(x.astype(work), intercept)


# -- the row-block engine ------------------------------------------------------------------

def sum_row_blocks(block_fn, arrays, rows, zero):
    """zero + sum over row blocks of block_fn(*blocks): `arrays` share their leading axis n,
    cut into n // rows blocks of `rows` rows (a `fori_loop` of dynamic slices, so each block
    is read once and stays in cache) plus the ragged tail. Results add leafwise (pytrees)."""
    n = arrays[0].shape[0]
    n_blocks = n // rows

    def add(total, part):
        return jax.tree_util.tree_map(jnp.add, total, part)

    def body(i, total):
        blocks = [jax.lax.dynamic_slice_in_dim(a, i * rows, rows, 0) for a in arrays]
        return add(total, block_fn(*blocks))

    total = jax.lax.fori_loop(0, n_blocks, body, zero)
    tail = n_blocks * rows
    if tail < n:
        total = add(total, block_fn(*[a[tail:] for a in arrays]))
    return total


# -- the upper block triangle --------------------------------------------------------------

def column_blocks(p, width=COLUMN_BLOCK):
    """Static (start, stop) column blocks of about `width` columns."""
    k = max(1, round(p / width))
    edges = np.linspace(0, p, k + 1).round().astype(int)
    return tuple((int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True))


def triangle_zeros(p, dtype, width=COLUMN_BLOCK):
    """The accumulator of `triangle_add` (one (stop - start, p - start) array per column
    block)."""
    return tuple(jnp.zeros((b - a, p - a), dtype) for a, b in column_blocks(p, width))


def _acc_width(acc):
    """The column blocks of an accumulator of `triangle_zeros`: its (start, stop) pairs."""
    p = acc[0].shape[1]
    return tuple((p - r.shape[1], p - r.shape[1] + r.shape[0]) for r in acc)


def triangle_add(acc, Xc, Y):
    """acc plus the upper block triangle of Y' Xc (Y = diag(w) Xc: symmetric) for one row
    block: only the column-block pairs (a, b >= a), about p(p + C)/2 products per row
    instead of p^2 (XLA:CPU has no syrk). Both operands are transposed once (in cache), so
    every column block is a contiguous row slice. Products in Xc's dtype, added in acc's."""
    XT = Xc.T
    YT = Y.T
    dims = (((1,), (1,)), ((), ()))
    return tuple(r + jax.lax.dot_general(YT[a:b], XT[a:], dims).astype(r.dtype)
                 for r, (a, b) in zip(acc, _acc_width(acc), strict=True))


def triangle_finish(acc):
    """The symmetric p x p matrix from the accumulated upper block triangle."""
    p = acc[0].shape[1]
    G = jnp.zeros((p, p), acc[0].dtype)
    for r, (a, b) in zip(acc, _acc_width(acc), strict=True):
        G = G.at[a:b, a:].set(r)
    return jnp.triu(G) + jnp.triu(G, 1).T


def gram_width(k, work):
    """The column-block width of `weighted_products`' Gram of k columns in `work` precision,
    or None for the whole product (static): the upper block triangle where it has two
    column blocks or more (it then skips a quarter or more of the products; below, its
    transposes cost more than it saves)."""
    width = COLUMN_BLOCK_F64 if work == jnp.float64 else COLUMN_BLOCK
    return width if len(column_blocks(k, width)) > 1 else None


# -- Z' diag(s) Z and r' Z -------------------------------------------------------------------

def _block_gram(x, s, intercept, work, out):
    """One block's z' diag(s) z (z = [1, x] with an intercept), products in `work`, summed in
    `out`: the whole product, or its upper block triangle (`gram_width`)."""
    z = _augmented(x, intercept, work)
    y = s.astype(work)[:, None] * z
    width = gram_width(z.shape[1], work)
    if width is not None:
        return triangle_add(triangle_zeros(z.shape[1], out, width), z, y)
    return (z.T @ y).astype(out)


def _finish(total):
    """The exactly symmetric Gram from `_block_gram`'s total (products round differently
    above and below the diagonal)."""
    if isinstance(total, tuple):
        return triangle_finish(total)
    return 0.5 * (total + total.T)


def _gram(X, s, intercept, work, out, blocked):
    """Z' diag(s) Z of X, products in `work`, summed in `out`."""
    if not blocked:
        return _finish(_block_gram(X, s, intercept, work, out))
    k = X.shape[1] + intercept
    width = gram_width(k, work)
    zero = jnp.zeros((k, k), out) if width is None else triangle_zeros(k, out, width)
    return _finish(sum_row_blocks(lambda x, w: _block_gram(x, w, intercept, work, out),
                                  (X, s), block_rows(X.shape[1]), zero))


def weighted_products(X, s, r=None, intercept=False, single=False):
    """(Z' diag(s) Z, r' Z) with Z = [1, X] when `intercept` (intercept first), else Z = X;
    the second is None without r and always in X's dtype. `single` (a Python bool): the
    Gram's products in float32, accumulated in X's dtype. The Gram goes by row blocks on
    CPU when n spans two blocks or more (one product elsewhere), as the whole product or
    its upper block triangle (`gram_width`); r' X is one matrix-vector product (in the
    blocked loop XLA:CPU's small vector-matrix products ran slower than the whole pass). A
    `linjax.designs` object forms them from its structure. The Gram is exactly symmetric.
    """
    if hasattr(X, "weighted_products"):  # a design (linjax.designs); arrays go on below
        return X.weighted_products(s, r, intercept)
    work = jnp.float32 if single else X.dtype
    if X.shape[0] < 2 * block_rows(X.shape[1]):
        hess = _gram(X, s, intercept, work, X.dtype, False)
    else:
        hess = jax.lax.platform_dependent(
            X, s, cpu=lambda X, s: _gram(X, s, intercept, work, X.dtype, True),
            default=lambda X, s: _gram(X, s, intercept, work, X.dtype, False))
    if r is None:
        return hess, None
    grad = r @ X
    if intercept:
        grad = jnp.concatenate([jnp.sum(r)[None], grad])
    return hess, grad


def weighted_gram(X, s, intercept=False, single=False):
    """Z' diag(s) Z (see `weighted_products`)."""
    return weighted_products(X, s, None, intercept, single)[0]


# -- several weightings at once ---------------------------------------------------------------

def _pair_block(x, c, intercept, work, out):
    """z' [c_1 z, ..., c_P z] of one block (z = [1, x] with an intercept): (q, P q)."""
    z = _augmented(x, intercept, work)
    rows = z.shape[0]
    scaled = (c.astype(work)[:, :, None] * z[:, None, :]).reshape(rows, -1)
    return (z.T @ scaled).astype(out)


def pair_grams(X, C, intercept=False, single=False):
    """Z' diag(C[:, j]) Z for every column j of C (n, P): (P, q, q), Z and `single` as in
    `weighted_products`. One wide product z' [c_1 z, ..., c_P z] per row block (on CPU,
    about 2^21 elements of it), so each block of X is read once for all P weightings."""
    n, p = X.shape
    q, P = p + intercept, C.shape[1]
    work = jnp.float32 if single else X.dtype
    out = X.dtype

    def unstack(wide):  # (q, P q) -> (P, q, q), symmetrized
        blocks = wide.reshape(q, P, q).transpose(1, 0, 2)
        return 0.5 * (blocks + blocks.transpose(0, 2, 1))

    def at_once(X, C):
        return unstack(_pair_block(X, C, intercept, work, out))

    rows = max(256, (1 << 21) // (P * q))
    if n < 2 * rows:
        return at_once(X, C)

    def by_blocks(X, C):
        return unstack(sum_row_blocks(lambda x, c: _pair_block(x, c, intercept, work, out),
                                      (X, C), rows, jnp.zeros((q, P * q), out)))

    return jax.lax.platform_dependent(X, C, cpu=by_blocks, default=at_once)


# -- packed pair products of a small shared X (fit_batch) ----------------------------------

def column_pairs(Xa):
    """The (n, k(k+1)/2) matrix of products Xa[:, i] * Xa[:, j], i <= j (`pair_indices`
    order): formed once, so that S @ pairs holds Xa' diag(S[i]) Xa, packed, for every row
    of S."""
    rows, cols, _ = pair_indices(Xa.shape[1])
    return Xa[:, rows] * Xa[:, cols]
