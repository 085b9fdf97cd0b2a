"""Peak memory of lj.fit_streaming as the number of chunks grows (data size grows with it).

Each configuration runs in a fresh subprocess that generates its chunks on the fly
(seeded per chunk, so the data never exist all at once) and reports its peak resident
set size (ru_maxrss) and tracemalloc's peak of Python/numpy allocations. For contrast,
the in-memory lj.fit on the same data is measured where it fits comfortably.

    python benchmarks/bench_streaming_memory.py [--rows 50000] [--p 20] [--chunks 4 16 64]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc


def chunk(i, rows, p):
    import numpy as np

    rng = np.random.default_rng(1000 + i)
    X = rng.normal(size=(rows, p)) / np.sqrt(p)
    y = rng.poisson(np.exp(0.2 + X @ np.linspace(-0.5, 0.5, p))).astype(float)
    return X, y


def worker(mode, n_chunks, rows, p):
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    import linjax as lj

    tracemalloc.start()
    t = time.perf_counter()
    if mode == "streaming":
        res = lj.fit_streaming(lambda: (chunk(i, rows, p) for i in range(n_chunks)),
                               family="poisson")
    else:
        parts = [chunk(i, rows, p) for i in range(n_chunks)]
        X = np.concatenate([a for a, _ in parts])
        y = np.concatenate([b for _, b in parts])
        del parts
        res = lj.fit(X, y, family="poisson", solver="newton")
    jax.block_until_ready(res.params)
    seconds = time.perf_counter() - t
    _, traced_peak = tracemalloc.get_traced_memory()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"mode": mode, "chunks": n_chunks, "rows": n_chunks * rows,
                      "data_mb": n_chunks * rows * (p + 1) * 8 / 2**20,
                      "rss_peak_mb": rss_peak / 2**20, "tracemalloc_peak_mb": traced_peak / 2**20,
                      "seconds": seconds, "n_iter": int(res.n_iter),
                      "coef0": float(np.asarray(res.coef)[0])}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000, help="rows per chunk")
    ap.add_argument("--p", type=int, default=20)
    ap.add_argument("--chunks", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--in-memory-max", type=int, default=16,
                    help="also run the in-memory fit up to this many chunks")
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "CHUNKS"))
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.rows, args.p)
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(f"chunks of {args.rows} rows x {args.p} features, float64, Poisson IRLS")
    print(f"{'mode':10s} {'chunks':>6s} {'rows':>9s} {'data MB':>8s} {'peak RSS MB':>12s} "
          f"{'tracemalloc MB':>15s} {'seconds':>8s} {'iters':>5s}")
    for n in args.chunks:
        for mode in ("streaming", "in-memory"):
            if mode == "in-memory" and n > args.in_memory_max:
                continue
            out = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--p",
                                  str(args.p), "--worker", mode, str(n)], env=env,
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['mode']:10s} {r['chunks']:6d} {r['rows']:9d} {r['data_mb']:8.0f} "
                  f"{r['rss_peak_mb']:12.0f} {r['tracemalloc_peak_mb']:15.1f} "
                  f"{r['seconds']:8.1f} {r['n_iter']:5d}")


if __name__ == "__main__":
    main()
