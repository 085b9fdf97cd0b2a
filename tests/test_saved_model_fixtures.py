"""Saved models written by an earlier linjax (commit dd80b60, before FitResult, the solver
choice and the starting values moved modules) still load, and predict what that version
predicted. The files and the predictions come from tests/data/saved_models/make_fixtures.py
run with that version."""

import json
from pathlib import Path

import numpy as np
import pytest

import linjax as lj
from linjax import io

HERE = Path(__file__).parent / "data" / "saved_models"
EXPECTED = json.loads((HERE / "expected.json").read_text())


def _new_rows():
    rng = np.random.default_rng(2026)
    return rng.normal(size=(60, 3))[:7] * 1.5  # as make_fixtures.py draws them


@pytest.mark.parametrize("name", ["fit_poisson", "fit_logistic_l2", "fit_gamma_lasso"])
def test_old_fit_results_load_and_predict_as_before(name):
    result = io.load(HERE / f"{name}.linjax")
    assert isinstance(result, lj.FitResult)
    want = EXPECTED[name]
    np.testing.assert_allclose(result.coef, want["coef"], rtol=1e-14)
    np.testing.assert_allclose(result.intercept, want["intercept"], rtol=1e-14)
    assert int(result.status) == want["status"]
    got = lj.predict(result.params, _new_rows(), result.family)
    np.testing.assert_allclose(got, want["predict"], rtol=1e-12)


@pytest.mark.parametrize("name", ["est_poisson", "est_logistic", "est_ridge"])
def test_old_estimators_load_and_predict_as_before(name):
    pytest.importorskip("sklearn")
    est = io.load(HERE / f"{name}.linjax")
    want = EXPECTED[name]
    np.testing.assert_allclose(est.predict(_new_rows()), want["predict"], rtol=1e-12)
    if "predict_proba" in want:
        np.testing.assert_allclose(est.predict_proba(_new_rows()), want["predict_proba"],
                                   rtol=1e-12)
