"""Per-second flags to merged anomaly intervals."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.intervals import merge, runs


def test_runs_finds_start_and_inclusive_end():
    s, e = runs(np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=bool))
    assert s.tolist() == [1, 4, 7] and e.tolist() == [2, 4, 7]


def test_merge_splits_at_gaps_and_vehicle_changes_and_finds_the_peak():
    ts = np.array([0, 1, 2, 3, 10, 11, 0, 1]) * 1000
    groups = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    flags = np.array([1, 1, 0, 1, 1, 1, 1, 1], dtype=bool)
    scores = np.array([1, 3, 0, 2, 5, 5, 7, 9], dtype=float)
    iv = merge(flags, ts, scores, groups)
    assert iv.start.tolist() == [0, 3, 4, 6]
    assert iv.end.tolist() == [1, 3, 5, 7]
    assert iv.peak.tolist() == [1, 3, 4, 7]  # a tie goes to the first second


rows = st.lists(st.tuples(st.booleans(), st.integers(1, 3), st.integers(0, 2), st.floats(0, 10)),
                max_size=80)


@settings(deadline=None, max_examples=150)
@given(rows)
def test_merge_properties(data):
    flags = np.array([d[0] for d in data], dtype=bool)
    steps = np.array([d[1] for d in data], dtype=np.int64) * 1000
    ts = np.cumsum(steps)
    groups = np.cumsum(np.array([d[2] == 2 for d in data], dtype=np.int64))  # occasional vehicle change
    scores = np.array([d[3] for d in data])
    iv = merge(flags, ts, scores, groups, max_gap_ms=2000)
    covered = np.zeros(len(flags), dtype=int)
    for a, b, p in zip(iv.start, iv.end, iv.peak):
        assert a <= p <= b
        covered[a:b + 1] += 1
        assert flags[a:b + 1].all()  # only anomalous seconds inside
        assert (groups[a:b + 1] == groups[a]).all()
        assert (np.diff(ts[a:b + 1]) <= 2000).all()
        assert scores[p] == scores[a:b + 1].max()
        assert (scores[a:p] < scores[p]).all()
    assert np.array_equal(covered, flags.astype(int))  # every flagged second in exactly one interval
    for b, a in zip(iv.end[:-1], iv.start[1:]):  # neighbours could not have been merged
        assert a > b
        assert a > b + 1 or groups[a] != groups[b] or ts[a] - ts[b] > 2000
