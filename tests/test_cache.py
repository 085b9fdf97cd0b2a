"""The estimator layer's persistent compilation cache: on by default, opt-out by env."""

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


def _run(tmp_path, **env_extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    env.pop("LINJAX_COMPILATION_CACHE", None)
    env.update(env_extra)
    subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True, cwd=tmp_path,
                   timeout=300)


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
