"""fit_batch with per-problem settings, intercept-only designs, Multinomial and jax.grad.

Each batch answer is checked against a per-problem `lj.fit` (itself checked against R,
statsmodels and closed forms elsewhere) or against a closed form."""

import jax
import numpy as np
import pytest

import linjax as lj

F, P = lj.families, lj.penalties
N, M = 40, 3


def _data(seed=0, p=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, p))
    Y = rng.poisson(np.exp(0.3 + X @ np.array([0.4, -0.3])[:p]), size=(M, N)).astype(float)
    return X, Y


def _loop(X, Y, families, penalties, **kw):
    return [lj.fit(X, Y[i], family=families[i], penalty=penalties[i], **kw) for i in range(M)]


def _assert_matches(batch, singles, rtol=1e-8):
    for i, single in enumerate(singles):
        np.testing.assert_allclose(batch.params["coef"][i], single.params["coef"], rtol=rtol,
                                   atol=1e-10)
        np.testing.assert_allclose(batch.params["intercept"][i], single.params["intercept"],
                                   rtol=rtol, atol=1e-10)


def test_intercept_only_batch_is_the_log_mean():
    _, Y = _data()
    res = lj.fit_batch(np.zeros((N, 0)), Y, family=F.Poisson())
    assert res.params["coef"].shape == (M, 0)
    np.testing.assert_allclose(res.params["intercept"], np.log(Y.mean(axis=1)), rtol=1e-10)


@pytest.mark.parametrize("penalty, solver", [
    (P.L2(alpha=np.array([0.01, 0.1, 1.0])), "auto"),
    (P.L1(alpha=np.array([0.001, 0.01, 0.05])), "cd"),
])
def test_per_problem_penalty_strength_matches_fit_loop(penalty, solver):
    X, Y = _data()
    res = lj.fit_batch(X, Y, family=F.Poisson(), penalty=penalty, solver=solver)
    pens = [type(penalty)(alpha=float(a)) for a in penalty.alpha]
    _assert_matches(res, _loop(X, Y, [F.Poisson()] * M, pens, solver=solver), rtol=1e-7)


def test_per_problem_ridge_gaussian_matches_closed_form():
    X, Y = _data()
    alphas = np.array([0.01, 0.1, 1.0])
    res = lj.fit_batch(X, Y, family=F.Gaussian(), penalty=P.L2(alpha=alphas))
    Xc = X - X.mean(0)
    for i, a in enumerate(alphas):
        # objective sum (y - eta)^2 / (2 n) + a/2 |b|^2  ->  (Xc'Xc / n + a I) b = Xc'y / n
        b = np.linalg.solve(Xc.T @ Xc / N + a * np.eye(2), Xc.T @ (Y[i] - Y[i].mean()) / N)
        np.testing.assert_allclose(res.params["coef"][i], b, rtol=1e-10)


def test_per_problem_penalty_of_wrong_length_names_the_field():
    X, Y = _data()
    with pytest.raises(ValueError, match=r"penalty alpha: .*\(3,\)"):
        lj.fit_batch(X, Y, family=F.Poisson(), penalty=P.L2(alpha=np.ones(5)))


def test_per_problem_tweedie_power_matches_fit_loop():
    X, Y = _data()
    powers = np.array([1.2, 1.5, 1.8])
    res = lj.fit_batch(X, Y, family=F.Tweedie(power=powers))
    fams = [F.Tweedie(power=float(v)) for v in powers]
    _assert_matches(res, _loop(X, Y, fams, [None] * M))


def test_multinomial_batch_matches_fit_loop():
    X, Y = _data()
    labels = np.minimum(Y, 2.0)  # three classes 0, 1, 2
    res = lj.fit_batch(X, labels, family=F.Multinomial())
    assert res.params["coef"].shape == (M, 2, 3)
    _assert_matches(res, _loop(X, labels, [F.Multinomial()] * M, [None] * M))


def test_negative_binomial_without_alpha_is_refused_with_the_way_out():
    """Estimated per problem for a shared X without a penalty (tests/test_batch_per_problem);
    refused, naming the ways out, with stacked designs or a penalty."""
    X, Y = _data()
    with pytest.raises(ValueError, match=r"NegativeBinomial\(alpha=None\).*lj\.fit"):
        lj.fit_batch(np.stack([X] * M), Y, family=F.NegativeBinomial(alpha=None))
    with pytest.raises(ValueError, match=r"without a penalty"):
        lj.fit_batch(X, Y, family=F.NegativeBinomial(alpha=None), penalty=P.L2(0.1))


def test_grad_through_fit_batch_equals_per_problem_grad_and_finite_differences():
    X, Y = _data()

    def batch_loss(Y):
        return lj.fit_batch(X, Y, family=F.Poisson()).params["coef"].sum()

    def single_loss(y):
        return lj.fit(X, y, family=F.Poisson()).params["coef"].sum()

    g = jax.grad(batch_loss)(Y)
    for i in range(M):
        np.testing.assert_allclose(g[i], jax.grad(single_loss)(Y[i]), rtol=1e-8, atol=1e-12)
    e = np.zeros_like(Y)
    e[1, 5] = 1e-5
    fd = (batch_loss(Y + e) - batch_loss(Y - e)) / 2e-5
    np.testing.assert_allclose(g[1, 5], fd, rtol=1e-5)
