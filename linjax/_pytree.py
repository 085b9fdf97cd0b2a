"""Frozen dataclasses that are JAX pytrees: numbers are leaves, choices are static."""

import dataclasses

import jax


def static_field(**kwargs):
    """A dataclass field treated as static (hashable, part of the jit cache key)."""
    metadata = dict(kwargs.pop("metadata", {}), static=True)
    return dataclasses.field(metadata=metadata, **kwargs)


def pytree_dataclass(cls):
    """Freeze `cls` as a dataclass and register it with `jax.tree_util`.

    Fields made with `static_field` are meta fields; all others are data (leaves
    or sub-pytrees), so `jit`, `vmap` and `grad` see them.
    """
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    meta = tuple(f.name for f in fields if f.metadata.get("static", False))
    data = tuple(f.name for f in fields if not f.metadata.get("static", False))
    # Registered as a plain custom node rather than with `register_dataclass`: in jax
    # 0.10 two dataclass nodes of *different* classes with the same fields compare equal
    # as treedefs (Binomial() vs Poisson()), which lets jit reuse one family's compiled
    # function for another. A custom node's treedef compares its class.
    keys = tuple(jax.tree_util.GetAttrKey(name) for name in data)

    def flatten_with_keys(obj):
        children = tuple((k, getattr(obj, n)) for k, n in zip(keys, data, strict=True))
        return children, tuple(getattr(obj, n) for n in meta)

    def flatten(obj):
        return tuple(getattr(obj, n) for n in data), tuple(getattr(obj, n) for n in meta)

    def unflatten(aux, children):
        obj = object.__new__(cls)
        for name, value in zip(data, children, strict=True):
            object.__setattr__(obj, name, value)
        for name, value in zip(meta, aux, strict=True):
            object.__setattr__(obj, name, value)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    return cls


def replace(obj, **changes):
    """A copy of the dataclass `obj` with some fields changed."""
    return dataclasses.replace(obj, **changes)
