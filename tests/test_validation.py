"""Eager validation: each bad input raises a ValueError naming the argument and the fix."""

import jax
import numpy as np
import pytest

import linjax as lj
from linjax import families as F

X = np.random.default_rng(0).normal(size=(10, 2))
Y = np.arange(10, dtype=float) % 3


def _raises(match, **kwargs):
    args = {"X": X, "y": Y}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        lj.fit(**args)


def test_non_finite_inputs():
    bad = X.copy()
    bad[2, 1] = np.nan
    _raises(r"X: 1 non-finite", X=bad)
    _raises(r"y: 1 non-finite", y=np.where(np.arange(10) == 4, np.inf, Y))
    _raises(r"weights: 1 non-finite", weights=np.where(np.arange(10) == 1, np.nan, 1.0))
    _raises(r"offset: 1 non-finite", offset=np.where(np.arange(10) == 1, np.nan, 0.0))


def test_finite_check_is_exact_when_the_sum_is_not():
    """The one-pass test (a finite sum) must neither hide an inf among opposite infs nor
    refuse finite data whose sum overflows."""
    import jax.numpy as jnp

    from linjax.validation import check_design
    both = X.copy()
    both[0, 0], both[5, 1] = np.inf, -np.inf  # the sum is NaN
    with pytest.raises(ValueError, match=r"X: 2 non-finite value\(s\) \(NaN or inf\), the "
                       r"first at index \(0, 0\)"):
        check_design(both)
    with pytest.raises(ValueError, match=r"X: 2 non-finite"):
        check_design(jnp.asarray(both))
    huge = np.full((4, 2), 1e308)  # finite, but the sum overflows to inf
    assert check_design(huge) is huge
    check_design(jnp.asarray(huge))


def test_accelerator_arrays_are_checked_where_they_live(monkeypatch):
    """The accelerator branch (a device-side sum or min/max, only a scalar to the host),
    taken here by CPU arrays posing as device arrays: the same verdicts and messages."""
    import jax.numpy as jnp

    from linjax import validation
    monkeypatch.setattr(validation, "on_accelerator", lambda a: isinstance(a, jax.Array))
    bad = X.copy()
    bad[3, 0] = np.nan
    assert validation.all_finite_fast(jnp.asarray(X))
    assert not validation.all_finite_fast(jnp.asarray(bad))
    assert not validation.all_finite_fast(jnp.full((4, 2), 1e308))  # overflow: exact test
    _raises(r"X: 1 non-finite value\(s\) \(NaN or inf\), the first at index \(3, 0\)",
            X=jnp.asarray(bad))
    Yb = jnp.asarray(np.tile(Y, (2, 1)))
    assert validation.y_in_support_fast(Yb, F.Poisson())
    assert not validation.y_in_support_fast(Yb.at[1, 2].set(-1.0), F.Poisson())
    assert not validation.y_in_support_fast(Yb.at[0, 0].set(jnp.nan), F.Poisson())
    _raises(r"y: 1 value\(s\) outside the support \(y >= 0\); the first is y\[4\] = -2.0\.",
            y=jnp.asarray(Y).at[4].set(-2.0), family=F.Poisson())
    assert lj.fit(jnp.asarray(X), jnp.asarray(Y), family=F.Poisson()).converged
    with pytest.raises(ValueError, match=r"Y\[1\] \(problem 1\): 1 value\(s\) outside the "
                       r"support \(y >= 0\); the first is y\[2\] = -1.0\."):
        lj.fit_batch(X, Yb.at[1, 2].set(-1.0), family="poisson")


def test_shapes_and_sizes():
    _raises(r"y: expected shape \(10,\)", y=Y[:5])
    _raises(r"weights: expected shape \(10,\)", weights=np.ones(3))
    _raises(r"X: expected a 2-D array", X=X[:, 0])
    _raises(r"X: has 0 rows", X=np.zeros((0, 2)), y=np.zeros(0))
    _raises(r"0 columns and fit_intercept=False", X=np.zeros((10, 0)), fit_intercept=False)
    _raises(r"3 coefficients but only 2 observations", X=X[:2], y=Y[:2])


def test_weights():
    _raises(r"weights: 1 negative", weights=np.where(np.arange(10) == 0, -1.0, 1.0))
    _raises(r"weights: all weights are zero", weights=np.zeros(10))


def test_response_outside_support():
    _raises(r"y: .*y >= 0", y=Y - 1, family=F.Poisson())
    _raises(r"y: .*0 <= y <= 1", y=Y, family=F.Binomial())
    _raises(r"y: .*y > 0", y=Y, family=F.Gamma())
    _raises(r"Tweedie\(power=0.5\) does not exist", family=F.Tweedie(power=0.5))


def test_non_numeric_and_conversions():
    _raises(r"X: contains non-numeric", X=np.array([["a", 1]] * 10, dtype=object))
    _raises(r"y: expected numbers", y=np.array(["a"] * 10))
    res = lj.fit(X, (Y > 0).astype(bool), family=F.Binomial())  # booleans are converted
    assert res.params["coef"].dtype == np.float64
    res = lj.fit(X.astype(np.float16), Y.astype(np.float16))  # float16 is upcast to float32
    assert res.params["coef"].dtype == np.float32


def test_penalty_and_solver_arguments():
    _raises(r"penalty alpha: must be >= 0", penalty=lj.penalties.L2(alpha=-1.0))
    _raises(r"l1_ratio: must be in \[0, 1\]", penalty=lj.penalties.ElasticNet(alpha=1.0,
                                                                             l1_ratio=1.5))
    _raises(r"solver: unknown solver", solver="magic")
    _raises(r"family: unknown family", family="weibull")
