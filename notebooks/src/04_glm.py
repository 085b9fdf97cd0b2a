# %% [markdown]
# # 4. Generalized linear models: one framework for counts, times and more
#
# Least squares (notebook 1) and logistic regression (notebook 3) are two members of
# one family of models. A **generalized linear model** has three parts:
#
# 1. a **random component**: the distribution of $y$ given $x$, from the exponential
#    family (Gaussian, Bernoulli/binomial, Poisson, Gamma, ...), characterized by its
#    *variance function* $V(\mu)$: how the spread grows with the mean;
# 2. a **linear predictor** $\eta = \beta_0 + x^\top\beta$ (+ an *offset*);
# 3. a **link** $g$ with $g(\mu) = \eta$. Each family has a *canonical* link (identity,
#    logit, log, inverse) for which the maths is simplest, but any sensible link works.
#
# One fitting algorithm (IRLS: weighted least squares on a working response, repeated)
# and one inference machinery (standard errors from the Fisher information) serve them
# all. In linjax a family is a small object with its log-likelihood; gradients and
# curvature come from autodiff.
#
# This notebook: the GLM table; Poisson regression of complaint counts with an
# exposure offset; negative binomial for overdispersion; Gamma with a log link for
# waiting times; summaries checked against statsmodels; residual plots; Cook's
# distance; robust (sandwich) standard errors; weighted least squares.

# %%
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
import statsmodels.api as sm

import linjax as lj
from linjax.datasets import load_coffee_shops

shops = load_coffee_shops().data
n = len(shops["revenue"])
F = lj.families

# %% [markdown]
# ## 1. The GLM table
#
# Each row is a family with its canonical link, the link linjax uses by default, and
# its variance function, checked numerically against the formula.

# %%
mu = jnp.array([0.2, 0.5, 0.9])  # valid means for every family (binomial needs < 1)
rows = [
    (F.Gaussian(), "1", lambda m: jnp.ones_like(m)),
    (F.Binomial(), "mu (1 - mu)", lambda m: m * (1 - m)),
    (F.Poisson(), "mu", lambda m: m),
    (F.Gamma(), "mu^2", lambda m: m**2),
    (F.InverseGaussian(), "mu^3", lambda m: m**3),
    (F.NegativeBinomial(alpha=0.5), "mu + alpha mu^2", lambda m: m + 0.5 * m**2),
    (F.Tweedie(power=1.5), "mu^p", lambda m: m**1.5),
]
table = []
for family, formula, v in rows:
    np.testing.assert_allclose(family.variance(mu), v(mu), rtol=1e-12)  # claim: V(mu)
    table.append({"family": family.name,
                  "canonical link": getattr(family.canonical_link, "name",
                                            type(family.canonical_link).__name__),
                  "default link": family.link.name, "variance V(mu)": formula})
pd.DataFrame(table)

# %%
assert [r["canonical link"] for r in table[:5]] == ["identity", "logit", "log",
                                                     "inverse", "inverse_squared"]

# %% [markdown]
# ## 2. Poisson regression with an exposure offset
#
# Each shop reports its number of customer complaints since opening. A shop open 60
# months has had more time to collect complaints than one open 6 months: what we
# want to model is the *rate* per month. With a log link,
# $$\log E[\text{complaints}] = \log(\text{months open}) + \beta_0 + x^\top\beta,$$
# so $\log(\text{months})$ enters the linear predictor with a coefficient fixed at 1:
# an **offset** (the **exposure** is months open). Then $e^{\beta_j}$ is a *rate
# ratio*: the factor by which the monthly complaint rate multiplies per unit of $x_j$.

# %%
regions = ["suburb", "campus", "airport"]  # downtown is the reference level
names = ["foot_traffic", "seats"] + regions
Xp = np.column_stack([shops["foot_traffic"], shops["seats"]]
                     + [(shops["region"] == r).astype(float) for r in regions]).astype(float)
complaints = shops["complaints"]
log_months = np.log(shops["months_open"])
poisson = F.Poisson()

pois = lj.fit(Xp, complaints, family=poisson, offset=log_months)
pois_table = lj.inference.summarize(pois, Xp, complaints, offset=log_months,
                                    feature_names=names)
print(pois_table)

ref = sm.GLM(complaints, sm.add_constant(Xp), family=sm.families.Poisson(),
             offset=log_months).fit()
np.testing.assert_allclose(pois_table.params, ref.params, rtol=1e-8)
np.testing.assert_allclose(pois_table.bse, ref.bse, rtol=1e-6)
np.testing.assert_allclose(pois_table.pvalues, ref.pvalues, rtol=1e-5)
np.testing.assert_allclose(pois_table.conf_int, ref.conf_int(), rtol=1e-6)
np.testing.assert_allclose([pois_table.llf, pois_table.deviance, pois_table.aic],
                           [ref.llf, ref.deviance, ref.aic], rtol=1e-8)
print("matches statsmodels GLM(Poisson, offset)")

# %% [markdown]
# The data are synthetic, so we know the truth they were drawn from: log rate
# $= -2.2 + 0.0008\,\text{traffic} - 0.01\,\text{seats} + 0.3\,[\text{airport}]$. Every
# 95% interval covers its true value, and the rate ratio of airport shops is about
# $e^{0.3} \approx 1.35$.

# %%
truth = np.array([-2.2, 0.0008, -0.01, 0.0, 0.0, 0.3])
ci = np.asarray(pois_table.conf_int)
print(pd.DataFrame({"rate ratio": np.exp(pois_table.params), "true": np.exp(truth),
                    "2.5%": np.exp(ci[:, 0]), "97.5%": np.exp(ci[:, 1])},
                   index=pois_table.names).round(4))
assert np.all((ci[:, 0] < truth) & (truth < ci[:, 1]))

# without the exposure, the model confuses "open longer" with "worse shop"
no_exposure = lj.fit(Xp, complaints, family=poisson)
dev_without = float(lj.inference.summarize(no_exposure, Xp, complaints).deviance)
print(f"deviance with the offset {float(pois_table.deviance):.0f}, without {dev_without:.0f}")
assert dev_without > 2 * float(pois_table.deviance)

# %% [markdown]
# ## 3. Overdispersion and the negative binomial
#
# A Poisson variable has variance equal to its mean. Real counts are often more
# variable (customers come in groups, some days are special): **overdispersion**. The
# Poisson fit then still estimates the coefficients consistently, but its standard
# errors are too small, and its tests too confident. Two checks: the Pearson
# $\chi^2$ divided by its degrees of freedom (should be near 1), and comparing with a
# **negative binomial** model, $V(\mu) = \mu + \alpha\mu^2$, whose extra parameter
# $\alpha$ linjax estimates by maximum likelihood (as R's `MASS::glm.nb`) with
# `NegativeBinomial(alpha=None)`.
#
# The complaints above are genuinely Poisson (dispersion near 1). Below, daily pastry
# sales simulated with $\alpha = 0.5$.

# %%
print(f"complaints: Pearson chi2 / df = {float(pois_table.pearson_chi2 / pois_table.df_resid):.2f}")

rng = np.random.default_rng(4)
Xo = np.column_stack([(shops["foot_traffic"] - 600) / 300, shops["competitors"]]).astype(float)
mu_o = np.exp(2.0 + 0.5 * Xo[:, 0] - 0.2 * Xo[:, 1])
pastries = rng.negative_binomial(1 / 0.5, 1 / (1 + 0.5 * mu_o))  # NB2 with alpha = 0.5

pois_o = lj.fit(Xo, pastries, family=poisson)
pois_o_table = lj.inference.summarize(pois_o, Xo, pastries)
dispersion = float(pois_o_table.pearson_chi2 / pois_o_table.df_resid)
nb = lj.fit(Xo, pastries, family=F.NegativeBinomial(alpha=None))
nb_table = lj.inference.summarize(nb, Xo, pastries)
print(f"pastries: Pearson chi2 / df of the Poisson fit = {dispersion:.1f}")
print(nb_table)

sm_nb = sm.NegativeBinomial(pastries, sm.add_constant(Xo), loglike_method="nb2").fit(
    disp=0, method="newton", maxiter=100)
np.testing.assert_allclose(nb_table.params, sm_nb.params[:3], rtol=1e-5)
np.testing.assert_allclose(float(nb.family.alpha), sm_nb.params[3], rtol=1e-4)
np.testing.assert_allclose(float(nb_table.llf), sm_nb.llf, rtol=1e-8)
print(f"alpha: linjax {float(nb.family.alpha):.4f}, statsmodels {sm_nb.params[3]:.4f} "
      "(true 0.5)")

# claims: overdispersion is visible, NB fits better, and Poisson standard errors are too small
assert dispersion > 3
assert float(nb_table.aic) < float(pois_o_table.aic)
assert np.all(np.asarray(pois_o_table.bse) < np.asarray(nb_table.bse))

# %% [markdown]
# ### Robust (sandwich) standard errors
#
# A second remedy keeps the Poisson point estimates but computes their standard
# errors without trusting the variance function: the **sandwich** estimator
# $B\,M\,B$, with $B$ the inverse information ("bread") and $M$ the outer product of the
# per-observation scores ("meat"). It is valid whenever the mean model is right,
# whatever the variance. `cov_type="HC0"` ... `"HC3"` (HC1 is R's `sandwich` default
# with a small-sample factor). On the overdispersed data the robust errors grow to
# about the negative binomial's.

# %%
robust = lj.inference.summarize(pois_o, Xo, pastries, cov_type="HC1")
hc0 = lj.inference.summarize(pois_o, Xo, pastries, cov_type="HC0")
sm_hc0 = sm.GLM(pastries, sm.add_constant(Xo), family=sm.families.Poisson()).fit(
    cov_type="HC0")
np.testing.assert_allclose(hc0.bse, sm_hc0.bse, rtol=1e-6)
np.testing.assert_allclose(np.asarray(robust.bse),
                           np.asarray(hc0.bse) * np.sqrt(n / (n - 3)), rtol=1e-10)
print(pd.DataFrame({"Poisson": pois_o_table.bse, "Poisson HC1": robust.bse,
                    "negative binomial": nb_table.bse},
                   index=["intercept", "traffic", "competitors"]).round(4))
assert np.all(np.asarray(robust.bse) > 1.5 * np.asarray(pois_o_table.bse))

# %% [markdown]
# ## 4. Gamma regression with a log link
#
# Waiting times are positive and right-skewed, and their spread grows with their mean:
# a shop where the average wait is 6 minutes varies more than one at 2 minutes. The
# Gamma family has $V(\mu) = \mu^2$ (a constant coefficient of variation). Its
# canonical link is the inverse, awkward to interpret; the **log link** makes
# $e^{\beta_j}$ a multiplicative effect on the mean wait and keeps $\mu > 0$.

# %%
Xg = np.column_stack([shops["foot_traffic"], shops["seats"]]).astype(float)
wait = shops["wait_minutes"]
gamma = F.Gamma(link=lj.links.Log())
gam = lj.fit(Xg, wait, family=gamma)
gam_table = lj.inference.summarize(gam, Xg, wait, feature_names=["foot_traffic", "seats"])
print(gam_table)

sm_gam = sm.GLM(wait, sm.add_constant(Xg),
                family=sm.families.Gamma(link=sm.families.links.Log())).fit()
np.testing.assert_allclose(gam_table.params, sm_gam.params, rtol=1e-7)
np.testing.assert_allclose(gam_table.bse, sm_gam.bse, rtol=1e-6)
np.testing.assert_allclose(gam_table.scale, sm_gam.scale, rtol=1e-7)
np.testing.assert_allclose(gam_table.deviance, sm_gam.deviance, rtol=1e-8)
print("matches statsmodels GLM(Gamma(log))")
print(f"each 100 extra people a day lengthen the mean wait by "
      f"{np.expm1(100 * float(gam_table.params[1])):.1%}")

# %% [markdown]
# ## 5. Residual diagnostics
#
# GLM residuals come in several kinds (`lj.diagnostics.residuals(kind=...)`):
# *response* $y - \hat\mu$; *Pearson*, scaled by $\sqrt{V(\hat\mu)}$; *deviance*, the
# signed square root of each observation's contribution to the deviance. Two standard
# plots: residuals against fitted values (no pattern, constant spread if the variance
# function is right), and a normal Q-Q plot of the deviance residuals (roughly a
# straight line for a well-specified model). Here for the Gamma model, with each kind
# checked against statsmodels.

# %%
fitted = np.asarray(lj.predict(gam.params, Xg, gamma))
res = {kind: np.asarray(lj.diagnostics.residuals(gam, Xg, wait, kind=kind))
       for kind in ("response", "pearson", "deviance", "working")}
np.testing.assert_allclose(res["response"], sm_gam.resid_response, rtol=1e-6, atol=1e-9)
np.testing.assert_allclose(res["pearson"], sm_gam.resid_pearson, rtol=1e-6, atol=1e-9)
np.testing.assert_allclose(res["deviance"], sm_gam.resid_deviance, rtol=1e-6, atol=1e-9)
np.testing.assert_allclose(res["working"], sm_gam.resid_working, rtol=1e-6, atol=1e-9)

fig, axes = plt.subplots(1, 3, figsize=(14, 4))
axes[0].scatter(fitted, res["response"], s=6)
axes[0].set(xlabel="fitted mean wait", ylabel="response residual",
            title="response residuals fan out ...")
axes[1].scatter(fitted, res["deviance"] / np.sqrt(float(gam_table.scale)), s=6)
axes[1].set(xlabel="fitted mean wait", ylabel="scaled deviance residual",
            title="... deviance residuals do not")
for ax in axes[:2]:
    ax.axhline(0, color="k", lw=0.5)
(osm, osr), (slope, intercept, r) = scipy.stats.probplot(res["deviance"], dist="norm")
axes[2].scatter(osm, osr, s=6)
axes[2].plot(osm, slope * osm + intercept, "k", lw=1)
axes[2].set(xlabel="normal quantiles", ylabel="deviance residuals",
            title=f"normal Q-Q (r = {r:.3f})")
plt.show()

# claims: the spread of response residuals grows with the mean; deviance residuals'
# spread does not (much), and they are close to normal
lo_half = fitted < np.median(fitted)
ratio_resp = np.std(res["response"][~lo_half]) / np.std(res["response"][lo_half])
ratio_dev = np.std(res["deviance"][~lo_half]) / np.std(res["deviance"][lo_half])
print(f"spread, upper half of fitted / lower half: response {ratio_resp:.2f}, "
      f"deviance {ratio_dev:.2f}")
assert ratio_resp > 1.2 and abs(ratio_dev - 1) < abs(ratio_resp - 1)
assert r > 0.98

# %% [markdown]
# ## 6. Influence: Cook's distance
#
# Some observations pull the fit more than others: those with unusual $x$ (high
# *leverage*) and a large residual. **Cook's distance** measures how far all fitted
# values move when one observation is dropped; the usual flag is $D_i > 4/n$. Below,
# one shop's complaint count is mistyped (an extra zero), and Cook's distance points
# straight at it.

# %%
bad = int(np.argmax(shops["foot_traffic"]))  # a busy shop: high leverage
typo = complaints.copy()
typo[bad] = 10 * complaints[bad] + 10
pois_typo = lj.fit(Xp, typo, family=poisson, offset=log_months)
cooks = lj.diagnostics.cooks_distance(pois_typo, Xp, typo, offset=log_months)
d = np.asarray(cooks.distance)

sm_typo = sm.GLM(typo, sm.add_constant(Xp), family=sm.families.Poisson(),
                 offset=log_months).fit()
np.testing.assert_allclose(d, sm_typo.get_influence().cooks_distance[0], rtol=1e-5)
lev = np.asarray(lj.diagnostics.leverage(pois_typo, Xp, typo, offset=log_months))
np.testing.assert_allclose(lev, sm_typo.get_influence().hat_matrix_diag, rtol=1e-6)

fig, ax = plt.subplots(figsize=(8, 3.5))
ax.stem(np.arange(n), d, markerfmt=" ", basefmt="k-")
ax.axhline(float(cooks.threshold), color="r", ls=":", label="4 / n")
ax.annotate("the typo", (bad, d[bad]), xytext=(bad + 20, d[bad]))
ax.set(xlabel="shop", ylabel="Cook's distance")
ax.legend()
plt.show()

print(f"{int(np.sum(cooks.influential))} shops flagged; the largest is shop {int(np.argmax(d))} "
      f"(the typo is shop {bad}), D = {d.max():.2f}")
assert int(np.argmax(d)) == bad and d[bad] > 10 * np.sort(d)[-2]

# %% [markdown]
# ## 7. Weighted least squares
#
# Suppose each shop reports its *average* monthly revenue over the months it has been
# open. An average over 60 months is far less noisy than one over 6: its variance is
# $\sigma^2/m$. Weighted least squares gives each observation a weight proportional
# to its precision, here $w_i = m_i$ (in a GLM, *prior weights*; `weights=` in linjax).
# It is the efficient estimator, and its standard errors are right; ordinary least
# squares treats a 6-month average like a 60-month one.

# %%
rng = np.random.default_rng(5)
months = shops["months_open"].astype(float)
Xw = (shops["foot_traffic"] / 100.0)[:, None]
avg_revenue = 5 + 3.0 * Xw[:, 0] + rng.normal(0, 12, n) / np.sqrt(months)

wls = lj.fit(Xw, avg_revenue, weights=months)
wls_table = lj.inference.summarize(wls, Xw, avg_revenue, weights=months,
                                   feature_names=["foot_traffic_100"])
sm_wls = sm.WLS(avg_revenue, sm.add_constant(Xw), weights=months).fit()
np.testing.assert_allclose(wls_table.params, sm_wls.params, rtol=1e-10)
np.testing.assert_allclose(wls_table.bse, sm_wls.bse, rtol=1e-9)
print(wls_table)

# over many simulated data sets, WLS slopes vary less than OLS slopes
sims = rng.normal(0, 12, (200, n)) / np.sqrt(months)
Y = 5 + 3.0 * Xw[:, 0] + sims
slopes_wls = jax.vmap(lambda y: lj.fit(Xw, y, weights=months).params["coef"][0])(Y)
slopes_ols = jax.vmap(lambda y: lj.fit(Xw, y).params["coef"][0])(Y)
print(f"std of the slope over 200 simulations: WLS {np.std(slopes_wls):.4f}, "
      f"OLS {np.std(slopes_ols):.4f}; WLS reported {float(wls_table.bse[1]):.4f}")
assert np.std(slopes_wls) < np.std(slopes_ols)
assert abs(np.std(slopes_wls) / float(wls_table.bse[1]) - 1) < 0.25

# %% [markdown]
# ## Summary
#
# | question | family | link | linjax |
# |---|---|---|---|
# | how much? (symmetric noise) | Gaussian | identity | `lj.fit(X, y)` |
# | yes / no | Binomial | logit | `family="binomial"` |
# | how many? (rate with exposure) | Poisson | log | `family=Poisson(), offset=log(exposure)` |
# | how many, overdispersed | NegativeBinomial | log | `NegativeBinomial(alpha=None)` |
# | how long / how large (positive, skewed) | Gamma | log | `Gamma(link=Log())` |
#
# and the same `summarize`, `residuals`, `cooks_distance` and `cov_type=` for all.
