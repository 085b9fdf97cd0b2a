"""Special functions for the negative binomial's dispersion: lgamma, digamma and their
differences in r = 1/alpha, written out as series.

XLA's CPU lgamma and digamma cost several times a few multiplications and a log, and in a
dispersion search they are most of the time. Here one shifted Stirling series gives lgamma
and digamma together (`lgamma_digamma`), and the differences that the likelihood of a count
y needs (lgamma(y + r) - lgamma(r), psi(y + r) - psi(r), psi'(y + r) - psi'(r)) are
written as differences, so that they keep their digits as r grows (alpha -> 0), where
they are O(y log r), O(y / r) and O(y / r^2).
"""

import math

import jax
import jax.numpy as jnp

#: lgamma and digamma shift their argument by this many steps before the asymptotic series,
#: whose truncation error at 10 is below 1e-15.
SHIFT = 10
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

#: The differences in r shift r below this by this many steps (series error < 1e-13 at 8).
DIFFERENCE_SHIFT = 8


def lgamma_digamma(x):
    """(lgamma(x), digamma(x)) for x > 0, to about 1e-14 relative, sharing their work:

        lgamma(x) = lgamma(z) - log P,  digamma(x) = digamma(z) - P'/P,
        z = x + SHIFT,  P = x (x + 1) ... (x + SHIFT - 1),

    with Stirling's series for lgamma(z) and digamma(z): a few multiplications, two logs and
    two divisions per entry. Exact arithmetic in P up to x ~ 1e30."""
    P, dP = x, jnp.ones_like(x)
    for i in range(1, SHIFT):
        dP = dP * (x + i) + P
        P = P * (x + i)
    z = x + SHIFT
    iz = 1.0 / z
    iz2 = iz * iz
    logz = jnp.log(z)
    lgamma = (z - 0.5) * logz - z + HALF_LOG_2PI + _lgamma_series(iz, iz2) - jnp.log(P)
    digamma = logz - 0.5 * iz - _digamma_series(iz2) - dP / P
    return lgamma, digamma


def _lgamma_series(iz, iz2):
    """lgamma(z) - ((z - 1/2) log z - z + log(2 pi)/2) in 1/z."""
    return iz * (1 / 12 - iz2 * (1 / 360 - iz2 * (1 / 1260 - iz2 * (
        1 / 1680 - iz2 * (1 / 1188 - iz2 * (691 / 360360))))))


def _digamma_series(iz2):
    """log z - 1/(2z) - digamma(z) in 1/z^2."""
    return iz2 * (1 / 12 - iz2 * (1 / 120 - iz2 * (1 / 252 - iz2 * (
        1 / 240 - iz2 * (1 / 132 - iz2 * (691 / 32760))))))


@jax.custom_jvp
def lgamma(x):
    """lgamma(x), x > 0, by `lgamma_digamma` (its derivative the digamma of the same)."""
    return lgamma_digamma(x)[0]


@lgamma.defjvp
def _lgamma_jvp(primals, tangents):
    lg, dg = lgamma_digamma(primals[0])
    return lg, dg * tangents[0]


def _shift_of(r):
    """DIFFERENCE_SHIFT where r < DIFFERENCE_SHIFT (then the series start at r + shift)."""
    return jnp.where(r < DIFFERENCE_SHIFT, float(DIFFERENCE_SHIFT), 0.0).astype(r.dtype)


def _shifted_product(x):
    """Q = prod_{j<8} (x + j) with Q'/Q = sum 1/(x+j) and (Q'/Q)^2 - Q''/Q = sum 1/(x+j)^2
    (one division instead of eight): (Q, sum 1/(x+j), sum 1/(x+j)^2)."""
    q, q1, q2 = jnp.ones_like(x), jnp.zeros_like(x), jnp.zeros_like(x)
    for j in range(DIFFERENCE_SHIFT):
        xj = x + j
        q2 = q2 * xj + 2 * q1
        q1 = q1 * xj + q
        q = q * xj
    iq = 1 / q
    s1 = q1 * iq
    return q, s1, s1 * s1 - q2 * iq


def psi_differences(y, r):
    """psi(y + r) - psi(r) and psi'(y + r) - psi'(r) (digamma, trigamma), y >= 0, r > 0.

    Asymptotic series at arguments >= 8 (after the recurrence psi(x) = psi(x+8) -
    sum_{j<8} 1/(x+j) where r < 8), written as differences so that both stay accurate for
    r up to 1e8 and more (alpha -> 0), where they are O(y / r) and O(y / r^2)."""
    shift = _shift_of(r)
    z0 = r + shift
    z1 = y + z0
    i0, i1 = 1 / z0, 1 / z1
    d_inv = -y * i0 * i1                          # 1/z1 - 1/z0
    q0, q1 = i0 * i0, i1 * i1

    def p_psi(q):   # psi(z) = log z - 1/(2z) - p_psi(1/z^2)
        return q * (1 / 12 - q * (1 / 120 - q * (1 / 252 - q * (1 / 240 - q / 132))))

    def p_tri(i, q):   # psi'(z) = 1/z + 1/(2z^2) + p_tri
        return i * q * (1 / 6 - q * (1 / 30 - q * (1 / 42 - q * (1 / 30 - q * 5 / 66))))

    d1 = jnp.log1p(y * i0) - 0.5 * d_inv - (p_psi(q1) - p_psi(q0))
    d2 = d_inv + 0.5 * d_inv * (i1 + i0) + (p_tri(i1, q1) - p_tri(i0, q0))
    _, s1y, s2y = _shifted_product(y + r)
    _, s1r, s2r = _shifted_product(r)
    use = shift > 0
    d1 = d1 - jnp.where(use, s1y - s1r, 0.0)
    d2 = d2 + jnp.where(use, s2y - s2r, 0.0)
    return d1, d2


def lgamma_difference(y, r):
    """lgamma(y + r) - lgamma(r), y >= 0, r > 0, accurate as r grows (where both terms are
    ~ r log r and their difference ~ y log r):

        (z0 - 1/2) log1p(y / z0) + y log z1 - y + series(z1) - series(z0) - log(Q(y+r)/Q(r))

    z0 = r + shift, z1 = y + z0, Q the product of `_shifted_product` where r < 8."""
    shift = _shift_of(r)
    z0 = r + shift
    z1 = y + z0
    i0, i1 = 1 / z0, 1 / z1
    d = ((z0 - 0.5) * jnp.log1p(y * i0) + y * jnp.log(z1) - y
         + _lgamma_series(i1, i1 * i1) - _lgamma_series(i0, i0 * i0))
    qy = _shifted_product(y + r)[0]
    qr = _shifted_product(r)[0]
    return d - jnp.where(shift > 0, jnp.log(qy / qr), 0.0)
