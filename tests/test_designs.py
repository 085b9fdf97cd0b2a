"""Structured designs (`linjax.designs`): every product equals the dense matrix's own (numpy),
under jit, vmap over the coefficients and grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from linjax.designs import Categorical, Dense, Sparse, Split, cross

N = 40
TOL = 1e-12


def _one_hot(codes, n_levels, drop_first):
    full = (codes[:, None] == np.arange(n_levels)).astype(float)
    return full[:, 1:] if drop_first else full


@pytest.fixture(scope="module")
def cases():
    """(name, design, its dense matrix built with numpy/scipy)."""
    rng = np.random.default_rng(0)
    A = sp.random(N, 6, density=0.3, format="lil", random_state=1)
    A[3, :] = 0.0  # an empty row
    A = A.tocsr()
    D = rng.normal(size=(N, 3))
    c1 = rng.integers(0, 5, N)
    c1[c1 == 2] = 3  # a level without rows
    c2 = rng.integers(0, 3, N)
    cat1 = Categorical.from_codes(c1, 5, drop_first=True)
    cat2 = Categorical.from_codes(c2, 3)
    dense_c1, dense_c2 = _one_hot(c1, 5, True), _one_hot(c2, 3, False)
    split = Split((Dense(jnp.asarray(D)), cat1, Sparse.from_scipy(A.tocsc()), cat2))
    return [
        ("dense", Dense(jnp.asarray(D)), D),
        ("sparse", Sparse.from_scipy(A), A.toarray()),
        ("categorical", cat1, dense_c1),
        ("categorical_full", cat2, dense_c2),
        ("split", split, np.column_stack([D, dense_c1, A.toarray(), dense_c2])),
    ]


def _vectors(p, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=p), rng.normal(size=(p, 2)), rng.normal(size=N),
            rng.normal(size=(N, 2)), rng.uniform(0.0, 2.0, size=N))


def test_products_equal_dense(cases):
    for name, X, M in cases:
        b, B, v, V, w = _vectors(M.shape[1])
        assert X.shape == M.shape, name
        np.testing.assert_allclose(X.to_dense(), M, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X @ b, M @ b, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X @ B, M @ B, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.rmatvec(v), M.T @ v, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.rmatvec(V), M.T @ V, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.gram(jnp.asarray(w)), M.T @ (w[:, None] * M), atol=TOL,
                                   err_msg=name)


@pytest.mark.parametrize("intercept", [False, True])
def test_weighted_products_equal_dense(cases, intercept):
    for name, X, M in cases:
        _, _, r, _, s = _vectors(M.shape[1], seed=2)
        Z = np.column_stack([np.ones(N), M]) if intercept else M
        hess, grad = X.weighted_products(jnp.asarray(s), jnp.asarray(r), intercept)
        np.testing.assert_allclose(hess, Z.T @ (s[:, None] * Z), atol=TOL, err_msg=name)
        np.testing.assert_allclose(grad, r @ Z, atol=TOL, err_msg=name)


def test_column_means_and_stds_equal_dense(cases):
    for name, X, M in cases:
        w = _vectors(M.shape[1], seed=3)[-1]
        mean = w @ M / w.sum()
        std = np.sqrt(w @ (M - mean) ** 2 / w.sum())
        np.testing.assert_allclose(X.column_means(jnp.asarray(w)), mean, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.column_stds(jnp.asarray(w)), std, atol=TOL, err_msg=name)
        np.testing.assert_allclose(X.column_stds(), M.std(axis=0), atol=TOL, err_msg=name)


def test_cross_products_equal_dense(cases):
    blocks = {name: (X, M) for name, X, M in cases if name != "split"}
    w = _vectors(1, seed=4)[-1]
    for a, (Xa, Ma) in blocks.items():
        for b, (Xb, Mb) in blocks.items():
            np.testing.assert_allclose(cross(Xa, Xb, jnp.asarray(w)), Ma.T @ (w[:, None] * Mb),
                                       atol=TOL, err_msg=f"{a} x {b}")


def test_jit_vmap_grad(cases):
    matvec = jax.jit(lambda X, b: X @ b)
    products = jax.jit(lambda X, s, r: X.weighted_products(s, r, True))
    for name, X, M in cases:
        b, B, v, _, w = _vectors(M.shape[1], seed=5)
        np.testing.assert_allclose(matvec(X, b), M @ b, atol=TOL, err_msg=name)
        hess, grad = products(X, jnp.asarray(w), jnp.asarray(v))
        Z = np.column_stack([np.ones(N), M])
        np.testing.assert_allclose(hess, Z.T @ (w[:, None] * Z), atol=TOL, err_msg=name)
        rows = jax.vmap(lambda c, X=X: X @ c)(B.T)  # vmap over the coefficients
        np.testing.assert_allclose(rows, (M @ B).T, atol=TOL, err_msg=name)
        loss = jax.grad(lambda c, X=X, v=v: jnp.sum(jnp.sin(X @ c) * v))(b)
        np.testing.assert_allclose(loss, M.T @ (np.cos(M @ b) * v), atol=TOL, err_msg=name)


def test_grad_through_sparse_values():
    A = sp.random(N, 6, density=0.3, format="csr", random_state=2)
    X = Sparse.from_scipy(A)
    b = np.linspace(-1, 1, 6)
    g = jax.grad(lambda data: jnp.sum((Sparse(data, X.cols, X.rows, X.shape) @ b) ** 2))(X.data)
    rows = np.repeat(np.arange(N), np.diff(A.indptr))
    np.testing.assert_allclose(g, 2 * (A @ b)[rows] * b[A.indices], atol=TOL)


def test_bcoo_matches_scipy():
    from jax.experimental import sparse as jsparse

    A = sp.random(N, 6, density=0.3, format="coo", random_state=3)
    X = Sparse.from_bcoo(jsparse.BCOO.from_scipy_sparse(A))
    np.testing.assert_allclose(X.to_dense(), A.toarray(), atol=TOL)
    assert X.max_row_nnz == int(np.diff(A.tocsr().indptr).max())


def test_categorical_codes_checked():
    with pytest.raises(ValueError, match="codes: must lie in 0..2"):
        Categorical.from_codes(np.array([0, 1, 3]), 3)
    with pytest.raises(ValueError, match="codes: expected a 1-D array of integers"):
        Categorical.from_codes(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="n_levels: 1 level"):
        Categorical.from_codes(np.zeros(4, int), 1, drop_first=True)


def test_sparse_gram_by_row_blocks():
    """A full row makes the pair blocks small (rows per block < n, ragged tail too)."""
    A = sp.random(N - 1, 300, density=0.02, format="csr", random_state=4)
    A = sp.vstack([sp.csr_matrix(np.linspace(0.5, 1.5, 300)), A]).tocsr()
    X = Sparse.from_scipy(A)
    w = np.linspace(0.1, 2.0, N)
    M = A.toarray()
    np.testing.assert_allclose(X.gram(jnp.asarray(w)), M.T @ (w[:, None] * M), atol=TOL)


# --- lj.fit with a design: the same fit as the dense matrix --------------------------------

FIT_N = 200
FIT_TOL = 1e-10


@pytest.fixture(scope="module")
def fit_data():
    rng = np.random.default_rng(7)
    D = rng.normal(size=(FIT_N, 2))
    c1, c2 = rng.integers(0, 4, FIT_N), rng.integers(0, 3, FIT_N)
    split = Split((Dense(jnp.asarray(D)), Categorical.from_codes(c1, 4, drop_first=True),
                   Categorical.from_codes(c2, 3, drop_first=True)))
    A = sp.random(FIT_N, 5, density=0.4, format="csr", random_state=8)
    eta = 0.3 * D[:, 0] - 0.2 * D[:, 1] + 0.25 * c1 - 0.1 * c2 + 0.5 * A @ np.ones(5)
    y = rng.poisson(np.exp(eta - 0.5)).astype(float)
    return {"split": (split, np.asarray(split.to_dense())), "sparse": (A, A.toarray())}, y


def _solver_cases():
    from linjax.penalties import L1, L2
    from linjax.solvers import ProximalGradient

    # FISTA's default tolerance (1e-8 on the gradient mapping) is looser than FIT_TOL: two
    # fits agree to FIT_TOL only when both are converged past it
    return [("newton", None), ("lbfgs", None), ("newton", L2(0.01)), ("lbfgs", L2(0.01)),
            ("cd", L1(0.005)), (ProximalGradient(tol=1e-12), L1(0.005))]


@pytest.mark.parametrize("solver,penalty", _solver_cases())
def test_fit_equals_dense_fit(fit_data, solver, penalty):
    import linjax as lj

    designs, y = fit_data
    for name, (X, M) in designs.items():
        got = lj.fit(X, y, "poisson", penalty=penalty, solver=solver)
        want = lj.fit(M, y, "poisson", penalty=penalty, solver=solver)
        assert int(got.status) == 0, name
        np.testing.assert_allclose(got.coef, want.coef, atol=FIT_TOL, err_msg=name)
        np.testing.assert_allclose(got.intercept, want.intercept, atol=FIT_TOL, err_msg=name)
        np.testing.assert_allclose(got.objective, want.objective, rtol=1e-12, err_msg=name)


def test_fit_gaussian_auto_and_weights(fit_data):
    """Gaussian identity: "auto" takes Newton for a design (least squares needs the rows),
    which reaches the dense least-squares fit; weights and an offset go through too."""
    import linjax as lj

    (X, M), y = fit_data[0]["split"], fit_data[1]
    w = np.linspace(0.5, 2.0, FIT_N)
    offset = np.linspace(-0.1, 0.1, FIT_N)
    got = lj.fit(X, y, weights=w, offset=offset)
    want = lj.fit(M, y, weights=w, offset=offset)
    assert got.solver == "newton" and want.solver == "lstsq"
    np.testing.assert_allclose(got.coef, want.coef, atol=FIT_TOL)


def test_fit_under_jit_vmap_grad(fit_data):
    import linjax as lj

    (X, M), y = fit_data[0]["split"], fit_data[1]
    M = jnp.asarray(M)

    def coef(X, y):
        return lj.fit(X, y, "poisson").coef

    np.testing.assert_allclose(jax.jit(coef)(X, y), coef(M, y), atol=FIT_TOL)
    ys = jnp.stack([y, y[::-1]])
    np.testing.assert_allclose(jax.vmap(coef, (None, 0))(X, ys), jax.vmap(coef, (None, 0))(M, ys),
                               atol=FIT_TOL)
    grad = jax.grad(lambda y, X: jnp.sum(coef(X, y)))
    np.testing.assert_allclose(grad(y, X), grad(y, M), atol=FIT_TOL)


def test_fit_refusals_and_rank_warning(fit_data):
    import linjax as lj
    from linjax.inference import RankWarning

    X, y = fit_data[0]["split"][0], fit_data[1]
    with pytest.raises(ValueError, match="solver: LeastSquares needs the rows"):
        lj.fit(X, y, solver="lstsq")
    with pytest.raises(ValueError, match="multiclass families need a dense X"):
        lj.fit(X, (y > 1).astype(float), lj.families.Multinomial())
    bad = sp.csr_matrix(np.where(np.eye(FIT_N, 3) > 0, np.nan, 0.0))
    with pytest.raises(ValueError, match="X: 3 non-finite value"):
        lj.fit(bad, y, "poisson")
    full = Split((X.blocks[0], Categorical.from_codes(np.asarray(X.blocks[1].codes), 4)))
    with pytest.warns(RankWarning, match=r"column\(s\) \[5\]"):
        lj.fit(full, y, "poisson")


# --- DataFrames: category/string columns become categorical blocks ---------------------------


@pytest.fixture(scope="module")
def frame_data():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(11)
    df = pd.DataFrame({
        "x": rng.normal(size=FIT_N),
        "region": pd.Categorical(rng.choice(list("abc"), FIT_N), categories=list("cab")),
        "kind": rng.choice(["u", "v", "w"], FIT_N),
        "z": rng.normal(size=FIT_N),
    })
    y = rng.poisson(np.exp(0.2 * df.x + 0.3 * (df.kind == "v"))).astype(float)
    # The reference coding, independently: pandas' dummies (levels in category order, then
    # sorted strings), first level dropped, columns in the frame's order.
    dummies = [df[["x"]], pd.get_dummies(df.region, prefix="region", prefix_sep="[",
                                         dtype=float).iloc[:, 1:],
               pd.get_dummies(df.kind, prefix="kind", prefix_sep="[", dtype=float).iloc[:, 1:],
               df[["z"]]]
    M = pd.concat(dummies, axis=1)
    names = ("x", "region[a]", "region[b]", "kind[v]", "kind[w]", "z")
    return df, y, M.to_numpy(), names


def test_frame_fit_equals_dummy_fit(frame_data):
    import linjax as lj
    from linjax.designs.frames import encode_frame

    df, y, M, names = frame_data
    design, encoding = encode_frame(df)
    assert encoding.names == names
    np.testing.assert_allclose(design.to_dense(), M, atol=0)
    got, want = lj.fit(df, y, "poisson"), lj.fit(M, y, "poisson")
    np.testing.assert_allclose(got.coef, want.coef, atol=FIT_TOL)
    # R's coding without an intercept: the first factor keeps every level, the next drops one
    no_icpt = lj.fit(df, y, "poisson", fit_intercept=False)
    assert no_icpt.coef.shape == (7,)
    assert encode_frame(df, drop_first=False)[1].names[1:4] == ("region[c]", "region[a]",
                                                              "region[b]")


def test_frame_summarize_names(frame_data):
    import linjax as lj

    df, y, M, names = frame_data
    result = lj.fit(df, y, "poisson")
    got = lj.inference.summarize(result, df, y)
    want = lj.inference.summarize(result, M, y)
    assert got.names == ("Intercept",) + names
    np.testing.assert_allclose(got.bse, want.bse, rtol=1e-12)
    assert "region[a]" in str(got)


def test_frame_unseen_level_and_missing(frame_data):
    from linjax.designs.frames import encode_frame

    df, _, M, _ = frame_data
    _, encoding = encode_frame(df)
    new = df.head(3).copy()
    new["kind"] = ["u", "q", "w"]
    with pytest.raises(ValueError, match="column 'kind' has level 'q'"):
        encoding.transform(new)
    mapped = encoding.transform(new, unseen="reference").to_dense()
    np.testing.assert_allclose(mapped[1, 3:5], 0.0)  # 'q' -> the reference level 'u'
    np.testing.assert_allclose(mapped[2, 3:5], [0.0, 1.0])
    broken = df.copy()
    broken.loc[4, "kind"] = None
    with pytest.raises(ValueError, match="column 'kind' has 1 missing value"):
        encode_frame(broken)


# --- lj.glm: formulas with C() terms as categorical blocks -----------------------------------


@pytest.fixture(scope="module")
def formula_data():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("formulaic")
    rng = np.random.default_rng(12)
    df = pd.DataFrame({"x1": rng.normal(size=FIT_N), "x2": rng.uniform(1, 3, FIT_N),
                       "region": rng.choice(list("abcd"), FIT_N),
                       "year": rng.choice([2019, 2020, 2021], FIT_N)})
    df["y"] = rng.poisson(np.exp(0.2 * df.x1 + 0.3 * np.log(df.x2) + 0.2 * (df.region == "b")))
    return df


def _statsmodels_names(name):
    """'C(region)[T.b]' -> 'region[b]', 'C(region)[a]' -> 'region[a]'."""
    import re

    return re.sub(r"^C\((\w+)\)\[(?:T\.)?(.*)\]$", r"\1[\2]", name)


@pytest.mark.parametrize("formula", ["y ~ x1 + C(region) + np.log(x2) + C(year)",
                                     "y ~ C(region) + x1 + region:x1 - 1"])
def test_glm_matches_statsmodels(formula_data, formula):
    sm = pytest.importorskip("statsmodels.api")
    smf = pytest.importorskip("statsmodels.formula.api")
    import linjax as lj

    df = formula_data
    got = lj.glm(formula, df, family="poisson")
    ref = smf.glm(formula, df, family=sm.families.Poisson()).fit(tol=1e-12)
    want = {_statsmodels_names(k): v for k, v in ref.params.items()}
    assert set(got.coef) == set(want)
    for name, value in got.coef.items():
        assert abs(value - want[name]) < 1e-8, name
    new = df.head(5)
    np.testing.assert_allclose(got.predict(new), ref.predict(new), rtol=1e-8)
    table = got.summary()
    want_bse = {_statsmodels_names(k): v for k, v in ref.bse.items()}
    for name, bse in zip(table.names, np.asarray(table.bse), strict=True):
        assert abs(bse - want_bse[name]) < 1e-6 * want_bse[name], name


def test_glm_blocks_and_unseen_level(formula_data):
    import linjax as lj
    from linjax.designs import Categorical, Split

    fit = lj.glm("y ~ x1 + C(region) + C(year)", formula_data, family="poisson")
    design = fit.design(formula_data)
    assert isinstance(design, Split)
    assert [type(b).__name__ for b in design.blocks] == ["Dense", "Categorical", "Categorical"]
    assert isinstance(design.blocks[1], Categorical) and design.blocks[1].drop_first
    new = formula_data.head(2).copy()
    new.loc[0, "region"] = "z"
    with pytest.raises(ValueError, match="column 'region' has level 'z'"):
        fit.predict(new)
    assert np.all(np.isfinite(np.asarray(fit.predict(new, unseen="reference"))))
