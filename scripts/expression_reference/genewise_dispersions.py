"""PyDESeq2's genewise dispersions on given counts, design ~condition and size factors (the
peer of benchmarks/bench_dispersion.py --peers; PyDESeq2 is not a dependency):

    python scripts/expression_reference/genewise_dispersions.py COUNTS SAMPLES SIZE_FACTORS OUT

Same files as genewise_dispersions.R. Prints the seconds of `fit_genewise_dispersions` (two
workers; size factors given, so not estimated) and writes OUT: one column PyDESeq2.
"""

import sys
import time

import numpy as np
import pandas as pd
from pydeseq2.dds import DeseqDataSet


def main(counts_path, samples_path, sf_path, out_path):
    counts = pd.read_csv(counts_path, index_col=0).T          # samples x genes
    samples = pd.read_csv(samples_path, index_col=0)
    sf = np.loadtxt(sf_path)
    dds = DeseqDataSet(counts=counts, metadata=samples, design="~condition", quiet=True,
                       n_cpus=2)
    dds.obs["size_factors"] = sf
    dds.layers["normed_counts"] = dds.X / sf[:, None]
    start = time.perf_counter()
    dds.fit_genewise_dispersions()
    print(f"PyDESeq2 {time.perf_counter() - start:.3f}")
    pd.DataFrame({"PyDESeq2": dds.var["genewise_dispersions"].to_numpy()},
                 index=counts.columns).to_csv(out_path)


if __name__ == "__main__":
    main(*sys.argv[1:5])
