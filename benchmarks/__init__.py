"""linjax benchmarks against its peers: `python -m benchmarks [workload ...] [--quick]`.

`benchmarks.registry.WORKLOADS` maps a workload name to a builder `(size, dtype)` ->
`Workload` (data from fixed seeds, the common objective, and one `Tool` per peer);
`benchmarks.registry.run` times every tool (cold = first call, compile included; warm =
median of the repeats) and evaluates every tool's answer with the same float64 objective
(`lj.objective`, docs/objective.md). `python -m benchmarks` writes `benchmarks/RESULTS.md`
and `benchmarks/results.png`. The older single-purpose scripts (`bench_*.py`) still run.
"""
