"""Estimators that choose their penalty by cross-validation (scikit-learn names).

`LassoCV`, `ElasticNetCV`, `GLMCV`, `LogisticRegressionCV` (two classes, or one-vs-rest)
fit the whole path on every fold in one compiled, vmapped call
(`linjax.selection.cv_path`) per l1_ratio (a softmax LogisticRegressionCV fits each fold
and C with `LogisticRegression`), then take the full-data path's solution at the chosen
alpha (the path is fitted with the folds, so there is no separate refit). `RidgeCV` uses
the exact leave-one-out closed form (an SVD of the centred design) when cv is None, as
scikit-learn, and the vmapped path otherwise. Folds come from scikit-learn's `check_cv`
(KFold for regressors, StratifiedKFold for classifiers), so given the same cv the folds
are scikit-learn's.

tol: linjax's coordinate-descent tolerance (a coefficient move in the scale of its
curvature, see `linjax.paths`); None gives 1e-8 in float64. max_iter: coordinate sweeps
per alpha. With `verbose` and tqdm installed, a progress bar runs over the l1_ratios.
A chosen penalty at an end of its grid warns (`linjax.selection.GridEdgeWarning`).
"""

import numbers
import warnings

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from linjax import families as F
from linjax import paths as P
from linjax import selection as S
from linjax.designs import fitting as design_fitting
from linjax.designs import is_design
from linjax.estimators._base import (
    FLOATS,
    check_choice,
    family_from,
    family_target_tags,
    matvec,
    validate_fit_input,
    validated_X,
)
from linjax.estimators._logistic import (
    LogisticRegression,
    balanced_or_dict,
    check_class_weight,
    class_weights,
)
from linjax.plotting import plot_cv


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


def _sparse_tags(tags):
    tags.input_tags.sparse = True  # scipy.sparse X stays sparse (a linjax Sparse design)
    tags.input_tags.categorical = True  # category / string columns of a DataFrame
    return tags


def _dense(owner, X, why):
    """A design's dense matrix (numpy) for the parts that need rows, if it is small."""
    dense = design_fitting.dense_for_checks(X)
    if dense is None:
        raise ValueError(f"{owner}: {why} needs a dense X, and this sparse or categorical X "
                         "is too large to densify; pass a smaller problem or a dense array.")
    return np.asarray(dense)


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
        if not (self.eps is None or isinstance(self.eps, numbers.Real) and 0 < self.eps < 1):
            raise ValueError(f"{name}: eps must be None or in (0, 1), got {self.eps!r}.")
        alphas = self.alphas
        if isinstance(alphas, numbers.Integral) and not isinstance(alphas, bool):
            if alphas < 1:
                raise ValueError(f"{name}: alphas must be an int >= 1 (the number of values "
                                 f"on the grid) or a list of alphas >= 0, got {alphas!r}.")
        else:
            try:
                values = np.asarray(alphas, dtype=float)
            except (TypeError, ValueError):
                values = None
            if values is None or values.ndim != 1 or values.size == 0 or \
                    not np.all(np.isfinite(values)) or np.any(values < 0):
                raise ValueError(f"{name}: alphas must be an int >= 1 or a non-empty list of "
                                 f"finite alphas >= 0, got {alphas!r}.")

    def __sklearn_tags__(self):
        return _sparse_tags(super().__sklearn_tags__())

    def fit(self, X, y, sample_weight=None, offset=None, groups=None):
        """Cross-validate the path on X (n, p), y (n,); refit on all rows; returns self.
        X may be scipy.sparse or a DataFrame with category/string columns (a design)."""
        self._check()
        rows = X
        X, y = validate_fit_input(self, X, y, dtype=FLOATS, y_numeric=True)
        y = np.asarray(y, X.dtype)
        family = self._family()
        err = family.support_error(y) if hasattr(family, "support_error") else None
        if err:
            raise ValueError(f"y: {err}")
        w = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        folds = _splits(self.cv, rows, y, groups, classifier=False)
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
                                     max_sweeps=self.max_iter, warn_edge=False))
        means = np.array([res.mean for res in results], float)
        if not np.isfinite(means).any():
            S.choose(means.reshape(-1), means.reshape(-1))  # raises, saying why
        means = np.where(np.isfinite(means), means, np.inf)  # never choose a NaN loss
        i, j = np.unravel_index(int(np.argmin(means)), means.shape)
        best = results[i]
        edge = S.grid_edge(int(j), len(best.alphas), bool(np.asarray(best.path.df)[0] > 0))
        S.warn_grid_edge(type(self).__name__, "alpha", float(best.alphas[j]), edge,
                         "Pass a wider grid (alphas, or a smaller eps).")
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
            warnings.warn(f"{type(self).__name__}: the full-data path did not converge at "
                          f"{int((status != 0).sum())} alpha(s); increase max_iter or tol.",
                          ConvergenceWarning, stacklevel=2)
        return self

    def predict(self, X, offset=None):
        check_is_fitted(self)
        X = validated_X(self, X, self.coef_.dtype)
        eta = matvec(X, self.coef_) + self.intercept_
        if offset is not None:
            eta = eta + np.asarray(offset, eta.dtype)
        return np.asarray(self._family().link.inverse(eta), eta.dtype)

    def plot(self, ax=None):
        """CV curve with error bars and alpha_ / alpha_1se_ marked (`linjax.plotting`)."""
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
    eps: None gives 1e-3, or 1e-6 for a ridge grid (l1_ratio < 1e-3, `paths.default_eps`).
    """

    def __init__(self, *, l1_ratio=0.5, eps=None, alphas=100, fit_intercept=True,
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
    l1_ratio: float or list (default 1: lasso); scoring: "deviance" (default) or "mse";
    eps: None gives 1e-3, or 1e-6 for a ridge grid (l1_ratio < 1e-3, `paths.default_eps`).
    `score` is D^2 (fraction of deviance explained), as scikit-learn's GLMs.
    """

    def __init__(self, family="poisson", link=None, *, l1_ratio=1.0, eps=None, alphas=100,
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
        return family_from(self.family, self.link)

    def __sklearn_tags__(self):
        return family_target_tags(super().__sklearn_tags__(), self._family)

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

    def __sklearn_tags__(self):
        return _sparse_tags(super().__sklearn_tags__())

    def fit(self, X, y, sample_weight=None, groups=None):
        rows = X
        X, y = validate_fit_input(self, X, y, dtype=FLOATS, y_numeric=True)
        y = np.asarray(y, X.dtype)
        if is_design(X) and self.cv is None:  # the leave-one-out SVD needs the matrix
            X = _dense("RidgeCV", X, "leave-one-out (cv=None)")
        alphas = np.asarray(self.alphas, float).reshape(-1)
        if alphas.size == 0 or np.any(alphas <= 0) or not np.all(np.isfinite(alphas)):
            raise ValueError(f"RidgeCV: alphas must be positive and finite, got {self.alphas}.")
        if self.scoring is not None:
            raise ValueError("RidgeCV: only scoring=None is supported.")
        w = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        if self.cv is None:
            self._fit_loo(X, y, w, alphas)
        else:
            self._fit_kfold(X, y, w, alphas, groups, rows)
        ordered = np.unique(alphas)[::-1]
        best = int(np.flatnonzero(ordered == self.alpha_)[0])
        S.warn_grid_edge("RidgeCV", "alpha", self.alpha_, S.grid_edge(best, len(ordered), True),
                         "Pass a wider grid of alphas.")
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

    def _fit_kfold(self, X, y, w, alphas, groups, rows):
        folds = _splits(self.cv, rows, y, groups, classifier=False)
        train, test = S.fold_masks(folds, X.shape[0])
        order = np.argsort(-alphas, kind="stable")
        sk = alphas[order]
        sums = np.concatenate([[w.sum()], (train * w).sum(1)])
        grid = sk[None, :] / sums[:, None]                # linjax strengths, (K + 1, m)
        # ridge has an exact solution (scikit-learn's solvers are direct): a tolerance far
        # below the default's coefficient moves, so that the coordinate descent of a sparse or
        # structured design ends at it as a dense X's solve would
        res = S.cv_path(X, y, "gaussian", 0.0, grid, folds, weights=w,
                        fit_intercept=self.fit_intercept, scoring="mse", warn_edge=False,
                        tol=1e-14)
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
        return matvec(validated_X(self, X, self.coef_.dtype), self.coef_) + self.intercept_


class LogisticRegressionCV(ClassifierMixin, BaseEstimator):
    """Logistic regression with C (and l1_ratio) chosen by stratified K-fold CV.

    Cs: an int >= 1 (np.logspace(-4, 4, Cs)) or a list of positive values; l1_ratios:
    None or (0,) for L2, 1 for L1, a list for the elastic net. The objective per fold is
    scikit-learn's (C times the summed log loss plus the penalty), i.e. linjax strength
    1 / (C * sum of training weights). scoring: None / "accuracy" (scikit-learn's default)
    or "neg_log_loss". multi_class (as `LogisticRegression`): "auto" (softmax for more than
    two classes), "multinomial" or "ovr" (one binary model per class, each with its own C).
    Two classes: the vmapped path (`selection.cv_path`); softmax: one `LogisticRegression`
    fit per fold and C, warm-started along increasing C.
    Attributes: C_, l1_ratio_ ((1,) for two classes, else one value per class), Cs_,
    l1_ratios_, coef_ (1, p) or (n_classes, p), intercept_, classes_, scores_ {class:
    (n_folds, n_Cs)} (one l1_ratio) or (n_folds, n_Cs, n_l1_ratios), the same array for
    every class except with "ovr", n_iter_. refit=False averages the fold coefficients at
    the best C. A chosen C at an end of the grid (where the fit is not the null one) warns
    (`linjax.selection.GridEdgeWarning`).
    """

    def __init__(self, *, Cs=10, l1_ratios=None, fit_intercept=True, cv=None, scoring=None,
                 tol=None, max_iter=10000, class_weight=None, verbose=0, refit=True,
                 random_state=None, multi_class="auto"):
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
        self.multi_class = multi_class

    def __sklearn_tags__(self):
        return _sparse_tags(super().__sklearn_tags__())

    # -- parameters ---------------------------------------------------------------------
    def _check_params(self):
        name = "LogisticRegressionCV"
        check_class_weight(name, self.class_weight)
        check_choice(name, "multi_class", self.multi_class, {"auto", "multinomial", "ovr"})
        scoring = {None: "accuracy", "accuracy": "accuracy", "neg_log_loss": "log_loss"}.get(
            self.scoring) if isinstance(self.scoring, str | None) else None
        if scoring is None:
            raise ValueError(f"{name}: scoring must be None, 'accuracy' or 'neg_log_loss', got "
                             f"{self.scoring!r}.")
        return scoring, self._Cs()

    def _Cs(self):
        Cs = self.Cs
        if isinstance(Cs, numbers.Integral) and not isinstance(Cs, bool):
            if Cs < 1:
                raise ValueError(f"LogisticRegressionCV: Cs must be an int >= 1 (that many "
                                 f"values of C from 1e-4 to 1e4) or a list of positive C "
                                 f"values, got {Cs!r}.")
            return np.logspace(-4, 4, int(Cs))
        try:
            values = np.asarray(Cs, dtype=float)
        except (TypeError, ValueError):
            values = None
        if values is None or values.ndim != 1 or values.size == 0 or \
                not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"LogisticRegressionCV: Cs must be an int >= 1 or a non-empty "
                             f"list of positive, finite C values, got {Cs!r}.")
        return np.sort(values)

    def _ratios(self):
        if self.l1_ratios is None:
            return [0.0]
        return list(_as_list("LogisticRegressionCV: l1_ratios", self.l1_ratios))

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, groups=None):
        """Cross-validate C (and l1_ratio) on X (n, p) and labels y (n,); returns self."""
        scoring, Cs = self._check_params()
        rows = X
        X, y = validate_fit_input(self, X, y, dtype=FLOATS)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"LogisticRegressionCV: y contains only one class "
                             f"({classes[0]!r}); a classifier needs samples of at least 2 "
                             "classes.")
        self.classes_ = classes
        K = len(classes)
        w = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        ratios = self._ratios()
        folds = _splits(self.cv, rows, y, groups, classifier=True)
        mode = "binary" if K == 2 else ("ovr" if self.multi_class == "ovr" else "multinomial")
        if mode == "multinomial" and is_design(X):  # softmax fits take rows of a dense X
            X = _dense("LogisticRegressionCV", X, f"a softmax over {K} classes")
        if mode == "multinomial":
            cw = self._class_weights(classes, y, w)
            fits = [self._multinomial_cv(X, y_idx, K, w * cw[y_idx], Cs, ratios, folds,
                                         scoring)]
        elif mode == "binary":
            cw = self._class_weights(classes, y, w)
            fits = [self._binary_cv(X, (y_idx == 1).astype(X.dtype), w * cw[y_idx], Cs,
                                    ratios, folds, scoring)]
        else:
            fits = []
            for k in range(K):
                yk = (y_idx == k).astype(X.dtype)
                if self.class_weight == "balanced":
                    wk = w * balanced_or_dict("balanced", np.array([0.0, 1.0]), yk,
                                              w)[yk.astype(int)]
                else:
                    wk = w * self._class_weights(classes, y, w)[y_idx]
                fits.append(self._binary_cv(X, yk, wk, Cs, ratios, folds, scoring))
        self._mode = mode
        self.Cs_ = Cs
        self.l1_ratios_ = np.array(ratios)
        if mode == "multinomial":
            fit = fits[0]
            self.coef_, self.intercept_ = fit["coef"], fit["intercept"]
            self.C_ = np.full(K, fit["C"])
            self.l1_ratio_ = np.full(K, fit["l1_ratio"])
            self.scores_ = {c: fit["scores"] for c in classes}
        else:
            self.coef_ = np.vstack([f["coef"] for f in fits]).astype(X.dtype)
            self.intercept_ = np.array([f["intercept"] for f in fits])
            self.C_ = np.array([f["C"] for f in fits])
            self.l1_ratio_ = np.array([f["l1_ratio"] for f in fits])
            keys = classes[1:] if mode == "binary" else classes
            self.scores_ = dict(zip(keys, [f["scores"] for f in fits], strict=True))
        self.n_iter_ = np.array([[f["n_iter"] for f in fits]])
        # binary: one selection.CVPath per l1_ratio; "ovr": such a list per class
        if mode == "binary":
            self.cv_results_ = fits[0]["results"]
        elif mode == "ovr":
            self.cv_results_ = [f["results"] for f in fits]
        return self

    def _class_weights(self, classes, y, w):
        return class_weights("LogisticRegressionCV", self.class_weight, classes, y, w)

    def _pick(self, scores, Cs, ratios):
        """(C index, l1_ratio index) of the best mean score; scores (K, n_Cs, n_l1)."""
        mean = scores.mean(0)
        j, i = np.unravel_index(int(np.argmax(mean)), mean.shape)
        return int(j), int(i)

    def _warn_edge(self, Cs, j, top_has_coefficients):
        # Cs increase where the alphas decrease: index j is the same, the ends swap names
        edge = S.grid_edge(j, len(Cs), top_has_coefficients)
        named = {"smallest": "largest", "largest": "smallest"}.get(edge)
        S.warn_grid_edge("LogisticRegressionCV", "C", float(Cs[j]), named,
                         "Pass a wider grid of Cs.", stacklevel=4)

    def _binary_cv(self, X, yb, w, Cs, ratios, folds, scoring):
        train, _ = S.fold_masks(folds, X.shape[0])
        sums = np.concatenate([[w.sum()], (train * w).sum(1)])
        grid = 1.0 / (Cs[None, :] * sums[:, None])          # increasing C: decreasing alpha
        results = [S.cv_path(X, yb, "binomial", r, grid, folds, weights=w,
                             fit_intercept=self.fit_intercept, scoring=scoring, tol=self.tol,
                             max_sweeps=self.max_iter, warn_edge=False)
                   for r in _progress(ratios, self.verbose, "LogisticRegressionCV")]
        sign = -1.0 if scoring == "log_loss" else 1.0
        scores = np.stack([sign * res.scores for res in results], -1)  # (K, n_Cs, n_l1)
        j, i = self._pick(scores, Cs, ratios)
        res = results[i]
        self._warn_edge(Cs, j, bool(np.asarray(res.path.df)[0] > 0))
        if self.refit:
            coef, b0 = np.asarray(res.path.coef[j]), float(res.path.intercept[j])
        else:
            coef = np.asarray(res.fold_paths.coef[:, j]).mean(0)
            b0 = float(np.asarray(res.fold_paths.intercept[:, j]).mean())
        return {"coef": coef.reshape(1, -1), "intercept": b0 if self.fit_intercept else 0.0,
                "C": Cs[j], "l1_ratio": ratios[i],
                "scores": scores[..., 0] if len(ratios) == 1 else scores,
                "n_iter": int(res.path.n_iter[j]), "results": results}

    def _softmax_fit(self, C, l1_ratio, X, y_idx, w, previous=None):
        est = LogisticRegression(C=C, l1_ratio=l1_ratio, tol=self.tol, max_iter=self.max_iter,
                                 fit_intercept=self.fit_intercept, multi_class="multinomial",
                                 warm_start=previous is not None)
        if previous is not None:
            est.coef_, est.intercept_ = previous.coef_, previous.intercept_
            est.classes_, est._mode = previous.classes_, previous._mode
        return est.fit(X, y_idx, sample_weight=w)

    def _multinomial_cv(self, X, y_idx, K, w, Cs, ratios, folds, scoring):
        """One softmax fit per fold, l1_ratio and C (warm-started along increasing C)."""
        n_folds, p = len(folds), X.shape[1]
        scores = np.empty((n_folds, len(Cs), len(ratios)))
        coefs = np.zeros((n_folds, len(Cs), len(ratios), K, p))
        intercepts = np.zeros((n_folds, len(Cs), len(ratios), K))
        for i, r in enumerate(_progress(ratios, self.verbose, "LogisticRegressionCV")):
            for f, (tr, te) in enumerate(folds):
                est = None
                for j, C in enumerate(Cs):
                    est = self._softmax_fit(C, r, X[tr], y_idx[tr], w[tr], est)
                    seen = est.classes_.astype(int)
                    coefs[f, j, i][seen], intercepts[f, j, i][seen] = est.coef_, est.intercept_
                    prob = np.zeros((len(te), K))
                    prob[:, seen] = est.predict_proba(X[te])
                    scores[f, j, i] = _held_out_score(scoring, prob, y_idx[te], w[te])
        j, i = self._pick(scores, Cs, ratios)
        if self.refit:
            est = self._softmax_fit(Cs[j], ratios[i], X, y_idx, w)
            coef, b0, n_iter = est.coef_, est.intercept_, int(est.n_iter_[0])
        else:
            coef, b0 = coefs[:, j, i].mean(0), intercepts[:, j, i].mean(0)
            n_iter = 0
        self._warn_edge(Cs, j, bool(np.any(coef != 0)) if j == 0 else True)
        return {"coef": coef.astype(X.dtype), "intercept": b0 if self.fit_intercept else
                np.zeros(K), "C": Cs[j], "l1_ratio": ratios[i],
                "scores": scores[..., 0] if len(ratios) == 1 else scores,
                "n_iter": max(n_iter, 1), "results": None}

    # -- prediction ---------------------------------------------------------------------
    def decision_function(self, X):
        """Linear predictor: (n,) for two classes (log odds of classes_[1]), else (n, K)."""
        check_is_fitted(self)
        X = validated_X(self, X, self.coef_.dtype)
        scores = matvec(X, self.coef_.T) + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """(n, K) class probabilities in the order of `classes_`."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1 - p, p])
        if self._mode == "ovr":
            prob = expit(scores)
            return prob / prob.sum(axis=1, keepdims=True)
        return softmax(scores, axis=1)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class label."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else np.argmax(scores, axis=1)
        return self.classes_[idx]


def _held_out_score(scoring, prob, y_idx, w):
    """Weighted mean accuracy, or minus the weighted mean log loss (higher is better)."""
    if scoring == "accuracy":
        return float(np.sum(w * (np.argmax(prob, 1) == y_idx)) / np.sum(w))
    p = np.clip(prob[np.arange(len(y_idx)), y_idx], 1e-15, 1.0)
    return float(np.sum(w * np.log(p)) / np.sum(w))
