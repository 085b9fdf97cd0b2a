"""The bad-input matrix: every public entry point, every kind of bad input.

Each case either raises a ValueError whose message names the argument at fault
(checked by a regular expression on the message), or is a documented conversion
(integers and booleans become floats, float16 is upcast to float32, lists are
arrays). Entry points: `lj.fit`, `lj.fit_batch`, `lj.fit_streaming`, the
scikit-learn estimators, `lj.inference.summarize` and the CLI (in process,
`linjax.cli.main`, exit code 2 for user errors).
"""

import warnings

import numpy as np
import pytest

import linjax as lj
from linjax import cli
from linjax import estimators as E
from linjax import families as F
from linjax import penalties as P
from linjax import solvers as S

RNG = np.random.default_rng(0)
N, NP = 24, 3
X = RNG.normal(size=(N, NP))
Y_COUNT = RNG.poisson(2.0, size=N).astype(float)
Y_COUNT[:2] = [0.0, 7.0]
Y_BIN = (RNG.random(N) < 0.5).astype(float)
Y_BIN[:2] = [0.0, 1.0]
Y_POS = Y_COUNT + 0.5


def _with(a, index, value):
    a = np.array(a, dtype=float, copy=True)
    a.flat[index] = value
    return a


def fit(**kw):
    args = {"X": X, "y": Y_COUNT, "family": F.Poisson()}
    args.update(kw)
    return lj.fit(**args)


def fit_batch(**kw):
    args = {"X": X, "Y": np.stack([Y_COUNT, Y_COUNT[::-1]]), "family": F.Poisson()}
    args.update(kw)
    return lj.fit_batch(**args)


def stream(chunks=None, **kw):
    if chunks is None:
        chunks = [(X[:12], Y_COUNT[:12]), (X[12:], Y_COUNT[12:])]
    kw.setdefault("family", F.Poisson())
    return lj.fit_streaming(chunks, **kw)


def summarize(**kw):
    args = {"X": X, "y": Y_COUNT}
    args.update(kw)
    result = lj.fit(X, Y_COUNT, family=F.Poisson())
    return lj.inference.summarize(result, **args)


# (id, callable, regular expression the ValueError message must match)
CASES = [
    # -- lj.fit: non-finite values, named by argument and first index --------------------
    ("fit-X-nan", lambda: fit(X=_with(X, 4, np.nan)), r"^X: 1 non-finite .*index \(1, 1\)"),
    ("fit-X-inf", lambda: fit(X=_with(X, 0, -np.inf)), r"^X: 1 non-finite"),
    ("fit-y-nan", lambda: fit(y=_with(Y_COUNT, 3, np.nan)), r"^y: 1 non-finite.*index 3"),
    ("fit-y-inf", lambda: fit(y=_with(Y_COUNT, 3, np.inf)), r"^y: 1 non-finite"),
    ("fit-weights-nan", lambda: fit(weights=_with(np.ones(N), 5, np.nan)),
     r"^weights: 1 non-finite"),
    ("fit-weights-inf", lambda: fit(weights=_with(np.ones(N), 5, np.inf)),
     r"^weights: 1 non-finite"),
    ("fit-offset-nan", lambda: fit(offset=_with(np.zeros(N), 7, np.nan)),
     r"^offset: 1 non-finite.*index 7"),
    ("fit-offset-inf", lambda: fit(offset=_with(np.zeros(N), 7, -np.inf)),
     r"^offset: 1 non-finite"),
    # -- weights ------------------------------------------------------------------------
    ("fit-weights-negative", lambda: fit(weights=_with(np.ones(N), 2, -0.5)),
     r"^weights: 1 negative.*index 2.*>= 0"),
    ("fit-weights-all-zero", lambda: fit(weights=np.zeros(N)), r"^weights: all weights are zero"),
    # -- shapes and sizes ---------------------------------------------------------------
    ("fit-y-length", lambda: fit(y=Y_COUNT[:-1]), r"^y: expected shape \(24,\)"),
    ("fit-weights-length", lambda: fit(weights=np.ones(N + 1)), r"^weights: expected shape"),
    ("fit-offset-length", lambda: fit(offset=np.zeros(3)), r"^offset: expected shape \(24,\)"),
    ("fit-y-2d", lambda: fit(y=np.stack([Y_COUNT, Y_COUNT], 1)), r"^y: expected shape"),
    ("fit-X-1d", lambda: fit(X=X[:, 0]), r"^X: expected a 2-D array.*reshape"),
    ("fit-X-3d", lambda: fit(X=X[None]), r"^X: expected a 2-D array"),
    ("fit-0-rows", lambda: fit(X=np.zeros((0, NP)), y=np.zeros(0)), r"^X: has 0 rows"),
    ("fit-0-columns-no-intercept", lambda: fit(X=np.zeros((N, 0)), fit_intercept=False),
     r"^X: has 0 columns and fit_intercept=False"),
    ("fit-wide-unpenalized", lambda: fit(X=RNG.normal(size=(5, 8)), y=Y_COUNT[:5]),
     r"^X: 9 coefficients but only 5 observations.*penalty"),
    ("fit-wide-after-zero-weights", lambda: fit(weights=np.r_[np.ones(3), np.zeros(N - 3)]),
     r"^X: 4 coefficients but only 3 observations with positive weight"),
    # -- y outside the family's support -------------------------------------------------
    ("fit-poisson-negative-y", lambda: fit(y=Y_COUNT - 1), r"^y: .*outside the support \(y >= 0"),
    ("fit-binomial-y-2", lambda: fit(family=F.Binomial(), y=Y_COUNT),
     r"^y: .*outside the support \(0 <= y <= 1"),
    ("fit-gamma-y-0", lambda: fit(family=F.Gamma(), y=Y_COUNT),
     r"^y: .*outside the support \(y > 0\)"),
    ("fit-inverse-gaussian-y-negative", lambda: fit(family=F.InverseGaussian(), y=-Y_POS),
     r"^y: .*\(y > 0\)"),
    ("fit-negbin-y-negative", lambda: fit(family=F.NegativeBinomial(alpha=1.0), y=-Y_POS),
     r"^y: .*y >= 0"),
    ("fit-tweedie-y-negative", lambda: fit(family=F.Tweedie(power=1.5), y=-Y_POS),
     r"^y: .*y >= 0 for Tweedie"),
    ("fit-multinomial-y-fraction", lambda: fit(family=F.Multinomial(), y=Y_COUNT + 0.5),
     r"^y: .*integer class labels"),
    ("fit-multinomial-y-negative", lambda: fit(family=F.Multinomial(), y=Y_COUNT - 1),
     r"^y: .*integer class labels"),
    # -- non-numeric content ------------------------------------------------------------
    ("fit-X-strings", lambda: fit(X=np.full((N, NP), "a")), r"^X: expected numbers.*convert"),
    ("fit-X-object-mixed", lambda: fit(X=np.array([["a", 1.0, 2.0]] * N, dtype=object)),
     r"^X: contains non-numeric values.*one-hot"),
    ("fit-y-strings", lambda: fit(y=np.array(["1"] * N)), r"^y: expected numbers"),
    ("fit-y-datetimes", lambda: fit(y=np.arange(N).astype("datetime64[D]")),
     r"^y: expected numbers"),
    ("fit-X-complex", lambda: fit(X=X + 1j), r"^X: complex values are not supported"),
    ("fit-X-dict", lambda: fit(X={"a": 1}), r"^X: "),
    ("fit-X-none", lambda: fit(X=None), r"^X: "),
    # -- hyperparameters ----------------------------------------------------------------
    ("fit-l2-negative-alpha", lambda: fit(penalty=P.L2(alpha=-1.0)), r"^penalty alpha: .*>= 0"),
    ("fit-l1-negative-alpha", lambda: fit(penalty=P.L1(alpha=-0.1)), r"^penalty alpha"),
    ("fit-alpha-nan", lambda: fit(penalty=P.L2(alpha=np.nan)), r"^penalty alpha: must be finite"),
    ("fit-l1-ratio-above-1", lambda: fit(penalty=P.ElasticNet(alpha=1.0, l1_ratio=1.5)),
     r"^penalty l1_ratio: must be in \[0, 1\]"),
    ("fit-l1-ratio-negative", lambda: fit(penalty=P.ElasticNet(alpha=1.0, l1_ratio=-0.5)),
     r"^penalty l1_ratio"),
    ("fit-penalty-weights-negative", lambda: fit(penalty=P.L2(alpha=1.0, weights=-np.ones(NP))),
     r"^penalty weights: must be finite and >= 0"),
    ("fit-penalty-weights-length", lambda: fit(penalty=P.L2(alpha=1.0, weights=np.ones(NP + 2))),
     r"^penalty weights: expected shape \(3,\)"),
    ("fit-tweedie-power-in-0-1", lambda: fit(family=F.Tweedie(power=0.5)),
     r"Tweedie\(power=0.5\) does not exist for 0 < power < 1"),
    ("fit-negbin-alpha-negative", lambda: fit(family=F.NegativeBinomial(alpha=-1.0)),
     r"NegativeBinomial\(alpha=-1.0\) needs alpha > 0"),
    ("fit-newton-tol-negative", lambda: fit(solver=S.Newton(tol=-1e-8)),
     r"^solver tol: Newton\(tol=...\) must be a finite number > 0"),
    ("fit-lbfgs-tol-zero", lambda: fit(solver=S.LBFGS(tol=0.0)), r"^solver tol: LBFGS"),
    ("fit-max-iter-zero", lambda: fit(solver=S.Newton(max_iter=0)),
     r"^solver max_iter: .*integer >= 1"),
    ("fit-sgd-learning-rate-negative", lambda: fit(solver=S.SGD(learning_rate=-0.1)),
     r"^solver learning_rate"),
    ("fit-sgd-batch-size-zero", lambda: fit(solver=S.SGD(batch_size=0)), r"^solver batch_size"),
    ("fit-unknown-solver", lambda: fit(solver="magic"), r"^solver: unknown solver 'magic'"),
    ("fit-newton-with-l1", lambda: fit(solver="newton", penalty=P.L1(alpha=0.1)),
     r"^penalty: L1 is not smooth.*solver='cd'"),
    ("fit-lstsq-with-poisson", lambda: fit(solver="lstsq"),
     r"^solver: LeastSquares solves the Gaussian family"),
    ("fit-unknown-family", lambda: fit(family="weibull"), r"^family: unknown family 'weibull'"),
    ("fit-init-shape", lambda: fit(init={"coef": np.zeros(NP + 1), "intercept": 0.0}),
     r"^init: coef must have shape \(3,\)"),
    ("fit-init-nan", lambda: fit(init={"coef": np.full(NP, np.nan), "intercept": 0.0}),
     r"^init coef: 3 non-finite"),
    ("fit-init-not-dict", lambda: fit(init=np.zeros(NP)), r"^init: expected a dict"),
    ("fit-bounds-crossed", lambda: fit(bounds=(1.0, -1.0), solver="cd"),
     r"^bounds: some lower bound exceeds its upper bound"),
    ("fit-bounds-newton", lambda: fit(bounds=(0.0, None), solver="newton"),
     r"^bounds: Newton does not handle coefficient bounds"),
    # -- fit_batch ----------------------------------------------------------------------
    ("batch-X-nan", lambda: fit_batch(X=_with(X, 1, np.nan)), r"^X: 1 non-finite"),
    ("batch-Y-nan", lambda: fit_batch(Y=np.stack([Y_COUNT, _with(Y_COUNT, 0, np.nan)])),
     r"^Y\[1\] \(problem 1\): non-finite"),  # the problem at fault, by index
    ("batch-Y-1d", lambda: fit_batch(Y=Y_COUNT), r"^Y: expected shape \(m, n\).*lj.fit"),
    ("batch-Y-columns", lambda: fit_batch(Y=np.ones((2, N - 1))), r"^X: has 24 rows but Y"),
    ("batch-Y-support-row", lambda: fit_batch(Y=np.stack([Y_COUNT, Y_COUNT - 5])),
     r"^Y\[1\] \(problem 1\): .*y >= 0"),
    ("batch-weights-negative-row", lambda: fit_batch(
        weights=np.stack([np.ones(N), _with(np.ones(N), 3, -1.0)])),
     r"^weights\[1\] \(problem 1\): negative"),
    ("batch-weights-zero-row", lambda: fit_batch(weights=np.stack([np.ones(N), np.zeros(N)])),
     r"^weights\[1\] \(problem 1\): all weights are zero"),
    ("batch-offset-shape", lambda: fit_batch(offset=np.zeros((3, N))), r"^offset: expected shape"),
    ("batch-negative-alpha", lambda: fit_batch(penalty=P.L2(alpha=-2.0)), r"^penalty alpha"),
    ("batch-batch-size", lambda: fit_batch(batch_size=0), r"^batch_size: expected a positive"),
    ("batch-X-stacked-shape", lambda: fit_batch(X=np.zeros((3, N, NP))), r"^X: stacked designs"),
    ("batch-0-problems", lambda: fit_batch(Y=np.zeros((0, N))), r"^Y: has 0 rows"),
    # -- fit_streaming ------------------------------------------------------------------
    ("stream-generator", lambda: stream(chunks=(c for c in [(X, Y_COUNT)])),
     r"^chunks: a generator or iterator can be read only once"),
    ("stream-not-iterable", lambda: stream(chunks=3), r"^chunks: expected a callable"),
    ("stream-empty", lambda: stream(chunks=[]), r"^chunks: the source yielded no chunks"),
    ("stream-chunk-not-tuple", lambda: stream(chunks=[X]), r"^chunks: chunk 0 must be a tuple"),
    ("stream-chunk-X-nan", lambda: stream(chunks=[(X[:12], Y_COUNT[:12]),
                                                  (_with(X[12:], 0, np.nan), Y_COUNT[12:])]),
     r"^chunk 1: X: 1 non-finite"),
    ("stream-chunk-y-support", lambda: stream(chunks=[(X, -Y_POS)]), r"^chunk 0: y: .*y >= 0"),
    ("stream-chunk-columns", lambda: stream(chunks=[(X, Y_COUNT), (X[:, :2], Y_COUNT)]),
     r"^chunk 1: X has \(2,\) columns"),
    ("stream-chunk-weights-negative", lambda: stream(
        chunks=[(X, Y_COUNT, _with(np.ones(N), 0, -1.0))]), r"^chunk 0: weights: 1 negative"),
    ("stream-unknown-solver", lambda: stream(solver="magic"), r"^solver: expected 'newton'"),
    ("stream-newton-l1", lambda: stream(penalty=P.L1(alpha=0.1)), r"^penalty: L1 is not smooth"),
    ("stream-negative-alpha", lambda: stream(penalty=P.L2(alpha=-1.0)), r"^penalty alpha"),
    # -- summarize ----------------------------------------------------------------------
    ("summary-X-nan", lambda: summarize(X=_with(X, 0, np.nan)), r"^X: 1 non-finite"),
    ("summary-y-length", lambda: summarize(y=Y_COUNT[:5]), r"^y: expected shape"),
    ("summary-weights-negative", lambda: summarize(weights=_with(np.ones(N), 0, -1.0)),
     r"^weights: 1 negative"),
    ("summary-cov-type", lambda: summarize(cov_type="HC9"), r"cov_type"),
    ("summary-cluster-no-groups", lambda: summarize(cov_type="cluster"), r"^groups: "),
    ("summary-information", lambda: summarize(information="fisher"), r"^information: "),
    ("summary-feature-names", lambda: summarize(feature_names=["a"]), r"^feature_names: "),
    ("summary-y-support", lambda: summarize(y=Y_COUNT - 3), r"^y: .*y >= 0"),
]


@pytest.mark.parametrize("make,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_functional_entry_points_refuse(make, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=match):
            make()


def test_case_count():
    """The issue asks for at least 40 bad-input cases; ids are unique."""
    ids = [c[0] for c in CASES] + [c[0] for c in ESTIMATOR_CASES] + [c[0] for c in CLI_CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40


# -- documented conversions ------------------------------------------------------------------

def test_integer_and_boolean_inputs_are_converted():
    ref = lj.fit(X.round(), Y_COUNT, family=F.Poisson())
    got = lj.fit(X.round().astype(np.int32), Y_COUNT.astype(np.int64), family=F.Poisson())
    assert got.params["coef"].dtype == np.float64
    np.testing.assert_array_equal(np.asarray(got.params["coef"]), np.asarray(ref.params["coef"]))
    res = lj.fit(X > 0, Y_BIN.astype(bool), family=F.Binomial())
    assert res.params["coef"].dtype == np.float64
    ref = lj.fit((X > 0).astype(float), Y_BIN, family=F.Binomial())
    np.testing.assert_array_equal(np.asarray(res.params["coef"]), np.asarray(ref.params["coef"]))


def test_lists_and_dataframes_are_arrays():
    pd = pytest.importorskip("pandas")
    ref = lj.fit(X, Y_COUNT, family=F.Poisson())
    for Xin, yin in ((X.tolist(), Y_COUNT.tolist()),
                     (pd.DataFrame(X), pd.Series(Y_COUNT))):
        got = lj.fit(Xin, yin, family=F.Poisson())
        np.testing.assert_array_equal(np.asarray(got.params["coef"]),
                                      np.asarray(ref.params["coef"]))


def test_float16_is_upcast_to_float32():
    res = lj.fit(X.astype(np.float16), Y_COUNT.astype(np.float16), family=F.Poisson())
    assert res.params["coef"].dtype == np.float32
    ref = lj.fit(X.astype(np.float16).astype(np.float32), Y_COUNT.astype(np.float32),
                 family=F.Poisson())
    np.testing.assert_array_equal(np.asarray(res.params["coef"]), np.asarray(ref.params["coef"]))
    # float16 X with float64 y: the widest float wins
    assert lj.fit(X.astype(np.float16), Y_COUNT, family=F.Poisson()).params["coef"].dtype == \
        np.float64


def test_float16_estimator_is_upcast():
    est = E.PoissonRegressor(alpha=0.0).fit(X.astype(np.float16), Y_COUNT)
    assert np.all(np.isfinite(est.coef_))
    assert est.coef_.dtype in (np.float32, np.float64)


# -- estimators ------------------------------------------------------------------------------

def _est_fit(est, Xin=X, yin=Y_COUNT, **kw):
    return lambda: est.fit(Xin, yin, **kw)


ESTIMATOR_CASES = [
    ("est-X-nan", _est_fit(E.PoissonRegressor(), _with(X, 0, np.nan)), r"NaN"),
    ("est-y-inf", _est_fit(E.LinearRegression(), X, _with(Y_COUNT, 0, np.inf)),
     r"(?i)infinity|inf"),
    ("est-sample-weight-nan", _est_fit(E.PoissonRegressor(), sample_weight=_with(
        np.ones(N), 0, np.nan)), r"sample_weight"),
    ("est-sample-weight-negative", _est_fit(E.PoissonRegressor(), sample_weight=_with(
        np.ones(N), 0, -1.0)), r"(?i)negative"),
    ("est-sample-weight-zero", _est_fit(E.PoissonRegressor(), sample_weight=np.zeros(N)),
     r"(?i)sample.weight"),
    ("est-offset-nan", _est_fit(E.PoissonRegressor(), offset=_with(np.zeros(N), 0, np.nan)),
     r"offset"),
    ("est-offset-length", _est_fit(E.PoissonRegressor(), offset=np.zeros(4)),
     r"offset must have shape \(24,\)"),
    ("est-y-length", _est_fit(E.Ridge(), X, Y_COUNT[:-2]), r"(?i)inconsistent numbers"),
    ("est-0-rows", _est_fit(E.Ridge(), np.zeros((0, NP)), np.zeros(0)), r"0 sample"),
    ("est-0-features", _est_fit(E.Ridge(), np.zeros((N, 0)), Y_COUNT), r"0 feature"),
    ("est-poisson-y-negative", _est_fit(E.PoissonRegressor(), X, Y_COUNT - 1),
     r"^PoissonRegressor: y has .*y >= 0"),
    ("est-gamma-y-zero", _est_fit(E.GammaRegressor(), X, Y_COUNT), r"^GammaRegressor: y has"),
    ("est-X-strings", _est_fit(E.Ridge(), np.full((N, NP), "a"), Y_COUNT), r"(?i)string|float"),
    ("est-single-class", _est_fit(E.LogisticRegression(), X, np.zeros(N)),
     r"^LogisticRegression: y contains only one class"),
    ("est-continuous-labels", _est_fit(E.LogisticRegression(), X, RNG.normal(size=N)),
     r"(?i)unknown label type"),
    ("est-ridge-negative-alpha", _est_fit(E.Ridge(alpha=-1.0)), r"alpha must be >= 0"),
    ("est-enet-l1-ratio", _est_fit(E.ElasticNet(l1_ratio=1.5)), r"l1_ratio must be <= 1"),
    ("est-logistic-C-zero", _est_fit(E.LogisticRegression(C=0.0), X, Y_BIN), r"C must be > 0"),
    ("est-tol-negative", _est_fit(E.PoissonRegressor(tol=-1.0)), r"tol must be > 0"),
    ("est-max-iter-zero", _est_fit(E.Lasso(max_iter=0)), r"max_iter must be >= 1"),
    ("est-tweedie-power", _est_fit(E.TweedieRegressor(power=0.5)), r"power"),
    ("est-glm-family", _est_fit(E.GLM(family="weibull")),
     r"^GLM: family: .*unknown family 'weibull'"),
    ("est-glm-link", _est_fit(E.GLM(family="poisson", link="sideways")), r"link"),
    ("est-solver", _est_fit(E.PoissonRegressor(solver="magic")), r"solver"),
    ("est-fit-intercept", _est_fit(E.Ridge(fit_intercept="yes")),
     r"fit_intercept must be True or False"),
]


@pytest.mark.parametrize("make,match", [c[1:] for c in ESTIMATOR_CASES],
                         ids=[c[0] for c in ESTIMATOR_CASES])
def test_estimators_refuse(make, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=match):
            make()


def test_estimator_predict_refuses_bad_X():
    est = E.PoissonRegressor(alpha=0.0).fit(X, Y_COUNT)
    with pytest.raises(ValueError, match=r"3 features"):
        est.predict(X[:, :2])
    with pytest.raises(ValueError, match=r"NaN"):
        est.predict(_with(X, 0, np.nan))


def test_unseen_labels_and_label_types():
    labels = np.where(Y_BIN > 0, "yes", "no")
    est = E.LogisticRegression().fit(X, labels)
    assert list(est.classes_) == ["no", "yes"]
    assert set(est.predict(X)) <= {"no", "yes"}
    # unseen labels in summary data or score: a clear error, never a silent encoding
    with pytest.raises(ValueError, match=r"(?i)label|class"):
        est.summary(X, np.where(Y_BIN > 0, "yes", "maybe"))


def test_summary_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        E.PoissonRegressor().summary()


# -- the CLI -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    pd = pytest.importorskip("pandas")
    d = tmp_path_factory.mktemp("cli")
    frame = pd.DataFrame({"y": Y_COUNT, "x1": X[:, 0], "x2": X[:, 1], "w": np.ones(N),
                          "txt": ["a"] * N})
    frame.to_csv(d / "good.csv", index=False)
    bad = frame.copy()
    bad.loc[3, "x1"] = np.nan
    bad.to_csv(d / "missing.csv", index=False)
    neg = frame.copy()
    neg["y"] = -1.0
    neg.to_csv(d / "negative.csv", index=False)
    negw = frame.copy()
    negw.loc[0, "w"] = -2.0
    negw.to_csv(d / "negweight.csv", index=False)
    (d / "model.lj").write_bytes(b"not a zip file")
    return d


CLI_CASES = [
    ("cli-no-such-file", ["fit", "{d}/absent.csv", "--formula", "y ~ x1"], r"absent.csv"),
    ("cli-unknown-column", ["fit", "{d}/good.csv", "--formula", "y ~ x9"], r"x9"),
    ("cli-missing-values", ["fit", "{d}/missing.csv", "--formula", "y ~ x1"],
     r"(?i)missing"),
    ("cli-y-outside-support", ["fit", "{d}/negative.csv", "--formula", "y ~ x1",
                               "--family", "poisson"], r"y >= 0"),
    ("cli-negative-weights", ["fit", "{d}/negweight.csv", "--formula", "y ~ x1",
                              "--weights", "w"], r"(?i)weight"),
    ("cli-unknown-family", ["fit", "{d}/good.csv", "--formula", "y ~ x1", "--family", "weibull"],
     r"weibull"),
    ("cli-non-numeric-y", ["fit", "{d}/good.csv", "--y", "txt", "--x", "x1"], r"txt"),
    ("cli-negative-alpha", ["fit", "{d}/good.csv", "--formula", "y ~ x1", "--alpha", "-1"],
     r"alpha"),
    ("cli-l1-ratio", ["fit", "{d}/good.csv", "--formula", "y ~ x1", "--alpha", "1",
                      "--l1-ratio", "2"], r"l1.ratio"),
    ("cli-bad-alpha-type", ["fit", "{d}/good.csv", "--formula", "y ~ x1", "--alpha", "lots"],
     r"alpha"),
    ("cli-corrupt-model", ["predict", "{d}/model.lj", "{d}/good.csv"], r"MODEL"),
]


@pytest.mark.parametrize("argv,match", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_user_errors_exit_2(argv, match, data_dir, capsys):
    code = cli.main([a.format(d=data_dir) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert __import__("re").search(match, err), err
