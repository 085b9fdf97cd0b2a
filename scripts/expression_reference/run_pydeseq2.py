"""PyDESeq2 reference values for linjax.expression's tests (PyDESeq2 is not a dependency).

    python scripts/expression_reference/run_pydeseq2.py            # both committed data sets
    python scripts/expression_reference/run_pydeseq2.py --time COUNTS SAMPLES  # benchmark peer

Writes tests/data/expression/<name>_pydeseq2.csv.gz: one row per gene with PyDESeq2's
dispersions and its Wald results (alpha=0.1, as DESeq2's results()).
"""

import argparse
import gzip
import io
import os
import time

DIR = os.path.join("tests", "data", "expression")


def read_set(counts_path, samples_path):
    import pandas as pd

    counts = pd.read_csv(counts_path, index_col=0)
    samples = pd.read_csv(samples_path, index_col=0)
    return counts.T, samples                      # PyDESeq2 takes samples x genes


def run(counts, samples, design, contrast, n_cpus=1):
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.ds import DeseqStats

    dds = DeseqDataSet(counts=counts, metadata=samples, design=design, quiet=True,
                       n_cpus=n_cpus)
    dds.deseq2()
    stats = DeseqStats(dds, contrast=contrast, alpha=0.1, quiet=True, n_cpus=n_cpus)
    stats.summary()
    return dds, stats.results_df


def reference(name, design, contrast):
    counts, samples = read_set(os.path.join(DIR, f"{name}_counts.csv.gz"),
                               os.path.join(DIR, f"{name}_samples.csv"))
    dds, res = run(counts, samples, design, contrast)
    for col in ("genewise_dispersions", "fitted_dispersions", "MAP_dispersions",
                "dispersions"):
        res[col] = dds.var[col].to_numpy() if col in dds.var else float("nan")
    with io.TextIOWrapper(gzip.GzipFile(os.path.join(DIR, f"{name}_pydeseq2.csv.gz"), "wb",
                                        mtime=0)) as f:
        res.to_csv(f, float_format="%.17g")
    print(name, "written")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", nargs=2, metavar=("COUNTS", "SAMPLES"))
    ap.add_argument("--n-cpus", type=int, default=2)
    args = ap.parse_args()
    if args.time:
        counts, samples = read_set(*args.time)
        t0 = time.perf_counter()
        run(counts, samples, "~condition", ["condition", "B", "A"], n_cpus=args.n_cpus)
        print(f"PyDESeq2 {time.perf_counter() - t0:.3f}")
        return
    reference("two_groups", "~condition", ["condition", "B", "A"])
    reference("three_groups", "~group + x", ["group", "C", "A"])
    import pydeseq2

    with open(os.path.join(DIR, "versions_pydeseq2.txt"), "w") as f:
        f.write(f"pydeseq2 {pydeseq2.__version__}\n")


if __name__ == "__main__":
    main()
