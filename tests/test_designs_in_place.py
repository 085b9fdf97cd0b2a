"""A dense block read in place from misaligned numpy memory (`linjax.designs.in_place`): no
copy of the array, products and fits equal to the dense matrix's (numpy, dense fits), with
the row-block loop forced to run over several small blocks."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import linjax as lj
from linjax.designs import Categorical, Dense, Split, cross, in_place
from linjax.designs.frames import encode_frame
from linjax.designs.host import aligned_empty
from linjax.designs.in_place import InPlaceDense

N, P, LEVELS = 1003, 4, 7
ROWS = 64   # rows per block: 15 blocks, a tail and a head


def _misaligned(values, offset=16):
    """A C-contiguous copy of `values` whose data start `offset` bytes past a 64-byte
    boundary (numpy's own large arrays start 16 bytes past one)."""
    raw = np.empty(values.nbytes + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    out = raw[start:start + values.nbytes].view(values.dtype).reshape(values.shape)
    out[...] = values
    return out


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(N, P))
    codes = rng.integers(0, LEVELS, N)
    eta = 0.4 * rng.normal(size=LEVELS)[codes] + Z @ np.array([0.3, -0.2, 0.1, 0.0]) - 0.3
    return Z, codes, rng.poisson(np.exp(eta)).astype(float)


@pytest.fixture
def small_blocks(monkeypatch):
    """Every misaligned block read in place, by ROWS-row blocks."""
    monkeypatch.setattr(in_place, "MIN_BYTES", 0)
    monkeypatch.setattr(in_place, "ROWS_PER_BLOCK", ROWS)


def _layouts(Z):
    """(name, InPlaceDense) for row-major memory 16 and 40 bytes past a boundary, and for
    one array per column at different offsets."""
    columns = [_misaligned(np.ascontiguousarray(Z[:, j]), 8 * j) for j in range(P)]
    return [("rows+16", InPlaceDense.from_array(_misaligned(Z, 16), ROWS)),
            ("rows+40", InPlaceDense.from_array(_misaligned(Z, 40), ROWS)),
            ("columns", InPlaceDense.from_columns(columns, ROWS))]


def test_memory_is_used_in_place(data):
    Z = _misaligned(data[0])
    X = InPlaceDense.from_array(Z, ROWS)
    skip = X.skips[0]
    assert skip == 6 and X.n_head == 2   # 48 bytes to the boundary: 6 doubles, 2 rows
    assert X.parts[0].unsafe_buffer_pointer() == Z.ctypes.data + 8 * skip
    assert np.shares_memory(np.asarray(X.parts[0]), Z)


@jax.jit
def _products(X, G, b, B, v, w):
    """Every product of X, in one compiled program per layout."""
    Dx = Dense(X.to_dense())
    return (X.to_dense(), X @ b, X @ B, X.rmatvec(v), *X.weighted_products(w, v, True),
            X.squared_rmatvec(w), X.column_stds(w), cross(G, X, w), cross(X, Dx, w),
            jax.grad(lambda b: jnp.sum(jnp.sin(X @ b)))(b))


def test_products_equal_numpy(data):
    Z, codes, _ = data
    rng = np.random.default_rng(5)
    b, B = rng.normal(size=P), rng.normal(size=(P, 2))
    v, w = rng.normal(size=N), rng.uniform(0.1, 2.0, N)
    ones = np.column_stack([np.ones(N), Z])
    G = Categorical.from_codes(codes, LEVELS, drop_first=True)
    onehot = (codes[:, None] == np.arange(1, LEVELS)).astype(float)
    mean = w @ Z / w.sum()
    expected = (Z, Z @ b, Z @ B, Z.T @ v, ones.T @ (w[:, None] * ones), ones.T @ v, w @ Z**2,
                np.sqrt(w @ (Z - mean) ** 2 / w.sum()), onehot.T @ (w[:, None] * Z),
                Z.T @ (w[:, None] * Z), Z.T @ np.cos(Z @ b))
    for name, X in _layouts(Z):
        got = _products(X, G, b, B, v, w)
        for k, (a, e) in enumerate(zip(got, expected, strict=True)):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12, err_msg=f"{name} {k}")


@pytest.mark.usefixtures("small_blocks")
def test_plain_array_fit_equals_aligned_and_dense(data):
    Z, codes, y = data
    pen = lj.penalties.L2(1e-3)
    G = Categorical.from_codes(codes, LEVELS, drop_first=True)
    aligned = aligned_empty(Z.shape)
    aligned[...] = Z
    plain = _misaligned(Z)
    assert isinstance(Split((G, Dense(plain))).astype(jnp.float64).blocks[1], InPlaceDense)
    assert isinstance(Split((G, Dense(aligned))).astype(jnp.float64).blocks[1], Dense)
    by_columns = Dense(np.asfortranarray(Z)).astype(jnp.float64)   # F-ordered: its columns
    assert isinstance(by_columns, InPlaceDense) and not by_columns.by_rows
    onehot = (codes[:, None] == np.arange(1, LEVELS)).astype(float)
    dense = lj.fit(np.column_stack([onehot, Z]), y, "poisson", penalty=pen, solver="newton")
    newton_cg = lj.solvers.NewtonCG(tol=1e-12)
    for solver, arrays in (("auto", (plain, aligned)), (newton_cg, (plain,))):
        fits = [lj.fit(Split((G, Dense(Zs))), y, "poisson", penalty=pen, solver=solver)
                for Zs in arrays]
        for a, b in zip(fits, fits[1:] + [dense], strict=True):
            np.testing.assert_allclose(a.coef, b.coef, rtol=0, atol=1e-10, err_msg=str(solver))
            np.testing.assert_allclose(a.intercept, b.intercept, rtol=0, atol=1e-10)


@pytest.mark.usefixtures("small_blocks")
def test_frame_floats_read_in_place(data):
    Z, codes, y = data
    levels = [f"l{i}" for i in range(LEVELS)]
    names = [f"x{j}" for j in range(P)]
    onehot = (codes[:, None] == np.arange(1, LEVELS)).astype(float)
    dense = lj.fit(np.column_stack([onehot, Z]), y, "poisson")
    by_rows = pd.DataFrame(_misaligned(Z), columns=names, copy=False)   # a 2-D array's frame
    by_columns = pd.DataFrame(np.asfortranarray(Z), columns=names, copy=False)
    for df in (by_rows, by_columns):
        df.insert(0, "g", pd.Categorical.from_codes(codes, levels))
        design, _ = encode_frame(df)
        assert isinstance(design.blocks[1], InPlaceDense)
        assert np.shares_memory(np.asarray(design.blocks[1].parts[0]), df["x0"].to_numpy())
        fit = lj.fit(df, y, "poisson")
        np.testing.assert_allclose(fit.coef, dense.coef, rtol=0, atol=1e-10)
        np.testing.assert_allclose(fit.intercept, dense.intercept, rtol=0, atol=1e-10)


@pytest.mark.usefixtures("small_blocks")
def test_non_finite_refused(data):
    Z, codes, y = data
    bad = _misaligned(Z)
    bad[N - 3, 2] = np.nan
    X = Split((Categorical.from_codes(codes, LEVELS, drop_first=True), Dense(bad)))
    with pytest.raises(ValueError, match="non-finite"):
        lj.fit(X, y, "poisson")
