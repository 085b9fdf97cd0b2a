"""Structured designs (`linjax.designs`) against glum and scikit-learn on the same inputs.

Registered workloads (`python -m benchmarks insurance_frame_poisson ...`):

- insurance_frame_poisson / insurance_frame_tweedie: the insurance-shaped data of the
  registry's insurance workloads (same generator and seed: 8 categoricals with 2 to 120
  levels, 320 indicator columns after each first level, and 3 numerics; 600,000 rows full,
  60,000 quick) as a pandas DataFrame with `category` columns. linjax gets the frame
  (categorical blocks), glum gets the same frame (its tabmat categorical path,
  drop_first=True), both unpenalized; objectives are linjax's (mean negative
  log-likelihood) at each tool's coefficients, matched by name.
- sparse_logistic: CSR, n = p = 100,000 at 0.1% density (quick: 20,000 at 0.5%), L2
  logistic with alpha = 1e-4 (scikit-learn's C = 1 / (n alpha)); linjax gets the scipy
  matrix ("auto": truncated Newton, `NewtonCG`, the conversion to `Sparse` included in its
  time), scikit-learn's lbfgs, newton-cg and liblinear the same CSR.

By hand (not in the registry: minutes and gigabytes):

    python -m benchmarks.bench_designs big [n] [levels] [tool ...]  # 10M rows, 10,000 levels
    python -m benchmarks.bench_designs frame [n] [repeats]   # the insurance frame alone

`big`: n rows (default 10,000,000), one factor with `levels` levels (10,000) and 20 numeric
columns, Poisson with L2 (alpha = 1e-6); each tool runs in its own process and reports
its wall and CPU time and peak resident memory (getrusage). The numerics are by default
64-byte aligned (JAX uses them in place); `--plain` gives numpy's own (n, 20) array (what a
user has: 16 bytes past a boundary, read in place by `linjax.designs.in_place`),
`--columns` one contiguous array per column (read_csv's layout), and `--frame` gives linjax
a pandas DataFrame (a `category` column and the 20 floats) instead of a `Split`:

    python -m benchmarks.bench_designs big_one linjax-newton 10000000 10000 --plain
    python -m benchmarks.bench_designs big_one linjax-newton 10000000 10000 --plain --frame
"""

import resource
import subprocess
import sys
import time

import numpy as np

LEVELS = (2, 5, 12, 20, 35, 50, 84, 120)


def insurance_frame(n, dtype=np.float64, seed=7):
    """(DataFrame, counts, severity): the registry's `_insurance_data` draws (same seed and
    order), the categoricals kept as `category` columns c0..c7 (levels l0, l1, ...)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols, eta = {}, np.full(n, -2.0)
    for j, k in enumerate(LEVELS):
        codes = rng.integers(0, k, size=n)
        eta += rng.normal(scale=0.3, size=k)[codes]
        cols[f"c{j}"] = pd.Categorical.from_codes(codes, [f"l{i}" for i in range(k)])
    num = rng.normal(size=(n, 3))
    eta += num @ np.array([0.2, -0.1, 0.05])
    for j in range(3):
        cols[f"x{j}"] = num[:, j].astype(dtype)
    counts = rng.poisson(np.exp(eta)).astype(float)
    severity = counts * rng.gamma(2.0, 0.5, size=n)
    return pd.DataFrame(cols), counts.astype(dtype), severity.astype(dtype)


def _by_name(names, coef_names, coef, intercept):
    """Coefficients in the order `names` from a peer's (coef_names, coef)."""
    where = {name: i for i, name in enumerate(coef_names)}
    return {"coef": np.asarray([coef[where[name]] for name in names], np.float64),
            "intercept": np.asarray(intercept, np.float64)}


def insurance_frame_workload(size, dtype, tweedie=False, n=None):
    import jax
    import jax.numpy as jnp

    import linjax as lj
    from linjax.designs.frames import encode_frame

    from .registry import Tool, Workload, block, pick

    n = pick(size, 600_000, 60_000, 3_000) if n is None else n
    df, counts, severity = insurance_frame(n, dtype)
    if tweedie:
        from glum import TweedieDistribution

        y, fam, glum_fam = severity, lj.families.Tweedie(power=1.5), TweedieDistribution(1.5)
        name, title = "insurance_frame_tweedie", "insurance-shaped Tweedie(1.5), DataFrame"
    else:
        y, fam, glum_fam = counts, lj.families.Poisson(), "poisson"
        name, title = "insurance_frame_poisson", "insurance-shaped Poisson, DataFrame"
    design, encoding = encode_frame(df)

    def linjax_frame():
        return block(lj.fit(df, y, fam).params)

    def glum_frame():
        from glum import GeneralizedLinearRegressor

        m = GeneralizedLinearRegressor(family=glum_fam, alpha=0.0, drop_first=True,
                                       gradient_tol=1e-8).fit(df, y)
        return _by_name(encoding.names, m.feature_names_, m.coef_, m.intercept_)

    f = jax.jit(lambda p, X, y: lj.objective(p, X, y, fam))
    yj = jnp.asarray(y)
    tools = [Tool("linjax fit (DataFrame, categorical blocks)", linjax_frame, linjax=True),
             Tool("glum (DataFrame, tabmat categoricals)", glum_frame)]
    return Workload(name, f"{title} n={n} (8 categoricals, 320 columns, + 3 numeric)", tools,
                    lambda p: float(f(jax.tree.map(jnp.asarray, p), design, yj)))


def insurance_frame_poisson(size, dtype):
    return insurance_frame_workload(size, dtype)


def insurance_frame_tweedie(size, dtype):
    return insurance_frame_workload(size, dtype, tweedie=True)


def sparse_data(n, p, density, seed=3):
    """(CSR X, y): X with `density` of its entries N(0, 1) at random positions, y from a
    logistic model with 1% of the coefficients non-zero."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    counts = rng.binomial(p, density, size=n)   # entries per row; columns drawn with
    indptr = np.concatenate([[0], np.cumsum(counts)])   # replacement (repeats summed)
    X = sp.csr_matrix((rng.standard_normal(indptr[-1]), rng.integers(0, p, indptr[-1]),
                       indptr), shape=(n, p))
    X.sum_duplicates()
    beta = np.zeros(p)
    beta[rng.choice(p, max(1, p // 100), replace=False)] = rng.normal(scale=2.0,
                                                                      size=max(1, p // 100))
    prob = 1.0 / (1.0 + np.exp(-(X @ beta - 0.5)))
    return X, (rng.random(n) < prob).astype(float)


def sparse_logistic(size, dtype):
    import jax
    import jax.numpy as jnp

    import linjax as lj
    from linjax.designs import Sparse

    from .registry import Tool, Workload, _sk, block, pick

    n, density = pick(size, 100_000, 20_000, 2_000), pick(size, 1e-3, 5e-3, 2e-2)
    X, y = sparse_data(n, n, density)
    X = X.astype(dtype)
    alpha = 1e-4
    pen = lj.penalties.L2(alpha)

    def linjax_sparse():
        return block(lj.fit(X, y, "binomial", penalty=pen).params)

    tools = [Tool("linjax fit (scipy CSR)", linjax_sparse, linjax=True)]
    for solver in ("lbfgs", "newton-cg", "liblinear"):
        def sk(solver=solver):
            from sklearn.linear_model import LogisticRegression

            kw = {"intercept_scaling": 100.0} if solver == "liblinear" else {}
            return _sk(LogisticRegression(C=1.0 / (n * alpha), solver=solver, tol=1e-8,
                                          max_iter=10_000, **kw).fit(X, y))
        tools.append(Tool(f"scikit-learn {solver} (same CSR)", sk))
    design, yj = Sparse.from_scipy(X), jnp.asarray(y)
    f = jax.jit(lambda p, X, y: lj.objective(p, X, y, "binomial", pen))
    return Workload("sparse_logistic", f"sparse L2 logistic n=p={n:,} density {density:g} "
                    f"alpha={alpha:g}", tools,
                    lambda p: float(f(jax.tree.map(jnp.asarray, p), design, yj)))


# -- by hand: the 10M-row factor, each tool in its own process -------------------------------

def big_data(n, levels, p_num=20, seed=0, layout="aligned"):
    """(codes int32 (n,), numeric (n, p_num) float64, y): Poisson counts with a factor effect
    and small numeric effects. layout: "aligned" (the numerics 64-byte aligned, which JAX
    uses in place: `linjax.designs.host`), "plain" (numpy's own array, as np.random,
    np.loadtxt or pandas give: 16 bytes past a boundary; same values), "columns" (each
    column contiguous, as read_csv's frames hold them: an F-order array, other draws)."""
    from linjax.designs.host import aligned_empty

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, levels, size=n, dtype=np.int32)
    if layout == "aligned":
        Z = rng.standard_normal(out=aligned_empty((n, p_num)))
    elif layout == "plain":
        Z = rng.standard_normal((n, p_num))
    elif layout == "columns":
        Z = np.empty((n, p_num), order="F")
        rng.standard_normal(out=Z.T)
    else:
        raise ValueError(f"layout: expected 'aligned', 'plain' or 'columns', got {layout!r}.")
    eta = -0.5 + rng.normal(scale=0.3, size=levels)[codes] + Z @ rng.normal(scale=0.05,
                                                                           size=p_num)
    return codes, Z, rng.poisson(np.exp(eta)).astype(float)


def _peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def big_frame(codes, Z, levels):
    """A pandas DataFrame: the factor as a `category` column g, then Z's columns x0.. (pandas
    keeps Z as its float block: no copy)."""
    import pandas as pd

    df = pd.DataFrame(Z, columns=[f"x{j}" for j in range(Z.shape[1])], copy=False)
    df.insert(0, "g", pd.Categorical.from_codes(codes, np.arange(levels).astype(str)))
    return df


def big_one(tool, n, levels, alpha=1e-6, layout="aligned", frame=False):
    """One tool on the big problem (run in a fresh process): prints seconds, peak GB, CPU
    seconds of the fit and of the process, the load, and the objective (mean Poisson nll +
    alpha/2 |b|^2, numpy) at its coefficients. layout: `big_data`'s; frame: linjax gets the
    DataFrame of `big_frame` (glum always does)."""
    import os

    import jax

    jax.config.update("jax_enable_x64", True)
    codes, Z, y = big_data(n, levels, layout=layout)
    df = big_frame(codes, Z, levels) if frame or not tool.startswith("linjax") else None
    data_gb = _peak_gb()
    start, cpu = time.perf_counter(), time.process_time()
    if tool.startswith("linjax"):  # linjax (auto), -newton, -lbfgs, -newton-dense (no Schur)
        import linjax as lj
        from linjax.designs import Categorical, Dense, Split

        X = df if frame else Split((Categorical.from_codes(codes, levels, drop_first=True),
                                    Dense(Z)))
        solver = tool.partition("-")[2] or "auto"
        if solver == "newton-dense":
            solver = lj.solvers.Newton(schur=False)
        r = lj.fit(X, y, "poisson", penalty=lj.penalties.L2(alpha), solver=solver)
        coef, b0 = np.asarray(r.coef), float(r.intercept)
        fac, num = coef[: levels - 1], coef[levels - 1:]
        extra = f"solver {r.solver}, {int(r.n_iter)} iterations, status {int(r.status)}"
    else:
        from glum import GeneralizedLinearRegressor

        m = GeneralizedLinearRegressor(family="poisson", alpha=alpha, l1_ratio=0.0,
                                       drop_first=True, gradient_tol=1e-8).fit(df, y)
        fac, num, b0 = m.coef_[: levels - 1], m.coef_[levels - 1:], float(m.intercept_)
        extra = f"{m.n_iter_} iterations"
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    eta = b0 + np.concatenate([[0.0], fac])[codes] + Z @ num
    obj = np.mean(np.exp(eta) - y * eta) + alpha / 2 * (fac @ fac + num @ num)
    what = f"{tool} ({layout}{', DataFrame' if frame else ''})"
    print(f"{what}: {seconds:.1f} s, {cpu:.1f} CPU s (process {time.process_time():.1f}), "
          f"peak RSS {_peak_gb():.2f} GiB (data alone {data_gb:.2f} GiB), load "
          f"{os.getloadavg()[0]:.1f}, objective {obj:.12f}, {extra}", flush=True)


def big(n=10_000_000, levels=10_000, tools=("linjax", "linjax-lbfgs", "glum"), flags=()):
    """Each tool in its own process (its own peak memory); flags: `big_one`'s."""
    for tool in tools:
        subprocess.run([sys.executable, "-m", "benchmarks.bench_designs", "big_one", tool,
                        str(n), str(levels), *flags], check=False)


def frame(n=600_000, repeats=2):
    """The insurance frame workloads alone, printed (registry's timing loop)."""
    from .registry import run

    for tweedie in (False, True):
        wl = insurance_frame_workload("full", np.float64, tweedie, n)
        for row in run(wl, repeats=repeats):
            print(f"{wl.name:26s} {row.tool:44s} cold {row.cold:8.2f} s  warm {row.warm:8.2f} s"
                  f"  objective {row.objective:.12f} {row.error}", flush=True)


def _flags(args):
    """(--plain | --columns, --frame) -> big_one's layout and frame."""
    layout = "plain" if "--plain" in args else "columns" if "--columns" in args else "aligned"
    return {"layout": layout, "frame": "--frame" in args}


if __name__ == "__main__":
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if args and args[0] == "big":
        big(*(int(a) for a in args[1:3]), *([tuple(args[3:])] if args[3:] else
                                              [("linjax", "linjax-lbfgs", "glum")]), flags)
    elif args and args[0] == "big_one":
        big_one(args[1], *(int(a) for a in args[2:4]), **_flags(flags))
    elif args and args[0] == "frame":
        frame(*(int(a) for a in args[1:3]))
    else:
        print(__doc__)
