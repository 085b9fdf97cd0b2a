"""Estimators that choose their penalty by cross-validation (scikit-learn names).

`LassoCV`, `ElasticNetCV`, `GLMCV`, `LogisticRegressionCV` (binary) fit the whole path on
every fold in one compiled, vmapped call (`linjax.selection.cv_path`) per l1_ratio, then
take the full-data path's solution at the chosen alpha (the path is fitted with the
folds, so there is no separate refit). `RidgeCV` uses the exact leave-one-out closed form
(an SVD of the centred design) when cv is None, as scikit-learn, and the vmapped path
otherwise. Folds come from scikit-learn's `check_cv` (KFold for regressors, StratifiedKFold
for classifiers), so given the same cv the folds are scikit-learn's.

tol: linjax's coordinate-descent tolerance (a coefficient move in the scale of its
curvature, see `linjax.paths`); None gives 1e-8 in float64. max_iter: coordinate sweeps
per alpha. With `verbose` and tqdm installed, a progress bar runs over the l1_ratios.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from linjax import families as F
from linjax import paths as P
from linjax import selection as S

_FLOATS = (np.float64, np.float32)


def _progress(items, verbose, desc):
    if not verbose:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc)


def _splits(cv, X, y, groups, classifier):
    splitter = check_cv(5 if cv is None else cv, y, classifier=classifier)
    return list(splitter.split(X, y, groups))


def _as_list(name, value):
    values = np.atleast_1d(np.asarray(value, dtype=float))
    if values.ndim != 1 or values.size == 0 or np.any((values < 0) | (values > 1)):
        raise ValueError(f"{name}: expected values in [0, 1], got {value!r}.")
    return values


class _PathCV(RegressorMixin, BaseEstimator):
    """Shared machinery: one cv_path per l1_ratio, best (l1_ratio, alpha) by mean score."""

    _scoring = "deviance"

    def _family(self):
        return F.Gaussian()

    def _l1_ratios(self):
        return _as_list("l1_ratio", getattr(self, "l1_ratio", 1.0))

    def _check(self):
        name = type(self).__name__
        if getattr(self, "positive", False):
            raise ValueError(f"{name}: positive=True is not supported by the path solver; "
                             "use linjax.estimators.Lasso(positive=True) per alpha.")
        if not (isinstance(self.eps, numbers.Real) and 0 < self.eps < 1):
            raise ValueError(f"{name}: eps must be in (0, 1), got {self.eps!r}.")

    def fit(self, X, y, sample_weight=None, offset=None, groups=None):
        """Cross-validate the path on X (n, p), y (n,); refit on all rows; returns self."""
        self._check()
        X, y = validate_data(self, X, y, dtype=_FLOATS, y_numeric=True)
        y = np.asarray(y, X.dtype)
        family = self._family()
        err = family.support_error(y) if hasattr(family, "support_error") else None
        if err:
            raise ValueError(f"y: {err}")
        w = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        folds = _splits(self.cv, X, y, groups, classifier=False)
        ratios = self._l1_ratios()
        alphas_in = self.alphas
        results = []
        for r in _progress(ratios, self.verbose, type(self).__name__):
            if isinstance(alphas_in, numbers.Integral):
                alphas = P.alpha_grid(X, y, family, r, int(alphas_in), self.eps, w, offset,
                                      fit_intercept=self.fit_intercept)
            else:
                alphas = np.sort(np.asarray(alphas_in, float))[::-1]
            results.append(S.cv_path(X, y, family, r, alphas, folds, weights=w,
                                     offset=offset, fit_intercept=self.fit_intercept,
                                     scoring=self._scoring, tol=self.tol,
                                     max_sweeps=self.max_iter))
        means = np.array([res.mean for res in results])
        i, j = np.unravel_index(int(np.argmin(means)), means.shape)
        best = results[i]
        self.cv_results_ = results
        self.l1_ratio_ = float(ratios[i])
        self.alpha_ = float(best.alphas[j])
        self.alpha_1se_ = float(best.alpha_1se)
        self.coef_ = np.asarray(best.path.coef[j], X.dtype)
        self.intercept_ = float(best.path.intercept[j])
        self.n_iter_ = int(best.path.n_iter[j])
        path = np.array([res.scores.T for res in results])   # (n_l1, n_alphas, n_folds)
        alphas = np.array([res.alphas for res in results])
        single = np.ndim(getattr(self, "l1_ratio", 1.0)) == 0
        self.mse_path_ = path[0] if single else path
        self.alphas_ = alphas[0] if single else alphas
        status = np.asarray(best.path.status)
        if np.any(status != 0):
            import warnings

            from sklearn.exceptions import ConvergenceWarning
            warnings.warn(f"{type(self).__name__}: the full-data path did not converge at "
                          f"{int((status != 0).sum())} alpha(s); increase max_iter or tol.",
                          ConvergenceWarning, stacklevel=2)
        return self

    def predict(self, X, offset=None):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        eta = X @ self.coef_ + self.intercept_
        if offset is not None:
            eta = eta + np.asarray(offset, eta.dtype)
        return np.asarray(self._family().link.inverse(eta), eta.dtype)

    def plot(self, ax=None):
        """CV curve with error bars and alpha_ / alpha_1se_ marked (`linjax.plotting`)."""
        from linjax.plotting import plot_cv

        check_is_fitted(self)
        k = [float(r) for r in self._l1_ratios()].index(self.l1_ratio_)
        return plot_cv(self.cv_results_[k], ax=ax)


class LassoCV(_PathCV):
    """Lasso with alpha chosen by K-fold cross-validation (scikit-learn's LassoCV).

    alphas: an int (that many values from alpha_max down to eps * alpha_max) or a list.
    Attributes: alpha_, alpha_1se_ (one-standard-error rule), coef_, intercept_, alphas_,
    mse_path_ (n_alphas, n_folds), n_iter_, cv_results_ (`selection.CVPath` list).
    """

    def __init__(self, *, eps=1e-3, alphas=100, fit_intercept=True, precompute="auto",
                 max_iter=10000, tol=None, copy_X=True, cv=None, verbose=False, n_jobs=None,
                 positive=False, random_state=None, selection="cyclic"):
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.copy_X = copy_X
        self.cv = cv
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.positive = positive
        self.random_state = random_state
        self.selection = selection


class ElasticNetCV(_PathCV):
    """Elastic net with (alpha, l1_ratio) chosen by cross-validation (scikit-learn's names).

    l1_ratio: a float or a list (each gets its own alpha grid, as scikit-learn); mse_path_
    is (n_l1_ratio, n_alphas, n_folds) for a list. Attributes as LassoCV plus l1_ratio_.
    """

    def __init__(self, *, l1_ratio=0.5, eps=1e-3, alphas=100, fit_intercept=True,
                 precompute="auto", max_iter=10000, tol=None, cv=None, copy_X=True,
                 verbose=0, n_jobs=None, positive=False, random_state=None, selection="cyclic"):
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.copy_X = copy_X
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.positive = positive
        self.random_state = random_state
        self.selection = selection


class GLMCV(_PathCV):
    """A penalized GLM with (alpha, l1_ratio) chosen by cross-validated deviance.

    family, link: as `GLM` ("poisson", "gamma", "binomial", ... or linjax families);
    l1_ratio: float or list (default 1: lasso); scoring: "deviance" (default) or "mse".
    `score` is D^2 (fraction of deviance explained), as scikit-learn's GLMs.
    """

    def __init__(self, family="poisson", link=None, *, l1_ratio=1.0, eps=1e-3, alphas=100,
                 fit_intercept=True, max_iter=10000, tol=None, cv=None, scoring="deviance",
                 verbose=0):
        self.family = family
        self.link = link
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.scoring = scoring
        self.verbose = verbose

    def _family(self):
        from linjax.estimators._base import family_from

        return family_from(self.family, self.link)

    def fit(self, X, y, sample_weight=None, offset=None, groups=None):
        self._scoring = self.scoring
        return super().fit(X, y, sample_weight=sample_weight, offset=offset, groups=groups)

    def score(self, X, y, sample_weight=None, offset=None):
        """D^2 = 1 - deviance / null deviance (weighted mean of y as the null mean)."""
        mu = self.predict(X, offset)
        y = np.asarray(y, mu.dtype)
        w = _check_sample_weight(sample_weight, mu.reshape(-1, 1), dtype=mu.dtype)
        family = self._family()
        dev = np.sum(w * np.asarray(family.unit_deviance(y, mu)))
        null = np.sum(w * np.asarray(family.unit_deviance(y, np.full_like(y, np.average(
            y, weights=w)))))
        return float(1.0 - dev / null)


class RidgeCV(RegressorMixin, BaseEstimator):
    """Ridge (sum_i w_i (y_i - x_i b)^2 + alpha ||b||^2) with alpha chosen by CV.

    cv=None: exact leave-one-out errors from one SVD of the (weighted, centred) design,
    scored by mean squared error (scikit-learn's efficient LOO); otherwise K-fold on the
    vmapped ridge path (linjax strength alpha / sum of training weights per fold), scored
    by mean R^2 over folds (scikit-learn's default for RidgeCV with cv). Attributes: alpha_,
    coef_, intercept_, best_score_, cv_results_ (store_cv_results, LOO only).
    """

    def __init__(self, alphas=(0.1, 1.0, 10.0), *, fit_intercept=True, scoring=None, cv=None,
                 gcv_mode=None, store_cv_results=False, alpha_per_target=False):
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.cv = cv
        self.gcv_mode = gcv_mode
        self.store_cv_results = store_cv_results
        self.alpha_per_target = alpha_per_target

    def fit(self, X, y, sample_weight=None, groups=None):
        X, y = validate_data(self, X, y, dtype=_FLOATS, y_numeric=True)
        y = np.asarray(y, X.dtype)
        alphas = np.asarray(self.alphas, float).reshape(-1)
        if alphas.size == 0 or np.any(alphas <= 0) or not np.all(np.isfinite(alphas)):
            raise ValueError(f"RidgeCV: alphas must be positive and finite, got {self.alphas}.")
        if self.scoring is not None:
            raise ValueError("RidgeCV: only scoring=None is supported.")
        w = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        if self.cv is None:
            self._fit_loo(X, y, w, alphas)
        else:
            self._fit_kfold(X, y, w, alphas, groups)
        return self

    def _center(self, X, y, w):
        if not self.fit_intercept:
            return X, y, np.zeros(X.shape[1]), 0.0
        xm = np.average(X, axis=0, weights=w)
        ym = np.average(y, weights=w)
        return X - xm, y - ym, xm, ym

    def _fit_loo(self, X, y, w, alphas):
        Xc, yc, xm, ym = self._center(X, y, w)
        sw = np.sqrt(w)
        U, s, Vt = np.linalg.svd(Xc * sw[:, None], full_matrices=False)
        Uy = U.T @ (yc * sw)
        s2 = s**2
        lev0 = (w / w.sum()) if self.fit_intercept else 0.0
        errors = []
        for a in alphas:
            shrink = s2 / (s2 + a)
            fitted = U @ (shrink * Uy)
            h = (U**2) @ shrink + lev0
            errors.append(((yc * sw - fitted) / (1 - h)) ** 2)
        errors = np.array(errors).T                       # (n, n_alphas)
        mean = errors.mean(0)
        best = int(np.argmin(mean))
        a = alphas[best]
        self.alpha_ = float(a)
        self.best_score_ = float(-mean[best])
        self.coef_ = np.asarray(Vt.T @ (s / (s2 + a) * Uy), X.dtype)
        self.intercept_ = float(ym - xm @ self.coef_)
        if self.store_cv_results:
            self.cv_results_ = errors

    def _fit_kfold(self, X, y, w, alphas, groups):
        folds = _splits(self.cv, X, y, groups, classifier=False)
        train, test = S.fold_masks(folds, X.shape[0])
        order = np.argsort(-alphas, kind="stable")
        sk = alphas[order]
        sums = np.concatenate([[w.sum()], (train * w).sum(1)])
        grid = sk[None, :] / sums[:, None]                # linjax strengths, (K + 1, m)
        res = S.cv_path(X, y, "gaussian", 0.0, grid, folds, weights=w,
                        fit_intercept=self.fit_intercept, scoring="mse")
        tw = test * w
        ybar = (tw @ y) / tw.sum(1)
        var = (tw * (y[None, :] - ybar[:, None]) ** 2).sum(1) / tw.sum(1)
        r2 = 1.0 - res.scores / var[:, None]              # (K, m)
        mean = r2.mean(0)
        j = int(np.argmax(mean))
        self.alpha_ = float(sk[j])
        self.best_score_ = float(mean[j])
        self.coef_ = np.asarray(res.path.coef[j], X.dtype)
        self.intercept_ = float(res.path.intercept[j])

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        return X @ self.coef_ + self.intercept_


class LogisticRegressionCV(ClassifierMixin, BaseEstimator):
    """Binary logistic regression with C (and l1_ratio) chosen by stratified K-fold CV.

    Cs: an int (np.logspace(-4, 4, Cs)) or a list; l1_ratios: None or (0,) for L2, 1 for
    L1, a list for the elastic net. The objective per fold is scikit-learn's (C times the
    summed log loss plus the penalty), i.e. linjax strength 1 / (C * sum of training
    weights). scoring: None / "accuracy" (scikit-learn's default) or "neg_log_loss".
    Attributes: C_, l1_ratio_ (arrays of one value), Cs_, coef_ (1, p), intercept_ (1,),
    classes_, scores_ {classes_[1]: (n_folds, n_Cs)} (one l1_ratio) or (n_folds, n_Cs,
    n_l1_ratios), n_iter_. refit=False averages the fold coefficients at the best C.
    """

    def __init__(self, *, Cs=10, l1_ratios=None, fit_intercept=True, cv=None, scoring=None,
                 tol=None, max_iter=10000, class_weight=None, verbose=0, refit=True,
                 random_state=None):
        self.Cs = Cs
        self.l1_ratios = l1_ratios
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.verbose = verbose
        self.refit = refit
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None, groups=None):
        X, y = validate_data(self, X, y, dtype=_FLOATS)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"LogisticRegressionCV: binary problems only, got "
                             f"{len(self.classes_)} classes; use LogisticRegression with "
                             "sklearn.model_selection.GridSearchCV for more classes.")
        scoring = {None: "accuracy", "accuracy": "accuracy", "neg_log_loss": "log_loss"}.get(
            self.scoring)
        if scoring is None:
            raise ValueError("LogisticRegressionCV: scoring must be None, 'accuracy' or "
                             f"'neg_log_loss', got {self.scoring!r}.")
        yb = (y == self.classes_[1]).astype(X.dtype)
        w = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        if self.class_weight is not None:
            from linjax.estimators._logistic import balanced_or_dict

            cw = balanced_or_dict(self.class_weight, self.classes_, y, w)
            w = w * np.where(yb > 0, cw[1], cw[0])
        Cs = np.logspace(-4, 4, self.Cs) if isinstance(self.Cs, numbers.Integral) else \
            np.sort(np.asarray(self.Cs, float))
        if np.any(Cs <= 0):
            raise ValueError("LogisticRegressionCV: Cs must be positive.")
        ratios = [0.0] if self.l1_ratios is None else list(_as_list("l1_ratios",
                                                                    self.l1_ratios))
        folds = _splits(self.cv, X, y, groups, classifier=True)
        train, _ = S.fold_masks(folds, X.shape[0])
        sums = np.concatenate([[w.sum()], (train * w).sum(1)])
        grid = 1.0 / (Cs[None, :] * sums[:, None])          # increasing C: decreasing alpha
        results = [S.cv_path(X, yb, "binomial", r, grid, folds, weights=w,
                             fit_intercept=self.fit_intercept, scoring=scoring, tol=self.tol,
                             max_sweeps=self.max_iter)
                   for r in _progress(ratios, self.verbose, "LogisticRegressionCV")]
        sign = -1.0 if scoring == "log_loss" else 1.0
        scores = np.stack([sign * res.scores for res in results], -1)  # (K, n_Cs, n_l1)
        mean = scores.mean(0)
        j, i = np.unravel_index(int(np.argmax(mean)), mean.shape)
        res = results[i]
        self.Cs_ = Cs
        self.C_ = np.array([Cs[j]])
        self.l1_ratio_ = np.array([ratios[i]])
        self.l1_ratios_ = np.array(ratios)
        self.scores_ = {self.classes_[1]: scores[..., 0] if len(ratios) == 1 else scores}
        if self.refit:
            coef, b0 = np.asarray(res.path.coef[j]), float(res.path.intercept[j])
        else:
            coef = np.asarray(res.fold_paths.coef[:, j]).mean(0)
            b0 = float(np.asarray(res.fold_paths.intercept[:, j]).mean())
        self.coef_ = coef.reshape(1, -1).astype(X.dtype)
        self.intercept_ = np.array([b0 if self.fit_intercept else 0.0])
        self.n_iter_ = np.array([[int(res.path.n_iter[j])]])
        self.cv_results_ = results
        return self

    def decision_function(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]
