"""Penalties on the coefficients (never the intercept), with values and proximal maps.

    L2(alpha):              alpha / 2 * sum_j w_j coef_j^2
    L1(alpha):              alpha * sum_j w_j |coef_j|
    ElasticNet(alpha, r):   alpha * sum_j w_j (r |coef_j| + (1 - r) / 2 coef_j^2)
    GroupLasso(alpha, g):   alpha * sum_groups w_g ||coef_g||_2   (block soft-thresholding)

`weights` are per-coefficient penalty factors (glmnet's `penalty.factor`,
default 1); a factor of 0 leaves that coefficient unpenalized. `alpha`,
`l1_ratio` and `weights` are pytree leaves, so they can be traced, vmapped
and differentiated. `prox(coef, step)` is argmin_b ||b - coef||^2 / (2 step)
+ penalty(b).
"""

import jax.numpy as jnp
import numpy as np

from linjax._pytree import pytree_dataclass, static_field


def _factors(weights, coef):
    """Per-coefficient factors broadcast against `coef` ((p,) or (p, K))."""
    if weights is None:
        return jnp.ones((), coef.dtype)
    w = jnp.asarray(weights, coef.dtype)
    return w.reshape(w.shape + (1,) * (coef.ndim - w.ndim))


def soft_threshold(x, threshold, rounding=None):
    """sign(x) * max(|x| - threshold, 0). With `rounding` (a count of ulps), an excess
    |x| - threshold within rounding * eps * max(|x|, threshold) counts as zero, so that a
    path's alpha_max itself gives exactly zero coefficients (`linjax.paths`)."""
    excess = jnp.abs(x) - threshold
    if rounding is None:
        return jnp.sign(x) * jnp.maximum(excess, 0.0)
    noise = rounding * jnp.finfo(x.dtype).eps * jnp.maximum(jnp.abs(x), threshold)
    return jnp.sign(x) * jnp.where(excess > noise, excess, 0.0)


def _check_number(owner, field, value):
    """Refuse, at construction, a strength that is not a number (a string, None, complex).

    Traced values and anything carrying a numeric dtype pass: penalties are built inside
    jit and vmap too. Ranges (alpha >= 0, l1_ratio in [0, 1]) are `validation`'s.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is None and not isinstance(value, str | bytes | bool | type(None)):
        try:
            dtype = np.asarray(value).dtype
        except (TypeError, ValueError):
            dtype = None
    if dtype is None or not np.issubdtype(dtype, np.number) or np.issubdtype(
            dtype, np.complexfloating):
        raise ValueError(f"{field}: {type(owner).__name__}({field}=...) must be a real number "
                         f"(or an array of them), got {value!r}.")


class AbstractPenalty:
    """Base class. `smooth` is True when the penalty is twice differentiable."""

    smooth = True

    def __post_init__(self):
        for field in ("alpha", "l1_ratio"):
            if hasattr(self, field):
                _check_number(self, field, getattr(self, field))

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

    def log_prior(self, coef, n=1.0):
        """Log density of the Gaussian prior coef_j ~ N(0, 1 / (n alpha w_j)) whose MAP is
        the ridge fit: sum_i w_i log p(y_i | params) + log_prior(coef, n=sum_i w_i) equals
        -n * objective(params) plus a constant (dispersion 1). w_j = 0: flat (no term)."""
        prec = n * self.alpha * _factors(self.weights, coef) * jnp.ones_like(coef)
        safe = jnp.where(prec > 0, prec, 1.0)
        terms = 0.5 * jnp.log(safe / (2 * jnp.pi)) - 0.5 * prec * coef**2
        return jnp.sum(jnp.where(prec > 0, terms, 0.0))


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

    def log_prior(self, coef, n=1.0):
        """Log density of the Laplace prior coef_j ~ Laplace(0, 1 / (n alpha w_j)) whose MAP
        is the lasso fit (see `L2.log_prior`): sum_j log(rate_j / 2) - rate_j |coef_j|."""
        rate = n * self.alpha * _factors(self.weights, coef) * jnp.ones_like(coef)
        safe = jnp.where(rate > 0, rate, 1.0)
        terms = jnp.log(safe / 2) - rate * jnp.abs(coef)
        return jnp.sum(jnp.where(rate > 0, terms, 0.0))


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


@pytree_dataclass
class GroupLasso(AbstractPenalty):
    """Group lasso: alpha * sum_g w_g ||coef_g||_2 (coef_g: the rows of group g, all classes).

    groups: one label per feature (an index array of length p); features sharing a
    label form a group, a negative label leaves the feature unpenalized. Static
    (it fixes the block structure). group_weights: one factor per group, in
    increasing label order (default sqrt(group size), as Yuan and Lin). The prox
    is block soft-thresholding: coef_g * max(0, 1 - step alpha w_g / ||coef_g||).
    Solved by ProximalGradient and by block CoordinateDescent.
    """

    alpha: float = 1.0
    groups: tuple = static_field(default=())
    group_weights: object = None
    smooth = False
    grouped = True

    def __post_init__(self):
        super().__post_init__()
        labels = np.asarray(self.groups).reshape(-1)
        if labels.size and not np.all(labels == np.round(labels)):
            raise ValueError("groups: expected integer group labels, one per feature.")
        object.__setattr__(self, "groups", tuple(int(g) for g in labels))

    def group_index(self):
        """(ids, n_groups, sizes): ids[j] in 0..G-1 is feature j's group, -1 if unpenalized."""
        labels = np.asarray(self.groups, dtype=int)
        uniq = np.unique(labels[labels >= 0])
        ids = np.where(labels >= 0, np.searchsorted(uniq, labels), -1)
        sizes = np.array([(ids == g).sum() for g in range(len(uniq))], dtype=float)
        return ids, len(uniq), sizes

    def _check(self, coef):
        if len(self.groups) != coef.shape[0]:
            raise ValueError(f"groups: {len(self.groups)} labels for {coef.shape[0]} "
                             "coefficients; give one group label per feature.")

    def weights_per_group(self, dtype):
        _, _, sizes = self.group_index()
        if self.group_weights is None:
            return jnp.asarray(np.sqrt(sizes), dtype)
        return jnp.asarray(self.group_weights, dtype)

    def group_norms(self, coef):
        self._check(coef)
        ids, n_groups, _ = self.group_index()
        sq = jnp.sum(coef.reshape(coef.shape[0], -1) ** 2, axis=1)
        onehot = jnp.asarray(ids[:, None] == np.arange(n_groups)[None, :], coef.dtype)
        return jnp.sqrt(sq @ onehot)

    def value(self, coef):
        return self.alpha * jnp.sum(self.weights_per_group(coef.dtype) * self.group_norms(coef))

    def prox(self, coef, step):
        ids, n_groups, _ = self.group_index()
        norms = self.group_norms(coef)
        thr = step * self.alpha * self.weights_per_group(coef.dtype)
        safe = jnp.where(norms > 0, norms, 1.0)
        shrink = jnp.where(norms > thr, 1.0 - thr / safe, 0.0)
        per_feature = jnp.concatenate([shrink, jnp.ones((1,), coef.dtype)])[
            jnp.asarray(np.where(ids >= 0, ids, n_groups))]
        return coef * per_feature.reshape((-1,) + (1,) * (coef.ndim - 1))


@pytree_dataclass
class Firth(AbstractPenalty):
    """Firth's bias reduction for the Binomial family: -1/2 log det I(beta) (Jeffreys prior).

    It depends on the design through the Fisher information, so it has no value of the
    coefficients alone: `lj.fit(..., family=Binomial(), penalty=Firth())` dispatches to
    `linjax.firth.fit_firth`, which minimises the penalized objective (see that module).
    """

    def value(self, coef):
        raise NotImplementedError("Firth's penalty depends on X; use "
                                  "linjax.firth.firth_objective(params, X, y, ...).")

    def prox(self, coef, step):
        raise NotImplementedError("Firth's penalty has no proximal map; use linjax.firth.")
