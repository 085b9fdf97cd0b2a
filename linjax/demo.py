"""`linjax demo`: four models on the bundled coffee-shop data, numpy only.

1. Ordinary least squares: revenue ~ foot traffic + income + competitors + rent + seats
   + region (R's summary table).
2. A lasso path for revenue over all the numeric columns (standardized) with alpha
   chosen by 5-fold cross-validation: the whole path on every fold is one compiled,
   vmapped call.
3. Logistic regression of survival (open after three years) with odds ratios.
4. Poisson regression of complaint counts with months open as the exposure.

Needs only numpy and JAX (pandas, formulaic and matplotlib are optional); with
matplotlib it saves a PNG figure of the four models.
"""

import os
import sys
import time

import jax
import numpy as np

import linjax as lj
from linjax import paths, selection
from linjax.datasets import load_coffee_shops
from linjax.inference import summarize

REGIONS = ["downtown", "suburb", "campus", "airport"]  # downtown is the baseline


def _design(data, columns, region=True):
    X = [np.asarray(data[c], float) for c in columns]
    names = list(columns)
    if region:
        for level in REGIONS[1:]:
            X.append((data["region"] == level).astype(float))
            names.append(f"region[{level}]")
    return np.column_stack(X), names


class _Progress:
    """'[2/4] lasso path ... done (1.3 s)' on stderr: the first run compiles."""

    def __init__(self, total, out, stream=sys.stderr):
        self.total, self.step, self.out, self.stream = total, 0, out, stream

    def __call__(self, what):
        self.out.flush()
        self.step += 1
        self.what, self.start = what, time.perf_counter()
        self.stream.write(f"[{self.step}/{self.total}] {what} (compiling on the first run) ...")
        self.stream.flush()
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.stream.write(f" done ({time.perf_counter() - self.start:.1f} s)\n")
        else:
            self.stream.write(" failed\n")
        self.stream.flush()


def _title(text, out):
    print(f"\n{'=' * 78}\n{text}\n{'=' * 78}", file=out)


def run(figure="linjax-demo.png", out=sys.stdout, folds=5):
    """Run the demo, print its tables to `out`; save the figure to `figure` (None: skip)."""
    jax.config.update("jax_enable_x64", True)

    t0 = time.perf_counter()
    data = load_coffee_shops().data
    n = len(data["revenue"])
    progress = _Progress(4 if hasattr(lj.solvers, "CoordinateDescent") else 3, out)
    print(f"linjax demo: {n} synthetic coffee shops (linjax.datasets.load_coffee_shops()); "
          f"float64 on; devices: {', '.join(str(d) for d in jax.devices())}", file=out)

    # 1. OLS ------------------------------------------------------------------------------
    with progress("ordinary least squares"):
        X1, names1 = _design(data, ["foot_traffic", "income", "competitors", "rent", "seats"])
        y1 = np.asarray(data["revenue"], float)
        fit1 = lj.fit(X1, y1)
        s1 = summarize(fit1, X1, y1, feature_names=names1)
        str(s1)
    _title("1. Ordinary least squares: revenue ($k/month) ~ foot traffic + income + "
           "competitors\n   + rent + seats + region (baseline: downtown)", out)
    print(s1, file=out)
    b = dict(zip(s1.names, np.asarray(s1.params), strict=True))
    print(f"\nEach extra 100 people a day is worth ${100 * b['foot_traffic']:.2f}k of revenue a "
          f"month; each competitor nearby costs ${-b['competitors']:.2f}k.", file=out)

    # 2. lasso path -----------------------------------------------------------------------
    lasso = _lasso(lj, data, y1, progress, folds, out)

    # 3. logistic -------------------------------------------------------------------------
    with progress("logistic regression"):
        cols3 = ["revenue", "rent", "square_footage", "competitors"]
        X3, names3 = _design(data, cols3, region=False)
        y3 = np.asarray(data["survived"], float)
        fam3 = lj.families.Binomial()
        fit3 = lj.fit(X3, y3, family=fam3)
        s3 = summarize(fit3, X3, y3, fam3, feature_names=names3)
        str(s3)
    _title("3. Logistic regression: survived (open after 3 years) ~ revenue + rent + "
           "square footage\n   + competitors", out)
    print(s3, file=out)
    ors, orci = s3.odds_ratios, s3.odds_ratio_conf_int
    print("\nOdds ratios (95% CI):", file=out)
    for j, name in enumerate(s3.names[1:], start=1):
        print(f"  {name:<15} {ors[j]:8.4f}  [{orci[j, 0]:.4f}, {orci[j, 1]:.4f}]", file=out)
    print(f"Each competitor nearby multiplies the odds of survival by {ors[-1]:.2f}.", file=out)

    # 4. Poisson with exposure -------------------------------------------------------------
    with progress("Poisson regression with exposure"):
        X4, names4 = _design(data, ["foot_traffic", "seats"])
        y4 = np.asarray(data["complaints"], float)
        months = np.asarray(data["months_open"], float)
        fam4 = lj.families.Poisson()
        fit4 = lj.fit(X4, y4, family=fam4, offset=np.log(months))
        s4 = summarize(fit4, X4, y4, fam4, offset=np.log(months), feature_names=names4)
        str(s4)
    _title("4. Poisson regression: complaints ~ foot traffic + seats + region, exposure = "
           "months open\n   (offset log(months_open): the model is for complaints per month)",
           out)
    print(s4, file=out)
    rr = np.exp(np.asarray(s4.params))
    print(f"\nRate ratios: +100 people a day x{rr[1] ** 100:.3f} complaints per month; airport "
          f"shops x{rr[names4.index('region[airport]') + 1]:.3f} against downtown. Baseline "
          f"rate {rr[0]:.4f} complaints a month.", file=out)

    elapsed = time.perf_counter() - t0
    where = _figure(figure, data, X1, y1, s1, lasso, s3, y4,
                    months, np.asarray(lj.predict(fit4.params, X4, fam4, offset=np.log(months))))
    print(f"\n{where}", file=out)
    n_lasso = 0 if lasso is None else len(lasso[0]) * (folds + 1)
    print(f"Fitted 3 models and {n_lasso} lasso fits in {elapsed:.1f} s "
          "(later runs reuse the compilation cache). Next: `linjax fit --help`.", file=out)
    chosen = None if lasso is None else float(lasso[0][lasso[3]])
    return {"ols": s1, "logistic": s3, "poisson": s4, "lasso_alpha": chosen}


def _lasso(lj, data, y1, progress, folds, out):
    """Section 2; returns (alphas, coefs, cv deviance, chosen index, names) or None."""
    if not hasattr(lj.solvers, "CoordinateDescent"):  # L1 needs the CD/proximal solvers
        _title("2. Lasso path: skipped, this linjax has no L1 solver", out)
        return None
    with progress(f"lasso path, {folds}-fold cross-validation"):
        cols2 = ["foot_traffic", "income", "competitors", "rent", "seats", "square_footage",
                 "months_open", "wait_minutes"]
        X2, names2 = _design(data, cols2)
        mean2, sd2 = X2.mean(0), X2.std(0)
        Z = (X2 - mean2) / sd2
        family = lj.families.Gaussian()
        alphas = paths.alpha_grid(Z, y1, family, 1.0, 40, 1e-3)
        fold = np.random.default_rng(0).permutation(len(y1)) % folds
        cv = selection.cv_path(Z, y1, family, 1.0, np.asarray(alphas, float), fold)
        coefs, cvdev, cvse = np.asarray(cv.path.coef), cv.mean, cv.se
        best = int(np.argmin(cvdev))
        within = np.flatnonzero(cvdev <= cvdev[best] + cvse[best])
        one_se = int(within.min())  # the largest alpha within one SE (glmnet's lambda.1se)
    _title(f"2. Lasso path: revenue ~ {len(names2)} standardized features; alpha chosen by "
           f"{folds}-fold CV\n   (held-out mean squared error, one compiled vmapped call for "
           f"{len(alphas)} alphas x {folds + 1} fits)", out)
    print(f"{'alpha':>10} {'nonzero':>8} {'CV MSE':>10} {'std err':>9}", file=out)
    for i in sorted(set(np.linspace(0, len(alphas) - 1, 8).astype(int)) | {best, one_se}):
        mark = "  <- chosen (min CV error)" if i == best else (
            "  <- largest alpha within 1 SE" if i == one_se else "")
        print(f"{alphas[i]:>10.4g} {int(np.sum(coefs[i] != 0)):>8d} {2 * cvdev[i]:>10.4f} "
              f"{2 * cvse[i]:>9.4f}{mark}", file=out)
    print(f"\nCoefficients at the chosen alpha = {alphas[best]:.4g} (per standard deviation and "
          "per unit):", file=out)
    width = max(len(s) for s in names2)
    for j, name in enumerate(names2):
        c = coefs[best, j]
        text = "  (dropped)" if c == 0 else f"{c:>10.4f} {c / sd2[j]:>12.5f}"
        print(f"  {name:<{width}} {text}", file=out)
    kept = [nm for nm, c in zip(names2, coefs[one_se], strict=True) if c != 0]
    print(f"The sparser 1-SE model keeps: {', '.join(kept) or 'nothing'}.", file=out)
    return alphas, coefs, cvdev, best, names2


def _figure(path, data, X1, y1, s1, lasso, s3, y4, months, mu4):
    if path is None:
        return "Figure: skipped (--no-figure)."
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ("Figure: not drawn, matplotlib is not installed (pip install 'linjax[plot]' "
                "to get a PNG of the four models).")
    fig, ax = plt.subplots(2, 2, figsize=(11, 8.5))
    a = ax[0, 0]
    a.scatter(data["foot_traffic"], y1, s=8, alpha=0.5, label="shops")
    b = np.asarray(s1.params)
    others = b[0] + X1[:, 1:].mean(0) @ b[2:]  # the other features at their means
    grid = np.linspace(X1[:, 0].min(), X1[:, 0].max(), 50)
    a.plot(grid, others + b[1] * grid, "r-", label=f"OLS slope {b[1]:.4f}")
    a.set(xlabel="foot traffic (people/day)", ylabel="revenue ($k/month)",
          title="1. OLS: revenue vs foot traffic")
    a.legend()
    a = ax[0, 1]
    if lasso is not None:
        alphas, coefs, _, best, names2 = lasso
        for j, name in enumerate(names2):
            a.plot(np.log10(alphas), coefs[:, j], label=name)
        a.axvline(np.log10(alphas[best]), color="k", ls="--", lw=1, label="chosen alpha")
        a.legend(fontsize=7, ncol=2)
    a.set(xlabel="log10(alpha)", ylabel="standardized coefficient",
          title="2. Lasso path (alpha by cross-validation)")
    a = ax[1, 0]
    ors, ci = s3.odds_ratios[1:], s3.odds_ratio_conf_int[1:]
    pos = np.arange(len(ors))
    a.errorbar(ors, pos, xerr=[ors - ci[:, 0], ci[:, 1] - ors], fmt="o", capsize=4)
    a.axvline(1.0, color="k", lw=1)
    a.set_xscale("log")
    a.set_yticks(pos, list(s3.names[1:]))
    a.set(xlabel="odds ratio (95% CI, log scale)", title="3. Logistic: odds of survival")
    a = ax[1, 1]
    a.scatter(mu4 / months, y4 / months, s=8, alpha=0.5)
    top = max(float((y4 / months).max()), float((mu4 / months).max()))
    a.plot([0, top], [0, top], "k--", lw=1)
    a.set(xlabel="predicted complaints per month", ylabel="observed complaints per month",
          title="4. Poisson with exposure (months open)")
    fig.suptitle("linjax demo: coffee shops")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as err:
        return f"Figure: could not save {path} ({err})."
    finally:
        plt.close(fig)

    return f"Figure: saved to {os.path.abspath(path)}"
