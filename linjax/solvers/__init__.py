"""Solvers: each minimises a GLM problem or any user objective (`solver.run(fun, params)`)."""

from linjax.solvers.coordinate import CoordinateDescent
from linjax.solvers.engine import AbstractSolver, Solution, iterate
from linjax.solvers.gradient import SGD, GradientDescent
from linjax.solvers.lbfgs import LBFGS
from linjax.solvers.lstsq import LeastSquares
from linjax.solvers.newton import Newton
from linjax.solvers.problem import FunctionProblem, GLMProblem
from linjax.solvers.projected import ProjectedNewton
from linjax.solvers.proximal import ProximalGradient
from linjax.solvers.status import MESSAGES, Status, message

__all__ = [
    "AbstractSolver", "Solution", "iterate", "Newton", "LeastSquares", "GLMProblem",
    "FunctionProblem", "Status", "MESSAGES", "message", "LBFGS", "GradientDescent", "SGD",
    "ProximalGradient", "CoordinateDescent", "ProjectedNewton",
]
