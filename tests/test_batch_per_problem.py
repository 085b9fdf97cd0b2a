"""fit_batch with per-problem settings: each problem equals its own lj.fit, new values (and a
new m inside a bucket) compile nothing, a failing problem spoils no other, bad data is refused
naming every problem at fault, and gradients agree with finite differences.

References: a loop of `lj.fit` (itself checked against R, statsmodels and closed forms
elsewhere) and central finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax.scale import batch
from linjax.solvers.status import Status, messages

F, P = lj.families, lj.penalties
#: 17 problems: the batch is padded to the bucket of 17 (18) and the copy dropped.
M, N, K = 17, 40, 3


def _data(seed=0, m=M):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, K))
    beta = rng.normal(scale=0.3, size=(m, K))
    Y = rng.poisson(np.exp(0.4 + beta @ X.T)).astype(float)
    return X, Y


def _assert_each_equals_fit(res, X, Y, fams, pens, rtol=1e-8, **kw):
    """Problem i of the batch against lj.fit of problem i (coefficients to rtol)."""
    assert res.params["coef"].shape[0] == Y.shape[0]
    for i in range(Y.shape[0]):
        extra = {key: (v(i) if callable(v) else v) for key, v in kw.items()}
        one = lj.fit(X, Y[i], family=fams(i), penalty=pens(i), **extra)
        np.testing.assert_allclose(res.params["coef"][i], one.params["coef"], rtol=rtol,
                                   atol=1e-10, err_msg=f"problem {i}")
        np.testing.assert_allclose(res.params["intercept"][i], one.params["intercept"],
                                   rtol=rtol, atol=1e-10, err_msg=f"problem {i}")
        assert int(res.status[i]) == int(one.status), i


def test_per_problem_l2_strength_and_feature_mask_on_the_shared_design_path():
    """L2 alpha (m,) and penalty weights (m, p) on the explicitly batched Newton (Poisson)."""
    X, Y = _data()
    alpha = np.geomspace(1e-3, 1.0, M)
    mask = np.ones((M, K))
    mask[::3, 0] = 0.0                       # coefficient 0 unpenalized in every third problem
    res = lj.fit_batch(X, Y, family=F.Poisson(), penalty=P.L2(alpha=alpha, weights=mask),
                       gram="pairs")
    _assert_each_equals_fit(res, X, Y, lambda i: F.Poisson(),
                            lambda i: P.L2(alpha=alpha[i], weights=mask[i]))
    np.testing.assert_allclose(np.asarray(res.penalty.alpha), alpha)


def test_per_problem_negative_binomial_alpha_matches_fit():
    X, Y = _data(1)
    alpha = np.linspace(0.05, 2.0, M)
    res = lj.fit_batch(X, Y, family=F.NegativeBinomial(alpha=alpha), penalty=P.L2(0.01))
    _assert_each_equals_fit(res, X, Y, lambda i: F.NegativeBinomial(alpha=alpha[i]),
                            lambda i: P.L2(0.01))


def test_per_problem_elastic_net_and_bounds_match_fit():
    """ElasticNet alpha and l1_ratio (m,) with per-problem bounds (m, p) (coordinate descent)."""
    X, Y = _data(2, m=5)
    alpha = np.array([0.001, 0.01, 0.02, 0.05, 0.002])
    ratio = np.array([0.1, 0.5, 0.9, 1.0, 0.0])
    lower = np.full((5, K), -np.inf)
    lower[:, 1] = np.array([0.0, 0.1, -0.05, 0.0, 0.12])
    upper = np.full((5, K), 0.15)
    res = lj.fit_batch(X, Y, family=F.Poisson(), penalty=P.ElasticNet(alpha=alpha,
                                                                       l1_ratio=ratio),
                       bounds=(lower, upper), solver="cd")
    _assert_each_equals_fit(res, X, Y, lambda i: F.Poisson(),
                            lambda i: P.ElasticNet(alpha=alpha[i], l1_ratio=ratio[i]),
                            solver="cd", bounds=lambda i: (lower[i], upper[i]))
    coef = np.asarray(res.coef)
    assert np.all(coef >= lower - 1e-12) and np.all(coef <= upper + 1e-12)


def test_new_values_and_a_new_m_in_the_bucket_compile_nothing():
    X, Y = _data(3)
    alpha = np.geomspace(1e-3, 1.0, M)
    lj.fit_batch(X, Y, family=F.Poisson(), penalty=P.L2(alpha=alpha))
    lj.fit_batch(X, Y, family=F.Tweedie(power=np.full(M, 1.5)))
    before = batch._fit_batch.cache_size()
    again = lj.fit_batch(X, Y, family=F.Poisson(), penalty=P.L2(alpha=alpha[::-1] * 3))
    lj.fit_batch(X, Y, family=F.Tweedie(power=np.linspace(1.1, 1.9, M)))
    # m = 18 shares the bucket of 17 (problems padded with copies of problem 0)
    X2, Y2 = _data(4, m=M + 1)
    bigger = lj.fit_batch(X2, Y2, family=F.Poisson(), penalty=P.L2(alpha=np.ones(M + 1)))
    assert batch._fit_batch.cache_size() == before
    assert again.coef.shape == (M, K) and bigger.coef.shape == (M + 1, K)
    one = lj.fit(X2, Y2[M], family=F.Poisson(), penalty=P.L2(1.0))
    np.testing.assert_allclose(bigger.coef[M], one.coef, rtol=1e-8, atol=1e-12)


def test_no_padding_under_the_callers_jit():
    X, Y = _data(5)
    f = jax.jit(lambda Y, a: lj.fit_batch(X, Y, family=F.Poisson(), penalty=P.L2(alpha=a)))
    alpha = np.geomspace(1e-2, 1.0, M)
    res = f(jnp.asarray(Y), jnp.asarray(alpha))
    eager = lj.fit_batch(X, Y, family=F.Poisson(), penalty=P.L2(alpha=alpha))
    assert res.coef.shape == (M, K)
    np.testing.assert_allclose(res.coef, eager.coef, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gram", ["pairs", "vmap"])
def test_a_failing_problem_spoils_no_other(gram):
    """An all-zero count response (no finite estimate), a problem cut off at max_iter by its
    start and a normal one: each equals its own fit, with its own status and message."""
    X, Y = _data(6, m=6)
    Y[1] = 0.0                                           # intercept -> -inf
    init = {"coef": np.zeros((6, K)), "intercept": np.zeros(6)}
    init["coef"][4] = [3.0, -3.0, 3.0]                   # far from the optimum
    solver = lj.solvers.Newton(max_iter=10)
    res = lj.fit_batch(X, Y, family=F.Poisson(), solver=solver, gram=gram, init=init)
    status = np.asarray(res.status)
    assert status[1] == Status.NO_FINITE_ESTIMATE and status[4] == Status.MAX_ITER
    assert np.all(status[[0, 2, 3, 5]] == Status.CONVERGED)
    text = messages(res.status)
    assert "no finite maximum likelihood estimate" in text[1] and "max_iter" in text[4]
    _assert_each_equals_fit(res, X, Y, lambda i: F.Poisson(), lambda i: None, solver=solver,
                            init=lambda i: {"coef": init["coef"][i], "intercept": 0.0})
    keep = [0, 2, 3, 5]
    clean = lj.fit_batch(X, Y[keep], family=F.Poisson(), solver=solver, gram=gram,
                         init={"coef": init["coef"][keep], "intercept": np.zeros(4)})
    np.testing.assert_allclose(res.coef[np.array([0, 2, 3, 5])], clean.coef, rtol=1e-12,
                               atol=1e-14)


def test_bad_data_is_refused_naming_every_problem():
    X, Y = _data(7)
    nan = Y.copy()
    nan[2, 5] = np.nan
    nan[9, 0] = np.inf
    with pytest.raises(ValueError, match=r"Y\[2\] \(problems 2, 9 \(2 of 17\)\): non-finite"):
        lj.fit_batch(X, nan, family=F.Poisson())
    neg = Y.copy()
    neg[[3, 11, 12], 1] = -1.0
    with pytest.raises(ValueError, match=r"problems 3, 11, 12 .*y >= 0"):
        lj.fit_batch(X, neg, family=F.Poisson())
    offset = np.zeros_like(Y)
    offset[16, 3] = np.nan
    with pytest.raises(ValueError, match=r"offset\[16\] \(problem 16\): non-finite"):
        lj.fit_batch(X, Y, family=F.Poisson(), offset=offset)
    Xs = np.stack([X] * M)
    Xs[[4, 6], 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X\[4\] \(problems 4, 6"):
        lj.fit_batch(Xs, Y, family=F.Poisson())
    alpha = np.ones(M)
    alpha[[1, 8]] = -1.0
    with pytest.raises(ValueError, match=r"penalty alpha\[1\] \(problems 1, 8 .*>= 0"):
        lj.fit_batch(X, Y, family=F.Poisson(), penalty=P.L2(alpha=alpha))
    power = np.full(M, 1.5)
    power[13] = 0.5
    with pytest.raises(ValueError, match=r"problem 13\).*0 < power < 1"):
        lj.fit_batch(X, Y, family=F.Tweedie(power=power))
    lower = np.zeros((M, K))
    lower[5, 2] = 1.0
    with pytest.raises(ValueError, match=r"bounds\[5\] \(problem 5\): some lower bound"):
        lj.fit_batch(X, Y, family=F.Poisson(), bounds=(lower, 0.5))
    with pytest.raises(ValueError, match=r"bounds: lower must be .*\(17, 3\)"):
        lj.fit_batch(X, Y, family=F.Poisson(), bounds=(np.zeros((2, K)), None))


def _central(f, x, e, h=1e-6):
    return (f(x + h * e) - f(x - h * e)) / (2 * h)


def test_gradients_through_fit_batch_match_finite_differences():
    """d(sum of coefficients)/d X, Y, weights and the per-problem L2 strength."""
    X, Y = _data(8, m=4)
    Y = Y + 0.5                              # off the support's edge, for the steps in Y
    w = np.random.default_rng(8).uniform(0.5, 2.0, size=Y.shape)
    alpha = np.array([0.01, 0.1, 0.3, 1.0])

    def loss(X, Y, w, alpha):
        res = lj.fit_batch(X, Y, family=F.Poisson(), weights=w, penalty=P.L2(alpha=alpha))
        return jnp.sum(res.params["coef"] * jnp.arange(1.0, K + 1)) + jnp.sum(
            res.params["intercept"])

    args = [jnp.asarray(a) for a in (X, Y, w, alpha)]
    grads = jax.grad(loss, argnums=(0, 1, 2, 3))(*args)
    rng = np.random.default_rng(9)
    for j, g in enumerate(grads):
        assert g.shape == args[j].shape
        e = rng.normal(size=args[j].shape)

        def along(t, j=j):
            moved = list(args)
            moved[j] = t
            return float(loss(*moved))

        fd = _central(along, args[j], e)
        np.testing.assert_allclose(float(jnp.sum(g * e)), fd, rtol=2e-6, err_msg=f"arg {j}")


@pytest.mark.parametrize("method", ["ml", "cox-reid"])
def test_negative_binomial_alpha_estimated_per_problem_equals_fit(method):
    """NegativeBinomial(alpha=None, method=...): alpha per problem as lj.fit's estimate
    (maximum likelihood as MASS::glm.nb, checked against statsmodels in tests/test_nb.py, or
    Cox-Reid), and the coefficients of each problem equal lj.fit at that alpha."""
    rng = np.random.default_rng(10)
    X = rng.normal(size=(N, 2))
    mu = np.exp(1.0 + X @ np.array([0.4, -0.3]))
    Y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu), size=(4, N)).astype(float)
    res = lj.fit_batch(X, Y, family=F.NegativeBinomial(alpha=None, method=method))
    assert res.family.alpha.shape == (4,)
    for i in range(4):
        est = lj.fit(X, Y[i], family=F.NegativeBinomial(alpha=None, method=method))
        np.testing.assert_allclose(res.family.alpha[i], est.family.alpha, rtol=1e-6)
        at = lj.fit(X, Y[i], family=F.NegativeBinomial(alpha=float(res.family.alpha[i])))
        np.testing.assert_allclose(res.coef[i], at.coef, rtol=1e-8, atol=1e-10)
        assert int(res.status[i]) == 0
