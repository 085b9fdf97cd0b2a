"""python -m benchmarks [workload ...] [--quick] [--no-float32] [--repeats 3] [--out DIR]
python -m benchmarks first_call [case ...]     (first calls in fresh processes: compile costs)

Runs the workloads of `benchmarks.registry` (default: all, plus float32 variants), prints
each row as it finishes, and writes RESULTS.md and results.png (into benchmarks/, or
--out). Times: warm = median of --repeats calls after the first (in rounds over the
tools); cold = the first call (tracing and XLA compilation included for linjax); cold,
cached = linjax's first call once the persistent compilation cache (a fresh directory per
run) holds the program. Objective: the same float64 formula for every tool
(`lj.objective`); "gap" is (f - f_min) / |f_min| over the row's tools.
Ratio: a tool's warm time over the fastest peer's (non-linjax) warm time.
"""

import argparse
import datetime
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np

from . import registry as R

HERE = Path(__file__).resolve().parent


def machine():
    import jax
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"jax {jax.__version__} on {jax.devices()[0].platform}; load average (1/5/15 min) "
            f"{load}")


def versions():
    out = []
    for mod in ("sklearn", "statsmodels", "glum", "skglm", "glmax", "nemos"):
        try:
            out.append(f"{mod} {__import__(mod).__version__}")
        except Exception:  # noqa: BLE001
            out.append(f"{mod} (not installed)")
    return ", ".join(out)


def annotate(rows):
    """Per workload: gap to the best objective and ratio to the fastest peer."""
    by = {}
    for r in rows:
        by.setdefault(r.workload, []).append(r)
    for group in by.values():
        objs = [r.objective for r in group if not r.error and math.isfinite(r.objective)]
        fmin = min(objs) if objs else math.nan
        peers = [r.warm for r in group if not r.linjax and not r.error]
        best = min(peers) if peers else math.nan
        for r in group:
            r.extra["gap"] = (r.objective - fmin) / max(abs(fmin), 1e-300)
            r.extra["ratio"] = r.warm / best if best == best else math.nan
    return by


def fmt_t(x):
    return "-" if not math.isfinite(x) else (f"{x:.3g}" if x < 100 else f"{x:.0f}")


def table(rows):
    lines = ["| workload | tool | warm (s) | cold (s) | cold, cached (s) | objective | gap | "
             "x best peer |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.title} | {r.tool} | - | - | - | failed: {r.error} | | |")
            continue
        tool = f"**{r.tool}**" if r.linjax else r.tool
        warm = fmt_t(r.warm) + (" (cold only)" if r.extra.get("cold only") else "")
        ratio = r.extra["ratio"]
        ratio_s = f"**{ratio:.2f}x**" if r.linjax else f"{ratio:.2f}x"
        cached = fmt_t(r.extra["cold cached"]) if "cold cached" in r.extra else ""
        lines.append(f"| {r.title} | {tool} | {warm} | {fmt_t(r.cold)} | {cached} | "
                     f"{r.objective:.10g} | {r.extra['gap']:.1e} | {ratio_s} |")
    return "\n".join(lines)


def chart(by, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names, ours, best = [], [], []
    for name, group in by.items():
        lj_rows = [r for r in group if r.linjax and not r.error]
        peers = [r for r in group if not r.linjax and not r.error]
        if not lj_rows or not peers:
            continue
        names.append(name)
        ours.append(lj_rows[0].warm)
        best.append(min(r.warm for r in peers))
    if not names:
        return
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.5))
    ax.barh(y - 0.2, ours, 0.4, label="linjax (warm)")
    ax.barh(y + 0.2, best, 0.4, label="fastest peer (warm)")
    ax.set_yticks(y, names)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("seconds (median, log scale)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["first_call"]:  # first calls in fresh processes (benchmarks/first_call.py)
        from . import first_call
        return first_call.main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("workloads", nargs="*", help=f"default: all of {list(R.WORKLOADS)}")
    ap.add_argument("--quick", action="store_true", help="about a tenth of the full sizes")
    ap.add_argument("--size", choices=R.SIZES, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cap", type=float, default=60.0,
                    help="no warm repeats for a tool whose first call took longer (s)")
    ap.add_argument("--no-float32", action="store_true")
    ap.add_argument("--tools", nargs="*", default=None, help="substrings of tool names")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--no-cache", action="store_true",
                    help="no persistent compilation cache (no 'cold, cached' column)")
    args = ap.parse_args(argv)
    if not args.no_cache:
        # A fresh directory: the first call compiles (cold); "cold, cached" then times a
        # call after jax.clear_caches(), i.e. a new process with the cache on disk, which
        # is what the estimators and the CLI get by default (linjax._cache).
        import tempfile

        import jax
        cache_dir = tempfile.mkdtemp(prefix="linjax-bench-cache-")
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    size = args.size or ("quick" if args.quick else "full")
    names = args.workloads or list(R.WORKLOADS)
    unknown = [w for w in names if w.removesuffix("_f32") not in R.WORKLOADS]
    if unknown:
        ap.error(f"unknown workloads {unknown}; choose from {list(R.WORKLOADS)}")
    jobs = [(w.removesuffix("_f32"), np.float32 if w.endswith("_f32") else np.float64)
            for w in names]
    if not args.workloads and not args.no_float32:
        jobs += [(w, np.float32) for w in R.FLOAT32]
    started = datetime.datetime.now().astimezone()
    head = machine()
    print(head, flush=True)
    rows = []
    for name, dtype in jobs:
        wl = R.WORKLOADS[name](size, dtype)
        if dtype == np.float32:
            wl.name, wl.title = wl.name + "_f32", wl.title + " float32"
        for r in R.run(wl, args.repeats, args.cap, args.tools):
            rows.append(r)
            cached = r.extra.get("cold cached", math.nan)
            print(f"{r.title:60.60s} {r.tool:42.42s} warm {fmt_t(r.warm):>7} cold "
                  f"{fmt_t(r.cold):>7} cached {fmt_t(cached):>6} obj {r.objective:.10g} "
                  f"{r.error}", flush=True)
    by = annotate(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chart(by, out / "results.png")
    cmd = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (f"# linjax benchmark results\n\nGenerated by `{cmd.strip()}` (size: {size}, "
            f"{args.repeats} warm repeats) on {started:%Y-%m-%d %H:%M %Z}.\n\n"
            f"Machine: {head} at the start; at the end {os.getloadavg()[0]:.1f}. "
            f"The machine is shared, so absolute times vary run to run; compare within a "
            f"row.\n\nPeers: {versions()}.\n\n"
            "warm: median of the repeats after the first call, taken in rounds (one call of "
            "each tool per round; a call under 0.25 s is timed as timeit does: the mean of "
            "back-to-back calls lasting 0.25 s, after an untimed one); "
            "cold: the first call "
            "(compilation included for the JAX tools); cold, cached: linjax's first call in "
            "a new process whose persistent compilation cache holds the program (timed "
            "after `jax.clear_caches()`, with the objects of the earlier workloads frozen "
            "out of the garbage collector; the estimators and the CLI turn that cache on by "
            "default). objective: one float64 formula for "
            "every tool (`lj.objective`, docs/objective.md); gap: (f - best f) / |best f| in the "
            "row; x best peer: warm time over the fastest non-linjax tool's warm time. "
            "Peer loops marked (xN) were timed on 1/N of the problems and scaled.\n\n"
            + table(rows) + "\n\n![results](results.png)\n")
    (out / "RESULTS.md").write_text(text)
    print(f"wrote {out / 'RESULTS.md'}")
    return rows


if __name__ == "__main__":
    main()
