"""Splits: time blocks per vehicle or whole vehicles, purged so that no second is in two splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.errors import DtgError
from dtg.splits import PURGED, SplitSpec, assign_splits, ranges, time_bounds, vehicle_blocks, vehicle_counts, vehicle_rows
from dtg.windowing import WindowIndex, window_counts, window_starts

fractions_st = st.sampled_from([(0.7, 0.15, 0.15), (0.5, 0.5), (0.8, 0.0, 0.2), (0.34, 0.33, 0.33), (1.0,)])
# per vehicle, a list of segment lengths
fleet_st = st.lists(st.lists(st.integers(0, 80), min_size=1, max_size=4), min_size=1, max_size=5)


def layout(fleet):
    lengths = np.array([n for segs in fleet for n in segs], dtype=np.int64)
    vehicle = np.array([v for v, segs in enumerate(fleet) for _ in segs], dtype=np.int32)
    row0 = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return row0, lengths, vehicle


def run(fleet, size, stride, spec):
    row0, lengths, vehicle = layout(fleet)
    counts = window_counts(lengths, size, stride)
    starts = window_starts(row0, lengths, size, stride)
    wveh = np.repeat(vehicle, counts)
    runs = assign_splits(WindowIndex.build(row0, lengths, size, stride), vehicle, len(fleet), spec)
    assert runs.n == len(starts)
    return starts, wveh, runs.split(), runs.has_next(), int(lengths.sum())


def dense_reference(starts, size, row0, lengths, vehicle, n_vehicles, spec, stride):
    """Split and has_next computed window by window (dtg's implementation before split runs)."""
    counts = window_counts(lengths, size, stride)
    nxt = np.ones(len(starts), dtype=bool)
    flush = (counts > 0) & ((lengths - size) % stride == 0)
    nxt[(np.cumsum(counts) - 1)[flush]] = False
    first, end = vehicle_rows(row0, lengths, vehicle, n_vehicles)
    split = np.empty(len(starts), dtype=np.int8)
    if spec.by == "vehicle":
        blocks = vehicle_blocks(n_vehicles, spec)
        w0, w1 = np.searchsorted(starts, first), np.searchsorted(starts, end)
        for v in range(n_vehicles):
            split[w0[v]:w1[v]] = blocks[v]
        return split, nxt
    bounds = time_bounds(first, end, spec)
    edges = np.searchsorted(starts, np.concatenate([first[:, None], bounds, end[:, None]], axis=1))
    purge_lo = np.searchsorted(starts, np.maximum(bounds - size + 1, first[:, None]))
    for v in range(n_vehicles):
        for k in range(3):
            split[edges[v, k]:edges[v, k + 1]] = k
        for k in range(2):
            split[purge_lo[v, k]:edges[v, k + 1]] = PURGED
            nxt[purge_lo[v, k]:edges[v, k + 1]] = False
    for r in (bounds - size).ravel()[(bounds - size).ravel() >= np.repeat(first, 2)]:
        nxt[starts == r] = False
    return split, nxt


@settings(max_examples=100, deadline=None)
@given(fleet=fleet_st, size=st.integers(1, 20), stride=st.integers(1, 5), fractions=fractions_st,
       by=st.sampled_from(["time", "vehicle"]), seed=st.integers(0, 5))
def test_split_runs_expand_to_the_window_by_window_reference(fleet, size, stride, fractions, by, seed):
    spec = SplitSpec(fractions, by, seed)
    row0, lengths, vehicle = layout(fleet)
    starts, _, split, nxt, _ = run(fleet, size, stride, spec)
    want_split, want_nxt = dense_reference(starts, size, row0, lengths, vehicle, len(fleet), spec, stride)
    assert np.array_equal(split, want_split) and np.array_equal(nxt, want_nxt)
    runs = assign_splits(WindowIndex.build(row0, lengths, size, stride), vehicle, len(fleet), spec)
    assert len(runs.lo) <= 2 * len(lengths) + 8 * len(fleet) + 1  # O(segments + vehicles), not O(windows)
    for code in (0, 1, 2, PURGED):
        assert np.array_equal(runs.select(runs.code == code), np.flatnonzero(split == code))


@settings(max_examples=100, deadline=None)
@given(bounds=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 6)), max_size=6))
def test_ranges_concatenates_aranges(bounds):
    lo = np.array([a for a, _ in bounds], dtype=np.int64)
    hi = lo + np.array([d for _, d in bounds], dtype=np.int64)
    want = [x for a, b in zip(lo, hi) for x in range(a, b)]
    assert ranges(lo, hi).tolist() == want


def owners(starts, split, size, rows, span):
    """For each row, the set of splits whose (span-long) windows cover it."""
    cover = [set() for _ in range(rows + 1)]
    for s, k in zip(starts, split):
        if k == PURGED:
            continue
        for r in range(s, s + span):
            cover[r].add(int(k))
    return cover


@settings(max_examples=80, deadline=None)
@given(fleet=fleet_st, size=st.integers(1, 20), stride=st.integers(1, 5), fractions=fractions_st,
       by=st.sampled_from(["time", "vehicle"]), seed=st.integers(0, 5))
def test_no_second_appears_in_two_splits(fleet, size, stride, fractions, by, seed):
    starts, _, split, _, rows = run(fleet, size, stride, SplitSpec(fractions, by, seed))
    assert all(len(c) <= 1 for c in owners(starts, split, size, rows, size))


@settings(max_examples=80, deadline=None)
@given(fleet=fleet_st, size=st.integers(1, 20), stride=st.integers(1, 5), fractions=fractions_st)
def test_next_targets_never_reach_into_another_split(fleet, size, stride, fractions):
    starts, _, split, nxt, rows = run(fleet, size, stride, SplitSpec(fractions, "time"))
    # the input window plus its target cover rows s .. s+size: still one split per row
    assert all(len(c) <= 1 for c in owners(starts[nxt], split[nxt], size, rows, size + 1))


@settings(max_examples=60, deadline=None)
@given(fleet=fleet_st, size=st.integers(1, 20), fractions=fractions_st)
def test_time_split_orders_each_vehicles_windows_train_then_val_then_test(fleet, size, fractions):
    starts, wveh, split, _, _ = run(fleet, size, 1, SplitSpec(fractions, "time"))
    for v in range(len(fleet)):
        kept = split[(wveh == v) & (split != PURGED)]
        assert np.all(np.diff(kept) >= 0)


def test_time_split_purges_exactly_the_windows_straddling_a_boundary():
    # one vehicle, one segment of 100 rows: train rows 0..69, val 70..84, test 85..99
    starts, _, split, nxt, _ = run([[100]], 10, 1, SplitSpec((0.7, 0.15, 0.15)))
    assert split[starts == 60].item() == 0 and split[starts == 61].item() == PURGED
    assert split[starts == 69].item() == PURGED and split[starts == 70].item() == 1
    assert split[starts == 75].item() == 1 and split[starts == 76].item() == PURGED
    assert split[starts == 85].item() == 2 and split[starts == 90].item() == 2
    assert np.count_nonzero(split == PURGED) == 2 * 9
    # the last training window's target would be row 70 (validation): no next for it
    assert not nxt[starts == 60].item() and nxt[starts == 59].item()


def test_vehicle_split_keeps_each_vehicle_whole_and_is_seeded():
    fleet = [[50]] * 10
    starts, wveh, split, _, _ = run(fleet, 5, 1, SplitSpec((0.6, 0.2, 0.2), "vehicle", seed=3))
    for v in range(10):
        assert len(set(split[wveh == v].tolist())) == 1
    assert not np.any(split == PURGED)
    blocks = vehicle_blocks(10, SplitSpec((0.6, 0.2, 0.2), "vehicle", seed=3))
    assert np.bincount(blocks, minlength=3).tolist() == [6, 2, 2]
    assert np.array_equal(blocks, vehicle_blocks(10, SplitSpec((0.6, 0.2, 0.2), "vehicle", seed=3)))
    others = {tuple(vehicle_blocks(10, SplitSpec((0.6, 0.2, 0.2), "vehicle", seed=s))) for s in range(8)}
    assert len(others) > 1


@pytest.mark.parametrize("text", ["0.7,0.2", "1.2,-0.2", "0,0.5,0.5", "a,b", "0.5,0.2,0.2,0.1"])
def test_bad_fractions_are_a_clear_error(text):
    with pytest.raises(DtgError, match="split fractions"):
        SplitSpec.parse(text)


def test_parse_accepts_fewer_fractions_as_train_then_val():
    assert SplitSpec.parse("0.8,0.2").fractions == (0.8, 0.2, 0.0)
    assert SplitSpec.parse("1").fractions == (1.0, 0.0, 0.0)
    with pytest.raises(DtgError, match="split-by"):
        SplitSpec(by="random")


@settings(max_examples=60, deadline=None)
@given(fleet=fleet_st, size=st.integers(1, 20), stride=st.integers(1, 5), fractions=fractions_st)
def test_has_next_matches_a_brute_force_oracle(fleet, size, stride, fractions):
    spec = SplitSpec(fractions, "time")
    row0, lengths, vehicle = layout(fleet)
    starts, wveh, split, nxt, rows = run(fleet, size, stride, spec)
    seg_end = np.repeat(row0 + lengths, window_counts(lengths, size, stride))
    # block of a row = how many of its vehicle's block starts it has passed
    first = {v: row0[vehicle == v].min() for v in range(len(fleet)) if np.any(vehicle == v)}
    total = {v: lengths[vehicle == v].sum() for v in first}
    cum = np.cumsum(spec.fractions)[:2]

    def block(v, r):
        return int(sum(r >= first[v] + np.rint(total[v] * c) for c in cum))

    for w, s in enumerate(starts):
        v = int(wveh[w])
        want = (s + size < seg_end[w] and split[w] != PURGED and block(v, s + size) == split[w])
        assert bool(nxt[w]) == want


@pytest.mark.parametrize("n,fractions,want", [
    (10, (0.6, 0.2, 0.2), [6, 2, 2]),
    (4, (0.7, 0.15, 0.15), [2, 1, 1]),
    (2, (0.7, 0.15, 0.15), [1, 1, 0]),
    (1, (0.7, 0.15, 0.15), [1, 0, 0]),
    (5, (0.8, 0.2, 0.0), [4, 1, 0]),
    (7, (1.0, 0.0, 0.0), [7, 0, 0]),
])
def test_vehicle_split_gives_small_fleets_a_validation_vehicle(n, fractions, want):
    assert vehicle_counts(n, fractions).tolist() == want


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 200), fractions=fractions_st)
def test_vehicle_counts_add_up_and_stay_near_the_fractions(n, fractions):
    f = np.asarray(SplitSpec(fractions).fractions)
    counts = vehicle_counts(n, tuple(f))
    assert counts.sum() == n and np.all(counts >= 0)
    assert np.all(np.abs(counts[1:] - f[1:] * n) <= 1.0 + 1e-9)
    # train is within 1 too, but for the vehicles it gives val/test in small fleets (n=3: 1/1/1)
    lifted = sum(1 for k in (1, 2) if 0 < f[k] * n < 1 and counts[k] == 1)
    assert abs(counts[0] - f[0] * n) <= 1.0 + lifted + 1e-9
