"""Accelerator check: the workloads of `python -m benchmarks` at 20-50x their size, float32.

Data are drawn on the device (jax.random), so nothing large crosses to or from the host.
Each workload is timed through the public call (`lj.fit`, `lj.path`, `lj.cv_path`,
`lj.fit_batch`): cold = the first call (compile included), warm = the median of 3 more.
The device's peaks are measured first: memory bandwidth with a streaming kernel
(x -> 2x + 1) and the FLOP rate with a large float32 matrix product at JAX's default
precision (the precision linjax's products use). For each workload a cost model of its
algorithm gives the bytes that must cross memory and the FLOPs that must be done
(`Cost`); the report gives the warm time per iteration, the achieved GB/s and TFLOP/s,
and "of floor": the time the model needs at the measured peaks over the warm time.

Cost models (|X| = bytes of X; n rows, p columns, K classes, m problems):
  Newton / IRLS:  start 1 pass (a Gram), then per iteration 2 passes (Hessian and
                  gradient fused; one trial linear predictor); FLOPs: n p (p + 1) per
                  Gram (the symmetric half), 2 n p per product;
  multinomial:    as Newton with K (K + 1) / 2 Gram blocks per Hessian and K columns;
  coordinate descent (GLM): one Gram and gradient per outer iteration, plus its trial;
  L-BFGS / FISTA: 2 passes and 4 n p FLOPs per iteration;
  least squares:  1 pass for the Gram, 2 for the refinement's residual;
  lasso path:     one Gram of X (the covariance solver's 100 alphas then work on p x p);
  5-fold CV:      one pass that forms every fold's moments (the Gram's FLOPs once);
  fit_batch:      per iteration Y read once and the means written and read (3 m n
                  values), m (n p (p + 1) + 4 n p) FLOPs, with the mean iteration count.

    python benchmarks/gpu_check.py                 # accelerator sizes (~40 GB of memory)
    python benchmarks/gpu_check.py --small         # tiny sizes: runs anywhere, CPU included
    python benchmarks/gpu_check.py logistic ols    # some workloads only
    python benchmarks/gpu_check.py --out FILE.md   # also write the table as markdown

CPU figures from --small say nothing about an accelerator; they only show the script runs.
"""

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import linjax as lj

F32 = 4  # bytes per value


@dataclass
class Cost:
    bytes: float
    flops: float
    iters: float
    unit: str  # what an iteration is


@dataclass
class Check:
    name: str
    title: str
    make: Callable[[], tuple]            # the data, drawn on the device (not timed)
    call: Callable[..., object]          # the public call on the data: the timed part
    cost: Callable[[object, tuple], Cost]  # the model, given the result and the data
    converged: Callable[[object], float]  # fraction of fits (or alphas) converged


# ---------------------------------------------------------------------------- the peaks


def _best_time(f, *args, repeats=5):
    jax.block_until_ready(f(*args))
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        best = min(best, time.perf_counter() - t)
    return best


def measured_bandwidth(n_bytes):
    """Bytes per second of x -> x * 2 + 1 over an array of n_bytes (one read, one write)."""
    x = jnp.ones((n_bytes // F32,), jnp.float32)
    return 2 * x.size * F32 / _best_time(jax.jit(lambda x: x * 2 + 1), x)


def measured_flops(size):
    """FLOPs per second of a float32 (size x size) @ (size x size) product."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(9))
    a = jax.random.normal(k1, (size, size), jnp.float32)
    b = jax.random.normal(k2, (size, size), jnp.float32)
    return 2.0 * size**3 / _best_time(jax.jit(jnp.matmul), a, b)


# ------------------------------------------------------------------------- the models


def _gram_flops(n, p):
    return n * p * (p + 1.0)


def _glm_cost(n, p, solver, n_iter, k=1):
    """Bytes and FLOPs of one single-fit GLM by its solver's passes (module docstring)."""
    if solver in ("newton", "cd"):
        grams = k * (k + 1) / 2
        passes = 1 + 2 * n_iter
        flops = (1 + n_iter) * grams * _gram_flops(n, p) + n_iter * 4 * n * p * k
    elif solver == "lstsq":
        passes, flops = 3, _gram_flops(n, p) + 4 * n * p
    else:  # first-order: lbfgs, proximal, gd
        passes, flops = 2 * n_iter, n_iter * 4 * n * p * k
    return Cost(passes * n * p * F32, flops, max(n_iter, 1), f"{solver} iteration")


def _fit_check(name, title, make, family, penalty=None, k=1):
    def cost(r, data):
        n, p = data[0].shape
        return _glm_cost(n, p, r.solver, int(r.n_iter), k)
    return Check(name, title, make, lambda X, y: lj.fit(X, y, family, penalty=penalty), cost,
                 lambda r: float(r.converged))


# --------------------------------------------------------------------------- the data


def _keys(seed, k):
    return jax.random.split(jax.random.PRNGKey(seed), k)


def _logistic_data(n, p, seed=0):
    kx, kc, ky = _keys(seed, 3)
    X = jax.random.normal(kx, (n, p), jnp.float32) / float(np.sqrt(p))
    X = X.at[:, : p // 4].multiply(3.0)
    eta = 0.3 + X @ jax.random.normal(kc, (p,), jnp.float32)
    y = (jax.random.uniform(ky, (n,)) < jax.nn.sigmoid(eta)).astype(jnp.float32)
    return X, y


def _count_data(n, p, kind, seed=1):
    kx, kc, ky = _keys(seed, 3)
    X = jax.random.normal(kx, (n, p), jnp.float32) / float(np.sqrt(p))
    mu = jnp.exp(0.5 + X @ (0.5 * jax.random.normal(kc, (p,), jnp.float32)))
    if kind == "poisson":
        y = jax.random.poisson(ky, mu).astype(jnp.float32)
    else:
        y = jax.random.gamma(ky, 2.0, (n,), jnp.float32) * mu / 2.0
    return X, y


def _multinomial_data(n, p, K, seed=3):
    kx, kb, kg = _keys(seed, 3)
    X = jax.random.normal(kx, (n, p), jnp.float32) / float(np.sqrt(p))
    B = jax.random.normal(kb, (p, K), jnp.float32)
    y = jnp.argmax(X @ B + jax.random.gumbel(kg, (n, K), jnp.float32), axis=1)
    return X, y


def _ols_data(n, p, seed=5):
    kx, kb, ke = _keys(seed, 3)
    X = jax.random.normal(kx, (n, p), jnp.float32)
    y = X @ jax.random.normal(kb, (p,), jnp.float32) + 1.0 + \
        jax.random.normal(ke, (n,), jnp.float32)
    return X, y


def _lasso_data(n, p, k=20, seed=0):
    kx, kb, ke = _keys(seed, 3)
    X = jax.random.normal(kx, (n, p), jnp.float32)
    beta = jnp.zeros(p, jnp.float32).at[:k].set(jax.random.normal(kb, (k,), jnp.float32))
    return X, X @ beta + jax.random.normal(ke, (n,), jnp.float32)


def _insurance_data(n, tweedie, seed=7):
    """8 categoricals (328 levels, reference coding: 320 one-hot columns) + 3 numeric."""
    keys = _keys(seed, 20)
    levels = (2, 5, 12, 20, 35, 50, 84, 120)
    eta = jnp.full((n,), -2.0, jnp.float32)
    cols = []
    for i, k in enumerate(levels):
        codes = jax.random.randint(keys[2 * i], (n,), 0, k)
        eta = eta + (0.3 * jax.random.normal(keys[2 * i + 1], (k,), jnp.float32))[codes]
        cols.append(jax.nn.one_hot(codes, k, dtype=jnp.float32)[:, 1:])
    num = jax.random.normal(keys[16], (n, 3), jnp.float32)
    X = jnp.concatenate(cols + [num], axis=1)
    mu = jnp.exp(eta + num @ jnp.array([0.2, -0.1, 0.05], jnp.float32))
    y = jax.random.poisson(keys[17], mu).astype(jnp.float32)
    if tweedie:  # compound Poisson-gamma
        y = y * jax.random.gamma(keys[18], 2.0, (n,), jnp.float32) * 0.5
    return X, y


def _batch_data(m, n, p, seed=11):
    kx, kb, ky = _keys(seed, 3)
    X = jax.random.normal(kx, (n, p), jnp.float32) / float(np.sqrt(p))
    beta = 0.3 * jax.random.normal(kb, (m, p), jnp.float32)
    Y = jax.random.poisson(ky, jnp.exp(0.5 + beta @ X.T)).astype(jnp.float32)
    return X, Y


# ---------------------------------------------------------------------- the workloads


def checks(small):
    """The workloads, at accelerator sizes (20-50x `python -m benchmarks`; the wide lasso
    grows in n, to 20,000 x 2,000) or tiny ones."""
    def size(full, tiny):
        return tiny if small else full

    n_glm, n_mult, n_enet = size(10_000_000, 20_000), size(5_000_000, 10_000), \
        size(2_500_000, 10_000)
    n_ols, n_path, n_wide = size(20_000_000, 20_000), size(200_000, 2_000), size(20_000, 400)
    p_path, p_wide = size(1_000, 50), size(2_000, 100)
    n_ins, m_batch = size(12_000_000, 20_000), size(200_000, 500)
    Bin, Poi = lj.families.Binomial(), lj.families.Poisson()
    return [
        _fit_check("logistic", f"logistic n={n_glm} p=100",
                   lambda: _logistic_data(n_glm, 100), Bin),
        _fit_check("poisson", f"Poisson n={n_glm} p=100",
                   lambda: _count_data(n_glm, 100, "poisson"), Poi),
        _fit_check("gamma", f"Gamma (log link) n={n_glm} p=50",
                   lambda: _count_data(n_glm, 50, "gamma"),
                   lj.families.Gamma(link=lj.links.Log())),
        _fit_check("multinomial", f"multinomial n={n_mult} p=50 K=5 L2 1e-4",
                   lambda: _multinomial_data(n_mult, 50, 5),
                   lj.families.Multinomial(n_classes=5), lj.penalties.L2(alpha=1e-4), k=5),
        _fit_check("enet_logistic", f"elastic-net logistic n={n_enet} p=100",
                   lambda: _logistic_data(n_enet, 100, seed=4), Bin,
                   lj.penalties.ElasticNet(alpha=1e-3, l1_ratio=0.5)),
        _fit_check("ols", f"OLS n={n_ols} p=50", lambda: _ols_data(n_ols, 50),
                   lj.families.Gaussian()),
        _fit_check("insurance_poisson", f"insurance-shaped Poisson n={n_ins} p=323",
                   lambda: _insurance_data(n_ins, False), Poi),
        _fit_check("insurance_tweedie", f"insurance-shaped Tweedie(1.5) n={n_ins} p=323",
                   lambda: _insurance_data(n_ins, True), lj.families.Tweedie(power=1.5)),
        _batch_check(m_batch, 500, 10),
        _expression_check(*size((60_000, 200), (400, 12))),
        # last: coordinate descent is a sequence of small steps, slowest on an accelerator
        _path_check("lasso_path", n_path, p_path, cv=False),
        _path_check("lasso_cv", n_path, p_path, cv=True),
        _path_check("wide_lasso", n_wide, p_wide, cv=False, seed=6),
    ]


def _path_check(name, n, p, cv, seed=0):
    def make():
        X, y = _lasso_data(n, p, seed=seed)
        return X, y, lj.alpha_grid(X, y, n_alphas=100)

    def call(X, y, alphas):
        if cv:
            return lj.cv_path(X, y, alphas=alphas, folds=5).path
        return lj.path(X, y, alphas=alphas)

    def cost(r, data):
        # the Gram (X read once); the sweeps on p x p are latency, not bytes or FLOPs
        sweeps = int(np.sum(np.asarray(r.n_iter)))
        return Cost(n * p * F32, _gram_flops(n, p), 1, f"path ({sweeps} sweeps in all)")
    what = "5-fold cv_path" if cv else name.replace("_", " ")
    return Check(name, f"{what} 100 alphas n={n} p={p}", make, call, cost,
                 lambda r: float(np.mean(np.asarray(r.converged))))


def _batch_check(m, n, p):
    def cost(r, data):
        it = float(np.mean(np.asarray(r.n_iter)))
        return Cost(it * 3 * m * n * F32, it * m * (_gram_flops(n, p) + 4 * n * p), it,
                    "Newton iteration (mean over problems)")
    return Check("batch", f"fit_batch: {m} Poisson GLMs n={n} p={p}",
                 lambda: _batch_data(m, n, p),
                 lambda X, Y: lj.fit_batch(X, Y, family="poisson"), cost,
                 lambda r: float(np.mean(np.asarray(r.converged))))


def _expression_counts(genes, samples, seed=13):
    """Counts as DESeq2's makeExampleDESeqDataSet draws them (host numpy: the pipeline takes
    a host matrix and moves it in blocks): NB with dispersion 4 / mean + 0.1, 10% of genes
    two-fold changed between two conditions, size factors around 1, one all-zero gene."""
    rng = np.random.default_rng(seed)
    condition = np.repeat([0.0, 1.0], [samples // 2, samples - samples // 2])
    base = rng.exponential(250.0, genes) + 1.0
    lfc = np.where(rng.random(genes) < 0.1, rng.choice([-1.0, 1.0], genes), 0.0)
    sf = np.exp(rng.normal(0.0, 0.2, samples))
    mu = base[:, None] * 2.0 ** (lfc[:, None] * condition[None, :]) * sf[None, :]
    alpha = 4.0 / base + 0.1
    counts = rng.negative_binomial(1.0 / alpha[:, None], 1.0 / (1.0 + alpha[:, None] * mu))
    counts[0] = 0
    return counts, np.column_stack([np.ones(samples), condition])


def _expression_check(genes, samples):
    """DESeq2's pipeline (`linjax.expression.differential_expression`): the counts cross to
    the device in blocks, so the model counts host-to-device bytes as well as the passes."""
    from linjax import expression

    def call(counts, design):
        # DESeq2's answers need float64 (the other workloads run in float32)
        with jax.enable_x64(True):
            return expression.differential_expression(counts, design, contrast=1)

    def cost(table, data):
        # per gene: ~14 dispersion trials, ~10 IRLS steps, a few statistics passes over its
        # counts (float64 on the device)
        passes = 30
        return Cost(passes * data[0].size * 8, passes * data[0].size * 40, 1,
                    "whole pipeline (~30 passes over the counts)")

    return Check("expression", f"differential expression {genes} genes x {samples} samples",
                 lambda: _expression_counts(genes, samples), call, cost,
                 lambda table: float(np.mean(np.asarray(table["status"]) == 0)))


# -------------------------------------------------------------------------- the timing


def time_check(check, repeats=3, cap_s=60.0):
    """(cold, warm, result, data): cold includes the compile; warm: median of `repeats`
    (none when the cold call took over cap_s: warm is then the cold time)."""
    data = jax.block_until_ready(check.make())
    t = time.perf_counter()
    out = jax.block_until_ready(check.call(*data))
    cold = time.perf_counter() - t
    times = []
    for _ in range(repeats if cold <= cap_s else 0):
        del out
        t = time.perf_counter()
        out = jax.block_until_ready(check.call(*data))
        times.append(time.perf_counter() - t)
    return cold, statistics.median(times) if times else cold, out, data


def report(check, peak_bw, peak_flops, repeats, cap_s):
    """One row: times, iterations, achieved rates and the floor of the cost model."""
    cold, warm, out, data = time_check(check, repeats, cap_s)
    c = check.cost(out, data)
    floor = max(c.bytes / peak_bw, c.flops / peak_flops)
    row = {"workload": check.title, "cold s": cold, "warm s": warm, "iterations": c.iters,
           "ms / iteration": warm / c.iters * 1e3, "GB/s": c.bytes / warm / 1e9,
           "TFLOP/s": c.flops / warm / 1e12, "of floor": floor / warm,
           "converged": check.converged(out), "unit": c.unit,
           "dtype": str(out.coef.dtype) if hasattr(out, "coef") else "float64"}
    del out, data
    gc.collect()
    return row


def _fmt(row):
    return (f"| {row['workload']} | {row['cold s']:.2f} | {row['warm s']:.4f} | "
            f"{row['iterations']:.3g} | {row['ms / iteration']:.3g} | {row['GB/s']:.0f} | "
            f"{row['TFLOP/s']:.3g} | {row['of floor']:.0%} | {row['converged']:.0%} | "
            f"{row['unit']} |")


HEADER = ("| workload | cold s | warm s | iterations | ms / iteration | GB/s | TFLOP/s | "
          "of floor | converged | an iteration is |\n|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workloads", nargs="*", help="names to run (default: all)")
    ap.add_argument("--small", action="store_true", help="tiny sizes, for a CPU smoke run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cap", type=float, default=60.0,
                    help="no warm repeats for a workload whose first call took longer (s)")
    ap.add_argument("--out", help="also write the table (markdown) to this file, row by row")
    args = ap.parse_args(argv)
    todo = checks(args.small)
    unknown = set(args.workloads) - {c.name for c in todo}
    if unknown:
        ap.error(f"unknown workload(s) {sorted(unknown)}; choose from "
                 f"{[c.name for c in todo]}")
    dev = jax.devices()[0]
    head = [f"jax {jax.__version__}, device: {dev.platform} {getattr(dev, 'device_kind', '')}, "
            f"x64={jax.config.jax_enable_x64}"]
    if dev.platform == "cpu" and not args.small:
        head.append("note: no accelerator found; these CPU figures are not GPU figures")
    band, mat = (64 * 2**20, 1024) if args.small else (2 * 2**30, 8192)
    peak_bw, peak_flops = measured_bandwidth(band), measured_flops(mat)
    with jax.default_matmul_precision("highest"):
        exact_flops = measured_flops(mat)
    head.append(f"measured peaks: {peak_bw / 1e9:.1f} GB/s (x*2+1 over {band / 2**20:.0f} "
                f"MiB), {peak_flops / 1e12:.2f} TFLOP/s (float32 {mat}^3 matmul at the "
                f"default precision; {exact_flops / 1e12:.2f} at 'highest')")
    print("\n".join(head), flush=True)
    print(HEADER, flush=True)
    rows = []
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(head) + "\n\n" + HEADER + "\n")
    for check in todo:
        if args.workloads and check.name not in args.workloads:
            continue
        try:
            row = report(check, peak_bw, peak_flops, args.repeats, args.cap)
            line = _fmt(row)
        except Exception as err:  # noqa: BLE001 - one failing workload does not stop the rest
            row = {"workload": check.title, "error": f"{type(err).__name__}: {err}"}
            line = f"| {check.title} | failed: {row['error'].splitlines()[0][:200]} |"
        rows.append(row)
        print(line, flush=True)
        if args.out:  # row by row: a run stopped at its time limit keeps what it measured
            with open(args.out, "a") as f:
                f.write(line + "\n")
    return rows


if __name__ == "__main__":
    main()
