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
    meta = [f.name for f in fields if f.metadata.get("static", False)]
    data = [f.name for f in fields if not f.metadata.get("static", False)]
    return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)


def replace(obj, **changes):
    """A copy of the dataclass `obj` with some fields changed."""
    return dataclasses.replace(obj, **changes)
