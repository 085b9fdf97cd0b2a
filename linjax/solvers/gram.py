"""The weighted Gram Z' diag(s) Z (Z = [1, X] with an intercept, its first row and column
from the same pass) and the gradient r' Z: the products every second-order step forms.

On CPU the Gram is accumulated over row blocks small enough to stay in cache. XLA:CPU would
otherwise write the scaled copy s * X (n x p) to memory before the GEMM reads it back, which
doubles the time (n=200k, p=101: 0.129 s one product, 0.068 s by blocks).
`single=True` forms each block's products in float32 and accumulates them in X's dtype:
twice as fast again (0.035 s), with a relative error near 1e-7 per entry. That is enough for
a Newton direction when the gradient stays in float64 (the iteration then converges linearly
at a rate of about cond(H) * 1e-7), not for standard errors. Elsewhere (GPU) one product each.
"""

import jax
import jax.numpy as jnp

#: Elements of X per row block (2^18 float64 = 2 MiB, about one core's share of cache).
BLOCK_ELEMENTS = 1 << 18
#: n * k^2 (multiply-adds of one Hessian) from which `prefers_single` says float32 pays.
SINGLE_MIN_WORK = 1e8


def block_rows(p):
    """Rows per block for p columns: BLOCK_ELEMENTS / p, at least 256."""
    return max(256, BLOCK_ELEMENTS // max(p, 1))


def prefers_single(X, k=None):
    """True when X is float64 and one Hessian costs n * k^2 >= SINGLE_MIN_WORK (k = number of
    coefficients, default p + 1): where float32 curvature buys time (static: shapes, dtype)."""
    n, p = X.shape
    k = p + 1 if k is None else k
    return X.dtype == jnp.float64 and n * k * k >= SINGLE_MIN_WORK


def _augmented(x, intercept, work):
    z = x.astype(work)
    if intercept:
        z = jnp.concatenate([jnp.ones((z.shape[0], 1), work), z], axis=1)
    return z


def _block_gram(x, s, intercept, work):
    """z' diag(s) z of one block in `work` precision, returned in x's dtype."""
    z = _augmented(x, intercept, work)
    return (z.T @ (s.astype(work)[:, None] * z)).astype(x.dtype)


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


def _gram_by_blocks(X, s, intercept, work):
    k = X.shape[1] + intercept
    return sum_row_blocks(lambda x, w: _block_gram(x, w, intercept, work), (X, s),
                          block_rows(X.shape[1]), jnp.zeros((k, k), X.dtype))


def weighted_products(X, s, r=None, intercept=False, single=False):
    """(Z' diag(s) Z, r' Z) with Z = [1, X] when `intercept` (intercept first), else Z = X;
    the second is None without r and always in X's dtype. `single` (a Python bool): the
    Gram's products in float32, accumulated in X's dtype. The Gram goes by row blocks on
    CPU when n spans two blocks or more (one product elsewhere); r' X is one matrix-vector
    product (in the blocked loop XLA:CPU's small vector-matrix products ran slower than
    the whole pass). A `linjax.designs` object forms them from its structure.
    """
    if hasattr(X, "weighted_products"):  # a design (linjax.designs); arrays go on below
        return X.weighted_products(s, r, intercept)
    work = jnp.float32 if single else X.dtype
    if X.shape[0] < 2 * block_rows(X.shape[1]):
        hess = _block_gram(X, s, intercept, work)
    else:
        hess = jax.lax.platform_dependent(
            X, s, cpu=lambda X, s: _gram_by_blocks(X, s, intercept, work),
            default=lambda X, s: _block_gram(X, s, intercept, work))
    hess = 0.5 * (hess + hess.T)  # products round differently above and below the diagonal
    if r is None:
        return hess, None
    grad = r @ X
    if intercept:
        grad = jnp.concatenate([jnp.sum(r)[None], grad])
    return hess, grad


def weighted_gram(X, s, intercept=False, single=False):
    """Z' diag(s) Z (see `weighted_products`)."""
    return weighted_products(X, s, None, intercept, single)[0]


def _pair_block(x, c, intercept, work):
    """z' [c_1 z, ..., c_P z] of one block (z = [1, x] with an intercept): (q, P q)."""
    z = _augmented(x, intercept, work)
    rows = z.shape[0]
    scaled = (c.astype(work)[:, :, None] * z[:, None, :]).reshape(rows, -1)
    return (z.T @ scaled).astype(x.dtype)


def pair_grams(X, C, intercept=False, single=False):
    """Z' diag(C[:, j]) Z for every column j of C (n, P): (P, q, q), Z as in
    `weighted_products`. One wide product z' [c_1 z, ..., c_P z] per row block (on CPU,
    about 2^21 elements of it), so each block of X is read once for all P weightings."""
    n, p = X.shape
    q, P = p + intercept, C.shape[1]
    work = jnp.float32 if single else X.dtype

    def unstack(wide):  # (q, P q) -> (P, q, q), symmetrized
        blocks = wide.reshape(q, P, q).transpose(1, 0, 2)
        return 0.5 * (blocks + blocks.transpose(0, 2, 1))

    def at_once(X, C):
        return unstack(_pair_block(X, C, intercept, work))

    rows = max(256, (1 << 21) // (P * q))
    if n < 2 * rows:
        return at_once(X, C)

    def by_blocks(X, C):
        return unstack(sum_row_blocks(lambda x, c: _pair_block(x, c, intercept, work),
                                      (X, C), rows, jnp.zeros((q, P * q), X.dtype)))

    return jax.lax.platform_dependent(X, C, cpu=by_blocks, default=at_once)
