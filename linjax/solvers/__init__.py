"""Solvers: each minimises a GLM problem or any user objective (`solver.run(fun, params)`).

The names below load their module on first use (PEP 562), so that importing a kernel of
this package (`linjax.solvers.gram`, `linalg`, `status`) does not import every solver: the
design types use those kernels, and the solvers use the design types.
"""

import importlib

#: Public name -> the module of this package that defines it.
LAZY_NAMES = {
    "CoordinateDescent": "coordinate",
    "AbstractSolver": "engine", "Solution": "engine", "iterate": "engine",
    "SGD": "gradient", "GradientDescent": "gradient",
    "LBFGS": "lbfgs",
    "LeastSquares": "lstsq",
    "Newton": "newton",
    "NewtonCG": "newton_cg",
    "FunctionProblem": "problem", "GLMProblem": "problem",
    "ProjectedNewton": "projected",
    "ProximalGradient": "proximal",
    "MESSAGES": "status", "Status": "status", "message": "status",
}

__all__ = [
    "AbstractSolver", "Solution", "iterate", "Newton", "LeastSquares", "GLMProblem",
    "FunctionProblem", "Status", "MESSAGES", "message", "LBFGS", "GradientDescent", "SGD",
    "ProximalGradient", "CoordinateDescent", "ProjectedNewton", "NewtonCG",
]


def __getattr__(name):
    if name in LAZY_NAMES:
        value = getattr(importlib.import_module(f"linjax.solvers.{LAZY_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'linjax.solvers' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(LAZY_NAMES))
