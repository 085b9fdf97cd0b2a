"""linjax.io: bit-exact round trips of estimators and FitResults; unsafe files refused."""

import io as pyio
import pickle
import zipfile

import jax
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

import linjax as lj
from linjax import io
from linjax.estimators import GLM, Lasso, LogisticRegression, PoissonRegressor, Ridge


def _iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, np.array(["setosa", "versicolor", "virginica"])[y]


def _roundtrip(tmp_path, obj):
    path = tmp_path / "model.ljx"
    io.save(path, obj)
    return io.load(path)


def _leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(np.asarray(x),
                                                                      np.asarray(y))
        for x, y in zip(la, lb, strict=True))


@pytest.mark.parametrize("make", [
    lambda: LogisticRegression(C=2.0, class_weight="balanced"),
    lambda: LogisticRegression(multi_class="ovr", class_weight={"setosa": 2.0}),
    lambda: LogisticRegression(C=np.float64(0.5), l1_ratio=0.5),
])
def test_classifier_roundtrip_float32_bit_exact(tmp_path, make):
    X, y = _iris()
    est = make().fit(X.astype(np.float32), y)
    loaded = _roundtrip(tmp_path, est)
    assert type(loaded) is type(est) and loaded.get_params() == est.get_params()
    assert loaded.coef_.dtype == np.float32
    np.testing.assert_array_equal(loaded.coef_, est.coef_)
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_regressor_roundtrip_with_family_instance_and_standardize(tmp_path):
    X, _ = _iris()
    y = X.pop("petal width (cm)") + 0.1
    est = GLM(family=lj.families.Tweedie(power=1.5), alpha=0.05, l1_ratio=0.5,
              standardize=True).fit(X, y)
    loaded = _roundtrip(tmp_path, est)
    assert loaded.family == est.family
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert _leaves_equal(loaded.result_, est.result_)
    for cls in (Ridge, Lasso, PoissonRegressor):
        e = cls(alpha=0.1).fit(X.to_numpy(), y.to_numpy())
        back = _roundtrip(tmp_path, e)
        assert type(back.intercept_) is type(e.intercept_)
        np.testing.assert_array_equal(back.predict(X.to_numpy()), e.predict(X.to_numpy()))


def test_fit_result_roundtrip(tmp_path):
    X, _ = _iris()
    y = X.pop("petal width (cm)").to_numpy() + 0.1
    for kwargs in ({"family": "gamma"},
                   {"family": "poisson", "penalty": lj.penalties.ElasticNet(alpha=0.1,
                                                                              l1_ratio=0.5)}):
        result = lj.fit(X.to_numpy(), y, **kwargs)
        loaded = _roundtrip(tmp_path, result)
        assert isinstance(loaded, lj.FitResult)
        assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(result)
        assert _leaves_equal(loaded, result)
        assert loaded.message == result.message
        np.testing.assert_array_equal(lj.predict(loaded.params, X.to_numpy(), loaded.family),
                                      lj.predict(result.params, X.to_numpy(), result.family))


def test_pickle_still_works_and_drops_training_data():
    X, y = _iris()
    y = y == "virginica"
    est = LogisticRegression().fit(X, y)
    est.summary()
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    with pytest.raises(ValueError, match="pass X and y"):
        back.summary()


def _saved(tmp_path):
    X, y = _iris()
    path = tmp_path / "model.ljx"
    io.save(path, Ridge().fit(X.iloc[:, :3], X.iloc[:, 3]))
    return path


def _rewrite(src, dst, extra=None, replace=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if replace and name in replace:
                data = replace[name]
            zout.writestr(name, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_member_is_refused(tmp_path):
    path = _saved(tmp_path)
    bad = tmp_path / "bad.ljx"
    _rewrite(path, bad, extra={"arrays/payload.pkl": pickle.dumps(_Evil())})
    with pytest.raises(io.UnsafeFileError, match="unexpected member"):
        io.load(bad)


def test_object_array_is_refused(tmp_path):
    path = _saved(tmp_path)
    with zipfile.ZipFile(path) as zf:
        name = sorted(n for n in zf.namelist() if n.endswith(".npy"))[0]
    buf = pyio.BytesIO()
    np.save(buf, np.array([_Evil()], dtype=object), allow_pickle=True)
    bad = tmp_path / "bad.ljx"
    _rewrite(path, bad, replace={name: buf.getvalue()})
    with pytest.raises(io.UnsafeFileError, match="pickle"):
        io.load(bad)


def test_foreign_class_names_are_refused(tmp_path):
    path = _saved(tmp_path)
    with zipfile.ZipFile(path) as zf:
        meta = zf.read("metadata.json").decode()
    bad = tmp_path / "bad.ljx"
    evil = meta.replace('"class": "Ridge"', '"class": "Pipeline"')
    _rewrite(path, bad, replace={"metadata.json": evil.encode()})
    with pytest.raises(io.UnsafeFileError, match="unknown estimator"):
        io.load(bad)
    X = pd.DataFrame(np.eye(3))
    res = lj.fit(X.to_numpy(), np.array([1.0, 2.0, 3.0]), fit_intercept=False)
    io.save(tmp_path / "r.ljx", res)
    with zipfile.ZipFile(tmp_path / "r.ljx") as zf:
        meta = zf.read("metadata.json").decode()
    evil = meta.replace("linjax.families:Gaussian", "os:system")
    _rewrite(tmp_path / "r.ljx", bad, replace={"metadata.json": evil.encode()})
    with pytest.raises(io.UnsafeFileError, match="not a linjax"):
        io.load(bad)


def test_not_a_linjax_file(tmp_path):
    junk = tmp_path / "junk.ljx"
    junk.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(io.UnsafeFileError, match="not a zip"):
        io.load(junk)
    with pytest.raises(ValueError, match="expected a linjax estimator"):
        io.save(tmp_path / "x.ljx", {"a": 1})


def test_cv_estimators_roundtrip(tmp_path):
    """cv_results_ holds linjax.selection / linjax.paths NamedTuples: saved and rebuilt."""
    from linjax.estimators import LassoCV

    X, _ = _iris()
    y = X.pop("petal width (cm)").to_numpy() + 0.1
    X = X.to_numpy()
    for est in (LassoCV(cv=3).fit(X, y),):
        loaded = _roundtrip(tmp_path, est)
        assert type(loaded) is type(est)
        np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
        assert type(loaded.cv_results_[0]) is type(est.cv_results_[0])
