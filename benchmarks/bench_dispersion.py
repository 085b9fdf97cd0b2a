"""Negative binomial dispersion per gene (linjax.dispersion) on an RNA-seq-shaped workload.

10,000 genes x 100 samples, design intercept + condition (50/50), size factors as offsets,
counts NB2 with a mean-dependent alpha = 0.05 + 2 / mean (as DESeq2's trend) and 20% of
genes with a fold change. Reports linjax's compile time (first call minus a warm call) and
warm wall and CPU time for Cox-Reid and ML, and the peer for ML: statsmodels'
NegativeBinomial (nb2) fitted gene by gene on a subset, scaled to all genes, with the
largest |log alpha| difference on that subset. With --peers, the same counts and size
factors go to DESeq2's estimateDispersionsGeneEst and glmGamPoi's glm_gp (Rscript) and
PyDESeq2's fit_genewise_dispersions (scripts/expression_reference/genewise_dispersions.*),
timed in the same run, with the median |log alpha| difference from linjax's Cox-Reid
estimate (linjax's bounds set to DESeq2's, 1e-8 and max(10, samples)). Usage:
python -m benchmarks.bench_dispersion [genes] [samples] [repeats] [statsmodels_genes] [--peers]
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jax
import numpy as np


def data(m=10_000, n=100, seed=1):
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(n), np.repeat([0.0, 1.0], n // 2)]
    size_factors = np.exp(rng.normal(0.0, 0.3, n))
    base = np.exp(rng.normal(3.0, 2.0, m))
    lfc = rng.normal(0.0, 0.5, m) * (rng.uniform(size=m) < 0.2)
    alpha = 0.05 + 2.0 / base
    mu = base[:, None] * size_factors[None, :] * np.exp(np.outer(lfc, X[:, 1]))
    Y = rng.negative_binomial(1 / alpha[:, None], 1 / (1 + alpha[:, None] * mu))
    return X, Y.astype(float), np.log(size_factors)


def timed(fun, repeats):
    """(best wall, best CPU) seconds of `repeats` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(fun())
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


SCRIPTS = Path(__file__).resolve().parent.parent / "scripts" / "expression_reference"


def peers(X, Y, off, linjax_alpha):
    """Time the genewise-dispersion peers on these counts; print time and agreement."""
    with tempfile.TemporaryDirectory() as where:
        paths = [os.path.join(where, f) for f in ("counts.csv", "samples.csv", "sf.txt")]
        genes = [f"g{i}" for i in range(len(Y))]
        names = [f"s{j}" for j in range(Y.shape[1])]
        with open(paths[0], "w") as f:
            f.write("," + ",".join(names) + "\n")
            for g, row in zip(genes, Y.astype(int), strict=True):
                f.write(g + "," + ",".join(map(str, row)) + "\n")
        with open(paths[1], "w") as f:
            f.write("sample,condition\n")
            f.writelines(f"{s},{'AB'[int(c)]}\n" for s, c in zip(names, X[:, 1], strict=True))
        np.savetxt(paths[2], np.exp(off))
        runs = [(["Rscript", str(SCRIPTS / "genewise_dispersions.R")], "r.csv"),
                ([sys.executable, str(SCRIPTS / "genewise_dispersions.py")], "py.csv")]
        for command, out in runs:
            if shutil.which(command[0]) is None:
                print(f"{command[0]} not found: peer skipped")
                continue
            done = subprocess.run([*command, *paths, os.path.join(where, out)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(f"peer failed: {done.stderr.strip()[-300:]}")
                continue
            with open(os.path.join(where, out)) as f:
                header = f.readline().strip().split(",")[1:]
                values = [[float(v) if v not in ("", "NA") else np.nan
                           for v in line.strip().split(",")[1:]] for line in f]
            table = dict(zip(header, np.array(values).T, strict=True))
            for line in done.stdout.split("\n"):
                if not line.strip():
                    continue
                tool, seconds = line.split()
                theirs = np.asarray(table[tool], float)
                ok = np.isfinite(theirs) & (theirs > 1e-6) & (linjax_alpha > 1e-6)
                diff = np.median(np.abs(np.log(theirs[ok]) - np.log(linjax_alpha[ok])))
                print(f"{tool:10s}: {float(seconds):.2f} s; median |log alpha difference| from "
                      f"linjax {diff:.1e} ({ok.sum()} genes)")


def main(m=10_000, n=100, repeats=5, sm_genes=200, with_peers=False):
    jax.config.update("jax_enable_x64", True)
    from linjax.dispersion import estimate_nb_dispersion

    X, Y, off = data(m, n)
    print(f"negative binomial dispersion, {m} genes x {n} samples, intercept + condition, "
          f"size factors as offsets (float64, {jax.devices()[0].platform})")
    results = {}
    for method in ("cox-reid", "ml"):
        def run(method=method):
            return estimate_nb_dispersion(X, Y, offset=off, method=method)

        start = time.perf_counter()
        results[method] = jax.block_until_ready(run())
        first = time.perf_counter() - start
        wall, cpu = timed(run, repeats)
        status = np.bincount(np.asarray(results[method].status), minlength=8)
        print(f"linjax {method:8s}: warm {wall:.3f} s (CPU {cpu:.3f} s), compile "
              f"{first - wall:.1f} s; statuses {dict(enumerate(status.tolist()))}, "
              f"iterations median {np.median(results[method].iterations):.0f} "
              f"max {int(np.max(results[method].iterations))}")

    if with_peers:
        bounded = estimate_nb_dispersion(X, Y, offset=off, method="cox-reid",
                                         bounds=(1e-8, max(10.0, n)))
        peers(X, Y, off, np.asarray(bounded.alpha))
    if sm_genes <= 0:
        return
    import statsmodels.api as sm

    rows = np.arange(0, m, max(1, m // sm_genes))[:sm_genes]
    rows = rows[np.asarray(results["ml"].status)[rows] == 0]
    alphas = []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in rows:
            fit = sm.NegativeBinomial(Y[i], X, loglike_method="nb2", offset=off).fit(
                method="newton", maxiter=100, disp=0)
            alphas.append(fit.params[-1])
    sm_time = time.perf_counter() - start
    diff = np.max(np.abs(np.log(np.asarray(results["ml"].alpha)[rows]) - np.log(alphas)))
    print(f"statsmodels NegativeBinomial loop (ML): {sm_time:.2f} s for {len(rows)} genes, "
          f"{sm_time / len(rows) * m:.1f} s scaled to {m}; max |log alpha difference| "
          f"{diff:.1e}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:] if a != "--peers"]
    main(*args, with_peers="--peers" in sys.argv[1:])
