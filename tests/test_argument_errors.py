"""Arguments of the wrong kind get a ValueError that names the argument and the expected form.

Complex input of any array type, penalty names, non-bool fit_intercept, non-numeric penalty
strengths, scipy.sparse and pandas' missing values, family names and mis-shaped designs in
the model functions, and class labels that are not 0..K-1.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax as lj
from linjax import families as F
from linjax import penalties as P

RNG = np.random.default_rng(3)
N, NP = 12, 3
X = RNG.normal(size=(N, NP))
Y = RNG.poisson(1.5, size=N).astype(float)
PARAMS = {"coef": jnp.array([0.3, -0.2, 0.1]), "intercept": jnp.asarray(0.4)}
COMPLEX = r"complex values are not supported; pass real numbers"


def _fit(**kw):
    args = {"X": X, "y": Y, "family": F.Poisson()}
    args.update(kw)
    return lj.fit(**args)


@pytest.mark.parametrize("name, call", [
    ("X", lambda: _fit(X=jnp.asarray(X) + 1j)),
    ("y", lambda: _fit(y=jnp.asarray(Y) * (1 + 0j))),
    ("weights", lambda: _fit(weights=jnp.ones(N) + 1j)),
    ("offset", lambda: _fit(offset=jnp.zeros(N) + 1j)),
    ("init coef", lambda: _fit(init={"coef": jnp.zeros(NP) + 1j, "intercept": 0.0})),
    ("init intercept", lambda: _fit(init={"coef": np.zeros(NP), "intercept": jnp.asarray(1j)})),
    ("bounds lower", lambda: _fit(bounds=(jnp.zeros(NP) - 1j, None), solver="cd")),
    ("bounds upper", lambda: _fit(bounds=(None, np.ones(NP) + 1j), solver="cd")),
    ("X", lambda: jax.jit(lambda x: _fit(X=x).params["coef"])(jnp.asarray(X) + 1j)),
])
def test_complex_input_of_any_array_type_is_refused(name, call):
    with pytest.raises(ValueError, match=rf"^{name}: {COMPLEX}"):
        call()


def test_a_penalty_name_is_refused_with_the_expected_form():
    for call in (lambda: _fit(penalty="l2"),
                 lambda: lj.objective(PARAMS, X, Y, F.Poisson(), penalty="l2")):
        with pytest.raises(ValueError, match=r"^penalty: expected None or a linjax.penalties "
                           r"instance.*got 'l2'.*L2\(alpha=1.0\)"):
            call()


@pytest.mark.parametrize("value", ["no", 0, None])
def test_fit_intercept_must_be_a_bool(value):
    with pytest.raises(ValueError, match=rf"^fit_intercept: expected True or False, got "
                       rf"{value!r}"):
        _fit(fit_intercept=value)


@pytest.mark.parametrize("make", [lambda: P.L2(alpha="a"), lambda: P.L1(alpha=None),
                                  lambda: P.ElasticNet(alpha=1.0, l1_ratio="half"),
                                  lambda: P.GroupLasso(alpha="a", groups=(0, 0, 1))])
def test_a_penalty_strength_must_be_a_number(make):
    with pytest.raises(ValueError, match=r"^(alpha|l1_ratio): \w+\((alpha|l1_ratio)=\.\.\.\) "
                       r"must be a real number"):
        make()


def test_penalty_strengths_stay_traceable():
    grid = jnp.array([0.1, 1.0])
    values = jax.vmap(lambda a: P.L2(alpha=a).value(jnp.ones(2)))(grid)
    np.testing.assert_allclose(values, grid)  # alpha / 2 * ||(1, 1)||^2


def test_scipy_sparse_input_gives_the_dense_answer():
    """lj.fit and fit_batch take scipy.sparse (linjax.designs.Sparse): the dense answer."""
    sparse = pytest.importorskip("scipy.sparse")
    np.testing.assert_allclose(_fit(X=sparse.csr_matrix(X)).coef, _fit().coef, atol=1e-10)
    batch = lj.fit_batch(sparse.csr_matrix(X), np.stack([Y, Y]), F.Poisson())
    dense = lj.fit_batch(X, np.stack([Y, Y]), F.Poisson())
    np.testing.assert_allclose(batch.params["coef"], dense.params["coef"], atol=1e-10)
    # fit_streaming reads dense chunks: a sparse chunk is named, not an IndexError
    with pytest.raises(ValueError, match=r"^chunk 0: X: scipy.sparse input is not supported "
                       r"yet; convert it with X.toarray\(\)"):
        lj.fit_streaming([(sparse.csr_matrix(X), Y)], family=F.Poisson())


def test_pandas_missing_values_are_named_as_missing():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["b"] = pd.array([1, None] + [2] * (N - 2), dtype="Int64")
    with pytest.raises(ValueError, match=r"^X: 1 missing value\(s\) \(<NA>, None or NaN\), "
                       r"the first at index \(1, 1\); drop those rows or impute"):
        _fit(X=frame)
    y = pd.Series(pd.array([None] + [1] * (N - 1), dtype="Int64"))
    with pytest.raises(ValueError, match=r"^y: 1 missing value\(s\).*index 0"):
        _fit(y=y)
    frame["b"] = pd.array(range(N), dtype="Int64")  # nullable but complete: accepted
    np.testing.assert_allclose(_fit(X=frame).params["coef"], _fit(
        X=frame.to_numpy(float)).params["coef"])


def test_predict_takes_family_names_as_fit_does():
    eta = X @ np.asarray(PARAMS["coef"]) + float(PARAMS["intercept"])
    np.testing.assert_allclose(lj.predict(PARAMS, X, "poisson"), np.exp(eta), rtol=1e-12)
    np.testing.assert_allclose(lj.predict(PARAMS, X, "binomial"), 1 / (1 + np.exp(-eta)),
                               rtol=1e-12)
    mu = np.exp(eta)
    half_deviance = np.mean(np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1) / mu), 0)
                            - (Y - mu))
    np.testing.assert_allclose(lj.objective(PARAMS, X, Y, "poisson"), half_deviance,
                               rtol=1e-12)


@pytest.mark.parametrize("call", [
    lambda Z: lj.predict(PARAMS, Z, F.Poisson()),
    lambda Z: lj.linear_predictor(PARAMS, Z),
    lambda Z: lj.objective(PARAMS, Z, Y, F.Poisson()),
    lambda Z: jax.jit(lj.linear_predictor)(PARAMS, Z),
])
def test_a_design_with_the_wrong_number_of_columns_is_named(call):
    with pytest.raises(ValueError, match=r"^X: expected 3 columns, one per coefficient.*got an "
                       r"array of shape \(12, 2\)"):
        call(X[:, :2])


@pytest.mark.parametrize("labels, absent", [
    (np.r_[np.zeros(N - 1), 1e8], r"99999999 label\(s\) absent, the first \[1, 2, 3\]"),
    (np.r_[np.ones(N // 2), 2 * np.ones(N // 2)], r"1 label\(s\) absent, the first \[0\]"),
])
def test_multinomial_labels_must_be_0_to_k_minus_1(labels, absent):
    with pytest.raises(ValueError, match=r"^y: integer class labels 0..K-1 expected: .*"
                       + absent + r"\). Encode the classes as 0..K-1"):
        _fit(y=labels, family=F.Multinomial())
