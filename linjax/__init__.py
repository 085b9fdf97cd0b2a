"""linjax: generalized linear models in JAX."""

from linjax import diagnostics, families, inference, links, penalties, solvers, summary
from linjax.fit import FitResult, fit
from linjax.model import init_params, linear_predictor, objective, predict

__version__ = "0.1.0"

__all__ = [
    "families", "links", "penalties", "solvers", "fit", "FitResult", "init_params",
    "linear_predictor", "objective", "predict", "__version__",
    "inference", "diagnostics", "summary",
]
