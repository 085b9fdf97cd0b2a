"""The K + 1 paths of one cross-validation (full data and folds) in lockstep.

    res = path_lockstep(X, y, W, off, pf, alphas, l1_ratio, ctl, cfg)   # W (K1, n)

A fold is a row weight over the same X, so the K1 = K + 1 paths of a cross-validation
(`linjax.selection`) differ only in their weights. Run one after another, each IRLS step
of each path reads X twice (X delta and X' r): 2 K1 passes per step of all paths. Run
together, one step at a time for every path that still moves, the K1 products at one
strength are one matrix product each, X [delta_1 ... delta_K1] and [r_1 ... r_K1]' X,
which read X once: measured at n = 10,000, p = 100, six matrix-vector products cost
about three times one product with six columns.

Each path still runs `paths._hessian_solve`'s algorithm step for step (proximal Newton on
its own weighted Gram, refreshed when its moves stop contracting; coordinate descent on
its own working set; step halving; its own KKT rounds): the parts with their own loop
counts (the Gram refresh and the coordinate descent) run path by path (`lax.map`, each
skipped for a path that has converged), the rest for all paths at once, and a converged
path keeps its state while the others finish. So every path's answer is the one its own
`paths.path_core` gives, up to the rounding of the products.

Per step, the derivatives are taken at the whole step (eta + X delta), which nearly every
step takes: their loss is the step halving's first trial, so the halving reads no extra
pass, and only a path that halves has them taken again at its shorter step. The model
Grams (float32 for a float64 X) read one float32 copy of X made per path set.
"""

import jax
import jax.numpy as jnp

from linjax import paths as P
from linjax.solvers.newton_step import damped_step
from linjax.solvers.status import Status

#: vmap axes of the per-path data: X, y, offsets and penalty factors shared, weights and
#: the column scales (which depend on them) one row per path.
_AXES = P._Data(None, None, None, 0, None, None, 0, None, None, None, None, None)


def _where(flag, new, old):
    """new where flag (one per path), else old; leaf by leaf."""
    def pick(a, b):
        f = flag.reshape(flag.shape + (1,) * (a.ndim - flag.ndim))
        return jnp.where(f, a, b)
    return jax.tree_util.tree_map(pick, new, old)


def _objective(d, cfg, eta, b, l1, l2):
    return P._safe_sum(d.w, cfg.family.nll(d.y, eta)) + P._penalty_value(b, l1, l2)


def _derivatives(d, cfg, eta):
    """(mean loss, w g, curvature weights w h, X'(w g)) at eta, for one path."""
    nll, g, h = P.eta_derivatives(cfg.family, d.y, eta, cfg.fisher)
    pos = d.w > 0
    ok = pos & (h > 0) & jnp.isfinite(h) & jnp.isfinite(g)
    v = jnp.where(ok, d.w * h, 0.0)
    ge = jnp.where(pos, d.w * g, 0.0)
    return P._safe_sum(d.w, nll), ge, v, ge @ d.X


def _propose(X, X32, cfg, ctl, args):
    """One path's proximal Newton proposal (`paths._hessian_solve`'s): its Gram (refreshed
    at v when asked; X32: X cast to float32 once for the float32 model Grams, or None),
    then coordinate descent on the quadratic model. A path that does not move returns a
    zero step."""
    (active, refresh, exact, v, G, xbar, s, b, grad, ge, l1, l2, mask, always) = args
    dtype = b.dtype

    def move():
        Gn, xn, sn = jax.lax.cond(refresh,
                                  lambda: P._model_gram(X, v, cfg.fit_intercept, exact, X32),
                                  lambda: (G, xbar, s))
        g0 = jnp.sum(ge) if cfg.fit_intercept else jnp.zeros((), dtype)
        c_lin = Gn @ b - (grad - xn * g0)
        quad = P._Data(None, None, None, None, None, None, None, Gn, c_lin, xn,
                       jnp.zeros((), dtype))
        bn, _, _, sweeps, capped, _, _ = P._gram_solve(quad, l1, l2, b, Gn @ b, mask, always,
                                                       ctl, cfg)
        delta = bn - b
        delta0 = (-(g0 / sn) - xn @ delta) if cfg.fit_intercept else jnp.zeros((), dtype)
        return Gn, xn, sn, delta, delta0, sweeps, capped

    def stay():
        return (G, xbar, s, jnp.zeros_like(b), jnp.zeros((), dtype), jnp.asarray(0, jnp.int32),
                jnp.asarray(False))

    return jax.lax.cond(active, move, stay)


def _products(X, B):
    """X b for every row b of B, as (K1, n). Formed as X B' (n, K1) behind a barrier: XLA
    would otherwise turn the transposed product into B X', which packs X transposed for
    every product (about twice the time on CPU at n = 10,000, p = 100)."""
    return jax.lax.optimization_barrier(X @ B.T).T


def _accept(d, cfg, tol, l1, l2, b, b0, eta, loss, delta, delta0, d_eta, loss1, G, s, prev,
            refresh, exact, fresh_whole, capped):
    """One path's step from its proposal: the move's size, step halving on the penalized
    objective, convergence and whether to refresh the Gram (as `paths._hessian_solve`).
    d_eta = X delta + delta0 and loss1, the mean loss at the whole step (its halving's
    first trial), come in: `_hessian_lockstep` forms them for all paths at once. Returns
    whether the whole step was taken (its derivatives are the caller's)."""
    dtype = b.dtype
    scale = jnp.sqrt(jnp.maximum(jnp.diag(G) + l2, 0.0))
    move = jnp.maximum(jnp.max(scale * jnp.abs(delta), initial=0.0),
                       jnp.sqrt(s) * jnp.abs(delta0))
    f_old = loss + P._penalty_value(b, l1, l2)
    slack = 8 * jnp.finfo(dtype).eps * jnp.maximum(jnp.abs(f_old), 1.0)
    t, _, _, accepted = damped_step(
        lambda t: (_objective(d, cfg, eta + t * d_eta, b + t * delta, l1, l2), ()), f_old,
        slack, 40, (loss1 + P._penalty_value(b + delta, l1, l2), ()))
    t = jnp.where(accepted, t, 0.0)
    bn, b0n, etan = b + t * delta, b0 + t * delta0, eta + t * d_eta
    finite = jnp.all(jnp.isfinite(bn)) & jnp.isfinite(b0n)
    bn, b0n, etan = (jnp.where(finite, new, old) for new, old in
                     ((bn, b), (b0n, b0), (etan, eta)))
    whole = t == 1
    predicted = whole & jnp.isfinite(prev) & (move * move <= tol * prev)
    converged = (move <= tol) | predicted | ~accepted | ~finite
    refresh, exact, fresh_whole, capped, failed = P._next_gram(refresh, whole, move, prev,
                                                               exact, fresh_whole, capped)
    converged = converged & ~failed
    return (bn, b0n, etan, whole & finite, refresh, move, exact, fresh_whole, capped,
            converged, ~finite)


def _hessian_lockstep(d, X32, cfg, l1, l2, b, b0, model, mask, always, ctl, run):
    """`paths._hessian_solve` for every path with `run` set, in lockstep (leading axis K1
    on every argument but d's shared fields and X32, X in float32 for the model Grams);
    the others keep their state. Returns `_hessian_solve`'s tuple, one row per path."""
    X = d.X
    K1 = b.shape[0]
    need = run & ~model.valid
    eta = jax.lax.cond(jnp.any(need),
                       lambda: jnp.where(need[:, None], _products(X, b) + b0[:, None] + d.off,
                                         model.eta),
                       lambda: model.eta)
    derivatives = jax.vmap(_derivatives, (_AXES, None, 0))
    loss, ge, v, grad = derivatives(d, cfg, eta)
    zero = jnp.zeros((K1,), jnp.int32)
    false = jnp.zeros((K1,), bool)
    prev = jnp.full((K1,), jnp.inf, b.dtype)
    accept = jax.vmap(_accept, (_AXES, None, None) + (0,) * 17)

    def cond(c):
        it, done = c[-3], c[-2]
        return jnp.any(~done & (it < ctl.max_iter))

    def body(c):
        (b, b0, eta, loss, ge, v, grad, model, refresh, prev, exact, fresh_whole, sweeps,
         capped, it, done, nonfinite) = c
        active = ~done & (it < ctl.max_iter)
        G, xbar, s, delta, delta0, sw, cap = jax.lax.map(
            lambda a: _propose(X, X32, cfg, ctl, a),
            (active, refresh, exact, v, model.G, model.xbar, model.s, b, grad, ge, l1, l2,
             mask, always))
        # the derivatives at the whole step, which nearly every step takes: its loss is the
        # step halving's first trial; recomputed only where a path halved its step
        d_eta = _products(X, delta) + delta0[:, None]
        at_whole = derivatives(d, cfg, eta + d_eta)
        out = accept(d, cfg, ctl.tol, l1, l2, b, b0, eta, loss, delta, delta0, d_eta,
                     at_whole[0], G, s, prev, refresh, exact, fresh_whole, cap)
        (bn, b0n, etan, taken, refreshn, move, exactn, fresh, cap, converged, nf) = out
        lossn, gen, vn, gradn = jax.lax.cond(
            jnp.any(~taken), lambda: _where(taken, at_whole, derivatives(d, cfg, etan)),
            lambda: at_whole)
        modeln = model._replace(G=G, xbar=xbar, s=s, valid=jnp.ones_like(model.valid))
        new = (bn, b0n, etan, lossn, gen, vn, gradn, modeln, refreshn, move, exactn, fresh,
               sweeps + sw, capped | cap, it + 1, converged, nf)
        kept = _where(active, new, c)
        # a path that does not move proposes a zero step, so its eta, derivatives and Gram
        # come back unchanged: no select over those (n- and p^2-sized) arrays
        return (kept[:2] + (etan,) + kept[3:4] + (gen, vn) + kept[6:7]
                + (kept[7]._replace(G=G),) + kept[8:])

    init = (b, b0, eta, loss, ge, v, grad, model, ~model.valid, prev, false, false, zero,
            false, zero, ~run, false)
    out = jax.lax.while_loop(cond, body, init)
    b, b0, eta, _, _, _, grad, model, _, _, _, _, sweeps, capped, _, done, nonfinite = out
    return b, b0, grad + l2 * b, sweeps, capped | ~done, nonfinite, model._replace(eta=eta)


def _solve_alpha_lockstep(d, X32, cfg, alpha, l1_ratio, b, b0, model, mask, ctl, allowed):
    """`paths._solve_alpha` (KKT rounds around the solver) for every path in lockstep;
    alpha (K1,), allowed (p,) shared."""
    l1 = alpha[:, None] * l1_ratio * d.pf
    l2 = alpha[:, None] * (1.0 - l1_ratio) * d.pf
    always = l1 <= 0
    mask = (mask | always | (b != 0)) & allowed
    always = always & allowed
    tol = ctl.tol

    def cond(c):
        viol, rounds = c[-2], c[-1]
        return jnp.any(viol & (rounds < ctl.max_rounds))

    def body(c):
        b, b0, mask, _, model, sweeps, capped, nonfinite, viol, rounds = c
        run = viol & (rounds < ctl.max_rounds)
        bn, b0n, grad, s, cap, nf, modeln = _hessian_lockstep(d, X32, cfg, l1, l2, b, b0,
                                                              model, mask, always, ctl, run)
        slack = tol * jnp.sqrt(d.colscale + l2)
        violn = ~mask & (jnp.abs(grad) > l1 + slack) & allowed
        new = (bn, b0n, mask | violn, grad, modeln, sweeps + s, capped | cap, nonfinite | nf,
               jnp.any(violn, 1), rounds + 1)
        return _where(run, new, c)

    K1 = b.shape[0]
    zero = jnp.zeros((K1,), jnp.int32)
    false = jnp.zeros((K1,), bool)
    init = (b, b0, mask, jnp.zeros_like(b), model, zero, false, false, ~false, zero)
    b, b0, mask, grad, model, sweeps, capped, nonfinite, viol, _ = jax.lax.while_loop(
        cond, body, init)
    status = jnp.where(nonfinite, int(Status.NON_FINITE),
                       jnp.where(capped | viol, int(Status.MAX_ITER), int(Status.CONVERGED)))
    return b, b0, grad, model, sweeps, status.astype(jnp.int32)


def _secant_lockstep(d, cfg, alpha, l1_ratio, last, before, null):
    """`paths._hessian_secant` for every path: the previous two solutions extrapolated
    linearly in alpha (coefficients that would leave zero or cross it set to zero), kept
    where it lowers the penalized objective; one product with X for the paths that set a
    coefficient to zero."""
    b, b0, model, a = last
    b_old, b0_old, eta_old, a_old = before
    t = jnp.where((a_old > a) & ~null, (alpha - a) / jnp.where(a_old > a, a - a_old, 1.0),
                  0.0)
    go = (t > 0) & model.valid
    raw = b + t[:, None] * (b - b_old)
    bx = jnp.where((b != 0) & (jnp.sign(raw) == jnp.sign(b)), raw, 0.0)
    b0x = b0 + t * (b0 - b0_old)
    lin = model.eta + t[:, None] * (model.eta - eta_old)
    cut = go & jnp.any(bx != raw, 1)
    etax = jax.lax.cond(
        jnp.any(cut),
        lambda: jnp.where(cut[:, None], _products(d.X, bx) + b0x[:, None] + d.off, lin),
        lambda: lin)
    l1 = alpha[:, None] * l1_ratio * d.pf
    l2 = alpha[:, None] * (1.0 - l1_ratio) * d.pf
    objective = jax.vmap(_objective, (_AXES, None, 0, 0, 0, 0))
    better = go & (objective(d, cfg, etax, bx, l1, l2) < objective(d, cfg, model.eta, b, l1, l2))
    return (_where(better, bx, b), _where(better, b0x, b0),
            model._replace(eta=_where(better, etax, model.eta)))


def path_lockstep(X, y, W, off, pf, alphas, l1_ratio, ctl, cfg):
    """`paths.path_core` (the "hessian" solver, dense X) for each row of W (K1, n) with
    its row of alphas (K1, L), in lockstep; a `paths.Path` with a leading axis K1."""
    K1, n = W.shape
    p = X.shape[1]
    dtype = X.dtype
    Wn = W / jnp.sum(W, 1, keepdims=True)
    d = P._Data(X, None, y, Wn, off, pf, Wn @ (X * X))
    # the float32 model Grams read X cast once, not once per Gram
    X32 = X.astype(jnp.float32) if X.dtype == jnp.float64 else None
    unpen = pf <= 0
    b = jnp.zeros((K1, p), dtype)
    if cfg.fit_intercept:
        b0 = cfg.family.link.link(cfg.family.starting_mu(Wn @ y)) - Wn @ off
        b0 = jnp.where(jnp.isfinite(b0), b0, 0.0)
    else:
        b0 = jnp.zeros((K1,), dtype)
    steps = jnp.concatenate([alphas[:, :1], alphas], 1).T        # (L + 1, K1)
    is_null = jnp.arange(steps.shape[0]) == 0
    everything = jnp.ones((p,), bool)
    deviance = jax.vmap(lambda w, eta: P._safe_sum(
        w, cfg.family.unit_deviance(y, cfg.family.link.inverse(eta))))
    alpha_max = jax.vmap(P._alpha_max_from_grad, (0, None, None))

    def step(carry, xs):
        b, b0, grad, model, prev, b_old, b0_old, eta_old, prev_old = carry
        alpha, null = xs
        allowed = jnp.where(null, unpen, everything)
        strong = jnp.abs(grad) >= l1_ratio * pf * (2 * alpha - prev)[:, None]
        b_s, b0_s, model_s = _secant_lockstep(d, cfg, alpha, l1_ratio, (b, b0, model, prev),
                                              (b_old, b0_old, eta_old, prev_old), null)
        b_new, b0_new, grad, model_new, sweeps, status = _solve_alpha_lockstep(
            d, X32, cfg, alpha, l1_ratio, b_s, b0_s, model_s, strong & allowed, ctl, allowed)
        amax = alpha_max(grad, pf, l1_ratio)
        first = jnp.where(jnp.isfinite(amax), jnp.maximum(amax, alphas[:, 0]), alphas[:, 0])
        out = (b_new, b0_new, deviance(Wn, model_new.eta),
               jnp.sum(b_new != 0, 1).astype(jnp.int32), sweeps, status)
        return (b_new, b0_new, grad, model_new, jnp.where(null, first, alpha), b, b0,
                model.eta, prev), out

    model = P._Hessian(jnp.zeros((K1, p, p), dtype), jnp.zeros((K1, p), dtype),
                       jnp.ones((K1,), dtype), jnp.zeros((K1,), bool),
                       jnp.zeros((K1, n), dtype))
    init = (b, b0, jnp.zeros((K1, p), dtype), model, alphas[:, 0], b, b0, model.eta,
            alphas[:, 0])
    _, outs = jax.lax.scan(step, init, (steps, is_null))
    coef, intercept, dev, df, sweeps, status = (jnp.swapaxes(o, 0, 1) for o in outs)
    return P.Path(alphas, coef[:, 1:], intercept[:, 1:], dev[:, 1:], dev[:, 0], df[:, 1:],
                  sweeps[:, 1:], status[:, 1:], status[:, 1:] == int(Status.CONVERGED),
                  jnp.broadcast_to(jnp.asarray(l1_ratio, dtype), (K1,)))
