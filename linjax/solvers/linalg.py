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


def cholesky_or_eigen(H, rhs, reference, k):
    """`solve_psd`'s body with the pivot test L_jj^2 > pivot_floor(k) reference_j: H a Schur
    complement whose reference is the diagonal of the matrix it was reduced from, k that
    matrix's size (the complement's own diagonal is at rounding level where it is singular)."""
    chol = jnp.linalg.cholesky(H)
    pivots = jnp.diagonal(chol, axis1=-2, axis2=-1)
    floor = pivot_floor(k, H.dtype) * reference
    ok = jnp.all(jnp.isfinite(chol)) & jnp.all(pivots * pivots > floor)

    def by_cholesky():
        return jax.scipy.linalg.cho_solve((chol, True), rhs)

    def by_eigen():
        evals, evecs = jnp.linalg.eigh(H)
        cutoff = jnp.finfo(H.dtype).eps * H.shape[0] * jnp.max(jnp.abs(evals))
        inv = jnp.where(evals > cutoff, 1.0 / jnp.where(evals > cutoff, evals, 1.0), 0.0)
        return evecs @ (inv * (evecs.T @ rhs))

    return jax.lax.cond(ok, by_cholesky, by_eigen), ~ok


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
