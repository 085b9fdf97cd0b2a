"""Plots of regularization paths and cross-validation curves (matplotlib, imported lazily).

    plot_path(path)        coefficients against log(alpha), one line per feature
    plot_cv(cv)            mean held-out score with +-1 standard error bars, alpha_min and
                           alpha_1se marked (a `selection.CVPath`)

Each returns the matplotlib Axes (a new figure when `ax` is None).
"""

import numpy as np


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("linjax.plotting needs matplotlib: pip install matplotlib") from err
    _, ax = plt.subplots()
    return ax


def plot_path(path, ax=None, feature_names=None, log=True):
    """Coefficient paths: path.coef (m, p) against path.alphas (decreasing to the right)."""
    ax = _axes(ax)
    alphas = np.asarray(path.alphas)
    coef = np.asarray(path.coef)
    names = feature_names or [f"x{j + 1}" for j in range(coef.shape[1])]
    for j in range(coef.shape[1]):
        ax.plot(alphas, coef[:, j], label=names[j] if coef.shape[1] <= 12 else None)
    if log:
        ax.set_xscale("log")
    ax.invert_xaxis()
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel("alpha")
    ax.set_ylabel("coefficient")
    ax.set_title("Regularization path")
    if coef.shape[1] <= 12:
        ax.legend(fontsize="small")
    return ax


def plot_cv(cv, ax=None, log=True):
    """Cross-validation curve: mean score per alpha with standard-error bars; dashed lines
    at alpha_min (best mean) and alpha_1se (one-standard-error rule)."""
    ax = _axes(ax)
    alphas = np.asarray(cv.alphas)
    ax.errorbar(alphas, cv.mean, yerr=cv.se, fmt="o-", ms=3, capsize=2, label="CV mean +- se")
    ax.axvline(cv.alpha_min, ls="--", color="C3", label=f"alpha_min = {cv.alpha_min:.3g}")
    ax.axvline(cv.alpha_1se, ls=":", color="C2", label=f"alpha_1se = {cv.alpha_1se:.3g}")
    if log:
        ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("alpha")
    ax.set_ylabel(f"held-out {cv.scoring}")
    ax.set_title(f"{len(cv.scores)}-fold cross-validation")
    ax.legend(fontsize="small")
    return ax
