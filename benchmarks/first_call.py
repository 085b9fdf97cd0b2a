"""First calls in a fresh process: what compilation costs, and what the programs are made of.

    python -m benchmarks.first_call [case ...] [--out DIR]     (or: python -m benchmarks first_call)

Each case runs three times, each in a new Python process: with an empty persistent
compilation cache (cold), again with the cache the first run filled (cached), and once
more for the peer where there is one (scikit-learn's first call in a new process). The
child reports the first call's wall time and its process CPU time (all threads: XLA
compiles on several), the time of a second, warm call, and JAX's own measurements of the
first call: tracing (Python to jaxpr), lowering (jaxpr to StableHLO) and XLA compilation,
summed over every program compiled, and how many programs that was.
Kernel counts come from XLA's optimized HLO (XLA_FLAGS=--xla_dump_to): fusions (each one
an LLVM-compiled kernel on CPU), library calls (custom calls: LAPACK, ...), and while
loops, summed over the programs the first call compiled. Import time is not included.
Writes FIRST_CALL.md into benchmarks/ (or --out).
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

N, P = 200_000, 100


def _glm_data(kind, n=N, p=P, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) / np.sqrt(p)
    eta = X @ rng.normal(0, 0.3, p) * 3
    if kind == "binomial":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    elif kind == "nb":
        mu = np.exp(0.5 + eta)
        y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return X, y


def case_fit_logistic():
    import linjax as lj
    X, y = _glm_data("binomial")
    return lambda: lj.fit(X, y, family="binomial").coef


def case_fit_poisson():
    import linjax as lj
    X, y = _glm_data("poisson")
    return lambda: lj.fit(X, y, family="poisson").coef


def case_fit_poisson_new_n():
    """A new n inside a compiled bucket: fits of n = 20,000 and 19,500 come first (not timed;
    a large design shares its bucket from the second row count on), then n = 19,000 (the
    first call) and n = 20,000 again (the warm call)."""
    import linjax as lj
    X, y = _glm_data("poisson", n=20_000)
    for n in (20_000, 19_500):
        lj.fit(X[:n], y[:n], family="poisson").coef.block_until_ready()
    calls = iter([19_000, 20_000])

    def call():
        n = next(calls)
        return lj.fit(X[:n], y[:n], family="poisson").coef
    return call


def case_fit_nb_alpha():
    import linjax as lj
    X, y = _glm_data("nb", n=20_000, p=10)
    return lambda: lj.fit(X, y, family=lj.families.NegativeBinomial(alpha=None)).coef


def case_floor_logistic():
    """Not linjax: the smallest JAX program that fits the logistic case, for scale. Newton
    from zero without an intercept, start, step control or statistics: a float32 Gram
    (X' diag(w) X in one product), a float64 gradient, LAPACK's Cholesky, at most 25 steps
    until max |step| <= 1e-10 (1 + max |b|). What any JAX fit of this size pays on this
    machine for tracing, lowering and compiling one program (and, roughly, for running it)."""
    import jax
    import jax.numpy as jnp

    import linjax  # noqa: F401  (only for its persistent-cache setting, as in the other cases)

    X, y = _glm_data("binomial")

    @jax.jit
    def newton(X, y):
        def going(carry):
            b, i, size = carry
            return (i < 25) & (size > 1e-10 * (1 + jnp.max(jnp.abs(b))))

        def step(carry):
            b, i, _ = carry
            mu = jax.nn.sigmoid(X @ b)
            Xs = X.astype(jnp.float32)
            H = (Xs.T @ (Xs * (mu * (1 - mu)).astype(jnp.float32)[:, None])).astype(X.dtype)
            d = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(H), True), (y - mu) @ X)
            return b + d, i + 1, jnp.max(jnp.abs(d))

        return jax.lax.while_loop(going, step, (jnp.zeros(X.shape[1]), 0, jnp.inf))[0]

    return lambda: newton(jax.device_put(X), jax.device_put(y))


def case_fit_batch_500():
    import linjax as lj

    from .bench_batch import data as batch_data
    X, Y = batch_data(500, 500, 10)
    return lambda: lj.fit_batch(X, Y, family="poisson").params["coef"]


def case_lasso_cv():
    import linjax as lj
    rng = np.random.default_rng(2)
    X = rng.standard_normal((5_000, 50))
    y = X[:, :5] @ np.ones(5) + rng.standard_normal(5_000)
    return lambda: lj.cv_path(X, y, alphas=np.geomspace(1.0, 1e-3, 30), folds=5).alpha_min


def case_demo():
    import io

    from linjax import demo
    here = tempfile.mkdtemp()
    return lambda: demo.run(figure=os.path.join(here, "demo.png"), out=io.StringIO())


def peer_sklearn_logistic():
    from sklearn.linear_model import LogisticRegression
    X, y = _glm_data("binomial")
    return lambda: LogisticRegression(penalty=None, max_iter=1000).fit(X, y).coef_


def peer_sklearn_poisson():
    from sklearn.linear_model import PoissonRegressor
    X, y = _glm_data("poisson")
    return lambda: PoissonRegressor(alpha=0.0, max_iter=1000).fit(X, y).coef_


CASES = {
    "fit_logistic": ("lj.fit, logistic, n=200,000, p=100", case_fit_logistic,
                     peer_sklearn_logistic),
    "fit_poisson": ("lj.fit, Poisson, n=200,000, p=100", case_fit_poisson,
                    peer_sklearn_poisson),
    "fit_poisson_new_n": ("lj.fit, Poisson, p=100, a new n=19,000 in a compiled bucket",
                          case_fit_poisson_new_n, None),
    "fit_nb_alpha": ("lj.fit, negative binomial, alpha estimated, n=20,000, p=10",
                     case_fit_nb_alpha, None),
    "floor_logistic": ("floor: a minimal JAX Newton (not linjax), logistic, same data",
                       case_floor_logistic, None),
    "fit_batch_500": ("fit_batch, 500 Poisson problems, n=500, p=10", case_fit_batch_500, None),
    "lasso_cv": ("cv_path, lasso, n=5,000, p=50, 30 alphas, 5 folds", case_lasso_cv, None),
    "demo": ("linjax demo (its fitting)", case_demo, None),
}


def _child(name, peer):
    """Runs in the new process: times the first and a second call, prints JSON."""
    import jax
    import jax.monitoring as mon

    totals = {"trace": 0.0, "lower": 0.0, "compile": 0.0, "programs": 0, "cache_hits": 0}
    events = {"/jax/core/compile/jaxpr_trace_duration": "trace",
              "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
              "/jax/core/compile/backend_compile_duration": "compile"}

    def duration(event, secs, **_):
        if event in events and totals.get("on"):
            totals[events[event]] += secs
            totals["programs"] += event.endswith("backend_compile_duration")

    def count(event, **_):
        if event == "/jax/compilation_cache/cache_hits" and totals.get("on"):
            totals["cache_hits"] += 1

    mon.register_event_duration_secs_listener(duration)
    mon.register_event_listener(count)
    jax.config.update("jax_enable_x64", True)
    _, make, make_peer = CASES[name]
    call = (make_peer if peer else make)()
    dump = _dump_dir()
    before = set(dump.glob("*after_optimizations.txt")) if dump else set()
    totals["on"] = True
    start, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(call())
    first, cpu = time.perf_counter() - start, time.process_time() - cpu
    totals["on"] = False
    start = time.perf_counter()
    if name != "demo":
        jax.block_until_ready(call())
    warm = time.perf_counter() - start if name != "demo" else float("nan")
    totals.pop("on")
    if dump:  # the programs the first call compiled (its warm call compiles none)
        totals["kernels"] = _kernels(set(dump.glob("*after_optimizations.txt")) - before)
    print("RESULT " + json.dumps(dict(totals, first=first, first_cpu=cpu, warm=warm)))


def _dump_dir():
    found = re.search(r"--xla_dump_to=(\S+)", os.environ.get("XLA_FLAGS", ""))
    return Path(found.group(1)) if found else None


def _kernels(files):
    """(fusions, custom calls, while loops) over the optimized modules XLA dumped."""
    fusions = calls = loops = 0
    for f in files:
        text = f.read_text()
        fusions += len(re.findall(r"= \S+ fusion\(", text))
        calls += len(re.findall(r"custom-call\(", text))
        loops += len(re.findall(r"\swhile\(", text))
    return fusions, calls, loops


def measure(name, cache_dir, peer=False, dump=None):
    env = dict(os.environ, LINJAX_COMPILATION_CACHE=cache_dir, JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if dump:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_dump_to={dump}").strip()
    out = subprocess.run([sys.executable, "-m", "benchmarks.first_call", "--child", name]
                         + (["--peer"] if peer else []), env=env, capture_output=True,
                         text=True, cwd=HERE.parent, timeout=1200)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode or not line:
        raise RuntimeError(f"{name}: {out.stderr[-2000:]}")
    return json.loads(line[0][len("RESULT "):])


def run(names):
    rows = []
    for name in names:
        title, _, peer = CASES[name]
        cache = tempfile.mkdtemp(prefix="linjax-first-call-")
        dump = tempfile.mkdtemp(prefix="linjax-hlo-")
        cold = measure(name, cache, dump=dump)
        cached = measure(name, cache)
        peer_row = measure(name, cache, peer=True) if peer else None
        rows.append((name, title, cold, cached, peer_row))
        f, c, w = cold["kernels"]
        print(f"{title:58.58s} first {cold['first']:.2f}s (CPU {cold['first_cpu']:.2f}s; "
              f"trace {cold['trace']:.2f} lower "
              f"{cold['lower']:.2f} compile {cold['compile']:.2f}, {cold['programs']} programs,"
              f" {f} fusions, {c} calls, {w} loops) warm {cold['warm']:.3f}s; cached first "
              f"{cached['first']:.2f}s" + (f"; peer first {peer_row['first']:.2f}s"
                                          if peer_row else ""), flush=True)
    return rows


def _t(x):
    return "-" if x is None or x != x else f"{x:.2f}"


def table(rows):
    lines = ["| entry point | first call (s) | its CPU time (s) | trace (s) | lower (s) "
             "| compile (s) | programs "
             "| fusions | library calls | while loops | warm (s) | first call, cache warm (s) "
             "| scikit-learn first call (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for _, title, cold, cached, peer in rows:
        f, c, w = cold["kernels"]
        lines.append(f"| {title} | {_t(cold['first'])} | {_t(cold.get('first_cpu'))} | "
                     f"{_t(cold['trace'])} | "
                     f"{_t(cold['lower'])} | {_t(cold['compile'])} | {cold['programs']} | {f} | "
                     f"{c} | {w} | {_t(cold['warm'])} | {_t(cached['first'])} | "
                     f"{_t(peer['first']) if peer else '-'} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.first_call", description=__doc__)
    ap.add_argument("cases", nargs="*", help=f"default: all of {list(CASES)}")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child, args.peer)
    names = args.cases or list(CASES)
    unknown = [c for c in names if c not in CASES]
    if unknown:
        ap.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    started = datetime.datetime.now().astimezone()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = run(names)
    import jax
    cmd = "python -m benchmarks.first_call " + " ".join(argv if argv is not None
                                                        else sys.argv[1:])
    end_load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    text = (f"# First calls in a fresh process\n\nGenerated by `{cmd.strip()}` on "
            f"{started:%Y-%m-%d %H:%M %Z}; {os.cpu_count()} CPUs, jax {jax.__version__}; load "
            f"average at the start {load}, at the end {end_load}.\n\n"
            + __doc__.split("\n\n", 2)[2].split("Writes")[0].strip() + "\n\n" + table(rows)
            + "\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "FIRST_CALL.md").write_text(text)
    print(f"wrote {out / 'FIRST_CALL.md'}")
    return rows


if __name__ == "__main__":
    main()
