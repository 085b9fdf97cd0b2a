"""Bundled data sets: shapes, the stored coffee-shop file equals its generator, a classic fit."""

import importlib.util
import pathlib

import numpy as np
import statsmodels.api as sm

import linjax as lj
from linjax import datasets

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_loaders_shapes():
    assert len(datasets.load_coffee_shops().data["revenue"]) == 400
    assert len(datasets.load_stackloss().data["stackloss"]) == 21
    assert len(datasets.load_strikes().data["duration"]) == 62
    assert len(datasets.load_anes96().data["vote"]) == 944
    frame = datasets.load_coffee_shops(as_frame=True).frame
    assert list(frame.columns)[:3] == ["shop_id", "region", "foot_traffic"]


def test_coffee_shops_file_is_what_the_seeded_generator_makes():
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts/make_coffee_shops.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    fresh = gen.generate()
    stored = datasets.load_coffee_shops().data
    assert list(fresh) == list(stored)
    for name, column in fresh.items():
        if column.dtype.kind in "US":
            assert np.array_equal(column, stored[name])
        else:
            np.testing.assert_allclose(stored[name], column, rtol=0, atol=1e-9)


def test_stackloss_ols_matches_statsmodels():
    d = datasets.load_stackloss().data
    X = np.column_stack([d["airflow"], d["watertemp"], d["acidconc"]])
    res = lj.fit(X, d["stackloss"])
    ref = sm.OLS(d["stackloss"], sm.add_constant(X)).fit().params
    np.testing.assert_allclose(np.r_[res.params["intercept"], res.params["coef"]], ref,
                               rtol=1e-10)
