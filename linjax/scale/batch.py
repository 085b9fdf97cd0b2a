"""`fit_batch`: many independent GLMs in one compiled call.

Two paths give the same answer:

- generic: `vmap` (or `lax.map` in chunks of `batch_size`) of the single-fit body that
  `lj.fit` runs, so every solver and family `lj.fit` accepts works here too;
- shared design ("pairs"): when all problems share one X and the solver is Newton,
  an explicitly batched Newton (`linjax.scale.shared_newton`) forms the column-pair
  products of [1, X] once, so every problem's Hessian comes from one
  (m, n) @ (n, k(k+1)/2) product and every gradient from one (m, n) @ (n, k) product
  (docs/scale.md) instead of m separate X.T diag(s) X products.

Ragged problems are expressed with zero weights over a common n.
"""

import concurrent.futures
import dataclasses
import os
import threading

import jax
import jax.numpy as jnp
import numpy as np

from linjax import _programs, buckets, designs, validation
from linjax.batch_checks import batch_inputs, row_error
from linjax.designs import fitting as design_fitting
from linjax.dispersion import estimate_nb_dispersion
from linjax.families import Gaussian, get_family
from linjax.fit import (
    FitResult,
    _fit,
    choose_solver,
    no_finite_estimate,
    weights_beyond_resolution,
)
from linjax.penalties import NoPenalty
from linjax.scale import shared_newton
from linjax.solvers import Newton
from linjax.solvers.status import Status, code

#: The shared-design path is used automatically while its pair-product matrix stays below this.
PAIRS_MAX_BYTES = 1 << 28
#: Chunk size of the generic (vmap) path on CPU when batch_size is None (see `fit_batch`).
CPU_GENERIC_CHUNK = 128
#: The shared-design path on CPU fits problems in chunks whose (chunk, n) arrays stay near
#: this size when batch_size is None: the loop's arrays then stay in cache and are not
#: page-faulted in afresh on every call (10,000 Poisson problems, n = 500: 0.42 s as one
#: batch, 0.26 s in chunks of 500, measured back to back).
CPU_PAIRS_CHUNK_BYTES = 1 << 21
#: On CPU the shared-design path splits a batch of at least 2 * CPU_GROUP_MIN problems into
#: up to CPU_GROUPS_MAX groups (no more than the cores this process may use), one compiled
#: call each, run from concurrent threads. XLA:CPU runs the kernels of one call one after
#: another, and a Newton iteration's many small ones leave a second core idle; two calls
#: keep both busy (10,000 Poisson problems, n = 500, on 2 cores: 150 ms as one call, 94 ms
#: as two). Grouped calls compile no LAPACK kernel (`_fit_batch`), and are used for
#: k = p + intercept <= `shared_newton.UNROLL_MAX` only, where the LAPACK-free eigen
#: fallback of singular problems stays cheap.
CPU_GROUP_MIN = 128
CPU_GROUPS_MAX = 4


#: Stacked designs (m, n, p) on CPU: the batched Newton runs on chunks of problems whose
#: designs together stay near this size, so each chunk's X stays in cache over its whole fit
#: (m = 100, n = 5,000, p = 20, CPU time: 0.50 s in chunks of 52 problems, 0.29-0.33 s one
#: problem at a time, against 0.41-0.46 s for a loop of lj.fit).
CPU_STACKED_CHUNK_BYTES = 1 << 20


def pairs_batch_size(X, m, n):
    """The CPU chunk of the batched-Newton path: `pairs_chunk` for a shared X, and for stacked
    designs (m, n, p) as many problems as fit in `CPU_STACKED_CHUNK_BYTES` (None: one batch)."""
    if X.ndim == 3:
        size = max(1, CPU_STACKED_CHUNK_BYTES // (n * X.shape[-1] * X.dtype.itemsize))
        return None if size >= m else size
    return pairs_chunk(m, n, X.dtype.itemsize)


def pairs_chunk(m, n, itemsize):
    """Balanced chunk size for the shared-design path on CPU (None: one batch)."""
    rows = max(64, CPU_PAIRS_CHUNK_BYTES // max(1, n * itemsize))
    if m <= rows:
        return None
    chunks = -(-m // rows)
    return -(-m // chunks)


def _broadcast_leaves(tree, m):
    """Give every array leaf a leading axis of length m (as `vmap` does to its outputs)."""
    def lead(a):
        a = jnp.asarray(a)
        return a if (a.ndim >= 1 and a.shape[0] == m) else jnp.broadcast_to(a, (m,) + a.shape)
    return jax.tree_util.tree_map(lead, tree)


def _fit_pairs(X, Y, weights, offset, init, family, penalty, solver, fit_intercept,
               batch_size, fam_ax, pen_ax, lapack=True):
    """The shared-design path: explicitly batched Newton (`linjax.scale.shared_newton`).

    Shared weights and offsets stay (1, n) rows (no (m, n) copies); no offset is None.
    lapack=False compiles no LAPACK kernel (for calls that run concurrently)."""
    m, n = Y.shape
    dtype = X.dtype
    if weights is None:
        W = jnp.full((1, n), 1.0 / n, dtype)
    else:
        W = weights.reshape((-1, n))
        W = W / jnp.sum(W, axis=1, keepdims=True)
    O = None if offset is None else offset.reshape((-1, n))
    leaves, treedef = jax.tree_util.tree_flatten(family)
    batched = [jnp.asarray(leaf) for leaf, a in zip(leaves, fam_ax, strict=True) if a == 0]
    pen_leaves, pen_def = jax.tree_util.tree_flatten(penalty)
    pen_batched = [jnp.asarray(leaf) for leaf, a in zip(pen_leaves, pen_ax, strict=True)
                   if a == 0]

    B0 = None
    if init is not None:
        coef = jnp.broadcast_to(jnp.asarray(init["coef"], dtype), (m, X.shape[-1]))
        B0 = coef
        if fit_intercept:
            b0 = jnp.broadcast_to(jnp.asarray(init.get("intercept", 0.0), dtype), (m,))
            B0 = jnp.concatenate([b0[:, None], coef], axis=1)

    def run(Xc, Yc, Wc, Oc, fam_c, B0c, pen_c):
        it = iter(fam_c)
        fam = jax.tree_util.tree_unflatten(treedef, [
            leaf if a is None else next(it)[:, None] for leaf, a in
            zip(leaves, fam_ax, strict=True)])
        it = iter(pen_c)
        pen = jax.tree_util.tree_unflatten(pen_def, [
            leaf if a is None else next(it) for leaf, a in zip(pen_leaves, pen_ax, strict=True)])
        model = shared_newton.make_model(Xc, Yc, Wc, Oc, fam, pen, fit_intercept, solver,
                                         lapack=lapack, penalty_axes=pen_ax)
        B, value, n_iter, status, state = shared_newton.newton(model, B0c, solver)
        status = _single_fit_status(status, Yc, Wc, fam_c, fit_intercept)
        return B, value, n_iter, status, state

    def _single_fit_status(status, Yc, Wc, fam_c, fit_intercept):
        """The statuses `lj.fit` sets after its solver, per problem (`linjax.fit._fit`)."""
        def one(y, w, fam_row):
            it = iter(fam_row)
            fam = jax.tree_util.tree_unflatten(treedef, [
                leaf if a is None else next(it) for leaf, a in zip(leaves, fam_ax, strict=True)])
            return weights_beyond_resolution(w), no_finite_estimate(fam, y, w, fit_intercept)

        # shared weights (1, n) stay unbatched: broadcast, XLA constant-folds the reductions
        # over the (m, n) copy of a constant W (seconds of compilation)
        shared_w = Wc.shape[0] == 1
        beyond, no_estimate = jax.vmap(one, in_axes=(0, None if shared_w else 0, 0))(
            Yc, Wc[0] if shared_w else Wc, fam_c)
        status = jnp.where(beyond & (status == Status.CONVERGED), code(Status.SINGULAR), status)
        return jnp.where(no_estimate, code(Status.NO_FINITE_ESTIMATE), status)

    if batch_size is None or batch_size >= m:
        B, value, n_iter, status, state = run(X, Y, W, O, batched, B0, pen_batched)
    else:
        chunks = -(-m // batch_size)
        pad = chunks * batch_size - m

        def per_problem(a):
            return a is not None and a.shape[0] == m and m > 1

        def blocks(a):
            if not per_problem(a):
                return None
            a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])])
            return a.reshape((chunks, batch_size) + a.shape[1:])

        def unblock(a):
            return a.reshape((chunks * batch_size,) + a.shape[2:])[:m]

        shared = {"W": None if per_problem(W) else W, "O": None if per_problem(O) else O}

        def run_chunk(c):
            Xc, Yc, Wc, Oc, fam_c, B0c, pen_c = c
            return run(X if Xc is None else Xc, Yc, shared["W"] if Wc is None else Wc,
                       shared["O"] if Oc is None else Oc, fam_c, B0c, pen_c)

        stacked = blocks(X) if X.ndim == 3 else None   # a design per problem
        out = jax.lax.map(run_chunk, (stacked, blocks(Y), blocks(W), blocks(O),
                                      [blocks(b) for b in batched], blocks(B0),
                                      [blocks(b) for b in pen_batched]))
        B, value, n_iter, status, state = jax.tree_util.tree_map(unblock, out)
    if fit_intercept:
        params = {"coef": B[:, 1:], "intercept": B[:, 0]}
    else:
        params = {"coef": B, "intercept": jnp.zeros((m,), dtype)}

    return FitResult(params, value, n_iter, status, status == 0, _broadcast_leaves(family, m),
                     _broadcast_leaves(penalty, m), state, fit_intercept,
                     getattr(solver, "name", ""))


# ----------------------------------------------------------------------------- the batched call
def _group_rows(tree, ax, lo, size):
    """Rows lo .. lo + size of a per-problem argument (ax == 0); shared ones (None) as they are."""
    if ax != 0 or tree is None:
        return tree
    return jax.tree_util.tree_map(
        lambda a: jax.lax.dynamic_slice_in_dim(jnp.asarray(a), lo, size, axis=0), tree)


def _group_leaves(tree, tree_ax, lo, size):
    """A family or penalty with its per-problem leaves cut to rows lo .. lo + size."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return jax.tree_util.tree_unflatten(treedef, [
        _group_rows(leaf, a, lo, size) for leaf, a in zip(leaves, tree_ax, strict=True)])


@_programs.jit(static_argnames=("fit_intercept", "batch_size", "use_pairs",
                                             "axes", "group_size"))
def _fit_batch(X, Y, weights, offset, init, family, penalty, solver, fit_intercept,
               batch_size, use_pairs, axes, lo=0, group_size=None, bounds=None):
    """The compiled batch; with group_size, only the problems lo .. lo + group_size, and no
    LAPACK kernel (the Jacobi eigen fallback; the groups predate `linalg.sequential_on_cpu`,
    which makes batched LAPACK calls safe in concurrent calls too)."""
    x_ax, w_ax, o_ax, init_ax, fam_ax, pen_ax, bounds_ax = axes
    if group_size is not None:
        X, Y, weights, offset, init = (
            _group_rows(a, ax, lo, group_size) for a, ax in
            zip((X, Y, weights, offset, init), (x_ax, 0, w_ax, o_ax, init_ax), strict=True))
        family, penalty = (_group_leaves(tree, tree_ax, lo, group_size) for tree, tree_ax in
                           ((family, fam_ax), (penalty, pen_ax)))
    if use_pairs:
        return _fit_pairs(X, Y, weights, offset, init, family, penalty, solver, fit_intercept,
                          batch_size, fam_ax, pen_ax, lapack=group_size is None)
    fam_leaves, fam_def = jax.tree_util.tree_flatten(family)
    fam_ax_leaves = list(fam_ax)
    pen_leaves, pen_def = jax.tree_util.tree_flatten(penalty)

    # Batched arguments travel through the map; shared ones are closed over.
    def pick(value, ax):
        return value if ax == 0 else None

    mapped = {"y": Y, "x": pick(X, x_ax), "w": pick(weights, w_ax), "o": pick(offset, o_ax),
              "init": pick(init, init_ax), "bounds": pick(bounds, bounds_ax),
              "fam": [leaf if a == 0 else None for leaf, a in zip(fam_leaves, fam_ax_leaves,
                                                                  strict=True)],
              "pen": [leaf if a == 0 else None for leaf, a in zip(pen_leaves, pen_ax,
                                                                  strict=True)]}

    def one(args):
        x = X if x_ax is None else args["x"]
        w = weights if w_ax is None else args["w"]
        o = offset if o_ax is None else args["o"]
        start = init if init_ax is None else args["init"]
        leaves = [leaf if a is None else b for leaf, a, b in
                  zip(fam_leaves, fam_ax_leaves, args["fam"], strict=True)]
        fam = jax.tree_util.tree_unflatten(fam_def, leaves)
        pen = jax.tree_util.tree_unflatten(pen_def, [
            leaf if a is None else b for leaf, a, b in zip(pen_leaves, pen_ax, args["pen"],
                                                           strict=True)])
        bnd = bounds if bounds_ax is None else args["bounds"]
        return _fit(x, args["y"], w, o, start, fam, pen, solver, fit_intercept, bnd)

    if batch_size is None or batch_size >= Y.shape[0]:
        return jax.vmap(one)(mapped)
    return jax.lax.map(one, mapped, batch_size=batch_size)


def cpu_groups(m):
    """How many concurrent groups the shared-design path uses for m problems on CPU."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, CPU_GROUPS_MAX, m // CPU_GROUP_MIN))


_POOL = []
_POOL_LOCK = threading.Lock()


def _pool():
    """The threads that run every group but the first (made on first use)."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(concurrent.futures.ThreadPoolExecutor(
                CPU_GROUPS_MAX - 1, thread_name_prefix="linjax-fit-batch"))
        return _POOL[0]


def _join(results, skips):
    """One batch from the groups' results: group g's first skips[g] rows repeat the previous
    group's last ones (the last group ends at m, so it may overlap the one before). Joined
    on the host and put back by `jax.device_put`, which compiles nothing (a compiled join
    was one more program on the first call; `jnp.asarray` compiles one per shape)."""
    return jax.device_put(jax.tree_util.tree_map(
        lambda *leaves: np.concatenate([np.asarray(a)[s:] for a, s in
                                        zip(leaves, skips, strict=True)]), *results))


def _fit_in_groups(groups, args, axes):
    """The shared-design `_fit_batch` on `groups` equal groups of rows, run from concurrent
    threads; the groups start at g * size, except the last, which ends at m."""
    X, Y = args[:2]
    m, n = Y.shape
    size = -(-m // groups)
    kwargs = {"batch_size": pairs_batch_size(X, size, n), "use_pairs": True,
              "axes": axes}
    starts = [min(g * size, m - size) for g in range(groups)]
    skips = tuple(g * size - lo for g, lo in enumerate(starts))

    # a caller's `with jax.enable_x64(...)` holds for its own thread only
    x64 = jax.dtypes.canonicalize_dtype(np.float64) == np.float64
    enable_x64 = jax.enable_x64 if hasattr(jax, "enable_x64") else jax.experimental.enable_x64

    def run(lo):
        with enable_x64(x64):
            return jax.block_until_ready(_fit_batch(*args, lo=lo, group_size=size, **kwargs))

    futures = [_pool().submit(run, lo) for lo in starts[1:]]
    results = [run(starts[0])] + [f.result() for f in futures]
    return _join(results, skips)


def _init_axes(init, m):
    if init is None:
        return None, None
    coef = np.ndim(init["coef"])
    init = {"coef": init["coef"], "intercept": init.get("intercept", 0.0)}
    if coef == 2:
        init["intercept"] = jnp.broadcast_to(jnp.asarray(init["intercept"]), (m,))
        return init, 0
    return init, None


#: Penalty fields that hold one number per coefficient (the others hold one number).
_PER_COEFFICIENT_FIELDS = ("weights",)


def penalty_axes(penalty, m, p):
    """0 for each penalty leaf given per problem (alpha, l1_ratio (m,); weights (m, p)), else
    None; any other shape is refused, naming the field."""
    axes = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(penalty)[0]:
        name = getattr(path[0], "name", str(path[0]))
        base = 1 if name in _PER_COEFFICIENT_FIELDS else 0
        shape = np.shape(leaf)
        if len(shape) <= base or (name == "group_weights" and len(shape) == 1):
            axes.append(None)
            continue
        expected = (m,) + ((p,) if base else ())
        if shape != expected:
            shared = f"shape ({p},) shared or " if base else "a number shared by every problem or "
            raise ValueError(f"penalty {name}: expected {shared}shape {expected} (one per "
                             f"problem), got shape {shape}.")
        axes.append(0)
    return tuple(axes)


def _with_classes(family, Y):
    """Multinomial: the number of classes from the labels of every problem (as lj.fit)."""
    if not family.multiclass or family.n_classes is not None:
        return family
    if validation.is_traced(Y):
        raise ValueError("family: Multinomial(n_classes=K) is needed under jit/vmap, where "
                         "the labels are traced.")
    return dataclasses.replace(family, n_classes=int(np.max(np.asarray(Y))) + 1)


def _differentiated(tree):
    """True when an argument carries a JAX autodiff tracer (fit_batch under jax.grad/jvp)."""
    # (jax 0.10's jax.grad traces with LinearizeTracer, which jax does not export)
    return any(type(leaf).__name__ in ("JVPTracer", "LinearizeTracer")
               for leaf in jax.tree_util.tree_leaves(tree))


def _check_penalty_rows(penalty, m):
    """Per-problem penalty strengths: alpha >= 0, l1_ratio in [0, 1], weights finite and
    >= 0, each error listing the problems at fault."""
    rules = {"alpha": (lambda v: np.isfinite(v) & (v >= 0), "must be finite and >= 0"),
             "l1_ratio": (lambda v: (v >= 0) & (v <= 1), "must be in [0, 1]"),
             "weights": (lambda v: np.isfinite(v) & (v >= 0),
                         "must be finite and >= 0 (0 leaves a coefficient unpenalized)")}
    for field, (good, rule) in rules.items():
        value = getattr(penalty, field, None)
        if value is None or validation.is_traced(value) or np.ndim(value) == 0:
            continue
        v = np.asarray(value)
        if v.shape[0] != m or (field == "weights" and v.ndim < 2):
            continue                                   # shared; `penalty_axes` checks shapes
        bad = np.flatnonzero(~good(v).reshape(m, -1).all(axis=1))
        if bad.size:
            raise row_error(f"penalty {field}", bad, f"{rule}; got {v[bad[0]]!r}.", m)


def _batch_bounds(bounds, m, p, dtype):
    """(lower, upper) of the coefficients and their axis: scalars or (p,) shared by every
    problem (axis None), or (m, p) per problem on either side (axis 0, both sides (m, p))."""
    if bounds is None:
        return None, None
    if not (isinstance(bounds, tuple | list) and len(bounds) == 2):
        raise ValueError("bounds: expected a pair (lower, upper) of scalars, (p,) arrays shared "
                         "by every problem or (m, p) arrays, one row per problem; use "
                         "-np.inf / np.inf (or None) for no bound on a side.")
    sides = []
    for side, b, fill in (("lower", bounds[0], -np.inf), ("upper", bounds[1], np.inf)):
        b = validation.as_numeric(f"bounds {side}", fill if b is None else b)
        if np.shape(b) not in ((), (p,), (m, p)):
            raise ValueError(f"bounds: {side} must be a scalar, shape ({p},) shared by every "
                             f"problem or ({m}, {p}) one row per problem, got shape "
                             f"{tuple(np.shape(b))}.")
        sides.append(b)
    per_problem = any(np.ndim(b) == 2 for b in sides)
    shape = (m, p) if per_problem else (p,)
    lo, hi = (jnp.broadcast_to(jnp.asarray(b, dtype), shape) for b in sides)
    if not (validation.is_traced(lo) or validation.is_traced(hi)):
        lo_np, hi_np = np.atleast_2d(lo), np.atleast_2d(hi)
        for side, b in (("lower", lo_np), ("upper", hi_np)):
            bad = np.flatnonzero(np.isnan(b).any(axis=1))
            if bad.size:
                raise row_error(f"bounds {side}", bad, "contains NaN.", m) if per_problem \
                    else ValueError(f"bounds: {side} contains NaN.")
        bad = np.flatnonzero((lo_np > hi_np).any(axis=1))
        if bad.size:
            message = "some lower bound exceeds its upper bound."
            raise row_error("bounds", bad, message, m) if per_problem \
                else ValueError(f"bounds: {message}")
    return (lo, hi), (0 if per_problem else None)


#: Per-problem inputs of at most this many bytes in all are padded to a bucket of m
#: (`linjax.buckets.bucket_rows`); larger batches are fitted at their own m (copying them
#: costs a noticeable part of the fit, and compilation a small part of its first call).
MAX_PADDED_BYTES = buckets.MAX_PADDED_BYTES


def _per_problem_leaves(args, axes):
    """The arrays of `args` that carry the problem axis (those whose axis is 0)."""
    return [leaf for a, ax in zip(args, axes, strict=True) if ax == 0
            for leaf in jax.tree_util.tree_leaves(a)]


def pad_problems(args, axes, m):
    """(args, m_to): the per-problem arguments (axis 0) padded along their first axis to the
    bucket of m with copies of problem 0, whose fit is then computed and discarded; unchanged
    (m_to = m) when any argument is traced (a caller's jit/vmap/grad owns the shapes),
    sharded, or the per-problem arrays exceed `MAX_PADDED_BYTES`.

    args and axes run in parallel; an argument's axis is 0, None or, for the family and the
    penalty, a tuple with one axis per leaf."""
    flat = [(leaf, 0 if ax == 0 else None) for a, axs in zip(args, axes, strict=True)
            for leaf, ax in zip(jax.tree_util.tree_leaves(a),
                                axs if isinstance(axs, tuple) else
                                [axs] * len(jax.tree_util.tree_leaves(a)), strict=True)]
    m_to = buckets.bucket_rows(m)
    leaves = [leaf for leaf, _ in flat]
    if m_to == m or any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        return args, m
    if any(isinstance(leaf, jax.Array) and (not leaf.is_fully_addressable
                                            or len(leaf.sharding.device_set) > 1)
           for leaf in leaves):
        return args, m
    if sum(np.size(leaf) * np.dtype(getattr(leaf, "dtype", np.float64)).itemsize
           for leaf, ax in flat if ax == 0) > MAX_PADDED_BYTES:
        return args, m

    def pad(leaf):
        on_cpu = not isinstance(leaf, jax.Array) or all(
            d.platform == "cpu" for d in leaf.devices())
        lib = np if on_cpu else jnp
        (out,) = buckets.pad_rows(m_to, np.asarray(leaf) if on_cpu else leaf, lib=lib)
        return jax.device_put(out) if on_cpu else out

    def pad_tree(tree, axs):
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        axs = axs if isinstance(axs, tuple) else (axs,) * len(leaves)
        return jax.tree_util.tree_unflatten(treedef, [
            pad(leaf) if ax == 0 else leaf for leaf, ax in zip(leaves, axs, strict=True)])

    return tuple(pad_tree(a, ax) for a, ax in zip(args, axes, strict=True)), m_to


def first_problems(result, m):
    """The result of problems 0 .. m - 1 of a batch padded to more problems (host slices on
    the CPU put back by `jax.device_put`: no program per m, where `a[:m]` and even
    `jnp.asarray` of a numpy array compile one per shape)."""
    def cut(a):
        if not hasattr(a, "shape") or not a.shape or a.shape[0] <= m:
            return a
        if isinstance(a, jax.Array) and all(d.platform == "cpu" for d in a.devices()):
            return jax.device_put(np.asarray(a)[:m])
        return a[:m]
    return jax.tree_util.tree_map(cut, result)


def fit_batch(X, Y, family=None, penalty=None, solver="auto", weights=None, offset=None,
              fit_intercept=True, init=None, batch_size=None, gram="auto", bounds=None):
    """Fit m independent GLMs in one compiled call.

    X: a shared design (n, p) or stacked designs (m, n, p); Y: (m, n), one problem per row.
    weights, offset: (n,) shared or (m, n) per problem (ragged problems: zero weights).
    family, penalty, solver, fit_intercept: as `lj.fit`, shared by every problem; numeric
    family and penalty parameters may be per-problem arrays of shape (m,) (a negative
    binomial `alpha` per gene, a Tweedie `power`, a penalty `alpha` or `l1_ratio`; penalty
    `weights` (m, p), e.g. a feature mask per problem). Their values are data: new values
    reuse the compiled program. Multinomial takes labels (m, n).
    init: {"coef": (p,) or (m, p), "intercept": () or (m,)}.
    bounds: (lower, upper) on the coefficients as `lj.fit` (scalars or (p,) shared), or
    (m, p) arrays, one row per problem.
    batch_size: fit the problems in chunks of this many (`lax.map`), bounding memory; None
    fits all at once, except on CPU: the generic path uses chunks of `CPU_GENERIC_CHUNK`
    (its LAPACK calls run one problem at a time on CPU, `linalg.sequential_on_cpu`: jaxlib
    0.10's batched CPU LAPACK kernels can deadlock) and the shared-design path chunks of about
    `CPU_PAIRS_CHUNK_BYTES` per (chunk, n) array (`pairs_chunk`; faster: cache-resident),
    and, for m >= 2 `CPU_GROUP_MIN` and k <= 16, in up to min(cores, `CPU_GROUPS_MAX`)
    groups run from concurrent threads (`cpu_groups`; not when called under a transform).
    gram: "auto", "pairs" or "vmap": how Newton forms the Hessians when X is shared
    ("pairs": from column-pair products of X, one matrix product for every problem;
    "auto" uses it for Newton while the pair matrix stays under 256 MiB).

    Eager calls pad m to its bucket (`linjax.buckets.bucket_rows`) with copies of problem 0,
    fitted and dropped, so a new m in a compiled bucket compiles nothing (`pad_problems`).
    Each problem's status is its own (`linjax.solvers.status.messages`): one that fails,
    stops at max_iter or has no finite estimate leaves the others' answers unchanged.
    Differentiable (jax.grad, jvp) in X, Y, weights, offset and the numeric family and
    penalty parameters by implicit differentiation at each optimum, as `lj.fit`.

    Returns a `FitResult` whose leaves carry a leading axis of length m
    (`params["coef"]` (m, p), `converged` (m,), `status` (m,), `n_iter` (m,)).
    """
    family = Gaussian() if family is None else get_family(family)
    penalty = NoPenalty() if penalty is None else penalty
    if not validation.is_traced(Y) and np.ndim(Y) == 2:
        _check_penalty_rows(penalty, np.shape(Y)[0])
    validation.refuse_firth(penalty)
    validation.check_penalty(penalty)
    if getattr(family, "alpha", 0.0) is None:
        return _fit_nb_estimated(X, Y, family, penalty, solver, weights, offset, fit_intercept,
                                 init, batch_size, gram, bounds)
    if design_fitting.accepts(X):  # scipy.sparse, a frame, a design: one shared design
        X = design_fitting.checked(X, "X", fit_intercept)
    X, Y, weights, offset, w_ax, o_ax = batch_inputs(X, Y, family, weights, offset, penalty,
                                                     fit_intercept)
    m, n = Y.shape
    family = _with_classes(family, Y)
    pen_ax = penalty_axes(penalty, m, X.shape[-1])
    bounds, bounds_ax = _batch_bounds(bounds, m, X.shape[-1], X.dtype)
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"batch_size: expected a positive integer or None, got {batch_size!r}.")
    if designs.is_design(X):  # "auto" never least squares; lstsq and SGD refused
        solver = design_fitting.solver_for(solver, family, penalty, X.shape,
                                            bounds is not None, choose_solver,
                                            design_fitting.diagonal_width(X))
    else:
        solver = choose_solver(solver, family, penalty, X.shape[-2:], bounded=bounds is not None)
    x_ax = 0 if X.ndim == 3 else None
    init, init_ax = _init_axes(init, m)
    if gram not in ("auto", "pairs", "vmap"):
        raise ValueError(f"gram: expected 'auto', 'pairs' or 'vmap', got {gram!r}.")
    k = X.shape[-1] + int(fit_intercept)
    # the shared-design Newton has no implicit-differentiation rule: under jax.grad/jvp the
    # generic path (lj.fit's body, differentiated through its optimum) answers
    differentiated = _differentiated((X, Y, weights, offset, init, family, penalty, bounds))
    # stacked designs (m, n, p) take the batched Newton too (gram="auto"), its products
    # per problem (`shared_newton.StackedDesign`)
    pairs_ok = (not designs.is_design(X) and isinstance(solver, Newton)
                and penalty.smooth and not family.multiclass and X.shape[-1] > 0
                and bounds is None and not differentiated)
    if gram == "pairs" and not (pairs_ok and x_ax is None):
        raise ValueError("gram='pairs' needs a shared X (n, p) with p >= 1, the Newton solver, "
                         "a smooth penalty, no bounds, a single-output family and no jax.grad "
                         "around fit_batch; use gram='auto' or 'vmap'.")
    use_pairs = pairs_ok and (gram == "pairs" or (
        gram == "auto" and (x_ax == 0 or n * k * (k + 1) // 2 * X.dtype.itemsize
                             <= PAIRS_MAX_BYTES)))
    fam_ax = tuple(0 if (np.ndim(a) >= 1 and np.shape(a)[0] == m) else None
                   for a in jax.tree_util.tree_leaves(family))
    # numpy leaves as device arrays, as padding makes them: one call signature either way
    family, penalty, bounds = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a) if isinstance(a, np.ndarray) else a, (family, penalty, bounds))
    (X, Y, weights, offset, init, family, penalty, bounds), m_fit = pad_problems(
        (X, Y, weights, offset, init, family, penalty, bounds),
        (x_ax, 0, w_ax, o_ax, init_ax, fam_ax, pen_ax, bounds_ax), m)
    axes = (x_ax, w_ax, o_ax, init_ax, fam_ax, pen_ax, bounds_ax)
    result = _run_batch(X, Y, weights, offset, init, family, penalty, solver, fit_intercept,
                        batch_size, use_pairs, axes, bounds, m_fit, n, k)
    return result if m_fit == m else first_problems(result, m)


def _run_batch(X, Y, weights, offset, init, family, penalty, solver, fit_intercept,
               batch_size, use_pairs, axes, bounds, m, n, k):
    """`_fit_batch` with the CPU defaults of `fit_batch`'s batch_size (chunks, groups)."""
    if batch_size is None and jax.default_backend() == "cpu":
        if not use_pairs and m > CPU_GENERIC_CHUNK:
            batch_size = CPU_GENERIC_CHUNK
        elif use_pairs:
            groups = cpu_groups(m)
            traced = any(validation.is_traced(a) for a in jax.tree_util.tree_leaves(
                (X, Y, weights, offset, init, family, penalty)))
            # k <= UNROLL_MAX bounds the cost of the LAPACK-free eigen fallback of the groups
            if groups > 1 and not traced and k <= shared_newton.UNROLL_MAX:
                return _fit_in_groups(groups, (X, Y, weights, offset, init, family, penalty,
                                               solver, fit_intercept), axes)
            batch_size = pairs_batch_size(X, m, n)
    return _fit_batch(X, Y, weights, offset, init, family, penalty, solver, fit_intercept,
                      None if batch_size is None else int(batch_size), use_pairs, axes,
                      bounds=bounds)


def _fit_nb_estimated(X, Y, family, penalty, solver, weights, offset, fit_intercept, init,
                      batch_size, gram, bounds):
    """NegativeBinomial(alpha=None): alpha per problem by maximum likelihood (as `lj.fit`,
    MASS::glm.nb; or the family's `method`, e.g. "cox-reid", and `prior`, where it has
    them) from `linjax.dispersion.estimate_nb_dispersion`, then the coefficients at each
    estimate by `fit_batch`. The estimate is in `result.family.alpha` (m,); a problem whose
    estimate did not converge, sits at a bound of alpha or has no finite value keeps that
    status (`Status.AT_BOUND`, ...) whatever the refit's. Shared X, no penalty or bounds,
    outside jit/grad."""
    operands = jax.tree_util.tree_leaves((X, Y, weights, offset, init))
    if (np.ndim(X) != 2 or not isinstance(penalty, NoPenalty) or bounds is not None
            or any(validation.is_traced(a) for a in operands)):
        raise ValueError(
            "family: fit_batch estimates alpha (NegativeBinomial(alpha=None)) for a shared "
            "X (n, p) without a penalty or bounds, outside jit/grad. Otherwise pass alpha, a "
            "number or one per problem (shape (m,)), e.g. estimated first with "
            "linjax.dispersion.estimate_nb_dispersion or lj.fit(X, y, family="
            "NegativeBinomial(alpha=None)) per problem: NegativeBinomial(alpha=alphas).")
    X = validation.check_design(X)
    design = np.column_stack([np.ones(X.shape[0]), X]) if fit_intercept else X
    prior = getattr(family, "prior", None)
    prior_mean, prior_var = (None, None) if prior is None else prior
    est = estimate_nb_dispersion(design, Y, offset=offset, weights=weights,
                                 method=getattr(family, "method", "ml"),
                                 prior_mean=prior_mean, prior_var=prior_var)
    alpha = jnp.where(jnp.isfinite(est.alpha) & (est.alpha > 0), est.alpha, 1.0)
    fixed = dataclasses.replace(family, alpha=alpha)
    result = fit_batch(X, Y, family=fixed, penalty=penalty, solver=solver, weights=weights,
                       offset=offset, fit_intercept=fit_intercept, init=init,
                       batch_size=batch_size, gram=gram)
    # the estimate's own diagnosis (no finite estimate, alpha at a bound, ...) names the cause
    # that the refit at that alpha only sees as a symptom (a singular Hessian): it wins, as
    # in lj.fit
    status = jnp.where(est.status != Status.CONVERGED, est.status.astype(result.status.dtype),
                       result.status)
    family_out = dataclasses.replace(result.family, alpha=est.alpha)
    return dataclasses.replace(result, status=status, converged=status == Status.CONVERGED,
                               family=family_out)
