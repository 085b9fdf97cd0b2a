"""Link functions g: mean mu -> linear predictor eta = g(mu).

Each link has `link(mu)`, `inverse(eta)`, `deriv(mu)` (d eta / d mu) and
`inverse_deriv(eta)` (d mu / d eta), plus `log_inverse(eta)` = log mu and, for
links onto (0, 1), `log1m_inverse(eta)` = log(1 - mu), written so that the
Binomial and log-linear likelihoods stay finite for large |eta|.
"""

import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr, ndtri

from linjax._pytree import pytree_dataclass


def maxlog(x):
    """Largest argument of exp that stays finite in the dtype of `x`, with headroom."""
    return jnp.log(jnp.finfo(jnp.result_type(x, float)).max) - 2.0


def _tiny(x):
    return jnp.finfo(jnp.result_type(x, float)).tiny


def _safe_exp(x):
    return jnp.exp(jnp.minimum(x, maxlog(x)))


class AbstractLink:
    """Base class: subclasses define link, inverse, deriv and inverse_deriv."""

    name = "abstract"

    def link(self, mu):
        raise NotImplementedError

    def inverse(self, eta):
        raise NotImplementedError

    def deriv(self, mu):
        raise NotImplementedError

    def inverse_deriv(self, eta):
        raise NotImplementedError

    def log_inverse(self, eta):
        """log mu."""
        return jnp.log(jnp.maximum(self.inverse(eta), _tiny(eta)))

    def log1m_inverse(self, eta):
        """log(1 - mu), for links onto (0, 1)."""
        return jnp.log(jnp.maximum(1.0 - self.inverse(eta), _tiny(eta)))

    def valid_eta(self, eta):
        """True where `inverse(eta)` is inside the link's range (all eta for most links)."""
        return jnp.isfinite(eta)

    def __repr__(self):
        return f"{type(self).__name__}()"


@pytree_dataclass
class Identity(AbstractLink):
    """eta = mu."""

    name = "identity"

    def link(self, mu):
        return mu

    def inverse(self, eta):
        return eta

    def deriv(self, mu):
        return jnp.ones_like(mu)

    def inverse_deriv(self, eta):
        return jnp.ones_like(eta)

    def log_inverse(self, eta):
        return jnp.log(jnp.maximum(eta, _tiny(eta)))

    def valid_eta(self, eta):
        return jnp.isfinite(eta)


@pytree_dataclass
class Log(AbstractLink):
    """eta = log(mu); eta is clipped to +-(log of the largest float) so mu and 1/mu stay finite."""

    name = "log"

    def link(self, mu):
        return jnp.log(mu)

    def inverse(self, eta):
        return jnp.exp(self.log_inverse(eta))

    def deriv(self, mu):
        return 1.0 / mu

    def inverse_deriv(self, eta):
        return jnp.exp(self.log_inverse(eta))

    def log_inverse(self, eta):
        bound = maxlog(eta)
        return jnp.clip(eta, -bound, bound)


@pytree_dataclass
class Logit(AbstractLink):
    """eta = log(mu / (1 - mu)); mu = sigmoid(eta)."""

    name = "logit"

    def link(self, mu):
        return jnp.log(mu) - jnp.log1p(-mu)

    def inverse(self, eta):
        return 1.0 / (1.0 + jnp.exp(-eta))

    def deriv(self, mu):
        return 1.0 / (mu * (1.0 - mu))

    def inverse_deriv(self, eta):
        # sigmoid(eta) * sigmoid(-eta) written without cancellation: e^{-|eta|} / (1 + e^{-|eta|})^2
        e = jnp.exp(-jnp.abs(eta))
        return e / (1.0 + e) ** 2

    def log_inverse(self, eta):
        return -jnp.logaddexp(0.0, -eta)

    def log1m_inverse(self, eta):
        return -jnp.logaddexp(0.0, eta)


@pytree_dataclass
class Probit(AbstractLink):
    """eta = Phi^{-1}(mu), the standard normal quantile."""

    name = "probit"

    def link(self, mu):
        return ndtri(mu)

    def inverse(self, eta):
        return ndtr(eta)

    def deriv(self, mu):
        eta = ndtri(mu)
        return 1.0 / _normal_pdf(eta)

    def inverse_deriv(self, eta):
        return _normal_pdf(eta)

    def log_inverse(self, eta):
        return log_ndtr(eta)

    def log1m_inverse(self, eta):
        return log_ndtr(-eta)


def _normal_pdf(x):
    return jnp.exp(-0.5 * x * x) / jnp.sqrt(2.0 * jnp.pi)


@pytree_dataclass
class CLogLog(AbstractLink):
    """eta = log(-log(1 - mu)); mu = 1 - exp(-exp(eta))."""

    name = "cloglog"

    def link(self, mu):
        return jnp.log(-jnp.log1p(-mu))

    def inverse(self, eta):
        return -jnp.expm1(-_safe_exp(eta))

    def deriv(self, mu):
        return -1.0 / ((1.0 - mu) * jnp.log1p(-mu))

    def inverse_deriv(self, eta):
        eta = jnp.minimum(eta, maxlog(eta))
        return jnp.exp(eta - jnp.exp(eta))

    def log_inverse(self, eta):
        # log(1 - exp(-e^eta)); for very negative eta this is eta - e^eta / 2.
        return jnp.where(
            eta < -20.0, eta, jnp.log(jnp.maximum(-jnp.expm1(-_safe_exp(eta)), _tiny(eta)))
        )

    def log1m_inverse(self, eta):
        return -_safe_exp(eta)


@pytree_dataclass
class LogLog(AbstractLink):
    """eta = -log(-log(mu)); mu = exp(-exp(-eta))."""

    name = "loglog"

    def link(self, mu):
        return -jnp.log(-jnp.log(mu))

    def inverse(self, eta):
        return jnp.exp(-_safe_exp(-eta))

    def deriv(self, mu):
        return -1.0 / (mu * jnp.log(mu))

    def inverse_deriv(self, eta):
        e = jnp.maximum(-eta, -maxlog(eta))
        e = jnp.minimum(e, maxlog(eta))
        return jnp.exp(e - jnp.exp(e))

    def log_inverse(self, eta):
        return -_safe_exp(-eta)

    def log1m_inverse(self, eta):
        return jnp.where(
            eta > 20.0, -eta, jnp.log(jnp.maximum(-jnp.expm1(-_safe_exp(-eta)), _tiny(eta)))
        )


@pytree_dataclass
class Cauchit(AbstractLink):
    """eta = tan(pi (mu - 1/2)); mu = 1/2 + arctan(eta) / pi."""

    name = "cauchit"

    def link(self, mu):
        return jnp.tan(jnp.pi * (mu - 0.5))

    def inverse(self, eta):
        return 0.5 + jnp.arctan(eta) / jnp.pi

    def deriv(self, mu):
        return jnp.pi / jnp.cos(jnp.pi * (mu - 0.5)) ** 2

    def inverse_deriv(self, eta):
        return 1.0 / (jnp.pi * (1.0 + eta * eta))

    def log_inverse(self, eta):
        # For eta < 0: mu = arctan(-1/eta) / pi exactly, with no cancellation.
        small = jnp.arctan(-1.0 / jnp.minimum(eta, -1.0)) / jnp.pi
        return jnp.log(jnp.maximum(jnp.where(eta < -1.0, small, self.inverse(eta)), _tiny(eta)))

    def log1m_inverse(self, eta):
        return self.log_inverse(-eta)


@pytree_dataclass
class Inverse(AbstractLink):
    """eta = 1 / mu (canonical for Gamma)."""

    name = "inverse"

    def link(self, mu):
        return 1.0 / mu

    def inverse(self, eta):
        return 1.0 / eta

    def deriv(self, mu):
        return -1.0 / (mu * mu)

    def inverse_deriv(self, eta):
        return -1.0 / (eta * eta)

    def log_inverse(self, eta):
        return -jnp.log(eta)

    def valid_eta(self, eta):
        return jnp.isfinite(eta) & (eta > 0)


@pytree_dataclass
class InverseSquared(AbstractLink):
    """eta = 1 / mu^2 (canonical for the inverse Gaussian)."""

    name = "inverse_squared"

    def link(self, mu):
        return 1.0 / (mu * mu)

    def inverse(self, eta):
        return 1.0 / jnp.sqrt(eta)

    def deriv(self, mu):
        return -2.0 / mu**3

    def inverse_deriv(self, eta):
        return -0.5 * eta ** (-1.5)

    def log_inverse(self, eta):
        return -0.5 * jnp.log(eta)

    def valid_eta(self, eta):
        return jnp.isfinite(eta) & (eta > 0)


@pytree_dataclass
class Sqrt(AbstractLink):
    """eta = sqrt(mu)."""

    name = "sqrt"

    def link(self, mu):
        return jnp.sqrt(mu)

    def inverse(self, eta):
        return eta * eta

    def deriv(self, mu):
        return 0.5 / jnp.sqrt(mu)

    def inverse_deriv(self, eta):
        return 2.0 * eta

    def log_inverse(self, eta):
        return 2.0 * jnp.log(jnp.maximum(jnp.abs(eta), _tiny(eta)))

    def valid_eta(self, eta):
        return jnp.isfinite(eta) & (eta > 0)


@pytree_dataclass
class Power(AbstractLink):
    """eta = mu^power (power = 0 means log, as R's `power()` link). `power` is a leaf."""

    power: float = 1.0
    name = "power"

    def link(self, mu):
        p = self.power
        return jnp.where(p == 0, jnp.log(mu), mu ** jnp.where(p == 0, 1.0, p))

    def inverse(self, eta):
        p = self.power
        safe_p = jnp.where(p == 0, 1.0, p)
        return jnp.where(p == 0, _safe_exp(eta), jnp.abs(eta) ** (1.0 / safe_p))

    def deriv(self, mu):
        p = self.power
        return jnp.where(p == 0, 1.0 / mu, p * mu ** (p - 1.0))

    def inverse_deriv(self, eta):
        p = self.power
        safe_p = jnp.where(p == 0, 1.0, p)
        return jnp.where(
            p == 0, _safe_exp(eta), jnp.abs(eta) ** (1.0 / safe_p - 1.0) / safe_p
        )

    def __repr__(self):
        return f"Power(power={self.power})"


LINKS = {
    cls.name: cls
    for cls in (Identity, Log, Logit, Probit, CLogLog, LogLog, Cauchit, Inverse, InverseSquared,
                Sqrt)
}


def get_link(name_or_link):
    """A link from its name ("log", "logit", ...) or a link instance (returned as is)."""
    if isinstance(name_or_link, AbstractLink):
        return name_or_link
    key = str(name_or_link).lower().replace("-", "_")
    aliases = {"inverse_power": "inverse", "1/mu^2": "inverse_squared", "cauchy": "cauchit"}
    key = aliases.get(key, key)
    if key not in LINKS:
        raise ValueError(
            f"link: unknown link {name_or_link!r}; choose one of {sorted(LINKS)} or pass "
            "a linjax.links instance such as Power(power=0.5)."
        )
    return LINKS[key]()
