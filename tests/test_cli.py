"""The `linjax` command line: subprocess runs of demo, fit, predict and info; error cases.

References come from statsmodels (coefficients, standard errors, predictions) and
scikit-learn (lasso at the chosen alpha). Subprocesses pay JAX's start-up, so there
are few of them; they share one compilation cache directory.
"""

import importlib.util
import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from linjax import cli
from linjax.datasets import load_coffee_shops

pd = pytest.importorskip("pandas")
sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")

ROOT = pathlib.Path(__file__).resolve().parents[1]
HAS_FORMULAIC = importlib.util.find_spec("formulaic") is not None
needs_formulaic = pytest.mark.skipif(not HAS_FORMULAIC, reason="formulaic not installed")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A directory with the coffee-shop CSV, a copy with a missing value, and a cache dir."""
    d = tmp_path_factory.mktemp("cli")
    frame = load_coffee_shops(as_frame=True).frame
    frame.to_csv(d / "shops.csv", index=False)
    na = frame.copy()
    na["income"] = na["income"].astype(float)
    na.loc[[3, 10, 11], "income"] = np.nan
    na.to_csv(d / "shops_na.csv", index=False)
    bad = frame.copy()
    bad.loc[5, "complaints"] = -1
    bad.to_csv(d / "shops_negative.csv", index=False)
    # new shops for predict: shuffled, without the airport level
    new = frame[frame["region"] != "airport"].sample(40, random_state=1)
    new.drop(columns=["complaints"]).to_csv(d / "new.csv", index=False)
    new.to_pickle(d / "new.pkl")
    return d


def run_cli(args, work, timeout=240):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["LINJAX_COMPILATION_CACHE"] = str(work / "jax-cache")
    return subprocess.run([sys.executable, "-m", "linjax", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def inproc(monkeypatch, work, capsys):
    """Call `cli.main` in this process (no compilation cache), returning (code, out, err)."""
    monkeypatch.setenv("LINJAX_COMPILATION_CACHE", "off")
    monkeypatch.chdir(work)

    def call(*args):
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


# -- subprocess runs --------------------------------------------------------------------------

def test_demo_prints_tables(work):
    proc = run_cli(["demo", "--figure", str(work / "demo.png")], work)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("Coefficients:") == 3  # OLS, logistic, Poisson
    assert "Ordinary least squares" in out and "Lasso path" in out
    assert "<- chosen" in out and "Odds ratio" in out and "Rate ratios" in out
    assert "[4/4]" in proc.stderr  # the progress line
    assert "Figure:" in out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in out
    else:
        assert (work / "demo.png").stat().st_size > 10_000


def _coffee_poisson_sm(frame, formula=None):
    if formula is not None:
        model = smf.glm(formula, frame, family=sm.families.Poisson(),
                        exposure=frame["months_open"])
    else:
        X = sm.add_constant(frame[["foot_traffic", "seats", "income"]].to_numpy(float))
        model = sm.GLM(frame["complaints"].to_numpy(float), X, family=sm.families.Poisson(),
                       exposure=frame["months_open"].to_numpy(float))
    return model.fit(tol=1e-13)


def test_fit_poisson_exposure_json_matches_statsmodels(work):
    proc = run_cli(["fit", "shops.csv", "--y", "complaints", "--x", "foot_traffic,seats,income",
                    "--family", "poisson", "--exposure", "months_open", "--format", "json"], work)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    ref = _coffee_poisson_sm(pd.read_csv(work / "shops.csv"))
    assert out["names"] == ["Intercept", "foot_traffic", "seats", "income"]
    np.testing.assert_allclose(out["params"], ref.params, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(out["bse"], ref.bse, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose([out["llf"], out["deviance"], out["aic"]],
                               [ref.llf, ref.deviance, ref.aic], rtol=1e-8)
    assert out["nobs"] == 400 and out["converged"]


@needs_formulaic
def test_fit_formula_save_then_predict(work):
    formula = "complaints ~ foot_traffic + np.log(seats) + C(region)"
    model = work / "complaints.linjax"
    proc = run_cli(["fit", "shops.csv", "--formula", formula, "--family", "poisson",
                    "--exposure", "months_open", "--cov-type", "HC1", "--format", "json",
                    "--save", str(model)], work)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    frame = pd.read_csv(work / "shops.csv")
    ref = _coffee_poisson_sm(frame, formula)
    # C(region) is a categorical block named region[level], as lj.glm names it; patsy's
    # names for the same columns are C(region)[T.level] (and its order differs)
    assert "region[campus]" in out["names"]
    names = [n.replace("region[", "C(region)[T.") for n in out["names"]]
    assert sorted(names) == sorted(ref.params.index)
    np.testing.assert_allclose(out["params"], ref.params[names], rtol=1e-6, atol=1e-12)
    # HC1 as R's sandwich: statsmodels' HC0 times n / (n - k)
    hc0 = ref.model.fit(tol=1e-13, cov_type="HC0")
    n, k = len(frame), len(names)
    np.testing.assert_allclose(out["bse"], hc0.bse[names] * np.sqrt(n / (n - k)), rtol=1e-6)
    with zipfile.ZipFile(model) as zf:  # plain arrays plus JSON
        assert sorted(zf.namelist()) == ["coef.npy", "intercept.npy", "model.json"]

    pred_file = work / "pred.csv"
    proc = run_cli(["predict", str(model), "new.csv", "--out", str(pred_file)], work)
    assert proc.returncode == 0, proc.stderr
    new = pd.read_pickle(work / "new.pkl")
    pred = pd.read_csv(pred_file)["prediction"].to_numpy()
    expected = ref.predict(new, exposure=new["months_open"])
    np.testing.assert_allclose(pred, expected, rtol=1e-8)


def test_info_and_bad_column_exit_codes(work):
    proc = run_cli(["info"], work)
    assert proc.returncode == 0, proc.stderr
    assert "float64    on" in proc.stdout and "jax " in proc.stdout
    assert "device     0:" in proc.stdout
    proc = run_cli(["fit", "shops.csv", "--y", "complaints", "--x", "foot_trafic",
                    "--family", "poisson"], work)
    assert proc.returncode == 2
    assert "foot_trafic" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(["fit", "shops.csv", "--family"], work)  # argparse usage error
    assert proc.returncode == 2 and "usage:" in proc.stderr


# -- in-process: every bad input is exit code 2 with a message naming the problem -------------

@needs_formulaic
@pytest.mark.parametrize("args, needles", [
    (["--formula", "revenue ~ foot_traffic + incme"], ["incme", "unknown column"]),
    (["--formula", "revenue ~ foot_traffic +"], ["does not parse"]),
    (["--formula", "revenue ~ (foot_traffic"], ["does not parse"]),
    (["--formula", "revenue ~ foot_traffic + region"], ["region", "C(region)"]),
    (["--formula", "region ~ foot_traffic"], ["outcome", "region", "not numeric"]),
    (["--formula", "revenue ~ foot_traffic", "--family", "poison"], ["poison"]),
    (["--formula", "revenue ~ foot_traffic", "--exposure", "competitors"],
     ["competitors", "<= 0"]),
])
def test_bad_formula_inputs(inproc, args, needles):
    code, out, err = inproc("fit", "shops.csv", *args)
    assert code == 2, err
    for needle in needles:
        assert needle in err
    assert "Traceback" not in err


def test_bad_data_inputs(inproc, work):
    code, _, err = inproc("fit", "shops.csv", "--y", "revenue", "--x", "foot_traffic,region")
    assert code == 2 and "region" in err and "not numeric" in err
    # missing values: refused with the count, or dropped and reported
    code, _, err = inproc("fit", "shops_na.csv", "--y", "revenue", "--x", "income")
    assert code == 2 and "3 of 400 rows" in err and "income: 3" in err and "--missing drop" in err
    code, out, err = inproc("fit", "shops_na.csv", "--y", "revenue", "--x", "income",
                            "--missing", "drop", "--format", "json")
    assert code == 0 and "dropped 3 row" in err
    result = json.loads(out)
    assert result["nobs"] == 397 and result["rows_dropped"] == 3
    frame = pd.read_csv(work / "shops_na.csv").dropna(subset=["income"])
    ref = sm.OLS(frame["revenue"], sm.add_constant(frame[["income"]])).fit()
    np.testing.assert_allclose(result["params"], ref.params, rtol=1e-9)
    np.testing.assert_allclose(result["bse"], ref.bse, rtol=1e-9)
    # the family's support excludes the data
    code, _, err = inproc("fit", "shops_negative.csv", "--y", "complaints", "--x", "seats",
                          "--family", "poisson")
    assert code == 2 and "complaints" in err and "Traceback" not in err
    code, _, err = inproc("fit", "shops.csv", "--y", "revenue", "--x", "seats",
                          "--family", "binomial")
    assert code == 2 and "revenue" in err
    # files
    code, _, err = inproc("fit", "nope.csv", "--y", "revenue", "--x", "seats")
    assert code == 2 and "nope.csv" in err
    code, _, err = inproc("fit", "shops.csv", "--x", "seats")
    assert code == 2 and "outcome" in err


def test_parquet(inproc, work):
    frame = pd.read_csv(work / "shops.csv")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (work / "shops.parquet").write_bytes(b"PAR1")
        code, _, err = inproc("fit", "shops.parquet", "--y", "revenue", "--x", "seats")
        assert code == 2 and "pyarrow" in err
        return
    frame.to_parquet(work / "shops.parquet")
    code, out, err = inproc("fit", "shops.parquet", "--y", "revenue", "--x", "seats,income",
                            "--format", "csv")
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out))
    ref = sm.OLS(frame["revenue"], sm.add_constant(frame[["seats", "income"]])).fit()
    np.testing.assert_allclose(table["estimate"], ref.params, rtol=1e-9)
    np.testing.assert_allclose(table["std_error"], ref.bse, rtol=1e-9)


def test_lasso_alpha_and_cv_match_sklearn(inproc, work):
    from sklearn.linear_model import Lasso

    frame = pd.read_csv(work / "shops.csv")
    cols = ["foot_traffic", "income", "competitors", "rent", "seats"]
    X = frame[cols].to_numpy(float)
    X = (X - X.mean(0)) / X.std(0)
    scaled = pd.DataFrame(X, columns=cols).assign(revenue=frame["revenue"])
    scaled.to_csv(work / "scaled.csv", index=False)
    code, out, err = inproc("fit", "scaled.csv", "--y", "revenue", "--x", ",".join(cols),
                            "--cv", "4", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    alpha = result["cv"]["alpha"]
    assert result["penalty"] == {"alpha": alpha, "l1_ratio": 1.0}
    assert alpha == result["cv"]["alphas"][int(np.argmin(result["cv"]["cv_deviance"]))]
    ref = Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, frame["revenue"])
    np.testing.assert_allclose(result["params"][1:], ref.coef_, atol=1e-6)
    np.testing.assert_allclose(result["params"][0], ref.intercept_, atol=1e-6)
    # the largest alpha on the grid zeroes every coefficient (glmnet's lambda_max)
    code, out, _ = inproc("fit", "scaled.csv", "--y", "revenue", "--x", ",".join(cols),
                          "--alpha", str(result["cv"]["alphas"][0] * 1.0001), "--l1-ratio", "1",
                          "--format", "json")
    assert code == 0 and np.allclose(json.loads(out)["params"][1:], 0.0)


@needs_formulaic
def test_predict_refuses_bad_models_and_levels(inproc, work):
    model = work / "small.linjax"
    code, _, err = inproc("fit", "shops.csv", "--formula", "revenue ~ seats + C(region)",
                          "--save", str(model), "--format", "json")
    assert code == 0, err
    odd = pd.read_csv(work / "shops.csv").head(5).assign(region="harbour")
    odd.to_csv(work / "odd.csv", index=False)
    code, _, err = inproc("predict", str(model), "odd.csv")
    assert code == 2 and "harbour" in err and "region" in err
    code, _, err = inproc("predict", str(model), "new.csv")
    assert code == 0, err
    # a model file naming code to run is refused before anything is evaluated
    with zipfile.ZipFile(model) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["model.json"])
    marker = work / "pwned"
    meta["formula"] = f"revenue ~ seats + __import__('os').mkdir({str(marker)!r})"
    evil = work / "evil.linjax"
    with zipfile.ZipFile(evil, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, json.dumps(meta) if name == "model.json" else data)
    code, _, err = inproc("predict", str(evil), "new.csv")
    assert code == 2 and "__import__" in err and not marker.exists()
    with zipfile.ZipFile(evil, "a") as zf:
        zf.writestr("extra.pkl", b"\x80\x04.")
    code, _, err = inproc("predict", str(evil), "new.csv")
    assert code == 2 and "extra.pkl" in err


def test_weights_help_and_internal_error(inproc, work, monkeypatch):
    code, out, err = inproc("fit", "shops.csv", "--y", "revenue", "--x", "income,rent",
                            "--weights", "seats", "--format", "json")
    assert code == 0, err
    frame = pd.read_csv(work / "shops.csv")
    ref = sm.WLS(frame["revenue"], sm.add_constant(frame[["income", "rent"]]),
                 weights=frame["seats"]).fit()
    result = json.loads(out)
    np.testing.assert_allclose(result["params"], ref.params, rtol=1e-9)
    np.testing.assert_allclose(result["bse"], ref.bse, rtol=1e-9)
    code, out, _ = inproc("fit", "--help")
    assert code == 0 and "--exposure" in out and "examples:" in out
    code, _, err = inproc("fit", "shops.csv", "--y", "revenue", "--x", "income",
                          "--offset", "rent", "--exposure", "seats")
    assert code == 2 and "either --offset or --exposure" in err

    def boom(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "cmd_info", boom)
    code, _, err = inproc("info")
    assert code == 1 and "internal error" in err and "boom" in err
