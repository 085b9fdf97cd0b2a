"""cv_path_batch: per-problem cross-validated penalties for m problems sharing X.

References: `lj.cv_path` of each problem alone on the same folds (its CV curve, choices and
paths), and `lj.fit` at each problem's chosen strength (an independent solver); both are
checked against glmnet, scikit-learn and glum elsewhere."""

import warnings

import numpy as np
import pytest

import linjax as lj
from linjax.scale.batch_selection import choose_rows, cv_path_batch
from linjax.selection import choose
from tests import zoo

M, N, P, L, K = 3, 80, 5, 10, 4
L1 = 0.5


def _data(family, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, P))
    B = rng.normal(scale=0.6, size=(M, P))
    B[:, 3:] = 0.0
    eta = 0.2 + B @ X.T
    return X, zoo.draw_response(family, eta, rng)


def _fit_at(X, y, family, alpha, **kw):
    return lj.fit(X, y, family=family, penalty=lj.penalties.ElasticNet(alpha=alpha,
                                                                        l1_ratio=L1), **kw)


@pytest.mark.parametrize("family", ["poisson", "binomial", "gaussian"])
def test_each_problem_equals_its_own_cv_path_and_fit(family):
    X, Y = _data(family)
    grids = np.stack([lj.alpha_grid(X, y, family, L1, n_alphas=L) for y in Y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lj.selection.GridEdgeWarning)
        cvb = cv_path_batch(X, Y, family, L1, alphas=grids, folds=K)
        singles = [lj.cv_path(X, Y[i], family, L1, alphas=grids[i], folds=K) for i in range(M)]
    assert cvb.scores.shape == (M, K, L) and cvb.path.coef.shape == (M, L, P)
    for i, cv in enumerate(singles):
        np.testing.assert_allclose(cvb.scores[i], cv.scores, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(cvb.mean[i], cv.mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(cvb.se[i], cv.se, rtol=1e-10, atol=1e-12)
        assert (cvb.best_index[i], cvb.index_1se[i]) == (cv.best_index, cv.index_1se)
        assert (cvb.alpha_min[i], cvb.alpha_1se[i]) == (cv.alpha_min, cv.alpha_1se)
        np.testing.assert_allclose(cvb.path.coef[i], cv.path.coef, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(cvb.fold_paths.coef[i], cv.fold_paths.coef, rtol=1e-10,
                                   atol=1e-12)
        # the selected fits are the optimum at that strength (an independent solver)
        for alpha, coef, b0 in ((cvb.alpha_min[i], cvb.coef_min[i], cvb.intercept_min[i]),
                                (cvb.alpha_1se[i], cvb.coef_1se[i], cvb.intercept_1se[i])):
            one = _fit_at(X, Y[i], family, alpha)
            assert bool(one.converged)
            np.testing.assert_allclose(coef, one.params["coef"], atol=1e-6)
            np.testing.assert_allclose(b0, one.params["intercept"], atol=1e-6)


def test_default_grids_are_each_problems_own_and_offsets_per_problem():
    X, Y = _data("poisson", seed=1)
    rng = np.random.default_rng(2)
    off = rng.normal(scale=0.2, size=(M, N))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lj.selection.GridEdgeWarning)
        cvb = cv_path_batch(X, Y, "poisson", L1, folds=K, n_alphas=L, offset=off)
        for i in range(M):
            cv = lj.cv_path(X, Y[i], "poisson", L1, folds=K, n_alphas=L, offset=off[i])
            np.testing.assert_allclose(cvb.alphas[i], cv.alphas, rtol=1e-13)
            np.testing.assert_allclose(cvb.scores[i], cv.scores, rtol=1e-8, atol=1e-12)
            assert cvb.best_index[i] == cv.best_index
    assert len(set(cvb.alphas[:, 0])) == M   # each problem's own alpha_max


def test_choose_rows_matches_choose_row_by_row():
    rng = np.random.default_rng(3)
    mean = rng.normal(size=(6, 9))
    se = np.abs(rng.normal(scale=0.5, size=(6, 9)))
    mean[2, :4] = np.nan
    best, one_se = choose_rows(mean, se)
    for i in range(6):
        assert (best[i], one_se[i]) == choose(mean[i], se[i])
    mean[4] = np.nan
    best, one_se = choose_rows(mean, se)
    assert best[4] == one_se[4] == -1


def test_bad_input_names_the_problem_and_the_argument():
    X, Y = _data("poisson")
    Y[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"problem 1"):
        cv_path_batch(X, Y, "poisson", L1, alphas=[1.0, 0.1], folds=K)
    X, Y = _data("poisson")
    with pytest.raises(ValueError, match=r"alphas: expected \(L,\) shared or \(3, L\)"):
        cv_path_batch(X, Y, "poisson", L1, alphas=np.ones((2, 4)), folds=K)
    with pytest.raises(ValueError, match="X: cv_path_batch needs one shared design"):
        cv_path_batch(np.stack([X] * M), Y, "poisson", L1, folds=K)


def test_under_a_transform_it_says_to_call_it_eagerly():
    import jax

    X, Y = _data("poisson")
    with pytest.raises(ValueError, match=r"cv_path_batch runs eagerly .* outside jit, vmap "
                       r"and grad"):
        jax.jit(lambda Y: cv_path_batch(X, Y, "poisson", L1, alphas=[1.0, 0.1],
                                        folds=K).alpha_min)(Y)
