"""The fast paths of fit_batch's shared-design Newton (linjax.scale.shared_newton):
closed-form canonical models vs autodiff, the unrolled batched Cholesky vs solve_psd,
singular problems, compaction of the last problems, chunking, the Y validation shortcut."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax import validation
from linjax.families import Binomial, Gamma, Gaussian, NegativeBinomial, Poisson
from linjax.penalties import L2, NoPenalty
from linjax.scale import batch, fit_batch
from linjax.scale import shared_newton as sn
from linjax.solvers import Newton, Status
from linjax.solvers.newton import solve_psd

M, N, P = 24, 90, 3


def stacked(params):
    return np.column_stack([np.asarray(params["intercept"]), np.asarray(params["coef"])])


def data(family, m=M, n=N, p=P, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = rng.normal(scale=0.4, size=(m, p))
    eta = 0.3 + beta @ X.T
    if family == "poisson":
        Y = rng.poisson(np.exp(eta)).astype(float)
    elif family == "binomial":
        Y = (rng.random((m, n)) < 1 / (1 + np.exp(-eta))).astype(float)
        Y[0, :10] = np.linspace(0, 1, 10)                       # proportions too
    else:
        Y = eta + rng.normal(scale=0.5, size=(m, n))
    return X.astype(dtype), Y.astype(dtype)


FAMILIES = {"poisson": Poisson(), "binomial": Binomial(), "gaussian": Gaussian()}


def model(X, Y, W, O, family, closed_form, penalty=None, fit_intercept=True):
    return sn.make_model(jnp.asarray(X), jnp.asarray(Y), W, O, family,
                         penalty or NoPenalty(), fit_intercept, Newton(), closed_form)


def normalized(w, n):
    w = jnp.asarray(w).reshape((-1, n))
    return w / jnp.sum(w, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("shared", [True, False], ids=["shared-w-o", "per-problem-w-o"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_closed_form_value_gradient_hessian_equal_autodiff(name, shared, fit_intercept):
    family = FAMILIES[name]
    X, Y = data(name)
    rng = np.random.default_rng(1)
    shape = (1, N) if shared else (M, N)
    W = normalized(rng.uniform(0.5, 2.0, size=shape), N)
    O = jnp.asarray(rng.uniform(-0.3, 0.3, size=shape))
    k = P + int(fit_intercept)
    B = jnp.asarray(rng.normal(scale=0.5, size=(M, k)))
    fast = model(X, Y, W, O, family, True, L2(0.1), fit_intercept)
    slow = model(X, Y, W, O, family, False, L2(0.1), fit_intercept)
    assert type(fast) is sn.CANONICAL[(type(family), type(family.link))]
    assert type(slow) is sn.SharedDesign
    (f_fast, aux_fast), (f_slow, aux_slow) = fast.trial(B), slow.trial(B)
    np.testing.assert_allclose(f_fast, f_slow, rtol=1e-13, atol=1e-14)
    for (g1, h1), (g2, h2) in [(fast.system(B, aux_fast), slow.system(B, aux_slow))]:
        np.testing.assert_allclose(g1, g2, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(h1, h2, rtol=1e-11, atol=1e-13)
    # and the objective is the weighted half deviance + penalty as lj.objective computes it
    coef, b0 = (B[:, 1:], B[:, 0]) if fit_intercept else (B, jnp.zeros(M))
    for i in (0, M - 1):
        o = O[0] if shared else O[i]
        w = W[0] if shared else W[i]
        ref = lj.objective({"coef": coef[i], "intercept": b0[i]}, X, Y[i], family,
                           weights=w, offset=o, penalty=L2(0.1))
        np.testing.assert_allclose(float(f_fast[i]), float(ref), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_closed_form_derivatives_match_finite_differences(name):
    """Gradient of the closed-form objective against central differences of itself."""
    family = FAMILIES[name]
    X, Y = data(name, m=3)
    W = normalized(np.ones(N), N)
    fast = model(X, Y, W, None, family, True)
    B = jnp.asarray(np.random.default_rng(2).normal(scale=0.3, size=(3, P + 1)))
    _, aux = fast.trial(B)
    grad, Hp = fast.system(B, aux)
    _, _, packed = sn.pair_indices(P + 1)
    H = np.asarray(Hp)[:, packed]
    h = 1e-6
    for j in range(P + 1):
        e = jnp.zeros(P + 1).at[j].set(h)
        fd = (fast.value(B + e) - fast.value(B - e)) / (2 * h)
        np.testing.assert_allclose(fd, grad[:, j], rtol=1e-6, atol=1e-9)
        g_plus = fast.system(B + e, fast.trial(B + e)[1])[0]
        g_minus = fast.system(B - e, fast.trial(B - e)[1])[0]
        np.testing.assert_allclose((g_plus - g_minus) / (2 * h), H[:, :, j], rtol=1e-6,
                                   atol=1e-9)


def test_binomial_closed_form_is_stable_for_large_eta():
    """Separated data push |eta| to hundreds: loss, gradient and curvature stay finite and
    equal to autodiff of Binomial.nll (to 1e-16 absolute: where sigmoid(eta)(1 - sigmoid(eta))
    is ~1e-10, autodiff's curvature carries the cancellation of 1 - sigmoid, the closed form
    e / (1 + e)^2 does not)."""
    X, Y = data("binomial", m=2)
    W = normalized(np.ones(N), N)
    B = jnp.asarray([[0.0, 300.0, -250.0, 10.0], [1.0, -40.0, 35.0, 0.0]])
    fast, slow = (model(X, Y, W, None, Binomial(), cf) for cf in (True, False))
    (f1, a1), (f2, a2) = fast.trial(B), slow.trial(B)
    assert np.all(np.isfinite(f1))
    np.testing.assert_allclose(f1, f2, rtol=1e-13)
    for u, v in zip(fast.system(B, a1), slow.system(B, a2), strict=True):
        assert np.all(np.isfinite(u))
        np.testing.assert_allclose(u, v, rtol=1e-11, atol=1e-16)


def test_other_links_and_families_use_autodiff():
    X, Y = data("poisson")
    W = normalized(np.ones(N), N)
    for fam in (Poisson(link=lj.links.Identity()), Binomial(link=lj.links.Probit()),
                Gamma(link=lj.links.Log()), NegativeBinomial(alpha=0.5)):
        assert type(model(X, np.abs(Y) + 0.5 * (fam.name == "gamma"), W, None, fam, True)) \
            is sn.SharedDesign


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_batch_closed_form_equals_autodiff_newton(name, dtype):
    """The whole iteration: same coefficients, iteration counts and statuses."""
    family = FAMILIES[name]
    X, Y = data(name, dtype=dtype)
    rng = np.random.default_rng(3)
    W = normalized(rng.uniform(0.5, 2.0, size=(M, N)).astype(dtype), N)
    O = jnp.asarray(rng.uniform(-0.2, 0.2, size=(1, N)).astype(dtype))
    runs = []
    for cf in (True, False):
        mod = model(X, Y, W, O, family, cf, L2(0.05))
        runs.append(jax.jit(lambda mod=mod: sn.newton(mod, None, Newton()))())
    (B1, f1, it1, st1, _), (B2, f2, it2, st2, _) = runs
    atol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(B1, B2, atol=atol)
    np.testing.assert_allclose(f1, f2, rtol=1e-12 if dtype == np.float64 else 3e-6)
    assert np.all(np.asarray(st1) == 0) and np.all(np.asarray(st2) == 0)
    if dtype == np.float64:
        np.testing.assert_array_equal(it1, it2)


@pytest.mark.parametrize("name", ["binomial", "gaussian"])
def test_fit_batch_binomial_gaussian_match_fit_loop(name):
    X, Y = data(name, m=6)
    rng = np.random.default_rng(4)
    w = rng.uniform(0.5, 2.0, size=(6, N))
    o = rng.uniform(-0.2, 0.2, size=N)
    res = fit_batch(X, Y, family=name, weights=w, offset=o, solver="newton", gram="pairs")
    for i in range(6):
        one = lj.fit(X, Y[i], family=name, weights=w[i], offset=o, solver="newton")
        np.testing.assert_allclose(stacked(res.params)[i], np.r_[one.intercept, one.coef],
                                   atol=1e-10)
        np.testing.assert_allclose(float(res.objective[i]), float(one.objective), rtol=1e-12)


def test_poisson_float32_matches_float64():
    X, Y = data("poisson", m=40)
    r64 = fit_batch(X, Y, family="poisson")
    r32 = fit_batch(X.astype(np.float32), Y.astype(np.float32), family="poisson")
    assert r32.params["coef"].dtype == jnp.float32 and np.all(np.asarray(r32.converged))
    np.testing.assert_allclose(stacked(r32.params), stacked(r64.params), atol=2e-4)


def test_affine_start_detection():
    assert sn._affine_shift(Poisson().starting_mu) == pytest.approx(0.1)
    assert sn._affine_shift(lambda y: y) is None                 # a = 0: log(0) start
    assert sn._affine_shift(lambda y: (y + 0.5) / 2) is None
    assert sn._affine_shift(lambda y: jnp.maximum(y, 0.1)) is None


# ----------------------------------------------------------------------------- small solves
def packed_of(H):
    rows, cols, _ = sn.pair_indices(H.shape[-1])
    return jnp.asarray(H)[:, rows, cols]


@pytest.mark.parametrize("k", [1, 2, 5, 11, sn.UNROLL_MAX + 3])
def test_solve_packed_equals_solve_psd(k):
    rng = np.random.default_rng(k)
    m = 7
    A = rng.normal(size=(m, k + 3, k))
    H = np.einsum("mni,mnj->mij", A, A) + 1e-3 * np.eye(k)
    b = rng.normal(size=(m, k))
    # problem 3: singular (a repeated column), problem 5: rank one
    A3 = A[3].copy()
    A3[:, -1] = A3[:, 0]
    H[3] = A3.T @ A3 if k > 1 else 0.0
    H[5] = np.outer(A[5, 0], A[5, 0])
    for lapack in (True, False):
        x, singular = sn.solve_packed(packed_of(H), jnp.asarray(b), lapack=lapack)
        for i in range(m):
            ref, ref_singular = solve_psd(jnp.asarray(H[i]), jnp.asarray(b[i]))
            assert bool(singular[i]) == bool(ref_singular), i
            np.testing.assert_allclose(x[i], ref, rtol=1e-7, atol=1e-8 * np.abs(ref).max())
        if k > 1:
            assert bool(singular[3]) and bool(singular[5])
        assert not bool(singular[0])


@pytest.mark.parametrize("k", [1, 2, 3, 11])
def test_jacobi_eigh_matches_numpy(k):
    """Eigenvalues against numpy's LAPACK, the decomposition rebuilds H, V is orthogonal
    (odd k: padded with a zero row and column that is never rotated)."""
    rng = np.random.default_rng(10 + k)
    A = rng.normal(size=(5, k + 2, k))
    A[1, :, -1] = A[1, :, 0]                           # singular
    H = np.einsum("mni,mnj->mij", A, A)
    H[2] = -H[2] + np.diag(np.arange(k))               # indefinite too
    w, V = (np.asarray(a) for a in sn.jacobi_eigh(jnp.asarray(H)))
    scale = np.abs(H).max()
    np.testing.assert_allclose(np.sort(w, axis=1), np.linalg.eigvalsh(H), atol=1e-13 * scale)
    np.testing.assert_allclose(np.einsum("mij,mj,mkj->mik", V, w, V), H, atol=1e-13 * scale)
    np.testing.assert_allclose(np.einsum("mji,mjk->mik", V, V), np.broadcast_to(np.eye(k), H.shape),
                               atol=1e-13)


def test_solve_packed_inactive_problems_skip_the_fallback():
    H = np.stack([np.eye(3), np.zeros((3, 3))])
    b = np.ones((2, 3))
    x, singular = sn.solve_packed(packed_of(H), jnp.asarray(b), jnp.asarray([True, False]))
    np.testing.assert_allclose(x[0], 1.0)
    assert not bool(singular[0]) and bool(singular[1])


def test_duplicated_column_is_singular_with_minimum_norm_answer():
    X, Y = data("poisson", m=5)
    Xd = np.column_stack([X, X[:, 0]])
    res = fit_batch(Xd, Y, family="poisson", gram="pairs")
    assert np.all(np.asarray(res.status) == Status.SINGULAR)
    for i in range(5):
        one = lj.fit(Xd, Y[i], family="poisson", solver="newton")
        assert int(one.status) == Status.SINGULAR
        np.testing.assert_allclose(stacked(res.params)[i], np.r_[one.intercept, one.coef],
                                   atol=1e-6)
        coef = np.asarray(res.coef[i])
        np.testing.assert_allclose(coef[0], coef[-1], rtol=1e-6)


# ----------------------------------------------------------------------------- the loop
def test_slow_tail_problems_equal_fit_loop():
    """Most problems converge in a few iterations, three need many (a near-separated
    binomial): stopped problems stay frozen while those run on, with lj.fit's counts and
    answers."""
    rng = np.random.default_rng(5)
    m, n = 48, 80
    X = rng.normal(size=(n, 2))
    Y = (rng.random((m, n)) < 1 / (1 + np.exp(-X @ [0.5, -0.3]))).astype(float)
    for i, s in ((7, 3.0), (20, 6.0), (33, 10.0)):            # steep but not separated
        Y[i] = (rng.random(n) < 1 / (1 + np.exp(-s * X[:, 0]))).astype(float)
        Y[i, np.argmax(X[:, 0])] = 0.0
        Y[i, np.argmin(X[:, 0])] = 1.0
    res = fit_batch(X, Y, family="binomial", gram="pairs")
    it = np.asarray(res.n_iter)
    assert it.max() > np.median(it) + 1
    for i in (0, 7, 20, 33):
        one = lj.fit(X, Y[i], family="binomial", solver="newton")
        np.testing.assert_allclose(stacked(res.params)[i], np.r_[one.intercept, one.coef],
                                   atol=1e-9)
        assert int(res.n_iter[i]) == int(one.n_iter) and int(res.status[i]) == int(one.status)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_slow_tail_matches_fit_loop(name):
    """A batch whose few steep problems need many more steps than the rest (the tail), with
    per-problem weights and offsets: every problem gets lj.fit's answer, iteration count and
    status (a stopped problem is frozen while the tail runs on)."""
    rng = np.random.default_rng(11)
    m, n = 96, 60
    X, Y = data(name, m=m, n=n, p=2, seed=3)
    if name == "binomial":                                      # slow tail: steep problems
        for i, s in ((5, 4.0), (40, 7.0), (77, 10.0)):
            Y[i] = (rng.random(n) < 1 / (1 + np.exp(-s * X[:, 0]))).astype(float)
            Y[i, np.argmax(X[:, 0])] = 0.0
            Y[i, np.argmin(X[:, 0])] = 1.0
    elif name == "poisson":
        for i, s in ((5, 6.0), (40, 7.0), (77, 8.0)):               # from far: 6+ steps
            Y[i] = rng.poisson(np.exp(s * X[:, 0] - s)).astype(float)
    w = rng.uniform(0.5, 2.0, size=Y.shape)
    o = rng.normal(scale=0.1, size=Y.shape)
    res = fit_batch(X, Y, family=name, weights=w, offset=o, solver="newton", gram="pairs")
    it = np.asarray(res.n_iter)
    if name != "gaussian":                                  # one step: no tail
        assert (it == it.max()).sum() <= 12 and it.max() > np.median(it)
    for i in sorted({0, 5, 40, 77, int(np.argmax(it))}):
        one = lj.fit(X, Y[i], family=name, weights=w[i], offset=o[i], solver="newton")
        np.testing.assert_allclose(stacked(res.params)[i], np.r_[one.intercept, one.coef],
                                   rtol=1e-8, atol=1e-9)
        assert int(res.n_iter[i]) == int(one.n_iter) and int(res.status[i]) == int(one.status)


def test_auto_chunks_equal_one_batch():
    X, Y = data("poisson", m=300, n=40)
    w = np.random.default_rng(6).uniform(0.5, 2, size=Y.shape)
    old = batch.CPU_PAIRS_CHUNK_BYTES
    try:
        batch.CPU_PAIRS_CHUNK_BYTES = 64 * 40 * 8              # chunks of 64 problems
        assert batch.pairs_chunk(300, 40, 8) == 60                 # 5 balanced chunks
        chunked = fit_batch(X, Y, family="poisson", weights=w)
    finally:
        batch.CPU_PAIRS_CHUNK_BYTES = old
    one = fit_batch(X, Y, family="poisson", weights=w, batch_size=300)
    np.testing.assert_allclose(stacked(chunked.params), stacked(one.params), atol=1e-12)
    np.testing.assert_array_equal(np.asarray(chunked.n_iter), np.asarray(one.n_iter))
    assert batch.pairs_chunk(10, 500, 8) is None


# ----------------------------------------------------------------------------- validation
def test_fast_support_check_still_names_the_problem():
    X, Y = data("poisson", m=6)
    assert validation.y_in_support_fast(Y, Poisson())
    bad = Y / (Y.max() + 1)
    bad[4, 3] = 1.5
    with pytest.raises(ValueError, match=r"Y\[4\] \(problem 4\)"):
        fit_batch(X, bad, family="binomial")
    zero = Y + 1.0
    zero[2, 0] = 0.0
    with pytest.raises(ValueError, match=r"Y\[2\] \(problem 2\)"):
        fit_batch(X, zero, family="gamma")
    inf = Y.copy()
    inf[1, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        fit_batch(X, inf, family="poisson")
    with pytest.raises(ValueError, match="alpha > 0"):
        fit_batch(X, Y, family=NegativeBinomial(alpha=np.r_[np.ones(5), -1.0]))


def test_log_positive_within_one_ulp():
    """The start's log (bits and the atanh series, float64) against numpy's on positive normal
    numbers across the exponent range, near 1 and on y + 0.1 for counts."""
    rng = np.random.default_rng(12)
    x = np.concatenate([np.exp(rng.uniform(-707, 709, 200_000)), rng.uniform(0.5, 2.0, 50_000),
                        np.arange(10_000) + 0.1, [np.finfo(float).tiny, 1.0, 2.0, 0.1,
                                                  np.finfo(float).max]])
    got = np.asarray(jax.jit(sn.log_positive)(jnp.asarray(x)))
    ulps = np.abs(got - np.log(x)) / np.spacing(np.abs(np.log(x)))
    assert ulps.max() <= 1.0 and got[x == 1.0][0] == 0.0
    x32 = jnp.asarray(np.arange(1000) + 0.1, jnp.float32)       # other dtypes: jnp.log
    np.testing.assert_array_equal(np.asarray(sn.log_positive(x32)), np.asarray(jnp.log(x32)))


def test_exp_bounded_within_one_ulp():
    """The Poisson trial's exp against numpy's over the clipped range and near 0; NaN kept."""
    rng = np.random.default_rng(13)
    x = np.concatenate([rng.uniform(-707.78, 707.78, 200_000), rng.normal(scale=3, size=50_000),
                        [-707.78, 707.78, 0.0, 1e-300, -1e-300, np.log(2.0)]])
    got = np.asarray(jax.jit(sn.exp_bounded)(jnp.asarray(x)))
    assert (np.abs(got - np.exp(x)) / np.spacing(np.exp(x))).max() <= 1.0
    assert np.isnan(np.asarray(sn.exp_bounded(jnp.array([np.nan])))).all()
    x32 = jnp.linspace(-80.0, 80.0, 1000, dtype=jnp.float32)        # other dtypes: jnp.exp
    np.testing.assert_array_equal(np.asarray(sn.exp_bounded(x32)), np.asarray(jnp.exp(x32)))
