"""Dense linear algebra that never runs a batched LAPACK kernel on CPU.

jaxlib 0.10's CPU LAPACK kernels (Cholesky, QR, SVD, eigh, triangular solve ...) split a
batch whose work exceeds ~2e5 flops into chunks, schedule them on XLA's intra-op thread
pool and block the calling pool thread until they finish. When as many such kernels run
at once as the pool has threads (two on a 2-core machine: the two branches of a `lax.cond`
that `vmap` turned into a select, or two compiled calls in flight), every pool thread waits
for chunks that no thread is left to run: the process hangs at 0% CPU. An unbatched call
(batch 1) always runs inline, so it cannot hang.

`sequential_on_cpu(f)` makes f (written for one problem) run, when `vmap`ped on CPU, as a
loop of unbatched calls (`lax.map`); on other backends `vmap` batches it as usual. Every
function here that `fit_batch` or `vmap(lj.fit)` can reach goes through it. Derivatives
use JAX's own rules for f (forward and reverse mode), so they behave as the plain call.

The PSD solves: `solve_psd` (one system; Newton's, the starting values', the streaming
fit's), `solve_psd_or_nan` (the same without the eigen fallback, NaN where singular, and up
to `LOOP_CHOLESKY_MAX` without LAPACK: eager `lj.fit`'s Newton, which reruns with the
fallback when it is needed) and `solve_packed` / `solve_psd_batched` (m small systems at
once, written with XLA operations over the batch: `fit_batch`'s), each returning
(x, singular).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap


def _loop_on_cpu():
    return jax.default_backend() == "cpu"


def sequential_on_cpu(f, jvp=None):
    """f(*arrays) with a batching rule that loops over the batch on CPU (module docstring).

    f takes positional array arguments (pytrees allowed) only. jvp(g, primals, out,
    tangents) -> tangent of out, with g the wrapped f: a derivative rule made of linear
    operations (needed when f holds a `lax.cond`: JAX cannot transpose the derivative of
    a vmapped cond taken inside a custom rule); default: JAX's own derivative of f."""
    looped = custom_vmap(f)

    @looped.def_vmap
    def rule(axis_size, in_batched, *args):
        flags = [any(jax.tree_util.tree_leaves(b)) for b in in_batched]
        if not _loop_on_cpu():
            axes = [jax.tree_util.tree_map(lambda b: 0 if b else None, b) for b in in_batched]
            out = jax.vmap(f, in_axes=tuple(axes))(*args)
        elif not any(flags):
            out = jax.tree_util.tree_map(
                lambda a: jnp.broadcast_to(a, (axis_size,) + jnp.shape(a)), looped(*args))
        else:
            # batched leaves travel through the loop; the shared ones are closed over
            leaves = [jax.tree_util.tree_flatten(a) for a in args]
            moving = [[x for x, b in zip(lv, jax.tree_util.tree_leaves(bt), strict=True) if b]
                      for (lv, _), bt in zip(leaves, in_batched, strict=True)]

            def one(slices):
                full = []
                for (lv, tdef), bt, sl in zip(leaves, in_batched, slices, strict=True):
                    it = iter(sl)
                    full.append(jax.tree_util.tree_unflatten(tdef, [
                        next(it) if b else x for x, b in
                        zip(lv, jax.tree_util.tree_leaves(bt), strict=True)]))
                return looped(*full)

            out = jax.lax.map(one, moving)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    @jax.custom_jvp
    def wrapped(*args):
        return looped(*args)

    @wrapped.defjvp
    def derivative(primals, tangents):
        out = wrapped(*primals)   # higher orders differentiate this through the rule again
        if jvp is not None:
            return out, jvp(wrapped, primals, out, tangents)
        _, tangent = jax.jvp(f, primals, tangents)
        return out, tangent

    return wrapped


def _psd_solve_jvp(solve, primals, out, tangents):
    """d(H^-1 b) = H^-1 (db - dH x), with H^-1 from k solves (H symmetric)."""
    H, rhs = primals
    dH, drhs = tangents
    x, singular = out
    inverse = jax.vmap(lambda e: solve(H, e)[0])(jnp.eye(H.shape[-1], dtype=H.dtype))
    return inverse @ (drhs - dH @ x), np.zeros(np.shape(singular), jax.dtypes.float0)


def psd_solver(f):
    """`sequential_on_cpu` for f(H, rhs) -> (x, singular) solving H x = rhs, H symmetric."""
    return sequential_on_cpu(f, _psd_solve_jvp)


# (lambdas: jnp.linalg's jitted functions take static keywords that custom_vmap would trace)
cholesky = sequential_on_cpu(lambda a: jnp.linalg.cholesky(a))
eigh = sequential_on_cpu(lambda a: jnp.linalg.eigh(a))
eigvalsh = sequential_on_cpu(lambda a: jnp.linalg.eigvalsh(a))
lstsq = sequential_on_cpu(lambda a, b: jnp.linalg.lstsq(a, b)[0])


#: Smallest relative pivot L_jj^2 / H_jj a float64 Cholesky factor may keep. The Hessian of
#: a design with an exactly aliased column (a duplicate, a constant beside the intercept, a
#: linear combination), formed from the data, leaves that pivot at rounding level: measured
#: up to 17 eps (4e-15), above a k eps floor, where Newton then stepped 1/pivot along the
#: null space and reported "converged" or ran to max_iter. Below 1e-13 a direction carries
#: fewer than 3 correct digits (error eps / pivot) in any case.
PIVOT_FLOOR_F64 = 1e-13


def pivot_floor(k, dtype):
    """The relative pivot floor of `solve_psd`: max(k eps, 1e-13) (1e-13 only bites in
    float64, where k eps is below it for k < 450)."""
    return max(k * float(jnp.finfo(dtype).eps), PIVOT_FLOOR_F64)


#: Largest size k for which `solve_psd_or_nan` (the solve without the eigen fallback) factors
#: and substitutes with XLA operations (loops over the columns, `loop_cholesky_solve`) instead
#: of LAPACK's potrf and trsm. A program that holds a LAPACK call makes jaxlib import
#: scipy.linalg when it is lowered (about 0.2 s, paid again on every first call that reads the
#: program from the persistent cache, whose key needs the lowered program). The loops cost
#: about k^3 flops against LAPACK's k^3 / 3 (measured 0.26 against 0.13 ms at k = 101, 2-5
#: against 1 ms at k = 256), beside the n k^2 of forming a Newton step's Hessian; above 128
#: columns the difference could show in the warm time of a fit with few rows, and `solve_psd`,
#: whose eigen fallback is a LAPACK call anyway, keeps LAPACK's factorization at every size.
LOOP_CHOLESKY_MAX = 128


def loop_cholesky_solve(H, rhs):
    """(x, pivots, finite): H x = rhs by a Cholesky factorization written with XLA operations.

    H (k, k) is read as (H + H') / 2 (as `jnp.linalg.cholesky` reads it); rhs is (k,) or
    (k, r). Left-looking, one column per loop step: column j of the factor of the bordered
    matrix [[H, rhs], [rhs', .]] is (a_j - L l_j) / L_jj with l_j row j of L, so its last
    rows are y = L^-1 rhs (the forward substitution rides along); a second loop solves
    L' x = y from the last unknown up. pivots: the diagonal L_jj (NaN where the remaining
    pivot was not positive: `cholesky_or_eigen` tests them); finite: whether every entry of
    L is finite. x is not usable where a pivot failed."""
    lax = jax.lax
    k = H.shape[-1]
    b = jnp.reshape(rhs, (k, -1))
    r = b.shape[1]
    if k == 0:
        return jnp.zeros_like(rhs), jnp.zeros((0,), H.dtype), jnp.asarray(True)
    A = lax.concatenate([lax.div(lax.add(H, lax.transpose(H, (1, 0))),
                                 lax.full_like(H, 2.0)), lax.transpose(b, (1, 0))], 0)
    rows = lax.iota(jnp.int32, k + r)

    def column(j, L):
        j = lax.convert_element_type(j, jnp.int32)
        row = lax.dynamic_index_in_dim(L, j, 0, keepdims=False)       # l_j (k,): 0 from j on
        c = lax.sub(lax.dynamic_index_in_dim(A, j, 1, keepdims=False), jnp.dot(L, row))
        d = lax.sqrt(lax.dynamic_index_in_dim(c, j, 0, keepdims=False))
        col = lax.select(lax.gt(rows, j), lax.div(c, lax.broadcast(d, (k + r,))),
                         lax.select(lax.eq(rows, j), lax.broadcast(d, (k + r,)),
                                    lax.full_like(c, 0.0)))
        return lax.dynamic_update_index_in_dim(L, col[:, None], j, 1)

    L = lax.fori_loop(0, k, column, lax.full((k + r, k), 0.0, H.dtype))
    factor, y = L[:k], lax.transpose(L[k:], (1, 0))                    # y = L^-1 rhs (k, r)
    pivots = jnp.diagonal(factor)

    def back(t, x):
        i = k - 1 - t                                                   # x_l = 0 for l <= i
        li = lax.dynamic_index_in_dim(factor, i, 1, keepdims=False)   # column i of L
        xi = lax.div(lax.sub(lax.dynamic_index_in_dim(y, i, 0), jnp.dot(li, x)[None]),
                     lax.dynamic_index_in_dim(pivots, i, 0)[:, None])
        return lax.dynamic_update_index_in_dim(x, xi, i, 0)

    x = lax.fori_loop(0, k, back, lax.full((k, r), 0.0, H.dtype))
    return jnp.reshape(x, jnp.shape(rhs)), pivots, jnp.all(jnp.isfinite(L))


def eigen_pseudo_solve(H, rhs):
    """The minimum-norm solution of H x = rhs from LAPACK's eigendecomposition, eigenvalues
    below eps k max|eig| taken as zero (`solve_psd`'s fallback)."""
    evals, evecs = jnp.linalg.eigh(H)
    cutoff = jnp.finfo(H.dtype).eps * H.shape[0] * jnp.max(jnp.abs(evals))
    inv = jnp.where(evals > cutoff, 1.0 / jnp.where(evals > cutoff, evals, 1.0), 0.0)
    if jnp.ndim(rhs) == 2:
        inv = inv[:, None]
    return evecs @ (inv * (evecs.T @ rhs))


def cholesky_or_eigen(H, rhs, reference, k, fallback=True):
    """`solve_psd`'s body with the pivot test L_jj^2 > pivot_floor(k) reference_j: H a Schur
    complement whose reference is the diagonal of the matrix it was reduced from, k that
    matrix's size (the complement's own diagonal is at rounding level where it is singular).

    fallback=False leaves the eigen pseudo-solve out of the program: where a pivot fails x is
    NaN (for a caller that then solves again with it: `Newton(eigen_fallback=False)`), and up
    to `LOOP_CHOLESKY_MAX` the factorization is `loop_cholesky_solve` (no LAPACK call)."""
    floor = pivot_floor(k, H.dtype) * reference
    if not fallback and H.shape[-1] <= LOOP_CHOLESKY_MAX:
        x, pivots, finite = loop_cholesky_solve(H, rhs)
        ok = finite & jnp.all(pivots * pivots > floor)
        return jnp.where(ok, x, jnp.nan), ~ok
    chol = jnp.linalg.cholesky(H)
    pivots = jnp.diagonal(chol, axis1=-2, axis2=-1)
    ok = jnp.all(jnp.isfinite(chol)) & jnp.all(pivots * pivots > floor)

    def by_cholesky():
        return jax.scipy.linalg.cho_solve((chol, True), rhs)

    if not fallback:
        return jnp.where(ok, by_cholesky(), jnp.nan), ~ok
    return jax.lax.cond(ok, by_cholesky, lambda: eigen_pseudo_solve(H, rhs)), ~ok


@psd_solver  # vmapped on CPU: a loop of unbatched LAPACK calls (linalg.py)
def solve_psd(H, rhs):
    """Solve H x = rhs for symmetric positive semi-definite H.

    Cholesky when it succeeds with every pivot L_jj^2 above max(n eps, 1e-13) H_jj (the part
    of column j not explained by the earlier ones, a scale-free test: rounding lets the
    factorization of an exactly singular matrix "succeed" with pivots at that level);
    otherwise the minimum-norm solution from the eigendecomposition with eigenvalues
    below eps * n * max|eig| treated as zero. Returns (x, singular).
    """
    return cholesky_or_eigen(H, rhs, jnp.diagonal(H, axis1=-2, axis2=-1), H.shape[-1])


@psd_solver
def solve_psd_or_nan(H, rhs):
    """`solve_psd` without the eigen fallback in the program: x is NaN where H is singular
    (singular = True). For a caller that solves again with `solve_psd` when that happens."""
    return cholesky_or_eigen(H, rhs, jnp.diagonal(H, axis1=-2, axis2=-1), H.shape[-1],
                             fallback=False)


# ----------------------------------------------------------------------------- batched solves
# Many small PSD systems at once (`fit_batch`'s Newton steps), written with XLA operations
# over the whole batch, problems along the fast axis: no per-problem LAPACK call (the
# batched CPU kernels can deadlock, module docstring). A pivot L_jj^2 at or below
# `pivot_floor(k)` H_jj counts as failed, as in `solve_psd`; those problems get the
# minimum-norm eigen pseudo-solve (LAPACK's, one problem per call, or `jacobi_eigh`
# without LAPACK) and singular = True.

#: Largest k for which the batched Cholesky is unrolled (k^3 / 6 vector operations; larger
#: k loops over the columns).
UNROLL_MAX = 16


def pair_indices(k):
    """(rows, cols, packed): the upper-triangle pairs of k columns and, for every (i, j), the
    position of pair (min(i, j), max(i, j)) in the packed vector."""
    rows, cols = np.triu_indices(k)
    packed = np.zeros((k, k), dtype=np.int32)
    packed[rows, cols] = np.arange(rows.size)
    packed[cols, rows] = np.arange(rows.size)
    return rows, cols, packed


def _pivot_floor(diag, k):
    """A pivot L_jj^2 must exceed `pivot_floor(k)` H_jj (`solve_psd`'s test)."""
    return pivot_floor(k, diag.dtype) * diag


def cholesky_batched(H):
    """Lower Cholesky factors of a batch (m, k, k), column by column with XLA operations.

    Returns (L, ok): ok is False where a pivot L_jj^2 was not above `pivot_floor(k)` H_jj
    (or not finite); those factors are not usable."""
    k = H.shape[-1]
    idx = jnp.arange(k)

    def column(j, carry):
        L, ok = carry
        row = L[:, j, :]                          # entries l >= j are still zero
        s = H[:, j, j] - jnp.sum(row * row, axis=-1)
        good = s > _pivot_floor(H[:, j, j], k)
        d = jnp.sqrt(jnp.where(good, s, 1.0))
        col = (H[:, :, j] - jnp.einsum("mil,ml->mi", L, row)) / d[:, None]
        col = jnp.where(idx > j, col, jnp.where(idx == j, d[:, None], 0.0))
        return L.at[:, :, j].set(col), ok & good

    return jax.lax.fori_loop(0, k, column, (jnp.zeros_like(H), jnp.ones(H.shape[:1], bool)))


def cho_solve_batched(L, b):
    """Solve L L' x = b for a batch of lower factors L (m, k, k) and b (m, k)."""
    k = L.shape[-1]

    def forward(i, y):
        return y.at[:, i].set((b[:, i] - jnp.sum(L[:, i, :] * y, axis=-1)) / L[:, i, i])

    def backward(t, x):
        i = k - 1 - t
        return x.at[:, i].set((y[:, i] - jnp.sum(L[:, :, i] * x, axis=-1)) / L[:, i, i])

    y = jax.lax.fori_loop(0, k, forward, jnp.zeros_like(b))
    return jax.lax.fori_loop(0, k, backward, jnp.zeros_like(b))


def unrolled_cholesky_solve(Hp, b):
    """Solve H x = b for a batch of small PSD matrices in the transposed, packed layout.

    Hp: (k(k+1)/2, m), the upper triangle of each H packed as `pair_indices`, problems along
    the last (fast) axis; b: (k, m). The factorization and both substitutions are unrolled
    entry by entry, each entry one vector operation over the m problems (k^3 / 6 of them),
    so XLA vectorizes across problems; the pivots enter through their reciprocal square
    roots. The forward substitution is row k of the factorization of [[H, b], [b', .]]
    (y = L^-1 b), and each finished column (and every second unknown of the backward pass)
    is stacked behind an optimization barrier: XLA then stops copying the entries into every
    later fusion that reads them (at k = 11, 250 problems: 79 -> 56 kernels, 0.087 -> 0.054
    ms; the arithmetic is unchanged). Written with `jax.lax` primitives, not `jax.numpy`
    (whose every operator is a nested jitted function to trace): the same operations in
    half the tracing time at k = 11 (0.07 -> 0.035 s CPU). Returns (x (k, m), ok (m,)); x is
    not usable where ok is False."""
    lax = jax.lax
    k = b.shape[0]
    _, _, packed = pair_indices(k)
    h = [lax.index_in_dim(Hp, r, keepdims=False) for r in range(Hp.shape[0])]
    rhs = [lax.index_in_dim(b, j, keepdims=False) for j in range(k)]
    L = [[None] * k for _ in range(k + 1)]        # row k: y
    inv = [None] * k                              # 1 / L_jj
    ok = lax.full(b.shape[1:], True)
    for j in range(k):
        diag = h[packed[j, j]]
        s = diag
        for ell in range(j):
            s = lax.sub(s, lax.mul(L[j][ell], L[j][ell]))
        good = lax.gt(s, lax.mul(diag, lax.full_like(diag, pivot_floor(k, diag.dtype))))
        ok = lax.bitwise_and(ok, good)
        inv[j] = lax.rsqrt(lax.select(good, s, lax.full_like(s, 1.0)))
        for i in range(j + 1, k + 1):
            t = rhs[j] if i == k else h[packed[i, j]]
            for ell in range(j):
                t = lax.sub(t, lax.mul(L[i][ell], L[j][ell]))
            L[i][j] = lax.mul(t, inv[j])
        column = _materialized([L[i][j] for i in range(j + 1, k + 1)] + [inv[j]])
        for i in range(j + 1, k + 1):
            L[i][j] = column[i - j - 1]
        inv[j] = column[-1]
    y = L[k]
    x = [None] * k                                # backward: L' x = y
    for i in range(k - 1, -1, -1):
        t = y[i]
        for ell in range(i + 1, k):
            t = lax.sub(t, lax.mul(L[ell][i], x[ell]))
        x[i] = lax.mul(t, inv[i])
        if i % 2 == 0:
            x[i:] = _materialized(x[i:])
    return _stacked(x), ok


def _stacked(vectors):
    """jnp.stack of (m,) vectors, in `jax.lax`."""
    return jax.lax.concatenate([jax.lax.expand_dims(v, (0,)) for v in vectors], 0)


def _materialized(vectors):
    """The same (m,) vectors, read back from one stacked array behind an optimization barrier
    (so that later fusions read them instead of recomputing them)."""
    stacked = jax.lax.optimization_barrier(_stacked(vectors))
    return [jax.lax.index_in_dim(stacked, q, keepdims=False) for q in range(len(vectors))]


#: Sweeps of the Jacobi method at most (each rotates every pair of rows once; the
#: off-diagonal part falls quadratically, to rounding level within 6-10 sweeps).
JACOBI_SWEEPS = 30


def _round_robin(n):
    """(n - 1, n / 2) arrays P, Q: in round r the disjoint pairs (P[r, i], Q[r, i]), P < Q,
    so that every pair of 0..n-1 (n even) meets once (the circle method)."""
    others = list(range(1, n))
    P, Q = [], []
    for r in range(n - 1):
        ring = [0] + others[r:] + others[:r]
        pairs = [sorted((ring[i], ring[n - 1 - i])) for i in range(n // 2)]
        P.append([a for a, _ in pairs])
        Q.append([b for _, b in pairs])
    return np.asarray(P, np.int32), np.asarray(Q, np.int32)


def jacobi_eigh(H, sweeps=JACOBI_SWEEPS):
    """Eigenvalues (m, k) and eigenvectors (m, k, k) of a batch of symmetric H (m, k, k) by
    Jacobi rotations written with XLA operations: no LAPACK kernel, whose batched CPU
    versions can deadlock when two compiled calls run them at once (`fit_batch` runs groups
    of problems from concurrent threads). Each round rotates k / 2 disjoint pairs at once,
    A <- J' A J (round-robin order); rotation (p, q) zeroes A_pq with
    t = tan(phi) = sign(r) / (|r| + sqrt(r^2 + 1)), r = (A_qq - A_pp) / (2 A_pq)
    (Rutishauser). Sweeps stop once every |A_pq| <= eps ||A||_F (backward error at rounding
    level, as LAPACK's)."""
    m, k, _ = H.shape
    if k < 2:
        return H[:, :, 0] if k else jnp.zeros((m, 0), H.dtype), jnp.ones_like(H)
    n = k + k % 2                                  # odd k: a zero row and column, never turned
    A0 = jnp.pad(H, ((0, 0), (0, n - k), (0, n - k)))
    P, Q = _round_robin(n)
    # each round's pairs as one-hot rows (rounds, n / 2, n): a rotation is two small matrix
    # products (no scatter, which XLA:CPU compiles to a while loop of its own)
    eye_n = np.eye(n)
    OP, OQ = jnp.asarray(eye_n[P], H.dtype), jnp.asarray(eye_n[Q], H.dtype)
    KEEP = jnp.asarray(1.0 - np.einsum("ria,rib->rab", eye_n[P], eye_n[Q])
                       - np.einsum("ria,rib->rab", eye_n[Q], eye_n[P]), H.dtype)
    eye = jnp.broadcast_to(jnp.eye(n, dtype=H.dtype), A0.shape)
    tiny = jnp.finfo(H.dtype).tiny
    floor = jnp.finfo(H.dtype).eps * jnp.sqrt(jnp.sum(H * H, axis=(1, 2)))
    rows, cols = np.triu_indices(n, 1)

    def round_(r, carry):
        A, V = carry
        op, oq = OP[r], OQ[r]

        def entries(left, right):                  # A[:, p_i, q_i] for each pair i
            return jnp.einsum("mab,ia,ib->mi", A, left, right)

        app, aqq, apq = entries(op, op), entries(oq, oq), entries(op, oq)
        skip = jnp.abs(apq) <= tiny
        ratio = (aqq - app) / (2.0 * jnp.where(skip, 1.0, apq))
        t = jnp.where(ratio >= 0, 1.0, -1.0) / (jnp.abs(ratio) + jnp.sqrt(ratio * ratio + 1.0))
        t = jnp.where(skip, 0.0, t)
        c = jax.lax.rsqrt(t * t + 1.0)
        s = t * c

        def outer(v, left, right):                 # sum_i v_i e_{left_i} e_{right_i}'
            return jnp.einsum("mi,ia,ib->mab", v, left, right)

        # J = I + (c - 1)(e_p e_p' + e_q e_q') + s (e_p e_q' - e_q e_p'): M J turns columns p, q
        J = eye + outer(c - 1.0, op, op) + outer(c - 1.0, oq, oq) + outer(s, op, oq) \
            - outer(s, oq, op)
        A = jnp.einsum("mia,mij,mjb->mab", J, A, J) * KEEP[r]       # J' A J, A_pq = 0
        return A, jnp.einsum("mij,mjb->mib", V, J)

    def sweep(carry):
        A, V, count = carry
        A, V = jax.lax.fori_loop(0, n - 1, round_, (A, V))
        return A, V, count + 1

    def going(carry):
        A, _, count = carry
        return (count < sweeps) & jnp.any(jnp.abs(A[:, rows, cols]) > floor[:, None])

    A, V, _ = jax.lax.while_loop(going, sweep, (A0, eye, 0))
    return jnp.diagonal(A, axis1=1, axis2=2)[:, :k], V[:, :k, :k]


def eigen_solve(H, b, lapack=True):
    """Minimum-norm solutions from the eigendecomposition (as `solve_psd`'s fallback): LAPACK's
    (`linalg.eigh`, one problem per call on CPU), or without LAPACK `jacobi_eigh` (about 40
    ms for 200 problems at k = 11, against ~1 ms)."""
    evals, evecs = jax.vmap(eigh)(H) if lapack else jacobi_eigh(H)
    cutoff = jnp.finfo(H.dtype).eps * H.shape[-1] * jnp.max(jnp.abs(evals), axis=-1,
                                                             keepdims=True)
    keep = evals > cutoff
    inv = jnp.where(keep, 1.0 / jnp.where(keep, evals, 1.0), 0.0)
    return jnp.einsum("mij,mj->mi", evecs, inv * jnp.einsum("mji,mj->mi", evecs, b))


def solve_packed(Hp, b, active=None, lapack=True):
    """Batched `solve_psd` from packed Hessians (`fit_batch`'s Newton systems).

    Hp: (m, k(k+1)/2) upper triangles packed as `pair_indices`; b: (m, k). Returns
    (x, singular) per problem. Problems outside `active` (m,) never trigger the eigen
    fallback (their answer is not used); lapack: as `eigen_solve`."""
    k = b.shape[1]
    _, _, packed = pair_indices(k)
    if k <= UNROLL_MAX:
        xt, ok = unrolled_cholesky_solve(Hp.T, b.T)
        x = xt.T
    else:
        H = Hp[:, packed]
        Lf, ok = cholesky_batched(H)
        x = cho_solve_batched(jnp.where(ok[:, None, None], Lf, jnp.eye(k, dtype=H.dtype)), b)
    need = ~ok if active is None else (~ok & active)

    def fallback(x):
        return jnp.where(ok[:, None], x, eigen_solve(Hp[:, packed], b, lapack))

    return jax.lax.cond(jnp.any(need), fallback, lambda x: x, x), ~ok


def solve_psd_batched(H, b):
    """Batched `solve_psd` (H (m, k, k)): returns (x, singular)."""
    rows, cols, _ = pair_indices(H.shape[-1])
    return solve_packed(H[:, rows, cols], b)
