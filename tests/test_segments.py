"""Segments: 1-second runs per vehicle, short gaps filled and flagged, long gaps end a segment."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.errors import DtgError
from dtg.segments import is_grouped_and_sorted, segment

# A vehicle's log: runs of contiguous seconds separated by gaps (seconds between the last record of a
# run and the first of the next, always >= 2 so that it is a real gap).
runs_st = st.lists(st.tuples(st.integers(1, 30), st.integers(2, 8)), min_size=1, max_size=6)
fleet_st = st.lists(runs_st, min_size=1, max_size=4)


def build(fleet, t0=1_700_000_000_000):
    """codes, ts (ms), speed, brake arrays for a fleet of vehicles described by (run length, gap) lists."""
    codes, ts = [], []
    for v, runs in enumerate(fleet):
        t = t0 + v * 10_000_000
        for length, gap in runs:
            ts.append(t + 1000 * np.arange(length))
            t += 1000 * (length - 1 + gap)
            codes.append(np.full(length, v, dtype=np.int32))
    codes, ts = np.concatenate(codes), np.concatenate(ts).astype(np.int64)
    speed = (np.arange(len(ts)) % 97).astype(np.float32)
    brake = (np.arange(len(ts)) % 2).astype(np.int8)
    return codes, ts, speed, brake


def expected_lengths(fleet, max_gap):
    out = []
    for runs in fleet:
        cur = runs[0][0]
        for (_, gap), (length, _) in zip(runs[:-1], runs[1:]):
            if gap <= max_gap:
                cur += gap - 1 + length
            else:
                out.append(cur)
                cur = length
        out.append(cur)
    return out


@settings(max_examples=60, deadline=None)
@given(fleet=fleet_st, max_gap=st.integers(1, 9))
def test_segment_lengths_follow_the_gap_rule(fleet, max_gap):
    codes, ts, speed, brake = build(fleet)
    seg = segment(codes, ts, [speed, brake], [False, True], max_gap)
    assert seg.length.tolist() == expected_lengths(fleet, max_gap)
    assert seg.rows == sum(expected_lengths(fleet, max_gap))
    assert np.array_equal(seg.row0, np.concatenate(([0], np.cumsum(seg.length)[:-1])))


@settings(max_examples=60, deadline=None)
@given(fleet=fleet_st, max_gap=st.integers(1, 9))
def test_rows_inside_a_segment_are_one_second_apart_and_never_mix_vehicles(fleet, max_gap):
    codes, ts, speed, brake = build(fleet)
    seg = segment(codes, ts, [speed, brake], [False, True], max_gap)
    sid, vid = seg.segment_id(), seg.vehicle_idx()
    same = sid[1:] == sid[:-1]
    assert np.all(np.diff(seg.ts)[same] == 1000)
    assert np.all(vid[1:][same] == vid[:-1][same])


@settings(max_examples=60, deadline=None)
@given(fleet=fleet_st, max_gap=st.integers(1, 9))
def test_original_rows_are_kept_and_filled_rows_interpolate(fleet, max_gap):
    codes, ts, speed, brake = build(fleet)
    seg = segment(codes, ts, [speed, brake], [False, True], max_gap)
    filled = seg.filled()
    # the original rows appear unchanged, in order
    assert np.array_equal(seg.ts[~filled], ts)
    assert np.array_equal(seg.values[~filled, 0], speed)
    assert np.array_equal(seg.values[~filled, 1], brake.astype(np.float32))
    # each filled row lies on the straight line between its neighbouring real rows; brake holds
    for r in seg.filled_rows:
        a = r - 1
        while filled[a]:
            a -= 1
        b = r + 1
        while filled[b]:
            b += 1
        frac = (seg.ts[r] - seg.ts[a]) / (seg.ts[b] - seg.ts[a])
        want = seg.values[a, 0] + (seg.values[b, 0] - seg.values[a, 0]) * frac
        assert seg.values[r, 0] == pytest.approx(want, abs=1e-4)
        assert seg.values[r, 1] == seg.values[a, 1]


def test_no_gap_is_filled_with_the_default_max_gap():
    codes, ts, speed, brake = build([[(5, 2), (5, 2)]])
    seg = segment(codes, ts, [speed], [False], max_gap=1)
    assert seg.length.tolist() == [5, 5]
    assert seg.filled_rows.size == 0


def test_a_two_second_gap_is_filled_with_one_flagged_row_when_allowed():
    codes, ts, speed, brake = build([[(3, 2), (3, 2)]])
    seg = segment(codes, ts, [speed], [False], max_gap=2)
    assert seg.length.tolist() == [7]
    assert seg.filled_rows.tolist() == [3]
    assert seg.ts[3] == ts[2] + 1000
    assert seg.values[3, 0] == pytest.approx((speed[2] + speed[3]) / 2)


def test_subsecond_clock_jitter_does_not_break_a_segment():
    ts = np.array([0, 1010, 1990, 3000, 4040], dtype=np.int64) + 1_700_000_000_000
    seg = segment(np.zeros(5, np.int32), ts, [np.arange(5.0)], [False])
    assert seg.length.tolist() == [5]
    assert np.array_equal(seg.ts, ts)  # true timestamps are kept


def test_a_repeated_second_keeps_its_first_row():
    ts = np.array([0, 1000, 1000, 2000], dtype=np.int64)
    seg = segment(np.zeros(4, np.int32), ts, [np.array([1.0, 2.0, 9.0, 3.0])], [False])
    assert seg.rows_duplicate == 1
    assert seg.values[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert seg.length.tolist() == [3]


def test_a_new_vehicle_always_starts_a_new_segment():
    ts = np.array([0, 1000, 2000, 3000], dtype=np.int64)  # contiguous clock, two vehicles
    seg = segment(np.array([0, 0, 1, 1], np.int32), ts, [np.zeros(4)], [False], max_gap=5)
    assert seg.length.tolist() == [2, 2]
    assert seg.vehicle.tolist() == [0, 1]


def test_unsorted_rows_are_refused():
    with pytest.raises(ValueError):
        segment(np.zeros(3, np.int32), np.array([0, 2000, 1000]), [np.zeros(3)], [False])
    assert not is_grouped_and_sorted(np.array([0, 1, 0]), np.array([0, 0, 1000]))
    assert is_grouped_and_sorted(np.array([0, 0, 1]), np.array([0, 1000, 0]))


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_max_gap_must_be_a_whole_number_of_seconds(bad):
    with pytest.raises(DtgError, match="max gap"):
        segment(np.zeros(2, np.int32), np.array([0, 1000]), [np.zeros(2)], [False], max_gap=bad)


def test_no_rows_give_no_segments():
    seg = segment(np.zeros(0, np.int32), np.zeros(0, np.int64), [np.zeros(0)], [False])
    assert seg.rows == 0 and seg.length.size == 0 and seg.values.shape == (0, 1)


@pytest.mark.parametrize("step_ms,lengths,filled", [
    (1400, [2], 0),  # rounds to one second: contiguous
    (1600, [3], 1),  # rounds to two seconds: one missing second, filled at --max-gap 2
    (2600, [1, 1], 0),  # rounds to three seconds: longer than --max-gap 2
])
def test_steps_are_rounded_to_whole_seconds(step_ms, lengths, filled):
    ts = np.array([0, step_ms], dtype=np.int64)
    seg = segment(np.zeros(2, np.int32), ts, [np.array([0.0, 1.0])], [False], max_gap=2)
    assert seg.length.tolist() == lengths and seg.filled_rows.size == filled


@settings(max_examples=40, deadline=None)
@given(fleet=fleet_st, max_gap=st.integers(1, 9), dups=st.lists(st.integers(0, 200), max_size=5))
def test_repeated_seconds_are_dropped_without_changing_the_segments(fleet, max_gap, dups):
    codes, ts, speed, brake = build(fleet)
    rows = sorted({d % len(ts) for d in dups})
    take = np.sort(np.concatenate([np.arange(len(ts)), np.array(rows, dtype=np.int64)]))  # listed rows twice
    seg = segment(codes[take], ts[take], [speed[take]], [False], max_gap)
    assert seg.rows_duplicate == len(rows)
    assert seg.length.tolist() == expected_lengths(fleet, max_gap)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 90), n_feat=st.integers(1, 4), bad=st.sampled_from([None, np.nan, np.inf, -np.inf]),
       at=st.integers(0, 89), cuts=st.lists(st.integers(0, 90), max_size=6))
def test_block_extrema_are_the_block_min_max_and_cover_row_ranges_exactly(rows, n_feat, bad, at, cuts):
    import dtg.segments as segments

    rng = np.random.default_rng(rows)
    cols = [rng.normal(0, 10, rows).astype(np.float32) for _ in range(n_feat)]
    if bad is not None:
        cols[0][at % rows] = bad
    out = np.empty((rows, n_feat), np.float32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(segments, "BLOCK", 8)  # several whole blocks and a shorter last one
        mp.setattr(segments, "_FOLD", 4)
        ext = segments._interleave(out, cols)
    assert np.array_equal(out, np.stack(cols, axis=1), equal_nan=True)
    assert ext.rows == rows and np.array_equal(ext.row0, np.arange(0, rows, 8))
    for k, r0 in enumerate(ext.row0):
        assert np.array_equal(ext.lo[k], out[r0:r0 + 8].min(axis=0), equal_nan=True)
        assert np.array_equal(ext.hi[k], out[r0:r0 + 8].max(axis=0), equal_nan=True)
    assert ext.finite() == (bad is None)
    # disjoint ranges: whole blocks plus the rows left over are exactly the ranges' rows
    edges = sorted({min(c, rows) for c in cuts} | {0, rows})
    begins, ends = np.array(edges[:-1][::2], np.int64), np.array(edges[1:][::2], np.int64)
    lo, hi, rest_b, rest_e = ext.cover(begins, ends)
    want = np.zeros(rows, bool)
    for b, e in zip(begins, ends):
        want[b:e] = True
    got = np.zeros(rows, int)
    for b, e in zip(rest_b, rest_e):
        got[b:e] += 1
    bend = np.append(ext.row0[1:], rows)
    inside = [k for k in range(len(ext.row0)) if any(b <= ext.row0[k] and bend[k] <= e for b, e in zip(begins, ends))]
    for k in inside:
        got[ext.row0[k]:bend[k]] += 1
    assert np.array_equal(got, want.astype(int))
    assert np.array_equal(lo, ext.lo[inside], equal_nan=True) and np.array_equal(hi, ext.hi[inside], equal_nan=True)


def test_filled_rows_give_no_block_extrema():
    codes, ts, speed, brake = build([[(5, 3), (5, 2)]])
    assert segment(codes, ts, [speed, brake], [False, True], 1).extrema is not None
    assert segment(codes, ts, [speed, brake], [False, True], 3).extrema is None
