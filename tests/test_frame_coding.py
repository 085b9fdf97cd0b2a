"""Frames without an intercept are coded as R's model.matrix codes them: the first
categorical column keeps every level, each later one drops its first (otherwise the levels
of two factors both sum to the constant column and the design is singular)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import linjax as lj
from linjax.designs.frames import FrameEncoding, encode_frame
from linjax.estimators import PoissonRegressor


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(11)
    n = 300
    df = pd.DataFrame({"x": rng.standard_normal(n),
                       "a": pd.Categorical(rng.choice(["A", "B", "C"], n)),
                       "b": rng.choice(["q1", "q2", "q3", "q4"], n)})
    eta = 0.3 * df.x + df.a.map({"A": 0.2, "B": -0.1, "C": 0.4}).astype(float) + \
        df.b.map({"q1": 0.0, "q2": 0.3, "q3": -0.2, "q4": 0.1})
    y = rng.poisson(np.exp(eta)).astype(float)
    # R: model.matrix(~ x + a + b - 1): x, aA, aB, aC, bq2, bq3, bq4
    dummies = np.c_[df.x, (df.a.to_numpy()[:, None] == np.array(["A", "B", "C"])),
                    (df.b.to_numpy()[:, None] == np.array(["q2", "q3", "q4"]))].astype(float)
    return df, y, dummies


def test_no_intercept_codes_as_r_and_fits_as_statsmodels(frame):
    df, y, dummies = frame
    design, encoding = encode_frame(df, drop_first=False)
    assert encoding.names == ("x", "a[A]", "a[B]", "a[C]", "b[q2]", "b[q3]", "b[q4]")
    np.testing.assert_array_equal(np.asarray(design.to_dense()), dummies)
    want = sm.GLM(y, dummies, family=sm.families.Poisson()).fit(tol=1e-14).params
    got = lj.fit(df, y, family="poisson", fit_intercept=False)
    assert got.converged
    np.testing.assert_allclose(np.asarray(got.coef), want, rtol=1e-9, atol=1e-11)
    est = PoissonRegressor(alpha=0.0, fit_intercept=False).fit(df, y)
    np.testing.assert_allclose(est.coef_, want, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(est.predict(df.iloc[:5]), np.exp(dummies[:5] @ want), rtol=1e-8)


def test_an_encoding_saved_before_keeps_its_coding(frame):
    df, _, _ = frame
    old = FrameEncoding((("x", None), ("a", ("A", "B", "C")), ("b", ("q1", "q2", "q3", "q4"))),
                        drop_first=False)
    assert len(old.names) == 8 and old.transform(df).shape == (len(df), 8)


def test_the_coding_saves_and_loads(frame, tmp_path):
    df, y, dummies = frame
    est = PoissonRegressor(alpha=0.0, fit_intercept=False).fit(df, y)
    path = tmp_path / "model.linjax"
    lj.io.save(path, est)
    back = lj.io.load(path)
    assert back.encoding_ == est.encoding_ and back.encoding_.reference_after_first
    np.testing.assert_array_equal(back.predict(df), est.predict(df))
