"""Safe persistence: `save(path, obj)` / `load(path)` for estimators and `FitResult`s.

A saved file is a zip archive holding `metadata.json` and one `.npy` file per array
under `arrays/`. Loading reads the JSON, checks that the archive holds exactly the
members the metadata names (anything else, such as a pickle, is refused), reads
every array with `numpy.load(..., allow_pickle=False)` and rebuilds objects only
from an allow-list of linjax classes (estimators, families, links, penalties and
solver states). Nothing is unpickled and no code named by the file is executed.
Arrays round-trip bit for bit (dtype included: float32 stays float32).

What is saved: for an estimator, its constructor parameters and its fitted
attributes (names ending in "_"); the training data kept for `summary()` is not
saved (pass X and y to `summary` after loading). For a `FitResult`, every field.
JAX arrays come back as JAX arrays, numpy arrays as numpy arrays. Estimators also
pickle, as scikit-learn users expect; `linjax.io` is for files you do not trust.
"""

import dataclasses
import importlib
import io
import json
import re
import zipfile

import jax.numpy as jnp
import numpy as np

FORMAT = "linjax"
VERSION = 1
METADATA = "metadata.json"

#: Modules whose dataclasses / NamedTuples may be rebuilt, and where estimators live.
_ALLOWED_MODULES = ("linjax.families", "linjax.links", "linjax.penalties", "linjax.fit",
                    "linjax.preprocessing")
_ALLOWED_PREFIXES = ("linjax.solvers.",)
_ESTIMATOR_MODULE = "linjax.estimators"
_NAME = re.compile(r"^arrays/a[0-9]+\.npy$")


class UnsafeFileError(ValueError):
    """The file is not a linjax archive, or holds something loading would refuse."""


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
        import jax

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
    cls = getattr(importlib.import_module(module), name, None)
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
            arr = self.arrays[value["__array__"]]
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
            return obj
        raise UnsafeFileError(f"load: unexpected metadata entry {value!r:.80}.")


# -- public API ------------------------------------------------------------------------

def save(path, obj):
    """Write a linjax estimator or `FitResult` to `path` (a zip of .npy arrays + JSON).

    Raises ValueError for objects or attributes that cannot be stored safely (for
    example object arrays holding mixed types).
    """
    from linjax.fit import FitResult

    writer = _Writer()
    if isinstance(obj, FitResult):
        meta = {"kind": "fit_result", "value": writer.encode(obj)}
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
    except (zipfile.BadZipFile, EOFError, OSError) as err:  # CRC mismatch, truncated member
        raise UnsafeFileError(f"load: {path!r} is corrupted ({err}); the file was damaged or "
                              "truncated after it was saved. Save the model again.") from err


def _load_archive(zf, path):
    """Validate and read the members of an open linjax archive (see `load`)."""
    names = zf.namelist()
    if METADATA not in names:
        raise UnsafeFileError(f"load: {path!r} has no {METADATA}; not a linjax file.")
    try:
        meta = json.loads(zf.read(METADATA).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnsafeFileError(f"load: {METADATA} is not valid JSON ({err}).") from err
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
        try:
            arrays[name] = np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
        except ValueError as err:
            raise UnsafeFileError(f"load: {name} is not a plain .npy array ({err}); object "
                                  "arrays (pickles) are refused.") from err
    reader = _Reader(arrays)
    kind = meta.get("kind")
    if kind == "fit_result":
        from linjax.fit import FitResult

        out = reader.decode(meta["value"])
        if not isinstance(out, FitResult):
            raise UnsafeFileError("load: the file does not hold a FitResult.")
        return out
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
        return est
    raise UnsafeFileError(f"load: unknown content kind {kind!r}.")
