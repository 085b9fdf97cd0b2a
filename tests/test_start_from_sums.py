"""R's start from sums (`linjax.scale.blocks.start_from_sums`), the one start that
fit_blocked and fit_streaming finish: summed over row blocks, it is R's first IRLS step
computed by numpy on all rows, and its fallback is the intercept-only start."""

import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax.scale import blocks
from tests.test_newton_start import _data, _r_start


def _sums(X, y, w, o, family, fit_intercept, fn, *lead):
    total = None
    for rows in np.array_split(np.arange(len(y)), 3):           # three uneven blocks
        part = fn(*lead, *(jnp.asarray(a[rows]) for a in (X, y, w, o)), *(
            (family, fit_intercept) if fn is blocks.start_sums else (fit_intercept,)))
        total = part if total is None else tuple(a + b for a, b in zip(total, part, strict=True))
    return total


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_start_from_block_sums_is_r_first_irls_step(family):
    X, y, w, o = _data(family)
    fam = lj.families.get_family(family)
    sums = _sums(X, y, w, o, fam, True, blocks.start_sums)
    B, fallback = blocks.start_from_sums(
        sums, lj.penalties.NoPenalty(), fam, True,
        lambda B: _sums(X, y, w, o, fam, True, blocks.shift_sums, B))
    np.testing.assert_allclose(np.asarray(B), _r_start(X, y, w, o, family), rtol=1e-10,
                               atol=1e-12)
    # intercept-only start: link(weighted mean of glm.fit's mustart) - weighted mean offset
    mu0 = (y + 0.5) / 2 if family == "binomial" else y + 0.1
    mean_mu0 = np.sum(w * mu0) / np.sum(w)
    link = np.log(mean_mu0 / (1 - mean_mu0)) if family == "binomial" else np.log(mean_mu0)
    expected = np.r_[link - np.sum(w * o) / np.sum(w), np.zeros(X.shape[1])]
    np.testing.assert_allclose(np.asarray(fallback), expected, rtol=1e-12, atol=1e-14)


def test_start_from_sums_without_intercept_has_zero_fallback_and_no_shift():
    X, y, w, o = _data("poisson")
    fam = lj.families.Poisson()
    sums = _sums(X, y, w, o, fam, False, blocks.start_sums)

    def no_pass(B):
        raise AssertionError("no intercept: the shift pass must not run")

    B, fallback = blocks.start_from_sums(sums, lj.penalties.NoPenalty(), fam, False, no_pass)
    mu0 = y + 0.1
    root = np.sqrt(w * mu0)
    expected = np.linalg.lstsq(X * root[:, None], (np.log(mu0) - o) * root, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(B), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(fallback), np.zeros(X.shape[1]))
