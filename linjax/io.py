"""Safe persistence: `save(path, obj)` / `load(path)` for estimators and `FitResult`s.

A saved file is a zip archive holding `metadata.json` and one `.npy` file per array
under `arrays/`. Loading reads the JSON, checks that the archive holds exactly the
members the metadata names (anything else, such as a pickle, is refused), reads
every array with `numpy.load(..., allow_pickle=False)` and rebuilds objects only
from an allow-list of linjax classes (estimators, families, links, penalties and
solver states). Nothing is unpickled and no code named by the file is executed.
Arrays round-trip bit for bit (dtype included: float32 stays float32).

What is saved: for an estimator, its constructor parameters and its fitted
attributes (names ending in "_", including `encoding_`, the levels of a DataFrame's
categorical columns); the training data kept for `summary()` is not saved (pass X and y
to `summary` after loading). For a `FitResult`, every field (a fit of a sparse or
categorical design holds no design, so it saves as any other). For an `lj.glm` fit
(`FormulaFit`), its FitResult, family and `state()`: the formula, the column names, the
levels of every categorical and the state of formulaic's stateful transforms. Its
formula is checked before formulaic evaluates it on new data
(`linjax.designs.formula_checks`: only column names, numbers, arithmetic and listed
functions, bounded expansion), since a file may come from anyone.
JAX arrays come back as JAX arrays, numpy arrays as numpy arrays. Estimators also
pickle, as scikit-learn users expect; `linjax.io` is for files you do not trust.

A file that is damaged or was tampered with raises `ModelFileError` (a ValueError;
`UnsafeFileError` is the subclass for refused content such as pickles or foreign
classes), naming the member and the problem. Loading never reads more than a member
declares in the archive's directory, checks each .npy header's shape against the bytes
that follow it before allocating, bounds the JSON's nesting, and checks the rebuilt
parameters' shapes and values (`_check_params`).
"""

import dataclasses
import importlib
import io
import json
import re
import zipfile
import zlib

import jax
import jax.numpy as jnp
import numpy as np

from linjax.designs.formula import FormulaFit
from linjax.designs.formula_checks import FormulaError
from linjax.designs.frames import FrameEncoding
from linjax.result import FitResult

FORMAT = "linjax"
VERSION = 1
METADATA = "metadata.json"

#: Modules whose dataclasses / NamedTuples may be rebuilt, and where estimators live.
_ALLOWED_MODULES = ("linjax.families", "linjax.links", "linjax.penalties", "linjax.fit",
                    "linjax.nb", "linjax.result", "linjax.transforms",
                    "linjax.preprocessing", "linjax.selection", "linjax.paths",
                    "linjax.designs.frames")
_ALLOWED_PREFIXES = ("linjax.solvers.",)
_ESTIMATOR_MODULE = "linjax.estimators"
_NAME = re.compile(r"^arrays/a[0-9]+\.npy$")
#: Bounds on what loading reads from an untrusted file (a tampered file is refused quickly).
MAX_JSON_BYTES = 64 * 2**20
MAX_JSON_DEPTH = 64
MAX_ARRAY_BYTES = 2**32
#: What reading a damaged member raises: zipfile's own errors, zlib on a corrupt deflate
#: stream, EOFError on a truncated one, NotImplementedError / RuntimeError on an unsupported
#: compression method or an encrypted member.
_MEMBER_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
                  NotImplementedError, RuntimeError)


class ModelFileError(ValueError):
    """A saved file cannot be loaded: not a linjax file, damaged or tampered with.

    The message names the archive member and the problem.
    """


class UnsafeFileError(ModelFileError):
    """The file is not a linjax archive, or holds something loading would refuse."""


# -- reading untrusted members (shared with linjax.cli_model) ---------------------------

def read_member(zf, name, limit):
    """The bytes of member `name` of the open zip `zf`, at most `limit` of them.

    The size comes from the archive's directory; reading stops there (decompressing at
    most that much) and the CRC is checked, so a member whose stream is corrupt, truncated
    or longer than declared is refused without inflating it.
    """
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise ModelFileError(f"{name}: declares {info.file_size} bytes, more than the "
                             f"{limit} this member may hold; refusing to read it.")
    try:
        with zf.open(info) as member:
            data = member.read(info.file_size)
    except _MEMBER_ERRORS as err:
        raise ModelFileError(f"{name}: the member is corrupt ({err}).") from err
    if len(data) != info.file_size:
        raise ModelFileError(f"{name}: the member is truncated ({len(data)} of "
                             f"{info.file_size} bytes).")
    return data


def parse_json(data, name):
    """The JSON value in `data`, refused if invalid or nested deeper than MAX_JSON_DEPTH."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        problem = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise ModelFileError(f"{name}: not valid JSON ({problem}).") from err
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ModelFileError(f"{name}: JSON nested deeper than {MAX_JSON_DEPTH} levels; a "
                             "linjax file is never that deep.")
    return value


def json_depth(value):
    """Nesting depth of lists and dicts in a parsed JSON value (iterative: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item if isinstance(v, list | dict))
    return deepest


def read_npy(data, name):
    """The array in .npy bytes, after checking that the header's shape and dtype describe
    exactly the bytes that follow it (a header declaring a huge shape allocates nothing).

    Object dtypes (pickles) are refused; read with `allow_pickle=False`.
    """
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy format version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                       np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(buf)
    except (ValueError, TypeError, SyntaxError, EOFError, OverflowError) as err:
        raise UnsafeFileError(f"{name}: not a plain .npy array ({err}).") from err
    if dtype.hasobject:
        raise UnsafeFileError(f"{name}: an array of Python objects (a pickle), which "
                              "loading refuses.")
    declared = dtype.itemsize
    for n in shape:
        declared *= int(n)
    held = len(data) - buf.tell()
    if declared != held:
        raise ModelFileError(f"{name}: the header declares shape {shape} of {dtype} "
                             f"({declared} bytes) but the member holds {held}; the file was "
                             "damaged or tampered with.")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ModelFileError(f"{name}: not a plain .npy array ({err}).") from err


# -- encoding --------------------------------------------------------------------------

class _Writer:
    def __init__(self):
        self.arrays = {}

    def array(self, value, kind):
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueError(f"save: an array of dtype object cannot be saved safely; convert "
                             f"it to numbers or strings first (got {arr!r:.80}).")
        name = f"arrays/a{len(self.arrays)}.npy"
        self.arrays[name] = arr
        return {"__array__": name, "kind": kind}

    def encode(self, value):
        if isinstance(value, np.generic):
            return self.array(value, "scalar")
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return {"__float__": value.hex()}
        if isinstance(value, jax.Array):
            return self.array(value, "jax")
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                items = value.tolist()
                if value.ndim == 1 and all(isinstance(v, str) for v in items):
                    return {"__strings__": items}
            return self.array(value, "numpy")
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            if _qualname(type(value)) is None:
                raise ValueError(f"save: {type(value).__module__}.{type(value).__name__} is not "
                                 "a linjax class and cannot be saved.")
            return {"__namedtuple__": _qualname(type(value)),
                    "fields": {k: self.encode(v) for k, v in zip(value._fields, value,
                                                                 strict=True)}}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            cls = type(value)
            if _qualname(cls) is None:
                raise ValueError(f"save: {cls.__module__}.{cls.__name__} is not a linjax "
                                 "class and cannot be saved.")
            return {"__dataclass__": _qualname(cls),
                    "fields": {f.name: self.encode(getattr(value, f.name))
                               for f in dataclasses.fields(value)}}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                return {"__items__": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
            return {"__dict__": {k: self.encode(v) for k, v in value.items()}}
        raise ValueError(f"save: cannot save a value of type {type(value).__name__} "
                         f"({value!r:.80}); only numbers, strings, arrays and linjax objects "
                         "are supported.")


def _qualname(cls):
    module = cls.__module__
    if module in _ALLOWED_MODULES or module.startswith(_ALLOWED_PREFIXES):
        return f"{module}:{cls.__qualname__}"
    return None


def _resolve(qualname, what):
    """The allow-listed class named `module:Name`, or UnsafeFileError."""
    if not isinstance(qualname, str) or qualname.count(":") != 1:
        raise UnsafeFileError(f"load: malformed class name {qualname!r} in the metadata.")
    module, name = qualname.split(":")
    if not (module in _ALLOWED_MODULES or module.startswith(_ALLOWED_PREFIXES)) or \
            not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UnsafeFileError(f"load: the file names {qualname!r}, which is not a linjax "
                              f"{what} class; refusing to load it.")
    if not re.fullmatch(r"linjax(\.[a-z_][a-z0-9_]*)+", module):
        raise UnsafeFileError(f"load: malformed module name {module!r}.")
    try:
        cls = getattr(importlib.import_module(module), name, None)
    except ImportError as err:
        raise UnsafeFileError(f"load: {qualname!r} names a module that does not exist in this "
                              "linjax version.") from err
    if cls is None or not isinstance(cls, type):
        raise UnsafeFileError(f"load: {qualname!r} does not exist in this linjax version.")
    if what == "dataclass" and not dataclasses.is_dataclass(cls):
        raise UnsafeFileError(f"load: {qualname!r} is not a dataclass.")
    if what == "namedtuple" and not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
        raise UnsafeFileError(f"load: {qualname!r} is not a NamedTuple.")
    return cls


class _Reader:
    def __init__(self, arrays):
        self.arrays = arrays

    def decode(self, value):
        if value is None or isinstance(value, bool | str | int):
            return value
        if isinstance(value, float):
            return value
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict) or len(value) == 0:
            raise UnsafeFileError(f"load: unexpected metadata entry {value!r:.80}.")
        if "__array__" in value:
            name = value["__array__"]
            if not isinstance(name, str) or name not in self.arrays:
                raise ModelFileError(f"{METADATA}: refers to the array {name!r:.80}, which the "
                                     "file does not list.")
            arr = self.arrays[name]
            kind = value.get("kind")
            if kind == "jax":
                return jnp.asarray(arr)
            if kind == "scalar":
                return arr[()]
            return arr
        if "__float__" in value:
            return float.fromhex(value["__float__"])
        if "__strings__" in value:
            return np.asarray([str(s) for s in value["__strings__"]], dtype=object)
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {str(k): self.decode(v) for k, v in value["__dict__"].items()}
        if "__items__" in value:
            return {self.decode(k): self.decode(v) for k, v in value["__items__"]}
        if "__namedtuple__" in value:
            cls = _resolve(value["__namedtuple__"], "namedtuple")
            return cls(**{k: self.decode(v) for k, v in value["fields"].items()})
        if "__dataclass__" in value:
            cls = _resolve(value["__dataclass__"], "dataclass")
            fields = {f.name: f for f in dataclasses.fields(cls)}
            kwargs = {}
            rest = {}
            for k, v in value["fields"].items():
                if k not in fields:
                    raise UnsafeFileError(f"load: {cls.__name__} has no field {k!r}.")
                (kwargs if fields[k].init else rest)[k] = self.decode(v)
            obj = cls(**kwargs)
            for k, v in rest.items():
                object.__setattr__(obj, k, v)
            if cls is FrameEncoding:  # labels, not numbers
                _check_frame_encoding(obj)
            else:
                _check_numeric_leaves(obj, cls.__name__)
            return obj
        raise UnsafeFileError(f"load: unexpected metadata entry {value!r:.80}.")


def _check_numeric_leaves(obj, what):
    """Every pytree leaf of a rebuilt linjax object is a number (not, say, a string)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(obj):
        kind = "U" if isinstance(leaf, str | bytes) else np.asarray(leaf).dtype.kind
        if kind not in "biufc":
            raise ModelFileError(f"{METADATA}: {what}{jax.tree_util.keystr(path)} is "
                                 f"{leaf!r:.60}, expected a number.")


def _check_frame_encoding(enc):
    """A FrameEncoding: (column name, None or a tuple of level labels) pairs and two bools."""
    scalar = str | int | float | bool
    ok = isinstance(enc.columns, tuple) and isinstance(enc.drop_first, bool) and isinstance(
        enc.reference_after_first, bool) and all(
        isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], scalar) and
        (c[1] is None or (isinstance(c[1], tuple) and len(c[1]) > 0 and
                          all(isinstance(v, scalar) for v in c[1])))
        for c in enc.columns)
    if not ok:
        raise ModelFileError(f"{METADATA}: FrameEncoding {enc!r:.80} is not a list of "
                             "(column, levels) pairs.")


def _check_params(coef, intercept, where, aliased=None, finite=True):
    """Coefficients (p,), (p, K), batched (m, p[, K]) or estimator (K, p) with a matching
    intercept; no NaN or inf except where `aliased` marks a coefficient."""
    coef, intercept = np.asarray(coef), np.asarray(intercept)
    if coef.dtype.kind not in "fiu" or intercept.dtype.kind not in "fiu":
        raise ModelFileError(f"{where}: coefficients of dtype {coef.dtype} / intercept of "
                             f"dtype {intercept.dtype}; expected numbers.")
    fits = {coef.shape[1:], coef.shape[:1] + coef.shape[2:]} if coef.ndim else set()
    if coef.ndim not in (1, 2, 3) or intercept.shape not in fits:
        raise ModelFileError(f"{where}: coefficients of shape {coef.shape} with an intercept "
                             f"of shape {intercept.shape} do not describe a linear model.")
    if finite:
        bad = ~np.isfinite(coef)
        if aliased is not None and np.shape(aliased) == coef.shape:
            bad &= ~np.asarray(aliased, bool)
        if bad.any() or not np.isfinite(intercept).all():
            raise ModelFileError(f"{where}: the coefficients hold NaN or infinite values; the "
                                 "file was damaged or tampered with.")


def _check_estimator(est):
    """A fitted estimator's coef_ / intercept_ / n_features_in_ agree with each other."""
    if not hasattr(est, "coef_"):
        return
    coef = np.asarray(est.coef_)
    where = f"{METADATA}: {type(est).__name__}.coef_ / intercept_"
    if coef.ndim not in (1, 2):
        raise ModelFileError(f"{where}: coef_ of shape {coef.shape}; expected (n_features,) "
                             "or (n_outputs, n_features).")
    intercept = np.asarray(getattr(est, "intercept_", 0.0))
    if intercept.shape != coef.shape[:-1]:
        raise ModelFileError(f"{where}: intercept_ of shape {intercept.shape} does not match "
                             f"coef_ of shape {coef.shape}.")
    n = getattr(est, "n_features_in_", coef.shape[-1])
    encoding = getattr(est, "encoding_", None)
    if encoding is not None:  # a frame's columns became more coefficients (levels)
        if not isinstance(encoding, FrameEncoding) or len(encoding.names) != coef.shape[-1] \
                or n != len(encoding.columns):
            raise ModelFileError(f"{where}: encoding_ does not describe the {coef.shape[-1]} "
                                 f"coefficients of {n!r:.40} columns.")
        n = coef.shape[-1]
    if not isinstance(n, int | np.integer) or n != coef.shape[-1]:
        raise ModelFileError(f"{where}: n_features_in_ = {n!r:.40} but coef_ has "
                             f"{coef.shape[-1]} columns.")
    _check_params(coef.T, intercept, where, getattr(est, "aliased_", None))


# -- public API ------------------------------------------------------------------------

def save(path, obj):
    """Write a linjax estimator, `FitResult` or `lj.glm` fit to `path` (a zip of .npy
    arrays + JSON).

    Raises ValueError for objects or attributes that cannot be stored safely (for
    example object arrays holding mixed types).
    """
    writer = _Writer()
    if isinstance(obj, FitResult):
        meta = {"kind": "fit_result", "value": writer.encode(obj)}
    elif isinstance(obj, FormulaFit):
        meta = {"kind": "formula_fit", "result": writer.encode(obj.result),
                "family": writer.encode(obj.family), "state": writer.encode(obj.state())}
    else:
        cls = type(obj)
        estimators = _estimator_classes()
        if estimators.get(cls.__name__) is not cls:
            raise ValueError(f"save: expected a linjax estimator or a FitResult, got "
                             f"{cls.__module__}.{cls.__name__}.")
        attrs = {k: v for k, v in vars(obj).items() if k.endswith("_") and not
                 k.startswith("_")}
        private = {k: getattr(obj, k) for k in ("_mode", "_stats") if hasattr(obj, k)}
        meta = {"kind": "estimator", "class": cls.__name__,
                "params": writer.encode(obj.get_params(deep=False)),
                "attributes": writer.encode(attrs), "private": writer.encode(private)}
    meta.update({"format": FORMAT, "version": VERSION,
                 "arrays": sorted(writer.arrays)})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(METADATA, json.dumps(meta, indent=1))
        for name, arr in writer.arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            zf.writestr(name, buf.getvalue())


def _checked_result(out):
    """`out` if it is a FitResult with well-formed parameters, else UnsafeFileError."""
    if not isinstance(out, FitResult) or not isinstance(out.params, dict):
        raise UnsafeFileError("load: the file does not hold a FitResult.")
    converged = np.all(np.asarray(out.status) == 0)
    _check_params(out.params.get("coef"), out.params.get("intercept"),
                  f"{METADATA}: FitResult.params", getattr(out, "aliased", None),
                  finite=bool(converged))
    return out


def _estimator_classes():
    import linjax.estimators as E

    return {name: getattr(E, name) for name in E.__all__ if isinstance(getattr(E, name), type)}


def load(path):
    """Read what `save` wrote. Never unpickles; refuses any unexpected archive member."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise UnsafeFileError(f"load: {path!r} is not a linjax file (not a zip archive).") \
            from err
    try:
        with zf:
            return _load_archive(zf, path)
    except ModelFileError as err:
        if str(err).startswith("load: "):
            raise
        raise type(err)(f"load: {err}") from err  # every message of `load` says where it is from
    except _MEMBER_ERRORS as err:  # CRC mismatch, truncated member
        raise ModelFileError(f"load: {path!r} is corrupted ({err}); the file was damaged or "
                             "truncated after it was saved. Save the model again.") from err
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as err:
        # a well-formed archive whose metadata does not describe a linjax object
        raise ModelFileError(f"load: {METADATA}: malformed entry ({type(err).__name__}: "
                             f"{str(err)[:200]}); the file was damaged or tampered with.") \
            from err


def _load_archive(zf, path):
    """Validate and read the members of an open linjax archive (see `load`)."""
    names = zf.namelist()
    if METADATA not in names:
        raise UnsafeFileError(f"load: {path!r} has no {METADATA}; not a linjax file.")
    meta = parse_json(read_member(zf, METADATA, MAX_JSON_BYTES), METADATA)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UnsafeFileError(f"load: {path!r} is not a linjax file (format marker "
                              "missing).")
    if meta.get("version") != VERSION:
        raise UnsafeFileError(f"load: unsupported file version {meta.get('version')!r}; "
                              f"this linjax reads version {VERSION}.")
    listed = meta.get("arrays", [])
    if not isinstance(listed, list) or not all(isinstance(n, str) and _NAME.match(n)
                                               for n in listed):
        raise UnsafeFileError("load: the metadata lists malformed array names.")
    expected = {METADATA, *listed}
    extra = sorted(set(names) - expected)
    if extra or len(names) != len(set(names)):
        raise UnsafeFileError(
            f"load: unexpected member(s) {extra or 'duplicated'} in {path!r}; a linjax "
            "file holds only metadata.json and the .npy arrays it lists. Refusing to load "
            "a file that may carry a pickle or other code.")
    missing = sorted(expected - set(names))
    if missing:
        raise UnsafeFileError(f"load: member(s) {missing} listed but missing.")
    arrays = {}
    for name in listed:
        arrays[name] = read_npy(read_member(zf, name, MAX_ARRAY_BYTES), name)
    reader = _Reader(arrays)
    kind = meta.get("kind")
    if kind == "fit_result":
        return _checked_result(reader.decode(meta["value"]))
    if kind == "formula_fit":
        result = _checked_result(reader.decode(meta["result"]))
        family = reader.decode(meta["family"])
        state = reader.decode(meta["state"])
        if not isinstance(state, dict):
            raise UnsafeFileError("load: the formula fit's state is not a dictionary.")
        try:
            return FormulaFit.from_state(result, family, state)
        except FormulaError as err:
            raise UnsafeFileError(f"load: {err}") from err
    if kind == "estimator":
        cls = _estimator_classes().get(meta.get("class"))
        if cls is None:
            raise UnsafeFileError(f"load: unknown estimator class {meta.get('class')!r}.")
        est = cls(**reader.decode(meta["params"]))
        for k, v in reader.decode(meta["attributes"]).items():
            if not (k.endswith("_") and k.isidentifier() and not k.startswith("_")):
                raise UnsafeFileError(f"load: unexpected attribute name {k!r}.")
            setattr(est, k, v)
        for k, v in reader.decode(meta.get("private", {"__dict__": {}})).items():
            if k not in ("_mode", "_stats"):
                raise UnsafeFileError(f"load: unexpected attribute name {k!r}.")
            setattr(est, k, v)
        _check_estimator(est)
        return est
    raise UnsafeFileError(f"load: unknown content kind {kind!r}.")
