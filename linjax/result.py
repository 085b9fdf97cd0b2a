"""`FitResult`: what every fit returns (`lj.fit`, Firth, the negative binomial, batches,
blocks, streams), at the bottom of the package so that every fitting module can build one."""

import jax
import numpy as np

from linjax._pytree import pytree_dataclass, static_field
from linjax.solvers.status import message


@pytree_dataclass
class FitResult:
    """A fitted GLM: a pytree, so it passes through jit and vmap and can be saved.

    params: {"coef", "intercept"}; objective: the objective at params (docs/objective.md);
    n_iter, status (0 = converged, see `linjax.solvers.Status`), converged;
    family, penalty: as fitted; info: the solver's final state (diagnostics such as
    the Newton decrement or the least-squares rank); fit_intercept, solver: static.
    """

    params: dict
    objective: jax.Array
    n_iter: jax.Array
    status: jax.Array
    converged: jax.Array
    family: object
    penalty: object
    info: object = None
    fit_intercept: bool = static_field(default=True)
    solver: str = static_field(default="")

    @property
    def coef(self):
        return self.params["coef"]

    @property
    def intercept(self):
        return self.params["intercept"]

    @property
    def message(self):
        """The status message (host-side; for batched results, one per problem)."""
        status = np.asarray(self.status)
        if status.ndim == 0:
            return message(status)
        return [message(s) for s in status.reshape(-1)]
