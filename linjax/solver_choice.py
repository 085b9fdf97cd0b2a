"""The solver for a fit: "auto", a name, or an instance, checked against the penalty and
the bounds (the rule is in `linjax.fit`'s docstring and docs/solvers.md)."""

from linjax import links
from linjax.families import Gaussian
from linjax.penalties import L2, NoPenalty
from linjax.solvers import (
    LBFGS,
    SGD,
    CoordinateDescent,
    GradientDescent,
    LeastSquares,
    Newton,
    NewtonCG,
    ProjectedNewton,
    ProximalGradient,
)

SOLVERS = {"newton": Newton, "irls": Newton, "lstsq": LeastSquares,
           "least_squares": LeastSquares, "lbfgs": LBFGS, "gd": GradientDescent,
           "gradient_descent": GradientDescent, "sgd": SGD, "proximal": ProximalGradient,
           "fista": ProximalGradient, "cd": CoordinateDescent,
           "coordinate_descent": CoordinateDescent, "projected_newton": ProjectedNewton,
           "newton_cg": NewtonCG, "newton-cg": NewtonCG}

#: Widest problem (number of coefficients) for which "auto" picks Newton or CD.
AUTO_MAX_WIDTH = 500

NONSMOOTH_SOLVERS = (ProximalGradient, CoordinateDescent, GradientDescent)
BOUNDED_SOLVERS = (ProximalGradient, CoordinateDescent, GradientDescent, SGD, ProjectedNewton)


def choose_solver(solver, family, penalty, shape=None, bounded=False):
    """A solver instance from "auto", a name, or an instance (see `linjax.fit`'s docstring).

    Raises a ValueError when the chosen solver cannot handle the penalty (L1 with Newton,
    LBFGS or LeastSquares) or the bounds, naming the solvers that can.
    """
    multiclass = family.multiclass
    width = 0 if shape is None else shape[1] * ((family.n_classes or 2) if multiclass else 1)
    if isinstance(solver, str):
        key = solver.lower()
        if key == "auto":
            solver = _auto_solver(family, penalty, width, multiclass, bounded)
        elif key not in SOLVERS:
            raise ValueError(f"solver: unknown solver {solver!r}; choose 'auto' or one of "
                             f"{sorted(SOLVERS)}, or pass a linjax.solvers instance.")
        else:
            solver = SOLVERS[key]()
    check_solver(solver, penalty, bounded)
    return solver


def _auto_solver(family, penalty, width, multiclass, bounded):
    small = width <= AUTO_MAX_WIDTH and not multiclass
    if bounded or not penalty.smooth:
        return CoordinateDescent() if small else ProximalGradient()
    if isinstance(family, Gaussian) and isinstance(family.link, links.Identity) and \
            isinstance(penalty, NoPenalty | L2):
        return LeastSquares()
    return Newton() if width <= AUTO_MAX_WIDTH else LBFGS()


def check_solver(solver, penalty, bounded=False):
    """Refuse (eagerly) a solver that cannot handle a non-smooth penalty or bounds."""
    name = type(solver).__name__
    if not penalty.smooth and not isinstance(solver, NONSMOOTH_SOLVERS):
        raise ValueError(
            f"penalty: {type(penalty).__name__} is not smooth (it has an L1 part), which "
            f"{name} cannot handle. Use solver='cd' (CoordinateDescent) or solver='proximal' "
            "(ProximalGradient); solver='gd' (proximal GradientDescent) also works."
        )
    if bounded and not isinstance(solver, BOUNDED_SOLVERS):
        raise ValueError(
            f"bounds: {name} does not handle coefficient bounds. Use solver='cd' "
            "(CoordinateDescent), solver='proximal' (ProximalGradient) or "
            "solver='projected_newton'; solver='gd' (projected GradientDescent) also works."
        )
