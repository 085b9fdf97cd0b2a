"""Firth's bias-reduced logistic regression against firthmodels (PyPI, an independent
NumPy implementation of logistf's Newton-Raphson) on a completely separated and on a
rare-event data set; check_separation on the same data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from firthmodels import FirthLogisticRegression

import linjax as lj
from linjax import diagnostics as D
from linjax import families as F
from linjax import firth


def _separated():
    """Quasi-complete separation (as logistf's sex2 example): every row with the binary
    feature x0 = 1 has y = 1. The zoo's shape: one compilation for both data sets."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 3))
    X[:, 0] = (np.arange(120) % 5 == 0).astype(float)
    y = (rng.random(120) < 1 / (1 + np.exp(-0.8 * X[:, 1]))).astype(float)
    y[X[:, 0] == 1] = 1.0
    return X, y


def _rare_events():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(120, 3))
    eta = -3.0 + X @ np.array([0.8, -0.5, 0.3])
    return X, (rng.random(120) < 1 / (1 + np.exp(-eta))).astype(float)


@pytest.fixture(scope="module")
def batched_fits():
    """Both data sets, and the rare-event one with weights, in one vmapped fit (one
    compilation; the same shapes also make this the vmap test)."""
    (Xs, ys), (Xr, yr) = _separated(), _rare_events()
    w = np.ones(len(yr))
    w[:10] = 2.0
    X = jnp.stack([jnp.asarray(Xs), jnp.asarray(Xr), jnp.asarray(Xr)])
    Y = jnp.stack([jnp.asarray(ys), jnp.asarray(yr), jnp.asarray(yr)])
    W = jnp.stack([jnp.ones(len(ys)), jnp.ones(len(yr)), jnp.asarray(w)])
    def run(X, y, w):  # Firth as an option of the binomial fit
        return lj.fit(X, y, family=F.Binomial(), weights=w, penalty=lj.penalties.Firth())

    fits = jax.vmap(run)(X, Y, W)
    return [jax.tree_util.tree_map(lambda a, i=i: a[i], fits) for i in range(3)], w


@pytest.mark.parametrize("index, data, kind", [(0, _separated, "quasi-complete"),
                                               (1, _rare_events, "none")])
def test_against_firthmodels(batched_fits, index, data, kind):
    X, y = data()
    assert D.check_separation(X, y).kind == kind
    result = batched_fits[0][index]
    assert bool(result.converged)
    ref = FirthLogisticRegression(gtol=1e-12, xtol=1e-12, max_iter=200).fit(X, y)
    np.testing.assert_allclose(result.params["coef"], ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(result.params["intercept"], ref.intercept_, rtol=1e-6)
    s = lj.inference.summarize(result, X, y)
    # Wald bse as logistf (Heinze and Schemper 2002): I(beta)^-1 at the Firth estimate,
    # computed here with numpy at firthmodels' estimate. (firthmodels' own bse_ inverts
    # the hat-augmented information X' diag((1 + h) mu (1 - mu)) X of its Newton steps.)
    Xd = np.column_stack([np.ones(len(y)), X])
    mu = 1 / (1 + np.exp(-Xd @ np.r_[ref.intercept_, ref.coef_]))
    info = Xd.T @ ((mu * (1 - mu))[:, None] * Xd)
    np.testing.assert_allclose(s.bse, np.sqrt(np.diag(np.linalg.inv(info))), rtol=1e-6)
    assert "Firth" in str(s)
    # the penalized log-likelihood: firthmodels' loglik_ = l + 1/2 log det I
    np.testing.assert_allclose(-result.objective * len(y), ref.loglik_, rtol=1e-8)


def test_maximum_likelihood_diverges_where_firth_is_finite(batched_fits):
    X, y = _separated()
    mle = lj.fit(X, y, family=F.Binomial())
    fir = batched_fits[0][0]
    # the separating feature's ML coefficient runs off toward +infinity; Firth's is finite
    assert float(mle.params["coef"][0]) > 3 * float(fir.params["coef"][0]) > 0


def test_weights_are_replications(batched_fits):
    fits, w = batched_fits
    X, y = _rare_events()
    a = fits[2]
    args = (jnp.asarray(y), jnp.asarray(w), None, F.Binomial())
    # first-order condition of the Firth objective (autodiff gradient) at the optimum
    g = jax.jit(jax.grad(firth.firth_objective))(a.params, jnp.asarray(X), *args)
    assert max(float(jnp.max(jnp.abs(g["coef"]))), float(jnp.abs(g["intercept"]))) < 1e-8
    # a weight of 2 is a duplicated row: same penalized log-likelihood
    Xr, yr = np.concatenate([X, X[:10]]), np.concatenate([y, y[:10]])
    objective = jax.jit(firth.firth_objective)
    lw = objective(a.params, jnp.asarray(X), *args) * w.sum()
    lr = objective(a.params, jnp.asarray(Xr), jnp.asarray(yr), jnp.ones(len(yr)),
                               None, F.Binomial()) * len(yr)
    np.testing.assert_allclose(lw, lr, rtol=1e-12)


def test_firth_rejects_other_families():
    X, y = _rare_events()
    with pytest.raises(ValueError, match="Binomial"):
        lj.fit(X, y, family=F.Poisson(), penalty=lj.penalties.Firth())
    with pytest.raises(NotImplementedError, match="depends on X"):
        lj.penalties.Firth().value(jnp.zeros(3))
