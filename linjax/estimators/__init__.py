"""scikit-learn compatible estimators (docs/estimators.md); needs scikit-learn.

    from linjax.estimators import LogisticRegression, PoissonRegressor, GLM

`LinearRegression, Ridge, Lasso, ElasticNet, LogisticRegression, PoissonRegressor,
GammaRegressor, TweedieRegressor, GLM` take scikit-learn's parameter names and
meanings and minimise the same objectives (each class docstring states the
scaling), plus `standardize=True` (fit on standardized columns, report original-
scale coefficients, as glmnet), `offset=` in fit/predict, and `summary()` (the
inference table with feature names). Transformers: `StandardScaler`,
`PolynomialFeatures` (also in `linjax.preprocessing`).

Compile once: every fit runs one jit-compiled function (`linjax.fit`), cached by
XLA on its static configuration and on the shapes and dtypes of its arrays. A
refit reuses the compiled function when all of these are unchanged:

- the shape (n_samples, n_features) and dtype of X (float32 or float64);
- the family and link, the penalty *type* (L2 / L1 / ElasticNet: for example
  l1_ratio moving between 0, 1 and a value in between changes the type), and the
  solver with its static settings (max_iter, method);
- fit_intercept, whether an offset is passed, whether bounds (positive=True) are
  used, and for warm_start whether a starting point exists;
- the number of classes and the multi_class mode (LogisticRegression).

Numeric hyperparameters are traced values, so changing alpha, C, l1_ratio inside
one penalty type, tol, sample weights or class weights does *not* recompile;
estimators always pass sample weights (ones by default) for this reason. A new
number of rows recompiles (cross-validation folds of unequal sizes compile once
per distinct size). Predictions run in numpy and never compile.

Compile once per machine, too: importing this package turns on JAX's persistent
compilation cache (`linjax._cache`: under `~/.cache/linjax`, as the command line does),
so a new process that fits the same configuration loads the compiled program from
disk instead of compiling it. LINJAX_COMPILATION_CACHE=off (set before the import)
opts out, a path moves it; a cache directory already configured in JAX is kept.
"""

from linjax._cache import enable_persistent_cache
from linjax.estimators._base import SeparationWarning
from linjax.estimators._cv import GLMCV, ElasticNetCV, LassoCV, LogisticRegressionCV, RidgeCV
from linjax.estimators._logistic import LogisticRegression
from linjax.estimators._preprocessing import PolynomialFeatures, StandardScaler
from linjax.estimators._regression import (
    GLM,
    ElasticNet,
    GammaRegressor,
    Lasso,
    LinearRegression,
    PoissonRegressor,
    Ridge,
    TweedieRegressor,
)

__all__ = [
    "LinearRegression", "Ridge", "Lasso", "ElasticNet", "LogisticRegression", "PoissonRegressor",
    "GammaRegressor", "TweedieRegressor", "GLM", "StandardScaler", "PolynomialFeatures",
    "SeparationWarning", "RidgeCV", "LassoCV", "ElasticNetCV", "LogisticRegressionCV", "GLMCV",
]

enable_persistent_cache()
