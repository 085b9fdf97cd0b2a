"""`linjax fit --save` / `linjax predict`: stateful transforms round-trip, one output row per
input row, formulas whose evaluation could not finish are refused, one-line data errors.

References: statsmodels' OLS on formulaic's own model matrix (the transforms' state as
formulaic computed it on the training data), and statsmodels' predictions on complete rows.
"""

import importlib.util
import io
import json
import os
import pathlib
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from linjax import cli
from linjax.datasets import load_coffee_shops

pd = pytest.importorskip("pandas")
sm = pytest.importorskip("statsmodels.api")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("formulaic") is None,
                                reason="formulaic not installed")
ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shops(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_models")
    frame = load_coffee_shops(as_frame=True).frame
    frame.to_csv(d / "shops.csv", index=False)
    return d, frame


@pytest.fixture
def run(capsys):
    def call(*args):
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def _predictions(out):
    return pd.read_csv(io.StringIO(out), keep_default_na=True)["prediction"].to_numpy()


# -- every stateful transform that fit accepts survives save -> predict ------------------------

STATEFUL = ("revenue ~ poly(seats, 2) + center(income) + scale(rent) + standardize(foot_traffic)"
            " + C(region) + bs(competitors, df=4) + cr(square_footage, df=4)"
            " + cs(months_open, df=3)")


def test_stateful_transforms_round_trip(shops, run):
    import formulaic

    d, frame = shops
    model = d / "stateful.linjax"
    code, _, err = run("fit", d / "shops.csv", "--formula", STATEFUL, "--save", model,
                       "--format", "json")
    assert code == 0, err
    # a shuffled subset: a transform that re-estimated its state on it would differ
    subset = frame.sample(60, random_state=3)
    subset.to_csv(d / "subset.csv", index=False)
    code, out, err = run("predict", model, d / "subset.csv")
    assert code == 0, err
    mm = formulaic.model_matrix(STATEFUL, frame)
    ref = sm.OLS(np.asarray(mm.lhs, float)[:, 0], np.asarray(mm.rhs, float)).fit()
    expected = ref.fittedvalues[subset.index.to_numpy()]
    np.testing.assert_allclose(_predictions(out), expected, rtol=1e-9)
    # a file written before integer keys were kept ("0", "1", ... as JSON made them) works
    legacy = d / "legacy.linjax"
    with zipfile.ZipFile(model) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["model.json"])
    state = meta["transform_state"]["poly(seats, 2)"]
    assert "__items__" in state["alpha"]
    for key in ("alpha", "norms2"):
        state[key] = {str(k): v for k, v in state[key]["__items__"]}
    members["model.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(legacy, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    code, out, err = run("predict", legacy, d / "subset.csv")
    assert code == 0, err
    np.testing.assert_allclose(_predictions(out), expected, rtol=1e-9)


# -- --missing drop: one output row per input row --------------------------------------------

def test_predict_missing_drop_keeps_rows_aligned(shops, run):
    d, frame = shops
    model = d / "cols.linjax"
    code, _, err = run("fit", d / "shops.csv", "--y", "revenue", "--x", "seats,income",
                       "--save", model, "--format", "csv")
    assert code == 0, err
    new = frame.head(8).astype({"seats": float, "income": float})
    new.loc[[2, 5], "income"] = np.nan
    new.to_csv(d / "holes.csv", index=False)
    code, out, err = run("predict", model, d / "holes.csv", "--missing", "drop")
    assert code == 0, err
    pred = _predictions(out)
    assert pred.shape == (8,)
    assert np.isnan(pred[[2, 5]]).all()
    ref = sm.OLS(frame["revenue"], sm.add_constant(frame[["seats", "income"]])).fit()
    keep = new["income"].notna().to_numpy()
    expected = ref.predict(sm.add_constant(new[["seats", "income"]], has_constant="add"))
    np.testing.assert_allclose(pred[keep], expected[keep], rtol=1e-9)
    code, _, err = run("predict", model, d / "holes.csv")  # default: refuse, with the count
    assert code == 2 and "2 of 8 rows" in err


# -- formulas whose expansion or evaluation would not finish -----------------------------------

HOSTILE = [
    "revenue ~ seats + I(9**9**9**9)",          # Python's exact power tower
    "revenue ~ seats + I(1 << 10**10)",
    "revenue ~ seats + I(9) ** I(9**9)",
    "revenue ~ seats + I(abs(-9) ** 9**9)",
    "revenue ~ seats + I(C(9) ** 9**9)",         # C() hands the Python int back
    "revenue ~ seats + I([0] * 10**10)",        # a list of 10^10 zeros
    "revenue ~ seats + I('a' * 10**10)",
    "revenue ~ seats + poly(seats, 100000000)",  # a 10^8-column basis
    "revenue ~ bs(seats, df=1e9)",
    "revenue ~ (seats + rent + income + competitors)**99",
    "revenue ~ seats**99999999",
    "revenue ~ " + "*".join(["seats", "rent", "income", "competitors", "foot_traffic",
                             "months_open", "square_footage"] * 3),
    "revenue ~ " + "+".join(["seats"] * 5000),
    "revenue ~ I(" + "-" * 2000 + "seats)",
]


def test_hostile_formulas_are_refused_quickly(shops):
    """In a fresh process with a timeout: a regression here would otherwise hang the suite."""
    d, _ = shops
    script = (
        "import sys, time\n"
        "from linjax import cli\n"
        "for f in sys.argv[2:]:\n"
        "    t = time.perf_counter()\n"
        "    code = cli.main(['fit', sys.argv[1], '--formula', f])\n"
        "    print(code, round(time.perf_counter() - t, 3), flush=True)\n")
    env = dict(os.environ, LINJAX_COMPILATION_CACHE="off",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script, str(d / "shops.csv"), *HOSTILE],
                          capture_output=True, text=True, timeout=120, env=env)
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert len(rows) == len(HOSTILE), proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("linjax")]
    for formula, (code, seconds), message in zip(HOSTILE, rows, errors, strict=True):
        assert code == "2", (formula, message)
        assert float(seconds) < 5, (formula, seconds)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == len(HOSTILE)  # one line each


def test_saved_power_tower_is_refused_by_predict(shops, tmp_path):
    """The report's case: a model file whose formula is a power tower, in a fresh process."""
    d, _ = shops
    model = d / "tower_base.linjax"
    assert cli.main(["fit", str(d / "shops.csv"), "--y", "revenue", "--x", "seats",
                     "--format", "csv", "--save", str(model)]) == 0
    with zipfile.ZipFile(model) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["model.json"])
    meta.pop("x"), meta.pop("outcome")
    meta.update(formula="revenue ~ seats + I(9**9**9**9)", levels={}, transform_state={},
                design_columns=["Intercept", "seats"], ensure_full_rank=True)
    evil = tmp_path / "tower.linjax"
    with zipfile.ZipFile(evil, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, json.dumps(meta) if name == "model.json" else data)
    env = dict(os.environ, LINJAX_COMPILATION_CACHE="off",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "linjax", "predict", str(evil),
                           str(d / "shops.csv")], capture_output=True, text=True, timeout=90,
                          env=env)
    assert proc.returncode == 2, proc.stderr
    assert "exceeds 4096 bits" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert time.perf_counter() - start < 60


def test_ordinary_formulas_still_fit(shops, run):
    d, _ = shops
    code, out, err = run("fit", d / "shops.csv", "--formula",
                         "revenue ~ (seats + rent + income)**2 + I(seats**2 / 2**10) "
                         "+ np.log(income) + I(rent > 3)", "--format", "csv")
    assert code == 0, err


# -- one-line errors that name the column and row ----------------------------------------------

def test_header_only_file_says_no_rows(shops, run, tmp_path):
    d, frame = shops
    empty = tmp_path / "empty.csv"
    frame.head(0).to_csv(empty, index=False)
    for args in (["--formula", "revenue ~ seats"], ["--y", "revenue", "--x", "seats"]):
        code, _, err = run("fit", empty, *args)
        assert code == 2 and "no data rows" in err and "not numeric" not in err


def test_inf_feature_names_column_and_row(shops, run, tmp_path):
    d, frame = shops
    bad = frame.astype({"rent": float})
    bad.loc[3, "rent"] = np.inf
    bad.to_csv(tmp_path / "inf.csv", index=False)
    for args in (["--formula", "revenue ~ seats + rent"], ["--y", "revenue", "--x", "seats,rent"]):
        code, _, err = run("fit", tmp_path / "inf.csv", *args)
        assert code == 2, err
        assert "'rent'" in err and "data row 4" in err and "index (3" not in err


def test_formula_syntax_error_is_one_line(shops, run):
    d, _ = shops
    code, _, err = run("fit", d / "shops.csv", "--formula", "revenue ~ seats +")
    assert code == 2 and "does not parse" in err
    assert len(err.strip().splitlines()) == 1
