"""Every entry point x every problem of tests/zoo.py: lj.fit's answer to 1e-8, or a refusal.

A grid in the style of optimistix's solver x problem tests. The problems are zoo's families
with its weights and offsets, unpenalized, and L2, L1, bounds, Firth and an estimated
negative binomial alpha on some of them. The entry points are lj.fit with each solver that
may answer, lj.fit_batch (one problem, the shared-design and the generic path; two
problems), fit_blocked, fit_streaming, a sharded fit, a dense `Design`, lj.glm formulas,
lj.path / lj.cv_path at the problem's alpha and the GLM estimator. Every cell either agrees
with `lj.fit(..., solver="auto")` to 1e-8 or refuses; a refusal for one reason is written
once (in `linjax.validation` or the solver), so the entry points refuse in the same words.

Cost: one shape (zoo's n = 120, p = 3), a reference fit per problem shared by every cell
(`functools.cache`), and the cells outside `FAST` marked slow (each compiles its own program).
"""

import functools
import re
import warnings
from typing import NamedTuple

import numpy as np
import pytest

import linjax as lj
from linjax import families as F
from linjax import links as L
from linjax import penalties as P
from linjax import solvers as S
from linjax import validation
from tests import zoo

ATOL = 1e-8


class Problem(NamedTuple):
    data: str       # the zoo generator
    family: object
    penalty: object = None
    bounds: tuple = None


FAMILIES = {
    "gaussian": F.Gaussian(), "binomial": F.Binomial(), "poisson": F.Poisson(),
    "gamma": F.Gamma(link=L.Log()), "gamma_inverse": F.Gamma(),
    "inverse_gaussian_canonical": F.InverseGaussian(),
    "inverse_gaussian": F.InverseGaussian(link=L.Log()),
    "negative_binomial": F.NegativeBinomial(alpha=0.5), "tweedie": F.Tweedie(power=1.5),
}

PROBLEMS = {name: Problem(name, family) for name, family in FAMILIES.items()}
for _name in ("gaussian", "binomial", "poisson"):
    PROBLEMS[f"{_name}-l2"] = Problem(_name, FAMILIES[_name], P.L2(alpha=0.05))
    PROBLEMS[f"{_name}-l1"] = Problem(_name, FAMILIES[_name], P.L1(alpha=0.02))
for _name in ("gaussian", "poisson"):
    PROBLEMS[f"{_name}-bounds"] = Problem(_name, FAMILIES[_name], bounds=(0.0, 0.3))
PROBLEMS["binomial-firth"] = Problem("binomial", F.Binomial(), P.Firth())
PROBLEMS["negative_binomial-alpha"] = Problem("negative_binomial",
                                              F.NegativeBinomial(alpha=None))


def _vector(result):
    return np.r_[np.asarray(result.params["intercept"]).ravel(),
                 np.asarray(result.params["coef"]).ravel()]


@functools.cache
def _data(name):
    return zoo.problem(name)


@functools.cache
def reference(problem_name):
    """lj.fit's answer (solver "auto"), shared by every cell of the problem."""
    pr = PROBLEMS[problem_name]
    X, y, w, o = _data(pr.data)
    result = lj.fit(X, y, pr.family, pr.penalty, weights=w, offset=o, bounds=pr.bounds)
    assert bool(result.converged), result.message
    return _vector(result)


# -- entry points: each returns [intercept, coef] ------------------------------------------

def _fit_with(solver):
    def run(pr, X, y, w, o):
        result = lj.fit(X, y, pr.family, pr.penalty, solver, w, o, bounds=pr.bounds)
        assert bool(result.converged), result.message
        return _vector(result)
    return run


def _batch(gram, m=1):
    def run(pr, X, y, w, o):
        result = lj.fit_batch(X, np.stack([y] * m), pr.family, pr.penalty, weights=w, offset=o,
                              bounds=pr.bounds, gram=gram)
        assert np.all(np.asarray(result.converged))
        rows = np.c_[np.asarray(result.params["intercept"]), np.asarray(result.params["coef"])]
        np.testing.assert_array_equal(rows, np.broadcast_to(rows[0], rows.shape))
        return rows[0]
    return run


def _blocked(pr, X, y, w, o):
    kwargs = {} if pr.bounds is None else {"bounds": pr.bounds}  # no such argument: refused
    return _vector(lj.scale.fit_blocked(X, y, pr.family, pr.penalty, weights=w, offset=o,
                                        block_size=50, **kwargs))


def _streaming(pr, X, y, w, o):
    kwargs = {} if pr.bounds is None else {"bounds": pr.bounds}

    def chunks():
        return [(X[i:i + 50], y[i:i + 50], w[i:i + 50], o[i:i + 50]) for i in range(0, 120, 50)]
    return _vector(lj.fit_streaming(chunks, pr.family, pr.penalty, **kwargs))


def _sharded(pr, X, y, w, o):
    Xs, ys, ws, os_ = lj.shard_rows(X, y, w, o, family=pr.family)
    return _vector(lj.fit(Xs, ys, pr.family, pr.penalty, weights=ws, offset=os_,
                          bounds=pr.bounds))


def _dense_design(pr, X, y, w, o):
    return _vector(lj.fit(lj.designs.Dense(X), y, pr.family, pr.penalty, weights=w, offset=o,
                          bounds=pr.bounds))


def _formula(pr, X, y, w, o):
    import pandas as pd

    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y})
    kwargs = {} if pr.bounds is None else {"bounds": pr.bounds}
    return _vector(lj.glm("y ~ a + b + c", frame, pr.family, pr.penalty, weights=w, offset=o,
                          **kwargs).result)


def _l1_ratio(penalty):
    return 1.0 if isinstance(penalty, P.L1) else 0.0


def _alpha(pr):
    return np.array([pr.penalty.alpha if pr.penalty is not None else 0.1])


def _path(pr, X, y, w, o):
    path = lj.path(X, y, pr.family, _l1_ratio(pr.penalty), _alpha(pr), weights=w, offset=o,
                   tol=1e-12)
    return np.r_[np.asarray(path.intercept)[0], np.asarray(path.coef)[0]]


def _cv_path(pr, X, y, w, o):
    cv = lj.cv_path(X, y, pr.family, _l1_ratio(pr.penalty), _alpha(pr), folds=3, weights=w,
                    offset=o, tol=1e-12, warn_edge=False)
    return np.r_[np.asarray(cv.path.intercept)[0], np.asarray(cv.path.coef)[0]]


def _estimator(pr, X, y, w, o):
    from linjax.estimators import GLM

    alpha = 0.0 if pr.penalty is None else pr.penalty.alpha
    est = GLM(family=pr.family, alpha=alpha, l1_ratio=_l1_ratio(pr.penalty))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning is a failure here
        est.fit(X, y, sample_weight=w, offset=o)
    return np.r_[est.intercept_, est.coef_]


def _sklearn_estimator(pr, w):
    """The scikit-learn-named estimator that fits the problem's model, or None. Their
    strengths follow scikit-learn: Ridge's alpha and LogisticRegression's 1 / C are on the
    weighted sum of losses, lj.fit's on the weighted mean (docs/objective.md)."""
    from linjax import estimators as E

    if pr.bounds is not None or isinstance(pr.penalty, P.Firth) or getattr(
            pr.family, "alpha", 0.0) is None:
        return None
    alpha = 0.0 if pr.penalty is None else pr.penalty.alpha
    l1 = isinstance(pr.penalty, P.L1)
    name = (pr.data, type(pr.penalty or P.NoPenalty()).__name__)
    if name == ("gaussian", "NoPenalty"):
        return E.LinearRegression()
    if name == ("gaussian", "L2"):
        return E.Ridge(alpha=alpha * np.sum(w))
    if name == ("gaussian", "L1"):
        return E.Lasso(alpha=alpha)
    if pr.data == "binomial":
        return E.LogisticRegression(C=np.inf if alpha == 0 else 1 / (alpha * np.sum(w)),
                                    l1_ratio=float(l1))
    if pr.data == "poisson" and not l1:
        return E.PoissonRegressor(alpha=alpha)
    if pr.data == "gamma":
        return E.GammaRegressor(alpha=0.0)
    if pr.data == "tweedie":
        return E.TweedieRegressor(power=1.5, link="log", alpha=0.0)
    return None


def _sklearn_named(pr, X, y, w, o):
    est = _sklearn_estimator(pr, w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit(X, y, sample_weight=w, offset=o)
    return np.r_[np.ravel(est.intercept_), np.ravel(est.coef_)]


ENTRY_POINTS = {
    "fit-newton": _fit_with("newton"),
    "fit-fisher": _fit_with(S.Newton(fisher=True)),
    "fit-lbfgs": _fit_with(S.LBFGS(tol=1e-12)),
    "fit-cd": _fit_with("cd"),
    "fit-proximal": _fit_with(S.ProximalGradient(tol=1e-11, max_iter=20000)),
    "fit-projected_newton": _fit_with("projected_newton"),
    "fit-lstsq": _fit_with("lstsq"),
    "fit_batch": _batch("auto"),
    "fit_batch-vmap": _batch("vmap"),
    "fit_batch-m2": _batch("auto", m=2),
    "fit_blocked": _blocked,
    "fit_streaming": _streaming,
    "sharded": _sharded,
    "design-dense": _dense_design,
    "glm-formula": _formula,
    "path": _path,
    "cv_path": _cv_path,
    "estimator-GLM": _estimator,
    "estimator-sklearn": _sklearn_named,
}

# -- what each cell must do -----------------------------------------------------------------

NOT_SMOOTH = r"^penalty: L1 is not smooth \(it has an L1 part\), which "
FIRTH_SOLVER = r"^solver: Firth\(\) \(linjax.firth\) is fitted by Newton"
LSTSQ_FAMILY = r"^solver: LeastSquares solves the Gaussian family with the identity link, not "
NO_BOUNDS_ARG = r"got an unexpected keyword argument 'bounds'"


def expected(entry, problem_name):
    """None: the cell agrees with lj.fit; "skip": not comparable (no such model at that entry
    point, e.g. a path of an unpenalized fit); else (exception type, message pattern)."""
    pr = PROBLEMS[problem_name]
    l1 = isinstance(pr.penalty, P.L1)
    firth = isinstance(pr.penalty, P.Firth)
    nb_alpha = isinstance(pr.family, F.NegativeBinomial) and pr.family.alpha is None
    gaussian_identity = pr.data == "gaussian"
    solver = entry.removeprefix("fit-") if entry.startswith("fit-") else None
    if entry in ("path", "cv_path"):
        if nb_alpha:
            return ValueError, "^" + re.escape(validation.ALPHA_ESTIMATED_ONLY_IN_FIT) + "$"
        return None if isinstance(pr.penalty, P.L1 | P.L2) else "skip"
    if entry == "estimator-sklearn":
        return "skip" if _sklearn_estimator(pr, _data(pr.data)[2]) is None else None
    if entry == "estimator-GLM":
        return "skip" if firth or pr.bounds is not None else None
    if firth:
        if entry in ("fit_batch", "fit_batch-vmap", "fit_batch-m2", "fit_blocked",
                     "fit_streaming"):
            return ValueError, "^" + re.escape(validation.FIRTH_ONLY_IN_FIT) + "$"
        if solver is not None and solver not in ("newton", "fisher"):
            return ValueError, FIRTH_SOLVER
        return None
    if entry in ("fit_blocked", "fit_streaming"):
        if nb_alpha:
            return ValueError, "^" + re.escape(validation.ALPHA_ESTIMATED_ONLY_IN_FIT) + "$"
        if l1:
            return ValueError, "^" + re.escape(validation.IRLS_NEEDS_SMOOTH.format(name="L1")) + "$"
        if pr.bounds is not None:
            return TypeError, NO_BOUNDS_ARG
        return None
    if l1 and solver in ("newton", "fisher", "lbfgs", "projected_newton", "lstsq"):
        return ValueError, NOT_SMOOTH
    if pr.bounds is not None and solver in ("newton", "fisher", "lbfgs", "lstsq"):
        return ValueError, r"^bounds: \w+ does not handle coefficient bounds"
    if solver == "lstsq" and not gaussian_identity:
        return ValueError, LSTSQ_FAMILY
    if nb_alpha and entry in ("fit_batch-m2",):
        return "skip"  # one shape of estimated fit_batch is enough (each compiles ~15 s)
    return None


#: The agreeing cells that run by default: one or two per entry point, on the zoo's Gaussian,
#: binomial and Poisson problems (each cell compiles a program; the rest are marked slow and
#: `python -m pytest -m slow tests/test_entry_point_grid.py` runs them, about 4 minutes).
#: Every refusal runs by default: nothing compiles before it.
FAST = {
    ("fit-fisher", "poisson-l2"), ("fit-lbfgs", "binomial"), ("fit-cd", "gaussian-bounds"),
    ("fit-proximal", "binomial-l1"), ("fit-lstsq", "gaussian"), ("fit_batch", "poisson-l2"),
    ("fit_batch-vmap", "binomial-l1"), ("fit_blocked", "poisson-l2"),
    ("fit_streaming", "binomial"), ("sharded", "binomial"), ("design-dense", "poisson"),
    ("glm-formula", "binomial"), ("path", "binomial-l1"), ("estimator-GLM", "poisson-l2"),
}

CELLS = []
for _entry in ENTRY_POINTS:
    for _problem in PROBLEMS:
        _want = expected(_entry, _problem)
        if _want == "skip":
            continue
        _marks = [] if _want is not None or (_entry, _problem) in FAST else [pytest.mark.slow]
        CELLS.append(pytest.param(_entry, _problem, marks=_marks, id=f"{_entry}-{_problem}"))


@pytest.mark.parametrize("entry, problem_name", CELLS)
def test_entry_point_agrees_with_fit_or_refuses(entry, problem_name):
    pr = PROBLEMS[problem_name]
    X, y, w, o = _data(pr.data)
    want = expected(entry, problem_name)
    if want is None:
        got = ENTRY_POINTS[entry](pr, X, y, w, o)
        np.testing.assert_allclose(got, reference(problem_name), rtol=0, atol=ATOL)
    else:
        error, pattern = want
        with pytest.raises(error, match=pattern):
            ENTRY_POINTS[entry](pr, X, y, w, o)


def _refusal(entry, problem_name):
    pr = PROBLEMS[problem_name]
    X, y, w, o = _data(pr.data)
    with pytest.raises(Exception) as caught:
        ENTRY_POINTS[entry](pr, X, y, w, o)
    return str(caught.value)


@pytest.mark.parametrize("problem_name, entries", [
    ("binomial-firth", ("fit_batch", "fit_batch-vmap", "fit_batch-m2", "fit_blocked",
                        "fit_streaming")),
    ("negative_binomial-alpha", ("fit_blocked", "fit_streaming", "path", "cv_path")),
    ("poisson-l1", ("fit_blocked", "fit_streaming")),
    ("binomial-l1", ("fit-newton", "fit-fisher")),
])
def test_entry_points_refuse_in_the_same_words(problem_name, entries):
    """One reason, one message: the entry points that refuse a problem say the same thing."""
    messages = {entry: _refusal(entry, problem_name) for entry in entries}
    if problem_name == "binomial-l1":  # the solver's name is the one difference
        messages = {e: m.replace("Newton", "<solver>") for e, m in messages.items()}
    assert len(set(messages.values())) == 1, messages


def test_firth_and_estimated_alpha_refuse_what_they_would_drop():
    """lj.fit used to drop `bounds` silently for Firth and an estimated negative binomial
    alpha, and to replace a named solver by Newton for Firth."""
    pr = PROBLEMS["binomial-firth"]
    X, y, w, o = _data(pr.data)
    with pytest.raises(ValueError, match=r"^bounds: Firth\(\) .* does not take coefficient"):
        lj.fit(X, y, pr.family, pr.penalty, weights=w, offset=o, bounds=(0.0, 0.1))
    with pytest.raises(ValueError, match=FIRTH_SOLVER + r", got 'cd'"):
        lj.fit(X, y, pr.family, pr.penalty, "cd", weights=w, offset=o)
    X, y, w, o = _data("negative_binomial")
    with pytest.raises(ValueError, match=r"^bounds: NegativeBinomial\(alpha=None\) estimates"):
        lj.fit(X, y, F.NegativeBinomial(alpha=None), weights=w, offset=o, bounds=(0.0, 0.1))


def test_estimated_alpha_family_checks_its_support():
    """NegativeBinomial(alpha=None).support_error compared None > 0 (a TypeError in
    shard_rows, fit_blocked and paths); it checks y like any negative binomial."""
    family = F.NegativeBinomial(alpha=None)
    assert family.support_error(np.array([0.0, 3.0])) is None
    assert "y >= 0" in family.support_error(np.array([-1.0, 3.0]))
