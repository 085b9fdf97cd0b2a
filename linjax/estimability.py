"""Whether the data leave the likelihood without a finite maximiser (status
NO_FINITE_ESTIMATE), decided from y, the weights and the family alone."""

import jax.numpy as jnp

from linjax import links
from linjax.families import Binomial, NBCanonicalLink, NegativeBinomial, Poisson, Tweedie


def no_finite_estimate(family, y, weights, fit_intercept):
    """Whether the likelihood has no finite maximiser because, on every row of positive
    weight, y sits at the edge of its support, with an intercept (traced; a bool array).

    Count families with the log link (Poisson, NegativeBinomial, Tweedie with
    1 <= power < 2) with every y = 0: sum w mu only falls as the intercept goes to -inf.
    Binomial with a link onto (0, 1) and every y = 0 (or every y = 1): the intercept's
    optimum is -inf (+inf). The solver then stops at an arbitrary point along the way.
    """
    false = jnp.asarray(False)
    if not fit_intercept or family.multiclass:
        return false
    positive = weights > 0
    all_zero = jnp.all(jnp.where(positive, y == 0, True))
    if isinstance(family, Binomial) and isinstance(family.link, links.Logit | links.Probit
                                                   | links.CLogLog | links.LogLog
                                                   | links.Cauchit):
        return all_zero | jnp.all(jnp.where(positive, y == 1, True))
    if not isinstance(family.link, links.Log | NBCanonicalLink):
        return false
    if isinstance(family, Poisson | NegativeBinomial):
        return all_zero
    if isinstance(family, Tweedie):
        return all_zero & (family.power >= 1) & (family.power < 2)
    return false
