"""Thresholds: fixed, percentile and telemanom's dynamic threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.errors import DtgError
from dtg.thresholds import DynamicThreshold, FixedThreshold, PercentileThreshold, from_spec

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(deadline=None, max_examples=60)
@given(st.lists(finite, min_size=1, max_size=200), st.floats(min_value=0.5, max_value=99.5))
def test_percentile_threshold_flags_at_most_the_share_above_q(scores, q):
    s = np.array(scores)
    t = PercentileThreshold(q).fit(s)
    assert t.threshold_ == pytest.approx(np.percentile(s, q))
    flags = t.predict(s)
    assert np.array_equal(flags, s > t.threshold_)
    assert flags.mean() <= (100 - q) / 100 + 1 / len(s) + 1e-9


def test_percentile_threshold_on_known_values():
    t = PercentileThreshold(90).fit(np.arange(1, 101, dtype=float))
    assert t.threshold_ == pytest.approx(90.1)
    assert t.predict(np.array([90.0, 90.2])).tolist() == [False, True]


def test_percentile_threshold_rejects_out_of_range_q_and_empty_scores():
    with pytest.raises(DtgError):
        PercentileThreshold(100).fit(np.ones(3))
    with pytest.raises(DtgError):
        PercentileThreshold(50).fit(np.array([np.nan]))


@settings(deadline=None, max_examples=60)
@given(st.lists(finite, max_size=100), finite)
def test_fixed_threshold_flags_strictly_greater(scores, value):
    t = FixedThreshold(value).fit()
    assert t.predict(np.array(scores, dtype=float)).tolist() == [s > value for s in scores]


def test_from_spec_resolves_default_value_and_dynamic():
    assert from_spec("default", 0.3).threshold_ == 0.3
    assert from_spec(None, 0.3).threshold_ == 0.3
    assert from_spec("1.5", 0.3).threshold_ == 1.5
    assert isinstance(from_spec("dynamic", None), DynamicThreshold)
    with pytest.raises(DtgError, match="no default threshold"):
        from_spec("default", None)
    with pytest.raises(DtgError, match="invalid threshold"):
        from_spec("high", 0.3)
    with pytest.raises(DtgError):
        from_spec("nan", 0.3)


# -- dynamic ------------------------------------------------------------------------------------


def _noise(n: int, seed: int) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).normal(0.0, 1.0, n))


def test_dynamic_smoothing_is_an_ewm_with_the_given_span_started_at_the_early_mean():
    e = _noise(3000, 1)
    d = DynamicThreshold(smoothing_span=105).fit(e)
    start = e[:210].mean()
    expected = pd.Series(np.r_[start, e]).ewm(span=105, adjust=False).mean().to_numpy()[1:]
    assert np.allclose(d.smoothed_, expected)


def test_dynamic_threshold_finds_the_hand_made_anomalies_and_nothing_else():
    e = _noise(6000, 0)
    e[1000:1010] += 10.0  # two known anomalies, in different blocks
    e[4500:4520] += 15.0
    d = DynamicThreshold().fit(e)
    seqs = [tuple(s) for s in d.sequences_]
    assert len(seqs) == 2
    for (a, b), (lo, hi) in zip(seqs, [(1000, 1010), (4500, 4520)]):
        assert a <= lo and b >= hi  # covers the anomaly (widened by the EWMA and the buffer)
        assert b - a < 400
    assert d.severity_[1] > d.severity_[0] > 0  # the larger spike is more severe
    assert d.labels_.sum() == sum(b - a + 1 for a, b in seqs)


def test_dynamic_threshold_flags_nothing_on_pure_noise():
    for seed in range(3):
        assert not DynamicThreshold().fit(_noise(5000, 10 + seed)).labels_.any()


def test_dynamic_threshold_catches_a_drop_below_normal_with_the_inverted_search():
    e = 5.0 + np.random.default_rng(3).normal(0.0, 0.3, 4000)
    e[2500:2560] = 0.0
    d = DynamicThreshold().fit(e)
    assert d.labels_[2500:2560].any()
    assert not d.labels_[:2000].any()


def test_dynamic_threshold_pruning_drops_minor_peaks_next_to_a_major_one():
    e = _noise(2000, 4) * 0.1
    e[500:505] += 20.0  # major
    e[1500:1505] += 18.5  # close to the major peak: (20 - 18.5)/20 < p, but both are far above the rest
    e[1000:1003] += 1.2  # minor peak only a little above the noise
    d = DynamicThreshold(buffer=5).fit(e)
    assert d.labels_[500:505].all() and d.labels_[1500:1505].all()
    assert not d.labels_[990:1015].any()


def test_dynamic_threshold_pruning_keeps_nothing_when_no_peak_stands_out():
    det = DynamicThreshold()
    from dtg.thresholds import _Direction

    e = np.array([1.0, 5.0, 1.0, 4.9, 1.0, 4.8])
    kept = det._prune(e, _Direction(epsilon=4.0, flags=np.array([1, 3, 5]), non_anom_max=4.7))
    assert len(kept) == 0  # every step in 5.0 > 4.9 > 4.8 > 4.7 drops by < 13%
    kept = det._prune(e, _Direction(epsilon=4.0, flags=np.array([1, 3, 5]), non_anom_max=1.0))
    assert kept.tolist() == [1, 3, 5]  # the last step (4.8 -> 1.0) is a big drop: keep all before it


def test_dynamic_threshold_judges_every_point_exactly_once():
    d = DynamicThreshold(block=100, step=30, smoothing_span=5, buffer=2)
    ends = d._block_ends(275)
    assert ends[0] == 100 and ends[-1] == 275
    assert np.all(np.diff(ends) <= 30) and np.all(np.diff(ends) > 0)
    e = _noise(275, 5)
    e[260:265] += 30.0  # in the last, short step; telemanom's last block never looked here
    fitted = d.fit(e)
    assert fitted.labels_[260:265].all()
    assert np.isfinite(fitted.threshold_).all()


def test_dynamic_threshold_ignores_errors_tiny_next_to_the_signal():
    e = _noise(3000, 6) * 1e-3
    e[1500:1510] += 0.02
    assert DynamicThreshold().fit(e).labels_.any()
    signal = np.linspace(0.0, 100.0, 3000)  # p95 - p5 = 90: 5% is 4.5, far above every error
    assert not DynamicThreshold().fit(e, signal=signal).labels_.any()


def test_dynamic_threshold_on_constant_or_empty_errors_flags_nothing():
    assert not DynamicThreshold().fit(np.ones(500)).labels_.any()
    assert DynamicThreshold().fit(np.zeros(0)).labels_.shape == (0,)


@settings(deadline=None, max_examples=25)
@given(st.lists(st.floats(min_value=0, max_value=1e3, allow_nan=False), min_size=1, max_size=400),
       st.integers(min_value=20, max_value=150), st.integers(min_value=1, max_value=40))
def test_dynamic_threshold_labels_are_consistent_with_sequences(values, block, step):
    d = DynamicThreshold(block=block, step=step, buffer=3, smoothing_span=10).fit(np.array(values))
    assert d.labels_.shape == (len(values),)
    rebuilt = np.zeros(len(values), dtype=bool)
    for a, b in d.sequences_:
        rebuilt[a:b + 1] = True
    assert np.array_equal(rebuilt, d.labels_)
    assert len(d.severity_) == len(d.sequences_)
    assert np.all(d.severity_ >= 0)


def test_dynamic_threshold_widens_each_exceedance_by_exactly_the_buffer():
    e = _noise(1000, 8) * 0.1
    e[500] = 50.0
    d = DynamicThreshold(smoothing_span=1, buffer=3).fit(e)  # span 1: no smoothing
    assert [tuple(s) for s in d.sequences_] == [(497, 503)]
    assert d.threshold_[500] <= 50.0
