"""The benchmark package runs end to end on minute sizes (no timing is asserted)."""

import math

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from benchmarks import __main__ as bench_main  # noqa: E402
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
