"""Differential expression of RNA-seq counts, as DESeq2 defines it, on linjax's batch GLM pieces.

`differential_expression(counts, design, contrast)` runs DESeq2's `DESeq()` + `results()`
for a genes x samples count matrix with three compiled programs (the dispersion search,
IRLS, the statistics), each run over blocks of genes of one shape (`BLOCK_ENTRIES`
counts), so memory beyond the counts stays a few blocks:

1. size factors s_j: median-of-ratios (`size_factors`);
2. genewise dispersion: for each gene, alpha maximizing the Cox-Reid adjusted profile
   log-likelihood  l(alpha; y, mu) - 1/2 log det(X' W X),  W = diag(mu / (1 + alpha mu)),
   at means mu from a linear model of the normalized counts (when the design's distinct rows
   number its columns) or a negative binomial fit at a rough alpha, bounded below by 0.5;
3. the dispersion trend alpha_tr(mu) = a0 + a1 / mu: a Gamma GLM (identity link) of the
   genewise values on 1 / baseMean, refitted without genes whose ratio to the trend is
   outside (1e-4, 15) until the coefficients settle;
4. the prior variance of log alpha: mad(log alpha_gw - log alpha_tr)^2 - trigamma((n - p)/2),
   at least 0.25; the maximum a posteriori alpha (the same criterion plus the normal prior
   on log alpha centred at the trend); genes whose genewise value lies more than 2 prior
   standard deviations above the trend keep the genewise value;
5. the negative binomial GLM at the final alpha (DESeq2's IRLS: ridge 1e-6 on log2
   coefficients, means bounded below by 0.5 in the weights), its Wald test of the contrast
   c' beta (normal p-values) and, optionally, the likelihood-ratio test of a reduced design;
6. Cook's distances flag outlier genes (p-value NaN; cutoff the F(p, n - p) 99% quantile),
   and Benjamini-Hochberg adjusted p-values after independent filtering on the base mean
   (DESeq2's `results()` choice of the filter threshold).

Dispersions are found by safeguarded Newton steps in log(alpha) on autodiff derivatives,
to the optimum of the criterion (DESeq2's line search stops within 1e-6 of it). Genes with
all-zero counts, a single non-zero count or coefficients that run to infinity finish with a
`status` code (`STATUS`), never stall the batch. Needs float64 (`jax_enable_x64`) for
p-values as DESeq2's.
"""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaincc

from linjax import _programs
from linjax.special import lgamma as _lgamma
from linjax.special import lgamma_digamma as _lgamma_digamma
from linjax.validation import to_device

MIN_DISP = 1e-8
MIN_MU = 0.5
#: DESeq2's ridge on log2-scale coefficients (its "no prior" fit), here on the log scale.
RIDGE = 1e-6 / np.log(2.0) ** 2
#: |coefficient| (natural log) beyond which a coefficient is said to run to infinity.
LARGE_COEF = 30.0
OUTLIER_SD = 2.0

#: Per-gene status codes in the result's `status` column.
STATUS = {
    0: "ok",
    1: "all counts zero: no test (as DESeq2, NaN statistics)",
    2: "Cook's distance outlier: p-value and padj NaN (as DESeq2's results())",
    3: "filtered by independent filtering on the base mean: padj NaN",
    4: "the coefficient fit or the dispersion search reached its iteration cap",
    5: "a coefficient runs to infinity (held at DESeq2's bound |log2 coefficient| = 30); "
       "its Wald test is not meaningful",
}
COLUMNS = ("baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj", "dispGeneEst",
           "dispFit", "dispersion", "status")


# -- size factors -----------------------------------------------------------------------


def size_factors(counts, method="ratio"):
    """DESeq2's size factors of a genes x samples count matrix (estimateSizeFactorsForMatrix).

    "ratio": s_j = median over genes with no zero count of y_gj / (prod_j' y_gj')^(1/n);
    "poscounts": the geometric mean over a gene's positive counts only (genes with every
    count zero dropped), the ratio's median over the gene's positive counts, and the
    factors scaled to geometric mean 1 (DESeq2's variant for data with many zeros).
    """
    Y, _ = _counts_matrix(counts)
    return _size_factors(Y, method)


def _size_factors(Y, method):
    if method not in ("ratio", "poscounts"):
        raise ValueError(f"method: expected 'ratio' or 'poscounts', got {method!r}.")
    m, n = Y.shape
    loggeo = np.empty(m)
    with np.errstate(divide="ignore"):
        for rows in _row_blocks(m, n):
            logc = np.log(_float_rows(Y, rows))
            if method == "ratio":
                loggeo[rows] = logc.mean(axis=1)
            else:
                finite = np.isfinite(logc)
                g = np.where(finite, logc, 0.0).mean(axis=1)
                g[~finite.any(axis=1)] = -np.inf  # every count zero
                loggeo[rows] = g
    usable = np.flatnonzero(np.isfinite(loggeo))
    if not usable.size:
        raise ValueError("counts: every gene has a zero count, so the median-of-ratios size "
                         "factors are undefined; use size_factors(counts, method='poscounts') "
                         "or pass size_factors=.")
    # per sample, the median over the usable genes' positive counts, a few samples at a time
    sf = np.empty(n)
    per = max(1, BLOCK_ENTRIES // usable.size)
    for j in range(0, n, per):
        cols = np.arange(j, min(j + per, n))
        with np.errstate(divide="ignore"):
            logr = np.log(np.asarray(Y[np.ix_(usable, cols)], np.float64)) - loggeo[usable, None]
        if method == "ratio":  # a usable gene has no zero
            sf[cols] = np.exp(np.median(logr, axis=0))
        else:
            logr[~np.isfinite(logr)] = np.nan
            sf[cols] = np.exp(np.nanmedian(logr, axis=0))
    if method == "poscounts":
        sf = sf / np.exp(np.mean(np.log(sf)))
    return sf


# -- inputs -----------------------------------------------------------------------------

#: Genes per block of the pipeline: about this many counts, so that each genes x samples
#: float64 array of a block takes 4 MiB and a call's memory does not grow with the number
#: of genes (10,000 x 100 runs in two blocks, 2,000 x 5,000 in twenty; the block count
#: barely changes the time: the searches step a few genes at a time anyway).
BLOCK_ENTRIES = 1 << 19


def _row_blocks(m, n):
    """Consecutive row ranges of at most BLOCK_ENTRIES entries (at least one row)."""
    per = max(1, BLOCK_ENTRIES // max(n, 1))
    return [slice(i, min(i + per, m)) for i in range(0, m, per)]


def _float_rows(Y, rows):
    """Rows of the counts as float64 (a block-sized copy; the caller's matrix stays as is)."""
    return np.asarray(Y[rows], np.float64)


def _gene_blocks(genes, n):
    """`genes` (indices) split into blocks of one size, about BLOCK_ENTRIES counts each, so
    every block runs the same compiled programs; the last block is padded with its first
    gene. Returns (block size, [indices of each block, padded])."""
    per = max(1, BLOCK_ENTRIES // max(n, 1))
    k = max(1, -(-genes.size // per))
    size = max(1, -(-genes.size // k))
    blocks = [genes[i:i + size] for i in range(0, genes.size, size)]
    return size, [np.concatenate([b, np.full(size - b.size, b[0])]) for b in blocks]


def _counts_matrix(counts):
    """(genes x samples numeric array, gene names or None); AnnData is samples x genes. The
    array is the caller's (no float64 copy of the whole matrix); it is checked a block of
    genes at a time."""
    names = None
    if hasattr(counts, "obs") and hasattr(counts, "var") and hasattr(counts, "X"):  # AnnData
        names = list(map(str, counts.var_names))
        X = counts.X
        counts = (X.toarray() if hasattr(X, "toarray") else np.asarray(X)).T
    elif hasattr(counts, "index") and hasattr(counts, "to_numpy"):  # pandas
        names = list(map(str, counts.index))
        counts = counts.to_numpy()
    Y = np.asarray(counts)
    if Y.ndim != 2:
        raise ValueError(f"counts: expected a genes x samples matrix, got shape {Y.shape}.")
    if not np.issubdtype(Y.dtype, np.number) or np.iscomplexobj(Y):
        raise ValueError(f"counts: expected numbers, got dtype {Y.dtype}.")
    first, total = None, 0
    for rows in _row_blocks(*Y.shape):
        B = _float_rows(Y, rows)
        bad = ~np.isfinite(B) | (B < 0) | (B != np.round(B))
        k = int(bad.sum())
        if k and first is None:
            g, s = map(int, np.argwhere(bad)[0])
            first = (rows.start + g, s, B[g, s])
        total += k
    if first is not None:
        g, s, v = first
        raise ValueError(f"counts: expected non-negative integer counts; counts[{g}, {s}] = "
                         f"{v!r} ({total} such values). Round or remove them.")
    return Y, names


def _design_matrix(design, samples, n):
    """(samples x k float array, column names or None) from a matrix or a formula."""
    if isinstance(design, str):
        if samples is None:
            raise ValueError("samples: a formula design needs the sample table "
                             "(samples=DataFrame with one row per sample).")
        try:
            from formulaic import model_matrix
        except ImportError as e:
            raise ImportError("design: a formula needs formulaic (pip install formulaic); "
                              "or pass the design matrix itself.") from e
        mm = model_matrix(design, samples)
        return np.asarray(mm, float), [str(c) for c in mm.columns]
    names = [str(c) for c in design.columns] if hasattr(design, "columns") else None
    X = np.asarray(design, float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] != n:
        raise ValueError(f"design: expected a samples x k matrix with {n} rows (one per "
                         f"sample, the counts' columns), got shape {X.shape}.")
    if not np.all(np.isfinite(X)):
        raise ValueError("design: contains NaN or infinite values.")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError("design: the design matrix is not of full column rank; remove the "
                         "aliased columns (linear combinations of the others).")
    if X.shape[0] <= X.shape[1]:
        raise ValueError(f"design: {X.shape[0]} samples for {X.shape[1]} coefficients leave "
                         "no replicates to estimate dispersions; use a smaller design.")
    return X, names


def _contrast_vector(contrast, k, names):
    if contrast is None:
        c = np.zeros(k)
        c[-1] = 1.0  # DESeq2's results() default: the last coefficient
        return c
    if isinstance(contrast, str):
        if not names or contrast not in names:
            raise ValueError(f"contrast: {contrast!r} is not a design column ({names}).")
        contrast = names.index(contrast)
    if np.ndim(contrast) == 0:
        i = int(contrast)
        if not -k <= i < k:
            raise ValueError(f"contrast: column index {i} is out of range for a design with "
                             f"{k} columns.")
        c = np.zeros(k)
        c[i] = 1.0
        return c
    c = np.asarray(contrast, float)
    if c.shape != (k,) or not np.all(np.isfinite(c)) or not np.any(c):
        raise ValueError(f"contrast: expected a column index or a finite, non-zero vector of "
                         f"length {k} (the design's columns), got {contrast!r}.")
    return c


# -- compiled kernels -------------------------------------------------------------------


def _solve_spd(A, b):
    """x = A^-1 b for symmetric positive definite (..., p, p) A and (..., p) b: Cholesky
    written out for small p (elementwise over the batch, so XLA fuses it; a batched LAPACK
    call per gene costs more than the rest of an IRLS step), LAPACK's beyond."""
    p = A.shape[-1]
    if p > 8:
        return jnp.linalg.solve(A, b[..., None])[..., 0]
    L = {}
    for j in range(p):
        L[j, j] = jnp.sqrt(A[..., j, j] - sum(L[j, k] ** 2 for k in range(j)))
        for i in range(j + 1, p):
            L[i, j] = (A[..., i, j] - sum(L[i, k] * L[j, k] for k in range(j))) / L[j, j]
    z = []
    for i in range(p):  # L z = b
        z.append((b[..., i] - sum(L[i, k] * z[k] for k in range(i))) / L[i, i])
    x = [None] * p
    for i in reversed(range(p)):  # L' x = z
        x[i] = (z[i] - sum(L[k, i] * x[k] for k in range(i + 1, p))) / L[i, i]
    return jnp.stack(x, axis=-1)


def _pairs(X):
    """n x p^2 column-pair products, so every gene's X' W X is one (m x n) @ (n x p^2)."""
    return (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)


def _logdet_spd(A):
    """log det of symmetric positive definite (..., p, p) matrices: Cholesky written out
    for small p (elementwise over the batch, so XLA fuses it), LAPACK's beyond."""
    p = A.shape[-1]
    if p > 8:
        return jnp.linalg.slogdet(A)[1]
    L = {}
    out = 0.0
    for j in range(p):
        d = A[..., j, j] - sum(L[j, k] ** 2 for k in range(j))
        L[j, j] = jnp.sqrt(d)
        out = out + jnp.log(d)
        for i in range(j + 1, p):
            L[i, j] = (A[..., i, j] - sum(L[i, k] * L[j, k] for k in range(j))) / L[j, j]
    return out


def _distinct_counts(Y):
    """Each row's distinct counts (ascending) and their multiplicities, flattened row after
    row, and how many each row has: (values, multiplicities, widths)."""
    S = np.sort(Y, axis=1)
    first = np.ones(S.shape, bool)
    first[:, 1:] = S[:, 1:] != S[:, :-1]
    # each row starts a run, so the runs of the flattened rows end where the next begins
    starts = np.flatnonzero(first)
    return (S.ravel()[starts], np.diff(np.append(starts, S.size)).astype(float),
            first.sum(axis=1))


def _table_of(values, mults, widths, offsets, rows, width):
    """(V, C) of `rows` from `_distinct_counts`' flat arrays (`offsets`: where each row
    starts), padded with zeros of weight 0 to `width` columns."""
    w = widths[rows]
    col = np.arange(w.sum()) - np.repeat(np.cumsum(w) - w, w)
    src = np.repeat(offsets[rows], w) + col
    at = (np.repeat(np.arange(rows.size), w), col)
    V, C = np.zeros((rows.size, width)), np.zeros((rows.size, width))
    V[at], C[at] = values[src], mults[src]
    return V, C


def _count_table(Y):
    """(V, C): each gene's distinct counts, padded with zeros of weight 0 to a width of a
    power of two (at least 8, at most the number of samples), and their multiplicities."""
    values, mults, widths = _distinct_counts(Y)
    width = min(Y.shape[1], _bucket(int(widths.max())))
    return _table_of(values, mults, widths, np.cumsum(widths) - widths,
                     np.arange(Y.shape[0]), width)


#: Table widths the dispersion search picks among (`_table_sums`), besides the full one.
TABLE_WIDTHS = (16, 64, 256)


def _table_sums(V, C, r, used=None):
    """sum_k C_k lgamma(V_k + r) and -sum_k C_k r digamma(V_k + r) per row over a count
    table; with `used` (the most distinct counts of any row, traced) over the first
    TABLE_WIDTHS width that holds them: genes with few distinct counts do not pay for
    the widest gene's table."""
    def over(w):
        def sums():
            lg, dg = _lgamma_digamma(V[:, :w] + r)
            return jnp.stack(_row_sums(C[:, :w] * lg, -C[:, :w] * r * dg))
        return sums

    ladder = [w for w in TABLE_WIDTHS if w < V.shape[1]] + [V.shape[1]]
    if used is None or len(ladder) == 1:
        return over(V.shape[1])()
    k = jnp.sum(used > jnp.asarray(ladder[:-1]))
    return jax.lax.switch(k, [over(w) for w in ladder])


def _cox_reid(la, mu, P):
    """-1/2 log det(X' W X), W = diag(mu / (1 + alpha mu)), per gene."""
    m = mu.shape[0]
    p = int(round(P.shape[1] ** 0.5))
    w = 1.0 / (1.0 / mu + jnp.exp(la)[:, None])
    return -0.5 * _logdet_spd((w @ P).reshape(m, p, p))


def _log_posterior(la, Y, mu, P, prior_mean, prior_prec):
    """Per gene: the Cox-Reid adjusted NB log-likelihood at fixed means (DESeq2's, without
    the constant -log y!) as a function of log(alpha), plus the normal log prior:

        sum_j [lgamma(y_j + 1/a) - lgamma(1/a) - y_j log(mu_j + 1/a) - 1/a log(1 + a mu_j)]
        - 1/2 log det(X' diag(mu / (1 + a mu)) X) - prior_prec / 2 (log a - prior_mean)^2
    """
    return _value_and_grad(la, Y, mu, P, prior_mean, prior_prec)[0]


def _row_sums(*terms):
    """Each (m, n) term summed over its last axis, all in one reduction (XLA's CPU code
    for one sum of a stack of terms evaluates every term for every entry of the stack,
    about 3x the work: DESeq2's line search is mostly these sums)."""
    return jax.lax.reduce(terms, (jnp.zeros((), terms[0].dtype),) * len(terms),
                          lambda x, y: tuple(u + v for u, v in zip(x, y, strict=True)),
                          (terms[0].ndim - 1,))


def _symmetric(entries, upper, p):
    """(m, p, p) symmetric matrices from their upper-triangle entries at `upper` (i, j)."""
    at = {ij: e for ij, e in zip(upper, entries, strict=True)}
    return jnp.stack([jnp.stack([at[min(i, j), max(i, j)] for j in range(p)], axis=-1)
                      for i in range(p)], axis=-2)


def _value_and_grad(la, Y, mu, P, prior_mean, prior_prec, table=None):
    """Per-gene `_log_posterior` and its derivative in log(alpha), written out so each entry
    costs one pass: with r = 1/a, L = log(1 + a mu) and log(mu + r) = L - log a,

        value_j = lgamma(y_j + r) - (y_j + r) L_j + y_j log a
        d/dlog a: r (L_j - digamma(y_j + r)) + (y_j - mu_j) / (1 + a mu_j),

    plus -n lgamma(r) (derivative n r digamma(r)), the Cox-Reid term (its derivative below;
    the weights share the division 1 / (1 + a mu)) and the prior. `table` = (V, C[, used]),
    a gene's distinct counts and how often each occurs (`_count_table`), gives the lgamma and
    digamma sums over the distinct counts only: with single-cell data a few dozen values
    per gene instead of thousands."""
    m, n = Y.shape
    p = int(round(P.shape[1] ** 0.5))
    a = jnp.exp(la)[:, None]
    r = 1.0 / a
    L = jnp.log1p(a * mu)
    q = 1.0 / (1.0 + a * mu)
    lg_r, dg_r = _lgamma_digamma(r[:, 0])
    value_terms = -(Y + r) * L + Y * la[:, None]
    grad_terms = r * L + (Y - mu) * q
    if table is None:
        lg, dg = _lgamma_digamma(Y + r)
        value_terms, grad_terms = value_terms + lg, grad_terms - r * dg
    # Cox-Reid: A = X' W X with w = mu q; dw/dlog a = -a w^2, so
    # d/dlog a [-1/2 log det A] = a/2 tr(A^-1 X' diag(w^2) X); for small p the entries
    # of A and G = X' diag(w^2) X join the same one-pass sums, else a matrix product
    w = mu * q
    upper = [(i, j) for i in range(p) for j in range(i, p)]
    small = len(upper) <= 10
    extra = [f * P[:, i * p + j] for f in (w, w * w) for i, j in upper] if small else []
    value, grad, *entries = _row_sums(value_terms, grad_terms, *extra)
    if small:
        A, G = (_symmetric(entries[k * len(upper):(k + 1) * len(upper)], upper, p)
                for k in (0, 1))
    else:
        A, G = (jnp.stack([w, w * w]) @ P).reshape(2, m, p, p)
    if table is not None:
        v2, g2 = _table_sums(*table[:2], r, *table[2:])
        value, grad = value + v2, grad + g2
    value = value - n * lg_r
    grad = grad + n * r[:, 0] * dg_r
    trace = sum(_solve_spd(A, G[..., :, i])[..., i] for i in range(p))
    prior = -0.5 * prior_prec * (la - prior_mean) ** 2
    return (value - 0.5 * _logdet_spd(A) + prior,
            grad + 0.5 * a[:, 0] * trace - prior_prec * (la - prior_mean))


#: DESeq2's fitDisp controls: kappa_0, the Armijo epsilon, the iteration cap, the change in
#: the criterion below which it stops.
KAPPA_0, ARMIJO, DISP_MAX_ITER, DISP_TOL = 1.0, 1e-4, 100, 1e-6
#: Genes per step of the iterative searches and fits (`_run_rows`): about this many count
#: entries, so a step's temporaries stay in cache.
STEP_ENTRIES = 50_000


def _step_rows(m, n):
    return max(1, min(m, STEP_ENTRIES // n))


def _line_search_step(state, args, min_log_alpha):
    """One iteration of DESeq2's fitDisp for the rows of `state` (finished rows unchanged);
    a row not yet started gets its criterion and derivative at its start instead."""
    a, lp, dlp, kappa, it, acc, done, lp0, started = state
    prop = a + kappa * dlp
    k = jnp.where(prop < -30.0, (-30.0 - a) / dlp, kappa)
    k = jnp.where(prop > 10.0, (10.0 - a) / dlp, k)
    new = a + k * dlp
    lp_new, dlp_new = _value_and_grad(jnp.where(started, new, a), *args)
    first = ~started & ~done
    lp, dlp = jnp.where(first, lp_new, lp), jnp.where(first, dlp_new, dlp)
    lp0 = jnp.where(first, lp_new, lp0)
    active = ~done & started
    accept = (-lp_new <= -lp - k * ARMIJO * dlp**2) & active
    acc2 = acc + accept.astype(acc.dtype)
    stop = accept & ((lp_new - lp < DISP_TOL) | (new < min_log_alpha))
    k_acc = jnp.minimum(k * 1.1, KAPPA_0)
    k_acc = jnp.where(acc2 % 5 == 0, k_acc / 2.0, k_acc)
    return (jnp.where(accept, new, a), jnp.where(accept, lp_new, lp),
            jnp.where(accept, dlp_new, dlp),
            jnp.where(active, jnp.where(accept, k_acc, k / 2.0), kappa),
            it + active.astype(it.dtype), acc2,
            done | stop | (active & (it + 1 >= DISP_MAX_ITER)), lp0, started | ~done)


def _run_rows(state, data, running, step, rows):
    """Iterate `step(part_state, part_data)` on the rows still `running(state)`, `rows` of
    them at a time: each iteration gathers the first `rows` running rows (padded with a
    finished one, which `step` leaves as it is), steps them and scatters them back, until
    none runs. A row that finishes makes room for the next, so the work is the rows' own
    iterations, not the slowest row's count times the batch, and the body compiles once.
    Each row's steps are those it would take alone."""
    m = jax.tree.leaves(state)[0].shape[0]
    rows = min(rows, m)

    def body(state):
        active = running(state)
        idx = jnp.nonzero(active, size=rows, fill_value=jnp.argmin(active))[0]
        part = step(jax.tree.map(lambda x: x[idx], state),
                    jax.tree.map(lambda x: x[idx], data))
        return jax.tree.map(lambda x, v: x.at[idx].set(v), state, part)

    return jax.lax.while_loop(lambda st: jnp.any(running(st)), body, state)


def _line_search_loop(la0, Y, mu, P, prior_mean, prior_prec, min_log_alpha, V, C, rows):
    """DESeq2's fitDisp for every gene (rows of Y, mu): Armijo steps along the derivative
    in log(alpha) (kappa halved on a rejected step, times 1.1 (at most KAPPA_0) after an
    accepted one and halved every fifth acceptance; log alpha kept in [-30, 10]), stopping
    when an accepted step raises the criterion by less than DISP_TOL, log alpha falls below
    min_log_alpha, or at DISP_MAX_ITER iterations. (V, C): `_count_table(Y)`. `rows` genes
    step at a time (`_run_rows`). Returns (log alpha, iterations, criterion at the start,
    at the end)."""
    m = la0.shape[0]
    zero = jnp.zeros_like(la0)
    # the criterion at the start is the first step's evaluation (no pass over all genes)
    state = (la0, zero, zero, jnp.full(m, KAPPA_0, la0.dtype), jnp.zeros(m, jnp.int32),
             jnp.zeros(m, jnp.int32), jnp.zeros(m, bool), zero, jnp.zeros(m, bool))

    def step(part, data):
        Y, mu, prior_mean, V, C = data
        used = jnp.max(jnp.sum(C > 0, axis=1))
        return _line_search_step(part, (Y, mu, P, prior_mean, prior_prec, (V, C, used)),
                                 min_log_alpha)

    a, lp, _, _, it, _, _, lp0, _ = _run_rows(state, (Y, mu, prior_mean, V, C),
                                              lambda st: ~st[6], step, rows)
    return a, it, lp0, lp


_line_search = _programs.jit(_line_search_loop, static_argnames=("rows",))


@_programs.jit(static_argnames=("rows",))
def _search_dispersions(la0, Y, mu, P, prior_mean, prior_prec, V, C, genewise, max_disp,
                        rows):
    """DESeq2's fitDispWrapper for the genewise (`genewise` true, prior_prec 0) or the MAP
    dispersions, in one program: `_line_search_loop` from exp(la0); genewise values whose
    criterion rose by less than 1e-6 relative keep the start; values the search did not
    settle (the iteration cap, or for genewise values above 1e-7 a single iteration) come
    from DESeq2's grid (`_grid`, `rows` genes at a time). Returns alpha in
    [MIN_DISP, max_disp]."""
    la, it, lp0, lp = _line_search_loop(la0, Y, mu, P, prior_mean, prior_prec,
                                        math.log(MIN_DISP / 10.0), V, C, rows)
    alpha = jnp.minimum(jnp.exp(la), max_disp)
    no_increase = lp < lp0 + jnp.abs(lp0) / 1e6
    alpha = jnp.where(genewise & no_increase, jnp.exp(la0), alpha)
    refit = jnp.where(genewise,
                      ~((it < DISP_MAX_ITER) & (it != 1)) & (alpha > MIN_DISP * 10),
                      it >= DISP_MAX_ITER)

    def step(part, data):
        alpha, pending = part
        Y, mu, prior_mean, V, C = data
        table = (V, C, jnp.max(jnp.sum(C > 0, axis=1)))
        grid = jnp.exp(_grid(Y, mu, P, prior_mean, prior_prec, math.log(MIN_DISP),
                             jnp.log(max_disp), table))
        return jnp.where(pending, grid, alpha), jnp.zeros_like(pending)

    alpha, _ = _run_rows((alpha, refit), (Y, mu, prior_mean, V, C), lambda st: st[1], step,
                         rows)
    return jnp.clip(alpha, MIN_DISP, max_disp)


@_programs.jit(static_argnames=("max_iter",))
def _newton_log_dispersion(Y, mu, P, la0, prior_mean, prior_prec, lo, hi, max_iter=100):
    """argmax over log(alpha) in [lo, hi] of `_log_posterior`, per gene: Newton steps (at
    most 1 in log alpha; gradient-sign steps where the curvature is not negative) accepted
    when the criterion does not decrease, else retried at a quarter of the length.
    Returns (log alpha, criterion, converged)."""
    args = (Y, mu, P, prior_mean, prior_prec)

    def derivs(la):
        (v, g), (_, h) = jax.jvp(lambda x: _value_and_grad(x, *args), (la,),
                                 (jnp.ones_like(la),))
        return v, g, h  # the Hessian of a sum of per-gene terms is diagonal

    def direction(gr, hs):
        d = jnp.where(hs < 0, -gr / jnp.where(hs < 0, hs, -1.0), jnp.sign(gr))
        return jnp.clip(d, -1.0, 1.0)

    la0 = jnp.clip(la0, lo, hi)
    f0, g0, h0 = derivs(la0)

    def body(c):
        la, fv, gr, hs, scale, done, k = c
        new = jnp.clip(la + scale * direction(gr, hs), lo, hi)
        fn, gn, hn = derivs(new)
        ok = jnp.isfinite(fn) & (fn >= fv - 1e-12 * jnp.abs(fv)) & ~done
        moved = jnp.abs(new - la)
        la2, fv2 = jnp.where(ok, new, la), jnp.where(ok, fn, fv)
        gr2, hs2 = jnp.where(ok, gn, gr), jnp.where(ok, hn, hs)
        scale2 = jnp.where(ok, jnp.minimum(1.0, 2.0 * scale), scale / 4.0)
        at_bound = ((la2 <= lo) & (gr2 < 0)) | ((la2 >= hi) & (gr2 > 0))
        newly = (ok & (moved < 1e-8)) | (scale2 < 1e-10) | at_bound
        return la2, fv2, gr2, hs2, scale2, done | newly, k + 1

    init = (la0, f0, g0, h0, jnp.ones_like(la0), jnp.zeros(la0.shape, bool),
            jnp.asarray(0, jnp.int32))
    la, fv, _, _, _, done, _ = jax.lax.while_loop(
        lambda c: (c[-1] < max_iter) & ~jnp.all(c[5]), body, init)
    return la, fv, done


def _grid(Y, mu, P, prior_mean, prior_prec, lo, hi, table=None):
    """DESeq2's fitDispGrid: the best of 20 log(alpha) values evenly spaced in [lo, hi],
    then the best of 20 in that point +- one spacing (the first of equal values, as R's
    which.max). One criterion evaluation per loop step, so its code compiles once."""
    grid = jnp.linspace(lo, hi, 20)
    offsets = jnp.linspace(-1.0, 1.0, 20) * (grid[1] - grid[0])
    m = Y.shape[0]

    def body(k, c):
        coarse, coarse_value, fine, fine_value = c
        in_coarse = k < 20
        x = jnp.where(in_coarse, grid[jnp.minimum(k, 19)],
                      coarse + offsets[jnp.maximum(k - 20, 0)])
        v = _value_and_grad(x, Y, mu, P, prior_mean, prior_prec, table)[0]
        better_coarse = in_coarse & (v > coarse_value)
        better_fine = ~in_coarse & (v > fine_value)
        return (jnp.where(better_coarse, x, coarse), jnp.where(better_coarse, v, coarse_value),
                jnp.where(better_fine, x, fine), jnp.where(better_fine, v, fine_value))

    start = jnp.full(m, lo)
    none = jnp.full(m, -jnp.inf)
    return jax.lax.fori_loop(0, 40, body, (start, none, start, none))[2]


def _nb_loglik_constant(Y, alpha, table=None):
    """The part of the NB log-likelihood that does not depend on the means, per gene;
    over the distinct counts (`_count_table`) when `table` = (V, C) is given."""
    r = 1.0 / alpha[:, None]
    if table is not None:
        V, C = table
        return (jnp.sum(C * (_lgamma(V + r) - _lgamma(V + 1.0)), axis=1)
                - Y.shape[1] * _lgamma(r[:, 0]))
    return jnp.sum(_lgamma(Y + r) - _lgamma(Y + 1.0), axis=1) - Y.shape[1] * _lgamma(r[:, 0])


def _nb_loglik(Y, mu, alpha, constant):
    """sum_j log NB(y_j; mu_j, size 1/alpha) per gene, given `_nb_loglik_constant`."""
    r = 1.0 / alpha[:, None]
    return constant + jnp.sum(r * jnp.log(r / (r + mu)) + Y * jnp.log(mu / (r + mu)), axis=1)


@_programs.jit(static_argnames=("rows", "max_iter"))
def _fit_nb_glm(Y, X, sf, alpha, beta0, tol, V, C, rows, max_iter=100):
    """DESeq2's fitBeta for every gene at its fixed alpha: IRLS with a ridge of RIDGE on each
    coefficient and means bounded below by MIN_MU, until the relative change of the deviance
    is below tol (from the second iteration on); a gene stops where a coefficient passes
    LARGE_COEF, or after max_iter iterations; `rows` genes step at a time (`_run_rows`).
    The deviance uses log(1 + alpha mu) once per
    count: with log mu = max(eta, log MIN_MU) known,
    log NB = y log mu - (y + 1/alpha) log(1 + alpha mu) + y log alpha + constant.
    Returns (beta, converged, the log-likelihood's constant `_nb_loglik_constant`)."""
    m, n = Y.shape
    p = X.shape[1]
    P = _pairs(X)
    ridge = RIDGE * jnp.eye(p, dtype=Y.dtype)
    logsf = jnp.log(sf)

    def log_mu(beta):
        return jnp.maximum(beta @ X.T + logsf, math.log(MIN_MU))

    def deviance(Y, alpha, constant, logmu):
        a = alpha[:, None]
        L = jnp.log1p(a * jnp.exp(logmu))
        ll = jnp.sum(Y * (logmu + jnp.log(a)) - (Y + 1.0 / a) * L, axis=1)
        return -2.0 * (constant + ll)

    def irls_step(Y, alpha, beta):
        logmu = log_mu(beta)
        mu = jnp.exp(logmu)
        w = mu / (1.0 + alpha[:, None] * mu)
        z = logmu - logsf + (Y - mu) / mu
        A = (w @ P).reshape(Y.shape[0], p, p) + ridge
        return _solve_spd(A, (w * z) @ X)

    def running(c):
        return ~c[2] & (c[3] < max_iter)

    def step(c, data):
        Y, alpha, constant = data
        beta, dev_old, done, it = c
        active = running(c)
        new = irls_step(Y, alpha, beta)
        big = jnp.any(jnp.abs(new) > LARGE_COEF, axis=1) | ~jnp.all(jnp.isfinite(new), axis=1)
        dev = deviance(Y, alpha, constant, log_mu(new))
        conv = (it > 0) & (jnp.abs(dev - dev_old) / (jnp.abs(dev) + 0.1) < tol)
        return (jnp.where(active[:, None], new, beta), jnp.where(active, dev, dev_old),
                done | (active & (conv | big)), it + active.astype(it.dtype))

    constant = _nb_loglik_constant(Y, alpha, (V, C))
    data = (Y, alpha, constant)
    state = (beta0, jnp.zeros(m, Y.dtype), jnp.zeros(m, bool), jnp.zeros(m, jnp.int32))
    state = _run_rows(state, data, running, step, rows)
    beta, _, done, _ = state
    big = jnp.any(jnp.abs(beta) > LARGE_COEF, axis=1) | ~jnp.all(jnp.isfinite(beta), axis=1)
    return beta, done & ~big, constant


#: DESeq2's box for its optim() refit: |log2 coefficient| <= 30.
BOX = 30.0 * np.log(2.0)


@_programs.jit(static_argnames=("max_iter",))
def _fit_nb_box(Y, X, sf, alpha, beta0, max_iter=200):
    """DESeq2's refit of the genes IRLS leaves unsettled (fitNbinomGLMsOptim): the maximum of
    the NB log-likelihood minus RIDGE/2 |beta|^2 with every coefficient in [-BOX, BOX], by
    projected Newton (coordinates at a bound whose gradient points outward held fixed) with
    step halving. Returns (beta, converged)."""
    m, n = Y.shape
    p = X.shape[1]
    P = _pairs(X)
    logsf = jnp.log(sf)
    r = 1.0 / alpha[:, None]

    constant = _nb_loglik_constant(Y, alpha)

    def objective(beta):
        mu = jnp.exp(beta @ X.T + logsf)
        return -_nb_loglik(Y, mu, alpha, constant) + 0.5 * RIDGE * jnp.sum(beta**2, axis=1)

    def body(c):
        beta, obj, done, k = c
        mu = jnp.exp(beta @ X.T + logsf)
        g = ((Y - mu) * r / (r + mu)) @ X - RIDGE * beta            # ascent direction
        w = (Y + r) * r * mu / (r + mu) ** 2
        H = (w @ P).reshape(m, p, p) + RIDGE * jnp.eye(p, dtype=Y.dtype)
        fixed = ((beta <= -BOX) & (g < 0)) | ((beta >= BOX) & (g > 0))
        free = ~fixed
        Hf = jnp.where(free[:, :, None] & free[:, None, :], H, 0.0)
        Hf = Hf + jnp.where(fixed, 1.0, 0.0)[:, :, None] * jnp.eye(p, dtype=Y.dtype)
        d = jnp.linalg.solve(Hf, jnp.where(free, g, 0.0)[..., None])[..., 0]

        def halve(carry):
            t, _, _ = carry
            cand = jnp.clip(beta + t[:, None] * d, -BOX, BOX)
            o = objective(cand)
            ok = jnp.isfinite(o) & (o <= obj)
            return t, cand, ok

        def try_step(i, carry):
            t, cand, ok = carry
            t = jnp.where(ok, t, t / 2.0)
            return halve((t, cand, ok))

        t0 = jnp.ones(m, Y.dtype)
        _, cand, ok = jax.lax.fori_loop(0, 20, try_step, halve((t0, beta, jnp.zeros(m, bool))))
        new_obj = jnp.where(ok, objective(cand), obj)
        beta2 = jnp.where((ok & ~done)[:, None], cand, beta)
        conv = done | (jnp.abs(obj - new_obj) <= 1e-12 * (jnp.abs(new_obj) + 1.0)) | ~ok
        return beta2, jnp.where(done, obj, new_obj), conv, k + 1

    beta0 = jnp.clip(jnp.where(jnp.isfinite(beta0), beta0, 0.0), -BOX, BOX)
    init = (beta0, objective(beta0), jnp.zeros(m, bool), jnp.asarray(0, jnp.int32))
    beta, _, done, _ = jax.lax.while_loop(
        lambda c: (c[-1] < max_iter) & ~jnp.all(c[2]), body, init)
    return beta, done


def _inverse_spd(A):
    """A^-1 for symmetric positive definite (..., p, p) A, column by column by `_solve_spd`
    (elementwise over the batch for small p)."""
    p = A.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(p, dtype=A.dtype), A.shape)
    return jnp.stack([_solve_spd(A, eye[..., i]) for i in range(p)], axis=-1)


@_programs.jit()
def _nb_glm_stats(Y, X, sf, alpha, beta, constant, d_rob, for_cooks):
    """At DESeq2's coefficients, per gene: the sandwich covariance (X'WX + R)^-1 X'WX
    (X'WX + R)^-1 with W from the means bounded below by MIN_MU, the log-likelihood, and
    Cook's distances  (y - mu)^2 / (mu + d_rob mu^2) / p * h / (1 - h)^2  (h the hat
    diagonal): their largest over the samples `for_cooks`, and how many counts exceed the
    count with the largest distance (DESeq2's two-group rule). No genes x samples output.
    constant: `_nb_loglik_constant` (from `_fit_nb_glm`)."""
    m = Y.shape[0]
    p = X.shape[1]
    P = _pairs(X)
    mu_raw = jnp.exp(beta @ X.T + jnp.log(sf))
    mu = jnp.maximum(mu_raw, MIN_MU)
    w = mu / (1.0 + alpha[:, None] * mu)
    XtWX = (w @ P).reshape(m, p, p)
    Ainv = _inverse_spd(XtWX + RIDGE * jnp.eye(p, dtype=Y.dtype))
    sigma = Ainv @ XtWX @ Ainv
    hat = w * (Ainv.reshape(m, p * p) @ P.T)
    pearson2 = (Y - mu_raw) ** 2 / (mu_raw + d_rob[:, None] * mu_raw**2)
    cooks = pearson2 / p * hat / (1.0 - hat) ** 2
    max_cooks = jnp.max(jnp.where(for_cooks, cooks, -jnp.inf), axis=1)
    out_count = jnp.take_along_axis(Y, jnp.argmax(cooks, axis=1)[:, None], axis=1)
    above = jnp.sum(Y > out_count, axis=1)
    ll = _nb_loglik(Y, mu_raw, alpha, constant)
    return sigma, ll, max_cooks, above


def _nb_fit(jY, Y, X, sf, alpha, dtype, table):
    """DESeq2's fitNbinomGLMs for a block of genes: IRLS from the least-squares start, then
    the box-constrained refit of the rows it leaves unconverged or beyond |beta| = 30.
    jY: the block's counts on the device, Y the same on the host. Returns numpy
    (beta, converged) and the log-likelihood's constant (on the device)."""
    jX, jsf, jal = (to_device(a, dtype) for a in (X, sf, alpha))
    beta0 = _initial_beta(Y / sf[None, :], X)
    beta, conv, constant = _fit_nb_glm(jY, jX, jsf, jal, to_device(beta0, dtype),
                             to_device(1e-8, dtype), *table, rows=_step_rows(*Y.shape))
    beta, conv = np.array(beta), np.array(conv)
    rows = np.flatnonzero(~conv)
    if rows.size:
        take = _padded_rows(rows)
        b, ok = _fit_nb_box(to_device(Y[take], dtype), jX, jsf,
                            to_device(alpha[take], dtype), to_device(beta[take], dtype))
        beta[rows] = np.asarray(b)[:rows.size]
        conv[rows] = np.asarray(ok)[:rows.size]
    return beta, conv, constant


# -- host-side steps ---------------------------------------------------------------------


def _linear_model_mu(Ynorm, X, sf):
    """DESeq2's linearModelMu on the normalized counts, scaled back by the size factors."""
    Q = np.linalg.qr(X)[0]  # X R^-1 = Q
    return ((Ynorm @ Q) @ Q.T) * sf[None, :]


def _distinct_rows(X):
    return np.unique(np.round(X, 12), axis=0, return_inverse=True)


def _initial_beta(Ynorm, X):
    """DESeq2's start: least squares of log(normalized count + 0.1) on the design."""
    Q, R = np.linalg.qr(X)
    return np.linalg.solve(R, (np.log(Ynorm + 0.1) @ Q).T).T


def _trigamma(x):
    """psi'(x), x > 0: the recurrence up to x >= 10, then the asymptotic series."""
    acc = 0.0
    while x < 10.0:
        acc += 1.0 / x**2
        x += 1.0
    x2 = 1.0 / (x * x)
    tail = x2 * (1 / 6 - x2 * (1 / 30 - x2 * (1 / 42 - x2 / 30)))
    return acc + 1.0 / x + x2 / 2.0 + tail / x


def _normal_two_sided(z):
    """2 P(N(0,1) > |z|) = erfc(|z| / sqrt 2), on the host (NaN stays NaN)."""
    return np.vectorize(math.erfc, otypes=[float])(np.abs(z) / math.sqrt(2.0))


def _mad(x):
    return 1.4826 * np.median(np.abs(x - np.median(x)))


def _parametric_trend(means, disps):
    """DESeq2's parametricDispersionFit: (a0, a1) of a0 + a1 / mean, or None if it fails."""
    coefs = np.array([0.1, 1.0])
    for _ in range(11):
        resid = disps / (coefs[0] + coefs[1] / means)
        good = (resid > 1e-4) & (resid < 15)
        new = _gamma_identity_glm(np.column_stack([np.ones(good.sum()), 1.0 / means[good]]),
                                  disps[good], coefs)
        if new is None or not np.all(new > 0):
            return None
        old, coefs = coefs, new
        if np.sum(np.log(coefs / old) ** 2) < 1e-6:
            return coefs
    return None


def _gamma_identity_glm(A, y, start, max_iter=25, eps=1e-8):
    """R's glm(y ~ A, family=Gamma("identity"), start=start): IRLS on weights 1 / mu^2."""
    beta = start
    dev_old = np.inf
    for _ in range(max_iter):
        mu = A @ beta
        if np.any(mu <= 0):
            return None
        w = 1.0 / mu**2
        beta = np.linalg.solve(A.T @ (w[:, None] * A), A.T @ (w * y))
        mu = A @ beta
        if np.any(mu <= 0):
            return None
        dev = 2.0 * np.sum(-np.log(y / mu) + (y - mu) / mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < eps:
            return beta
        dev_old = dev
    return beta


def _trimmed_mean(x, trim):
    """R's mean(x, trim=) along rows."""
    n = x.shape[1]
    lo = int(np.floor(n * trim))
    s = np.sort(x, axis=1)
    return s[:, lo:n - lo].mean(axis=1)


def _robust_moments_dispersion(Ynorm, groups, counts_per_group):
    """DESeq2's robustMethodOfMomentsDisp (for Cook's distances), at least 0.04."""
    three = counts_per_group[groups] >= 3
    mean = Ynorm.mean(axis=1)
    if three.any():
        variances = []
        for g in np.unique(groups[three]):
            cols = groups == g
            k = cols.sum()
            b = 0 if k <= 3.5 else (1 if k <= 23.5 else 2)
            trim, scale = (1 / 3, 1 / 4, 1 / 8)[b], (2.04, 1.86, 1.51)[b]
            cm = _trimmed_mean(Ynorm[:, cols], trim)
            variances.append(scale * _trimmed_mean((Ynorm[:, cols] - cm[:, None]) ** 2, trim))
        v = np.max(variances, axis=0)
    else:
        rm = _trimmed_mean(Ynorm, 1 / 8)
        v = 1.51 * _trimmed_mean((Ynorm - rm[:, None]) ** 2, 1 / 8)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum((v - mean) / mean**2, 0.04)


def _f_quantile(q, d1, d2):
    """The q quantile of F(d1, d2): bisection on the regularized incomplete beta
    I_u(d1/2, d2/2) = q, then f = u d2 / ((1 - u) d1). Plain Python (scipy.stats alone
    takes over a second to import)."""
    a, b = d1 / 2.0, d2 / 2.0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
    u = 0.5 * (lo + hi)
    return u * d2 / ((1 - u) * d1)


def _betainc(a, b, x):
    """Regularized incomplete beta I_x(a, b), 0 < x < 1, by its continued fraction
    (modified Lentz), on the side of the mean where it converges fast."""
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
                 + b * math.log1p(-x))
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for k in range(1, 10_000):
        for num in (k * (b - k) * x / ((a + 2 * k - 1) * (a + 2 * k)),
                    -(a + k) * (a + b + k) * x / ((a + 2 * k) * (a + 2 * k + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= c * d
        if abs(c * d - 1.0) < 1e-16:
            break
    return math.exp(log_front) * h / a


def _lowess(x, y, f=0.2, iters=3):
    """R's lowess (clowess) at the points x themselves (sorted, distinct, evenly spaced)."""
    n = len(x)
    ns = max(min(int(f * n + 1e-7), n), 2)
    rw = np.ones(n)
    ys = np.empty(n)
    rng = x[-1] - x[0]
    for it in range(iters + 1):
        for i in range(n):
            d = np.abs(x - x[i])
            h = np.sort(d)[ns - 1]
            w = np.zeros(n)
            near = d <= 0.999 * h
            w[near] = np.where(d[near] <= 0.001 * h, 1.0, (1 - (d[near] / h) ** 3) ** 3)
            w *= rw
            if w.sum() <= 0:
                ys[i] = y[i]
                continue
            w /= w.sum()
            if h > 0:
                a = np.sum(w * x)
                c = np.sum(w * (x - a) ** 2)
                if np.sqrt(c) > 0.001 * rng:
                    w = w * ((x[i] - a) * (x - a) / c + 1.0)
            ys[i] = np.sum(w * y)
        if it == iters:
            break
        res = y - ys
        cmad = 6.0 * np.median(np.abs(res))
        if cmad < 1e-7 * np.mean(np.abs(y)):
            break
        r = np.abs(res)
        rw = np.where(r <= 0.001 * cmad, 1.0,
                      np.where(r > 0.999 * cmad, 0.0, (1 - (r / cmad) ** 2) ** 2))
    return ys


def _bh(P):
    """Benjamini-Hochberg adjusted p-values of each column of P (NaN: not tested, not
    counted), as R's p.adjust(method="BH"): min(1, min_{j >= i} m p_(j) / j)."""
    P = np.asarray(P, float)
    order = np.argsort(P, axis=0)  # NaN last
    ps = np.take_along_axis(P, order, axis=0)
    tested = np.sum(~np.isnan(P), axis=0)
    q = ps * tested / np.arange(1, P.shape[0] + 1)[:, None]
    q = np.minimum.accumulate(np.where(np.isnan(q), np.inf, q)[::-1], axis=0)[::-1]
    out = np.empty_like(P)
    np.put_along_axis(out, order, np.minimum(q, 1.0), axis=0)
    return np.where(np.isnan(P), np.nan, out)


def _independent_filtering(base_mean, pvalue, alpha):
    """DESeq2's results() padj: BH within the genes above a base-mean quantile, the quantile
    chosen where the number of rejections at `alpha` first nears its lowess-fitted maximum.
    Returns (padj, threshold)."""
    lower = float(np.mean(base_mean == 0))
    theta = np.linspace(lower, 0.95 if lower < 0.95 else 1.0, 50)
    cutoffs = np.quantile(base_mean, theta)
    use = base_mean[:, None] >= cutoffs[None, :]
    P = np.where(use, pvalue[:, None], np.nan)
    padj_all = _bh(P)
    num_rej = np.sum(padj_all < alpha, axis=0)
    if num_rej.max() <= 10:
        j = 0
    else:
        fit = _lowess(theta, num_rej.astype(float))
        pos = num_rej > 0
        residual = num_rej[pos] - fit[pos]
        max_fit = fit.max()
        thresh = max_fit - np.sqrt(np.mean(residual**2))
        j = 0
        for level in (thresh, 0.9 * max_fit, 0.8 * max_fit):
            if np.any(num_rej > level):
                j = int(np.argmax(num_rej > level))
                break
    return padj_all[:, j], float(cutoffs[j])


def _bucket(k):
    """Rows padded to a power of two (at least 8), so few distinct programs compile."""
    return max(8, 1 << (k - 1).bit_length())


def _padded_rows(rows):
    return np.concatenate([rows, np.full(_bucket(rows.size) - rows.size, rows[0])])


def _dispersion_search(jY, mu, X, start, prior_mean, prior_var, search, max_disp, dtype,
                       table):
    """Genewise (prior_var None) or MAP dispersions of a block of genes (counts jY on the
    device, means mu on the host), DESeq2's way (`_search_dispersions`) or to the optimum
    (`_newton_log_dispersion`). Returns numpy (alpha, converged)."""
    genewise = prior_var is None
    P = to_device(_pairs(X), dtype)
    prec = to_device(0.0 if genewise else 1.0 / prior_var, dtype)
    mud, pmd = to_device(mu, dtype), to_device(np.asarray(prior_mean, float), dtype)
    la0 = to_device(np.log(start), dtype)
    if search == "newton":
        la, _, conv = _newton_log_dispersion(jY, mud, P, la0, pmd, prec,
                                             np.log(MIN_DISP / 10.0), np.log(max_disp))
        return np.clip(np.exp(np.asarray(la)), MIN_DISP, max_disp), np.asarray(conv)
    alpha = _search_dispersions(la0, jY, mud, P, pmd, prec, *table,
                                to_device(genewise, bool), to_device(max_disp, dtype),
                                rows=_step_rows(*mu.shape))
    return np.asarray(alpha), np.ones(start.shape, bool)


# -- the pipeline -------------------------------------------------------------------------


def _start_dispersion(Yn, base_mean, base_var, sf, Q, p):
    """DESeq2's start for the genewise search: the smaller of two moment estimates."""
    n = Yn.shape[1]
    lm = np.maximum((Yn @ Q) @ Q.T, 1.0)
    rough = np.maximum(np.sum(((Yn - lm) ** 2 - lm) / lm**2, axis=1) / (n - p), 0.0)
    moments = (base_var - np.mean(1.0 / sf) * base_mean) / base_mean**2
    return np.minimum(rough, moments)


def differential_expression(counts, design, contrast=None, size_factors=None, *,
                            samples=None, reduced=None, alpha=0.1,
                            independent_filtering=True, cooks_filter=True,
                            dispersion_search="deseq2"):
    """DESeq2's `DESeq()` + `results()` for every gene of a count matrix (see the module doc).

    counts: genes x samples non-negative integer counts (numpy; pandas DataFrame whose index
    names the genes; AnnData, samples x genes). design: samples x k matrix including its
    intercept column, or a formula (formulaic) over `samples`, the sample table.
    contrast: a design column (index, or name for a formula or DataFrame design) or a
    length-k vector c, tested as c' beta = 0; default the last column, as results().
    size_factors: per sample (default DESeq2's median of ratios). reduced: a reduced design
    (matrix or formula) for the likelihood-ratio test, which then gives `stat` and
    `pvalue` (log2FoldChange and lfcSE stay the contrast's). alpha: the FDR level that
    independent filtering optimizes (DESeq2's default 0.1). dispersion_search: "deseq2"
    (DESeq2's line search and stopping rules, so the dispersions are DESeq2's) or "newton"
    (safeguarded Newton to the optimum of the same criteria; equal or higher criterion).

    Genes go through the fits in blocks of about BLOCK_ENTRIES counts (one compiled shape),
    so the memory a call needs beyond the counts is a few blocks, not a few count matrices.

    Returns a pandas DataFrame (a dict of numpy arrays without pandas) with DESeq2's columns
    baseMean, log2FoldChange, lfcSE, stat, pvalue, padj, the dispersions dispGeneEst,
    dispFit, dispersion and a `status` code (`STATUS`). `.attrs` (the dict's "attrs") holds
    size_factors, dispersion_trend (a0, a1), prior_variance and filter_threshold.
    """
    Y, gene_names = _counts_matrix(counts)
    m, n = Y.shape
    X, col_names = _design_matrix(design, samples, n)
    p = X.shape[1]
    c = _contrast_vector(contrast, p, col_names)
    if size_factors is None:
        sf = _size_factors(Y, "ratio")
    else:
        sf = np.asarray(size_factors, float).reshape(-1)
        if sf.shape != (n,) or not np.all(np.isfinite(sf) & (sf > 0)):
            raise ValueError(f"size_factors: expected {n} positive finite numbers (one per "
                             f"sample), got {size_factors!r}.")
    if dispersion_search not in ("deseq2", "newton"):
        raise ValueError(f"dispersion_search: expected 'deseq2' or 'newton', got "
                         f"{dispersion_search!r}.")
    Xr = None
    if reduced is not None:
        Xr, _ = _design_matrix(reduced, samples, n)
        if Xr.shape[1] >= p:
            raise ValueError(f"reduced: the reduced design has {Xr.shape[1]} columns, the "
                             f"full one {p}; the reduced design must have fewer.")
    if not jax.config.jax_enable_x64:
        warnings.warn("differential_expression runs in float32 because jax_enable_x64 is off; "
                      "p-values agree with DESeq2's only in float64 (jax.config.update("
                      "'jax_enable_x64', True)).", RuntimeWarning, stacklevel=2)
    dtype = np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)

    base_mean, base_var = np.empty(m), np.empty(m)
    for rows in _row_blocks(m, n):
        Yn = _float_rows(Y, rows) / sf[None, :]
        base_mean[rows], base_var[rows] = Yn.mean(axis=1), Yn.var(axis=1, ddof=1)
    all_zero = base_mean == 0
    genes = np.flatnonzero(~all_zero)
    mnz = genes.size
    max_disp = max(10.0, float(n))
    _, groups = _distinct_rows(X)
    groups = groups.reshape(-1)
    n_groups = groups.max() + 1
    linear_start = n_groups == p
    Q = np.linalg.qr(X)[0]
    counts_per_group = np.bincount(groups)
    for_cooks = counts_per_group[groups] >= 3
    bm, bv = base_mean[genes], base_var[genes]

    # each gene's distinct counts and multiplicities: the lgamma sums of the dispersion
    # search and of the likelihood constants run over these instead of every count
    flat, alpha_init = [], np.empty(mnz)
    for rows in _row_blocks(mnz, n):
        Yb = _float_rows(Y, genes[rows])
        flat.append(_distinct_counts(Yb))
        alpha_init[rows] = _start_dispersion(Yb / sf[None, :], bm[rows], bv[rows], sf, Q, p)
    alpha_init = np.clip(alpha_init, MIN_DISP, max_disp)
    values, mults, widths = (np.concatenate(a) for a in zip(*flat, strict=True))
    del flat
    offsets = np.cumsum(widths) - widths
    width = min(n, _bucket(int(widths.max())))
    # blocks of genes (positions among the non-zero genes) in order of their number of
    # distinct counts, so that a step of the search meets genes of similar table widths
    size, blocks = _gene_blocks(np.argsort(widths, kind="stable"), n)

    def block(i):
        """The block's positions (padded), real count, counts (host, float64), normalized
        counts and count table."""
        pos = blocks[i]
        k = min(size, mnz - i * size)
        Yb = _float_rows(Y, genes[pos])
        return pos, k, Yb, Yb / sf[None, :], _table_of(values, mults, widths, offsets, pos,
                                                       width)

    beta_start = np.empty((mnz, p))

    def block_means(pos, k, Yb, Yn, jY, table, first):
        """The means the dispersion searches hold fixed: DESeq2's linear model of the
        normalized counts, or an NB fit at the starting dispersion (fitted on the `first`
        pass, kept for the second); at least MIN_MU."""
        if linear_start:
            return np.maximum(_linear_model_mu(Yn, X, sf), MIN_MU)
        if first:
            b, _, _ = _nb_fit(jY, Yb, X, sf, alpha_init[pos], dtype, table)
            beta_start[pos[:k]] = b[:k]
        return np.maximum(np.exp(beta_start[pos] @ X.T) * sf[None, :], MIN_MU)

    # 2. genewise dispersions
    disp_gene, conv_gw = np.empty(mnz), np.empty(mnz, bool)
    for i in range(len(blocks)):
        pos, k, Yb, Yn, table = block(i)
        jY = to_device(Yb, dtype)
        table = tuple(to_device(a, dtype) for a in table)
        mu = block_means(pos, k, Yb, Yn, jY, table, True)
        a, ok = _dispersion_search(jY, mu, X, alpha_init[pos], np.zeros(size), None,
                                   dispersion_search, max_disp, dtype, table)
        disp_gene[pos[:k]], conv_gw[pos[:k]] = a[:k], ok[:k]

    # 3. the trend
    use = disp_gene > 100 * MIN_DISP
    if not use.any():
        raise ValueError("counts: every genewise dispersion is within two orders of magnitude "
                         "of the minimum (1e-8), so no dispersion trend can be fitted.")
    trend = _parametric_trend(bm[use], disp_gene[use])
    if trend is None:
        warnings.warn("the parametric dispersion trend a0 + a1/mean did not fit (DESeq2 would "
                      "switch to a local fit); using the mean genewise dispersion instead.",
                      RuntimeWarning, stacklevel=2)
        mean_disp = float(np.mean(disp_gene[disp_gene > 10 * MIN_DISP]))
        trend = np.array([mean_disp, 0.0])
    disp_fit = trend[0] + trend[1] / bm

    # 4. prior variance; then per block the MAP dispersions, 5. the final GLM, its Wald
    # test and LRT, 6. Cook's distances
    resid = np.log(disp_gene) - np.log(disp_fit)
    above = disp_gene >= 100 * MIN_DISP
    var_log = _mad(resid[above]) ** 2
    prior_var = max(var_log - _trigamma((n - p) / 2.0), 0.25) if n > p else var_log
    start = np.where(disp_gene > 0.1 * disp_fit, disp_gene, disp_fit)
    outlier = np.log(disp_gene) > np.log(disp_fit) + OUTLIER_SD * np.sqrt(var_log)
    cooks = cooks_filter and n > p and for_cooks.any()
    dispersion, conv_map = np.empty(mnz), np.empty(mnz, bool)
    beta, sigma = np.empty((mnz, p)), np.empty((mnz, p, p))
    ll, conv_beta, big = np.empty(mnz), np.empty(mnz, bool), np.empty(mnz, bool)
    max_cooks, n_above = np.full(mnz, -np.inf), np.zeros(mnz, np.int64)
    ll_r = np.empty(mnz)
    jX, jsf, jfor = to_device(X, dtype), to_device(sf, dtype), to_device(for_cooks, bool)
    for i in range(len(blocks)):
        pos, k, Yb, Yn, table = block(i)
        jY = to_device(Yb, dtype)
        table = tuple(to_device(a, dtype) for a in table)
        mu = block_means(pos, k, Yb, Yn, jY, table, False)
        a, ok = _dispersion_search(jY, mu, X, start[pos], np.log(disp_fit[pos]), prior_var,
                                   dispersion_search, max_disp, dtype, table)
        real = pos[:k]
        dispersion[real] = np.where(outlier[real], disp_gene[real], a[:k])
        conv_map[real] = ok[:k]
        disp_b = dispersion[pos]
        b, conv, constant = _nb_fit(jY, Yb, X, sf, disp_b, dtype, table)
        d_rob = (_robust_moments_dispersion(Yn, groups, counts_per_group) if cooks
                 else np.ones(size))
        out = _nb_glm_stats(jY, jX, jsf, to_device(disp_b, dtype), to_device(b, dtype),
                            constant, to_device(d_rob, dtype), jfor)
        beta[real], conv_beta[real] = b[:k], conv[:k]
        big[real] = np.any(np.abs(b[:k]) >= BOX * (1 - 1e-9), axis=1)
        sigma[real], ll[real], max_cooks[real], n_above[real] = (np.asarray(o)[:k]
                                                                 for o in out)
        if Xr is not None:
            b_r, conv_r, _ = _nb_fit(jY, Yb, Xr, sf, disp_b, dtype, table)
            out = _nb_glm_stats(jY, to_device(Xr, dtype), jsf, to_device(disp_b, dtype),
                                to_device(b_r, dtype), constant, to_device(d_rob, dtype), jfor)
            ll_r[real] = np.asarray(out[1])[:k]
            conv_beta[real] &= conv_r[:k]
            big[real] |= np.any(np.abs(b_r[:k]) >= BOX * (1 - 1e-9), axis=1)

    est = beta @ c
    se = np.sqrt(np.maximum(np.einsum("i,mij,j->m", c, sigma, c), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = est / se
    pvalue = _normal_two_sided(stat)
    if Xr is not None:
        stat = np.maximum(2.0 * (ll - ll_r), 0.0)
        df = p - Xr.shape[1]
        pvalue = np.asarray(gammaincc(df / 2.0, jnp.asarray(stat) / 2.0))

    cooks_out = np.zeros(mnz, bool)
    if cooks:
        cooks_out = max_cooks > _f_quantile(0.99, p, n - p)
        if p == 2 and n_groups == 2:
            # DESeq2's two-group rule: keep a gene when three or more counts exceed the
            # count with the largest Cook's distance
            cooks_out &= n_above < 3
    pvalue = np.where(cooks_out, np.nan, pvalue)

    nz = ~all_zero
    full = {k: np.full(m, np.nan) for k in COLUMNS[:-1]}
    full["baseMean"] = base_mean
    for key, val in (("log2FoldChange", est / np.log(2.0)), ("lfcSE", se / np.log(2.0)),
                     ("stat", stat), ("pvalue", pvalue), ("dispGeneEst", disp_gene),
                     ("dispFit", disp_fit), ("dispersion", dispersion)):
        full[key][nz] = val
    threshold = None
    if independent_filtering:
        padj, threshold = _independent_filtering(base_mean, full["pvalue"], alpha)
    else:
        padj = _bh(full["pvalue"][:, None])[:, 0]
    full["padj"] = padj
    status = np.zeros(m, np.int64)
    sub = np.zeros(nz.sum(), np.int64)
    sub[cooks_out] = 2
    sub[~conv_beta | ~conv_gw | ~conv_map] = 4
    sub[big] = 5
    status[nz] = sub
    filtered = nz & np.isnan(padj) & ~np.isnan(full["pvalue"]) & (status == 0)
    status[filtered] = 3
    status[all_zero] = 1
    full["status"] = status
    # plain Python values: pandas compares attrs with == when it prints or concatenates
    attrs = {"size_factors": tuple(map(float, sf)), "dispersion_trend": tuple(map(float, trend)),
             "prior_variance": float(prior_var), "filter_threshold": threshold}
    try:
        import pandas as pd
    except ImportError:
        out = dict(full)
        out["attrs"] = attrs
        return out
    frame = pd.DataFrame(full, index=gene_names)
    frame.attrs.update(attrs)
    return frame
