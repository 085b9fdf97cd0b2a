"""Result codes shared by every solver, each with a message saying what to try."""

import enum

import jax.numpy as jnp
import numpy as np


class Status(enum.IntEnum):
    CONVERGED = 0
    MAX_ITER = 1
    NON_FINITE = 2
    LINE_SEARCH_FAILED = 3
    SINGULAR = 4
    NO_FINITE_ESTIMATE = 5
    STALLED = 6
    AT_BOUND = 7


MESSAGES = {
    Status.CONVERGED: "converged",
    Status.MAX_ITER: "stopped at max_iter before converging; increase max_iter or loosen tol",
    Status.NON_FINITE: (
        "a non-finite value (NaN or inf) appeared; check the data for extreme values, "
        "standardize the features, or add an L2 penalty"
    ),
    Status.LINE_SEARCH_FAILED: (
        "the line search could not decrease the objective; the problem may be badly scaled "
        "(standardize the features) or the tolerance below what the dtype can reach"
    ),
    Status.SINGULAR: (
        "the Hessian (or design) is singular or rank deficient; drop collinear columns or add "
        "an L2 penalty"
    ),
    Status.NO_FINITE_ESTIMATE: (
        "no finite maximum likelihood estimate exists (an all-zero count response, or a "
        "binary response of one class only, with an intercept: the intercept's optimum is at "
        "-inf or +inf), so the coefficients are an arbitrary point along the way; check the "
        "response, drop the intercept, or model the zeros separately (e.g. a hurdle model)"
    ),
    Status.STALLED: (
        "the objective stopped decreasing by more than tol between epochs; this is not a "
        "certified optimum (no gradient test): use Newton or LBFGS, or lower the learning rate "
        "or increase max_iter (epochs)"
    ),
    Status.AT_BOUND: (
        "the estimated parameter (the negative binomial dispersion) sits at a bound of its "
        "range, where the criterion still increases outward: at the lower bound the data show "
        "no overdispersion (alpha -> 0 is the Poisson model; fit a Poisson GLM), at the upper "
        "bound widen `bounds` or check the response"
    ),
}


def message(status):
    """The message for a status code (an int or a concrete array of one element)."""
    return MESSAGES[Status(int(np.asarray(status).reshape(-1)[0]))]


def code(status):
    """A status as a JAX int32 scalar."""
    return jnp.asarray(int(status), jnp.int32)


def messages(status):
    """One message per problem for the statuses of a batch (any shape; a list, flattened),
    e.g. `messages(fit_batch(...).status)`."""
    return [MESSAGES[Status(int(s))] for s in np.asarray(status).reshape(-1)]
