# %% [markdown]
# # 3. Logistic regression: will the coffee shop survive?
#
# Notebook 1 predicted a number. Now the outcome is yes/no: is the shop still open
# after three years? This notebook builds logistic regression with linjax:
#
# 1. the sigmoid, derived from log-odds;
# 2. log-loss, and why squared error through a sigmoid is a bad idea (non-convex);
# 3. odds, odds ratios and their confidence intervals (checked against statsmodels);
# 4. why logistic regression has to iterate: Newton/IRLS vs L-BFGS vs gradient descent;
# 5. production realities: C vs alpha and scaling inside a pipeline, perfect
#    separation and Firth's fix, calibration (reliability diagram, Brier score),
#    class imbalance and class weights, softmax vs one-vs-rest.

# %%
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import statsmodels.api as sm
from sklearn.calibration import calibration_curve as sk_calibration_curve
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.metrics import brier_score_loss, recall_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline

import linjax as lj
from linjax.datasets import load_coffee_shops
from linjax.estimators import LogisticRegression
from linjax.preprocessing import StandardScaler

shops = load_coffee_shops().data
margin = shops["revenue"] - shops["rent"] * shops["square_footage"] / 1000  # $k / month
competitors = shops["competitors"].astype(float)
survived = shops["survived"]
X = np.column_stack([margin, competitors])
n = len(survived)
print(f"{n} shops, {survived.mean():.0%} survived")

# %% [markdown]
# ## 1. From log-odds to the sigmoid
#
# A probability lives in $[0, 1]$, but a linear predictor $\eta = \beta_0 + \beta^\top
# x$ ranges over the whole real line. Two steps stretch the probability onto the line:
# the **odds** $p/(1-p)$ range over $(0, \infty)$ ("3 to 1" is odds 3, $p = 0.75$), and
# the **log-odds** $\log\frac{p}{1-p}$ over $(-\infty, \infty)$. Logistic regression
# says the log-odds are linear:
# $$\log\frac{p}{1-p} = \eta \quad\Longleftrightarrow\quad p = \frac{1}{1+e^{-\eta}} =
# \sigma(\eta).$$
# The sigmoid is simply the inverse of the log-odds (the *logit* link).

# %%
logit = lj.links.Logit()
eta = jnp.linspace(-8, 8, 401)
p = logit.inverse(eta)
np.testing.assert_allclose(p, 1 / (1 + np.exp(-eta)), rtol=1e-14)
np.testing.assert_allclose(logit.link(p), eta, rtol=1e-10, atol=1e-12)  # logit inverts it
np.testing.assert_allclose(p / (1 - p), np.exp(eta), rtol=1e-10)  # odds = e^eta
# its slope is p (1 - p), largest (1/4) at p = 1/2
np.testing.assert_allclose(jax.vmap(jax.grad(logit.inverse))(eta), p * (1 - p), rtol=1e-12)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].plot(eta, p)
axes[0].set(xlabel=r"log-odds $\eta$", ylabel="probability", title=r"$p = \sigma(\eta)$")
q = np.linspace(0.01, 0.99, 99)
axes[1].plot(q, q / (1 - q), label="odds")
axes[1].plot(q, np.log(q / (1 - q)), label="log-odds")
axes[1].axhline(0, color="gray", lw=0.5)
axes[1].set(xlabel="probability", ylim=(-5, 10), title="stretching [0, 1] onto the line")
axes[1].legend()
plt.show()

# %% [markdown]
# ## 2. Log-loss is convex; squared error through a sigmoid is not
#
# Maximum likelihood for a Bernoulli outcome gives the **log-loss** (cross-entropy)
# $-[y \log p + (1-y)\log(1-p)]$, which is linjax's Binomial objective (half the
# deviance). As a function of $\eta$ it is convex — its second derivative is
# $p(1-p) > 0$ — so the whole problem has one minimum, and Newton's method is safe.
# Plugging the sigmoid into squared error, $(y - \sigma(\eta))^2$, looks natural but
# gives a function with flat plateaus and inflection points: non-convex, with
# vanishing gradients exactly where the model is confidently wrong.
#
# Below: one feature (margin), the loss as a function of its coefficient.

# %%
binomial = lj.families.Binomial()
xm = (margin - margin.mean()) / margin.std()


def log_loss(b):
    return jnp.mean(binomial.nll(survived, b * xm))


def squared_loss(b):
    return jnp.mean((survived - jax.nn.sigmoid(b * xm)) ** 2)


bs = jnp.linspace(-10, 10, 401)
curv_log = jax.vmap(jax.grad(jax.grad(log_loss)))(bs)
curv_sq = jax.vmap(jax.grad(jax.grad(squared_loss)))(bs)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].plot(bs, jax.vmap(log_loss)(bs), label="log-loss")
axes[0].plot(bs, jax.vmap(squared_loss)(bs), label="squared error of sigmoid")
axes[0].set(xlabel="coefficient of margin", ylabel="mean loss")
axes[0].legend()
axes[1].plot(bs, curv_log, label="log-loss")
axes[1].plot(bs, curv_sq, label="squared error")
axes[1].axhline(0, color="gray", lw=0.5)
axes[1].set(xlabel="coefficient of margin", ylabel="second derivative")
axes[1].legend()
plt.show()

# claims: log-loss curves upward everywhere; the squared-error version does not
assert np.all(curv_log > 0)
assert np.any(curv_sq < 0)

# %% [markdown]
# ## 3. Fitting survival, odds ratios
#
# `lj.fit(X, y, family=Binomial())` fits the logistic regression; `summarize` gives
# R's `summary(glm(..., family = binomial))`. For a logit link, $e^{\beta_j}$ is an
# **odds ratio**: the factor by which the odds of survival multiply per unit of
# feature $j$. Odds ratios are not probability ratios: the same odds ratio moves a
# 50% shop by far more percentage points than a 95% shop.

# %%
names = ["margin", "competitors"]
fit = lj.fit(X, survived, family=binomial)
table = lj.inference.summarize(fit, X, survived, feature_names=names)
print(table)
print(table.to_frame()[["odds ratio", "OR [0.025", "OR 0.975]"]])

ref = sm.GLM(survived, sm.add_constant(X), family=sm.families.Binomial()).fit()
np.testing.assert_allclose(table.params, ref.params, rtol=1e-8)
np.testing.assert_allclose(table.bse, ref.bse, rtol=1e-6)
np.testing.assert_allclose(table.statistic, ref.tvalues, rtol=1e-6)
np.testing.assert_allclose(table.pvalues, ref.pvalues, rtol=1e-5)
np.testing.assert_allclose(table.odds_ratio_conf_int, np.exp(ref.conf_int()), rtol=1e-6)
np.testing.assert_allclose([table.llf, table.deviance, table.null_deviance, table.aic],
                           [ref.llf, ref.deviance, ref.null_deviance, ref.aic], rtol=1e-8)
print("matches statsmodels GLM(Binomial)")

or_comp = table.odds_ratios[2]
lo, hi = table.odds_ratio_conf_int[2]
print(f"each extra competitor multiplies the odds of survival by {or_comp:.2f} "
      f"(95% CI {lo:.2f} to {hi:.2f})")
assert hi < 1  # competition significantly lowers the odds

# the same odds ratio, different changes in probability
for p0 in (0.5, 0.95):
    odds1 = p0 / (1 - p0) * or_comp
    print(f"  a shop at {p0:.0%} drops to {odds1 / (1 + odds1):.1%}")

# %% [markdown]
# The decision boundary $\sigma(\eta) = 1/2$ is the line $\eta = 0$: linear in the
# features, like every linear classifier.

# %%
b0, (b_margin, b_comp) = float(fit.params["intercept"]), np.asarray(fit.params["coef"])
fig, ax = plt.subplots(figsize=(6, 4))
jitter = np.random.default_rng(0).uniform(-0.2, 0.2, n)
ax.scatter(margin[survived == 1], competitors[survived == 1] + jitter[survived == 1], s=8,
           label="survived")
ax.scatter(margin[survived == 0], competitors[survived == 0] + jitter[survived == 0], s=8,
           marker="x", label="closed")
mgrid = np.linspace(margin.min(), margin.max(), 100)
for level in (0.25, 0.5, 0.75):
    c = -(b0 + b_margin * mgrid - np.log(level / (1 - level))) / b_comp
    ax.plot(mgrid, c, "k-" if level == 0.5 else "k:", lw=1)
ax.set(xlabel="margin ($k / month)", ylabel="competitors", ylim=(-0.5, competitors.max() + 0.5),
       title="p = 0.25, 0.5 (solid), 0.75")
ax.legend()
plt.show()

# %% [markdown]
# ## 4. Why logistic regression iterates
#
# Setting the gradient of the log-loss to zero gives $X^\top(y - \sigma(X\beta)) = 0$:
# $\beta$ sits inside the sigmoid, so there is no normal equation to solve in one shot.
# We iterate, and the choice of method matters:
#
# - **gradient descent**: first-order, many cheap steps, sensitive to scaling;
# - **Newton / IRLS**: uses the Hessian $X^\top W X$ with $W = \mathrm{diag}(p(1-p))$;
#   each step is a *weighted least-squares* fit (hence "iteratively reweighted least
#   squares"), and convergence is quadratic near the optimum: a handful of steps;
# - **L-BFGS**: builds a Hessian approximation from recent gradients; two passes over
#   the data per step, the method of choice when $p$ is too large for $X^\top W X$.
#
# All three reach the same optimum (on standardized columns here, to be fair to GD).

# %%
Z = np.asarray(lj.preprocessing.standardize(X, lj.preprocessing.fit_standardizer(X)))
solvers = {"Newton (IRLS)": lj.solvers.Newton(), "L-BFGS": lj.solvers.LBFGS(),
           "gradient descent": lj.solvers.GradientDescent()}
runs = {name: lj.fit(Z, survived, family=binomial, solver=s) for name, s in solvers.items()}
for name, r in runs.items():
    print(f"{name:>17}: {int(r.n_iter):5d} iterations, objective {float(r.objective):.12f}")

objs = [float(r.objective) for r in runs.values()]
iters = [int(r.n_iter) for r in runs.values()]
assert all(bool(r.converged) for r in runs.values())
assert max(objs) - min(objs) < 1e-9  # one optimum
assert iters[0] <= 10 and iters[0] < iters[1] < iters[2]  # Newton < L-BFGS < GD

# %% [markdown]
# ## 5. Production realities
#
# ### C vs alpha, and scaling inside a pipeline
#
# scikit-learn's `LogisticRegression` writes its penalty as $C$, the *inverse*
# strength, multiplying the summed log-loss; linjax (like glmnet) writes $\alpha$ times
# the penalty added to the *mean* loss. They are the same model with
# $\alpha = 1/(C\,n)$. linjax's estimator takes `C` and checks out against
# scikit-learn's.
#
# A penalty charges every coefficient in the same currency, so it depends on the units
# of each column: measure margin in millions of dollars instead of thousands and its
# coefficient must become 1000 times larger to say the same thing, so the penalty
# crushes it. Standardize first — inside
# a `Pipeline`, so that cross-validation learns the scaling from the training folds
# only — and the fit no longer depends on units.

# %%
C = 0.05
est = LogisticRegression(C=C).fit(X, survived)
direct = lj.fit(X, survived, family=binomial, penalty=lj.penalties.L2(alpha=1 / (C * n)))
sk = SkLogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, survived)
np.testing.assert_allclose(est.coef_.ravel(), direct.params["coef"], rtol=1e-8)
np.testing.assert_allclose(est.coef_.ravel(), sk.coef_.ravel(), rtol=1e-5)

X_millions = X / np.array([1000.0, 1.0])  # margin in $M instead of $k
raw_k = LogisticRegression(C=C).fit(X, survived).predict_proba(X)[:, 1]
raw_m = LogisticRegression(C=C).fit(X_millions, survived).predict_proba(X_millions)[:, 1]
pipe_k = make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X, survived)
pipe_m = make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X_millions, survived)
change_raw = np.max(np.abs(raw_k - raw_m))
change_pipe = np.max(np.abs(pipe_k.predict_proba(X)[:, 1]
                            - pipe_m.predict_proba(X_millions)[:, 1]))
print(f"largest change in a predicted probability after changing units: "
      f"{change_raw:.3f} without scaling, {change_pipe:.1e} with a scaler in the pipeline")
assert change_raw > 0.2 and change_pipe < 1e-8

# %% [markdown]
# ### Perfect separation and Firth's correction
#
# If some line separates the survivors from the closures perfectly, the log-loss keeps
# decreasing as the coefficients grow: the maximum likelihood estimate does not exist
# and the fit runs off to infinity (in practice: huge coefficients, absurd standard
# errors, probabilities of exactly 0 and 1). It happens with small samples and rare
# outcomes. `lj.diagnostics.check_separation` detects it with a linear program before
# fitting. Two fixes: a penalty, or **Firth's** bias-reduced estimate (the maximum of
# the likelihood times Jeffreys' prior), which is always finite and less biased in
# small samples.

# %%
rng = np.random.default_rng(3)
x_small = np.round(rng.uniform(0, 10, 20), 1)[:, None]  # 20 new shops, margin only
y_small = (x_small[:, 0] > 5).astype(float)  # every shop above $5k survived
sep = lj.diagnostics.check_separation(x_small, y_small)
print("separation:", sep.kind)
assert sep.separated and sep.complete

mle = lj.fit(x_small, y_small, family=binomial)
firth = lj.fit(x_small, y_small, family=binomial, penalty=lj.penalties.Firth())
print(f"maximum likelihood: slope {float(mle.params['coef'][0]):.1f} ({mle.message})")
print(f"Firth:              slope {float(firth.params['coef'][0]):.2f} ({firth.message})")
print(lj.inference.summarize(firth, x_small, y_small, feature_names=["margin"]))
# claims: the MLE runs away; Firth is finite, converged, and still says "margin helps"
assert abs(float(mle.params["coef"][0])) > 10 * abs(float(firth.params["coef"][0]))
assert bool(firth.converged) and 0 < float(firth.params["coef"][0]) < 10

# %% [markdown]
# Note that the plain fit *reports convergence*: the loss is so flat far out that the
# solver's stopping rule is met, at a slope that is an artefact of where it stopped.
# A converged status does not mean the estimate exists — hence the separation check
# (linjax's scikit-learn estimators run it and warn with a `SeparationWarning`).

# %%
grid = np.linspace(0, 10, 200)[:, None]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.scatter(x_small[:, 0], y_small, c="k", s=15)
ax.plot(grid, lj.predict(mle.params, grid, binomial), label="maximum likelihood")
ax.plot(grid, lj.predict(firth.params, grid, binomial), label="Firth")
ax.set(xlabel="margin ($k / month)", ylabel="P(survive)")
ax.legend()
plt.show()

# %% [markdown]
# ### Calibration: do the probabilities mean what they say?
#
# Among shops given a 70% chance, about 70% should survive. A **reliability diagram**
# bins the predicted probabilities and plots the observed rate in each bin against the
# mean prediction; a calibrated model follows the diagonal. The **Brier score** (mean
# squared error of the probabilities) summarizes accuracy and calibration together.
# Maximum-likelihood logistic regression is well calibrated on held-out data when the
# model is right; an overconfident model (here: the same linear predictor times 3)
# is not, and its Brier score is worse.

# %%
train = np.arange(n) < 250
test = ~train
fit_tr = lj.fit(X[train], survived[train], family=binomial)
prob = np.asarray(lj.predict(fit_tr.params, X[test], binomial))
eta_test = np.asarray(lj.linear_predictor(fit_tr.params, X[test]))
overconfident = 1 / (1 + np.exp(-3 * eta_test))
y_test = survived[test]

curves = {}
for label, pr in [("logistic regression", prob), ("overconfident (3 x eta)", overconfident)]:
    cc = lj.diagnostics.calibration_curve(y_test, pr, n_bins=5)
    keep = np.asarray(cc.counts) > 0
    sk_true, sk_pred = sk_calibration_curve(y_test, pr, n_bins=5)
    np.testing.assert_allclose(np.asarray(cc.prob_true)[keep], sk_true, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(cc.prob_pred)[keep], sk_pred, rtol=1e-12)
    brier = float(lj.diagnostics.brier_score(y_test, pr))
    np.testing.assert_allclose(brier, brier_score_loss(y_test, pr), rtol=1e-12)
    curves[label] = (np.asarray(cc.prob_pred)[keep], np.asarray(cc.prob_true)[keep], brier)

fig, ax = plt.subplots(figsize=(5, 4.5))
ax.plot([0, 1], [0, 1], "k:", label="perfect calibration")
for label, (pred, true, brier) in curves.items():
    ax.plot(pred, true, "o-", label=f"{label}, Brier {brier:.3f}")
ax.set(xlabel="mean predicted probability", ylabel="observed survival rate",
       title="reliability diagram (150 held-out shops)")
ax.legend(fontsize=8)
plt.show()

assert curves["logistic regression"][2] < curves["overconfident (3 x eta)"][2]
err = np.abs(curves["logistic regression"][1] - curves["logistic regression"][0])
err_over = np.abs(curves["overconfident (3 x eta)"][1] - curves["overconfident (3 x eta)"][0])
assert np.mean(err) < np.mean(err_over)

# %% [markdown]
# ### Class imbalance and class weights
#
# When one class is rare (here: 5% of 2,000 simulated customers file a complaint),
# a classifier thresholded at 0.5 can reach 95% accuracy by almost never predicting the
# rare class. `class_weight="balanced"` weights each class inversely to its frequency,
# so both classes count equally in the loss: recall on the rare class rises, at the
# cost of more false alarms and of probabilities that are no longer calibrated
# (re-weighting shifts the intercept). Often the better fix is to keep the calibrated
# model and move the threshold; both are one line.

# %%
rng = np.random.default_rng(1)
Xi = rng.normal(size=(2000, 2))
yi = (rng.random(2000) < 1 / (1 + np.exp(-(-3.6 + 1.0 * Xi[:, 0] + 0.5 * Xi[:, 1])))).astype(int)
print(f"rare class: {yi.mean():.1%}")
plain = LogisticRegression().fit(Xi, yi)
balanced = LogisticRegression(class_weight="balanced").fit(Xi, yi)
sk_bal = SkLogisticRegression(class_weight="balanced", tol=1e-12, max_iter=10_000).fit(Xi, yi)
np.testing.assert_allclose(balanced.coef_, sk_bal.coef_, rtol=1e-5)
np.testing.assert_allclose(balanced.intercept_, sk_bal.intercept_, rtol=1e-5)
recall_plain = recall_score(yi, plain.predict(Xi))
recall_bal = recall_score(yi, balanced.predict(Xi))
print(f"recall of the rare class: {recall_plain:.2f} unweighted, {recall_bal:.2f} balanced")
print(f"mean predicted probability: {plain.predict_proba(Xi)[:, 1].mean():.3f} unweighted, "
      f"{balanced.predict_proba(Xi)[:, 1].mean():.3f} balanced (observed {yi.mean():.3f})")
assert recall_bal > recall_plain + 0.3
# the unweighted fit is calibrated in the large: mean prediction = observed rate
assert abs(plain.predict_proba(Xi)[:, 1].mean() - yi.mean()) < 1e-3

# %% [markdown]
# ### More than two classes: softmax vs one-vs-rest
#
# For $K$ classes, **multinomial (softmax)** regression gives each class a linear
# score and turns the scores into probabilities with
# $p_k = e^{\eta_k} / \sum_j e^{\eta_j}$: one joint model whose probabilities sum to one
# by construction. **One-vs-rest** fits $K$ separate binary models ("latte or not")
# and renormalizes their probabilities afterwards. Both are available in linjax's
# estimator (`multi_class=`); here for which drink a customer orders given the hour
# and their age (simulated).

# %%
rng = np.random.default_rng(2)
hour = rng.uniform(6, 20, 900)
age = rng.uniform(18, 70, 900)
Xd = np.column_stack([hour, age])
scores = np.column_stack([np.zeros(900), -4 + 0.35 * hour - 0.01 * age,
                          -6 + 0.25 * hour + 0.06 * age])
drink = np.array([rng.choice(3, p=np.exp(s) / np.exp(s).sum()) for s in scores])
drinks = np.array(["espresso", "latte", "tea"])

softmax = make_pipeline(StandardScaler(), LogisticRegression(multi_class="multinomial"))
ovr = make_pipeline(StandardScaler(), LogisticRegression(multi_class="ovr"))
softmax.fit(Xd, drinks[drink])
ovr.fit(Xd, drinks[drink])

# scikit-learn: multinomial is its default; one-vs-rest is OneVsRestClassifier
Zd = softmax[0].transform(Xd)
sk_soft = SkLogisticRegression(tol=1e-12, max_iter=10_000).fit(Zd, drink)
sk_ovr = OneVsRestClassifier(SkLogisticRegression(tol=1e-12, max_iter=10_000)).fit(Zd, drink)
np.testing.assert_allclose(softmax[-1].coef_, sk_soft.coef_, rtol=1e-4, atol=1e-6)
np.testing.assert_allclose(softmax.predict_proba(Xd), sk_soft.predict_proba(Zd), atol=1e-6)
np.testing.assert_allclose(ovr.predict_proba(Xd), sk_ovr.predict_proba(Zd), atol=1e-6)

acc_soft = np.mean(softmax.predict(Xd) == drinks[drink])
acc_ovr = np.mean(ovr.predict(Xd) == drinks[drink])
print(f"accuracy: softmax {acc_soft:.3f}, one-vs-rest {acc_ovr:.3f}")
np.testing.assert_allclose(softmax.predict_proba(Xd).sum(axis=1), 1.0, rtol=1e-12)
assert abs(acc_soft - acc_ovr) < 0.05

hh, aa = np.meshgrid(np.linspace(6, 20, 150), np.linspace(18, 70, 150))
grid = np.column_stack([hh.ravel(), aa.ravel()])
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, model, title in [(axes[0], softmax, "softmax"), (axes[1], ovr, "one-vs-rest")]:
    region = np.searchsorted(drinks, model.predict(grid)).reshape(hh.shape)
    ax.contourf(hh, aa, region, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3,
                colors=["C0", "C1", "C2"])
    for k, name in enumerate(drinks):
        ax.scatter(hour[drink == k], age[drink == k], s=5, c=f"C{k}", label=name)
    ax.set(xlabel="hour of day", title=f"{title}: accuracy "
           f"{acc_soft if title == 'softmax' else acc_ovr:.3f}")
axes[0].set_ylabel("age")
axes[0].legend(loc="upper left", fontsize=8)
plt.show()

# %% [markdown]
# Softmax is the principled choice when the classes are exclusive (one drink per
# order): one likelihood, coherent probabilities. One-vs-rest is handy when the binary
# models are wanted on their own, or the classes are not exclusive.
