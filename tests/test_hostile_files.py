"""Tampered model files are refused with `ModelFileError` naming the member and the problem.

Both formats: the command line's model file (`linjax.cli_model.load_model`, and `linjax
predict`, which must exit 2 with one line) and `linjax.io.load`. Each tampering is its own
case; none may crash, allocate what the archive does not hold, or run without end.
"""

import importlib.util
import io as pyio
import json
import zipfile

import numpy as np
import pytest

from linjax import cli, io
from linjax.cli_model import ModelFileError, load_model
from linjax.datasets import load_coffee_shops

pytest.importorskip("pandas")
needs_formulaic = pytest.mark.skipif(importlib.util.find_spec("formulaic") is None,
                                     reason="formulaic not installed")


def _npy(arr):
    buf = pyio.BytesIO()
    np.save(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def _huge_header_npy():
    """A .npy header declaring 10^11 float64 values (745 GiB) followed by 8 bytes."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (100_000_000_000,)
    buf = pyio.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + b"\0" * 8


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path, members, corrupt=None):
    """Write `members` deflated; `corrupt`: a member whose compressed stream is damaged."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    if corrupt is not None:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(corrupt)
        raw = bytearray(path.read_bytes())
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        for k in range(min(info.compress_size, 64)):
            raw[start + k] ^= 0x5A
        path.write_bytes(bytes(raw))
    return path


# -- the command line's model file -------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    load_coffee_shops(as_frame=True).frame.to_csv(d / "shops.csv", index=False)
    model = d / "good.linjax"
    assert cli.main(["fit", str(d / "shops.csv"), "--formula",
                     "revenue ~ seats + center(income) + C(region)", "--save", str(model),
                     "--format", "csv"]) == 0
    return d, _members(model)


def _meta_change(change):
    def apply(members):
        meta = json.loads(members["model.json"])
        change(meta)
        members["model.json"] = json.dumps(meta).encode()
    return apply


def _set(**kv):
    return _meta_change(lambda meta: meta.update(kv))


def _drop(key):
    return _meta_change(lambda meta: meta.pop(key))


def _levels(meta, n):
    meta["levels"]["region"] = [f"r{i}" for i in range(n)]


CLI_TAMPERINGS = {  # name: (change to the members, text the error must contain)
    "scalar coef": (lambda m: m.update({"coef.npy": _npy(1.5)}), "coef.npy"),
    "mis-shaped coef": (lambda m: m.update({"coef.npy": _npy(np.zeros((5, 2, 2)))}),
                        "coef.npy"),
    "short coef": (lambda m: m.update({"coef.npy": _npy(np.zeros(2))}), "coef.npy"),
    "intercept shape": (lambda m: m.update({"intercept.npy": _npy(np.zeros(3))}),
                        "intercept.npy"),
    "string coef": (lambda m: m.update({"coef.npy": _npy(np.array(["a"] * 5))}), "coef.npy"),
    "NaN coef": (lambda m: m.update({"coef.npy": _npy([1.0, np.nan, 0, 0, 0])}), "NaN"),
    "inf intercept": (lambda m: m.update({"intercept.npy": _npy(np.inf)}), "intercept.npy"),
    "huge npy header": (lambda m: m.update({"coef.npy": _huge_header_npy()}),
                        "declares shape"),
    "formula not a string": (_set(formula=123), "'formula'"),
    "levels not lists": (_set(levels={"region": "airport"}), "'levels'"),
    "levels not a dict": (_set(levels=["airport"]), "'levels'"),
    "missing family": (_drop("family"), "missing key 'family'"),
    "missing names": (_drop("names"), "missing key 'names'"),
    "missing design columns": (_drop("design_columns"), "'design_columns'"),
    "unknown family": (_set(family={"name": "os.system", "params": {}}), "os.system"),
    "link power a string": (_set(link={"name": "power", "params": {"power": "2"}}), "'link'"),
    "family params a list": (_set(family={"name": "gaussian", "params": [1]}), "'family'"),
    "transform state knots": (_set(transform_state={"center(income)": {
        "center": 1.0, "knots": list(range(5000))}}), "'transform_state'"),
    "malformed items": (_set(transform_state={"center(income)": {"__items__": 5}}),
                        "__items__"),
    "levels widen the design": (_meta_change(lambda meta: _levels(meta, 90_000)),
                                "tampered"),
    "deep JSON": (lambda m: m.update({"model.json": b"[" * 100_000 + b"]" * 100_000}),
                  "model.json"),
    "nested JSON below the recursion limit": (
        lambda m: m.update({"model.json": b'{"a": ' + b"[" * 500 + b"]" * 500 + b"}"}),
        "nested deeper"),
    "not JSON": (lambda m: m.update({"model.json": b"\xff\xfe"}), "model.json"),
    "extra member": (lambda m: m.update({"payload.pkl": b"\x80\x04."}), "payload.pkl"),
}


@needs_formulaic
@pytest.mark.parametrize("case", sorted(CLI_TAMPERINGS))
def test_cli_model_tampering_is_refused(cli_model, tmp_path, capsys, case):
    d, members = cli_model
    change, needle = CLI_TAMPERINGS[case]
    members = dict(members)
    change(members)
    path = _write(tmp_path / "bad.linjax", members)
    code = cli.main(["predict", str(path), str(d / "shops.csv")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@needs_formulaic
def test_cli_model_corrupt_deflate_stream(cli_model, tmp_path, capsys):
    d, members = cli_model
    for member in ("model.json", "coef.npy"):
        path = _write(tmp_path / "bad.linjax", dict(members), corrupt=member)
        with pytest.raises(ModelFileError, match=member.replace(".", r"\.")):
            load_model(path)
        assert cli.main(["predict", str(path), str(d / "shops.csv")]) == 2
        err = capsys.readouterr().err
        assert "corrupt" in err and len(err.strip().splitlines()) == 1


@needs_formulaic
def test_cli_model_errors_are_model_file_errors(cli_model, tmp_path):
    """load_model raises its own type (a ValueError) for the load-level cases."""
    _, members = cli_model
    for case in ("scalar coef", "huge npy header", "missing family", "deep JSON", "NaN coef"):
        bad = dict(members)
        CLI_TAMPERINGS[case][0](bad)
        with pytest.raises(ModelFileError):
            load_model(_write(tmp_path / f"{case}.linjax", bad))
    assert issubclass(ModelFileError, ValueError) and ModelFileError is io.ModelFileError


# -- linjax.io ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def io_files(tmp_path_factory):
    import linjax as lj
    from linjax.estimators import Ridge

    d = tmp_path_factory.mktemp("io_hostile")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=40)
    io.save(d / "ridge.ljx", Ridge(alpha=0.5).fit(X, y))
    io.save(d / "result.ljx", lj.fit(X, np.exp(y / 4), family=lj.families.Tweedie(power=1.5)))
    return {"ridge": _members(d / "ridge.ljx"), "result": _members(d / "result.ljx")}


def _attribute_array(members, attribute):
    meta = json.loads(members["metadata.json"])
    return meta["attributes"]["__dict__"][attribute]["__array__"]


def _replace_attribute(attribute, value):
    def apply(members):
        members[_attribute_array(members, attribute)] = _npy(value)
    return apply


def _io_meta(change):
    def apply(members):
        meta = json.loads(members["metadata.json"])
        change(meta)
        members["metadata.json"] = json.dumps(meta).encode()
    return apply


def _tweedie_power(meta, value):
    meta["value"]["fields"]["family"]["fields"]["power"] = value


def _unknown_class(meta):
    meta["value"]["fields"]["family"]["__dataclass__"] = "linjax.solvers.nothing:Evil"


IO_TAMPERINGS = {  # name: (file, change, text the error must contain)
    "scalar coef_": ("ridge", _replace_attribute("coef_", 2.0), "coef_"),
    "mis-shaped coef_": ("ridge", _replace_attribute("coef_", np.zeros((3, 2, 2))), "coef_"),
    "coef_ of other width": ("ridge", _replace_attribute("coef_", np.zeros(5)),
                             "n_features_in_"),
    "intercept_ shape": ("ridge", _replace_attribute("intercept_", np.zeros(4)), "intercept_"),
    "NaN coef_": ("ridge", _replace_attribute("coef_", [np.nan, 0.0, 1.0]), "NaN"),
    "missing attributes": ("ridge", _io_meta(lambda m: m.pop("attributes")), "metadata.json"),
    "array not listed": ("ridge", _io_meta(lambda m: m["attributes"]["__dict__"].update(
        coef_={"__array__": "arrays/a999.npy", "kind": "numpy"})), "a999"),
    "unknown class path": ("result", _io_meta(_unknown_class), "linjax.solvers.nothing"),
    "power a string": ("result", _io_meta(lambda m: _tweedie_power(m, "2")), "power"),
    "missing fields": ("result", _io_meta(lambda m: m["value"].pop("fields")),
                       "metadata.json"),
    "NaN params": ("result", lambda m: m.update({
        json.loads(m["metadata.json"])["value"]["fields"]["params"]["__dict__"]["coef"][
            "__array__"]: _npy([np.nan, 0.0, 0.0])}), "NaN"),
    "huge npy header": ("ridge", lambda m: m.update({
        _attribute_array(m, "coef_"): _huge_header_npy()}), "declares shape"),
    "deep JSON": ("ridge", lambda m: m.update({
        "metadata.json": b"[" * 100_000 + b"]" * 100_000}), "metadata.json"),
    "nested JSON below the recursion limit": ("ridge", lambda m: m.update({
        "metadata.json": b"[" * 500 + b"]" * 500}), "nested deeper"),
}


@pytest.mark.parametrize("case", sorted(IO_TAMPERINGS))
def test_io_tampering_is_refused(io_files, tmp_path, case):
    which, change, needle = IO_TAMPERINGS[case]
    members = dict(io_files[which])
    change(members)
    with pytest.raises(io.ModelFileError) as info:
        io.load(_write(tmp_path / "bad.ljx", members))
    assert needle in str(info.value)


def test_io_corrupt_deflate_stream(io_files, tmp_path):
    members = dict(io_files["ridge"])
    coef = _attribute_array(members, "coef_")
    for member in ("metadata.json", coef):
        with pytest.raises(io.ModelFileError, match="corrupt"):
            io.load(_write(tmp_path / "bad.ljx", dict(members), corrupt=member))


def test_io_untampered_files_still_load(io_files, tmp_path):
    for which in ("ridge", "result"):
        io.load(_write(tmp_path / f"{which}.ljx", dict(io_files[which])))
