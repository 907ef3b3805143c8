"""Window indexing: the count formula, windows inside segments, zero-copy views."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.windowing import WindowIndex, gather, window_counts, window_segments, window_starts, window_view

lengths_st = st.lists(st.integers(0, 60), min_size=0, max_size=8)


def layout(lengths):
    lengths = np.asarray(lengths, dtype=np.int64)
    row0 = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64) if len(lengths) else lengths
    return row0, lengths


@settings(max_examples=100, deadline=None)
@given(lengths=lengths_st, size=st.integers(1, 25), stride=st.integers(1, 7))
def test_window_count_is_the_formula_for_any_lengths_size_stride(lengths, size, stride):
    row0, lens = layout(lengths)
    starts = window_starts(row0, lens, size, stride)
    want = sum(max(0, (n - size) // stride + 1) for n in lengths)
    assert len(starts) == want == int(window_counts(lens, size, stride).sum())


@settings(max_examples=100, deadline=None)
@given(lengths=lengths_st, size=st.integers(1, 25), stride=st.integers(1, 7))
def test_every_window_lies_inside_one_segment_at_stride_steps(lengths, size, stride):
    row0, lens = layout(lengths)
    starts = window_starts(row0, lens, size, stride)
    seg = window_segments(lens, size, stride)
    assert np.all(starts >= row0[seg]) if len(starts) else True
    assert np.all(starts + size <= row0[seg] + lens[seg]) if len(starts) else True
    same = seg[1:] == seg[:-1]
    assert np.all(np.diff(starts)[same] == stride)
    # the first window of each segment starts at the segment's first row
    firsts = np.flatnonzero(np.concatenate(([True], ~same))) if len(starts) else []
    assert all(starts[i] == row0[seg[i]] for i in firsts)


@settings(max_examples=60, deadline=None)
@given(lengths=lengths_st, size=st.integers(1, 25), stride=st.integers(1, 7))
def test_has_next_is_true_exactly_when_the_shifted_window_fits_the_segment(lengths, size, stride):
    row0, lens = layout(lengths)
    starts = window_starts(row0, lens, size, stride)
    seg = window_segments(lens, size, stride)
    nxt = np.ones(len(starts), dtype=bool)
    nxt[WindowIndex.build(row0, lens, size, stride).last_without_next()] = False
    assert np.array_equal(nxt, starts + 1 + size <= row0[seg] + lens[seg])


@settings(max_examples=100, deadline=None)
@given(lengths=lengths_st, size=st.integers(1, 25), stride=st.integers(1, 7), gap=st.integers(0, 3))
def test_window_index_maps_numbers_to_starts_and_rows_to_counts(lengths, size, stride, gap):
    lens = np.asarray(lengths, dtype=np.int64)
    row0 = np.concatenate(([0], np.cumsum(lens + gap)[:-1])).astype(np.int64) if len(lens) else lens
    starts = window_starts(row0, lens, size, stride)
    index = WindowIndex.build(row0, lens, size, stride)
    assert index.n == len(starts)
    assert np.array_equal(index.starts(), starts)
    assert np.array_equal(index.start(np.arange(index.n)), starts)
    assert np.array_equal(index.segment_of(np.arange(index.n)), window_segments(lens, size, stride))
    rows = np.arange(-2, int((row0 + lens).max(initial=0)) + 3)
    assert np.array_equal(index.before(rows), np.searchsorted(starts, rows))


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(0, 80), size=st.integers(1, 25), n_feat=st.integers(1, 4))
def test_window_view_is_a_zero_copy_view_equal_to_slices(rows, size, n_feat):
    values = np.arange(rows * n_feat, dtype=np.float32).reshape(rows, n_feat)
    view = window_view(values, size)
    assert view.shape == (max(0, rows - size + 1), size, n_feat)
    if view.shape[0]:
        assert np.shares_memory(view, values)
        for s in range(view.shape[0]):
            assert np.array_equal(view[s], values[s:s + size])


def test_gather_copies_only_the_requested_windows():
    values = np.arange(30, dtype=np.float32).reshape(10, 3)
    got = gather(values, np.array([4, 0]), 3)
    assert got.shape == (2, 3, 3)
    assert np.array_equal(got[0], values[4:7]) and np.array_equal(got[1], values[0:3])
    assert not np.shares_memory(got, values)
    assert gather(values, np.array([], dtype=np.int64), 3).shape == (0, 3, 3)


def test_bad_size_or_stride_is_refused():
    with pytest.raises(ValueError):
        window_counts(np.array([5]), 0, 1)
    with pytest.raises(ValueError):
        window_counts(np.array([5]), 3, 0)
