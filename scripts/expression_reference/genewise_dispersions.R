# Genewise dispersions of DESeq2 and glmGamPoi on given counts, design ~ condition and size
# factors (the peers of benchmarks/bench_dispersion.py --peers):
#
#   Rscript scripts/expression_reference/genewise_dispersions.R COUNTS SAMPLES SIZE_FACTORS OUT
#
# COUNTS: genes x samples csv (first column gene names); SAMPLES: csv with columns sample,
# condition; SIZE_FACTORS: one number per line, in the samples' order. Prints the seconds of
# DESeq2's estimateDispersionsGeneEst and of glmGamPoi's glm_gp (its defaults; R's start and
# the reading of the files not included) and writes OUT: per gene, DESeq2's dispGeneEst and
# glmGamPoi's overdispersions.

suppressPackageStartupMessages({
  library(DESeq2)
  library(glmGamPoi)
})

args <- commandArgs(trailingOnly = TRUE)
counts <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
mode(counts) <- "integer"
samples <- read.csv(args[2], row.names = 1, stringsAsFactors = TRUE)
sf <- scan(args[3], quiet = TRUE)

dds <- DESeqDataSetFromMatrix(counts, samples, ~ condition)
sizeFactors(dds) <- sf
t_deseq <- system.time(dds <- estimateDispersionsGeneEst(dds, quiet = TRUE))[["elapsed"]]
cat(sprintf("DESeq2 %.3f\n", t_deseq))

mm <- model.matrix(~ condition, samples)
t_gp <- system.time(gp <- glm_gp(counts, design = mm, size_factors = sf))[["elapsed"]]
cat(sprintf("glmGamPoi %.3f\n", t_gp))

write.csv(data.frame(DESeq2 = mcols(dds)$dispGeneEst, glmGamPoi = gp$overdispersions,
                     row.names = rownames(counts)),
          args[4], quote = FALSE)
