"""Compiled programs kept in check: shape buckets and a bounded number of live programs."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax import _programs, buckets


def test_buckets_pad_at_most_an_eighth_and_are_few():
    sizes = np.arange(1, 20_000)
    padded = np.array([buckets.bucket_rows(n) for n in sizes])
    assert np.all(padded >= sizes)
    assert np.all(padded - sizes <= sizes / 8)
    assert np.all(padded[sizes < buckets.EXACT_BELOW] == sizes[sizes < buckets.EXACT_BELOW])
    # eight sizes per doubling: 16..20,000 is a little over 10 doublings
    assert len(set(padded[sizes >= 16])) <= 8 * 11


def test_pad_rows_repeats_the_first_row_and_weights_are_zero():
    X = np.arange(12.0).reshape(6, 2)
    y = np.arange(6.0) + 1
    Xp, yp, none = buckets.pad_rows(9, X, y, None)
    assert none is None and Xp.shape == (9, 2) and yp.shape == (9,)
    np.testing.assert_array_equal(Xp[6:], np.tile(X[:1], (3, 1)))
    np.testing.assert_array_equal(yp[:6], y)
    w = buckets.padded_weights(None, 6, 9, np.float64)
    np.testing.assert_array_equal(w, [1, 1, 1, 1, 1, 1, 0, 0, 0])


def test_large_designs_share_their_bucket_from_the_second_row_count_on(monkeypatch):
    monkeypatch.setattr(buckets, "MAX_PADDED_BYTES", 0)
    monkeypatch.setattr(buckets, "_seen_rows", {})
    sizes = [buckets.padded_size(np.zeros((n, 2)), "test") for n in (100, 99, 98, 100, 99)]
    assert sizes == [100, 104, 104, 100, 104]  # first n as is, then the bucket of 97..104
    assert buckets.padded_size(np.zeros((100, 3)), "test") == 100  # other columns: own key
    assert buckets.padded_size(np.zeros((64, 2)), "test") == 64  # a bucket size itself


def test_compiler_options_an_xla_refuses_are_dropped(monkeypatch):
    monkeypatch.setattr(_programs, "CPU_COMPILER_OPTIONS", {"xla_cpu_no_such_option": True})
    monkeypatch.setattr(_programs, "_options_refused", False)
    f = _programs.jit(lambda x: x * 3.0)
    np.testing.assert_allclose(f(jnp.ones(3)), 3.0)  # refused, then compiled without it
    assert _programs._options_refused and _programs.compiler_options() is None


def test_budget_frees_least_recently_used_programs(monkeypatch):
    monkeypatch.setenv(_programs.MAX_PROGRAMS_ENV, "3")
    first = _programs.jit(lambda x: jnp.sin(x) + 1.0)
    second = _programs.jit(lambda x: jnp.cos(x) * 2.0)
    for n in (2, 3):
        first(jnp.ones(n))
    assert first.cache_size() == 2
    for n in (2, 3):  # the fourth program puts the registry over budget: `first` is freed
        second(jnp.ones(n))
    assert second.cache_size() == 2 and first.cache_size() == 0
    assert _programs.live_programs() <= 3
    np.testing.assert_allclose(first(jnp.zeros(2)), 1.0)  # freed programs compile again


def test_padded_fit_equals_the_unpadded_fit_and_uses_the_bucket_program():
    rng = np.random.default_rng(3)
    n = 55  # bucket 56
    X = rng.normal(size=(n, 3))
    y = rng.poisson(np.exp(0.3 + X @ np.array([0.2, -0.1, 0.3]))).astype(float)
    padded = lj.fit(X, y, family="poisson")
    exact = jax.jit(lj.fit, static_argnames=("family",))(X, y, family="poisson")  # traced: n
    np.testing.assert_allclose(padded.coef, exact.coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(padded.objective, exact.objective, rtol=1e-12)
    assert int(padded.status) == 0
    fit_program = sys.modules["linjax.fit"]._fit
    before = fit_program.cache_size()
    again = lj.fit(X[:-1], y[:-1], family="poisson")  # n = 54: the same bucket
    assert fit_program.cache_size() == before
    assert np.isfinite(np.asarray(again.coef)).all()


def test_paths_and_cross_validation_pad_rows_to_their_bucket():
    from linjax import paths, selection

    rng = np.random.default_rng(4)
    n = 55  # bucket 56, as 53
    X = rng.normal(size=(n, 4))
    y = rng.poisson(np.exp(0.2 + X @ np.array([0.3, -0.2, 0.0, 0.1]))).astype(float)
    alphas = np.geomspace(0.3, 0.003, 6)
    padded = lj.path(X, y, "poisson", alphas=alphas)
    exact = jax.jit(lambda X, y: paths.path(X, y, "poisson", alphas=alphas))(X, y)  # traced: n
    np.testing.assert_allclose(padded.coef, exact.coef, atol=1e-9)
    np.testing.assert_allclose(padded.deviance, exact.deviance, rtol=1e-10)
    path_program = paths._path_jit
    before = path_program.cache_size()
    lj.path(X[:-2], y[:-2], "poisson", alphas=alphas)  # n = 53: the same bucket
    assert path_program.cache_size() == before

    folds = np.arange(n) % 3
    cv = lj.cv_path(X, y, "poisson", alphas=alphas, folds=folds)
    traces = selection.trace_count()
    # each fold's path equals the path of its own training rows (weights, not padding)
    for k in range(3):
        own = lj.path(X[folds != k], y[folds != k], "poisson", alphas=alphas)
        np.testing.assert_allclose(cv.fold_paths.coef[k], own.coef, atol=1e-8)
    lj.cv_path(X[:-2], y[:-2], "poisson", alphas=alphas, folds=folds[:-2])  # same bucket
    assert selection.trace_count() == traces


STRESS = textwrap.dedent("""
    import resource, sys
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    import linjax as lj
    from linjax import _programs

    rng = np.random.default_rng(0)
    families = ["poisson", "binomial", "gamma"]
    peak = 0
    for i, n in enumerate(range(16, 16 + int(sys.argv[1]))):
        X = rng.normal(size=(n, 3))
        family = families[i % 3]
        eta = 0.2 + X @ np.array([0.3, -0.2, 0.1])
        y = {"poisson": lambda: rng.poisson(np.exp(eta)),
             "binomial": lambda: rng.random(n) < 1 / (1 + np.exp(-eta)),
             "gamma": lambda: rng.gamma(2.0, np.exp(eta) / 2.0)}[family]().astype(float)
        result = lj.fit(X, y, family=family)
        assert np.isfinite(np.asarray(result.coef)).all(), (n, family)
        if i % 50 == 0:
            peak = max(peak, _programs.mapping_count())
    peak = max(peak, _programs.mapping_count())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fits={sys.argv[1]} peak_mappings={peak} live_programs={_programs.live_programs()} "
          f"max_rss_mb={rss:.0f}")
""")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="counts Linux mappings")
def test_thousands_of_distinct_row_counts_stay_within_the_mapping_limit(tmp_path):
    """3,000 fits of distinct row counts and three families in one process (a user's loop
    over subsets): the mapping count stays far below Linux's default limit of 65,530."""
    script = tmp_path / "stress.py"
    script.write_text(STRESS)
    env = dict(os.environ, LINJAX_COMPILATION_CACHE="off")
    out = subprocess.run([sys.executable, str(script), "3000"], capture_output=True,
                         text=True, timeout=1800, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    print(out.stdout)
    fields = dict(kv.split("=") for kv in out.stdout.split())
    # freed past half the default limit, checked after each compilation: a sampled peak may
    # pass the half by the programs compiled since the last check, never by much
    assert int(fields["peak_mappings"]) < 0.6 * 65_530
    assert int(fields["live_programs"]) <= _programs.DEFAULT_MAX_PROGRAMS
