"""The teaching notebooks run top to bottom, and the committed copies carry no outputs.

Each notebook states its claims as `assert`s in code cells, so executing it is its test.
They run with nbclient on the `python3` kernel (ipykernel) with matplotlib's Agg backend.
Deselect them with `-m "not notebooks"` for a quick local run; CI runs them.
"""

import importlib.util
import os
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; each notebook takes well under a minute


def test_notebooks_exist():
    names = [p.stem for p in NOTEBOOKS]
    expected = ["01_least_squares", "02_regularization", "03_logistic", "04_glm",
                "05_jax_superpowers", "06_differential_expression"]
    assert names == expected


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel imports the linjax of this checkout even when it is not installed
    paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    # the python3 kernelspec runs "python": make that this interpreter (venv or not)
    monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(sys.executable),
                                                os.environ.get("PATH", "")]))
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # each notebook sets its own
    monkeypatch.delenv("JAX_ENABLE_X64", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()  # raises CellExecutionError (with the traceback) on any failing cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell has outputs; strip them"
            assert cell.execution_count is None, f"{path.name}: execution counts not cleared"


def test_notebooks_match_their_sources():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOK_DIR / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    stale = [dst.name for src, dst in build.targets()
             if not dst.exists() or dst.read_text() != build.render(build.notebook(src))]
    assert not stale, f"rebuild with `python notebooks/build.py`: {stale}"
