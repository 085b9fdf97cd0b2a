"""The model file of `linjax fit --save` / `linjax predict`: plain arrays plus JSON.

A model file is a zip archive with exactly three members:

- `model.json`: format name and version, the formula (or the outcome and feature
  columns of `--x`), the design's column names, the levels of every categorical
  factor, the state of formulaic's stateful transforms (`center(x)` ...), the
  family, link and their numeric parameters, the offset or exposure column, the
  penalty and whether there is an intercept;
- `coef.npy` and `intercept.npy`: the fitted parameters.

Loading parses the JSON and reads the arrays with `numpy.load(allow_pickle=False)`;
an archive with any other member is refused. Nothing is unpickled and nothing named
by the file is imported or executed.
"""

import io
import json
import zipfile

import numpy as np

FORMAT = "linjax-cli-model"
VERSION = 1
MEMBERS = {"model.json", "coef.npy", "intercept.npy"}


class ModelFileError(ValueError):
    """The file is not a linjax model file, or holds something loading refuses."""


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def to_jsonable(value):
    """numpy scalars and arrays to plain Python; anything else unknown raises TypeError."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a model file")


def save_model(path, meta, coef, intercept):
    """Write `meta` (a JSON-able dict) and the parameters to the zip file `path`."""
    meta = dict(to_jsonable(meta), format=FORMAT, version=VERSION)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.json", json.dumps(meta, indent=2))
        zf.writestr("coef.npy", _npy_bytes(coef))
        zf.writestr("intercept.npy", _npy_bytes(intercept))


def load_model(path):
    """(meta, coef, intercept) from a file written by `save_model`; never executes code."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ModelFileError(f"{path}: not a linjax model file ({err}); write one with "
                             "`linjax fit ... --save MODEL`.") from err
    with zf:
        names = set(zf.namelist())
        if names != MEMBERS:
            raise ModelFileError(f"{path}: expected exactly the members {sorted(MEMBERS)}, "
                                 f"found {sorted(names)}; refusing to load it.")
        try:
            meta = json.loads(zf.read("model.json").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelFileError(f"{path}: model.json is not valid JSON ({err}).") from err
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not a linjax model file (format "
                                 f"{meta.get('format') if isinstance(meta, dict) else None!r}).")
        if meta.get("version") != VERSION:
            raise ModelFileError(f"{path}: model file version {meta.get('version')!r}; this "
                                 f"linjax reads version {VERSION}.")
        arrays = {}
        for name in ("coef", "intercept"):
            try:
                arrays[name] = np.load(io.BytesIO(zf.read(f"{name}.npy")), allow_pickle=False)
            except ValueError as err:
                raise ModelFileError(f"{path}: {name}.npy is not a plain numeric array "
                                     f"({err}).") from err
            if arrays[name].dtype.kind not in "fiu":
                raise ModelFileError(f"{path}: {name}.npy has dtype {arrays[name].dtype}, "
                                     "expected numbers.")
    return meta, arrays["coef"], arrays["intercept"]
