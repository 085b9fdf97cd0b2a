"""Sums over one block of rows: what blocked, sharded and streaming fits accumulate.

Every function returns unnormalized sums over the rows of its block (weights not
divided by their total), so blocks add up: a fit over many blocks is the sum of the
blocks' contributions, whether they come from a `lax.scan` over row blocks of an
array in memory, from chunks read one at a time, or from devices holding shards.
Rows with zero weight contribute exactly nothing (padding is harmless).

Coordinates are those of `GLMProblem.to_vector`: intercept first, then coefficients.
"""

import jax
import jax.numpy as jnp

from linjax import _programs
from linjax.families import eta_derivatives
from linjax.solvers.gram import augmented, weighted_products
from linjax.solvers.linalg import solve_psd
from linjax.starting import (
    intercept_only_start,
    intercept_shift_from_sums,
    shifts_intercept,
    start_working,
)


def split(B, fit_intercept):
    """(coef, intercept) from a coordinate vector."""
    if fit_intercept:
        return B[1:], B[0]
    return B, jnp.zeros((), B.dtype)


def _eta(B, X, offset, fit_intercept):
    coef, intercept = split(B, fit_intercept)
    return X @ coef + intercept + offset


def value_sum(B, X, y, w, offset, family, fit_intercept):
    """sum_i w_i nll_i over the block."""
    nll = family.nll(y, _eta(B, X, offset, fit_intercept))
    return jnp.sum(jnp.where(w > 0, w * nll, 0.0))


def newton_sums(B, X, y, w, offset, family, fisher, fit_intercept):
    """(sum w nll, Xa' (w g), Xa' diag(w h) Xa) over the block, Xa = [1, X]
    (`gram.weighted_products`)."""
    nll, g, h = eta_derivatives(family, y, _eta(B, X, offset, fit_intercept), fisher)
    keep = w > 0
    nll = jnp.where(keep, w * nll, 0.0)
    r = jnp.where(keep, w * g, 0.0)
    s = jnp.where(keep, w * h, 0.0)
    hess, grad = weighted_products(X, s, r, fit_intercept)
    return jnp.sum(nll), grad, hess


def start_sums(X, y, w, offset, family, fit_intercept):
    """Sums for R's first IRLS step (`linjax.starting.initial_params`), unnormalized: the
    working weights s0 and weighted response s0 z0 of `starting.start_working`, summed.

    Returns (gram, rhs, sum w, sum w mu0, sum w offset): the start solves
    (gram / W + ridge) b = rhs / W, and the intercept-only fallback is
    link(sum w mu0 / W) - sum w offset / W.
    """
    mu0, sw, swz = start_working(family, y, w, offset)
    gram, rhs = weighted_products(X, sw, swz, fit_intercept)
    wpos = jnp.where(w > 0, w, 0.0)
    return (gram, rhs, jnp.sum(wpos), jnp.sum(jnp.where(w > 0, w * mu0, 0.0)),
            jnp.sum(wpos * offset))


@_programs.jit(static_argnames=("fit_intercept",))
def solve_start(sums, penalty, family, fit_intercept):
    """(start, fallback) coordinate vectors from the totals of `start_sums`.

    start solves (gram / W + ridge) b = rhs / W, ridge the penalty's smooth curvature at
    zero (0 for the intercept); fallback is the intercept-only start
    link(sum w mu0 / W) - sum w offset / W (all zeros without an intercept).
    """
    gram, rhs, W, w_mu0, w_off = sums
    dtype = gram.dtype
    p = gram.shape[0] - int(fit_intercept)
    ridge = penalty.smooth_hess_diag(jnp.zeros((p,), dtype))
    fallback = jnp.zeros((gram.shape[0],), dtype)
    if fit_intercept:
        ridge = jnp.concatenate([jnp.zeros((1,), dtype), ridge])
        fallback = fallback.at[0].set(intercept_only_start(family.link, w_mu0 / W, w_off / W))
    B, _ = solve_psd(gram / W + jnp.diag(ridge), rhs / W)
    return B, fallback


def start_from_sums(sums, penalty, family, fit_intercept, shift_pass):
    """R's first IRLS step (`linjax.starting.initial_params`) from sums: (start, fallback).

    sums: the totals of `start_sums` over all rows. shift_pass(B): the totals of
    `shift_sums` at B over all rows (one more pass, only where the family has
    `intercept_shift_start` and there is an intercept). The caller keeps the start where
    its objective is finite and the intercept-only fallback otherwise.
    """
    B, fallback = solve_start(sums, penalty, family, fit_intercept)
    if shifts_intercept(family, fit_intercept):
        B = shifted_start(B, shift_pass(B), fit_intercept)
    return B, fallback


def shift_sums(B, X, y, w, offset, fit_intercept):
    """(sum w y, sum w exp(eta)) over the block: the start's intercept shift is log of
    their ratio (`linjax.starting.intercept_shift_from_sums`)."""
    keep = w > 0
    mu = jnp.exp(_eta(B, X, offset, fit_intercept))
    return jnp.sum(jnp.where(keep, w * y, 0.0)), jnp.sum(jnp.where(keep, w * mu, 0.0))


def shifted_start(B, sums, fit_intercept):
    """B with the intercept moved by log(sum w y / sum w exp(eta)) (0 where sum w y = 0)."""
    if not fit_intercept:
        return B
    return B.at[0].add(intercept_shift_from_sums(*sums))


def tsqr_merge(R, X, y, w, offset, fit_intercept):
    """One step of a tall-skinny QR of [sqrt(w) Xa | sqrt(w) (y - offset)].

    R is the (k + 1, k + 1) upper-triangular factor so far (zeros to start); the result
    is the factor of R stacked over this block's rows. The last column carries Q' r and,
    in its last entry, the residual norm of the least-squares fit so far.
    """
    sw = jnp.sqrt(jnp.where(w > 0, w, 0.0))
    A = jnp.concatenate([sw[:, None] * augmented(X, fit_intercept),
                         (sw * (y - offset))[:, None]], axis=1)
    return jnp.linalg.qr(jnp.concatenate([R, A], axis=0), mode="r")[: R.shape[0]]


def scan_blocks(fn, init, blocks):
    """Sum `fn(block)` over the leading axis of `blocks` with a `lax.scan` (O(one block))."""
    def body(acc, block):
        return jax.tree_util.tree_map(jnp.add, acc, fn(*block)), None

    return jax.lax.scan(body, init, blocks)[0]
