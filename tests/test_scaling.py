"""Scalers: bounded ranges, constant features, chunked fitting, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dtg.errors import DtgError
from dtg.scaling import MinMaxScaler, StandardScaler, make_scaler, scaler_from_dict

data_st = arrays(np.float32, st.tuples(st.integers(2, 40), st.integers(1, 4)),
                 elements=st.floats(-1000, 1000, width=32))


@settings(max_examples=60, deadline=None)
@given(X=data_st, name=st.sampled_from(["minmax", "minmax-sym"]))
def test_minmax_maps_the_fitted_rows_into_the_feature_range(X, name):
    s = make_scaler(name).fit(X)
    lo, hi = s.feature_range
    Y = s.transform(X)
    assert Y.dtype == np.float32
    assert np.all(Y >= lo - 1e-5) and np.all(Y <= hi + 1e-5)
    varying = X.max(axis=0) > X.min(axis=0)
    assert np.allclose(Y.min(axis=0)[varying], lo, atol=1e-5)
    assert np.allclose(Y.max(axis=0)[varying], hi, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(X=data_st, split=st.integers(1, 39), name=st.sampled_from(["minmax", "minmax-sym", "standard"]))
def test_fitting_in_chunks_equals_fitting_at_once(X, split, name):
    split = min(split, len(X) - 1)
    whole = make_scaler(name).fit(X)
    chunked = make_scaler(name).fit_chunks([X[:split], X[split:]])
    a, b = whole.to_dict(), chunked.to_dict()
    assert a.keys() == b.keys()
    for k in a:
        if k == "kind":
            assert a[k] == b[k]
        else:
            assert np.allclose(a[k], b[k], rtol=1e-9, atol=1e-6), k


@settings(max_examples=60, deadline=None)
@given(X=data_st, name=st.sampled_from(["minmax", "minmax-sym", "standard"]))
def test_to_dict_survives_json_and_inverse_transform_undoes_transform(X, name):
    s = make_scaler(name).fit(X)
    back = scaler_from_dict(json.loads(json.dumps(s.to_dict())))
    assert np.array_equal(back.transform(X), s.transform(X))
    assert np.allclose(s.inverse_transform(s.transform(X)), X, atol=1e-3 + 1e-5 * np.abs(X).max())


def test_standard_scaler_gives_zero_mean_unit_variance():
    rng = np.random.default_rng(0)
    X = rng.normal([50, -3], [10, 0.5], size=(1000, 2))
    Y = StandardScaler().fit(X).transform(X)
    assert np.allclose(Y.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(Y.std(axis=0), 1, atol=1e-5)


@pytest.mark.parametrize("name", ["minmax", "minmax-sym", "standard"])
def test_a_constant_feature_does_not_divide_by_zero(name):
    X = np.array([[5.0, 1.0], [5.0, 2.0], [5.0, 3.0]])
    Y = make_scaler(name).fit(X).transform(X)
    assert np.all(np.isfinite(Y))
    assert np.all(Y[:, 0] == Y[0, 0])


def test_fit_returns_self_and_learned_state_ends_in_underscore():
    s = MinMaxScaler()
    assert not s.fitted
    assert s.fit(np.array([[0.0], [2.0]])) is s
    learned = {k for k in vars(s) if k.endswith("_")}
    assert {"data_min_", "data_max_", "scale_", "min_", "n_features_in_"} <= learned
    assert s.transform(np.array([[1.0]]))[0, 0] == pytest.approx(0.5)


def test_refitting_forgets_the_previous_fit():
    s = MinMaxScaler().fit(np.array([[0.0], [100.0]]))
    s.fit(np.array([[0.0], [1.0]]))
    assert s.data_max_.tolist() == [1.0]


def test_transform_leaves_the_scaler_unchanged():
    s = StandardScaler().fit(np.array([[0.0], [2.0]]))
    before = s.to_dict()
    s.transform(np.array([[100.0]]))
    assert s.to_dict() == before


def test_unknown_scaler_and_unfitted_use_are_clear_errors():
    with pytest.raises(DtgError, match="valid: minmax, minmax-sym, standard"):
        make_scaler("robust")
    with pytest.raises(DtgError, match="not fitted"):
        MinMaxScaler().transform(np.zeros((1, 1)))
    with pytest.raises(DtgError, match="2 features"):
        MinMaxScaler().fit(np.zeros((3, 2))).transform(np.zeros((1, 3)))
    with pytest.raises(DtgError, match="unknown scaler kind"):
        scaler_from_dict({"kind": "pickle"})
