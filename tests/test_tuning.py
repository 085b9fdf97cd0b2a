"""tune: hypergradient descent on log(alpha) reaches the best grid point's held-out loss."""

import numpy as np

import linjax as lj
from linjax import families as F
from linjax import penalties as P
from linjax.model import mean_loss
from linjax.tuning import tune


def test_tune_reaches_grid_optimum_with_fewer_fits():
    rng = np.random.default_rng(11)
    n, p = 120, 20
    X = rng.normal(size=(2 * n, p))
    coef = rng.normal(size=p) * (rng.random(p) < 0.4)
    y = X @ coef + rng.normal(scale=3.0, size=2 * n)
    Xt, yt, Xv, yv = X[:n], y[:n], X[n:], y[n:]
    grid = np.logspace(-3, 1, 40)
    grid_losses = []
    for a in grid:
        res = lj.fit(Xt, yt, penalty=P.L2(alpha=a))
        grid_losses.append(float(mean_loss(res.params, Xv, yv, F.Gaussian())))
    best_grid = min(grid_losses)
    out = tune(Xt, yt, Xv, yv, F.Gaussian(), lambda a: P.L2(alpha=a), alpha0=1e-2, steps=25)
    assert len(out.history_loss) < len(grid)
    assert float(out.val_loss) <= best_grid * 1.01, (float(out.val_loss), best_grid)
