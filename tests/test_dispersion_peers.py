"""linjax's Cox-Reid dispersions never sit at a worse optimum than the peers' genewise ones.

On both committed data sets (tests/data/expression/: two groups, 2,000 genes x 12 samples,
`~ condition`; three groups and a covariate, 1,500 genes x 15 samples, `~ group + x`), at
DESeq2's size factors, with linjax's default bounds (1e-8, 1e4) on alpha:

    C(alpha) = l(alpha, beta_hat(alpha)) - 1/2 log det(X' W X),  W = diag(mu / (1 + alpha mu)),

linjax's criterion (tests/test_dispersion_deseq2.py explains it), evaluated in numpy, is at
linjax's estimate at least its value at each peer's genewise estimate, on every gene with
finite coefficients:

- DESeq2 1.38.3 `dispGeneEst`,
- glmGamPoi 1.10.2 `glm_gp(...)$overdispersions` (it may return 0: the Poisson limit, where
  C is the Poisson log-likelihood minus 1/2 log det X' diag(mu) X),
- PyDESeq2 0.5.4 `genewise_dispersions`.

The peers' figures were written by the tools themselves
(scripts/expression_reference/run_deseq2.R, run_pydeseq2.py)."""

import jax
import numpy as np
import pytest
from scipy.special import gammaln

from linjax.dispersion import estimate_nb_dispersion
from tests.test_dispersion_deseq2 import nb_coef, read_csv

DATA = "tests/data/expression/"
PEERS = {"DESeq2": ("deseq2", "dispGeneEst"),
         "glmGamPoi": ("deseq2", "glmGamPoi_overdispersion"),
         "PyDESeq2": ("pydeseq2", "genewise_dispersions")}


def design(name, samples):
    with open(DATA + f"{name}_samples.csv") as f:
        header = f.readline().strip().split(",")
        table = {row[0]: row[1:] for row in (line.strip().split(",") for line in f)}
    rows = [table[s] for s in samples]
    groups = np.array([r[0] for r in rows])
    if header == ["sample", "condition"]:
        return np.array([[1.0, g == "B"] for g in groups]), groups
    return np.array([[1.0, r[0] == "B", r[0] == "C", float(r[1])] for r in rows]), groups


def size_factors(name, samples):
    with open(DATA + f"{name}_deseq2_summary.csv") as f:
        f.readline()
        summary = {k: float(v) for k, v in (line.strip().split(",") for line in f)}
    return np.array([summary[f"sizeFactor_{s}"] for s in samples])


def criterion(X, Y, alpha, off):
    """C(alpha) with the coefficients refitted at alpha. lgamma(y + r) - lgamma(r) loses
    its last digits in float64 where r = 1/alpha > 1e6, so it is summed there as
    y log r + sum_{k<y} log1p(k / r) (the counts are integers)."""
    a = alpha[:, None]
    eta = nb_coef(X, Y, alpha, off) @ X.T + off
    mu = np.exp(eta)
    r = 1 / np.where(a > 0, a, 1.0)
    ratio = gammaln(Y + r) - gammaln(r)
    big = np.broadcast_to(r > 1e6, Y.shape) & (a > 0)
    for i, j in zip(*np.nonzero(big), strict=True):
        ri = r[i, 0]
        ratio[i, j] = Y[i, j] * np.log(ri) + np.sum(np.log1p(np.arange(Y[i, j]) / ri))
    nb = ratio - r * np.log1p(mu / r) + Y * np.log(mu / (r + mu))
    ll = np.sum(np.where(a > 0, nb, Y * eta - mu) - gammaln(Y + 1), axis=1)
    W = mu / (1 + a * mu)
    return ll - 0.5 * np.linalg.slogdet(np.einsum("mi,ij,ik->mjk", W, X, X))[1]


@pytest.fixture(scope="module", params=["two_groups", "three_groups"])
def data_set(request):
    name = request.param
    _, samples, Y = read_csv(DATA + f"{name}_counts.csv.gz")
    X, groups = design(name, samples)
    off = np.log(size_factors(name, samples))
    fit = jax.tree_util.tree_map(np.asarray, estimate_nb_dispersion(
        X, Y, offset=off, method="cox-reid"))
    peers = {}
    for peer, (tool, column) in PEERS.items():
        genes, columns, table = read_csv(DATA + f"{name}_{tool}.csv.gz")
        assert len(genes) == len(Y)
        peers[peer] = table[:, columns.index(column)]
    # coefficients are finite where every group has a non-zero count (a group of zeros
    # sends one to infinity, and C's alpha-free part then depends on where each fit stopped)
    finite_coef = np.all([Y[:, groups == g].sum(axis=1) > 0 for g in np.unique(groups)], axis=0)
    return name, X, Y, off, fit, peers, finite_coef


@pytest.mark.parametrize("peer", list(PEERS))
def test_criterion_at_linjax_is_at_least_at_each_peer(data_set, peer):
    name, X, Y, off, fit, peers, finite_coef = data_set
    theirs = peers[peer]
    rows = np.flatnonzero(np.isfinite(theirs) & finite_coef)
    assert rows.size > 0.9 * len(Y)
    c_linjax = criterion(X, Y[rows], fit.alpha[rows], off)
    c_peer = criterion(X, Y[rows], theirs[rows], off)
    np.testing.assert_allclose(fit.criterion[rows], c_linjax, rtol=1e-9)
    # linjax's bound 1e-8 against a peer's exact 0: C differs by O(1e-8 * sum(y)) there
    slack = 1e-9 * np.abs(c_linjax) + np.where(theirs[rows] == 0, 1e-6, 0.0)
    worse = c_linjax < c_peer - slack
    assert not worse.any(), (name, peer, rows[worse], (c_peer - c_linjax)[worse])
