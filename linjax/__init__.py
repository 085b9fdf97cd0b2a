"""linjax: generalized linear models in JAX."""

from linjax import (
    designs,
    diagnostics,
    dispersion,
    families,
    firth,
    implicit,
    inference,
    links,
    nb,
    penalties,
    solvers,
    summary,
    tuning,
)
from linjax._cache import compilation_cache_dir, enable_persistent_cache
from linjax.designs.formula import glm
from linjax.fit import FitResult, fit
from linjax.model import init_params, linear_predictor, objective, predict
from linjax.paths import alpha_grid, alpha_max, path
from linjax.scale import fit_batch, fit_streaming, shard_rows
from linjax.scale.batch_selection import cv_path_batch
from linjax.selection import cv_path

__version__ = "0.1.0"

__all__ = [
    "families", "links", "penalties", "solvers", "fit", "FitResult", "init_params",
    "linear_predictor", "objective", "predict", "__version__",
    "inference", "diagnostics", "summary", "firth", "nb", "dispersion",
    "fit_batch", "fit_streaming", "shard_rows", "paths", "selection",
    "path", "alpha_max", "alpha_grid", "cv_path", "cv_path_batch", "tuning", "implicit", "datasets",
    "compilation_cache_dir", "designs", "glm",
]

# Compiled programs persist on disk across processes unless LINJAX_COMPILATION_CACHE=off
# (docs/caching.md): a first fit in a new process loads its program instead of compiling it.
enable_persistent_cache()

_LAZY_SUBMODULES = ("estimators", "preprocessing", "io", "plotting", "datasets", "cli",
                    "expression")


def __getattr__(name):
    """Lazy submodules: `linjax.estimators` (needs scikit-learn), `preprocessing`, `io`."""
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"linjax.{name}")
    raise AttributeError(f"module 'linjax' has no attribute {name!r}")
