"""adjust_pvalues against statsmodels' multipletests and R's p.adjust (its definitions, and
values worked by hand from them on small vectors)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from linjax.inference import adjust_pvalues

METHODS = {"bh": "fdr_bh", "by": "fdr_by", "holm": "holm", "bonferroni": "bonferroni"}


def r_p_adjust(p, method):
    """A transcription of R's stats::p.adjust (R 4.x source), NA removed first as R does."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    keep = ~np.isnan(p)
    q = p[keep]
    n = q.size
    if n <= 1:
        out[keep] = q
        return out
    if method == "bonferroni":
        adj = np.minimum(1, n * q)
    elif method == "holm":
        i = np.arange(1, n + 1)
        o = np.argsort(q, kind="stable")
        ro = np.argsort(o, kind="stable")
        adj = np.minimum(1, np.maximum.accumulate((n - i + 1) * q[o]))[ro]
    else:
        i = np.arange(n, 0, -1)
        o = np.argsort(-q, kind="stable")
        ro = np.argsort(o, kind="stable")
        c = np.sum(1 / np.arange(1, n + 1)) if method == "by" else 1.0
        adj = np.minimum(1, np.minimum.accumulate(c * n / i * q[o]))[ro]
    out[keep] = adj
    return out


@pytest.mark.parametrize("method", list(METHODS))
def test_matches_statsmodels_and_r_on_random_families(method):
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(4, 9)) ** 3
    p[0, 2] = p[0, 5]  # a tie
    p[1, :3] = 1.0
    adj = np.asarray(adjust_pvalues(p, method))
    for row, got in zip(p, adj, strict=True):
        np.testing.assert_allclose(got, multipletests(row, method=METHODS[method])[1],
                                   rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(got, r_p_adjust(row, method), rtol=1e-14, atol=1e-15)


def test_closed_forms_on_a_small_vector():
    p = [0.01, 0.04, 0.03, 0.02, 0.05]
    hand = {  # R: p.adjust(c(0.01, 0.04, 0.03, 0.02, 0.05), method)
        "bonferroni": [0.05, 0.2, 0.15, 0.1, 0.25],
        "holm": [0.05, 0.09, 0.09, 0.08, 0.09],   # (5-i+1) p_(i) = .05 .08 .09 .08 .05, cummax
        "bh": [0.05] * 5,                          # 5/i p_(i) = .05 for every i
        "by": [0.05 * 137 / 60] * 5,               # c(5) = 1 + 1/2 + 1/3 + 1/4 + 1/5 = 137/60
    }
    for method, want in hand.items():
        np.testing.assert_allclose(adjust_pvalues(p, method), want, rtol=1e-13)


def test_ties_get_equal_values():
    p = np.array([0.02, 0.5, 0.02])
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), [0.03, 0.5, 0.03], rtol=1e-13)
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.06, 0.5, 0.06], rtol=1e-13)


@pytest.mark.parametrize("method", list(METHODS))
def test_nan_stays_nan_and_is_not_counted(method):
    p = np.array([0.01, np.nan, 0.04, 0.2, np.nan, 0.003])
    got = np.asarray(adjust_pvalues(p, method))
    assert np.isnan(got[[1, 4]]).all()
    np.testing.assert_allclose(got, r_p_adjust(p, method), rtol=1e-14)
    kept = ~np.isnan(p)
    np.testing.assert_allclose(got[kept], multipletests(p[kept], method=METHODS[method])[1],
                               rtol=1e-14)
    if method == "bonferroni":  # R: p.adjust(c(.01, NA, .04, .2, NA, .003), "bonferroni")
        np.testing.assert_allclose(got[kept], [0.04, 0.16, 0.8, 0.012], rtol=1e-13)
    assert np.isnan(np.asarray(adjust_pvalues([np.nan, np.nan], method))).all()


@pytest.mark.parametrize("method", list(METHODS))
def test_a_family_of_one_is_unchanged(method):
    np.testing.assert_allclose(adjust_pvalues([0.3], method), [0.3])
    np.testing.assert_allclose(adjust_pvalues(0.3, method), 0.3)
    np.testing.assert_allclose(adjust_pvalues([np.nan, 0.3], method)[1], 0.3)


def test_axis_shapes_jit_and_vmap():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=(5, 3)) ** 2
    by_column = np.asarray(adjust_pvalues(p, "holm", axis=0))
    np.testing.assert_allclose(by_column, np.asarray(adjust_pvalues(p.T, "holm")).T)
    for j in range(3):
        np.testing.assert_allclose(by_column[:, j], multipletests(p[:, j], method="holm")[1],
                                   rtol=1e-14)
    cube = p.reshape(5, 3, 1) * np.ones((1, 1, 2))
    np.testing.assert_allclose(adjust_pvalues(cube, "bh", axis=1)[..., 1],
                               adjust_pvalues(p, "bh"), rtol=1e-14)
    jitted = jax.jit(lambda q: adjust_pvalues(q, "by"))(jnp.asarray(p))
    vmapped = jax.vmap(lambda q: adjust_pvalues(q, "by"))(jnp.asarray(p))
    np.testing.assert_allclose(jitted, adjust_pvalues(p, "by"), rtol=1e-14)
    np.testing.assert_allclose(vmapped, adjust_pvalues(p, "by"), rtol=1e-14)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"method: expected one of"):
        adjust_pvalues([0.1], "fdr")
    with pytest.raises(ValueError, match=r"p: p-values must lie in \[0, 1\].*p\[1\] = 1.5"):
        adjust_pvalues([0.1, 1.5], "bh")
    with pytest.raises(ValueError, match=r"p: p-values must lie"):
        adjust_pvalues([-0.1], "holm")
    with pytest.raises(ValueError, match=r"axis: 2 is out of range"):
        adjust_pvalues([[0.1]], "holm", axis=2)
