"""Exponential-family distributions for GLMs.

Each family supplies, elementwise:

- `log_prob(y, mu, scale=1.0)`: the full log density / mass, normalizing
  constants included (so log-likelihoods, AIC and BIC agree with R);
- `unit_deviance(y, mu)`: d(y, mu) = 2 [log p(y | y) - log p(y | mu)] at unit
  dispersion;
- `variance(mu)`: the variance function V(mu);
- `nll(y, eta)`: the unit loss used by every solver, half the unit deviance
  written in terms of the linear predictor with the link's stable `log mu`.

Gradients and curvature in eta come from autodiff of `nll` (`eta_derivatives`),
except for the canonical pairs Gaussian-identity, Poisson-log and Binomial-logit,
whose closed forms are written once here (`_canonical_derivatives`). `support_error(y)`
is the eager check of the response used by input validation.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, xlog1py, xlogy

from linjax import links as L
from linjax._pytree import pytree_dataclass, static_field


def _is_concrete(x):
    return not isinstance(x, jax.core.Tracer)


class AbstractFamily:
    """Base class. Subclasses set `name`, `estimates_dispersion` and the methods below."""

    name = "abstract"
    estimates_dispersion = False
    #: True for a family whose fit estimates a shape parameter (NegativeBinomial(alpha=None):
    #: `linjax.nb`); entry points route it or refuse it by this, never by probing fields.
    estimates_alpha = False
    #: True for a family of several responses per row (Multinomial).
    multiclass = False

    def curvature_bound(self):
        """sup over eta of d^2 nll(y, eta) / d eta^2 (per unit weight), or None when the
        curvature is unbounded (what a fixed gradient step of 1 / Lipschitz needs)."""
        return None

    def __post_init__(self):
        if self.link is None:
            object.__setattr__(self, "link", self.default_link())
        elif isinstance(self.link, str):
            object.__setattr__(self, "link", L.get_link(self.link))

    @property
    def canonical_link(self):
        raise NotImplementedError

    def default_link(self):
        return self.canonical_link

    @property
    def is_canonical(self):
        """True when `link` is the canonical link (then Newton = Fisher scoring)."""
        canonical = self.canonical_link
        if type(self.link) is not type(canonical):
            return False
        if isinstance(canonical, L.Power):
            return _is_concrete(self.link.power) and _is_concrete(canonical.power) and bool(
                np.all(np.asarray(self.link.power) == np.asarray(canonical.power))
            )
        return True

    # -- elementwise statistics -------------------------------------------------
    def log_prob(self, y, mu, scale=1.0):
        raise NotImplementedError

    def unit_deviance(self, y, mu):
        raise NotImplementedError

    def variance(self, mu):
        raise NotImplementedError

    def nll(self, y, eta):
        """Half the unit deviance as a function of eta (the loss every solver minimises)."""
        raise NotImplementedError

    def starting_mu(self, y):
        """A first guess of the mean from the response, inside the family's range (R's mustart)."""
        return y

    #: Whether the start's intercept then moves to its optimum given the slopes, in closed
    #: form for a log-linear Poisson model (`linjax.fit.initial_params`).
    intercept_shift_start = False

    def support_error(self, y):
        """None if every value of `y` (concrete numpy) is in the support, else a message."""
        return None

    def __repr__(self):
        return f"{type(self).__name__}(link={self.link!r})"


def eta_derivatives(family, y, eta, fisher=False):
    """Elementwise (nll, d nll / d eta, d^2 nll / d eta^2) of `family.nll`.

    With `fisher=True` the curvature is the expected information, obtained by
    evaluating the second derivative at y = mu(eta): the loss of an exponential
    family is linear in y, so its expectation is the loss at y = mu. With
    `fisher="auto"` each observation keeps its observed curvature where that is
    positive and falls back to the expected one elsewhere (so Newton is exact,
    and converges quadratically, wherever the loss is locally convex in eta, as for
    Gamma, Tweedie and negative binomial with the log link).

    The canonical pairs take closed forms (`_canonical_derivatives`; there observed and
    expected curvature coincide, so `fisher` does not matter), every other pair autodiff
    (`_autodiff_derivatives`).
    """
    if isinstance(fisher, str) and fisher != "auto":
        raise ValueError(f"fisher: expected True, False or 'auto', got {fisher!r}")
    closed = _canonical_derivatives(family, y, eta)
    if closed is not None:
        return closed
    return _autodiff_derivatives(family, y, eta, fisher)


def _canonical_derivatives(family, y, eta):
    """(nll, g, h) in closed form for a canonical pair, else None (chosen on the types).

    - Gaussian-identity: g = eta - y, h = 1;
    - Poisson-log: g = (mu - y) s', h = mu s'^2 with mu = exp(s), s = the Log link's
      clipped eta and s' its derivative (1 inside the clip, 0 outside, as autodiff gave);
    - Binomial-logit: g = (1 - y) sigmoid(eta) - y sigmoid(-eta),
      h = sigmoid(eta) sigmoid(-eta), both sigmoids from e = exp(-|eta|) (1 / (1 + e) and
      e / (1 + e)); not mu - y and mu (1 - mu), whose 1 - mu rounds to 0 for eta > ~37
      where h is ~1e-16 or less (separated and large-eta fits need those digits).

    The nll is `family.nll(y, eta)` itself. g and h have eta's shape and dtype; a y that
    broadcasts eta to a larger shape takes autodiff (which sums g over the extra axes).
    """
    pair = (type(family), type(family.link))
    if pair not in _CANONICAL_PAIRS:
        return None
    y, eta = jnp.asarray(y), jnp.asarray(eta)
    if jnp.broadcast_shapes(y.shape, eta.shape) != eta.shape:
        return None
    nll = family.nll(y, eta)
    if pair == (Gaussian, L.Identity):
        g, h = eta - y, jnp.ones_like(eta)
    elif pair == (Poisson, L.Log):
        s, ds = jax.jvp(family.link.log_inverse, (eta,), (jnp.ones_like(eta),))
        mu = jnp.exp(s)
        g, h = (mu - y) * ds, mu * (ds * ds)
    else:
        e = jnp.exp(-jnp.abs(eta))
        big = 1.0 / (1.0 + e)                 # sigmoid(|eta|)
        small = e * big                       # sigmoid(-|eta|), no cancellation
        positive = eta >= 0
        sig, sig_neg = jnp.where(positive, big, small), jnp.where(positive, small, big)
        g, h = (1.0 - y) * sig - y * sig_neg, sig * sig_neg
    return nll, g.astype(eta.dtype), h.astype(eta.dtype)


def _autodiff_derivatives(family, y, eta, fisher=False):
    """`eta_derivatives` by autodiff of `family.nll`: a vjp, then a jvp of its grad."""

    def grad_at(yy):
        return jax.grad(lambda e: jnp.sum(family.nll(yy, e)))

    def curvature(yy):
        return jax.jvp(grad_at(yy), (eta,), (jnp.ones_like(eta),))[1]

    nll, vjp = jax.vjp(lambda e: family.nll(y, e), eta)
    (g,) = vjp(jnp.ones_like(nll))
    if isinstance(fisher, str):
        h_obs = curvature(y)
        h_exp = curvature(jax.lax.stop_gradient(family.link.inverse(eta)))
        return nll, g, jnp.where(h_obs > 0, h_obs, h_exp)
    y_curv = jax.lax.stop_gradient(family.link.inverse(eta)) if fisher else y
    return nll, g, curvature(y_curv)


def _range_error(y, ok, what):
    bad = ~ok
    if not np.any(bad):
        return None
    idx = int(np.flatnonzero(bad)[0])
    return (
        f"{int(bad.sum())} value(s) outside the support ({what}); the first is "
        f"y[{idx}] = {y.flat[idx].item()!r}. Choose a family whose support contains the data."
    )


def _xlogx(y):
    return xlogy(y, y)


@pytree_dataclass
class Gaussian(AbstractFamily):
    """Normal: V(mu) = 1, d = (y - mu)^2, scale = variance sigma^2."""

    link: L.AbstractLink = None
    name = "gaussian"
    estimates_dispersion = True

    @property
    def canonical_link(self):
        return L.Identity()

    def log_prob(self, y, mu, scale=1.0):
        return -0.5 * jnp.log(2 * jnp.pi * scale) - (y - mu) ** 2 / (2 * scale)

    def unit_deviance(self, y, mu):
        return (y - mu) ** 2

    def variance(self, mu):
        return jnp.ones_like(mu)

    def nll(self, y, eta):
        return 0.5 * (y - self.link.inverse(eta)) ** 2

    def curvature_bound(self):
        """1 with the identity link (the nll is (y - eta)^2 / 2); None with others."""
        return 1.0 if isinstance(self.link, L.Identity) else None


@pytree_dataclass
class Binomial(AbstractFamily):
    """Bernoulli / binomial proportions: V(mu) = mu (1 - mu).

    `y` is 0/1, or a proportion of successes with the number of trials passed as
    the fit's `weights` (as R's glm). `log_prob` takes `trials` for the latter.
    """

    link: L.AbstractLink = None
    name = "binomial"

    @property
    def canonical_link(self):
        return L.Logit()

    def curvature_bound(self):
        """1/4 with the logit link (mu (1 - mu) <= 1/4); None with others."""
        return 0.25 if isinstance(self.link, L.Logit) else None

    def log_prob(self, y, mu, scale=1.0, trials=1.0):
        k = y * trials
        log_choose = gammaln(trials + 1) - gammaln(k + 1) - gammaln(trials - k + 1)
        return log_choose + xlogy(k, mu) + xlog1py(trials - k, -mu)

    def unit_deviance(self, y, mu):
        return 2 * (xlogy(y, y) - xlogy(y, mu) + xlog1py(1 - y, -y) - xlog1py(1 - y, -mu))

    def variance(self, mu):
        return mu * (1 - mu)

    def nll(self, y, eta):
        log_mu = self.link.log_inverse(eta)
        log_1m_mu = self.link.log1m_inverse(eta)
        saturated = _xlogx(y) + _xlogx(1 - y)
        return saturated - y * log_mu - (1 - y) * log_1m_mu

    def starting_mu(self, y):
        return (y + 0.5) / 2

    def support_error(self, y):
        return _range_error(y, (y >= 0) & (y <= 1), "0 <= y <= 1; pass counts as proportions "
                            "with the number of trials as weights")


@pytree_dataclass
class Poisson(AbstractFamily):
    """Poisson counts: V(mu) = mu, d = 2 [y log(y / mu) - (y - mu)]."""

    link: L.AbstractLink = None
    name = "poisson"

    @property
    def canonical_link(self):
        return L.Log()

    def log_prob(self, y, mu, scale=1.0):
        return xlogy(y, mu) - mu - gammaln(y + 1)

    def unit_deviance(self, y, mu):
        return 2 * (xlogy(y, y) - xlogy(y, mu) - (y - mu))

    def variance(self, mu):
        return mu

    def nll(self, y, eta):
        return self.link.inverse(eta) - y * self.link.log_inverse(eta) + _xlogx(y) - y

    def starting_mu(self, y):
        return y + 0.1

    @property
    def intercept_shift_start(self):
        # R's start (weights y + 0.1 on log(y + 0.1)) places the intercept poorly where
        # means are small; moving it to the optimum given the slopes lowers the start's
        # objective and, on simulated data, saved up to 2 Newton iterations and never cost
        # one (`benchmarks/start_study.py`).
        return isinstance(self.link, L.Log)

    def support_error(self, y):
        return _range_error(y, y >= 0, "y >= 0")


#: (family type, link type) with closed-form derivatives in `_canonical_derivatives`.
_CANONICAL_PAIRS = ((Gaussian, L.Identity), (Poisson, L.Log), (Binomial, L.Logit))


@pytree_dataclass
class Gamma(AbstractFamily):
    """Gamma: V(mu) = mu^2, d = 2 [(y - mu) / mu - log(y / mu)]; scale = 1 / shape."""

    link: L.AbstractLink = None
    name = "gamma"
    estimates_dispersion = True

    @property
    def canonical_link(self):
        return L.Inverse()

    def log_prob(self, y, mu, scale=1.0):
        a = 1.0 / scale
        return a * jnp.log(a / mu) + (a - 1) * jnp.log(y) - a * y / mu - gammaln(a)

    def unit_deviance(self, y, mu):
        return 2 * ((y - mu) / mu - jnp.log(y / mu))

    def variance(self, mu):
        return mu**2

    def nll(self, y, eta):
        log_mu = self.link.log_inverse(eta)
        y_safe = jnp.where(y > 0, y, 1.0)
        return y * jnp.exp(-log_mu) - 1.0 + log_mu - jnp.log(y_safe)

    def support_error(self, y):
        return _range_error(y, y > 0, "y > 0")


@pytree_dataclass
class InverseGaussian(AbstractFamily):
    """Inverse Gaussian: V(mu) = mu^3, d = (y - mu)^2 / (y mu^2); scale = 1 / lambda."""

    link: L.AbstractLink = None
    name = "inverse_gaussian"
    estimates_dispersion = True

    @property
    def canonical_link(self):
        return L.InverseSquared()

    def log_prob(self, y, mu, scale=1.0):
        return -0.5 * jnp.log(2 * jnp.pi * scale * y**3) - (y - mu) ** 2 / (2 * scale * mu**2 * y)

    def unit_deviance(self, y, mu):
        return (y - mu) ** 2 / (y * mu**2)

    def variance(self, mu):
        return mu**3

    def nll(self, y, eta):
        inv_mu = jnp.exp(-self.link.log_inverse(eta))
        y_safe = jnp.where(y > 0, y, 1.0)
        # (y - mu)^2 / (2 y mu^2) = y / (2 mu^2) - 1 / mu + 1 / (2 y)
        return 0.5 * y * inv_mu**2 - inv_mu + 0.5 / y_safe

    def support_error(self, y):
        return _range_error(y, y > 0, "y > 0")


@pytree_dataclass
class NegativeBinomial(AbstractFamily):
    """Negative binomial (NB2): V(mu) = mu + alpha mu^2, alpha > 0 a leaf.

    Default link: log (as R's MASS::glm.nb); the canonical link
    log(alpha mu / (1 + alpha mu)) is available as `canonical_link`.
    `alpha=None` estimates alpha (`linjax.nb`): `method="ml"` (maximum likelihood, as
    MASS::glm.nb) or `"cox-reid"` (the Cox-Reid adjusted profile likelihood, as edgeR and
    DESeq2; docs/dispersion.md). `method` is static configuration. `prior=(mean, var)`: a
    normal prior on log(alpha) (mean a number, or one per problem in `fit_batch`; var > 0),
    giving the maximum a posteriori estimate that DESeq2 uses to shrink dispersions (log
    link, no penalty). `prior` is ignored when alpha is given.
    """

    alpha: float = 1.0
    link: L.AbstractLink = None
    method: str = static_field(default="ml")
    prior: tuple = None
    name = "negative_binomial"

    def default_link(self):
        return L.Log()

    @property
    def estimates_alpha(self):
        """True for `alpha=None` (alpha estimated by the fit, `linjax.nb`)."""
        return self.alpha is None

    @property
    def canonical_link(self):
        return NBCanonicalLink(alpha=self.alpha)

    def log_prob(self, y, mu, scale=1.0):
        r = 1.0 / self.alpha
        return (
            gammaln(y + r) - gammaln(r) - gammaln(y + 1)
            - r * jnp.log1p(mu / r) + xlogy(y, mu / (r + mu))
        )

    def unit_deviance(self, y, mu):
        r = 1.0 / self.alpha
        return 2 * (xlogy(y, y) - xlogy(y, mu) - (y + r) * (jnp.log1p(self.alpha * y)
                                                           - jnp.log1p(self.alpha * mu)))

    def variance(self, mu):
        return mu + self.alpha * mu**2

    def nll(self, y, eta):
        a = self.alpha
        log_mu = self.link.log_inverse(eta)
        # log(1 + a mu) = softplus(log a + log mu), finite for every eta.
        log1p_amu = jnp.logaddexp(0.0, jnp.log(a) + log_mu)
        return _xlogx(y) - y * log_mu - (y + 1.0 / a) * (jnp.log1p(a * y) - log1p_amu)

    def starting_mu(self, y):
        return y + 0.1

    def support_error(self, y):
        if self.alpha is not None and _is_concrete(self.alpha) and not np.all(
                np.asarray(self.alpha) > 0):  # alpha=None: estimated (linjax.nb)
            return f"NegativeBinomial(alpha={self.alpha}) needs alpha > 0"
        return _range_error(y, y >= 0, "y >= 0")


@pytree_dataclass
class NBCanonicalLink(L.AbstractLink):
    """eta = log(alpha mu / (1 + alpha mu)), the negative binomial's canonical link."""

    alpha: float = 1.0
    name = "nb_canonical"

    def link(self, mu):
        return jnp.log(self.alpha * mu / (1 + self.alpha * mu))

    def inverse(self, eta):
        return -jnp.exp(eta) / (self.alpha * jnp.expm1(eta))

    def deriv(self, mu):
        return 1.0 / (mu * (1 + self.alpha * mu))

    def inverse_deriv(self, eta):
        return jnp.exp(eta) / (self.alpha * jnp.expm1(eta) ** 2)

    def valid_eta(self, eta):
        return jnp.isfinite(eta) & (eta < 0)


@pytree_dataclass
class Tweedie(AbstractFamily):
    """Tweedie: V(mu) = mu^power, `power` a leaf (0 Gaussian, 1 Poisson, (1, 2) compound
    Poisson-gamma, 2 Gamma, 3 inverse Gaussian). Default link: log (as scikit-learn and
    statsmodels; the canonical link is Power(1 - power)).

        d = 2 [max(y, 0)^(2-p) / ((1-p)(2-p)) - y mu^(1-p) / (1-p) + mu^(2-p) / (2-p)]

    `log_prob` is the Dunn & Smyth (2005) series for 1 < p < 2 (summed over a fixed
    window of `series_terms` terms around its largest term) and the closed forms at
    p = 0, 1, 2, 3; other powers have no closed density and raise.
    """

    power: float = 1.5
    link: L.AbstractLink = None
    series_terms: int = static_field(default=400)
    name = "tweedie"
    estimates_dispersion = True

    def default_link(self):
        return L.Log()

    @property
    def canonical_link(self):
        return L.Power(power=1.0 - self.power)

    def variance(self, mu):
        return mu**self.power

    def unit_deviance(self, y, mu):
        return 2 * self._half_deviance(y, jnp.log(mu), mu)

    def nll(self, y, eta):
        return self._half_deviance(y, self.link.log_inverse(eta), self.link.inverse(eta))

    def _half_deviance(self, y, log_mu, mu):
        p = self.power
        is1, is2 = p == 1, p == 2
        ps = jnp.where(is1 | is2, 1.5, p)
        y_pos = jnp.maximum(y, 0.0)
        y_term = jnp.where(y_pos > 0, y_pos ** (2 - ps), 0.0) / ((1 - ps) * (2 - ps))
        general = y_term - y * jnp.exp((1 - ps) * log_mu) / (1 - ps) + jnp.exp(
            (2 - ps) * log_mu) / (2 - ps)
        poisson = mu - y * log_mu + _xlogx(y) - y
        y_safe = jnp.where(y > 0, y, 1.0)
        gamma = y * jnp.exp(-log_mu) - 1.0 + log_mu - jnp.log(y_safe)
        return jnp.where(is1, poisson, jnp.where(is2, gamma, general))

    def starting_mu(self, y):
        return y + 0.1

    def log_prob(self, y, mu, scale=1.0):
        p = self.power
        if _is_concrete(p):
            pv = np.asarray(p)
            ok = (pv == 0) | (pv == 2) | (pv == 3) | ((pv >= 1) & (pv < 2))
            if not np.all(ok):
                raise NotImplementedError(
                    f"Tweedie(power={p}).log_prob: the density has no series implemented for "
                    "this power; log_prob supports power 0, [1, 2), 2 and 3."
                )
        y, mu = jnp.broadcast_arrays(jnp.asarray(y), jnp.asarray(mu))
        scale = jnp.asarray(scale, mu.dtype)
        gaussian = Gaussian().log_prob(y, mu, scale)
        poisson = Poisson().log_prob(y / scale, mu / scale) - jnp.log(scale)
        gamma = Gamma().log_prob(jnp.where(y > 0, y, 1.0), mu, scale)
        invgauss = InverseGaussian().log_prob(jnp.where(y > 0, y, 1.0), mu, scale)
        series = _tweedie_series_log_prob(y, mu, scale, jnp.where((p > 1) & (p < 2), p, 1.5),
                                          self.series_terms)
        return jnp.select([p == 0, p == 1, p == 2, p == 3], [gaussian, poisson, gamma, invgauss],
                          series)

    def support_error(self, y):
        p = self.power
        if not _is_concrete(p):
            return None
        pv = float(np.asarray(p))
        if 0 < pv < 1:
            return (f"Tweedie(power={pv}) does not exist for 0 < power < 1; use power 0 "
                    "(Gaussian), 1 (Poisson), 1 < power < 2 (compound Poisson-gamma) or >= 2.")
        if pv <= 0:
            return None
        if pv < 2:
            return _range_error(y, y >= 0, f"y >= 0 for Tweedie power {pv}")
        return _range_error(y, y > 0, f"y > 0 for Tweedie power {pv}")


def _tweedie_series_log_prob(y, mu, phi, p, n_terms):
    """Dunn & Smyth's series for the compound Poisson-gamma density, 1 < p < 2.

    log f(y) = -log y + log W(y) + [y mu^(1-p) / (1-p) - mu^(2-p) / (2-p)] / phi, with
    W = sum_j z^j / (j! Gamma(-j a)), a = (2-p)/(1-p), summed around j_max = y^(2-p)/(phi (2-p)).
    P(y = 0) = exp(-mu^(2-p) / (phi (2-p))).
    """
    a = (2 - p) / (1 - p)
    y_safe = jnp.where(y > 0, y, 1.0)
    log_z = (-a * jnp.log(y_safe) + a * jnp.log(p - 1) - (1 - a) * jnp.log(phi)
             - jnp.log(2 - p))
    j_max = jnp.maximum(y_safe ** (2 - p) / (phi * (2 - p)), 1.0)
    j_lo = jnp.maximum(jnp.floor(j_max) - n_terms // 2, 1.0)
    j = j_lo[..., None] + jnp.arange(n_terms, dtype=y_safe.dtype)
    log_terms = j * log_z[..., None] - gammaln(j + 1) - gammaln(-jnp.asarray(a)[..., None] * j)
    log_w = jax.scipy.special.logsumexp(log_terms, axis=-1)
    theta_part = (y * mu ** (1 - p) / (1 - p) - mu ** (2 - p) / (2 - p)) / phi
    positive = -jnp.log(y_safe) + log_w + theta_part
    zero = -(mu ** (2 - p)) / (phi * (2 - p))
    return jnp.where(y > 0, positive, zero)


@pytree_dataclass
class SoftmaxLink(L.AbstractLink):
    """Multinomial link: mu = softmax(eta) over the last axis; eta = centred log mu."""

    name = "softmax"

    def link(self, mu):
        log_mu = jnp.log(mu)
        return log_mu - jnp.mean(log_mu, axis=-1, keepdims=True)

    def inverse(self, eta):
        return jax.nn.softmax(eta, axis=-1)

    def log_inverse(self, eta):
        return jax.nn.log_softmax(eta, axis=-1)

    def deriv(self, mu):
        return 1.0 / mu

    def inverse_deriv(self, eta):
        mu = self.inverse(eta)
        return mu * (1 - mu)


@pytree_dataclass
class Multinomial(AbstractFamily):
    """Multinomial (softmax) regression over K classes with `(p, K)` coefficients.

    `y` holds integer class labels 0..K-1 (floats holding integers are accepted), or
    an (n, K) array of class proportions. `nll` is -log mu_y (half the unit
    deviance). `n_classes` is static; `lj.fit` fills it in from the labels when it
    is None (pass it explicitly under `jit`/`vmap`, where labels are traced).

    Identifiability: softmax is unchanged by adding the same vector to every
    class's coefficients, so linjax reports the sum-to-zero (minimum-norm)
    solution: the intercepts always sum to zero over classes, and without an L1
    part in the penalty so do the coefficients of each feature (this is the
    optimum of any L2 penalty, as scikit-learn's). statsmodels' MNLogit
    coefficients for class k are `coef[:, k] - coef[:, 0]`.
    """

    n_classes: int = static_field(default=None)
    link: L.AbstractLink = None
    name = "multinomial"
    multiclass = True

    def curvature_bound(self):
        """1/2: the softmax loss's Hessian diag(pi) - pi pi' has eigenvalues at most 1/2."""
        return 0.5

    @property
    def canonical_link(self):
        return SoftmaxLink()

    def _onehot(self, y, like):
        if y.ndim == like.ndim:
            return y.astype(like.dtype)
        return (y[..., None] == jnp.arange(like.shape[-1], dtype=y.dtype)).astype(like.dtype)

    def nll(self, y, eta):
        y = jnp.asarray(y)
        log_mu = jax.nn.log_softmax(eta, axis=-1)
        onehot = self._onehot(y, eta)
        return jnp.sum(xlogy(onehot, onehot) - onehot * log_mu, axis=-1)

    def log_prob(self, y, mu, scale=1.0):
        onehot = self._onehot(jnp.asarray(y), mu)
        return jnp.sum(xlogy(onehot, mu), axis=-1)

    def unit_deviance(self, y, mu):
        onehot = self._onehot(jnp.asarray(y), mu)
        return 2 * jnp.sum(xlogy(onehot, onehot) - xlogy(onehot, mu), axis=-1)

    def variance(self, mu):
        return mu * (1 - mu)

    def starting_mu(self, y):
        k = self.n_classes
        onehot = self._onehot(jnp.asarray(y), jnp.zeros((1, k)))
        return (onehot + 1.0 / k) / 2

    def support_error(self, y):
        y = np.asarray(y)
        if y.ndim == 2:
            return _range_error(y, (y >= 0) & (y <= 1), "class proportions in [0, 1]")
        ok = (y >= 0) & (y == np.round(y))
        if self.n_classes is not None:
            ok &= y < self.n_classes
        message = _range_error(y, ok, "integer class labels 0..K-1")
        if message or self.n_classes is not None or y.size == 0:
            return message
        return _inferred_classes_error(y)


def _inferred_classes_error(labels):
    """None when integer labels 0..max(labels) name K = max + 1 classes that all occur (and K
    is at most the number of rows), else a message: K is read from the labels, so a label of
    1e8 would mean 1e8 classes, and a class without observations has no finite intercept."""
    n_classes = int(labels.max()) + 1
    present = np.unique(labels)
    if n_classes <= labels.shape[0] and present.size == n_classes:
        return None
    absent = np.setdiff1d(np.arange(min(n_classes, present.size + 3)), present)[:3]
    n_absent = n_classes - present.size
    return (f"integer class labels 0..K-1 expected: max(y) + 1 = {n_classes} classes but only "
            f"{present.size} distinct labels occur in {labels.shape[0]} rows ({n_absent} "
            f"label(s) absent, the first {absent.tolist()}). Encode the classes "
            "as 0..K-1, for example with np.unique(y, return_inverse=True)[1] (the estimators "
            "do this for you), or pass Multinomial(n_classes=K) to keep a class that has no "
            "observations")


def eta_hessians(family, y, eta):
    """Per-observation (nll, gradient (n, K), Hessian (n, K, K)) of a vector-eta family.

    The multiclass counterpart of `eta_derivatives`: autodiff of the unit loss of
    one observation, vmapped over rows.
    """

    def unit(yi, ei):
        return family.nll(yi, ei)

    nll = family.nll(y, eta)
    grad = jax.vmap(jax.grad(unit, argnums=1))(y, eta)
    hess = jax.vmap(jax.hessian(unit, argnums=1))(y, eta)
    return nll, grad, hess


FAMILIES = {
    "gaussian": Gaussian, "normal": Gaussian, "binomial": Binomial, "logistic": Binomial,
    "poisson": Poisson, "gamma": Gamma, "inverse_gaussian": InverseGaussian,
    "inversegaussian": InverseGaussian, "negative_binomial": NegativeBinomial,
    "negativebinomial": NegativeBinomial, "nb": NegativeBinomial, "tweedie": Tweedie,
    "multinomial": Multinomial, "softmax": Multinomial,
}


def get_family(name_or_family, link=None, **params):
    """A family from its name ("poisson", ...) or an instance (returned as is)."""
    if isinstance(name_or_family, AbstractFamily):
        return name_or_family
    key = str(name_or_family).lower().replace("-", "_").replace(" ", "_")
    if key not in FAMILIES:
        raise ValueError(f"family: unknown family {name_or_family!r}; choose one of "
                         f"{sorted(set(FAMILIES))}.")
    return FAMILIES[key](link=L.get_link(link) if link is not None else None, **params)
