"""Per-second anomaly flags to intervals: consecutive anomalous seconds merged into one interval.

Two flagged rows belong to the same interval when they are neighbours in the (vehicle, ts)-sorted
arrays, belong to the same group (vehicle) and are at most `max_gap_ms` apart. Everything is
vectorised over rows; the result is index arrays into the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end index (inclusive) of each run of consecutive True values in `flags`."""
    f = np.asarray(flags, dtype=bool)
    edges = np.diff(np.concatenate(([False], f, [False])).astype(np.int8))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


@dataclass(frozen=True)
class Intervals:
    """Index arrays (into the per-second arrays) describing merged anomalous intervals."""

    start: np.ndarray  # first row of each interval
    end: np.ndarray  # last row of each interval (inclusive)
    peak: np.ndarray  # row of the highest score inside each interval (first one on ties)

    def __len__(self) -> int:
        return len(self.start)


def merge(
    flags: np.ndarray,
    ts: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray | None = None,
    max_gap_ms: int = 1000,
) -> Intervals:
    """Merge flagged rows into intervals.

    `ts` is int64 epoch milliseconds sorted within each group; `groups` (e.g. vehicle index) splits
    intervals where it changes; a step longer than `max_gap_ms` (a gap in the log) also splits.
    """
    flags = np.asarray(flags, dtype=bool)
    ts = np.asarray(ts, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    n = len(flags)
    if not (len(ts) == n == len(scores)) or (groups is not None and len(groups) != n):
        raise ValueError("flags, ts, scores and groups must have the same length")
    joined = np.zeros(n, dtype=bool)  # joined[i]: row i continues the interval of row i-1
    if n > 1:
        cont = flags[1:] & flags[:-1] & (np.diff(ts) <= max_gap_ms)
        if groups is not None:
            g = np.asarray(groups)
            cont &= g[1:] == g[:-1]
        joined[1:] = cont
    start = np.flatnonzero(flags & ~joined)
    ends_mask = flags & ~np.concatenate((joined[1:], [False]))
    end = np.flatnonzero(ends_mask)
    peak = _argmax_per_interval(scores, start, end)
    return Intervals(start=start, end=end, peak=peak)


def _argmax_per_interval(scores: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    if len(start) == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = end - start + 1
    ids = np.repeat(np.arange(len(start)), lengths)
    offsets = np.cumsum(lengths) - lengths
    rows = np.arange(lengths.sum()) - np.repeat(offsets, lengths) + np.repeat(start, lengths)
    vals = np.nan_to_num(scores[rows], nan=-np.inf)
    order = np.lexsort((rows, -vals, ids))
    return rows[order[offsets]]
