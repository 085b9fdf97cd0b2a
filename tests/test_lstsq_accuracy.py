"""Least-squares accuracy on hard designs against exact answers.

The data are float64 numbers, so they are exact rationals: the reference solution and
standard errors are computed from them with `fractions.Fraction` (small designs) or mpmath
at 60 significant digits (normal equations, whose conditioning ~1e22 leaves ~38 correct
digits). We count the correct significant digits of linjax's float64 coefficients and
standard errors (`lj.inference.summarize`), the worst over the coefficients.
"""

from fractions import Fraction

import mpmath
import numpy as np
import pytest

import linjax as lj
from linjax.solvers import LeastSquares

N = 30


def exact_ols(X, y, digits=60):
    """Coefficients (intercept first) and classical standard errors, to `digits` digits."""
    with mpmath.workdps(digits):
        A = mpmath.matrix([[1] + [mpmath.mpf(float(v)) for v in row] for row in X])
        b = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
        G = A.T * A
        Ginv = mpmath.inverse(G)
        beta = Ginv * (A.T * b)
        res = b - A * beta
        s2 = sum(res[i] ** 2 for i in range(A.rows)) / (A.rows - A.cols)
        se = [mpmath.sqrt(s2 * Ginv[j, j]) for j in range(A.cols)]
        return [beta[j] for j in range(A.cols)], se


def exact_ols_fraction(X, y):
    """The same coefficients in exact rational arithmetic (Gauss-Jordan on X'X)."""
    A = [[Fraction(1)] + [Fraction(float(v)) for v in row] for row in X]
    b = [Fraction(float(v)) for v in y]
    k = len(A[0])
    M = [[sum(r[i] * r[j] for r in A) for j in range(k)] + [sum(r[i] * bi for r, bi in
                                                              zip(A, b, strict=True))]
         for i in range(k)]
    for c in range(k):
        piv = next(r for r in range(c, k) if M[r][c] != 0)
        M[c], M[piv] = M[piv], M[c]
        M[c] = [v / M[c][c] for v in M[c]]
        for r in range(k):
            if r != c and M[r][c] != 0:
                M[r] = [a - M[r][c] * bb for a, bb in zip(M[r], M[c], strict=True)]
    return [M[i][k] for i in range(k)]


def correct_digits(got, exact):
    """Worst-case number of correct significant digits of `got` against `exact`."""
    worst = np.inf
    for g, e in zip(np.asarray(got, float), exact, strict=True):
        e = mpmath.mpf(e)
        err = abs(mpmath.mpf(float(g)) - e) / abs(e)
        worst = min(worst, 17.0 if err == 0 else float(-mpmath.log10(err)))
    return min(worst, 17.0)


def scaled_condition(X):
    A = np.column_stack([np.ones(len(X)), X])
    A = A / np.linalg.norm(A, axis=0)
    s = np.linalg.svd(A, compute_uv=False)
    return s[0] / s[-1]


def polynomial(degree, lo, hi, seed):
    x = np.linspace(lo, hi, N)
    X = np.column_stack([x**j for j in range(1, degree + 1)])
    y = np.random.default_rng(seed).normal(size=N) * 0.1 + np.sin(3 * x)
    return X, y


def longley_like(eps, seed):
    """Near-collinear columns: a trend, a second trend off by eps, and large offsets."""
    rng = np.random.default_rng(seed)
    t = np.arange(N, dtype=float)
    X = np.column_stack([1e4 + 37 * t + rng.normal(size=N),
                         1e4 + 37 * t + rng.normal(size=N) * eps,
                         t**2 + rng.normal(size=N), 3e5 + rng.normal(size=N) * 100])
    y = X @ [1.0, -1.0, 0.5, 1e-3] + rng.normal(size=N)
    return X, y


def digits_reached(X, y, method="qr"):
    res = lj.fit(X, y, solver=LeastSquares(method=method))
    beta, se = exact_ols(X, y)
    got = np.r_[float(res.params["intercept"]), np.asarray(res.params["coef"])]
    summary = lj.inference.summarize(res, X, y)
    return correct_digits(got, beta), correct_digits(np.asarray(summary.bse), se)


def test_fraction_and_mpmath_references_agree():
    X, y = polynomial(4, 1.0, 2.0, 0)
    exact = exact_ols_fraction(X, y)
    approx, _ = exact_ols(X, y)
    with mpmath.workdps(60):
        for e, a in zip(exact, approx, strict=True):
            assert abs(mpmath.mpf(e.numerator) / e.denominator - a) <= abs(a) * \
                mpmath.mpf(10) ** -30


DESIGNS = [(d, lo, hi) for d in range(3, 11) for lo, hi in ((0.0, 1.0), (-1.0, 1.0), (1.0, 2.0))]


@pytest.mark.parametrize("method", ["qr", "auto"])
@pytest.mark.parametrize("degree,lo,hi", DESIGNS)
def test_polynomial_designs(degree, lo, hi, method):
    """>= 7 correct digits (coefficients and standard errors) while the column-scaled
    condition number is below 1e10; reported (and at least 5) beyond. "auto" tries the
    normal equations first (N >= p); its guard must keep these digits."""
    X, y = polynomial(degree, lo, hi, seed=degree)
    cond = scaled_condition(X)
    coef_digits, se_digits = digits_reached(X, y, method)
    print(f"degree {degree} on [{lo}, {hi}]: scaled cond {cond:.1e}, coefficient digits "
          f"{coef_digits:.1f}, standard-error digits {se_digits:.1f}")
    if cond < 1e10:
        assert coef_digits >= 7 and se_digits >= 7
    else:   # beyond the promise: still no garbage
        assert coef_digits >= 5 and se_digits >= 5


def test_degree_10_report(capsys):
    """The hardest designs: print the digits reached (see the report in the commit log)."""
    lines = []
    for lo, hi in ((0.0, 1.0), (-1.0, 1.0), (1.0, 2.0)):
        X, y = polynomial(10, lo, hi, seed=10)
        for method in ("qr", "svd"):
            c, s = digits_reached(X, y, method)
            lines.append(f"degree 10 on [{lo}, {hi}] ({method}): scaled cond "
                         f"{scaled_condition(X):.1e}, coef {c:.1f} digits, se {s:.1f} digits")
            assert c >= 5 and s >= 5
    with capsys.disabled():
        print("\n" + "\n".join(lines))


@pytest.mark.parametrize("method", ["qr", "auto"])
@pytest.mark.parametrize("eps", [1e-2, 1e-4, 1e-6])
def test_longley_like(eps, method):
    X, y = longley_like(eps, seed=3)
    cond = scaled_condition(X)
    coef_digits, se_digits = digits_reached(X, y, method)
    print(f"longley-like eps={eps}: scaled cond {cond:.1e}, coef {coef_digits:.1f}, "
          f"se {se_digits:.1f}")
    assert cond < 1e10
    assert coef_digits >= 7 and se_digits >= 7


def test_rank_deficient_polynomial_is_min_norm():
    """An exactly repeated power column: minimum-norm solution and rank reported."""
    X, y = polynomial(4, 0.0, 1.0, 0)
    Xd = np.column_stack([X, X[:, 1]])
    res = lj.fit(Xd, y, solver=LeastSquares())
    assert int(res.info.rank) == 4 and int(res.status) != 0
    Xc = Xd - Xd.mean(0)
    np.testing.assert_allclose(np.asarray(res.params["coef"]), np.linalg.pinv(Xc) @ (y - y.mean()),
                               rtol=1e-8)
