# %% [markdown]
# # 1. Least squares: the coffee shop, the bowl and the solvers
#
# A coffee-shop chain wants to know how monthly revenue depends on the people who walk
# past the door. This notebook builds linear regression from the ground up with linjax:
#
# 1. what "linear" means (linear in the **parameters**, not in the inputs);
# 2. squared loss and its bowl;
# 3. the normal equation, and why libraries solve with QR or SVD instead;
# 4. gradient descent (batch, stochastic, mini-batch) and why feature scaling matters;
# 5. the full regression table, and multicollinearity measured by VIF.
#
# Every claim the text makes is checked by an `assert`, so this notebook fails CI if
# it stops being true. The data are bundled with linjax (400 synthetic shops).

# %%
import jax

jax.config.update("jax_enable_x64", True)  # float64: statistics need it

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import statsmodels.api as sm
from statsmodels.stats.outliers_influence import variance_inflation_factor

import linjax as lj
from linjax.datasets import load_coffee_shops

shops = load_coffee_shops().data
revenue = shops["revenue"]  # $k per month
traffic = shops["foot_traffic"] / 100.0  # hundreds of people per day
n = len(revenue)
print(f"{n} shops; columns: {', '.join(shops)}")

# %% [markdown]
# ## 1. Linear in the parameters
#
# A linear model predicts $\hat y = \beta_0 + \beta_1 x_1 + \dots + \beta_p x_p$. The
# word *linear* is about the $\beta$s: each enters multiplied by a known number. The
# columns themselves can be anything we compute from the data — $x^2$, $\log x$, a
# dummy for "downtown" — and the model stays linear, so it keeps one global optimum
# and a closed-form solution. $y = \beta_0 e^{\beta_1 x}$ is *not* linear in
# $\beta_1$; that needs the iterative methods of notebooks 3 and 4.
#
# Below, revenue against foot traffic and its square: a curve in $x$, a linear
# model in $\beta$. `lj.fit` with the default Gaussian family is ordinary least squares.

# %%
X_quad = np.column_stack([traffic, traffic**2])
quad = lj.fit(X_quad, revenue)
print("intercept, traffic, traffic^2:", quad.params["intercept"], quad.params["coef"])

# the same curve from numpy's polynomial fit (highest power first)
np.testing.assert_allclose(np.polyfit(traffic, revenue, 2)[::-1],
                           np.r_[quad.params["intercept"], quad.params["coef"]], rtol=1e-8)

grid = np.linspace(traffic.min(), traffic.max(), 200)
line = lj.fit(traffic[:, None], revenue)
fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(traffic, revenue, s=8, alpha=0.5, label="shops")
ax.plot(grid, lj.predict(line.params, grid[:, None], lj.families.Gaussian()), "k",
        label="straight line")
ax.plot(grid, lj.predict(quad.params, np.column_stack([grid, grid**2]),
                         lj.families.Gaussian()), "C3--", label="quadratic (still linear)")
ax.set(xlabel="foot traffic (hundreds / day)", ylabel="revenue ($k / month)")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. Squared loss is a bowl
#
# Least squares chooses $\beta$ to minimise the mean squared residual. linjax writes
# every objective the same way (docs/objective.md): the mean half deviance, here
# $\frac{1}{n}\sum_i \tfrac12 (y_i - \beta_0 - \beta_1 x_i)^2$. As a function of
# $(\beta_0, \beta_1)$ it is a quadratic with a positive definite Hessian
# $\frac1n X^\top X$: a bowl with a single bottom. `lj.objective` is a pure JAX
# function, so `jax.vmap` evaluates it over a whole grid of parameters at once.

# %%
gauss = lj.families.Gaussian()
X1 = traffic[:, None]


def loss(b0, b1, X=X1):
    return lj.objective({"coef": jnp.array([b1]), "intercept": b0}, X, revenue, gauss)


b0_hat, b1_hat = float(line.params["intercept"]), float(line.params["coef"][0])
B0, B1 = np.meshgrid(np.linspace(b0_hat - 15, b0_hat + 15, 80),
                     np.linspace(b1_hat - 2.5, b1_hat + 2.5, 80))
surface = jax.vmap(jax.vmap(loss))(B0, B1)

fig = plt.figure(figsize=(11, 4))
ax = fig.add_subplot(1, 2, 1, projection="3d")
ax.plot_surface(B0, B1, np.asarray(surface), cmap="viridis", alpha=0.9)
ax.set(xlabel=r"$\beta_0$", ylabel=r"$\beta_1$", zlabel="loss", title="the bowl")
ax = fig.add_subplot(1, 2, 2)
ax.contour(B0, B1, np.log(np.asarray(surface)), levels=25)
ax.plot(b0_hat, b1_hat, "r*", ms=14, label="lj.fit")
ax.set(xlabel=r"$\beta_0$ (intercept)", ylabel=r"$\beta_1$ (per 100 people)",
       title="contours (log scale)")
ax.legend()
plt.show()

# claim: the fit sits at the bottom of the bowl, and the bowl is convex
i, j = np.unravel_index(np.argmin(surface), surface.shape)
assert abs(B0[i, j] - b0_hat) < 0.5 and abs(B1[i, j] - b1_hat) < 0.1
hessian = jax.hessian(lambda b: loss(b[0], b[1]))(jnp.array([b0_hat, b1_hat]))
Xa = np.column_stack([np.ones(n), traffic])
np.testing.assert_allclose(hessian, Xa.T @ Xa / n, rtol=1e-10)  # the Hessian is X'X / n
assert np.all(np.linalg.eigvalsh(hessian) > 0)
# and the gradient vanishes at the fit: the normal equations X'(y - X b) = 0
g = jax.grad(lambda b: loss(b[0], b[1]))(jnp.array([b0_hat, b1_hat]))
assert np.max(np.abs(g)) < 1e-9

# %% [markdown]
# ## 3. The normal equation, and why nobody inverts $X^\top X$
#
# Setting the gradient to zero gives the normal equation $X^\top X \beta = X^\top y$,
# so $\hat\beta = (X^\top X)^{-1} X^\top y$. On paper that is the answer; in floating
# point it is a poor way to compute it. Forming $X^\top X$ **squares the condition
# number** $\kappa$: a design with $\kappa(X) = 10^6$ gives $\kappa(X^\top X) =
# 10^{12}$, and with 16 significant digits in float64 about 12 of them are lost.
# QR ($X = QR$, solve $R\beta = Q^\top y$) and SVD work with $X$ itself and lose only
# about $\log_{10}\kappa(X)$ digits. That is what `lj.solvers.LeastSquares` does (and
# why it passes NIST's hardest certified least-squares problems).
#
# On the coffee data all methods agree. Then we build two nearly identical columns
# (say, seats counted by two surveyors) with an exact answer known in advance.

# %%
def normal_equation(X, y):
    Xa = np.column_stack([np.ones(len(y)), X])
    return np.linalg.inv(Xa.T @ Xa) @ (Xa.T @ y)


def coefficients(result):
    return np.r_[result.params["intercept"], result.params["coef"]]


svd = lj.solvers.LeastSquares(method="svd")
np.testing.assert_allclose(normal_equation(X_quad, revenue), coefficients(quad), rtol=1e-7)
np.testing.assert_allclose(coefficients(lj.fit(X_quad, revenue, solver=svd)),
                           coefficients(quad), rtol=1e-10)

rng = np.random.default_rng(0)
seats_a = rng.normal(40, 10, size=n)
seats_b = seats_a + 1e-6 * rng.normal(size=n)  # agrees with seats_a to ~7 digits
X_near = np.column_stack([seats_a, seats_b])
truth = np.array([3.0, 1.0, 2.0])  # intercept, beta_a, beta_b
y_exact = truth[0] + X_near @ truth[1:]  # no noise: the exact answer is `truth`

errors = {
    "inverse of X'X": normal_equation(X_near, y_exact),
    "QR (lj.fit)": coefficients(lj.fit(X_near, y_exact)),
    "SVD (lj.fit)": coefficients(lj.fit(X_near, y_exact, solver=svd)),
}
kappa = float(lj.diagnostics.condition_number(X_near, fit_intercept=True))
print(f"condition number of X: {kappa:.2e}, of X'X: {kappa**2:.2e}")
for name, b in errors.items():
    err = np.max(np.abs(b - truth))
    errors[name] = err
    print(f"{name:>15}: max error {err:.1e}")

# claim: the explicit inverse loses digits that QR and SVD keep
assert errors["inverse of X'X"] > 1e-6
assert errors["QR (lj.fit)"] < 1e-8 and errors["SVD (lj.fit)"] < 1e-8
assert errors["inverse of X'X"] > 1e3 * max(errors["QR (lj.fit)"], errors["SVD (lj.fit)"])

# %% [markdown]
# ## 4. Gradient descent, and why scaling matters
#
# For millions of rows, or for the models of later notebooks that have no closed
# form, we walk downhill instead: $\beta \leftarrow \beta - \eta\, \nabla L(\beta)$.
# The step size $\eta$ must stay below $2/\lambda_{\max}$ of the Hessian, and progress
# along the flattest direction is governed by $\lambda_{\min}$: the iterations needed
# grow with the condition number $\lambda_{\max}/\lambda_{\min}$.
#
# Foot traffic has a mean of about 6.5 (hundreds), so the intercept and slope are
# tangled: the bowl is a long narrow valley. Standardizing the feature (mean 0, sd 1)
# makes the Hessian the identity and the bowl round. Same data, same model, same
# fitted line — very different walks.

# %%
def gradient_descent(X, y, steps, lr):
    """Plain full-batch gradient descent on the linjax objective, every iterate kept."""
    def step(b, _):
        grad = jax.grad(lambda b: loss(b[0], b[1], X))(b)
        b = b - lr * grad
        return b, b

    _, path = jax.lax.scan(step, jnp.zeros(2), None, length=steps)
    return np.vstack([np.zeros(2), np.asarray(path)])


stats = lj.preprocessing.fit_standardizer(X1)
Z1 = np.asarray(lj.preprocessing.standardize(X1, stats))
Za = np.column_stack([np.ones(n), Z1])
lr_raw = 1.0 / np.linalg.eigvalsh(Xa.T @ Xa / n)[-1]  # 1 / L, the safe step
lr_std = 1.0 / np.linalg.eigvalsh(Za.T @ Za / n)[-1]
path_raw = gradient_descent(X1, revenue, 100, lr_raw)
path_std = gradient_descent(Z1, revenue, 100, lr_std)
line_std = lj.fit(Z1, revenue)
print("condition number of the Hessian, raw:", np.linalg.cond(Xa.T @ Xa),
      " standardized:", np.linalg.cond(Za.T @ Za))

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, path, X, fitted, title in [
        (axes[0], path_raw, X1, line, "raw foot traffic"),
        (axes[1], path_std, Z1, line_std, "standardized foot traffic")]:
    c0, c1 = float(fitted.params["intercept"]), float(fitted.params["coef"][0])
    G0, G1 = np.meshgrid(np.linspace(-2, c0 + 6, 60), np.linspace(-2, c1 + 6, 60))
    ax.contour(G0, G1, np.log(np.asarray(jax.vmap(jax.vmap(
        lambda a, b, X=X: loss(a, b, X)))(G0, G1))), levels=30)
    ax.plot(path[:, 0], path[:, 1], "r.-", ms=3, lw=1, label="100 GD steps")
    ax.plot(c0, c1, "k*", ms=14, label="optimum")
    ax.set(title=title, xlabel=r"$\beta_0$", ylabel=r"$\beta_1$")
    ax.legend(loc="lower right")
plt.show()

dist_raw = np.linalg.norm(path_raw[-1] - coefficients(line))
dist_std = np.linalg.norm(path_std[-1] - coefficients(line_std))
print(f"distance to the optimum after 100 steps: raw {dist_raw:.3g}, "
      f"standardized {dist_std:.3g}")
# claim: on the round bowl GD is done; in the valley it is still far away
assert dist_std < 1e-8 and dist_raw > 1.0

# %% [markdown]
# linjax's own `GradientDescent` solver (backtracking line search) shows the same on
# the four-feature model: compare the iterations it needs on raw and on standardized
# columns. The fitted values are identical; the coefficients differ only by the
# change of units. (`lj.fit` normally starts from R's first IRLS step, which for least
# squares *is* the answer; `init=` starts the walk at zero instead.)

# %%
features = ["foot_traffic", "income", "competitors", "seats"]
X4 = np.column_stack([shops[f] for f in features]).astype(float)
stats4 = lj.preprocessing.fit_standardizer(X4)
Z4 = np.asarray(lj.preprocessing.standardize(X4, stats4))
zero = {"coef": np.zeros(4), "intercept": 0.0}
gd = lj.solvers.GradientDescent(max_iter=5000)
gd_raw = lj.fit(X4, revenue, solver=gd, init=zero)
gd_std = lj.fit(Z4, revenue, solver=gd, init=zero)
ols4 = lj.fit(X4, revenue)
print(f"gradient descent iterations, raw: {int(gd_raw.n_iter)} ({gd_raw.message}); "
      f"standardized: {int(gd_std.n_iter)} ({gd_std.message})")

# claims: standardized GD converges quickly to the least-squares answer; raw GD does not
assert bool(gd_std.converged) and int(gd_std.n_iter) < 500
assert int(gd_raw.n_iter) > 10 * int(gd_std.n_iter)
back = lj.preprocessing.params_to_original(gd_std.params, stats4)
np.testing.assert_allclose(back["coef"], ols4.params["coef"], rtol=1e-5)

# %% [markdown]
# ## 5. Batch, stochastic and mini-batch gradient descent
#
# Full-batch GD reads all $n$ rows for one step. **Stochastic** GD takes a step after
# every single row, using that row's gradient as a noisy but unbiased estimate;
# **mini-batch** GD averages the gradient over a small batch (16 rows below). Per pass
# over the data (an *epoch*) the stochastic versions take many more steps, so they
# get close fast, but with a constant step size the noise keeps them jittering around
# the optimum instead of settling. Mini-batches trade some of that noise for fewer,
# better steps, and vectorize well on hardware.
#
# Here each variant runs 30 epochs on the standardized four-feature model with a
# constant learning rate, as a jit-compiled `lax.scan` over epochs and batches.

# %%
def minibatch_gd(Z, y, batch_size, lr, epochs, seed=0):
    """Objective after every epoch of (mini-batch) stochastic gradient descent."""
    n_batches = len(y) // batch_size
    Z, y = jnp.asarray(Z), jnp.asarray(y)

    def batch_loss(b, Zb, yb):
        return lj.objective({"coef": b[1:], "intercept": b[0]}, Zb, yb, gauss)

    @jax.jit
    def run(key):
        def epoch(b, key):
            order = jax.random.permutation(key, len(y))[: n_batches * batch_size]
            batches = (Z[order].reshape(n_batches, batch_size, -1),
                       y[order].reshape(n_batches, batch_size))

            def step(b, batch):
                return b - lr * jax.grad(batch_loss)(b, *batch), None

            b, _ = jax.lax.scan(step, b, batches)
            return b, batch_loss(b, Z, y)

        return jax.lax.scan(epoch, jnp.zeros(Z.shape[1] + 1), jax.random.split(key, epochs))

    return run(jax.random.key(seed))


best = float(lj.objective(lj.fit(Z4, revenue).params, Z4, revenue, gauss))
curves = {}
for label, batch_size, lr in [("batch (n = 400)", n, 0.1), ("mini-batch (16)", 16, 0.1),
                              ("stochastic (1)", 1, 0.1)]:
    _, losses = minibatch_gd(Z4, revenue, batch_size, lr, epochs=30)
    curves[label] = np.asarray(losses) - best

fig, ax = plt.subplots(figsize=(6, 4))
for label, gap in curves.items():
    ax.semilogy(np.arange(1, 31), gap, label=label)
ax.set(xlabel="epoch (passes over the data)", ylabel="objective - optimum",
       title="learning rate 0.1 for all three")
ax.legend()
plt.show()

full, mini, sgd = curves.values()
# claims: per epoch, the stochastic versions make far more progress early on ...
assert sgd[0] < full[0] / 100 and mini[0] < full[0] / 100
# ... but with a constant step SGD keeps bouncing: mini-batch ends closer to the optimum
assert np.mean(mini[-10:]) < np.mean(sgd[-10:])
assert np.std(sgd[-10:]) > np.std(mini[-10:])

# %% [markdown]
# linjax's `SGD` solver adds what makes SGD usable in practice: any optax update rule
# (Adam by default; plain SGD steps here), seeded reshuffling every epoch, and
# averaging of the iterates over the last epoch (Polyak–Ruppert), which removes most
# of the jitter. After 100 epochs it lands within a hair of the exact answer.

# %%
sgd_solver = lj.solvers.SGD(batch_size=16, optimizer=optax.sgd(0.01), max_iter=100)
sgd_fit = lj.fit(Z4, revenue, solver=sgd_solver, init=zero)
exact = lj.fit(Z4, revenue)
print("SGD:  ", np.round(np.asarray(sgd_fit.params["coef"]), 4))
print("exact:", np.round(np.asarray(exact.params["coef"]), 4))
np.testing.assert_allclose(sgd_fit.params["coef"], exact.params["coef"], rtol=0, atol=0.05)
assert float(sgd_fit.objective) - float(exact.objective) < 1e-3 * float(exact.objective)

# %% [markdown]
# ## 6. The regression table
#
# `lj.inference.summarize` gives R's `summary(lm(...))` table: estimates, standard
# errors from $\hat\sigma^2 (X^\top X)^{-1}$ (computed from the QR factor, never the
# inverse), t tests, confidence intervals, and R's log-likelihood and AIC. It is
# checked against statsmodels here.

# %%
table = lj.inference.summarize(ols4, X4, revenue, feature_names=features)
print(table)

ref = sm.OLS(revenue, sm.add_constant(X4)).fit()
np.testing.assert_allclose(table.params, ref.params, rtol=1e-9)
np.testing.assert_allclose(table.bse, ref.bse, rtol=1e-9)
np.testing.assert_allclose(table.statistic, ref.tvalues, rtol=1e-9)
np.testing.assert_allclose(table.pvalues, ref.pvalues, rtol=1e-6, atol=1e-300)
np.testing.assert_allclose(table.conf_int, ref.conf_int(), rtol=1e-9)
np.testing.assert_allclose(table.llf, ref.llf, rtol=1e-10)
np.testing.assert_allclose(table.aic, ref.aic + 2, rtol=1e-10)  # R also counts sigma
np.testing.assert_allclose(table.scale, ref.scale, rtol=1e-10)
print("matches statsmodels OLS")

# %% [markdown]
# Reading it: each extra hundred people a day is worth about $3k a month, each
# competitor nearby costs about $1.6k, each seat adds about $150 — holding the other
# columns fixed.
#
# ## 7. Multicollinearity and the variance inflation factor
#
# "Holding the others fixed" gets hard when two columns move together. Square footage
# is mostly seats times about 22 sq ft plus a fixed area, so once seats are in the
# model, square footage carries little new information — and the two coefficients'
# standard errors balloon, because the data cannot say which of the two deserves the
# credit. The variance inflation factor of column $j$ is $1/(1-R_j^2)$, with $R_j^2$
# from regressing column $j$ on the others: the factor by which its coefficient's
# variance grows compared with an uncorrelated design. Values above 5–10 are the usual
# warning sign.

# %%
features5 = features + ["square_footage"]
X5 = np.column_stack([shops[f] for f in features5]).astype(float)
vifs = np.asarray(lj.diagnostics.vif(X5))
for name, v in zip(features5, vifs, strict=True):
    print(f"VIF {name:>15}: {v:6.2f}")

# the same numbers from statsmodels (design with a constant column)
X5c = sm.add_constant(X5)
np.testing.assert_allclose(vifs, [variance_inflation_factor(X5c, j) for j in range(1, 6)],
                           rtol=1e-8)

table5 = lj.inference.summarize(lj.fit(X5, revenue), X5, revenue, feature_names=features5)
se_seats_alone = float(table.bse[features.index("seats") + 1])
se_seats_both = float(table5.bse[features5.index("seats") + 1])
print(f"std. error of the seats coefficient: {se_seats_alone:.4f} without square footage, "
      f"{se_seats_both:.4f} with it")
# claims: seats and square footage are collinear, and that inflates the seats std. error
assert vifs[features5.index("seats")] > 5 and vifs[features5.index("square_footage")] > 5
assert max(vifs[:3]) < 2
assert se_seats_both > 2 * se_seats_alone

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.scatter(shops["seats"], shops["square_footage"], s=8, alpha=0.5)
ax.set(xlabel="seats", ylabel="square footage",
       title=f"correlation {np.corrcoef(shops['seats'], shops['square_footage'])[0, 1]:.2f}")
plt.show()

# %% [markdown]
# What to do about it: drop one of the pair, combine them, or keep both and add a
# penalty — ridge regression, the subject of notebook 2, shrinks the two coefficients
# towards each other and trades a little bias for a large cut in variance.
