"""`lj.inference`: the statistics of a fit and its hypothesis tests, in one namespace.

`summarize`, the covariances, log-likelihoods and `adjust_pvalues` live in
`linjax.fit_statistics` (its conventions follow); the Wald, likelihood-ratio and score
tests in `linjax.hypothesis`, which builds on them. This module only gathers the two, so
neither has to import the other's namespace (no import cycle).
"""

from linjax.fit_statistics import *  # noqa: F403 (the helpers, as before the split)
from linjax.fit_statistics import (
    COV_TYPES,
    DISP_MODES,
    PVALUE_ADJUSTMENTS,
    RankWarning,
    adjust_pvalues,
    aliased_columns,
    drop_aliased,
    log_likelihood,
    summarize,
    t_ppf,
    t_sf2,
    warn_if_rank_deficient,
)
from linjax.fit_statistics import __doc__ as _conventions
from linjax.hypothesis import HypothesisTest, chi2_sf, f_sf, lr_test, score_test, wald_test

__doc__ = f"{__doc__}\n{_conventions}"
__all__ = ["summarize", "adjust_pvalues", "PVALUE_ADJUSTMENTS", "aliased_columns",
           "drop_aliased", "warn_if_rank_deficient", "RankWarning", "log_likelihood",
           "COV_TYPES", "DISP_MODES", "t_sf2", "t_ppf", "wald_test", "lr_test", "score_test",
           "HypothesisTest", "chi2_sf", "f_sf"]
