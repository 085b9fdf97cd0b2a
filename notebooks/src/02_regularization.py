# %% [markdown]
# # 2. Regularization: ridge, lasso, elastic net
#
# Notebook 1 ended with collinear columns whose coefficients the data could not pin
# down. Regularization adds a price for large coefficients to the loss:
# $$\underbrace{\frac1n\sum_i \tfrac12 (y_i - \beta_0 - x_i^\top\beta)^2}_{\text{fit}}
# \;+\; \alpha\Big(\rho\,\|\beta\|_1 + \frac{1-\rho}{2}\|\beta\|_2^2\Big)$$
# (linjax's and glmnet's scaling; the intercept is never penalized). $\rho = 0$ is
# **ridge**, $\rho = 1$ the **lasso**, in between the **elastic net**. This notebook:
# regularization paths; the geometry of why the lasso gives exact zeros (diamond vs
# circle); the grouping effect on correlated features; the Bayesian reading (MAP with
# Gaussian and Laplace priors); choosing $\alpha$ by cross-validation.

# %%
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LassoCV, lasso_path
from sklearn.model_selection import KFold

import linjax as lj

# Simulated shops: 8 standardized features in correlated pairs, only 3 matter.
rng = np.random.default_rng(0)
n, p = 150, 8
names = ["traffic", "traffic_weekend", "income", "income_area", "competitors",
         "rent", "seats", "square_footage"]
base = rng.normal(size=(n, 4))
X = np.repeat(base, 2, axis=1) * 0.8 + 0.6 * rng.normal(size=(n, p))  # pairs correlate 0.64
X = (X - X.mean(0)) / X.std(0)
beta_true = np.array([3.0, 0.0, 1.5, 0.0, -2.0, 0.0, 0.0, 0.0])
y = 10 + X @ beta_true + rng.normal(0, 2.0, n)

# %% [markdown]
# ## 1. Regularization paths
#
# `lj.path` solves the whole path — a decreasing grid of $\alpha$ — in one compiled
# scan, each solution warm-starting the next (glmnet's method). Above `alpha_max`
# every lasso coefficient is zero. Ridge shrinks every
# coefficient smoothly towards zero but never reaches it; the lasso sets coefficients
# to zero one by one as $\alpha$ grows; the elastic net does both.

# %%
alphas = np.logspace(2, -3, 60)  # one grid for all three, strongest first
paths = {label: lj.path(X, y, l1_ratio=rho, alphas=alphas)
         for label, rho in [("ridge", 0.0), ("lasso", 1.0), ("elastic net (0.5)", 0.5)]}
print(f"lasso alpha_max = {float(lj.alpha_max(X, y)):.3f}")

fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
for ax, (label, path) in zip(axes, paths.items(), strict=True):
    for j in range(p):
        ax.semilogx(path.alphas, path.coef[:, j], label=names[j],
                    lw=2 if beta_true[j] else 1, ls="-" if beta_true[j] else "--")
    ax.invert_xaxis()
    ax.set(title=label, xlabel=r"$\alpha$ (strong $\leftarrow$ $\rightarrow$ weak)")
axes[0].set_ylabel("coefficient")
axes[0].legend(fontsize=7)
plt.show()

lasso = paths["lasso"]
# the same lasso path from scikit-learn
sk_alphas, sk_coefs, _ = lasso_path(X - X.mean(0), y - y.mean(), alphas=np.asarray(lasso.alphas),
                                    tol=1e-12, max_iter=100_000)
np.testing.assert_allclose(lasso.coef, sk_coefs.T, atol=1e-6)
assert np.all(np.asarray(lasso.converged))

# %% [markdown]
# ## 2. Exact zeros
#
# Along the lasso path, coefficients are *exactly* 0.0 — not small, zero — so the
# lasso selects variables. Ridge coefficients at the same strength are small but
# never zero.

# %%
k = int(np.flatnonzero(np.asarray(lasso.df) == 3)[-1])  # the weakest alpha with 3 features
alpha_k = float(lasso.alphas[k])
lasso_fit = lj.fit(X, y, penalty=lj.penalties.L1(alpha=alpha_k))
ridge_fit = lj.fit(X, y, penalty=lj.penalties.L2(alpha=alpha_k))
print(f"alpha = {alpha_k:.3f}")
print("lasso:", np.round(np.asarray(lasso_fit.params["coef"]), 3))
print("ridge:", np.round(np.asarray(ridge_fit.params["coef"]), 3))
np.testing.assert_allclose(lasso_fit.params["coef"], lasso.coef[k], atol=1e-6)

# claims: exact zeros for the lasso (the true zeros); none for ridge
zeros = np.asarray(lasso_fit.params["coef"]) == 0.0
print("exact zeros:", [names[j] for j in np.flatnonzero(zeros)])
assert zeros.sum() == 5
assert set(np.flatnonzero(beta_true)) == set(np.flatnonzero(~zeros))
assert np.all(np.asarray(ridge_fit.params["coef"]) != 0.0)
assert np.all(np.asarray(paths["ridge"].coef[1:]) != 0.0)

# %% [markdown]
# ## 3. Why the lasso gives exact zeros: the diamond and the circle
#
# A penalized fit is also a *constrained* fit: minimise the squared loss subject to
# $\|\beta\|_1 \le t$ (lasso) or $\|\beta\|_2 \le t$ (ridge), for some budget $t$ that
# corresponds to $\alpha$. With two coefficients we can draw it: the loss has
# elliptical contours around the least-squares solution, and the solution is the
# first point where the contours touch the constraint region. The $L_2$ ball is a
# circle, touched at a generic point (both coefficients nonzero). The $L_1$ ball is a
# diamond with corners *on the axes*; an ellipse usually touches it first at a corner,
# where one coefficient is exactly zero.

# %%
X2 = X[:, [0, 4]] * np.array([1.0, 0.5])  # two features: traffic and (half) competitors
y2 = X2 @ np.array([2.0, 0.6]) + rng.normal(0, 1.0, n)
X2c, y2c = X2 - X2.mean(0), y2 - y2.mean()
ols2 = np.linalg.lstsq(X2c, y2c, rcond=None)[0]
l1_fit = lj.fit(X2c, y2c, penalty=lj.penalties.L1(alpha=0.35), fit_intercept=False)
l2_fit = lj.fit(X2c, y2c, penalty=lj.penalties.L2(alpha=1.0), fit_intercept=False)
b_l1, b_l2 = np.asarray(l1_fit.params["coef"]), np.asarray(l2_fit.params["coef"])
t1, t2 = np.abs(b_l1).sum(), np.linalg.norm(b_l2)


def sq_loss(b):
    return jnp.mean((y2c - X2c @ b) ** 2) / 2


B1, B2 = np.meshgrid(np.linspace(-1.0, 3.0, 200), np.linspace(-1.5, 2.0, 200))
L = jax.vmap(sq_loss)(jnp.stack([B1.ravel(), B2.ravel()], 1)).reshape(B1.shape)
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
theta = np.linspace(0, 2 * np.pi, 400)
for ax, b, shape, title in [
        (axes[0], b_l1, (t1 * np.sign(np.cos(theta)) * np.cos(theta) ** 2,
                         t1 * np.sign(np.sin(theta)) * np.sin(theta) ** 2), "lasso: L1 diamond"),
        (axes[1], b_l2, (t2 * np.cos(theta), t2 * np.sin(theta)), "ridge: L2 circle")]:
    ax.contour(B1, B2, L, levels=np.sort(np.r_[np.linspace(L.min(), L.max(), 25)[1:6],
                                               float(sq_loss(b))]), cmap="viridis")
    ax.fill(*shape, alpha=0.3, color="C1")
    ax.plot(*ols2, "k*", ms=12, label="least squares")
    ax.plot(*b, "ro", ms=8, label=f"penalized: ({b[0]:.2f}, {b[1]:.2f})")
    ax.axhline(0, color="gray", lw=0.5)
    ax.axvline(0, color="gray", lw=0.5)
    ax.set(xlabel=r"$\beta_1$", ylabel=r"$\beta_2$", title=title, aspect="equal")
    ax.legend(loc="lower right", fontsize=8)
plt.show()

# claims: the lasso solution sits on a corner (beta_2 exactly 0), ridge's on neither axis
assert b_l1[1] == 0.0 and b_l1[0] > 0
assert np.all(b_l2 != 0) and np.all(ols2 != 0)
# ... and each is the best point of its region: no point on the boundary does better
edge1 = np.stack(np.broadcast_arrays(*(np.asarray(s) for s in (
    t1 * np.sign(np.cos(theta)) * np.cos(theta) ** 2,
    t1 * np.sign(np.sin(theta)) * np.sin(theta) ** 2))), 1)
edge2 = np.stack([t2 * np.cos(theta), t2 * np.sin(theta)], 1)
assert float(jnp.min(jax.vmap(sq_loss)(edge1))) >= float(sq_loss(b_l1)) - 1e-9
assert float(jnp.min(jax.vmap(sq_loss)(edge2))) >= float(sq_loss(b_l2)) - 1e-9

# %% [markdown]
# ## 4. The grouping effect
#
# Give the model two nearly identical columns (traffic counted by two sensors). The
# lasso has no reason to prefer one to the other, and its corners make it pick one and
# drop the other — which one is an accident of the data. Ridge's round penalty prefers
# splitting the effect equally ($a^2 + b^2$ is smallest at $a = b$ for fixed $a+b$),
# and the elastic net inherits this **grouping effect** while still producing zeros
# for the irrelevant columns.

# %%
sensor_b = X[:, 0] + 0.05 * rng.normal(size=n)  # a second, noisy reading of traffic
Xg = np.column_stack([X[:, 0], sensor_b, X[:, 2:]])
alpha = 0.15
lasso_g = np.asarray(lj.fit(Xg, y, penalty=lj.penalties.L1(alpha=alpha)).params["coef"])
enet_g = np.asarray(lj.fit(Xg, y, penalty=lj.penalties.ElasticNet(alpha=0.5, l1_ratio=0.5))
                    .params["coef"])
print(f"correlation of the two sensors: {np.corrcoef(X[:, 0], sensor_b)[0, 1]:.4f}")
print("lasso:       sensor A {:.3f}, sensor B {:.3f}".format(*lasso_g[:2]))
print("elastic net: sensor A {:.3f}, sensor B {:.3f}".format(*enet_g[:2]))
print("elastic net, the other columns:", np.round(enet_g[2:], 3))
# claims: the lasso puts (almost) everything on one sensor, the elastic net shares it
assert min(abs(lasso_g[:2])) < 0.2 * max(abs(lasso_g[:2]))
assert abs(enet_g[0] - enet_g[1]) < 0.2 * abs(enet_g[0] + enet_g[1]) / 2
assert np.sum(enet_g[2:] == 0.0) >= 2  # and it still zeroes irrelevant columns

# %% [markdown]
# ## 5. The Bayesian reading: penalties are priors
#
# Treat the coefficients as random with a prior $p(\beta)$. The posterior is
# $p(\beta \mid y) \propto p(y \mid \beta)\,p(\beta)$, and its mode (the **maximum a
# posteriori**, MAP, estimate) minimises $-\log p(y\mid\beta) - \log p(\beta)$:
# a loss plus a penalty.
#
# - A Gaussian prior $\beta_j \sim N(0, \tau^2)$ gives $\frac{1}{2\tau^2}\|\beta\|_2^2$:
#   **ridge**, with $\alpha = 1/(n\tau^2)$ in linjax's per-observation scaling.
# - A Laplace prior $p(\beta_j) \propto e^{-|\beta_j|/b}$ gives $\frac1b\|\beta\|_1$: the
#   **lasso**, with $\alpha = 1/(nb)$. Its density has a sharp peak at zero — the
#   probabilistic face of the diamond's corners.
#
# `L2.log_prior` and `L1.log_prior` are these priors (with unit noise variance). Below
# we maximise the log posterior directly with a general-purpose optimizer and get the
# ridge fit back; for the lasso we check that the fit is the posterior mode.

# %%
gauss = lj.families.Gaussian()


def log_posterior(params, penalty):
    mu = lj.predict(params, X, gauss)
    return jnp.sum(gauss.log_prob(y, mu)) + penalty.log_prior(params["coef"], n=n)


ridge_pen = lj.penalties.L2(alpha=0.5)
ridge = lj.fit(X, y, penalty=ridge_pen)
start = {"coef": jnp.zeros(p), "intercept": jnp.asarray(0.0)}
map_fit = lj.solvers.LBFGS().run(lambda prm: -log_posterior(prm, ridge_pen), start)
np.testing.assert_allclose(map_fit.params["coef"], ridge.params["coef"], atol=1e-6)
print("ridge = MAP under a Gaussian prior:", np.round(np.asarray(ridge.params["coef"]), 3))

lasso_pen = lj.penalties.L1(alpha=0.2)
lasso_map = lj.fit(X, y, penalty=lasso_pen)
# log posterior = -n * objective + constant: the same function up to a shift ...
other = {"coef": jnp.ones(p), "intercept": jnp.asarray(1.0)}
shift = [float(log_posterior(prm, lasso_pen) + n * lj.objective(prm, X, y, gauss, lasso_pen))
         for prm in (lasso_map.params, other)]
np.testing.assert_allclose(shift[0], shift[1], rtol=1e-12)
# ... so the lasso fit is the posterior mode: random nudges only lower the posterior
nudges = 0.01 * jax.random.normal(jax.random.key(0), (200, p))
best = log_posterior(lasso_map.params, lasso_pen)
nudged = jax.vmap(lambda d: log_posterior({"coef": lasso_map.params["coef"] + d,
                                           "intercept": lasso_map.params["intercept"]},
                                          lasso_pen))(nudges)
assert np.all(np.asarray(nudged) < float(best))

grid = jnp.linspace(-3, 3, 401)[:, None]
densities = {"Gaussian prior (ridge)": lj.penalties.L2(alpha=1.0),
             "Laplace prior (lasso)": lj.penalties.L1(alpha=1.0)}
fig, ax = plt.subplots(figsize=(6, 3.5))
for label, pen in densities.items():
    ax.plot(grid[:, 0], jnp.exp(jax.vmap(pen.log_prior)(grid)), label=label)
ax.set(xlabel=r"$\beta_j$", ylabel="prior density", title=r"$\alpha = 1$, $n = 1$")
ax.legend()
plt.show()

# %% [markdown]
# ## 6. Choosing $\alpha$ by cross-validation
#
# The penalty strength is a dial between variance (small $\alpha$, overfitting) and
# bias (large $\alpha$, underfitting). K-fold cross-validation fits the path on $K-1$
# folds, scores it on the held-out fold, and averages. `lj.cv_path` expresses each fold
# as zero weights over the full data, so all folds are fitted in a single `vmap` — one
# compilation. Two choices: `alpha_min` (lowest mean error) and `alpha_1se` (the
# largest $\alpha$ within one standard error of it: a simpler model that is
# statistically as good).

# %%
cv = lj.cv_path(X, y, l1_ratio=1.0, n_alphas=60, folds=5, scoring="mse")
sk_cv = LassoCV(alphas=cv.alphas, cv=KFold(5), tol=1e-12,
                max_iter=100_000).fit(X, y)
np.testing.assert_allclose(cv.scores.T, sk_cv.mse_path_, rtol=1e-5)
assert np.isclose(cv.alpha_min, sk_cv.alpha_)
print(f"alpha_min = {cv.alpha_min:.4f} (scikit-learn's LassoCV: {sk_cv.alpha_:.4f}), "
      f"alpha_1se = {cv.alpha_1se:.4f}")

fig, ax = plt.subplots(figsize=(7, 4))
ax.errorbar(cv.alphas, cv.mean, yerr=cv.se, fmt="o-", ms=3, capsize=2)
ax.axvline(cv.alpha_min, color="C3", ls="--", label=r"$\alpha_{min}$")
ax.axvline(cv.alpha_1se, color="C2", ls=":", label=r"$\alpha_{1se}$")
ax.set(xscale="log", xlabel=r"$\alpha$", ylabel="held-out MSE (5 folds)")
ax.invert_xaxis()
ax.legend()
plt.show()

# claims: too much penalty hurts a lot (too little only slightly here: 8 features and
# 150 rows leave little room to overfit); the minimum is inside the grid; 1se >= min
assert 0 < cv.best_index < len(cv.alphas) - 1
assert cv.mean[0] > 2 * cv.mean[cv.best_index] and cv.mean[-1] >= cv.mean[cv.best_index]
assert cv.alpha_1se >= cv.alpha_min
chosen = np.asarray(cv.path.coef[cv.index_1se])
print("selected at alpha_1se:", [names[j] for j in np.flatnonzero(chosen)])
assert set(np.flatnonzero(beta_true)) <= set(np.flatnonzero(chosen))
