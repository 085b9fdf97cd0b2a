"""linjax.expression against DESeq2 1.38.3's own numbers on committed data.

The counts and the reference files in tests/data/expression/ were written by
scripts/expression_reference/ (make_data.py, run_deseq2.R, run_pydeseq2.py); nothing here
comes from linjax itself. Thresholds are the issue's: log2 fold changes and Wald p-values
equal DESeq2's to 1e-3 relative on at least 99% of the genes, calls at padj < 0.1 the same
on at least 99.5%, and where dispersions differ linjax's criterion is at least as good.
"""

import functools
import os
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from linjax import expression

pd = pytest.importorskip("pandas")

DATA = os.path.join(os.path.dirname(__file__), "data", "expression")
SETS = {
    "two_groups": ("~ condition", "condition[T.B]", None),
    "three_groups": ("~ group + x", "group[T.C]", "~ x"),
}


def read(name):
    counts = pd.read_csv(os.path.join(DATA, f"{name}_counts.csv.gz"), index_col=0)
    samples = pd.read_csv(os.path.join(DATA, f"{name}_samples.csv"), index_col=0)
    ref = pd.read_csv(os.path.join(DATA, f"{name}_deseq2.csv.gz"), index_col=0,
                      skipinitialspace=True, na_values=["NA"])
    summary = pd.read_csv(os.path.join(DATA, f"{name}_deseq2_summary.csv"),
                          skipinitialspace=True).set_index("key")["value"]
    return counts, samples, ref, summary


@functools.cache
def run(name):
    """One pipeline run per data set (and the LRT), shared by the tests below."""
    design, contrast, reduced = SETS[name]
    counts, samples, ref, summary = read(name)
    res = expression.differential_expression(counts, design, contrast, samples=samples)
    lrt = None
    if reduced is not None:
        lrt = expression.differential_expression(counts, design, contrast, samples=samples,
                                                 reduced=reduced)
    return dict(counts=counts, samples=samples, ref=ref, summary=summary, res=res, lrt=lrt)


@pytest.fixture(scope="module", autouse=True)
def _forget_runs():
    yield
    run.cache_clear()


#: The second data set compiles its own programs (another shape, the NB start fit, the
#: reduced design): ~30 s of compilation on a loaded 2-core machine, so it runs with -m slow.
NAMES = ["two_groups", pytest.param("three_groups", marks=pytest.mark.slow)]


def close_fraction(a, b, rtol=1e-3):
    """Fraction of the genes with a DESeq2 value where linjax's is within rtol relative
    (NaN where DESeq2 has NaN counts as agreement; NaN against a number does not)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        ok = np.abs(a - b) <= rtol * np.abs(b)
    return np.mean(ok | both_nan)


@pytest.mark.parametrize("name", NAMES)
def test_size_factors_equal_deseq2s(name):
    r = run(name)
    keys = [k for k in r["summary"].index if k.startswith("sizeFactor_")]
    pos = [k for k in r["summary"].index if k.startswith("sizeFactorPoscounts_")]
    np.testing.assert_allclose(r["res"].attrs["size_factors"], r["summary"][keys], rtol=1e-12)
    np.testing.assert_allclose(expression.size_factors(r["counts"], method="poscounts"),
                               r["summary"][pos], rtol=1e-12)
    np.testing.assert_allclose(r["res"]["baseMean"], r["ref"]["baseMean"], rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_dispersions_equal_deseq2s(name):
    r = run(name)
    res, ref, summary = r["res"], r["ref"], r["summary"]
    for col in ("dispGeneEst", "dispFit", "dispersion"):
        assert close_fraction(res[col], ref[col]) >= 0.99, col
    a0, a1 = res.attrs["dispersion_trend"]
    np.testing.assert_allclose([a0, a1], [summary["asymptDisp"], summary["extraPois"]],
                               rtol=1e-3)
    np.testing.assert_allclose(res.attrs["prior_variance"], summary["dispPriorVar"], rtol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_wald_test_equals_deseq2s(name):
    res, ref = run(name)["res"], run(name)["ref"]
    for col in ("log2FoldChange", "lfcSE", "stat", "pvalue", "padj"):
        assert close_fraction(res[col], ref[col]) >= 0.99, col


@pytest.mark.parametrize("name", NAMES)
def test_calls_at_padj_01_equal_deseq2s(name):
    res, ref = run(name)["res"], run(name)["ref"]
    ours = res["padj"].fillna(1.0).to_numpy() < 0.1
    theirs = ref["padj"].fillna(1.0).to_numpy() < 0.1
    assert theirs.sum() > 10
    assert np.mean(ours == theirs) >= 0.995
    # independent filtering chose DESeq2's threshold
    np.testing.assert_allclose(res.attrs["filter_threshold"],
                               run(name)["summary"]["filterThreshold"], rtol=1e-9)


@pytest.mark.slow
def test_likelihood_ratio_test_equals_deseq2s():
    lrt, ref = run("three_groups")["lrt"], run("three_groups")["ref"]
    for col, theirs in (("stat", "lrt_stat"), ("pvalue", "lrt_pvalue"), ("padj", "lrt_padj")):
        assert close_fraction(lrt[col], ref[theirs]) >= 0.99, col
    # the fold change stays the contrast's
    assert close_fraction(lrt["log2FoldChange"], ref["log2FoldChange"]) >= 0.99


@pytest.mark.parametrize("name", NAMES)
def test_status_of_degenerate_genes(name):
    """gene1: all counts zero; gene2: a single non-zero count. Both finish, neither
    poisons the others."""
    res = run(name)["res"]
    assert res.loc["gene1", "status"] == 1
    assert res.loc["gene1", ["log2FoldChange", "pvalue", "padj"]].isna().all()
    assert res.loc["gene2", "status"] in expression.STATUS
    assert np.isfinite(res.loc["gene2", ["log2FoldChange", "lfcSE", "dispersion"]]).all()
    all_zero = run(name)["counts"].sum(axis=1).to_numpy() == 0
    np.testing.assert_array_equal(res["status"].to_numpy() == 1, all_zero)
    rest = res[~all_zero]
    assert np.isfinite(rest[["baseMean", "log2FoldChange", "lfcSE", "dispGeneEst",
                             "dispFit", "dispersion"]].to_numpy()).all()
    assert set(np.unique(res["status"])) <= set(expression.STATUS)


@pytest.mark.slow
def test_newton_search_criterion_at_least_deseq2s():
    """dispersion_search='newton' maximizes DESeq2's genewise criterion: at its estimate
    the Cox-Reid adjusted likelihood is at least the value at DESeq2's estimate."""
    r = run("two_groups")
    counts, samples, ref = r["counts"], r["samples"], r["ref"]
    res = expression.differential_expression(counts, "~ condition", 1, samples=samples,
                                             dispersion_search="newton")
    Y = counts.to_numpy().astype(float)
    nz = Y.sum(axis=1) > 0
    sf = res.attrs["size_factors"]
    X = np.column_stack([np.ones(Y.shape[1]), samples["condition"] == "B"]).astype(float)
    # DESeq2's means for this design: its linear model of the normalized counts, >= 0.5
    Q = np.linalg.qr(X)[0]
    mu = np.maximum((Y[nz] / sf) @ Q @ Q.T * sf, 0.5)

    def criterion(alpha):
        return np.asarray(expression._log_posterior(
            jnp.log(jnp.asarray(alpha)), jnp.asarray(Y[nz]), jnp.asarray(mu),
            jnp.asarray(expression._pairs(X)), 0.0, 0.0))

    ours = criterion(res["dispGeneEst"].to_numpy()[nz])
    theirs = criterion(ref["dispGeneEst"].to_numpy()[nz])
    # equal up to the rounding of lgamma differences near alpha = 1e-8 (Poisson limit)
    assert np.all(ours >= theirs - 1e-6 * np.maximum(1.0, np.abs(theirs)))
    assert np.mean(ours > theirs + 1e-9) > 0.5  # DESeq2's line search stops short
    # the calls barely move
    ours_calls = res["padj"].fillna(1.0).to_numpy() < 0.1
    assert np.mean(ours_calls == (ref["padj"].fillna(1.0).to_numpy() < 0.1)) >= 0.99


def test_input_forms_agree(monkeypatch):
    """numpy design + contrast vector == formula + column name; dict without pandas."""
    r = run("two_groups")
    counts, samples, res = r["counts"], r["samples"], r["res"]
    X = np.column_stack([np.ones(len(samples)), samples["condition"] == "B"]).astype(float)
    assert "status" in repr(res)  # attrs hold plain values, so pandas can print the table
    monkeypatch.setitem(sys.modules, "pandas", None)
    plain = expression.differential_expression(counts.to_numpy(), X, [0.0, 1.0])
    assert isinstance(plain, dict)
    for col in expression.COLUMNS:
        np.testing.assert_allclose(plain[col], res[col].to_numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(plain["attrs"]["size_factors"], res.attrs["size_factors"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(counts=-np.ones((5, 4))), "counts: expected non-negative integer"),
    (dict(counts=np.full((5, 4), 1.5)), "counts: expected non-negative integer"),
    (dict(design=np.ones((3, 1))), "design: expected a samples x k matrix with 4 rows"),
    (dict(design=np.column_stack([np.ones(4), np.ones(4)])), "design: .*full column rank"),
    (dict(contrast=5), "contrast: column index 5 is out of range"),
    (dict(contrast=[1.0, 2.0, 3.0]), "contrast: expected a column index or"),
    (dict(size_factors=[1.0, -1.0, 1.0, 1.0]), "size_factors: expected 4 positive"),
    (dict(dispersion_search="grid"), "dispersion_search: expected"),
])
def test_errors_name_the_argument(kwargs, match):
    args = dict(counts=np.arange(20).reshape(5, 4), design=np.column_stack(
        [np.ones(4), [0, 0, 1, 1]]), contrast=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        expression.differential_expression(**args)


def test_size_factors_refuse_all_genes_with_a_zero():
    with pytest.raises(ValueError, match="poscounts"):
        expression.size_factors(np.array([[0, 1], [2, 0]]))


def test_calls_agree_with_pydeseq2():
    """PyDESeq2 0.5.4 on the same counts (its own reimplementation of DESeq2): the calls at
    padj < 0.1 agree on at least 99.5% of the genes."""
    res = run("two_groups")["res"]
    py = pd.read_csv(os.path.join(DATA, "two_groups_pydeseq2.csv.gz"), index_col=0)
    ours = res["padj"].fillna(1.0).to_numpy() < 0.1
    assert np.mean(ours == (py["padj"].fillna(1.0).to_numpy() < 0.1)) >= 0.995
    assert close_fraction(res["log2FoldChange"], py["log2FoldChange"]) >= 0.99


def test_anndata_input():
    """AnnData stores samples x genes; the result is per gene, named by var_names."""
    anndata = pytest.importorskip("anndata")
    r = run("two_groups")
    counts, samples, res = r["counts"], r["samples"], r["res"]
    adata = anndata.AnnData(X=counts.T.to_numpy().astype(float), obs=samples,
                            var=pd.DataFrame(index=counts.index))
    out = expression.differential_expression(adata, "~ condition", "condition[T.B]",
                                             samples=samples)
    assert list(out.index) == list(counts.index)
    np.testing.assert_allclose(out["pvalue"], res["pvalue"], rtol=1e-12, equal_nan=True)


def test_blocks_of_genes_give_deseq2s_answer(monkeypatch):
    """Genes go through the fits in blocks of BLOCK_ENTRIES counts (one compiled shape, the
    last block padded): with blocks of 150 genes the two-group set still gives DESeq2's
    numbers, and the one-block run's to rounding on all but a few genes."""
    r = run("two_groups")
    counts, samples, ref = r["counts"], r["samples"], r["ref"]
    monkeypatch.setattr(expression, "BLOCK_ENTRIES", 150 * counts.shape[1])
    size, blocks = expression._gene_blocks(np.arange(counts.shape[0] - 1), counts.shape[1])
    assert len(blocks) > 3 and size * len(blocks) > counts.shape[0] - 1  # padded
    res = expression.differential_expression(counts, "~ condition", "condition[T.B]",
                                             samples=samples)
    for col in ("dispGeneEst", "dispersion", "log2FoldChange", "lfcSE", "pvalue", "padj"):
        assert close_fraction(res[col], ref[col]) >= 0.99, col
        assert close_fraction(res[col], r["res"][col], rtol=1e-8) >= 0.998, col
    np.testing.assert_array_equal(res["status"], r["res"]["status"])
