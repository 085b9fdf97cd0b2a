# DESeq2 and glmGamPoi reference values for linjax.expression's tests.
#
#   Rscript scripts/expression_reference/run_deseq2.R            # both committed data sets
#   Rscript scripts/expression_reference/run_deseq2.R --time COUNTS SAMPLES [--gp-only]
#       [--results CSV]
#       (benchmark peer: seconds of DESeq() + results() and of glmGamPoi's glm_gp;
#        --results writes DESeq2's log2FoldChange and padj per gene)
#
# Reads tests/data/expression/<name>_counts.csv.gz and <name>_samples.csv and writes
# <name>_deseq2.csv.gz (one row per gene) and <name>_deseq2_summary.csv (size factors,
# trend coefficients, prior variance), all from DESeq2's own functions with its defaults.

suppressPackageStartupMessages({
  library(DESeq2)
  library(glmGamPoi)
})

dir <- file.path("tests", "data", "expression")

read_set <- function(counts_path, samples_path) {
  counts <- as.matrix(read.csv(gzfile(counts_path), row.names = 1, check.names = FALSE))
  mode(counts) <- "integer"
  samples <- read.csv(samples_path, row.names = 1, stringsAsFactors = TRUE)
  list(counts = counts, samples = samples)
}

write_gz <- function(df, path) {
  con <- gzfile(path, "w")
  write.csv(format(df, digits = 17), con, quote = FALSE)
  close(con)
}

reference <- function(name, design, contrast_name, reduced = NULL) {
  d <- read_set(file.path(dir, paste0(name, "_counts.csv.gz")),
                file.path(dir, paste0(name, "_samples.csv")))
  dds <- DESeqDataSetFromMatrix(d$counts, d$samples, design)
  dds <- estimateSizeFactors(dds)
  sf <- sizeFactors(dds)
  # the DESeqDataSet method (DESeq(sfType = "poscounts")): geometric mean of 1
  sf_pos <- sizeFactors(estimateSizeFactors(dds, type = "poscounts"))
  # the steps of estimateDispersions(), one at a time
  dds <- estimateDispersionsGeneEst(dds, quiet = TRUE)
  dds <- estimateDispersionsFit(dds, fitType = "parametric", quiet = TRUE)
  prior_var <- estimateDispersionsPriorVar(dds)
  dds <- estimateDispersionsMAP(dds, quiet = TRUE)
  fn <- dispersionFunction(dds)
  wald <- nbinomWaldTest(dds, quiet = TRUE)
  res <- results(wald, name = contrast_name)
  res_nofilter <- results(wald, name = contrast_name, independentFiltering = FALSE,
                          cooksCutoff = FALSE)
  mm <- model.matrix(design, d$samples)
  gp <- glm_gp(d$counts, design = mm, size_factors = sf, overdispersion = TRUE)
  mc <- mcols(dds)
  out <- data.frame(
    baseMean = res$baseMean,
    log2FoldChange = res$log2FoldChange,
    lfcSE = res$lfcSE,
    stat = res$stat,
    pvalue = res$pvalue,
    padj = res$padj,
    pvalue_nocooks = res_nofilter$pvalue,
    padj_nofilter = res_nofilter$padj,
    dispGeneEst = mc$dispGeneEst,
    dispGeneIter = mc$dispGeneIter,
    dispFit = mc$dispFit,
    dispersion = mc$dispersion,
    dispMAP = mc$dispMAP,
    dispOutlier = mc$dispOutlier,
    maxCooks = mcols(wald)$maxCooks,
    betaConv = mcols(wald)$betaConv,
    glmGamPoi_overdispersion = gp$overdispersions,
    row.names = rownames(d$counts))
  if (!is.null(reduced)) {
    lrt <- nbinomLRT(dds, reduced = reduced, quiet = TRUE)
    lres <- results(lrt)
    out$lrt_stat <- lres$stat
    out$lrt_pvalue <- lres$pvalue
    out$lrt_padj <- lres$padj
  }
  write_gz(out, file.path(dir, paste0(name, "_deseq2.csv.gz")))
  summ <- data.frame(
    key = c(paste0("sizeFactor_", names(sf)), paste0("sizeFactorPoscounts_", names(sf)),
            "asymptDisp", "extraPois", "varLogDispEsts", "dispPriorVar",
            "filterThreshold", "filterTheta"),
    value = c(unname(sf), unname(sf_pos), attr(fn, "coefficients"),
              attr(fn, "varLogDispEsts"), prior_var,
              unname(metadata(res)$filterThreshold), metadata(res)$filterTheta))
  write.csv(format(summ, digits = 17), file.path(dir, paste0(name, "_deseq2_summary.csv")),
            quote = FALSE, row.names = FALSE)
  cat(name, ": written\n")
}

time_peers <- function(counts_path, samples_path, deseq = TRUE, results_path = NULL) {
  d <- read_set(counts_path, samples_path)
  if (deseq) {
    t_deseq <- system.time({
      dds <- DESeqDataSetFromMatrix(d$counts, d$samples, ~ condition)
      dds <- DESeq(dds, quiet = TRUE)
      res <- results(dds)
    })[["elapsed"]]
    cat(sprintf("DESeq2 %.3f\n", t_deseq))
    if (!is.null(results_path)) {
      write.csv(data.frame(log2FoldChange = res$log2FoldChange, padj = res$padj),
                results_path, row.names = FALSE)
    }
  }
  mm <- model.matrix(~ condition, d$samples)
  sf <- estimateSizeFactorsForMatrix(d$counts)  # glmGamPoi 1.10 has no "ratio" option
  t_gp <- system.time(glm_gp(d$counts, design = mm, size_factors = sf))[["elapsed"]]
  cat(sprintf("glmGamPoi %.3f\n", t_gp))
}

args <- commandArgs(trailingOnly = TRUE)
if (length(args) >= 3 && args[1] == "--time") {
  at <- match("--results", args)
  time_peers(args[2], args[3], deseq = !("--gp-only" %in% args),
             results_path = if (is.na(at)) NULL else args[at + 1])
} else {
  reference("two_groups", ~ condition, "condition_B_vs_A")
  reference("three_groups", ~ group + x, "group_C_vs_A", reduced = ~ x)
  writeLines(c(paste("R", paste(R.version$major, R.version$minor, sep = ".")),
               paste("DESeq2", as.character(packageVersion("DESeq2"))),
               paste("glmGamPoi", as.character(packageVersion("glmGamPoi")))),
             file.path(dir, "versions_R.txt"))
}
