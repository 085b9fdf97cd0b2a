"""Regressors: LinearRegression, Ridge, Lasso, ElasticNet and the GLM regressors.

Objective scalings (checked against scikit-learn in tests/test_estimators.py), with
linjax's objective  sum_i w_i nll_i / sum_i w_i + penalty(coef)  (docs/objective.md):

- LinearRegression: no penalty (an L2 penalty of strength 0, so that p > n gives the
  minimum-norm least-squares solution as scikit-learn does).
- Ridge(alpha): scikit-learn minimises sum_i w_i (y_i - x_i b)^2 + alpha ||b||^2, so
  linjax's L2 strength is alpha / sum_i w_i.
- Lasso(alpha), ElasticNet(alpha, l1_ratio): scikit-learn's objective is linjax's (its
  sample weights are rescaled to sum to n_samples), so alpha is passed through.
- PoissonRegressor, GammaRegressor, TweedieRegressor(alpha): mean half deviance plus
  alpha / 2 ||b||^2, linjax's objective with L2(alpha).
- GLM(family, link, alpha, l1_ratio): L2(alpha) for l1_ratio == 0, L1(alpha) for
  l1_ratio == 1, ElasticNet(alpha, l1_ratio) otherwise.
"""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted

from linjax import families as F
from linjax import links as L
from linjax.designs import fitting as design_fitting
from linjax.estimators._base import (
    FLOATS,
    SEPARATION_REMEDY,
    LinjaxMixin,
    as_dtype,
    check_choice,
    check_number,
    family_from,
    family_target_tags,
    fit_dtype,
    matvec,
    penalty_from,
    result_to_numpy,
    validate_fit_input,
    validated_X,
)
from linjax.penalties import L1, L2
from linjax.penalties import ElasticNet as ElasticNetPenalty
from linjax.separation import warn_if_separated


class _LinjaxRegressor(LinjaxMixin, RegressorMixin, BaseEstimator):
    """Single-output regressor fitted by `linjax.fit`."""

    def _check_params(self):
        self._validate_common()

    def _validate_X(self, X):
        return validated_X(self, X, self.coef_.dtype)

    def fit(self, X, y, sample_weight=None, offset=None):
        """Fit on X (n, p) and y (n,); sample_weight (n,) >= 0; offset (n,) added to eta.

        X may be scipy.sparse (kept sparse) or a DataFrame with category/string columns
        (categorical blocks, never a dense one-hot: docs/estimators.md). Returns self.
        Non-convergence warns (`ConvergenceWarning`) with the solver's message. Refitting
        on data of the same shape and dtype reuses the compiled fit.
        """
        self._check_params()
        X, y = validate_fit_input(self, X, y, dtype=FLOATS, y_numeric=True,
                                  multi_output=False)
        dtype = fit_dtype(X)
        X = as_dtype(X, dtype)
        y = np.asarray(y, dtype)
        n, p = X.shape
        w = self._sample_weight(sample_weight, X, dtype)
        off = self._offset(offset, n, dtype)
        family = self._family()
        self._check_y_support(y, family)
        penalty = self._penalty(float(w.sum()))
        stats = self._standardizer(X, w)
        init = self._warm_init(p, (p,))
        result, params = self._run_fit(X, y, w, off, family, penalty, init, stats)
        self.coef_ = params["coef"]
        self.intercept_ = params["intercept"][()]
        self.n_iter_ = int(np.asarray(result.n_iter))
        self.result_ = result_to_numpy(result)
        self._stats = stats
        self._train = (X, y, w, off)
        return self

    def _linear_predictor(self, X, offset=None):
        check_is_fitted(self)
        X = self._validate_X(X)
        eta = matvec(X, self.coef_) + self.intercept_
        if offset is not None:
            eta = eta + self._offset(offset, X.shape[0], eta.dtype)
        return eta

    def predict(self, X, offset=None):
        """The predicted mean link^{-1}(X @ coef_ + intercept_ + offset)."""
        eta = self._linear_predictor(X, offset)
        link = self._family().link
        if isinstance(link, L.Identity):
            return eta
        return np.asarray(link.inverse(eta), eta.dtype)


class _GLMScoreMixin:
    """`score` as scikit-learn's GLMs: D^2, the fraction of deviance explained."""

    def score(self, X, y, sample_weight=None):
        """D^2 = 1 - deviance(y, predict(X)) / deviance(y, weighted mean of y)."""
        mu = self.predict(X)
        y = np.asarray(check_array(y, ensure_2d=False, dtype=FLOATS, input_name="y"),
                       mu.dtype)
        w = _check_sample_weight(sample_weight, mu.reshape(-1, 1), dtype=mu.dtype)
        family = self._family()
        self._check_y_support(y, family)
        dev = np.sum(w * np.asarray(family.unit_deviance(y, mu)))
        y_mean = np.average(y, weights=w)
        dev_null = np.sum(w * np.asarray(family.unit_deviance(y, np.full_like(y, y_mean))))
        return float(1.0 - dev / dev_null)


class LinearRegression(_LinjaxRegressor):
    """Ordinary least squares (closed form by QR/SVD), as scikit-learn's LinearRegression.

    positive=True constrains the coefficients to be >= 0 (coordinate descent).
    standardize=True fits on standardized columns and reports original-scale
    coefficients. solver: "auto" (linjax picks; see `linjax.fit`), a linjax solver
    name, or a `linjax.solvers` instance. A rank-deficient design gives the
    minimum-norm solution without a warning, as scikit-learn.
    """

    def __init__(self, *, fit_intercept=True, positive=False, solver="auto", standardize=False):
        self.fit_intercept = fit_intercept
        self.positive = positive
        self.solver = solver
        self.standardize = standardize

    def _family(self):
        return F.Gaussian()

    def _penalty(self, weight_sum):
        return L2(alpha=0.0)

    def _warn_singular(self):
        return False


class Ridge(_LinjaxRegressor):
    """Least squares with an L2 penalty: sum_i w_i (y_i - x_i b)^2 + alpha ||b||^2.

    Same objective, parameters and fitted attributes as scikit-learn's Ridge
    (single target). max_iter / tol apply to iterative solvers; None uses the
    solver's dtype-aware default (linjax's convergence criteria differ from
    scikit-learn's, so its numeric defaults are not copied).
    """

    def __init__(self, alpha=1.0, *, fit_intercept=True, max_iter=None, tol=None,
                 solver="auto", positive=False, standardize=False):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.positive = positive
        self.standardize = standardize

    def _check_params(self):
        super()._check_params()
        check_number("Ridge", "alpha", self.alpha, low=0)

    def _family(self):
        return F.Gaussian()

    def _penalty(self, weight_sum):
        return L2(alpha=float(self.alpha) / weight_sum)


class Lasso(_LinjaxRegressor):
    """L1-penalized least squares: sum_i w_i (y_i - x_i b)^2 / (2 sum_i w_i) + alpha ||b||_1.

    scikit-learn's Lasso objective and parameters; solved by coordinate descent
    (glmnet's method) or FISTA for wide problems. max_iter / tol: None uses the
    solver's defaults.
    """

    def __init__(self, alpha=1.0, *, fit_intercept=True, max_iter=None, tol=None,
                 warm_start=False, positive=False, solver="auto", standardize=False):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.solver = solver
        self.standardize = standardize

    def _check_params(self):
        super()._check_params()
        check_number("Lasso", "alpha", self.alpha, low=0)

    def _family(self):
        return F.Gaussian()

    def _penalty(self, weight_sum):
        return L1(alpha=float(self.alpha))


class ElasticNet(_LinjaxRegressor):
    """Least squares with alpha (l1_ratio ||b||_1 + (1 - l1_ratio) / 2 ||b||^2), as scikit-learn."""

    def __init__(self, alpha=1.0, *, l1_ratio=0.5, fit_intercept=True, max_iter=None, tol=None,
                 warm_start=False, positive=False, solver="auto", standardize=False):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.solver = solver
        self.standardize = standardize

    def _check_params(self):
        super()._check_params()
        check_number("ElasticNet", "alpha", self.alpha, low=0)
        check_number("ElasticNet", "l1_ratio", self.l1_ratio, low=0, high=1)

    def _family(self):
        return F.Gaussian()

    def _penalty(self, weight_sum):
        return ElasticNetPenalty(alpha=float(self.alpha), l1_ratio=float(self.l1_ratio))


class _GLMRegressor(_GLMScoreMixin, _LinjaxRegressor):
    """scikit-learn's _GeneralizedLinearRegressor parameters: alpha, fit_intercept, ..."""

    def _check_params(self):
        super()._check_params()
        check_number(type(self).__name__, "alpha", self.alpha, low=0)

    def _penalty(self, weight_sum):
        return L2(alpha=float(self.alpha))


class PoissonRegressor(_GLMRegressor):
    """Poisson regression with the log link and an L2 penalty, as scikit-learn.

    Minimises sum_i w_i d(y_i, mu_i) / (2 sum_i w_i) + alpha / 2 ||b||^2 (d: unit
    deviance). fit/predict accept an `offset` (for example log exposure).
    max_iter / tol: None uses the solver's defaults.
    """

    def __init__(self, *, alpha=1.0, fit_intercept=True, solver="auto", max_iter=None, tol=None,
                 warm_start=False, standardize=False):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.standardize = standardize

    def _family(self):
        return F.Poisson()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


class GammaRegressor(_GLMRegressor):
    """Gamma regression with the log link and an L2 penalty, as scikit-learn (y > 0)."""

    def __init__(self, *, alpha=1.0, fit_intercept=True, solver="auto", max_iter=None, tol=None,
                 warm_start=False, standardize=False):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.standardize = standardize

    def _family(self):
        return F.Gamma(link=L.Log())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


def tweedie_family(power, link):
    """scikit-learn's Tweedie choices as a linjax family (named families at 0, 1, 2, 3)."""
    link_obj = L.Identity() if link == "identity" else L.Log()
    if link == "auto":
        link_obj = L.Identity() if power <= 0 else L.Log()
    named = {0: F.Gaussian, 1: F.Poisson, 2: F.Gamma, 3: F.InverseGaussian}
    if power in named:
        return named[power](link=link_obj)
    return F.Tweedie(power=float(power), link=link_obj)


class TweedieRegressor(_GLMRegressor):
    """Tweedie regression (power 0: normal, 1: Poisson, 2: gamma, 3: inverse Gaussian).

    scikit-learn's parameters: power (not in (0, 1)), link "auto" (identity for
    power <= 0, else log), "identity" or "log"; alpha is the L2 strength.
    """

    def __init__(self, *, power=0.0, alpha=1.0, fit_intercept=True, link="auto", solver="auto",
                 max_iter=None, tol=None, warm_start=False, standardize=False):
        self.power = power
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.link = link
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.standardize = standardize

    def _check_params(self):
        super()._check_params()
        check_number("TweedieRegressor", "power", self.power)
        if 0 < self.power < 1:
            raise ValueError(f"TweedieRegressor: power must be <= 0 or >= 1 (no Tweedie "
                             f"distribution exists in between), got {self.power!r}.")
        check_choice("TweedieRegressor", "link", self.link, {"auto", "identity", "log"})

    def _family(self):
        return tweedie_family(self.power, self.link)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = self.power > 0
        return tags


class GLM(_GLMRegressor):
    """Any linjax family and link with an elastic-net penalty.

    family: a name ("poisson", "gamma", "binomial", "negative_binomial", "tweedie",
    "gaussian", "inverse_gaussian") or a `linjax.families` instance (for parameters
    such as `Tweedie(power=1.5)` or `NegativeBinomial(alpha=0.5)`); link: None (the
    family's default) or a link name / `linjax.links` instance. Penalty
    (docs/objective.md): L2(alpha) for l1_ratio = 0, L1(alpha) for 1, ElasticNet between.
    Binomial takes 0/1 outcomes, or proportions with sample_weight = trials.
    """

    def __init__(self, family="poisson", link=None, alpha=0.0, l1_ratio=0.0, *,
                 fit_intercept=True, solver="auto", max_iter=None, tol=None, warm_start=False,
                 standardize=False):
        self.family = family
        self.link = link
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.standardize = standardize

    def _check_params(self):
        super()._check_params()
        check_number("GLM", "l1_ratio", self.l1_ratio, low=0, high=1)
        family = self._family()
        if family.multiclass:
            raise ValueError("GLM: family='multinomial' is not a single-response GLM; use "
                             "linjax.estimators.LogisticRegression for several classes.")

    def _family(self):
        return family_from(self.family, self.link)

    def _penalty(self, weight_sum):
        return penalty_from(self.alpha, self.l1_ratio)

    def fit(self, X, y, sample_weight=None, offset=None):
        super().fit(X, y, sample_weight=sample_weight, offset=offset)
        family = self._family()
        if isinstance(family, F.Binomial) and float(self.alpha) == 0.0:
            X, y, w, off = self._train
            X = design_fitting.dense_for_checks(X)
            if X is None:  # a design too large to densify for the check
                return self
            warn_if_separated(X, y, w, {"coef": self.coef_, "intercept": self.intercept_}, off,
                              family, self.fit_intercept, "GLM", SEPARATION_REMEDY)
        return self

    def __sklearn_tags__(self):
        return family_target_tags(super().__sklearn_tags__(), self._family)
