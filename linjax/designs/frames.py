"""DataFrames in, names out: category and string columns become `Categorical` blocks.

`encode_frame(df, drop_first)` returns the design (a `Split` of `Dense` runs of numeric
columns and one `Categorical` per category/string column, in the frame's column order)
and a `FrameEncoding` that remembers each column's levels. Levels: a pandas `category`
column's categories in their order (as R's factor levels), else the sorted distinct
values. With `drop_first` (an intercept: treatment coding, as R does) the first level is
the reference and has no column. Without an intercept the first categorical column keeps
every level and each later one drops its first, as R's model.matrix does, so the design
stays of full rank. Names: `col` for a numeric column, `col[level]` for a
level. `FrameEncoding.transform(new_df)` encodes new rows with the fitted levels and refuses
a level it has not seen (or maps it to the reference level with unseen="reference").
A polars frame is read through `to_pandas()`.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

from linjax.designs import in_place
from linjax.designs.host import stacked_columns
from linjax.designs.types import Categorical, Dense, Split


def is_frame(X):
    """A pandas or polars DataFrame (recognised without importing either)."""
    module = type(X).__module__
    return type(X).__name__ == "DataFrame" and module.split(".")[0] in ("pandas", "polars")


def as_pandas(df):
    """A pandas DataFrame from a pandas or polars one."""
    return df.to_pandas() if type(df).__module__.split(".")[0] == "polars" else df


def is_categorical(series):
    """Whether a column is coded as a factor (pandas `category`, or not numeric/boolean)."""
    import pandas as pd

    dtype = series.dtype
    return isinstance(dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def has_categories(X):
    """True for a frame with at least one category/string column."""
    if not is_frame(X):
        return False
    df = as_pandas(X)
    return any(is_categorical(df[c]) for c in df.columns)


def _levels(series):
    """The level labels of one categorical column (see the module docstring)."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        return tuple(series.cat.categories.tolist())
    values = series.dropna().unique().tolist()
    try:
        return tuple(sorted(values))
    except TypeError:  # mixed types: sort by their text
        return tuple(sorted(values, key=str))


def _same_categories(series, levels):
    """True for a pandas category column whose categories are `levels`, in order."""
    import pandas as pd

    return (isinstance(series.dtype, pd.CategoricalDtype)
            and len(series.cat.categories) == len(levels)
            and tuple(series.cat.categories.tolist()) == tuple(levels))


def _check_missing(name, series):
    missing = np.asarray(series.isna())
    if missing.any():
        raise ValueError(f"X: column {name!r} has {int(missing.sum())} missing value(s), the "
                         f"first at row {int(np.flatnonzero(missing)[0])}; drop those rows or "
                         "fill them (for a category, with a level of its own) before fitting.")


@dataclasses.dataclass(frozen=True)
class FrameEncoding:
    """How a frame's columns became a design: (name, levels or None for numeric) per
    column, in order; whether the first level of each categorical is dropped (an
    intercept); and whether, without one, every categorical after the first drops its first
    level (R's coding; False only in models saved before linjax did so)."""

    columns: tuple
    drop_first: bool = True
    reference_after_first: bool = False

    def dropped(self):
        """Per column: whether its first level has no column (False for numeric ones)."""
        out, seen = [], 0
        for _, levels in self.columns:
            out.append(levels is not None and (self.drop_first or (
                self.reference_after_first and seen > 0)))
            seen += levels is not None
        return tuple(out)

    @property
    def names(self):
        """Column names of the design: `col`, or `col[level]` per non-reference level."""
        out = []
        for (name, levels), drop in zip(self.columns, self.dropped(), strict=True):
            if levels is None:
                out.append(str(name))
            else:
                out.extend(f"{name}[{lev}]" for lev in levels[int(drop):])
        return tuple(out)

    def transform(self, df, unseen="error", dtype=None):
        """The design of new rows with the fitted levels. unseen: "error" (a ValueError
        naming the column and level) or "reference" (such rows get the reference level)."""
        if unseen not in ("error", "reference"):
            raise ValueError(f"unseen: expected 'error' or 'reference', got {unseen!r}.")
        if not is_frame(df):
            raise ValueError(f"X: expected a DataFrame with the columns "
                             f"{[c for c, _ in self.columns]}, got {type(df).__name__}.")
        df = as_pandas(df)
        absent = [c for c, _ in self.columns if c not in df.columns]
        if absent:
            raise ValueError(f"X: column(s) {absent} of the fitted frame are missing.")
        dtype = jnp.zeros(()).dtype if dtype is None else dtype
        blocks, numeric = [], []
        for (name, levels), drop in zip(self.columns, self.dropped(), strict=True):
            series = df[name]
            _check_missing(name, series)
            if levels is None:
                numeric.append(np.asarray(series, dtype=float))
                continue
            if numeric:
                blocks.append(_numeric_block(numeric, dtype))
                numeric = []
            blocks.append(self._categorical(name, series, levels, drop, unseen, dtype))
        if numeric:
            blocks.append(_numeric_block(numeric, dtype))
        return Split(tuple(blocks))

    def _categorical(self, name, series, levels, drop, unseen, dtype):
        if _same_categories(series, levels):   # the frame's own codes (no per-row lookup)
            return Categorical.from_codes(np.asarray(series.cat.codes), len(levels), drop,
                                          dtype)
        values = series.astype(object).to_numpy()
        index = {lev: i for i, lev in enumerate(levels)}
        codes = np.fromiter((index.get(v, -1) for v in values), np.int64, len(values))
        new = codes < 0
        if new.any() and unseen == "error":
            first = values[np.flatnonzero(new)[0]]
            raise ValueError(
                f"X: column {name!r} has level {first!r} ({int(new.sum())} row(s)), not seen "
                f"when fitting (levels {list(levels)[:20]}); pass unseen='reference' to give "
                "such rows the reference level, or refit with that level.")
        codes[new] = 0
        return Categorical.from_codes(codes, len(levels), drop, dtype)


def _as_rows(columns):
    """The (n, k) C-contiguous array whose columns `columns` are, in order (a frame built on a
    2-D array keeps it and hands out strided column views), or None."""
    first = columns[0]
    k, step = len(columns), first.itemsize
    if first.ndim != 1 or first.strides != (k * step,) or any(
            c.dtype != first.dtype or c.shape != first.shape or c.strides != first.strides
            or c.ctypes.data != first.ctypes.data + j * step for j, c in enumerate(columns)):
        return None
    return np.lib.stride_tricks.as_strided(first, (first.shape[0], k), (k * step, step),
                                           writeable=False)


def _numeric_block(columns, dtype):
    """A run of numeric columns as a design: large float columns of the fit's dtype are read
    in place (`in_place.InPlaceDense`: no copy of the frame's data), others are written
    once into an aligned array (`host.stacked_columns`)."""
    rows = _as_rows(columns)
    if rows is not None and in_place.wanted(rows, dtype):
        return in_place.InPlaceDense.from_array(rows)
    if in_place.columns_wanted(columns, dtype):
        return in_place.InPlaceDense.from_columns(columns)
    return Dense(stacked_columns(columns, dtype))


def encode_frame(df, drop_first=True, dtype=None):
    """(design, FrameEncoding) of a DataFrame (see the module docstring)."""
    df = as_pandas(df)
    columns = []
    for name in df.columns:
        series = df[name]
        if is_categorical(series):
            _check_missing(name, series)
            levels = _levels(series)
            drop = drop_first or any(lev is not None for _, lev in columns)
            if len(levels) - int(drop) < 1:
                raise ValueError(f"X: column {name!r} has a single level ({levels[0]!r}), "
                                 "which leaves no column beside the intercept; drop it.")
            columns.append((name, levels))
        else:
            columns.append((name, None))
    encoding = FrameEncoding(tuple(columns), bool(drop_first), reference_after_first=True)
    return encoding.transform(df, dtype=dtype), encoding
