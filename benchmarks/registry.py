"""Workloads, peers and the timing loop behind `python -m benchmarks`.

Each builder takes `size` ("full": the sizes of issue 10; "quick": about a tenth; "tiny":
seconds, for tests/test_benchmarks_smoke.py) and a numpy dtype, and returns a `Workload`:
its tools all receive the same arrays, and return their answer in linjax's parameter
convention ({"coef", "intercept"}; batch workloads with a leading problem axis; paths
the solution at the smallest alpha), which `Workload.objective` scores in float64.
"""

import gc
import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import linjax as lj  # noqa: E402

from .bench_batch import data as batch_data  # noqa: E402  (shared with bench_batch.py)
from .bench_designs import (  # noqa: E402
    insurance_frame_poisson,
    insurance_frame_tweedie,
    sparse_logistic,
)
from .bench_expression import workload as expression_workload  # noqa: E402

SIZES = ("full", "quick", "tiny")


@dataclass
class Tool:
    name: str
    fn: Callable[[], dict]
    linjax: bool = False
    repeats: int | None = None  # slow peers: fewer warm repeats (0: cold only)
    scale: float = 1.0  # loops timed on a subset of the problems: times are multiplied


@dataclass
class Workload:
    name: str
    title: str
    tools: list
    objective: Callable[[dict], float]
    note: str = ""


@dataclass
class Row:
    workload: str
    title: str
    tool: str
    linjax: bool
    cold: float = math.nan
    warm: float = math.nan
    objective: float = math.nan
    error: str = ""
    extra: dict = field(default_factory=dict)


def pick(size, full, quick, tiny):
    return {"full": full, "quick": quick, "tiny": tiny}[size]


def block(tree):
    return jax.tree.map(np.asarray, jax.block_until_ready(tree))


#: A tool whose last call took less than this (s) is timed as timeit does: after an untimed
#: call, its calls run back to back for at least this long and the time is their mean. A
#: single short call after another tool's long one measures the machine's wake-up instead:
#: on the 2-CPU VMs used here, a 5 ms fit_batch call took 6.7-7.3 ms right after 0.1 s of
#: single-threaded Python (a scikit-learn loop or a spin), against 4.8-5.0 ms in a loop.
LOOP_BELOW_S = 0.25


def _timed(tool):
    t = time.perf_counter()
    out = tool.fn()
    return out, (time.perf_counter() - t) * tool.scale


def _timed_loop(tool, min_s=LOOP_BELOW_S):
    """(output, mean time per call) of back-to-back calls lasting at least min_s (timeit's
    loop), after one untimed call."""
    tool.fn()
    calls, t = 0, time.perf_counter()
    while True:
        out = tool.fn()
        calls += 1
        elapsed = time.perf_counter() - t
        if elapsed >= min_s:
            return out, elapsed / calls * tool.scale


def run(workload, repeats=3, cap_s=60.0, only=None):
    """Time each tool of `workload`; `only`: substrings of the tool names to keep.

    Every tool's first call (cold) comes first; then the warm repeats go in rounds, one
    call of each tool per round, so a slow spell of the shared machine falls on linjax
    and its peers alike rather than on one tool's repeats. A tool whose cold call takes
    longer than `cap_s` gets no warm repeats (its warm time is then its cold time, marked
    in `Row.extra`); `Tool.repeats` lowers a slow peer's count. A short call (under
    `LOOP_BELOW_S`) is timed as the mean of a back-to-back loop (`_timed_loop`).
    """
    tools = [t for t in workload.tools if not only or any(s in t.name for s in only)]
    rows = [Row(workload.name, workload.title, t.name, t.linjax) for t in tools]
    outs, times, n_rep = [None] * len(tools), [[] for _ in tools], [0] * len(tools)

    def attempt(i, step):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return step()
        except Exception as err:  # noqa: BLE001 - a failing peer is reported, not fatal
            rows[i].error = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
            n_rep[i] = 0

    for i, tool in enumerate(tools):
        done = attempt(i, lambda tool=tool: _timed(tool))
        if done:
            outs[i], rows[i].cold = done
            n_rep[i] = 0 if rows[i].cold > cap_s else (
                repeats if tool.repeats is None else min(repeats, tool.repeats))
    for k in range(max(n_rep, default=0)):
        for i, tool in enumerate(tools):
            if k < n_rep[i]:  # 0 once a call of the tool failed
                last = times[i][-1] if times[i] else rows[i].cold
                timer = _timed_loop if last < LOOP_BELOW_S else _timed
                done = not rows[i].error and attempt(i, lambda tool=tool, timer=timer: timer(tool))
                if done:
                    outs[i] = done[0]
                    times[i].append(done[1])
    for i, tool in enumerate(tools):
        row = rows[i]
        if row.error:
            continue
        row.warm = statistics.median(times[i]) if times[i] else row.cold
        if not times[i]:
            row.extra["cold only"] = True
        if tool.linjax and jax.config.jax_compilation_cache_dir:
            # a new process's first call: in-memory caches gone, the programs compiled by
            # the cold call are on disk (persistent cache), and a small heap: the objects
            # of every workload run before are frozen out of the garbage collector, which
            # the call's tracing triggers (Gamma: 0.43-0.62 s in full runs without, 0.24 s
            # alone, 0.30 s with)
            jax.clear_caches()
            gc.collect()
            gc.freeze()
            try:
                done = attempt(i, lambda tool=tool: _timed(tool))
            finally:
                gc.unfreeze()
            if done:
                outs[i], row.extra["cold cached"] = done
        if not row.error:
            row.objective = attempt(i, lambda i=i: float(workload.objective(outs[i])))
            row.objective = math.nan if row.objective is None else row.objective
    return rows


# ----------------------------------------------------------------------------- helpers


def _params(coef, intercept):
    return {"coef": np.asarray(coef, np.float64), "intercept": np.asarray(intercept, np.float64)}


def _sk(model):
    coef, intercept = np.asarray(model.coef_), np.asarray(model.intercept_)
    if coef.ndim == 2 and coef.shape[0] == 1:  # binary LogisticRegression: (1, p), (1,)
        coef, intercept = coef[0], intercept[0]
    return _params(coef, intercept)


def _objective(X, y, family, penalty=None, offset=None):
    X64, y64 = jnp.asarray(X, jnp.float64), jnp.asarray(y, jnp.float64)
    f = jax.jit(lambda p: lj.objective(p, X64, y64, family, penalty, offset=offset))
    return lambda params: float(f(jax.tree.map(jnp.asarray, params)))


def _linjax_fit(X, y, family, penalty=None, **kw):
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def fn():
        r = lj.fit(Xj, yj, family, penalty=penalty, **kw)
        return block(r.params)
    return fn


def _glum(X, y, family, alpha=0.0, l1_ratio=0.0, **kw):
    from glum import GeneralizedLinearRegressor

    def fn():
        m = GeneralizedLinearRegressor(family=family, alpha=alpha, l1_ratio=l1_ratio,
                                       gradient_tol=1e-8, **kw).fit(X, y)
        return _sk(m)
    return fn


def _statsmodels(X, y, family):
    import statsmodels.api as sm
    Xc = sm.add_constant(X, has_constant="add")

    def fn():
        b = sm.GLM(y, Xc, family=family).fit(tol=1e-8).params
        return _params(b[1:], b[0])
    return fn


def _glmax(X, y, family):
    import glmax
    Xc = jnp.asarray(np.column_stack([np.ones(len(X), X.dtype), X]))
    yj = jnp.asarray(y)

    def fn():
        b = np.asarray(jax.block_until_ready(glmax.fit(family, Xc, yj).params.beta))
        return _params(b[1:], b[0])
    return fn


def _nemos(X, y, observations, alpha=0.0):
    """nemos GLM (JAX; LBFGS) with the log link for counts, logit for Bernoulli; ridge as
    nemos' "Ridge" regularizer (mean loss + strength / 2 ||b||^2, linjax's scaling)."""
    import nemos as nmo
    link = {"Poisson": jnp.exp, "Gamma": jnp.exp, "Bernoulli": jax.nn.sigmoid}[observations]
    obs = getattr(nmo.observation_models, f"{observations}Observations")()
    reg = {"regularizer": "Ridge", "regularizer_strength": alpha} if alpha else {}
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def fn():
        m = nmo.glm.GLM(observation_model=obs, inverse_link_function=link,
                        solver_name="LBFGS", solver_kwargs={"tol": 1e-8}, **reg).fit(Xj, yj)
        return _params(np.asarray(m.coef_), np.asarray(m.intercept_).reshape(()))
    return fn


def _glm_tools(X, y, lj_family, sk_cls, glum_family, sm_family, glmax_family, alpha,
               sk_kw=None, sm_repeats=0, nemos_obs=None):
    """linjax, scikit-learn (lbfgs, newton-cholesky), glum, statsmodels, glmax, nemos for a
    smooth single-response GLM with L2 strength `alpha` (statsmodels/glmax unpenalized:
    only run when alpha == 0). glum and statsmodels run on float64 data only (glum's
    float32 path takes minutes where its float64 one takes a second; statsmodels upcasts)."""
    sk_kw = sk_kw or {}
    pen = lj.penalties.L2(alpha=alpha) if alpha else None
    f64 = X.dtype == np.float64
    tools = [Tool("linjax fit (auto)", _linjax_fit(X, y, lj_family, pen), linjax=True)]
    for method in ("lbfgs", "newton-cholesky"):
        def sk(method=method):
            return _sk(sk_cls(solver=method, tol=1e-6, max_iter=1000, **sk_kw).fit(X, y))
        tools.append(Tool(f"scikit-learn {method}", sk))
    if f64:
        tools.append(Tool("glum", _glum(X, y, glum_family, alpha)))
    if not alpha:
        if f64:
            tools.append(Tool("statsmodels GLM", _statsmodels(X, y, sm_family),
                              repeats=sm_repeats))
        if glmax_family is not None:
            tools.append(Tool("glmax", _glmax(X, y, glmax_family)))
    if nemos_obs is not None and _has("nemos"):
        tools.append(Tool("nemos GLM (LBFGS)", _nemos(X, y, nemos_obs, alpha), repeats=1))
    return tools


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _sm_families():
    import statsmodels.api as sm
    return sm.families


def _glmax_family(name):
    try:
        import glmax
    except ImportError:
        return None
    return {"poisson": lambda: glmax.Poisson(), "binomial": lambda: glmax.Binomial(),
            "gamma": lambda: glmax.Gamma(glmax.LogLink())}[name]()


# --------------------------------------------------------------------------- workloads


def _logistic_data(n, p, dtype, seed=0):
    # The generator of bench_solvers.py (which parses its arguments on import).
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) / np.sqrt(p)
    X[:, : p // 4] *= 3.0
    coef = rng.normal(size=p)
    eta = 0.3 + X @ coef
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return X.astype(dtype), y.astype(dtype)


def _count_data(n, p, dtype, kind="poisson", seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) / np.sqrt(p)
    coef = rng.normal(scale=0.5, size=p)
    mu = np.exp(0.5 + X @ coef)
    y = rng.poisson(mu).astype(float) if kind == "poisson" else rng.gamma(2.0, mu / 2.0)
    return X.astype(dtype), y.astype(dtype)


def logistic(size, dtype):
    from sklearn.linear_model import LogisticRegression
    n, p = pick(size, 200_000, 20_000, 2_000), pick(size, 100, 100, 10)
    X, y = _logistic_data(n, p, dtype)
    alpha = 1e-4
    fam = lj.families.Binomial()
    tools = _glm_tools(X, y, fam, LogisticRegression, "binomial", None, None, alpha,
                       sk_kw={"C": 1.0 / (alpha * n)}, nemos_obs="Bernoulli")
    return Workload("logistic", f"logistic n={n} p={p} L2 1e-4", tools,
                    _objective(X, y, fam, lj.penalties.L2(alpha=alpha)))


def poisson(size, dtype):
    from sklearn.linear_model import PoissonRegressor
    n, p = pick(size, 200_000, 20_000, 2_000), pick(size, 100, 100, 10)
    X, y = _count_data(n, p, dtype)
    fam = lj.families.Poisson()
    tools = _glm_tools(X, y, fam, PoissonRegressor, "poisson", _sm_families().Poisson(),
                       _glmax_family("poisson"), 0.0, sk_kw={"alpha": 0.0},
                       nemos_obs="Poisson")
    return Workload("poisson", f"Poisson n={n} p={p}", tools, _objective(X, y, fam))


def gamma(size, dtype):
    from sklearn.linear_model import GammaRegressor
    n, p = pick(size, 200_000, 20_000, 2_000), pick(size, 50, 50, 10)
    X, y = _count_data(n, p, dtype, kind="gamma", seed=2)
    fam = lj.families.Gamma(link=lj.links.Log())
    smf = _sm_families()
    import statsmodels.api as sm
    tools = _glm_tools(X, y, fam, GammaRegressor, "gamma",
                       smf.Gamma(link=sm.families.links.Log()), _glmax_family("gamma"), 0.0,
                       sk_kw={"alpha": 0.0}, nemos_obs="Gamma")
    return Workload("gamma", f"Gamma log link n={n} p={p}", tools, _objective(X, y, fam))


def multinomial(size, dtype):
    from sklearn.linear_model import LogisticRegression
    n, p, K = pick(size, 100_000, 10_000, 1_000), pick(size, 50, 50, 5), 5
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(n, p)) / np.sqrt(p)).astype(dtype)
    B = rng.normal(size=(p, K))
    y = np.argmax(X @ B + rng.gumbel(size=(n, K)), axis=1)
    alpha = 1e-4
    fam = lj.families.Multinomial(n_classes=K)
    pen = lj.penalties.L2(alpha=alpha)
    tools = [Tool("linjax fit (auto)", _linjax_fit(X, y, fam, pen), linjax=True)]
    for method in ("lbfgs", "newton-cholesky"):
        def sk(method=method):
            m = LogisticRegression(C=1.0 / (alpha * n), solver=method, tol=1e-8,
                                   max_iter=10_000).fit(X, y)
            return _params(m.coef_.T, m.intercept_)
        tools.append(Tool(f"scikit-learn {method}", sk))
    return Workload("multinomial", f"multinomial n={n} p={p} K={K} L2 1e-4", tools,
                    _objective(X, y.astype(np.float64), fam, pen))


def enet_logistic(size, dtype):
    from sklearn.linear_model import LogisticRegression
    n, p = pick(size, 50_000, 10_000, 2_000), pick(size, 100, 100, 10)
    X, y = _logistic_data(n, p, dtype, seed=4)
    alpha, l1 = 1e-3, 0.5
    fam = lj.families.Binomial()
    pen = lj.penalties.ElasticNet(alpha=alpha, l1_ratio=l1)

    def saga():
        return _sk(LogisticRegression(C=1.0 / (alpha * n), solver="saga", l1_ratio=l1,
                                      penalty="elasticnet", tol=1e-6, max_iter=1000).fit(X, y))
    tools = [Tool("linjax fit (auto)", _linjax_fit(X, y, fam, pen), linjax=True),
             Tool("scikit-learn saga", saga, repeats=1),
             Tool("glum", _glum(X, y, "binomial", alpha, l1))]
    return Workload("enet_logistic", f"elastic-net logistic n={n} p={p} alpha=1e-3 l1=0.5",
                    tools, _objective(X, y, fam, pen))


def ols(size, dtype):
    from sklearn.linear_model import LinearRegression
    n, p = pick(size, 1_000_000, 100_000, 5_000), pick(size, 50, 50, 10)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, p)).astype(dtype)
    y = (X @ rng.normal(size=p) + 1.0 + rng.normal(size=n)).astype(dtype)
    Xc = np.column_stack([np.ones(n, dtype), X])

    def lstsq():
        b = np.linalg.lstsq(Xc, y, rcond=None)[0]
        return _params(b[1:], b[0])
    tools = [Tool("linjax fit (auto)", _linjax_fit(X, y, lj.families.Gaussian()), linjax=True),
             Tool("scikit-learn LinearRegression", lambda: _sk(LinearRegression().fit(X, y))),
             Tool("numpy lstsq", lstsq)]
    return Workload("ols", f"OLS n={n} p={p}", tools, _objective(X, y, lj.families.Gaussian()))


def _lasso_data(n, p, k, dtype, seed):
    # The generator of bench_paths.py.
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = np.zeros(p)
    beta[:k] = rng.normal(size=k)
    y = X @ beta + rng.normal(size=n)
    return X.astype(dtype), y.astype(dtype)


def _path_tools(X, y, alphas, glum_ok):
    from sklearn.linear_model import enet_path
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    xm, ym = X.mean(0), y.mean()
    Xc, yc = X - xm, y - ym

    def last(coef):
        return _params(coef, ym - xm @ coef)

    def linjax_path():
        r = lj.path(Xj, yj, alphas=alphas)
        return block({"coef": r.coef[-1], "intercept": r.intercept[-1]})

    def sk():
        coefs = enet_path(Xc, yc, alphas=alphas, tol=1e-8, precompute=True, max_iter=10_000)[1]
        return last(coefs[:, -1])
    tools = [Tool("linjax path", linjax_path, linjax=True),
             Tool("scikit-learn enet_path", sk)]

    def skglm_path():
        from skglm.datafits import Quadratic
        from skglm.penalties import L1
        from skglm.solvers import AndersonCD
        out = AndersonCD(tol=1e-8, fit_intercept=False, warm_start=True).path(
            Xc, yc, Quadratic(), L1(1.0), alphas=alphas)
        return last(np.asarray(out[1])[:, -1])
    tools.append(Tool("skglm AndersonCD path", skglm_path, repeats=1))
    if glum_ok:
        from glum import GeneralizedLinearRegressor

        def glum_path():
            m = GeneralizedLinearRegressor(family="normal", alpha_search=True, alphas=alphas,
                                           l1_ratio=1.0, gradient_tol=1e-8).fit(X, y)
            return _params(m.coef_path_[-1], m.intercept_path_[-1])
        tools.append(Tool("glum alpha_search", glum_path, repeats=0))
    return tools


def lasso_path(size, dtype):
    n, p = pick(size, 10_000, 2_000, 500), pick(size, 1_000, 200, 50)
    X, y = _lasso_data(n, p, 20, dtype, 0)
    alphas = np.asarray(lj.alpha_grid(X, y, n_alphas=100))
    pen = lj.penalties.L1(alpha=float(alphas[-1]))
    return Workload("lasso_path", f"lasso path 100 alphas n={n} p={p}",
                    _path_tools(X, y, alphas, glum_ok=size != "full"),
                    _objective(X, y, lj.families.Gaussian(), pen),
                    "objective at the smallest alpha")


def wide_lasso(size, dtype):
    n, p = pick(size, 1_000, 300, 100), pick(size, 2_000, 600, 200)
    X, y = _lasso_data(n, p, 20, dtype, 6)
    alphas = np.asarray(lj.alpha_grid(X, y, n_alphas=100))
    pen = lj.penalties.L1(alpha=float(alphas[-1]))
    return Workload("wide_lasso", f"wide lasso path 100 alphas n={n} p={p}",
                    _path_tools(X, y, alphas, glum_ok=size != "full"),
                    _objective(X, y, lj.families.Gaussian(), pen),
                    "objective at the smallest alpha")


def lasso_cv(size, dtype):
    from sklearn.linear_model import LassoCV
    n, p = pick(size, 10_000, 2_000, 500), pick(size, 1_000, 200, 50)
    X, y = _lasso_data(n, p, 20, dtype, 0)
    alphas = np.asarray(lj.alpha_grid(X, y, n_alphas=100))
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    objective = _objective(X, y, lj.families.Gaussian())

    def linjax_cv():
        cv = lj.cv_path(Xj, yj, alphas=alphas, folds=5)
        i = int(cv.best_index)
        out = block({"coef": cv.path.coef[i], "intercept": cv.path.intercept[i]})
        out["alpha"] = float(cv.alpha_min)
        return out

    def sk():
        m = LassoCV(alphas=alphas, cv=5, tol=1e-8, max_iter=10_000).fit(X, y)
        out = _sk(m)
        out["alpha"] = float(m.alpha_)
        return out

    def obj(params):  # the full-data lasso objective at the tool's own chosen alpha
        alpha = params.pop("alpha")
        return objective(params) + alpha * float(np.abs(params["coef"]).sum())
    tools = [Tool("linjax cv_path (5 folds)", linjax_cv, linjax=True),
             Tool("scikit-learn LassoCV", sk)]
    return Workload("lasso_cv", f"5-fold LassoCV 100 alphas n={n} p={p}", tools, obj,
                    "objective: full-data lasso objective at each tool's chosen alpha")


def _insurance_data(n, dtype, seed=7):
    """8 categoricals (328 levels, reference coding: 320 one-hot columns) + 3 numeric."""
    rng = np.random.default_rng(seed)
    levels = [2, 5, 12, 20, 35, 50, 84, 120][: 8]
    cols, eta = [], np.full(n, -2.0)
    for k in levels:
        codes = rng.integers(0, k, size=n)
        effect = rng.normal(scale=0.3, size=k)
        eta += effect[codes]
        onehot = np.zeros((n, k - 1), dtype)
        mask = codes > 0
        onehot[np.nonzero(mask)[0], codes[mask] - 1] = 1.0
        cols.append(onehot)
    num = rng.normal(size=(n, 3))
    eta += num @ np.array([0.2, -0.1, 0.05])
    X = np.concatenate(cols + [num.astype(dtype)], axis=1)
    mu = np.exp(eta)
    counts = rng.poisson(mu).astype(float)
    severity = counts * rng.gamma(2.0, 0.5, size=n)  # compound Poisson-gamma: Tweedie
    return np.ascontiguousarray(X), counts.astype(dtype), severity.astype(dtype)


def insurance(size, dtype, tweedie=False):
    from sklearn.linear_model import PoissonRegressor, TweedieRegressor
    n = pick(size, 600_000, 60_000, 3_000)
    X, counts, severity = _insurance_data(n, dtype)
    if tweedie:
        y, fam, glum_fam = severity, lj.families.Tweedie(power=1.5), "tweedie"
        sk_cls = TweedieRegressor
        sk_kw = {"power": 1.5, "link": "log", "alpha": 0.0}
        from glum import TweedieDistribution
        glum_fam = TweedieDistribution(1.5)
        import statsmodels.api as sm
        smf = sm.families.Tweedie(var_power=1.5, link=sm.families.links.Log())
        name, title = "insurance_tweedie", "insurance-shaped Tweedie(1.5)"
    else:
        y, fam, glum_fam = counts, lj.families.Poisson(), "poisson"
        sk_cls, sk_kw = PoissonRegressor, {"alpha": 0.0}
        smf = _sm_families().Poisson()
        name, title = "insurance_poisson", "insurance-shaped Poisson"
    tools = _glm_tools(X, y, fam, sk_cls, glum_fam, smf, None, 0.0, sk_kw=sk_kw)
    note = ""
    if size == "full":  # statsmodels' IRLS: ~100 s at a tenth of this size (Tweedie)
        tools = [t for t in tools if not t.name.startswith("statsmodels")]
        note = "statsmodels left out at this size (100 s for the Tweedie fit at n=60k)"
    return Workload(name, f"{title} n={n} p={X.shape[1]} (8 one-hot categoricals + 3 numeric)",
                    tools, _objective(X, y, fam), note)


def insurance_tweedie(size, dtype):
    return insurance(size, dtype, tweedie=True)


def _batch(m, n, p, dtype, peer_subset, name):
    from sklearn.linear_model import PoissonRegressor
    X, Y = batch_data(m, n, p)
    X, Y = X.astype(dtype), Y.astype(dtype)
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    fam = lj.families.Poisson()
    k = min(m, peer_subset)
    scale = m / k

    def linjax_batch():
        r = lj.fit_batch(Xj, Yj, family="poisson")
        return block(r.params)

    def sk_loop():
        out = [PoissonRegressor(alpha=0.0, solver="newton-cholesky", tol=1e-8,
                                max_iter=100).fit(X, Y[i]) for i in range(k)]
        return _params(np.array([o.coef_ for o in out]), np.array([o.intercept_ for o in out]))

    def glum_loop():
        from glum import GeneralizedLinearRegressor
        out = [GeneralizedLinearRegressor(family="poisson", alpha=0.0, gradient_tol=1e-8)
               .fit(X, Y[i]) for i in range(k)]
        return _params(np.array([o.coef_ for o in out]), np.array([o.intercept_ for o in out]))

    sub = f" (x{scale:g})" if k < m else ""
    # the loops get the warm repeats too: their time decides the ratio of issue 10
    tools = [Tool("linjax fit_batch", linjax_batch, linjax=True),
             Tool(f"scikit-learn newton-cholesky loop{sub}", sk_loop, scale=scale)]
    if dtype == np.float64:  # glum's float32 path is ~100x slower than its float64 one
        tools.append(Tool(f"glum loop{sub}", glum_loop, repeats=3, scale=scale))
    if _has("nemos") and m <= 1000:
        def nemos_population():
            import nemos as nmo
            out = nmo.glm.PopulationGLM(
                observation_model=nmo.observation_models.PoissonObservations(),
                inverse_link_function=jnp.exp, solver_name="LBFGS",
                solver_kwargs={"tol": 1e-8}).fit(Xj, Yj.T)
            return _params(np.asarray(out.coef_).T, np.asarray(out.intercept_))
        tools.append(Tool("nemos PopulationGLM (LBFGS)", nemos_population, repeats=1))
    gfam = _glmax_family("poisson")
    if gfam is not None:
        import glmax
        Xc = jnp.asarray(np.column_stack([np.ones(n, dtype), X]))
        vfit = jax.jit(jax.vmap(lambda y: glmax.fit(gfam, Xc, y).params.beta))

        def glmax_vmap():
            b = np.asarray(jax.block_until_ready(vfit(Yj)))
            return _params(b[:, 1:], b[:, 0])
        tools.append(Tool("glmax jit(vmap(fit))", glmax_vmap))

    X64 = jnp.asarray(X, jnp.float64)
    f = jax.jit(jax.vmap(lambda c, b, y: lj.objective({"coef": c, "intercept": b}, X64, y, fam)))
    Y64 = jnp.asarray(Y, jnp.float64)

    def objective(params):  # mean over the first k problems (those every tool solved)
        c, b = jnp.asarray(params["coef"])[:k], jnp.asarray(params["intercept"])[:k]
        return float(jnp.mean(f(c, b, Y64[:k])))
    return Workload(name, f"{m} Poisson fits n={n} p={p}", tools, objective,
                    f"objective: mean over the first {k} problems (the peer loops' subset)")


def batch_500(size, dtype):
    m = pick(size, 500, 500, 50)
    return _batch(m, 500, 10, dtype, pick(size, 500, 100, 10), "batch_500")


def batch_10k(size, dtype):
    m = pick(size, 10_000, 2_000, 100)
    return _batch(m, 500, 10, dtype, pick(size, 500, 100, 10), "batch_10k")


WORKLOADS = {
    "logistic": logistic,
    "poisson": poisson,
    "gamma": gamma,
    "multinomial": multinomial,
    "enet_logistic": enet_logistic,
    "ols": ols,
    "lasso_path": lasso_path,
    "wide_lasso": wide_lasso,
    "lasso_cv": lasso_cv,
    "insurance_poisson": insurance,
    "insurance_tweedie": insurance_tweedie,
    "insurance_frame_poisson": insurance_frame_poisson,
    "insurance_frame_tweedie": insurance_frame_tweedie,
    "sparse_logistic": sparse_logistic,
    "batch_500": batch_500,
    "batch_10k": batch_10k,
    "expression": expression_workload,
}
#: float32 variants: same data and objective (scored in float64), arrays in float32.
FLOAT32 = ("logistic", "poisson", "ols", "batch_500")
