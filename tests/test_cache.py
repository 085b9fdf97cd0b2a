"""The persistent compilation cache: on by default for the Python API, the estimators and
the CLI (one switch, LINJAX_COMPILATION_CACHE); a cache directory set in JAX wins."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")

SCRIPT = """
import numpy as np
from linjax.estimators import PoissonRegressor
rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))
y = rng.poisson(np.exp(X @ [0.2, -0.1, 0.3]))
PoissonRegressor(alpha=0.0).fit(X, y)
"""


FUNCTIONAL = """
import numpy as np
import linjax as lj
rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))
y = rng.poisson(np.exp(X @ [0.2, -0.1, 0.3])).astype(float)
assert int(lj.fit(X, y, family=lj.families.Poisson()).status) == 0
print(lj.compilation_cache_dir())
"""


def _run(tmp_path, script=SCRIPT, **env_extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    env.pop("LINJAX_COMPILATION_CACHE", None)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=tmp_path,
                          timeout=300, capture_output=True, text=True).stdout.strip()


def _entries(folder):
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_the_python_api_uses_the_persistent_cache_by_default(tmp_path):
    printed = _run(tmp_path, FUNCTIONAL)
    default = tmp_path / "xdg" / "linjax"
    assert printed.startswith(str(default)) and _entries(default)


def test_a_cache_directory_set_in_jax_wins(tmp_path):
    mine = tmp_path / "mine"
    printed = _run(tmp_path, FUNCTIONAL, JAX_COMPILATION_CACHE_DIR=str(mine))
    assert printed == str(mine)
    assert not (tmp_path / "xdg" / "linjax").exists()


def test_the_python_api_opt_out(tmp_path):
    assert _run(tmp_path, FUNCTIONAL, LINJAX_COMPILATION_CACHE="off") == "None"
    assert not (tmp_path / "xdg" / "linjax").exists()


def test_estimators_use_the_persistent_cache_by_default(tmp_path):
    _run(tmp_path)
    default = tmp_path / "xdg" / "linjax"
    assert default.is_dir() and any(p.is_file() for p in default.rglob("*"))


def test_the_cache_opt_out_and_a_moved_cache(tmp_path):
    _run(tmp_path, LINJAX_COMPILATION_CACHE="off")
    assert not (tmp_path / "xdg" / "linjax").exists()
    moved = tmp_path / "moved"
    _run(tmp_path, LINJAX_COMPILATION_CACHE=str(moved))
    assert any(p.is_file() for p in moved.rglob("*"))
    assert not (tmp_path / "xdg" / "linjax").exists()
