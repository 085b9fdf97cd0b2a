# %% [markdown]
# # 5. JAX superpowers: thousands of fits, gradients through fits, GLM heads, sharding
#
# linjax is written in JAX, and every fit is a pure, compiled function of arrays. That
# buys four things a classical GLM library cannot do:
#
# 1. `vmap`: fit 10,000 GLMs in one compiled call;
# 2. `grad` *through* the fit: tune a penalty by gradient descent on validation loss;
# 3. a GLM as the *head* of a larger JAX model, trained end to end with optax;
# 4. sharding: split the rows of one fit over several devices and get the same answer.
#
# The last part needs several devices. On a laptop or CI machine we ask XLA to pretend
# the CPU is four devices. That flag must be set **before JAX is imported**.

# %%
import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import statsmodels.api as sm
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import linjax as lj
from linjax.tuning import tune

print("devices:", jax.devices())
assert len(jax.devices()) == 4

# %% [markdown]
# ## 1. `vmap`: 10,000 Poisson regressions in one call
#
# A chain has 10,000 shops. For each, we have the number of customers on 60 days, and
# want each shop's own sensitivity to temperature and to weekends: 10,000 Poisson
# regressions. They share the design (the city's weather and calendar are the same for
# every shop), so `lj.fit_batch` can form the column products of $X$ once and get every
# shop's Newton step from a single matrix product. The result is one `FitResult` with a
# leading axis of 10,000.

# %%
rng = np.random.default_rng(0)
m, days = 10_000, 60
temperature = rng.normal(0, 1, days)  # standardized
weekend = (np.arange(days) % 7 >= 5).astype(float)
X_days = np.column_stack([temperature, weekend])
true_coef = np.column_stack([rng.normal(-0.2, 0.1, m), rng.normal(0.4, 0.15, m)])
true_intercept = rng.normal(np.log(150), 0.3, m)
rate = np.exp(true_intercept[:, None] + true_coef @ X_days.T)  # (m, days)
customers = rng.poisson(rate)

poisson = lj.families.Poisson()
t0 = time.perf_counter()
batch = lj.fit_batch(X_days, customers, family=poisson)
jax.block_until_ready(batch.params)
first = time.perf_counter() - t0
t0 = time.perf_counter()
jax.block_until_ready(lj.fit_batch(X_days, customers, family=poisson).params)
again = time.perf_counter() - t0
print(f"{m} fits: {first:.2f} s including compilation, {again:.3f} s once compiled")
print("coef", batch.params["coef"].shape, "converged", int(batch.converged.sum()), "of", m)

# claims: all converged, and each fit is the fit statsmodels gives for that shop
assert bool(jnp.all(batch.converged))
for i in rng.choice(m, 3, replace=False):
    ref = sm.GLM(customers[i], sm.add_constant(X_days), family=sm.families.Poisson()).fit()
    np.testing.assert_allclose(np.r_[batch.params["intercept"][i], batch.params["coef"][i]],
                               ref.params, rtol=1e-7)

# the estimates recover the spread of weekend effects across shops
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(true_coef[:, 1], bins=60, alpha=0.5, density=True, label="true")
ax.hist(np.asarray(batch.params["coef"][:, 1]), bins=60, alpha=0.5, density=True,
        label="estimated (10,000 fits)")
ax.set(xlabel="weekend effect (log rate)", ylabel="density")
ax.legend()
plt.show()
err = np.asarray(batch.params["coef"]) - true_coef
assert np.all(np.abs(err.mean(0)) < 0.01)

# %% [markdown]
# ## 2. Gradients through the fit: tuning a penalty by gradient descent
#
# `lj.fit` is differentiable: `jax.grad` of anything computed from the fitted
# coefficients flows back to the data and to the penalty strength. linjax does not
# backpropagate through the solver's iterations; it uses the **implicit function
# theorem** at the optimum (one linear solve with the Hessian), so the gradient is
# exact and cheap.
#
# That turns hyperparameter search into optimization. With a wide regression (40
# features, 60 training rows), the validation loss of the ridge fit as a function of
# $\log\alpha$ has a minimum; its gradient points the way, and `linjax.tuning.tune` follows
# it with Adam.

# %%
p = 40
beta = rng.normal(0, 1, p) * (rng.random(p) < 0.3)
X_tr, X_val = rng.normal(size=(60, p)), rng.normal(size=(400, p))
y_tr = X_tr @ beta + rng.normal(0, 2, 60)
y_val = X_val @ beta + rng.normal(0, 2, 400)
gauss = lj.families.Gaussian()


def val_loss(log_alpha):
    fit = lj.fit(X_tr, y_tr, penalty=lj.penalties.L2(alpha=jnp.exp(log_alpha)))
    return lj.objective(fit.params, X_val, y_val, gauss)  # mean half squared error


grad = jax.grad(val_loss)(jnp.log(0.1))
eps = 1e-5
fd = (val_loss(jnp.log(0.1) + eps) - val_loss(jnp.log(0.1) - eps)) / (2 * eps)
print(f"d val_loss / d log(alpha) at alpha = 0.1: autodiff {float(grad):.8f}, "
      f"finite differences {float(fd):.8f}")
np.testing.assert_allclose(grad, fd, rtol=1e-5)

tuned = tune(X_tr, y_tr, X_val, y_val, gauss, lambda a: lj.penalties.L2(alpha=a),
                       alpha0=0.01, steps=40, learning_rate=0.3)
# the whole curve, one fit per alpha, vmapped over the penalty strength
log_grid = jnp.linspace(np.log(1e-3), np.log(10.0), 60)
curve = jax.vmap(val_loss)(log_grid)
print(f"tuned alpha {float(tuned.alpha):.4f} (validation loss {float(tuned.val_loss):.4f}); "
      f"best on the grid {float(jnp.exp(log_grid[jnp.argmin(curve)])):.4f} "
      f"({float(curve.min()):.4f})")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogx(np.exp(log_grid), curve, "k-", label="validation loss (vmap over alpha)")
ax.semilogx(tuned.history_alpha, tuned.history_loss, "ro-", ms=3, lw=1,
            label="hypergradient descent")
ax.set(xlabel=r"$\alpha$", ylabel="validation loss")
ax.legend()
plt.show()

# claim: 40 gradient steps find the bottom of the curve
assert float(tuned.val_loss) <= 1.001 * float(curve.min())  # within 0.1% of the grid's best
assert float(tuned.val_loss) < 0.9 * float(tuned.history_loss[0])

# %% [markdown]
# ## 3. A GLM head inside a larger model
#
# Suppose complaints depend on foot traffic and seats through some unknown nonlinear
# shape. Put a small neural feature extractor in front of a **Poisson GLM head**: the
# network produces features $h(x)$, the head is $\log\mu = \beta_0 + h(x)^\top\beta$,
# and the loss is linjax's Poisson objective. Everything is one pytree of parameters,
# trained end to end with optax — here through the optax pair that linjax's `SGD`
# solver exposes (`init` / `update`).
#
# The GLM view adds something a plain network does not have: for fixed features, the
# head's optimum is a convex GLM fit, so `lj.fit` can solve it exactly (a useful
# final "polish", and a check that training reached a sensible place).

# %%
n_shops = 600
Xs = rng.uniform(-2, 2, size=(n_shops, 2))
log_rate = 0.5 + np.sin(1.5 * Xs[:, 0]) + 0.5 * Xs[:, 1] ** 2
counts = rng.poisson(np.exp(log_rate))


def features(net, X):
    return jnp.tanh(X @ net["W"] + net["b"])


def loss(params, X, y):
    return lj.objective(params["head"], features(params["net"], X), y, poisson)


key1, key2 = jax.random.split(jax.random.key(0))
params = {"net": {"W": jax.random.normal(key1, (2, 16)), "b": jax.random.normal(key2, (16,))},
          "head": {"coef": jnp.zeros(16), "intercept": jnp.asarray(0.0)}}
sgd = lj.solvers.SGD(learning_rate=0.02)
opt_state = sgd.init(params)


@jax.jit
def train(params, opt_state):
    def step(carry, _):
        params, opt_state = carry
        value, grads = jax.value_and_grad(loss)(params, Xs, counts)
        updates, opt_state = sgd.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), value

    return jax.lax.scan(step, (params, opt_state), None, length=1500)


(params, opt_state), history = train(params, opt_state)
linear = lj.fit(Xs, counts, family=poisson)  # the plain GLM on the raw inputs
H = features(params["net"], Xs)
polished = lj.fit(H, counts, family=poisson)  # exact head for the learned features
print(f"Poisson objective: linear GLM {float(linear.objective):.4f}, network + GLM head "
      f"{float(history[-1]):.4f}, head refitted exactly {float(polished.objective):.4f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(history)
axes[0].axhline(float(linear.objective), color="k", ls=":", label="linear GLM")
axes[0].set(xlabel="optax step", ylabel="Poisson objective", yscale="log")
axes[0].legend()
axes[1].scatter(log_rate, np.asarray(lj.linear_predictor(polished.params, H)), s=5)
axes[1].plot([log_rate.min(), log_rate.max()], [log_rate.min(), log_rate.max()], "k:")
axes[1].set(xlabel="true log rate", ylabel="fitted log rate")
plt.show()

# claims: the network finds the nonlinearity the linear GLM cannot, and the exact head fit
# is at least as good as the trained head
assert float(history[-1]) < 0.8 * float(linear.objective)
assert float(polished.objective) <= float(history[-1]) + 1e-9
assert np.corrcoef(log_rate, np.asarray(lj.linear_predictor(polished.params, H)))[0, 1] > 0.95

# %% [markdown]
# ## 4. A sharded fit over (simulated) devices
#
# When the rows do not fit on one accelerator, split them. With `jax.sharding`, an
# array can live in pieces on several devices; the fit's reductions
# ($X^\top W X$, $X^\top W z$, the objective) become all-reduces that XLA inserts by
# itself, and `lj.fit` needs no change at all. (`lj.shard_rows` does the placement
# below in one call, and also works across processes.) Here 4 simulated CPU devices
# each hold a quarter of 20,000 logistic-regression rows.

# %%
n_rows, k = 20_000, 5
Xb = rng.normal(size=(n_rows, k))
yb = (rng.random(n_rows) < jax.nn.sigmoid(Xb @ np.linspace(-1, 1, k) + 0.3)).astype(float)

mesh = Mesh(np.array(jax.devices()), ("rows",))
rows = NamedSharding(mesh, PartitionSpec("rows"))
X_sharded = jax.device_put(Xb, rows)
y_sharded = jax.device_put(yb, rows)
print("X is split over:", X_sharded.sharding.device_set)
for shard in X_sharded.addressable_shards:
    print(f"  {shard.device}: rows {shard.index[0].start}..{shard.index[0].stop - 1}")

binomial = lj.families.Binomial()
sharded = lj.fit(X_sharded, y_sharded, family=binomial)
single = lj.fit(Xb, yb, family=binomial)
print("sharded fit:    ", np.round(np.asarray(sharded.params["coef"]), 6))
print("one-device fit: ", np.round(np.asarray(single.params["coef"]), 6))

# claims: the data really are on 4 devices, and the answer is the single-device answer
assert len(X_sharded.sharding.device_set) == 4
assert len({s.device for s in X_sharded.addressable_shards}) == 4
np.testing.assert_allclose(sharded.params["coef"], single.params["coef"], rtol=1e-10)
np.testing.assert_allclose(sharded.params["intercept"], single.params["intercept"],
                           rtol=1e-10)
assert bool(sharded.converged)

# %% [markdown]
# Nothing in `lj.fit` mentions devices: the same code runs on one CPU, four simulated
# devices, a GPU, or (after `jax.distributed.initialize`) many machines.
