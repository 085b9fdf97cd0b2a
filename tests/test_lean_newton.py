"""The lean Newton program of an eager `lj.fit`: float32 Hessian products without the
full-precision Hessian in the program (`Newton(precision_fallback=False)`).

A step that would return to full precision (the linear rate of an inexact Hessian showing
near the optimum, a rejected or a singular step) ends the lean program with status
NON_FINITE, and `lj.fit` then runs the whole program from the start: its answer is the whole
program's (the reference here), never the lean program's.
"""

import importlib

import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax._pytree import replace
from linjax.buckets import bucket_rows
from linjax.penalties import NoPenalty
from linjax.solvers import Status

fit_module = importlib.import_module("linjax.fit")
N = 208  # a bucket size: the eager fit pads nothing, so it runs the very programs below
MIXED = lj.solvers.Newton(precision="mixed")
LEAN = replace(MIXED, eigen_fallback=False, precision_fallback=False)


def _data(gap, seed=0):
    """Logistic data whose fourth column is the first plus gap * noise: cond(X'X) ~ 1 / gap^2."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, 3))
    X = np.c_[Z, Z[:, 0] + gap * rng.standard_normal(N)]
    y = (rng.random(N) < 1 / (1 + np.exp(-X[:, 0] + X[:, 3]))).astype(float)
    return X, y


def _program(X, y, solver):
    return fit_module.fit_validated(jnp.asarray(X), jnp.asarray(y), None, None, None,
                                    lj.families.Binomial(), NoPenalty(), solver, True, None,
                                    start_in_loop=True)


def test_bucket_size_is_not_padded():
    assert bucket_rows(N) == N


@pytest.mark.parametrize("gap", [1e-2, 1e-3])
def test_eager_fit_is_the_whole_programs_answer(gap):
    """Well conditioned (gap 1e-2): the lean program converges in float32 products alone, to
    the whole program's answer. Ill conditioned (1e-3): the whole program returns to full
    precision near the optimum; the lean one stops there (NON_FINITE), and the eager fit
    reruns: its coefficients, iterations and status are the whole program's."""
    X, y = _data(gap)
    whole, lean = _program(X, y, MIXED), _program(X, y, LEAN)
    eager = lj.fit(X, y, family="binomial", solver=MIXED)
    assert int(whole.status) == int(eager.status) == Status.CONVERGED
    assert int(eager.n_iter) == int(whole.n_iter)
    np.testing.assert_allclose(np.asarray(eager.coef), np.asarray(whole.coef), rtol=1e-12)
    np.testing.assert_allclose(float(eager.intercept), float(whole.intercept), rtol=1e-12,
                               atol=1e-14)
    if gap == 1e-2:
        assert bool(whole.info.single)  # never left float32 products
        assert int(lean.status) == Status.CONVERGED
        np.testing.assert_allclose(np.asarray(lean.coef), np.asarray(whole.coef), rtol=1e-12)
    else:
        assert not bool(whole.info.single)  # returned to full precision
        assert int(lean.status) == Status.NON_FINITE
        assert int(lean.n_iter) < int(whole.n_iter)


def test_lean_program_has_no_full_precision_hessian():
    """The whole program forms the (5, 5) Hessian's products in float64 and in float32 (both
    branches of the precision switch); the lean one in float32 only."""
    X, y = _data(1e-2)

    def text(solver):
        return fit_module.fit_validated.lower(
            jnp.asarray(X), jnp.asarray(y), None, None, None, lj.families.Binomial(),
            NoPenalty(), solver, True, None, start_in_loop=True).as_text()

    def gram_dots(program, dtype):
        return sum("dot_general" in line and f"-> tensor<5x5x{dtype}>" in line
                   for line in program.splitlines())

    whole, lean = text(MIXED), text(LEAN)
    assert gram_dots(whole, "f32") >= 1 and gram_dots(whole, "f64") >= 1
    assert gram_dots(lean, "f32") >= 1 and gram_dots(lean, "f64") == 0
