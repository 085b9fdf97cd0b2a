"""`Summary`: the statistics of one fitted GLM (or a batch of them), printable like R.

A `Summary` is a pytree: its numbers are leaves (so `summarize` runs under `jit`
and `vmap`, and a vmapped summary carries a leading batch axis), its labels are
static. `str(summary)` is a fixed-width coefficient table in the style of R's
`summary.glm` / statsmodels; `summary.to_frame()` returns a pandas DataFrame
(pandas is imported only then). `summary[i]` picks fit `i` out of a batch; a batch
prints as a short description (not m tables) and `to_frame()` gives one row per
problem and coefficient.
"""

import jax
import numpy as np

from linjax._pytree import pytree_dataclass, static_field


@pytree_dataclass
class Summary:
    """Coefficient table and fit statistics; the intercept first, then features in order.

    params, bse, statistic, pvalues: (k,); conf_int: (k, 2); cov_params: (k, k);
    llf, deviance, null_deviance, aic, bic, scale (dispersion), pearson_chi2,
    df_resid, df_model, nobs: scalars. `bse` is NaN where no standard error is
    reported (coefficients an L1 penalty set to zero). `aliased` (k,) marks the
    coefficients not defined because their columns are linear combinations of earlier ones
    (R's NA): their params, bse and intervals are NaN, and df_resid = nobs - rank. `nb_alpha` and
    `nb_alpha_se` are the estimated negative-binomial alpha and its standard
    error when it was estimated (`NegativeBinomial(alpha=None)`), else None.
    """

    params: jax.Array
    bse: jax.Array
    statistic: jax.Array
    pvalues: jax.Array
    conf_int: jax.Array
    cov_params: jax.Array
    llf: jax.Array
    deviance: jax.Array
    null_deviance: jax.Array
    aic: jax.Array
    bic: jax.Array
    scale: jax.Array
    pearson_chi2: jax.Array
    df_resid: jax.Array
    df_model: jax.Array
    nobs: jax.Array
    alpha: jax.Array
    aliased: object = None
    nb_alpha: object = None
    nb_alpha_se: object = None
    names: tuple = static_field(default=())
    family_name: str = static_field(default="")
    link_name: str = static_field(default="")
    cov_type: str = static_field(default="nonrobust")
    use_t: bool = static_field(default=False)
    notes: tuple = static_field(default=())

    # -- derived quantities -------------------------------------------------------------
    @property
    def tvalues(self):
        """Alias of `statistic` (t or z values), statsmodels' name."""
        return self.statistic

    @property
    def is_logit(self):
        return self.link_name == "logit"

    @property
    def odds_ratios(self):
        """exp(params) for a logit link: the odds ratio per unit of each feature."""
        self._require_logit()
        return np.exp(np.asarray(self.params))

    @property
    def odds_ratio_conf_int(self):
        """exp of the confidence limits: the interval for each odds ratio."""
        self._require_logit()
        return np.exp(np.asarray(self.conf_int))

    def _require_logit(self):
        if not self.is_logit:
            raise ValueError(f"odds ratios need a logit link; this fit uses {self.link_name!r}. "
                             "exp(params) is a rate ratio for log links.")

    def __getitem__(self, index):
        """Fit `index` of a vmapped (batched) summary."""
        return jax.tree_util.tree_map(lambda a: a[index], self)

    # -- output ---------------------------------------------------------------------------
    @property
    def n_problems(self):
        """m for a batch of summaries (leading axis m), None for one fit."""
        return None if np.ndim(self.params) == 1 else int(np.shape(self.params)[0])

    def to_frame(self):
        """The coefficient table as a pandas DataFrame (needs pandas); for a batch, the m
        tables stacked, indexed by (problem, coefficient)."""
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - pandas is a test dependency
            raise ImportError("Summary.to_frame needs pandas: pip install pandas") from err
        if self.n_problems is not None:
            frames = [self[i].to_frame() for i in range(self.n_problems)]
            return pd.concat(frames, keys=range(self.n_problems), names=["problem", "term"])
        level = 1 - float(self.alpha)
        lo, hi = f"[{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}]"
        stat = "t" if self.use_t else "z"
        ci = np.asarray(self.conf_int)
        data = {
            "coef": np.asarray(self.params), "std err": np.asarray(self.bse),
            stat: np.asarray(self.statistic), f"P>|{stat}|": np.asarray(self.pvalues),
            lo: ci[:, 0], hi: ci[:, 1],
        }
        if self.is_logit:
            data["odds ratio"] = self.odds_ratios
            data[f"OR {lo}"] = self.odds_ratio_conf_int[:, 0]
            data[f"OR {hi}"] = self.odds_ratio_conf_int[:, 1]
        return pd.DataFrame(data, index=list(self.names))

    def __str__(self):
        if self.n_problems is not None:
            return self._batch_description()
        stat = "t" if self.use_t else "z"
        level = 1 - float(self.alpha)
        lo, hi = f"[{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}]"
        params, bse = np.asarray(self.params), np.asarray(self.bse)
        tval, pval = np.asarray(self.statistic), np.asarray(self.pvalues)
        ci = np.asarray(self.conf_int)
        width = max([len(n) for n in self.names] + [9])
        header = (f"{'':<{width}} {'Estimate':>12} {'Std. Error':>12} {stat + ' value':>9} "
                  f"{'Pr(>|' + stat + '|)':>10} {lo:>12} {hi:>12}")
        if self.is_logit:
            header += f" {'Odds ratio':>11}"
        aliased = (np.zeros(len(params), bool) if self.aliased is None
                   else np.asarray(self.aliased, bool))
        title = "Coefficients:"
        if aliased.any():  # R's wording
            title += f" ({int(aliased.sum())} not defined because of singularities)"
        lines = [f"Generalized linear model: {self.family_name} family, {self.link_name} link",
                 f"Covariance: {self.cov_type}", "", title, header]
        for j, name in enumerate(self.names):
            if aliased[j]:
                row = (f"{name:<{width}} {'NA':>12} {'NA':>12} {'NA':>9} {'NA':>10} "
                       f"{'NA':>12} {'NA':>12}")
            elif np.isnan(bse[j]):
                row = (f"{name:<{width}} {_num(params[j]):>12} {'-':>12} {'-':>9} {'-':>10} "
                       f"{'-':>12} {'-':>12}")
            else:
                row = (f"{name:<{width}} {_num(params[j]):>12} {_num(bse[j]):>12} "
                       f"{tval[j]:>9.3f} {_pval(pval[j]):>10} {_num(ci[j, 0]):>12} "
                       f"{_num(ci[j, 1]):>12}")
            if self.is_logit:
                row += f" {'NA':>11}" if aliased[j] else f" {_num(np.exp(params[j])):>11}"
            lines.append(row)
        lines.append("")
        if self.nb_alpha is not None:
            lines.append(f"Negative binomial alpha: {float(self.nb_alpha):.6g} "
                         f"(std. error {float(self.nb_alpha_se):.4g}; theta = 1/alpha "
                         f"{1 / float(self.nb_alpha):.6g})")
        lines.append(f"(Dispersion parameter for {self.family_name} family taken to be "
                     f"{float(self.scale):.6g})")
        df_null = int(self.df_resid) + int(self.df_model)
        lines.append(f"    Null deviance: {float(self.null_deviance):.6g}  on {df_null} "
                     "degrees of freedom")
        lines.append(f"Residual deviance: {float(self.deviance):.6g}  on {int(self.df_resid)} "
                     "degrees of freedom")
        lines.append(f"Log-likelihood: {float(self.llf):.6g}   AIC: {float(self.aic):.6g}   "
                     f"BIC: {float(self.bic):.6g}   Observations: {int(self.nobs)}")
        lines.extend(self.notes)
        return "\n".join(lines)

    def __repr__(self):
        if self.n_problems is not None:
            return f"Summary(batch of {self.n_problems} fits)"
        return str(self)

    def _batch_description(self):
        """A few lines for a batch: what was fitted and the spread of the fit statistics."""
        m = self.n_problems
        stat = "t" if self.use_t else "z"

        def spread(values):
            v = np.asarray(values, float).reshape(-1)
            v = v[np.isfinite(v)]
            if v.size == 0:
                return "not defined"
            return f"median {np.median(v):.6g} (range {v.min():.6g} to {v.max():.6g})"

        undefined = int(np.sum(np.isnan(np.asarray(self.bse, float)).any(axis=1)))
        lines = [f"Generalized linear models: a batch of {m} fits, {self.family_name} family, "
                 f"{self.link_name} link",
                 f"Covariance: {self.cov_type}; {stat} statistics",
                 f"Coefficients ({len(self.names)}): {', '.join(self.names)}",
                 f"Dispersion: {spread(self.scale)}",
                 f"Residual deviance: {spread(self.deviance)}",
                 f"Residual df: {spread(self.df_resid)}",
                 f"AIC: {spread(self.aic)}"]
        if self.nb_alpha is not None:
            lines.append(f"Negative binomial alpha: {spread(self.nb_alpha)}")
        if undefined:
            lines.append(f"{undefined} of {m} fits have coefficients without a standard error "
                         "(aliased, set to zero by L1, or no dispersion): see summary[i]")
        lines.append("summary[i] prints problem i's table; summary.to_frame() gives one row "
                     "per problem and coefficient.")
        lines.extend(self.notes)
        return "\n".join(lines)


def _num(x):
    x = float(x)
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-4):
        return f"{x:.4e}"
    return f"{x:.6f}"


def _pval(p):
    p = float(p)
    return "<2e-16" if p < 2e-16 else f"{p:.4g}"
