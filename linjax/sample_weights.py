"""Sample weights as the fits use them: normalized to sum 1 without overflow, and the check
that their range stays within what the dtype resolves."""

import jax.numpy as jnp


def normalized_weights(weights):
    """w / sum(w), scaled first by the power of two that brings max(w) into [0.5, 1), so that
    the sum cannot overflow (weights of 1e308 are as good as ones). A power of two scales
    exactly; dividing by max(w) would not: XLA divides by multiplying with the reciprocal,
    and 1 / 1e308 is subnormal, flushed to 0."""
    _, exponent = jnp.frexp(jnp.max(weights, axis=-1, keepdims=True))
    unit = jnp.ldexp(weights, -exponent)
    return unit / jnp.sum(unit, axis=-1, keepdims=True)


def weights_beyond_resolution(weights):
    """Whether max(w) / min(w > 0) exceeds 1 / eps^2 of the dtype: then even sqrt(w) x_i of
    the light rows falls below the rounding of the heaviest, no factorization in this dtype
    sees them, and a fit that reports convergence would be silently wrong (traced)."""
    eps = jnp.finfo(weights.dtype).eps
    top = jnp.max(weights, axis=-1)
    low = jnp.min(jnp.where(weights > 0, weights, top[..., None]), axis=-1)
    return top > low / (eps * eps)
