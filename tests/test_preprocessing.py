"""linjax.preprocessing against scikit-learn's StandardScaler and PolynomialFeatures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.preprocessing import PolynomialFeatures as SkPoly
from sklearn.preprocessing import StandardScaler as SkScaler

from linjax import preprocessing as P


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 4)) * np.array([1.0, 10.0, 0.1, 3.0]) + np.array([0, 5, -2, 1])
    X[:, 3] = 2.5  # a constant column
    return X, rng.uniform(0.1, 2.0, 40)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_mean, with_std", [(True, True), (False, True), (True, False)])
def test_standardizer_matches_sklearn(weighted, with_mean, with_std):
    X, w = _data()
    sw = w if weighted else None
    ref = SkScaler(with_mean=with_mean, with_std=with_std).fit(X, sample_weight=sw)
    stats = P.fit_standardizer(X, sw, with_mean=with_mean, with_std=with_std)
    Z = P.standardize(X, stats)
    if with_mean or not with_std:
        np.testing.assert_allclose(Z, ref.transform(X), rtol=1e-10, atol=1e-12)
    else:
        # without centring linjax scales by the root mean square (glmnet), not the std
        rms = np.sqrt(np.average(X**2, axis=0, weights=sw))
        np.testing.assert_allclose(Z, X / rms, rtol=1e-10)
    np.testing.assert_allclose(P.unstandardize(Z, stats), X, rtol=1e-12)
    from linjax.preprocessing import StandardScaler

    est = StandardScaler(with_mean=with_mean, with_std=with_std).fit(X, sample_weight=sw)
    np.testing.assert_allclose(est.transform(X), ref.transform(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.inverse_transform(est.transform(X)), X, rtol=1e-12)


def test_standardizer_under_jit_and_vmap_and_params_roundtrip():
    X, w = _data()
    stats = jax.jit(P.fit_standardizer)(X, w)
    Z = jax.jit(P.standardize)(X, stats)
    np.testing.assert_allclose(np.average(np.asarray(Z), axis=0, weights=w)[:3], 0, atol=1e-12)
    batch = jax.vmap(P.fit_standardizer)(jnp.stack([X, 2 * X]), jnp.stack([w, w]))
    np.testing.assert_allclose(batch.scale[1, :3], 2 * stats.scale[:3], rtol=1e-12)
    params = {"coef": jnp.array([0.5, -1.0, 2.0, 0.0]), "intercept": jnp.array(0.3)}
    orig = P.params_to_original(params, stats)
    np.testing.assert_allclose(Z @ params["coef"] + params["intercept"],
                               X @ orig["coef"] + orig["intercept"], rtol=1e-10)
    back = P.params_to_standardized(orig, stats)
    np.testing.assert_allclose(back["coef"], params["coef"], atol=1e-12)
    np.testing.assert_allclose(back["intercept"], params["intercept"], rtol=1e-12)


def test_float32_preserved():
    X, w = _data()
    stats = P.fit_standardizer(X.astype(np.float32))
    assert P.standardize(X.astype(np.float32), stats).dtype == jnp.float32


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("interaction_only", [False, True])
@pytest.mark.parametrize("include_bias", [False, True])
def test_polynomial_features_match_sklearn(degree, interaction_only, include_bias):
    X, _ = _data()
    X = X[:, :3]
    ref = SkPoly(degree, interaction_only=interaction_only, include_bias=include_bias)
    if degree == 0 and not include_bias:
        with pytest.raises(ValueError):
            ref.fit(X)
        assert P.polynomial_features(X, degree, interaction_only, include_bias).shape == (40, 0)
        return
    expected = ref.fit_transform(X)
    np.testing.assert_allclose(P.polynomial_features(X, degree, interaction_only, include_bias),
                               expected, rtol=1e-12)
    np.testing.assert_array_equal(P.polynomial_powers(3, degree, interaction_only, include_bias),
                                  ref.powers_)
    from linjax.preprocessing import PolynomialFeatures

    est = PolynomialFeatures(degree, interaction_only=interaction_only,
                             include_bias=include_bias).fit(X)
    np.testing.assert_array_equal(est.get_feature_names_out(), ref.get_feature_names_out())


def test_interaction_features():
    X, _ = _data()
    out = P.interaction_features(X[:, :3])
    np.testing.assert_allclose(out, np.column_stack([X[:, 0] * X[:, 1], X[:, 0] * X[:, 2],
                                                     X[:, 1] * X[:, 2]]))
    with pytest.raises(ValueError, match="2-D"):
        P.interaction_features(X[:, 0])
    with pytest.raises(ValueError, match="degree"):
        P.polynomial_powers(3, degree=-1)
