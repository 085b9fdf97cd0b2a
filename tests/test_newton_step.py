"""The one Newton step's rules (`linjax.solvers.newton_step`), on one problem and on a batch.

The damped step is checked against step halving written out by hand (t = 2^-j for the
first j with f(t) <= f(0) + slack), the stopping rule against its formulas; the batched
forms must give each problem what the single form gives it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linjax.solvers import newton_step as ns
from linjax.solvers.status import Status

jax.config.update("jax_enable_x64", True)


def quadratic(center):
    """f(t) = (t - center)^2 - center^2: f(0) = 0, below 0 exactly for 0 < t < 2 center."""
    return lambda t: ((t - center) ** 2 - center**2, t * 10.0)


def halving_by_hand(f, value, slack, max_halvings):
    t = 1.0
    for _ in range(max_halvings):
        if f(t) <= value + slack:
            break
        t /= 2
    return t, f(t) <= value + slack


@pytest.mark.parametrize("center", [0.7, 0.2, 0.01, -1.0])
def test_damped_step_halves_until_the_objective_does_not_rise(center):
    trial = quadratic(center)
    t, f_t, aux, accepted = jax.jit(
        lambda: ns.damped_step(trial, jnp.asarray(0.0), jnp.asarray(1e-15), 10,
                               trial(jnp.asarray(1.0))))()
    t_ref, ok_ref = halving_by_hand(lambda s: trial(s)[0], 0.0, 1e-15, 10)
    assert float(t) == t_ref and bool(accepted) == ok_ref
    assert float(f_t) == trial(t_ref)[0] and float(aux) == 10.0 * t_ref     # aux at t


def test_batched_damped_step_gives_each_problem_its_own_step():
    centers = jnp.asarray([0.7, 0.2, 0.01, -1.0, 0.05])
    active = jnp.asarray([True, True, True, True, False])
    trial = quadratic(centers)
    zero = jnp.zeros(5)
    t, f_t, aux, accepted = jax.jit(
        lambda: ns.damped_step(trial, zero, zero + 1e-15, 10, trial(jnp.ones(5)),
                               active=active))()
    for i, c in enumerate(np.asarray(centers)[:4]):
        t_ref, ok_ref = halving_by_hand(lambda s, c=c: (s - c) ** 2 - c**2, 0.0, 1e-15, 10)
        assert float(t[i]) == t_ref and bool(accepted[i]) == ok_ref
        assert float(aux[i]) == 10.0 * t_ref
    assert float(t[4]) == 1.0          # an inactive problem is never halved


def test_host_damped_step_equals_the_compiled_one():
    for center in (0.7, 0.01, -1.0):
        trial = quadratic(center)
        host = ns.host_damped_step(lambda t, trial=trial: (float(trial(t)[0]), None), 0.0,
                                   1e-15, 10)
        t, f_t, _, accepted = ns.damped_step(trial, jnp.asarray(0.0), jnp.asarray(1e-15), 10,
                                             trial(jnp.asarray(1.0)))
        assert host[0] == float(t) and host[1] == float(f_t) and host[3] == bool(accepted)


def test_a_finite_step_is_taken_whole_at_the_floor():
    trial = quadratic(-1.0)          # every step rises
    t, _, _, accepted = ns.damped_step(trial, jnp.asarray(0.0), jnp.asarray(0.0), 10,
                                       trial(jnp.asarray(1.0)), whole=jnp.asarray(True))
    assert float(t) == 1.0 and bool(accepted)
    nan = lambda t: (jnp.where(t > 0.3, jnp.nan, 0.0), ())          # noqa: E731
    t, _, _, accepted = ns.damped_step(nan, jnp.asarray(0.0), jnp.asarray(0.0), 10,
                                       nan(jnp.asarray(1.0)), whole=jnp.asarray(True))
    assert float(t) == 0.25 and bool(accepted)


def test_damping_terms():
    eps = np.finfo(np.float64).eps
    scale, slack, at_floor = ns.damping(jnp.asarray([-3.0, 0.5]), jnp.asarray([1e-9, 1e-7]))
    np.testing.assert_array_equal(scale, [3.0, 1.0])
    np.testing.assert_array_equal(slack, [24 * eps, 8 * eps])
    np.testing.assert_array_equal(at_floor, [1e-9 <= np.sqrt(eps) * 3, 1e-7 <= np.sqrt(eps)])


def test_stopping_rule_formulas():
    x = jnp.asarray([[1.0, -2.0]] * 5)
    d = jnp.asarray([[1e-12, 0.0], [0.1, 0.0], [0.1, 0.0], [0.1, 0.0], [0.1, 0.0]])
    decrement = jnp.asarray([1.0, 1e-21, 1e-8, 1.0, 1.0])
    prev = jnp.asarray([np.inf, 1.0, 1e-2, 1.0, 1.0])
    t = jnp.asarray([1.0, 1.0, 1.0, 0.5, 1.0])
    accepted = jnp.asarray([True, True, True, False, False])
    at_floor = jnp.asarray([False, False, False, False, True])
    scale = jnp.ones(5)
    converged, stalled = ns.stopping_rule(decrement, prev, t, d, x, accepted, at_floor, scale,
                                          1e-20, 1e-10)
    # 0: step 1e-12 <= 1e-10 (1 + 2); 1: decrement below tol; 2: 1e-8^3 / 1e-2^2 = 1e-20;
    # 3: rejected above the floor (stalled); 4: rejected at the floor (converged)
    np.testing.assert_array_equal(converged, [True, True, True, False, True])
    np.testing.assert_array_equal(stalled, [False, False, False, True, False])
    one, _ = ns.stopping_rule(decrement[0], prev[0], t[0], d[0], x[0], accepted[0],
                              at_floor[0], scale[0], 1e-20, 1e-10)
    assert bool(one)


def test_status_codes_and_tolerances():
    status = ns.newton_status(jnp.asarray([True, False, False]), jnp.asarray([True, True, False]))
    assert [int(s) for s in status] == [Status.LINE_SEARCH_FAILED, Status.SINGULAR,
                                        Status.CONVERGED]
    assert ns.resolve_tols(None, None, jnp.float64) == (1e-20, 1e-10)
    assert ns.resolve_tols(1e-9, None, jnp.float32) == (1e-9, 1e-6)


def test_batched_and_single_psd_solves_share_the_pivot_test():
    """A Gram whose second column repeats the first up to 1e-7 has a relative pivot near
    1e-14 (numpy's Cholesky): above k eps, below the float64 floor 1e-13 of `solve_psd`.
    Both solves must call it singular and take the same eigen solve."""
    from linjax.solvers import linalg

    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    X = np.column_stack([a, a + 1e-7 * rng.normal(size=50), rng.normal(size=50)])
    H = X.T @ X
    L = np.linalg.cholesky(H)
    relative = np.diag(L) ** 2 / np.diag(H)
    assert 3 * np.finfo(float).eps < relative.min() < 1e-13
    b = rng.normal(size=3)
    x1, singular1 = linalg.solve_psd(jnp.asarray(H), jnp.asarray(b))
    xb, singularb = linalg.solve_psd_batched(jnp.asarray(H[None]), jnp.asarray(b[None]))
    assert bool(singular1) and bool(singularb[0])
    np.testing.assert_allclose(xb[0], x1, rtol=1e-8)
