"""The benchmark package runs end to end on minute sizes (no timing is asserted)."""

import math

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from benchmarks import __main__ as bench_main  # noqa: E402
from benchmarks import gpu_check  # noqa: E402
from benchmarks import registry as R  # noqa: E402


def test_every_workload_builds_with_a_linjax_tool():
    for name, builder in R.WORKLOADS.items():
        wl = builder("tiny", np.float64)
        assert wl.name == name
        assert sum(t.linjax for t in wl.tools) == 1
        assert len(wl.tools) >= 2


def test_registry_runs_and_writes_results(tmp_path):
    rows = bench_main.main(["logistic", "batch_500", "ols_f32", "--size", "tiny",
                            "--repeats", "1", "--tools", "linjax", "scikit-learn",
                            "--no-cache", "--out", str(tmp_path)])
    assert {r.workload for r in rows} == {"logistic", "batch_500", "ols_f32"}
    for r in rows:
        assert not r.error, (r.tool, r.error)
        assert math.isfinite(r.objective) and math.isfinite(r.warm)
    # linjax reaches the peers' objective (a fast wrong answer would show here)
    for r in rows:
        if r.linjax:
            assert r.extra["gap"] < 1e-4, (r.workload, r.extra["gap"])
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| workload | tool |" in text and "load average" in text
    assert (tmp_path / "results.png").stat().st_size > 0


def test_gpu_check_runs_its_workloads_small(tmp_path):
    """The accelerator script at tiny sizes on CPU: float32 fits that converge, a cost
    model with positive bytes and FLOPs, and the table written."""
    names = ["multinomial", "batch", "lasso_path"]
    out = tmp_path / "gpu.md"
    rows = gpu_check.main(["--small", *names, "--repeats", "1", "--out", str(out)])
    assert len(rows) == len(names)
    for r in rows:
        assert "error" not in r, r
        assert r["converged"] == 1.0 and r["dtype"] == "float32", r
        assert r["iterations"] >= 1 and r["GB/s"] > 0 and r["TFLOP/s"] > 0, r
    assert out.read_text().count("\n| ") == len(names) + 1  # the rule line, then one a row
    with pytest.raises(SystemExit):
        gpu_check.main(["--small", "no_such_workload"])


@pytest.mark.slow
def test_gpu_check_runs_the_expression_pipeline_small():
    """The accelerator script's differential-expression workload (issue: the GPU check runs
    it too) at a tiny size on CPU: DESeq2's pipeline in float64 inside the float32 script,
    every gene but the all-zero one with a converged status."""
    (row,) = gpu_check.main(["--small", "expression", "--repeats", "1"])
    assert "error" not in row, row
    assert row["dtype"] == "float64" and row["GB/s"] > 0, row
    assert 0.9 <= row["converged"] < 1.0, row      # gene 0 is all zero: its own status
