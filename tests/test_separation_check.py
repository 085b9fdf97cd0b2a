"""The separation check after an unpenalized binomial fit: overlap is proved from the fit's
score in O(n p) (Stiemke's lemma), so non-separated data never reach the linear program;
separated data still do, and without scipy the check says what it could not do."""

import sys
import warnings

import numpy as np
import pytest

import linjax as lj
import linjax.diagnostics as D
from linjax import families as F
from linjax.diagnostics import SeparationWarning


def _steep_overlap():
    """Overlapping classes whose fitted |eta| passes 15 by chance (a steep but finite slope)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 3))
    eta = 6.0 * X[:, 0] + 0.5 * X[:, 1]
    y = (rng.random(3000) < 1 / (1 + np.exp(-eta))).astype(float)
    return X, y


def _separated_cases():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 2))
    complete_y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)
    quasi_x = np.column_stack([np.r_[np.zeros(10), np.ones(30)], rng.normal(size=40)])
    quasi_y = np.r_[np.zeros(10), (rng.random(30) < 0.5).astype(float)]  # x1 = 0 -> y = 0
    quasi_y[10:12] = [0.0, 1.0]
    return {"complete": (x, complete_y), "quasi-complete": (quasi_x, quasi_y)}


def test_overlap_is_proved_without_the_linear_program(monkeypatch):
    X, y = _steep_overlap()
    from firthmodels import detect_separation

    assert not detect_separation(X, y).separation            # an outside LP: no separation
    r = lj.fit(X, y, family=F.Binomial())
    eta = X @ np.asarray(r.coef) + float(r.intercept)
    assert np.abs(eta).max() > 15                              # the check is reached

    def no_lp(*args, **kwargs):
        raise AssertionError("the linear program ran on data that are not separated")

    monkeypatch.setattr(D, "check_separation", no_lp)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        lj.fit(X, y, family=F.Binomial())
        lj.fit(X, y, family=F.Binomial(), weights=np.r_[np.zeros(5), np.ones(2995)])


@pytest.mark.parametrize("kind", ["complete", "quasi-complete"])
def test_no_score_certifies_separated_data(kind):
    """Stiemke: where a direction separates, no lambda with the classes' signs has
    Z' lambda = 0, so whatever positive weights stand in for the score, nothing is proved."""
    X, y = _separated_cases()[kind]
    assert D.check_separation(X, y).kind == kind
    rng = np.random.default_rng(0)
    sign = 2 * y - 1
    for _ in range(20):
        score = sign * np.exp(rng.normal(scale=4, size=len(y)))
        assert not D.certify_overlap(X, y, score)


def test_without_scipy_the_check_says_what_it_did(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)   # import scipy.optimize fails
    with pytest.raises(ImportError, match="pip install scipy"):
        D.check_separation(*_separated_cases()["complete"])
    X, y = _separated_cases()["complete"]
    with pytest.warns(SeparationWarning, match="completely separated"):
        lj.fit(X, y, family=F.Binomial())
    X, y = _separated_cases()["quasi-complete"]
    with pytest.warns(SeparationWarning, match="may be separated.*skipped.*scipy"):
        lj.fit(X, y, family=F.Binomial())
    X, y = _steep_overlap()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        lj.fit(X, y, family=F.Binomial())
