"""scikit-learn transformers over the pure functions of `linjax.preprocessing`."""

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from linjax import transforms as P
from linjax.estimators._base import FLOATS, check_bool, check_number, fit_dtype, validate_data


class StandardScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """(X - mean_) / scale_ with weighted means and population standard deviations.

    Equivalent to scikit-learn's StandardScaler (constant columns get scale 1);
    `stats_` is the `linjax.preprocessing.Standardizer` for use in JAX code
    (`linjax.preprocessing.standardize(X, scaler.stats_)`).
    """

    def __init__(self, *, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    def fit(self, X, y=None, sample_weight=None):
        check_bool("StandardScaler", "with_mean", self.with_mean)
        check_bool("StandardScaler", "with_std", self.with_std)
        X = validate_data(self, X, dtype=FLOATS)
        dtype = fit_dtype(X)
        X = X.astype(dtype, copy=False)
        w = _check_sample_weight(sample_weight, X, dtype=dtype, ensure_non_negative=True)
        stats = P.fit_standardizer(X, w, with_mean=True, with_std=self.with_std)
        if not self.with_mean:  # scikit-learn scales by the std about the mean regardless
            stats = P.Standardizer(np.zeros_like(stats.mean), stats.scale)
        self.stats_ = stats
        self.mean_ = np.asarray(stats.mean) if self.with_mean else None
        self.scale_ = np.asarray(stats.scale) if self.with_std else None
        self.n_samples_seen_ = X.shape[0]
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=FLOATS)
        return np.asarray(P.standardize(X.astype(fit_dtype(X), copy=False), self.stats_))

    def inverse_transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=FLOATS)
        return np.asarray(P.unstandardize(X.astype(fit_dtype(X), copy=False), self.stats_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class PolynomialFeatures(TransformerMixin, BaseEstimator):
    """Polynomial and interaction features in scikit-learn's column order.

    degree: highest total degree; interaction_only: products of distinct features
    only; include_bias: a leading column of ones. `powers_` and
    `get_feature_names_out` as scikit-learn.
    """

    def __init__(self, degree=2, *, interaction_only=False, include_bias=True):
        self.degree = degree
        self.interaction_only = interaction_only
        self.include_bias = include_bias

    def fit(self, X, y=None):
        check_number("PolynomialFeatures", "degree", self.degree, low=0, integer=True)
        check_bool("PolynomialFeatures", "interaction_only", self.interaction_only)
        check_bool("PolynomialFeatures", "include_bias", self.include_bias)
        X = validate_data(self, X, dtype=FLOATS)
        self.powers_ = P.polynomial_powers(X.shape[1], self.degree, self.interaction_only,
                                           self.include_bias)
        self.n_output_features_ = self.powers_.shape[0]
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=FLOATS)
        X = X.astype(fit_dtype(X), copy=False)
        return np.asarray(P.polynomial_features(X, self.degree, self.interaction_only,
                                                self.include_bias))

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        if input_features is None:
            names = getattr(self, "feature_names_in_", None)
            input_features = names if names is not None else [
                f"x{j}" for j in range(self.n_features_in_)]
        if len(input_features) != self.n_features_in_:
            raise ValueError(f"PolynomialFeatures: input_features has {len(input_features)} "
                             f"names, expected {self.n_features_in_}.")
        return P.polynomial_feature_names([str(n) for n in input_features], self.powers_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
