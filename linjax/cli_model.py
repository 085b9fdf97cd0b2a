"""The model file of `linjax fit --save` / `linjax predict`: plain arrays plus JSON.

A model file is a zip archive with exactly three members:

- `model.json`: format name and version, the formula (or the outcome and feature
  columns of `--x`), the design's column names, the levels of every categorical
  factor, which terms are categorical blocks and which dense (`blocks`, as `lj.glm`
  splits a formula; files without it were fitted on formulaic's dense one-hot design),
  the state of formulaic's stateful transforms (`center(x)` ...), the family, link
  and their numeric parameters, the offset or exposure column, the penalty and
  whether there is an intercept;
- `coef.npy` and `intercept.npy`: the fitted parameters.

Loading parses the JSON and reads the arrays with `numpy.load(allow_pickle=False)`;
an archive with any other member is refused. Nothing is unpickled and nothing named
by the file is imported or executed. Every member is checked before it is used: its
declared size against a bound, each array's header against the bytes that follow it,
the JSON's nesting depth, and every key of `model.json` against the type and shape the
parameters imply (`check_meta`); a file that fails raises `ModelFileError` naming the
member and the problem.

Dictionaries with non-string keys (the state of `poly`, keyed by degree) are stored as
`{"__items__": [[key, value], ...]}`, which JSON keeps, and restored on loading.
"""

import io
import json
import math
import zipfile

import numpy as np

from linjax.io import ModelFileError, parse_json, read_member, read_npy

FORMAT = "linjax-cli-model"
VERSION = 1
MEMBERS = {"model.json", "coef.npy", "intercept.npy"}
MAX_JSON_BYTES = 16 * 2**20
MAX_ARRAY_BYTES = 2**30
#: longest list a transform's state may hold (spline knots, levels are bounded separately)
MAX_STATE_LIST = 1000
MAX_LEVELS = 100_000
ITEMS = "__items__"

__all__ = ["ModelFileError", "check_meta", "load_model", "save_model", "to_jsonable"]


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
        if ITEMS in value:
            raise TypeError(f"a dictionary with the reserved key {ITEMS!r}")
        if all(isinstance(k, str) for k in value):
            return {k: to_jsonable(v) for k, v in value.items()}
        return {ITEMS: [[to_jsonable(k), to_jsonable(v)] for k, v in value.items()]}
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a model file")


def save_model(path, meta, coef, intercept):
    """Write `meta` (a JSON-able dict) and the parameters to the zip file `path`."""
    meta = dict(to_jsonable(meta), format=FORMAT, version=VERSION)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.json", json.dumps(meta, indent=2))
        zf.writestr("coef.npy", _npy_bytes(coef))
        zf.writestr("intercept.npy", _npy_bytes(intercept))


def from_jsonable(value):
    """The inverse of `to_jsonable` for dictionaries: `{"__items__": pairs}` back to a dict.

    Iterative depth is bounded by `parse_json` (MAX_JSON_DEPTH), so recursion is safe.
    """
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    if not isinstance(value, dict):
        return value
    if ITEMS not in value:
        return {k: from_jsonable(v) for k, v in value.items()}
    pairs = value[ITEMS]
    if len(value) != 1 or not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str | int | float)
            for p in pairs):
        raise ModelFileError(f"model.json: malformed {ITEMS!r} entry {value!r:.80}; expected "
                             "a list of [key, value] pairs with number or string keys.")
    return {k: from_jsonable(v) for k, v in pairs}


def legacy_int_keys(state):
    """Files saved before `__items__` hold poly's {degree: value} state with keys "0", "1",
    ...: a transform-state dict whose keys are all decimal integers gets them back as ints."""
    if isinstance(state, list):
        return [legacy_int_keys(v) for v in state]
    if not isinstance(state, dict):
        return state
    keys = list(state)
    if keys and all(isinstance(k, str) and k.isdigit() and str(int(k)) == k for k in keys):
        return {int(k): legacy_int_keys(v) for k, v in state.items()}
    return {k: legacy_int_keys(v) for k, v in state.items()}


def load_model(path):
    """(meta, coef, intercept) from a file written by `save_model`; never executes code.

    Raises `ModelFileError` (a ValueError) naming the member and the problem for a file
    that is not a linjax model file, is damaged, or was tampered with.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as err:
        raise ModelFileError(f"{path}: not a linjax model file ({err}); write one with "
                             "`linjax fit ... --save MODEL`.") from err
    with zf:
        names = zf.namelist()
        if set(names) != MEMBERS or len(names) != len(MEMBERS):
            raise ModelFileError(f"{path}: expected exactly the members {sorted(MEMBERS)}, "
                                 f"found {sorted(names)}; refusing to load it.")
        meta = parse_json(read_member(zf, "model.json", MAX_JSON_BYTES), "model.json")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not a linjax model file (format "
                                 f"{meta.get('format') if isinstance(meta, dict) else None!r:.40})"
                                 ".")
        if meta.get("version") != VERSION:
            raise ModelFileError(f"{path}: model file version {meta.get('version')!r:.40}; "
                                 f"this linjax reads version {VERSION}.")
        arrays = {}
        for name in ("coef", "intercept"):
            member = f"{name}.npy"
            arrays[name] = read_npy(read_member(zf, member, MAX_ARRAY_BYTES), member)
            if arrays[name].dtype.kind not in "fiu":
                raise ModelFileError(f"{member}: dtype {arrays[name].dtype}; expected numbers.")
    meta = from_jsonable(meta)
    check_meta(meta, arrays["coef"], arrays["intercept"])
    if "transform_state" in meta:
        meta["transform_state"] = {term: legacy_int_keys(state) for term, state in
                                   meta["transform_state"].items()}
    return meta, arrays["coef"], arrays["intercept"]


# -- the schema of model.json ----------------------------------------------------------------

def _is_number(v):
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_names(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_params(v):
    return isinstance(v, dict) and all(isinstance(k, str) and _is_number(x)
                                       for k, x in v.items())


def _is_named(v):
    return (isinstance(v, dict) and isinstance(v.get("name"), str)
            and _is_params(v.get("params", {})))


def _is_level(v):
    return isinstance(v, str | bool) or _is_number(v)


def _is_levels(v):
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, list) and 0 < len(x) <= MAX_LEVELS
        and all(_is_level(level) for level in x) for k, x in v.items())


def _is_state_value(v):
    """A transform's state: numbers, strings, booleans, None, short lists, small dicts."""
    stack = [v]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            if len(item) > MAX_STATE_LIST:
                return False
            stack.extend(item)
        elif not (item is None or isinstance(item, str | bool | int | float)):
            return False
    return True


def _is_transform_state(v):
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, dict)
                                       and _is_state_value(x) for k, x in v.items())


def _is_optional_name(v):
    return v is None or isinstance(v, str)


def _is_penalty(v):
    return v is None or (isinstance(v, dict) and all(
        x is None or _is_number(x) for x in v.values()))


_COMMON = {  # key: (check, what it must be, required)
    "names": (_is_names, "a list of column names", True),
    "fit_intercept": (lambda v: isinstance(v, bool), "true or false", True),
    "family": (_is_named, 'an object {"name": str, "params": {str: number}}', True),
    "link": (_is_named, 'an object {"name": str, "params": {str: number}}', True),
    "offset": (_is_optional_name, "a column name or null", False),
    "exposure": (_is_optional_name, "a column name or null", False),
    "penalty": (_is_penalty, "null or an object of numbers", False),
}
def _is_blocks(v):
    """How `lj.glm`'s path split the formula: {"dense": null or {"formula": str, "names":
    [str], "factors": {factor: column}}, "categorical": [{"column": str, "drop_first":
    bool}]} (the levels themselves are in "levels")."""
    if not (isinstance(v, dict) and set(v) == {"dense", "categorical"}):
        return False
    dense, cats = v["dense"], v["categorical"]
    dense_ok = dense is None or (
        isinstance(dense, dict) and set(dense) == {"formula", "names", "factors"}
        and isinstance(dense["formula"], str) and _is_names(dense["names"])
        and isinstance(dense["factors"], dict)
        and all(isinstance(k, str) and isinstance(c, str) for k, c in dense["factors"].items()))
    return dense_ok and isinstance(cats, list) and all(
        isinstance(c, dict) and set(c) == {"column", "drop_first"} and
        isinstance(c["column"], str) and isinstance(c["drop_first"], bool) for c in cats)


_FORMULA = {
    "formula": (lambda v: isinstance(v, str), "the formula as a string", True),
    "levels": (_is_levels, "an object {column: [levels]}", False),
    "transform_state": (_is_transform_state, "an object {term: {state}} of numbers, strings "
                        f"and lists of at most {MAX_STATE_LIST} values", False),
    "design_columns": (_is_names, "a list of column names", True),
    "ensure_full_rank": (lambda v: isinstance(v, bool), "true or false", False),
    "blocks": (_is_blocks, "null or the dense and categorical parts of the formula", False),
}
_COLUMNS = {
    "outcome": (lambda v: isinstance(v, str), "the outcome column's name", True),
    "x": (_is_names, "a list of feature column names", True),
}


def check_meta(meta, coef, intercept):
    """Refuse a model.json / arrays pair that a fitted model could not have written.

    Every key has the JSON type `save_model` gives it, and the arrays have the shape the
    names imply: coef (p,) or (p, K), intercept () or (K,), all finite.
    """
    schema = dict(_COMMON, **(_FORMULA if "formula" in meta else _COLUMNS))
    for key, (check, what, required) in schema.items():
        if key not in meta:
            if required:
                raise ModelFileError(f"model.json: missing key {key!r} ({what}).")
            continue
        if not check(meta[key]):
            raise ModelFileError(f"model.json: {key!r} is {json.dumps(meta[key])[:80]}; "
                                 f"expected {what}.")
    p = len(meta["names"])
    if coef.ndim not in (1, 2) or coef.shape[0] != p:
        raise ModelFileError(f"coef.npy: shape {coef.shape}; the model names {p} column(s), "
                             f"so expected ({p},) or ({p}, K).")
    if intercept.shape != coef.shape[1:]:
        raise ModelFileError(f"intercept.npy: shape {intercept.shape}; expected "
                             f"{coef.shape[1:]} to match coef.npy {coef.shape}.")
    for member, arr in (("coef.npy", coef), ("intercept.npy", intercept)):
        if not np.isfinite(arr).all():
            raise ModelFileError(f"{member}: {int(np.size(arr) - np.isfinite(arr).sum())} "
                                 "NaN or infinite value(s); a fitted model has finite "
                                 "coefficients.")
    if "formula" in meta:
        expected = p + bool(meta["fit_intercept"])
        if len(meta["design_columns"]) != expected:
            raise ModelFileError(f"model.json: 'design_columns' lists "
                                 f"{len(meta['design_columns'])} columns; the coefficients "
                                 f"and intercept need {expected}.")
    elif len(meta["x"]) != p:
        raise ModelFileError(f"model.json: 'x' lists {len(meta['x'])} columns; coef.npy has "
                             f"{p}.")
