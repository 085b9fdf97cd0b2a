"""Penalties on the coefficients (never the intercept), with values and proximal maps.

    L2(alpha):              alpha / 2 * sum_j w_j coef_j^2
    L1(alpha):              alpha * sum_j w_j |coef_j|
    ElasticNet(alpha, r):   alpha * sum_j w_j (r |coef_j| + (1 - r) / 2 coef_j^2)

`weights` are per-coefficient penalty factors (glmnet's `penalty.factor`,
default 1); a factor of 0 leaves that coefficient unpenalized. `alpha`,
`l1_ratio` and `weights` are pytree leaves, so they can be traced, vmapped
and differentiated. `prox(coef, step)` is argmin_b ||b - coef||^2 / (2 step)
+ penalty(b).
"""

import jax.numpy as jnp

from linjax._pytree import pytree_dataclass


def _factors(weights, coef):
    """Per-coefficient factors broadcast against `coef` ((p,) or (p, K))."""
    if weights is None:
        return jnp.ones((), coef.dtype)
    w = jnp.asarray(weights, coef.dtype)
    return w.reshape(w.shape + (1,) * (coef.ndim - w.ndim))


def soft_threshold(x, threshold):
    """sign(x) * max(|x| - threshold, 0)."""
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0.0)


class AbstractPenalty:
    """Base class. `smooth` is True when the penalty is twice differentiable."""

    smooth = True

    def value(self, coef):
        raise NotImplementedError

    def prox(self, coef, step):
        raise NotImplementedError

    def smooth_grad(self, coef):
        """Gradient of the smooth (quadratic) part."""
        return jnp.zeros_like(coef)

    def smooth_hess_diag(self, coef):
        """Diagonal of the Hessian of the smooth (quadratic) part, shaped like `coef`."""
        return jnp.zeros_like(coef)

    def l1_strength(self, coef):
        """Per-coefficient weight of |coef_j| (0 for smooth penalties)."""
        return jnp.zeros_like(coef)


@pytree_dataclass
class NoPenalty(AbstractPenalty):
    """No penalty: value 0, prox the identity."""

    def value(self, coef):
        return jnp.zeros((), coef.dtype)

    def prox(self, coef, step):
        return coef


@pytree_dataclass
class L2(AbstractPenalty):
    """Ridge: alpha / 2 * sum_j w_j coef_j^2."""

    alpha: float = 1.0
    weights: object = None

    def value(self, coef):
        return 0.5 * self.alpha * jnp.sum(_factors(self.weights, coef) * coef**2)

    def prox(self, coef, step):
        return coef / (1.0 + step * self.alpha * _factors(self.weights, coef))

    def smooth_grad(self, coef):
        return self.alpha * _factors(self.weights, coef) * coef

    def smooth_hess_diag(self, coef):
        return jnp.broadcast_to(self.alpha * _factors(self.weights, coef), coef.shape)


@pytree_dataclass
class L1(AbstractPenalty):
    """Lasso: alpha * sum_j w_j |coef_j|; prox is soft-thresholding."""

    alpha: float = 1.0
    weights: object = None
    smooth = False

    def value(self, coef):
        return self.alpha * jnp.sum(_factors(self.weights, coef) * jnp.abs(coef))

    def prox(self, coef, step):
        return soft_threshold(coef, step * self.alpha * _factors(self.weights, coef))

    def l1_strength(self, coef):
        return jnp.broadcast_to(self.alpha * _factors(self.weights, coef), coef.shape)


@pytree_dataclass
class ElasticNet(AbstractPenalty):
    """alpha * sum_j w_j (l1_ratio |coef_j| + (1 - l1_ratio) / 2 coef_j^2)."""

    alpha: float = 1.0
    l1_ratio: float = 0.5
    weights: object = None
    smooth = False

    def value(self, coef):
        f = _factors(self.weights, coef)
        l1 = jnp.sum(f * jnp.abs(coef))
        l2 = jnp.sum(f * coef**2)
        return self.alpha * (self.l1_ratio * l1 + 0.5 * (1.0 - self.l1_ratio) * l2)

    def prox(self, coef, step):
        f = _factors(self.weights, coef)
        shrunk = soft_threshold(coef, step * self.alpha * self.l1_ratio * f)
        return shrunk / (1.0 + step * self.alpha * (1.0 - self.l1_ratio) * f)

    def smooth_grad(self, coef):
        return self.alpha * (1.0 - self.l1_ratio) * _factors(self.weights, coef) * coef

    def smooth_hess_diag(self, coef):
        f = _factors(self.weights, coef)
        return jnp.broadcast_to(self.alpha * (1.0 - self.l1_ratio) * f, coef.shape)

    def l1_strength(self, coef):
        f = _factors(self.weights, coef)
        return jnp.broadcast_to(self.alpha * self.l1_ratio * f, coef.shape)
