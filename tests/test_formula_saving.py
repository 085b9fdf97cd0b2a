"""Saving and loading `lj.glm` fits, fits of sparse / categorical designs and estimators
fitted on DataFrames with categorical columns (`linjax.io`, no pickle): the loaded object
keeps its names, summarizes identically, predicts on new frames as statsmodels' formula GLM
does, refuses unseen levels, and a tampered formula is refused before it is evaluated."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import linjax as lj
from linjax import io
from linjax.designs import Categorical, Split

FORMULA = "y ~ x1 + np.log(x2) + center(x2) + C(region) + C(g):x1"


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.uniform(1, 3, n),
                       "region": rng.choice(["n", "s", "e"], n),
                       "g": rng.choice(["a", "b", "c"], n)})
    df["y"] = rng.poisson(np.exp(0.2 + 0.3 * df.x1 + 0.4 * (df.region == "s")))
    return df


@pytest.fixture(scope="module")
def saved(frame, tmp_path_factory):
    fit = lj.glm(FORMULA, frame, family="poisson")
    path = tmp_path_factory.mktemp("glm") / "fit.linjax"
    io.save(path, fit)
    return fit, path


def test_loaded_glm_keeps_names_and_summarizes_identically(frame, saved):
    fit, path = saved
    back = io.load(path)
    assert back.names == fit.names and back.formula == FORMULA
    assert "region[s]" in back.names and "center(x2)" in back.names
    assert str(back.summary(frame)) == str(fit.summary())
    with pytest.raises(ValueError, match="loaded from a file.*pass data="):
        back.summary()
    with zipfile.ZipFile(path) as zf:
        assert not [m for m in zf.namelist() if m.endswith((".pkl", ".pickle"))]


def test_loaded_glm_predicts_new_frames_as_statsmodels(frame, saved):
    sm = pytest.importorskip("statsmodels.api")
    smf = pytest.importorskip("statsmodels.formula.api")
    _, path = saved
    back = io.load(path)
    ref = smf.glm(FORMULA, frame, family=sm.families.Poisson()).fit(tol=1e-12)
    new = pd.DataFrame({"x1": [0.5, -1.0, 2.0], "x2": [1.5, 2.5, 1.1],
                        "region": ["s", "s", "e"], "g": ["c", "a", "c"]})  # subset of levels
    np.testing.assert_allclose(np.asarray(back.predict(new)), ref.predict(new), rtol=1e-8)


def test_loaded_glm_refuses_unseen_levels(frame, saved):
    back = io.load(saved[1])
    new = frame.iloc[:3].copy()
    new.loc[new.index[0], "region"] = "w"
    with pytest.raises(ValueError, match="column 'region' has level 'w'"):
        back.predict(new)
    new = frame.iloc[:3].copy()
    new.loc[new.index[1], "g"] = "z"  # inside the dense interaction C(g):x1
    with pytest.raises(ValueError, match="column 'g' has level 'z'"):
        back.predict(new)


def _rewrite(path, out, change):
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(members["metadata.json"])
    change(meta)
    members["metadata.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


@pytest.mark.parametrize("formula", ["y ~ x1 + I(__import__('os').getcwd())",
                                     "y ~ (a + b + c + d + e)**40",
                                     "__import__('os').getcwd() ~ x1"])
def test_tampered_formula_refused_before_evaluation(saved, tmp_path, formula):
    def change(meta):
        meta["state"]["__dict__"]["formula"] = formula

    bad = _rewrite(saved[1], tmp_path / "bad.linjax", change)
    with pytest.raises(io.UnsafeFileError, match="formula"):
        io.load(bad)


def test_design_fit_results_round_trip(frame, tmp_path):
    y = frame["y"].to_numpy(float)
    A = sp.random(len(frame), 5, density=0.3, format="csr", random_state=0)
    codes = pd.Categorical(frame["region"]).codes
    design = Split((lj.designs.Dense(np.asarray(frame[["x1"]], float)),
                    Categorical.from_codes(codes, 3, drop_first=True)))
    for i, X in enumerate([A, design, frame[["x1", "region", "g"]]]):
        result = lj.fit(X, y, "poisson", penalty=lj.penalties.L2(1e-3))
        io.save(tmp_path / f"r{i}.linjax", result)
        back = io.load(tmp_path / f"r{i}.linjax")
        assert type(back) is type(result)
        for a, b in zip(jax_leaves(back), jax_leaves(result), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def jax_leaves(tree):
    import jax

    return jax.tree_util.tree_leaves(tree)


def test_frame_estimator_round_trip(frame, tmp_path):
    from linjax.estimators import PoissonRegressor

    X = frame[["x1", "region", "g"]]
    est = PoissonRegressor(alpha=0.01).fit(X, frame["y"])
    io.save(tmp_path / "est.linjax", est)
    back = io.load(tmp_path / "est.linjax")
    assert back.encoding_ == est.encoding_
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    new = X.iloc[:2].copy()
    new.loc[new.index[0], "g"] = "q"
    with pytest.raises(ValueError, match="column 'g' has level 'q'"):
        back.predict(new)

    def change(meta):  # levels that no longer match the coefficients
        enc = meta["attributes"]["__dict__"]["encoding_"]["fields"]["columns"]
        enc["__tuple__"][1]["__tuple__"][1]["__tuple__"].append("extra")

    bad = _rewrite(tmp_path / "est.linjax", tmp_path / "bad.linjax", change)
    with pytest.raises(io.ModelFileError, match="encoding_"):
        io.load(bad)
