"""Synthetic RNA-seq counts drawn as DESeq2's `makeExampleDESeqDataSet` draws them.

    log2 base mean  b0 ~ N(interceptMean=4, interceptSD=2)
    dispersion      (4 / 2^b0 + 0.1) * exp(N(0, scatter^2))       (the trend, log-normal scatter)
    log2 fold change  +-1 for 10% of the genes (two-fold), 0 for the rest
    size factors    exp(N(0, 0.2^2)), around 1
    counts          NB(mu = sf * 2^(x beta), size = 1 / dispersion)

Gene 0 is all zero, gene 1 has a single non-zero count (so both finish with their status,
never stall a batch). Writes, under --out (default tests/data/expression/):

    two_groups_counts.csv.gz, two_groups_samples.csv   (a) 2,000 genes x 12 samples, A vs B
    three_groups_counts.csv.gz, three_groups_samples.csv
                                                        (b) 1,500 genes x 15 samples, groups
                                                            A/B/C (5 each) and a covariate x

`python scripts/expression_reference/make_data.py --genes 10000 --samples 100 --name bench`
writes a third, larger set (the benchmark's workload; not committed).
"""

import argparse
import gzip
import io
import os

import numpy as np


def draw(rng, n_genes, condition_matrix, de_fraction=0.1, scatter=0.5):
    """Counts (genes x samples), true log2 coefficients (genes x k) and dispersions.

    condition_matrix: samples x k design including the intercept column; every non-intercept
    column gets a log2 fold change of +-1 on `de_fraction` of the genes (chosen per column).
    """
    n_samples, k = condition_matrix.shape
    beta = np.zeros((n_genes, k))
    beta[:, 0] = rng.normal(4.0, 2.0, n_genes)
    for j in range(1, k):
        de = rng.random(n_genes) < de_fraction
        beta[de, j] = rng.choice([-1.0, 1.0], de.sum())
    dispersion = (4.0 / 2.0 ** beta[:, 0] + 0.1) * np.exp(rng.normal(0.0, scatter, n_genes))
    sf = np.exp(rng.normal(0.0, 0.2, n_samples))
    sf = sf / np.exp(np.mean(np.log(sf)))
    mu = sf[None, :] * 2.0 ** (beta @ condition_matrix.T)
    size = 1.0 / dispersion[:, None]
    counts = rng.negative_binomial(size, size / (size + mu)).astype(np.int64)
    counts[0] = 0                                  # an all-zero gene
    counts[1] = 0
    counts[1, n_samples - 1] = 7                   # a single non-zero count
    return counts, beta, dispersion, sf


def write_counts(path, counts):
    names = [f"gene{i + 1}" for i in range(counts.shape[0])]
    cols = [f"sample{j + 1}" for j in range(counts.shape[1])]
    with io.TextIOWrapper(gzip.GzipFile(path, "wb", mtime=0)) as f:   # byte-reproducible
        f.write("gene," + ",".join(cols) + "\n")
        for name, row in zip(names, counts, strict=True):
            f.write(name + "," + ",".join(map(str, row)) + "\n")


def write_samples(path, columns):
    keys = list(columns)
    n = len(columns[keys[0]])
    with open(path, "w") as f:
        f.write("sample," + ",".join(keys) + "\n")
        for i in range(n):
            f.write(f"sample{i + 1}," + ",".join(str(columns[c][i]) for c in keys) + "\n")


def two_groups(rng, n_genes, n_samples):
    condition = np.array(["A"] * ((n_samples + 1) // 2) + ["B"] * (n_samples // 2))
    X = np.column_stack([np.ones(n_samples), condition == "B"]).astype(float)
    counts, *_ = draw(rng, n_genes, X)
    return counts, {"condition": condition}


def three_groups(rng, n_genes, n_samples):
    group = np.array(["A", "B", "C"]).repeat(n_samples // 3)
    x = np.round(rng.normal(0.0, 1.0, n_samples), 3)
    X = np.column_stack([np.ones(n_samples), group == "B", group == "C", x]).astype(float)
    X[:, 3] *= 0.5                                 # the covariate's effect: +-0.5 per unit
    counts, *_ = draw(rng, n_genes, X)
    return counts, {"group": group, "x": x}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("tests", "data", "expression"))
    ap.add_argument("--name", default=None, help="write only one two-group set of this name")
    ap.add_argument("--genes", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.name:
        counts, samples = two_groups(np.random.default_rng(args.seed), args.genes, args.samples)
        write_counts(os.path.join(args.out, f"{args.name}_counts.csv.gz"), counts)
        write_samples(os.path.join(args.out, f"{args.name}_samples.csv"), samples)
        return
    counts, samples = two_groups(np.random.default_rng(1), 2000, 12)
    write_counts(os.path.join(args.out, "two_groups_counts.csv.gz"), counts)
    write_samples(os.path.join(args.out, "two_groups_samples.csv"), samples)
    counts, samples = three_groups(np.random.default_rng(2), 1500, 15)
    write_counts(os.path.join(args.out, "three_groups_counts.csv.gz"), counts)
    write_samples(os.path.join(args.out, "three_groups_samples.csv"), samples)


if __name__ == "__main__":
    main()
