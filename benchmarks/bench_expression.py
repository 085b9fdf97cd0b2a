"""Differential expression, whole pipeline: linjax.expression against DESeq2, PyDESeq2, glmGamPoi.

Workload of issue 24: counts drawn as DESeq2's makeExampleDESeqDataSet draws them
(scripts/expression_reference/make_data.py), 10,000 genes x 100 samples, two conditions.
linjax: `differential_expression(counts, design, contrast=1)` (size factors, genewise,
trend, prior and MAP dispersions, NB fits, Wald test, Cook's, independent filtering, BH).

- warm: median of --repeats calls after the first, in this process;
- first call in a fresh process: a new interpreter imports linjax and runs the pipeline
  once, with the persistent compilation cache off (compiles everything) and with a fresh
  cache directory filled by a previous process (loads the programs);
- peers, on the same counts written to a temporary directory: DESeq2's `DESeq()` +
  `results()` and glmGamPoi's `glm_gp` (Rscript scripts/expression_reference/run_deseq2.R
  --time), PyDESeq2's `deseq2()` + `summary()` with two workers. Each runs when its tool
  is installed and is skipped with a note otherwise.

Usage: python -m benchmarks.bench_expression [--genes 10000] [--samples 100] [--repeats 3]
       [--no-peers] [--no-fresh] [--single-cell]   (--single-cell: 2,000 genes x 5,000 cells,
       glmGamPoi as the peer; peak memory from the fresh process)
"""

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts" / "expression_reference"


def generator():
    spec = importlib.util.spec_from_file_location("make_data", SCRIPTS / "make_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def data(genes, samples, seed=2024):
    import numpy as np

    gen = generator()
    counts, table = gen.two_groups(np.random.default_rng(seed), genes, samples)
    X = np.column_stack([np.ones(samples), table["condition"] == "B"]).astype(float)
    return gen, counts, table, X


def workload(size, dtype):
    """The `python -m benchmarks` workload "expression": the whole pipeline of linjax against
    PyDESeq2 (in this process, two workers) and R's DESeq2 (an Rscript process: its time
    includes R's start and package loading), each skipped with a note when not installed.

    Every tool returns its log2 fold changes and adjusted p-values; the objective is the
    fraction of genes called wrongly at padj < 0.1 against the generator's truth (a true
    log2 fold change of +-1 on 10% of the genes), so equal calls give equal objectives.
    Counts are integers, so `dtype` only names the variant (the pipeline runs in float64).
    """
    import numpy as np

    from .registry import Tool, Workload, pick

    genes, samples = pick(size, (10_000, 100), (2_000, 20), (300, 8))
    gen = generator()
    condition = np.array(["A"] * ((samples + 1) // 2) + ["B"] * (samples // 2))
    X = np.column_stack([np.ones(samples), condition == "B"]).astype(float)
    counts, beta, _, _ = gen.draw(np.random.default_rng(2024), genes, X)
    truly_de = beta[:, 1] != 0
    table = {"condition": condition}

    def linjax_de():
        from linjax.expression import differential_expression

        res = differential_expression(counts, X, 1)
        return {"log2FoldChange": np.asarray(res["log2FoldChange"]),
                "padj": np.asarray(res["padj"])}

    tools = [Tool("linjax differential_expression", linjax_de, linjax=True)]
    if importlib.util.find_spec("pydeseq2") is None:
        tools.append(Tool("PyDESeq2 (skipped: pydeseq2 not installed)", _skipped("pydeseq2")))
    else:
        spec = importlib.util.spec_from_file_location("run_pydeseq2",
                                                      SCRIPTS / "run_pydeseq2.py")
        py = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(py)

        def pydeseq2():
            import pandas as pd

            frame = pd.DataFrame(counts.T, columns=[f"gene{i + 1}" for i in range(genes)],
                                 index=[f"sample{j + 1}" for j in range(samples)])
            meta = pd.DataFrame(table, index=frame.index)
            _, res = py.run(frame, meta, "~condition", ["condition", "B", "A"], n_cpus=2)
            return {"log2FoldChange": res["log2FoldChange"].to_numpy(),
                    "padj": res["padj"].to_numpy()}
        tools.append(Tool("PyDESeq2 deseq2() + summary(), 2 workers", pydeseq2, repeats=1))
    if shutil.which("Rscript") is None:
        tools.append(Tool("DESeq2 (skipped: Rscript not found)", _skipped("Rscript not found")))
    else:
        def deseq2():
            import pandas as pd

            why = r_available()  # here, not when the workload is built (R starts slowly)
            if why:
                raise RuntimeError(f"skipped: {why}")
            with tempfile.TemporaryDirectory() as where:
                paths = write_set(gen, counts, table, where)
                out = os.path.join(where, "results.csv")
                subprocess.run(["Rscript", str(SCRIPTS / "run_deseq2.R"), "--time", *paths,
                                "--results", out],
                               capture_output=True, text=True, cwd=ROOT, check=True)
                res = pd.read_csv(out, na_values=["NA"])
            return {"log2FoldChange": res["log2FoldChange"].to_numpy(),
                    "padj": res["padj"].to_numpy()}
        tools.append(Tool("DESeq2 DESeq() + results() (Rscript, R start included)", deseq2,
                          repeats=1))

    def objective(out):
        called = np.nan_to_num(np.asarray(out["padj"], float), nan=1.0) < 0.1
        return float(np.mean(called != truly_de))

    return Workload("expression", f"differential expression {genes} genes x {samples} "
                    "samples, two conditions (whole pipeline)", tools, objective,
                    "objective: fraction of genes called wrongly at padj < 0.1 against the "
                    "generator's truth")


def _skipped(why):
    def fn():
        raise RuntimeError(f"skipped: {why}")
    return fn


FRESH = """
import sys, time, resource, os
import numpy as np
t0 = time.perf_counter()
import jax
jax.config.update("jax_enable_x64", True)
from linjax.expression import differential_expression
sys.path.insert(0, {bench!r})
from bench_expression import data
_, counts, _, X = data({genes}, {samples})
jax.block_until_ready(jax.device_put(np.zeros(3)) + 1)  # the backend started
try:  # the result's DataFrame: pandas' import (~65 MiB) is an import, not the call's memory
    import pandas  # noqa: F401
except ImportError:
    pass
t1 = time.perf_counter()
def rss(key):  # MiB, from /proc (None elsewhere)
    try:
        with open("/proc/self/status") as f:
            return int([x for x in f if x.startswith(key)][0].split()[1]) / 1024
    except (OSError, IndexError):
        return None
base = rss("VmRSS")
try:  # restart the peak count here (Linux): the call's own peak, not the data generator's
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    base = None
c1 = time.process_time()
res = differential_expression(counts, X, 1)
t2 = time.perf_counter()
c2 = time.process_time()
peak = rss("VmHWM")
if base is None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{{t2 - t1:.3f}} {{t1 - t0:.3f}} {{peak:.0f}} {{base or 0:.0f}} {{c2 - c1:.3f}}")
"""


def fresh_process(genes, samples, cache):
    env = dict(os.environ, LINJAX_COMPILATION_CACHE=cache)
    code = FRESH.format(bench=str(Path(__file__).parent), genes=genes, samples=samples)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=ROOT, check=True)
    call, imports, peak, base, cpu = out.stdout.split()[-5:]
    return float(call), float(imports), float(peak), float(base), float(cpu)


def r_available():
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    probe = subprocess.run(["Rscript", "-e", "suppressMessages({library(DESeq2); "
                            "library(glmGamPoi)})"], capture_output=True, text=True)
    return None if probe.returncode == 0 else "R packages DESeq2/glmGamPoi not installed"


def write_set(gen, counts, table, where):
    gen.write_counts(os.path.join(where, "bench_counts.csv.gz"), counts)
    gen.write_samples(os.path.join(where, "bench_samples.csv"), table)
    return (os.path.join(where, "bench_counts.csv.gz"),
            os.path.join(where, "bench_samples.csv"))


def peers(gen, counts, table, single_cell):
    rows = []
    with tempfile.TemporaryDirectory() as where:
        paths = write_set(gen, counts, table, where)
        why = r_available()
        if why:
            rows.append(("DESeq2 / glmGamPoi", f"skipped: {why}"))
        else:
            out = subprocess.run(["Rscript", str(SCRIPTS / "run_deseq2.R"), "--time", *paths]
                                 + (["--gp-only"] if single_cell else []),
                                 capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                rows.append(("DESeq2 / glmGamPoi", "failed: " + out.stderr.strip()[-300:]))
            for line in out.stdout.splitlines():
                name, secs = line.split()
                what = "DESeq() + results()" if name == "DESeq2" else "glm_gp (fit only)"
                rows.append((f"{name} {what}", f"{float(secs):.2f} s"))
        if single_cell:
            return rows
        if importlib.util.find_spec("pydeseq2") is None:
            rows.append(("PyDESeq2", "skipped: pydeseq2 not installed"))
        else:
            out = subprocess.run([sys.executable, str(SCRIPTS / "run_pydeseq2.py"), "--time",
                                  *paths, "--n-cpus", "2"], capture_output=True, text=True,
                                 cwd=ROOT)
            if out.returncode:
                rows.append(("PyDESeq2", "failed: " + out.stderr.strip()[-300:]))
            for line in out.stdout.splitlines():
                if line.startswith("PyDESeq2"):
                    rows.append(("PyDESeq2 deseq2() + summary(), 2 workers",
                                 f"{float(line.split()[1]):.2f} s"))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-fresh", action="store_true", help="skip the fresh-process timings")
    ap.add_argument("--single-cell", action="store_true",
                    help="2,000 genes x 5,000 cells (glmGamPoi's shape)")
    args = ap.parse_args(argv)
    if args.single_cell:
        args.genes, args.samples = 2_000, 5_000

    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from linjax.expression import differential_expression

    gen, counts, table, X = data(args.genes, args.samples)
    print(f"{args.genes} genes x {args.samples} samples, two conditions; load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    start = time.perf_counter()
    res = differential_expression(counts, X, 1)
    first = time.perf_counter() - start
    warm, cpu = [], []
    for _ in range(args.repeats):
        start, c0 = time.perf_counter(), time.process_time()
        differential_expression(counts, X, 1)
        warm.append(time.perf_counter() - start)
        cpu.append(time.process_time() - c0)
    called = int(np.sum(np.nan_to_num(res["padj"], nan=1.0) < 0.1))
    print(f"linjax warm          {statistics.median(warm):.2f} s (median of {args.repeats}; "
          f"process CPU {statistics.median(cpu):.2f} s); {called} genes at padj < 0.1")
    print(f"linjax first call    {first:.2f} s in this process (compilation included)")
    with tempfile.TemporaryDirectory() as cache:
        if args.no_fresh:
            return _peers_report(args, gen, counts, table)
        size = counts.size * 8 / 2**20
        call, imports, peak, base, cpu = fresh_process(args.genes, args.samples, "off")
        print(f"fresh process        {call:.2f} s (process CPU {cpu:.2f} s), cache off "
              f"(+ {imports:.2f} s imports and data); peak RSS {peak:.0f} MiB, "
              f"{base:.0f} MiB before the call: the call adds {peak - base:.0f} MiB = "
              f"{(peak - base) / size:.1f}x the counts as float64 ({size:.0f} MiB)")
        fresh_process(args.genes, args.samples, cache)
        call, _, peak, base, cpu = fresh_process(args.genes, args.samples, cache)
        print(f"fresh process        {call:.2f} s (process CPU {cpu:.2f} s), programs from "
              f"the persistent cache; the call adds {peak - base:.0f} MiB")
    _peers_report(args, gen, counts, table)


def _peers_report(args, gen, counts, table):
    if not args.no_peers:
        for name, value in peers(gen, counts, table, args.single_cell):
            print(f"{name:<40s} {value}")


if __name__ == "__main__":
    main()
