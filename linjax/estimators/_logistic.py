"""LogisticRegression: binary, multinomial (softmax) and one-vs-rest, scikit-learn's objective.

scikit-learn minimises  C sum_i s_i logloss_i + l1_ratio ||W||_1 + (1 - l1_ratio) / 2 ||W||^2
with s_i = sample_weight_i * class_weight[y_i]. Dividing by C sum_i s_i gives linjax's
objective (docs/objective.md: the mean of s_i-weighted half deviances, which for 0/1 or
class labels is the log loss) with penalty strength alpha = 1 / (C sum_i s_i):
L2(alpha) for l1_ratio = 0, L1(alpha) for 1, ElasticNet(alpha, l1_ratio) between.
C = inf fits without a penalty. The sum uses the weights after the class weights
are applied, as scikit-learn does (its `sw_sum`). class_weight="balanced" gives class
k the weight sum(w) / (n_classes * sum of w over class k) with the sample weights w
(as scikit-learn 1.8+; unweighted counts with older scikit-learn).
"""

import numbers

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted

from linjax import families as F
from linjax.designs import fitting as design_fitting
from linjax.designs import is_design
from linjax.estimators._base import (
    FLOATS,
    SEPARATION_REMEDY,
    LinjaxMixin,
    as_dtype,
    check_choice,
    check_number,
    fit_dtype,
    matvec,
    penalty_from,
    result_to_numpy,
    validate_fit_input,
    validated_X,
)
from linjax.separation import warn_if_separated


def check_class_weight(owner, class_weight):
    """None, "balanced" or a dict {label: weight} of finite weights >= 0."""
    cw = class_weight
    if not (cw is None or (isinstance(cw, str) and cw == "balanced") or isinstance(cw, dict)):
        raise ValueError(f"{owner}: class_weight must be None, 'balanced' or a dict "
                         f"{{label: weight}}, got {cw!r}.")
    if isinstance(cw, dict):
        for label, weight in cw.items():
            ok = isinstance(weight, numbers.Real) and not isinstance(weight, bool) and \
                np.isfinite(weight) and weight >= 0
            if not ok:
                raise ValueError(f"{owner}: class_weight[{label!r}] must be a finite number "
                                 f">= 0, got {weight!r}.")


def balanced_or_dict(class_weight, classes, y, sample_weight):
    """Per-class weights; "balanced" uses sample-weighted class counts (scikit-learn >= 1.8)."""
    try:
        return compute_class_weight(class_weight, classes=classes, y=y,
                                    sample_weight=sample_weight)
    except TypeError:  # pragma: no cover - older scikit-learn: unweighted counts
        return compute_class_weight(class_weight, classes=classes, y=y)


def class_weights(owner, class_weight, classes, y, sample_weight):
    """Per-class weights (ones for None); a bad `class_weight` is named with its `owner`."""
    if class_weight is None:
        return np.ones(len(classes))
    try:
        return balanced_or_dict(class_weight, classes, y, sample_weight)
    except ValueError as err:
        raise ValueError(f"{owner}: class_weight: {err}") from err


class LogisticRegression(LinjaxMixin, ClassifierMixin, BaseEstimator):
    """Logistic regression with scikit-learn's parameters and objective (see module docstring).

    C: inverse penalty strength (np.inf: no penalty); l1_ratio: 0 ridge, 1 lasso, in
    between elastic net; class_weight: None, "balanced" or {label: weight};
    multi_class: "auto" (softmax for more than two classes, as scikit-learn),
    "multinomial" or "ovr" (one binary fit per class, probabilities normalized over
    classes). Labels may be of any type (`classes_` keeps them sorted). solver:
    "auto" (Newton for smooth problems, coordinate descent / FISTA with an L1
    part), a linjax solver name (scikit-learn's "newton-cholesky", "newton-cg",
    "liblinear", "saga" are accepted as aliases) or a `linjax.solvers` instance;
    max_iter / tol: None uses the solver's dtype-aware defaults. fit and the
    prediction methods accept an `offset` added to the linear predictor.
    Fits without a penalty whose probabilities reach 0 or 1 are checked for
    separation (`SeparationWarning`, which names Firth or a penalty as the fix).
    """

    def __init__(self, C=1.0, *, l1_ratio=0.0, tol=None, fit_intercept=True, class_weight=None,
                 solver="auto", max_iter=None, warm_start=False, multi_class="auto",
                 standardize=False):
        self.C = C
        self.l1_ratio = l1_ratio
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.solver = solver
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.multi_class = multi_class
        self.standardize = standardize

    # -- parameters ---------------------------------------------------------------------
    def _check_params(self):
        self._validate_common()
        check_number("LogisticRegression", "C", self.C, low=0, low_open=True, allow_inf=True)
        check_number("LogisticRegression", "l1_ratio", self.l1_ratio, low=0, high=1)
        check_choice("LogisticRegression", "multi_class", self.multi_class,
                     {"auto", "multinomial", "ovr"})
        check_class_weight("LogisticRegression", self.class_weight)

    def _penalty(self, weight_sum):
        alpha = 0.0 if np.isinf(self.C) else 1.0 / (float(self.C) * weight_sum)
        return penalty_from(alpha, self.l1_ratio)

    def _class_weights(self, classes, y, sample_weight):
        return class_weights("LogisticRegression", self.class_weight, classes, y,
                             sample_weight)

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, offset=None):
        """Fit on X (n, p) and labels y (n,) of any type; returns self. X may be scipy.sparse
        or a DataFrame with category/string columns (two classes or one-vs-rest)."""
        self._check_params()
        X, y = validate_fit_input(self, X, y, dtype=FLOATS)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"LogisticRegression: y contains only one class ({classes[0]!r}); "
                             "a classifier needs samples of at least 2 classes.")
        dtype = fit_dtype(X)
        X = as_dtype(X, dtype)
        n, p = X.shape
        w = self._sample_weight(sample_weight, X, dtype)
        off = self._offset(offset, n, dtype)
        K = len(classes)
        mode = "binary" if K == 2 else ("ovr" if self.multi_class == "ovr" else "multinomial")
        if mode == "multinomial" and is_design(X):  # the softmax fits need a dense X
            X = design_fitting.dense_for_checks(X)
            if X is None:
                raise ValueError(f"LogisticRegression: {K} classes with a softmax need a dense "
                                 "X, and this sparse or categorical X is too large to densify; "
                                 "pass multi_class='ovr' (one binary fit per class keeps it "
                                 "sparse or categorical).")
            X = np.asarray(X, dtype)
        stats = self._standardizer(X, w)
        previous = (getattr(self, "coef_", None) if self.warm_start else None)
        if previous is not None and not (previous.shape[1] == p and
                                         len(getattr(self, "classes_", ())) == K and
                                         getattr(self, "_mode", None) == mode):
            previous = None
        self.classes_ = classes
        if mode == "ovr":
            coefs, intercepts, n_iter, results = [], [], [], []
            for k in range(K):
                yk = (y_idx == k).astype(dtype)
                if self.class_weight == "balanced":
                    cw = balanced_or_dict("balanced", np.array([0.0, 1.0]), yk, w)
                    wk = w * cw[yk.astype(int)]
                else:
                    wk = w * self._class_weights(classes, y, w)[y_idx]
                init = None if previous is None else {"coef": previous[k],
                                                      "intercept": self.intercept_[k]}
                result, params = self._run_fit(X, yk, wk, off, F.Binomial(),
                                               self._penalty(float(wk.sum())), init, stats)
                coefs.append(params["coef"])
                intercepts.append(params["intercept"])
                n_iter.append(int(np.asarray(result.n_iter)))
                results.append(result_to_numpy(result))
            self.coef_ = np.stack(coefs)
            self.intercept_ = np.stack(intercepts)
            self.n_iter_ = np.asarray(n_iter, dtype=np.int32)
            self.result_ = results
            self._train = None
        else:
            wt = (w * self._class_weights(classes, y, w)[y_idx]).astype(dtype)
            penalty = self._penalty(float(wt.sum()))
            if mode == "binary":
                family, target = F.Binomial(), y_idx.astype(dtype)
                init = None if previous is None else {"coef": previous[0],
                                                      "intercept": self.intercept_[0]}
            else:
                family, target = F.Multinomial(n_classes=K), y_idx.astype(dtype)
                init = None if previous is None else {"coef": previous.T,
                                                      "intercept": self.intercept_}
            result, params = self._run_fit(X, target, wt, off, family, penalty, init, stats)
            coef, intercept = params["coef"], params["intercept"]
            self.coef_ = coef[None, :] if mode == "binary" else coef.T.copy()
            self.intercept_ = intercept.reshape(-1)
            self.n_iter_ = np.asarray([int(np.asarray(result.n_iter))], dtype=np.int32)
            self.result_ = result_to_numpy(result)
            self._train = (X, target, wt, off)
            dense = design_fitting.dense_for_checks(X)
            if mode == "binary" and float(np.asarray(penalty.alpha)) == 0.0 and \
                    dense is not None:
                warn_if_separated(dense, target, wt, {"coef": coef, "intercept": intercept}, off,
                                  family, self.fit_intercept, "LogisticRegression",
                                  SEPARATION_REMEDY)
        self._mode = mode
        self._stats = stats
        return self

    # -- prediction ---------------------------------------------------------------------
    def _validate_X(self, X):
        return validated_X(self, X, self.coef_.dtype)

    def decision_function(self, X, offset=None):
        """Linear predictor: (n,) for two classes (log odds of classes_[1]), else (n, K)."""
        check_is_fitted(self)
        X = self._validate_X(X)
        scores = matvec(X, self.coef_.T) + self.intercept_
        if offset is not None:
            scores = scores + self._offset(offset, X.shape[0], scores.dtype)[:, None]
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X, offset=None):
        """The most probable class label."""
        scores = self.decision_function(X, offset)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else np.argmax(scores, axis=1)
        return self.classes_[idx]

    def predict_proba(self, X, offset=None):
        """(n, K) class probabilities in the order of `classes_`."""
        scores = self.decision_function(X, offset)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1.0 - p, p])
        if self._mode == "ovr":
            prob = expit(scores)
            return prob / prob.sum(axis=1, keepdims=True)
        return softmax(scores, axis=1)

    def predict_log_proba(self, X, offset=None):
        """Log of `predict_proba`, computed stably (log-sigmoid / log-softmax)."""
        scores = self.decision_function(X, offset)
        if scores.ndim == 1:
            return np.column_stack([log_expit(-scores), log_expit(scores)])
        if self._mode == "ovr":
            return np.log(self.predict_proba(X, offset))
        return log_softmax(scores, axis=1)

    # -- inference ----------------------------------------------------------------------
    def _check_summary_supported(self):
        if self._mode != "binary":
            raise NotImplementedError(
                "LogisticRegression.summary: only two-class models have a coefficient table; "
                "for several classes fit one binary model per class (multi_class='ovr' fits "
                "them, LogisticRegression on y == label gives each table).")

    def _encode_y_for_summary(self, y):
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"LogisticRegression.summary: y has labels not seen in fit "
                             f"(e.g. {y[unknown][0]!r}); expected {list(self.classes_)}.")
        return (y == self.classes_[1]).astype(float)

    def _summary_weights(self, y01, sample_weight, X):
        w = self._sample_weight(sample_weight, X, X.dtype)
        y_lab = self.classes_[y01.astype(int)]
        cw = self._class_weights(self.classes_, y_lab, w)
        return (w * cw[y01.astype(int)]).astype(X.dtype)

    def _coef_for_fit(self):
        return self.coef_[0] if self._mode == "binary" else self.coef_.T

    def _intercept_for_fit(self):
        return self.intercept_[0] if self._mode == "binary" else self.intercept_
