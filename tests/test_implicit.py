"""Gradients through lj.fit (implicit differentiation) against central finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax import families as F
from linjax import penalties as P
from tests import zoo

FAMILIES = {"gaussian": F.Gaussian(), "binomial": F.Binomial(), "poisson": F.Poisson()}
PENALTIES = {
    "ridge": lambda a: P.L2(alpha=a),
    "lasso": lambda a: P.L1(alpha=a),
    "enet": lambda a: P.ElasticNet(alpha=a, l1_ratio=0.5),
}
ALPHA = {"ridge": 0.2, "lasso": 0.02, "enet": 0.03}


def _central(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("pen", list(PENALTIES))
@pytest.mark.parametrize("fam", list(FAMILIES))
def test_hypergradient_in_alpha_matches_finite_differences(fam, pen):
    X, y, w, off = zoo.problem(fam)
    family = FAMILIES[fam]

    def loss(alpha):
        res = lj.fit(X, y, family=family, penalty=PENALTIES[pen](alpha), weights=w, offset=off)
        return jnp.sum(res.params["coef"] ** 2) + res.params["intercept"]

    alpha = ALPHA[pen]
    coef = lj.fit(X, y, family=family, penalty=PENALTIES[pen](alpha), weights=w,
                  offset=off).params["coef"]
    assert np.all(np.abs(coef) > 1e-6), "chosen alpha must keep every coefficient active"
    grad = jax.grad(loss)(alpha)
    fd = _central(loss, alpha, 1e-6)
    np.testing.assert_allclose(grad, fd, rtol=1e-4)


def test_gradients_in_data_weights_offset():
    X, y, w, off = zoo.problem("poisson")
    X, y, w, off = map(jnp.asarray, (X, y, w, off))
    pen = P.L2(alpha=0.1)

    def first_coef(X, y, w, off):
        return lj.fit(X, y, family=F.Poisson(), penalty=pen, weights=w, offset=off).params[
            "coef"][0]

    grads = jax.grad(first_coef, argnums=(0, 1, 2, 3))(X, y, w, off)
    h = 1e-6
    for arg, g, idx in [(0, grads[0], (4, 1)), (1, grads[1], (7,)), (2, grads[2], (9,)),
                        (3, grads[3], (11,))]:
        args = [X, y, w, off]
        e = jnp.zeros_like(args[arg]).at[idx].set(h)
        plus = first_coef(*[a + e if i == arg else a for i, a in enumerate(args)])
        minus = first_coef(*[a - e if i == arg else a for i, a in enumerate(args)])
        np.testing.assert_allclose(g[idx], (plus - minus) / (2 * h), rtol=1e-5, atol=1e-10)


def test_gradient_in_family_parameter_and_objective_envelope():
    X, y, w, _ = zoo.problem("negative_binomial")

    def fitted(alpha_nb):
        return lj.fit(X, y, family=F.NegativeBinomial(alpha=alpha_nb), weights=w)

    g = jax.grad(lambda a: fitted(a).params["coef"][2])(0.5)
    np.testing.assert_allclose(g, _central(lambda a: fitted(a).params["coef"][2], 0.5, 1e-6),
                               rtol=1e-5)
    g_obj = jax.grad(lambda a: fitted(a).objective)(0.5)
    np.testing.assert_allclose(g_obj, _central(lambda a: fitted(a).objective, 0.5, 1e-6),
                               rtol=1e-6)


def test_vmap_of_grad_over_penalty_grid():
    X, y, w, off = zoo.problem("binomial")

    def loss(alpha):
        res = lj.fit(X, y, family=F.Binomial(), penalty=P.L2(alpha=alpha), weights=w)
        return res.params["coef"][0]

    alphas = jnp.array([0.05, 0.5])
    batched = jax.vmap(jax.grad(loss))(alphas)
    np.testing.assert_allclose(batched, [jax.grad(loss)(a) for a in alphas], rtol=1e-10)
