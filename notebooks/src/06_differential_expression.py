# %% [markdown]
# # 6. Differential expression: one negative binomial GLM per gene, all genes at once
#
# An RNA-seq experiment counts, for every gene, the sequencing reads that come from it in
# every sample. The question is which genes change between conditions. DESeq2 answers it
# with one negative binomial GLM per gene:
#
# $$y_{gj} \sim \mathrm{NB}(\mu_{gj}, \alpha_g), \qquad
#   \log \mu_{gj} = \log s_j + x_j^\top \beta_g, \qquad
#   \mathrm{Var}(y_{gj}) = \mu_{gj} + \alpha_g \mu_{gj}^2,$$
#
# where $s_j$ is the **size factor** of sample $j$ (its sequencing depth) and $\alpha_g$ the
# gene's **dispersion**. With a dozen samples a gene's own dispersion is noisy, so DESeq2
# borrows strength across genes: it fits a trend of dispersion against mean and shrinks each
# gene's estimate towards it (an empirical Bayes prior on $\log\alpha$).
#
# `linjax.expression.differential_expression` runs these steps for all genes in a few
# compiled calls. This notebook runs it on a committed data set (2,000 genes x 12 samples,
# two conditions, drawn as DESeq2's `makeExampleDESeqDataSet` draws them) and checks each
# step against **DESeq2 1.38.3's own output** on the same counts (files written by R, not
# by linjax): size factors, the three dispersions, the MA plot's fold changes, the calls.

# %%
import pathlib
import time

import jax

jax.config.update("jax_enable_x64", True)  # p-values as DESeq2's need float64

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from linjax import expression

DATA = pathlib.Path("../tests/data/expression")
if not DATA.exists():  # run as a script from the repository root
    DATA = pathlib.Path("tests/data/expression")
counts = pd.read_csv(DATA / "two_groups_counts.csv.gz", index_col=0)
samples = pd.read_csv(DATA / "two_groups_samples.csv", index_col=0)
deseq2 = pd.read_csv(DATA / "two_groups_deseq2.csv.gz", index_col=0, skipinitialspace=True,
                     na_values=["NA"])
summary = pd.read_csv(DATA / "two_groups_deseq2_summary.csv",
                      skipinitialspace=True).set_index("key")["value"]
print(counts.shape, "genes x samples;", samples["condition"].value_counts().to_dict())
counts.iloc[:5, :8]

# %% [markdown]
# ## 1. The counts
#
# Counts span five orders of magnitude, many are zero, and the samples differ in depth.
# Gene 1 is all zero and gene 2 has a single non-zero count: both must finish with a
# status, not break the batch.

# %%
Y = counts.to_numpy()
fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
ax[0].hist(np.log10(Y[Y > 0]), bins=60)
ax[0].set(xlabel="log10 count (non-zero)", ylabel="entries",
          title=f"{np.mean(Y == 0):.0%} of the counts are zero")
ax[1].bar(range(Y.shape[1]), Y.sum(axis=0) / 1e3,
          color=np.where(samples["condition"] == "A", "C0", "C1"))
ax[1].set(xlabel="sample", ylabel="total count (thousands)", title="library sizes")
plt.tight_layout()
assert (Y[0] == 0).all() and (Y[1] > 0).sum() == 1

# %% [markdown]
# ## 2. Size factors: the median of ratios
#
# Total counts are a poor depth measure: a few highly expressed genes that change dominate
# them. DESeq2's **median-of-ratios** compares each sample with a pseudo-reference (the
# gene's geometric mean over samples) and takes the median ratio over the genes with no
# zero count:
#
# $$s_j = \operatorname{median}_g \frac{y_{gj}}{\left(\prod_{j'} y_{gj'}\right)^{1/n}}.$$
#
# `method="poscounts"` is DESeq2's variant for data where every gene has a zero somewhere
# (single cells). Both equal DESeq2's to 1e-12.

# %%
sf = expression.size_factors(counts)
sf_pos = expression.size_factors(counts, method="poscounts")
ref_sf = summary[[k for k in summary.index if k.startswith("sizeFactor_")]].to_numpy()
ref_pos = summary[[k for k in summary.index if k.startswith("sizeFactorPoscounts_")]].to_numpy()
np.testing.assert_allclose(sf, ref_sf, rtol=1e-12)
np.testing.assert_allclose(sf_pos, ref_pos, rtol=1e-12)

totals = Y.sum(axis=0) / np.exp(np.mean(np.log(Y.sum(axis=0))))
plt.figure(figsize=(4.5, 4))
plt.scatter(totals, sf)
plt.plot([0.6, 1.6], [0.6, 1.6], "k:", lw=1)
plt.xlabel("total count / geometric mean")
plt.ylabel("median-of-ratios size factor")
plt.title("size factors (equal to DESeq2's)")
pd.DataFrame({"linjax": sf, "DESeq2": ref_sf}, index=counts.columns).T.round(4)

# %% [markdown]
# ## 3. The whole pipeline
#
# One call: size factors, genewise dispersions (Cox-Reid adjusted profile likelihood), the
# trend, the prior and the MAP dispersions, the final NB fits, the Wald test, Cook's
# distances, independent filtering and Benjamini-Hochberg. The design is a formula over the
# sample table (formulaic) and the contrast a design column. The first call compiles the
# programs; the second shows the running time.

# %%
t0 = time.perf_counter()
res = expression.differential_expression(counts, "~ condition", "condition[T.B]",
                                         samples=samples)
first = time.perf_counter() - t0
t0 = time.perf_counter()
res = expression.differential_expression(counts, "~ condition", "condition[T.B]",
                                         samples=samples)
warm = time.perf_counter() - t0
print(f"{counts.shape[0]} genes x {counts.shape[1]} samples: first call {first:.2f} s "
      f"(compilation included), warm {warm:.2f} s")
res.head()

# %% [markdown]
# Every gene has a status (`expression.STATUS`): the all-zero gene has no test, some genes
# fall below the independent-filtering threshold on the base mean (no adjusted p-value).

# %%
status = res["status"].map(expression.STATUS).value_counts()
assert res.loc["gene1", "status"] == 1 and res.loc["gene1", ["pvalue", "padj"]].isna().all()
assert np.isfinite(res.loc["gene2", ["log2FoldChange", "lfcSE", "dispersion"]]).all()
status.to_frame("genes")

# %% [markdown]
# ## 4. Dispersion and its shrinkage
#
# - **genewise** $\hat\alpha_g$: the maximum of the Cox-Reid adjusted profile likelihood
#   $\ell(\alpha; y, \hat\mu) - \tfrac12 \log\det(X^\top W X)$, one gene at a time;
# - **trend** $\alpha_{tr}(\bar\mu) = a_0 + a_1/\bar\mu$: a Gamma GLM of the genewise values
#   on $1/\text{baseMean}$, refitted without the genes far from it;
# - **MAP**: the same likelihood plus a normal prior on $\log\alpha$ centred at the trend,
#   with the prior variance estimated from the scatter of the genewise values around it;
# - genes whose genewise value lies more than 2 prior standard deviations above the trend
#   are **outliers**: they keep their genewise value (shrinking them would call them
#   falsely).
#
# All three agree with DESeq2's on at least 99% of the genes to 1e-3 relative; the trend
# and the prior variance to 1e-3.

# %%
def close_fraction(a, b, rtol=1e-3):
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore"):
        return np.mean((np.abs(a - b) <= rtol * np.abs(b)) | (np.isnan(a) & np.isnan(b)))


agreement = {col: close_fraction(res[col], deseq2[col])
             for col in ("dispGeneEst", "dispFit", "dispersion")}
for col, frac in agreement.items():
    assert frac >= 0.99, (col, frac)
a0, a1 = res.attrs["dispersion_trend"]
np.testing.assert_allclose([a0, a1], [summary["asymptDisp"], summary["extraPois"]], rtol=1e-3)
np.testing.assert_allclose(res.attrs["prior_variance"], summary["dispPriorVar"], rtol=1e-3)
print(f"trend {a0:.4f} + {a1:.3f} / mean (DESeq2: {summary['asymptDisp']:.4f} + "
      f"{summary['extraPois']:.3f} / mean); prior variance of log alpha "
      f"{res.attrs['prior_variance']:.4f} (DESeq2 {summary['dispPriorVar']:.4f})")
pd.Series(agreement, name="fraction within 1e-3 of DESeq2").to_frame()

# %%
ok = res["status"] != 1
bm = res.loc[ok, "baseMean"]
# DESeq2's outlier rule: log genewise - log trend above 2 robust standard deviations
# (1.4826 MAD of the residuals of the genewise values above 1e-6)
resid = np.log(res["dispGeneEst"] / res["dispFit"])
above = ok & (res["dispGeneEst"] >= 1e-6)
sd = 1.4826 * np.median(np.abs(resid[above] - np.median(resid[above])))
outlier = ok & (resid > 2 * sd)
assert (res.loc[outlier, "dispersion"] == res.loc[outlier, "dispGeneEst"]).all()
assert (outlier == (deseq2["dispOutlier"] == True)).all()  # noqa: E712  (NaN: no)
grid = np.geomspace(bm.min(), bm.max(), 200)
plt.figure(figsize=(7, 5))
plt.scatter(bm, res.loc[ok, "dispGeneEst"], s=3, c="0.6", label="genewise")
plt.scatter(bm[~outlier[ok]], res.loc[ok & ~outlier, "dispersion"], s=3, c="C0",
            label="MAP (final)")
plt.scatter(res.loc[outlier, "baseMean"], res.loc[outlier, "dispersion"], s=12,
            facecolors="none", edgecolors="C3", label="outliers (keep genewise)")
plt.plot(grid, a0 + a1 / grid, "C1", lw=2, label="trend a0 + a1/mean")
plt.xscale("log")
plt.yscale("log")
plt.ylim(1e-3, 30)
plt.xlabel("mean of normalized counts")
plt.ylabel("dispersion")
plt.legend()
plt.title("dispersion estimates (as DESeq2's plotDispEsts)")
# shrinkage moves the estimates towards the trend: on the log scale, the MAP values
# scatter less around it than the genewise ones
keep = ok & ~outlier & (res["dispGeneEst"] > 1e-6)
spread = lambda col: np.std(np.log(res.loc[keep, col] / res.loc[keep, "dispFit"]))  # noqa: E731
assert spread("dispersion") < 0.5 * spread("dispGeneEst")

# %% [markdown]
# ## 5. MA plot
#
# Log2 fold change against mean expression; red: genes called at adjusted p < 0.1. Low
# counts give large, noisy fold changes that are rarely significant. The fold changes, the
# Wald p-values and the adjusted p-values equal DESeq2's on at least 99% of the genes (1e-3
# relative), and the set of called genes is the same.

# %%
for col in ("log2FoldChange", "lfcSE", "pvalue", "padj"):
    assert close_fraction(res[col], deseq2[col]) >= 0.99, col
called = res["padj"].fillna(1.0) < 0.1
called_deseq2 = deseq2["padj"].fillna(1.0) < 0.1
assert np.mean(called == called_deseq2) >= 0.995
print(f"{called.sum()} genes called at padj < 0.1 (DESeq2: {called_deseq2.sum()}); "
      f"{(called != called_deseq2).sum()} differ")

plt.figure(figsize=(7, 4.5))
plt.scatter(res.loc[ok & ~called, "baseMean"], res.loc[ok & ~called, "log2FoldChange"],
            s=3, c="0.6")
plt.scatter(res.loc[called, "baseMean"], res.loc[called, "log2FoldChange"], s=4, c="C3",
            label="padj < 0.1")
plt.axhline(0, color="k", lw=0.8)
plt.xscale("log")
plt.xlabel("mean of normalized counts")
plt.ylabel("log2 fold change B vs A")
plt.legend()
plt.title("MA plot")

# %% [markdown]
# ## 6. Volcano plot
#
# Effect size against evidence: $-\log_{10}$ p-value against the log2 fold change. The data
# were drawn with fold changes of exactly $\pm 1$ on 10% of the genes, so the called genes
# sit around $\pm 1$.

# %%
tested = res["pvalue"].notna()
plt.figure(figsize=(6, 4.5))
plt.scatter(res.loc[tested & ~called, "log2FoldChange"],
            -np.log10(res.loc[tested & ~called, "pvalue"]), s=3, c="0.6")
plt.scatter(res.loc[called, "log2FoldChange"], -np.log10(res.loc[called, "pvalue"]), s=4,
            c="C3", label="padj < 0.1")
plt.axvline(-1, color="k", ls=":", lw=0.8)
plt.axvline(1, color="k", ls=":", lw=0.8)
plt.xlim(-4, 4)
plt.xlabel("log2 fold change")
plt.ylabel("-log10 p-value")
plt.legend()
plt.title("volcano plot")
strong = called & (res["baseMean"] > 50)
assert abs(np.median(np.abs(res.loc[strong, "log2FoldChange"])) - 1.0) < 0.25

# %% [markdown]
# ## 7. Speed
#
# The same call scales to real experiments: all genes go through each step together, in a
# few compiled programs, with no per-gene Python loop. `python -m benchmarks.bench_expression`
# times 10,000 genes x 100 samples against DESeq2, PyDESeq2 and glmGamPoi on the same counts
# (see docs/expression.md for the figures). Here, on this small set:

# %%
print(f"linjax, {counts.shape[0]} genes x {counts.shape[1]} samples: {warm:.2f} s warm, "
      f"{first:.2f} s first call")
