"""The command line takes lj.glm's formula path: C() terms become categorical blocks (never
a dense one-hot matrix), names are `col[level]`, and saved models predict through the same
blocks, refusing unseen levels; through the entry point `linjax.cli.main`."""

import contextlib
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

import linjax as lj
from linjax import cli
from linjax.datasets import load_coffee_shops
from linjax.designs import Categorical, Split

pytest.importorskip("formulaic")
sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")

FORMULA = "complaints ~ foot_traffic + np.log(seats) + C(region) + C(size)"


@pytest.fixture(scope="module")
def shops(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_designs")
    frame = load_coffee_shops(as_frame=True).frame
    frame["size"] = np.where(frame["seats"] < frame["seats"].quantile(1 / 3), "small",
                             np.where(frame["seats"] < frame["seats"].quantile(2 / 3), "mid",
                                      "large"))  # a string column
    frame.to_csv(d / "shops.csv", index=False)
    frame.iloc[::7].to_csv(d / "new.csv", index=False)
    return d, frame


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def fitted(shops):
    d, frame = shops
    model = d / "blocks.linjax"
    seen = []
    fit = lj.fit

    def spy(X, *args, **kwargs):
        seen.append(X)
        return fit(X, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lj, "fit", spy)
        code, out, err = run("fit", d / "shops.csv", "--formula", FORMULA, "--family",
                             "poisson", "--exposure", "months_open", "--format", "json",
                             "--save", model)
    assert code == 0, err
    return json.loads(out), model, seen


def _reference(frame):
    return smf.glm(FORMULA, frame, family=sm.families.Poisson(),
                   exposure=frame["months_open"]).fit(tol=1e-12)


def test_cli_formula_fits_categorical_blocks(shops, fitted):
    _, frame = shops
    out, _, seen = fitted
    X = seen[-1]
    assert isinstance(X, Split) and sum(isinstance(b, Categorical) for b in X.blocks) == 2
    assert "region[campus]" in out["names"] and "size[small]" in out["names"]
    ref = _reference(frame)
    patsy = [n.replace("region[", "C(region)[T.").replace("size[", "C(size)[T.")
             for n in out["names"]]
    np.testing.assert_allclose(out["params"], ref.params[patsy], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(out["bse"], ref.bse[patsy], rtol=1e-6)
    # the same fit as lj.glm's (one formula path for Python and the command line)
    glm = lj.glm(FORMULA, frame, family="poisson", offset=np.log(frame["months_open"]))
    np.testing.assert_allclose(out["params"][1:], np.asarray(glm.result.coef), rtol=1e-10,
                               atol=1e-12)


def test_cli_saved_blocks_predict_as_statsmodels(shops, fitted):
    d, frame = shops
    _, model, _ = fitted
    with zipfile.ZipFile(model) as zf:
        meta = json.loads(zf.read("model.json"))
    assert [c["column"] for c in meta["blocks"]["categorical"]] == ["region", "size"]
    code, out, err = run("predict", model, d / "new.csv")
    assert code == 0, err
    new = frame.iloc[::7]
    expected = _reference(frame).predict(new, exposure=new["months_open"])
    got = pd.read_csv(io.StringIO(out))["prediction"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-8)


def test_cli_saved_blocks_refuse_unseen_and_tampering(shops, fitted, tmp_path):
    d, frame = shops
    _, model, _ = fitted
    odd = frame.head(4).assign(size="huge")
    odd.to_csv(tmp_path / "odd.csv", index=False)
    code, _, err = run("predict", model, tmp_path / "odd.csv")
    assert code == 2 and "'size'" in err and "'huge'" in err
    with zipfile.ZipFile(model) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for change, needle in [
            (lambda m: m["blocks"]["categorical"].append({"column": "rent", "drop_first": 1}),
             "'blocks'"),
            (lambda m: m["levels"].pop("region"), "'region'"),
            (lambda m: m["blocks"]["dense"].update(formula="1 + __import__('os').getcwd()"),
             "__import__")]:
        meta = json.loads(members["model.json"])
        change(meta)
        bad = tmp_path / "bad.linjax"
        with zipfile.ZipFile(bad, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, json.dumps(meta) if name == "model.json" else data)
        code, _, err = run("predict", bad, d / "new.csv")
        assert code == 2 and needle in err and "Traceback" not in err, err


def test_cli_cv_with_categorical_blocks(shops):
    d, _ = shops
    code, out, err = run("fit", d / "shops.csv", "--formula",
                         "complaints ~ foot_traffic + C(region)", "--family", "poisson",
                         "--cv", "3", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["cv"]["folds"] == 3 and "region[suburb]" in result["names"]


def test_cli_one_hot_model_files_still_predict(shops, tmp_path):
    """A model file as written before categorical blocks (formulaic's dense one-hot
    columns, no "blocks" key) predicts through formulaic as before."""
    import formulaic

    from linjax.cli_model import save_model

    d, frame = shops
    formula = "revenue ~ seats + C(region)"
    mm = formulaic.model_matrix(formula, frame)
    ref = sm.OLS(np.asarray(mm.lhs, float)[:, 0], np.asarray(mm.rhs, float)).fit()
    columns = [str(c) for c in mm.rhs.columns]
    meta = {"formula": formula, "outcome": "revenue",
            "levels": {"region": sorted(frame["region"].unique())}, "transform_state": {},
            "design_columns": columns, "ensure_full_rank": True,
            "names": columns[1:], "fit_intercept": True,
            "family": {"name": "gaussian", "params": {}},
            "link": {"name": "identity", "params": {}}, "offset": None, "exposure": None,
            "penalty": None}
    model = tmp_path / "one_hot.linjax"
    save_model(model, meta, np.asarray(ref.params[1:]), np.asarray(ref.params[0]))
    code, out, err = run("predict", model, d / "new.csv")
    assert code == 0, err
    got = pd.read_csv(io.StringIO(out))["prediction"].to_numpy()
    np.testing.assert_allclose(got, ref.fittedvalues[::7], rtol=1e-10)
