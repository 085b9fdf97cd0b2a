"""Programs for small data compile at XLA's optimization level 0 (linjax._programs)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax import _programs


def _variants(f):
    small = 0 if f._made_small is None else f._made_small._cache_size()
    large = 0 if f._made is None else f._made._cache_size()
    return small, large


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="level 0 is for XLA:CPU")
def test_small_arguments_take_the_level_zero_program(monkeypatch):
    monkeypatch.setenv(_programs.SMALL_PROGRAM_ENV, "100")
    f = _programs.jit(lambda x: jnp.sum(jnp.sin(x)))
    np.testing.assert_allclose(f(jnp.ones(100)), 100 * np.sin(1.0), rtol=1e-12)
    assert _variants(f) == (1, 0)
    np.testing.assert_allclose(f(jnp.ones(101)), 101 * np.sin(1.0), rtol=1e-12)
    assert _variants(f) == (1, 1)
    assert f.cache_size() == 2
    f.clear_cache()
    assert f.cache_size() == 0
    monkeypatch.setenv(_programs.SMALL_PROGRAM_ENV, "0")  # 0: always the optimizing compile
    f(jnp.ones(3))
    assert _variants(f) == (0, 1)
    options = _programs.compiler_options(small=True)
    assert options["xla_backend_optimization_level"] == 0


@pytest.fixture(scope="module")
def poisson_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    y = rng.poisson(np.exp(0.3 + X @ np.array([0.4, -0.3, 0.2]))).astype(float)
    return X, y


def test_level_zero_fit_equals_statsmodels_and_the_optimized_fit(poisson_data, monkeypatch):
    sm = pytest.importorskip("statsmodels.api")
    X, y = poisson_data
    family = lj.families.Poisson()
    small = lj.fit(X, y, family)
    monkeypatch.setenv(_programs.SMALL_PROGRAM_ENV, "0")
    optimized = lj.fit(X, y, family)
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson()).fit(tol=1e-14)
    for r in (small, optimized):
        np.testing.assert_allclose(np.asarray(r.params["coef"]), ref.params[1:], rtol=1e-9)
        np.testing.assert_allclose(float(r.params["intercept"]), ref.params[0], rtol=1e-9)
    np.testing.assert_allclose(np.asarray(small.params["coef"]),
                               np.asarray(optimized.params["coef"]), rtol=1e-12)


def test_eager_vmap_grad_and_a_users_jit_all_run(poisson_data):
    X, y = poisson_data
    family = lj.families.Poisson()
    Y = np.stack([y, y[::-1]])
    loop = np.stack([np.asarray(lj.fit(X, yy, family).params["coef"]) for yy in Y])
    batched = jax.vmap(lambda yy: lj.fit(X, yy, family).params["coef"])(Y)
    np.testing.assert_allclose(np.asarray(batched), loop, rtol=1e-10)
    jitted = jax.jit(lambda yy: lj.fit(X, yy, family).params["coef"])(Y[0])
    np.testing.assert_allclose(np.asarray(jitted), loop[0], rtol=1e-10)
    # d coef / d y by implicit differentiation, against a central difference
    grad = jax.grad(lambda yy: lj.fit(X, yy, family).params["coef"][0])(jnp.asarray(y))
    h = 1e-5
    bump = np.zeros_like(y)
    bump[7] = h
    fd = (float(lj.fit(X, y + bump, family).params["coef"][0])
          - float(lj.fit(X, y - bump, family).params["coef"][0])) / (2 * h)
    np.testing.assert_allclose(float(grad[7]), fd, rtol=1e-5)
