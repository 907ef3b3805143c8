"""Windows as views: start indices into a (rows, F) array, never an (n, size, F) copy of everything.

A segment of `length` rows yields `max(0, floor((length - size) / stride) + 1)` windows; window `w`
covers rows `starts[w] : starts[w] + size`. `window_view` exposes every possible window of the row
array as a zero-copy view, so a batch is one fancy index: `window_view(values, size)[starts[batch]]`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def window_counts(lengths: np.ndarray, size: int, stride: int = 1) -> np.ndarray:
    """(S,) int64: windows per segment, `max(0, floor((len - size) / stride) + 1)`."""
    _check(size, stride)
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.maximum(0, (lengths - size) // stride + 1)


def window_starts(row0: np.ndarray, lengths: np.ndarray, size: int, stride: int = 1) -> np.ndarray:
    """(n,) int64: the first row of every window, segment by segment, ascending.

    Built in one array: steps of `stride`, a jump at each segment's first window, then a cumsum.
    """
    counts = window_counts(lengths, size, stride)
    used = counts > 0
    first_row = np.asarray(row0, dtype=np.int64)[used]
    counts = counts[used]
    starts = np.full(int(counts.sum()), stride, dtype=np.int64)
    if starts.size == 0:
        return starts
    first_win = np.cumsum(counts) - counts
    last_start = first_row + (counts - 1) * stride
    starts[first_win[0]] = first_row[0]
    starts[first_win[1:]] = first_row[1:] - last_start[:-1]
    np.cumsum(starts, out=starts)
    return starts


def window_segments(lengths: np.ndarray, size: int, stride: int = 1) -> np.ndarray:
    """(n,) int32: the segment of every window, in the order of `window_starts`."""
    counts = window_counts(lengths, size, stride)
    return np.repeat(np.arange(counts.shape[0], dtype=np.int32), counts)


def has_next(row0: np.ndarray, lengths: np.ndarray, size: int, stride: int = 1) -> np.ndarray:
    """(n,) bool: the window one second later (rows s+1 .. s+size) lies in the same segment.

    Only a segment's last window can lack one: the one ending on the segment's last row.
    """
    counts = window_counts(lengths, size, stride)
    out = np.ones(int(counts.sum()), dtype=bool)
    lengths = np.asarray(lengths, dtype=np.int64)
    flush = (counts > 0) & ((lengths - size) % stride == 0)
    out[(np.cumsum(counts) - 1)[flush]] = False
    return out


def window_view(values: np.ndarray, size: int) -> np.ndarray:
    """Zero-copy (rows - size + 1, size, F) view of every run of `size` consecutive rows."""
    _check(size, 1)
    if values.shape[0] < size:
        return np.empty((0, size) + values.shape[1:], dtype=values.dtype)
    return np.moveaxis(sliding_window_view(values, size, axis=0), -1, 1)


def gather(values: np.ndarray, starts: np.ndarray, size: int) -> np.ndarray:
    """(len(starts), size, F) copy of the windows starting at `starts`."""
    starts = np.asarray(starts, dtype=np.int64)
    if starts.size == 0:
        return np.empty((0, size) + values.shape[1:], dtype=values.dtype)
    return window_view(values, size)[starts]


def _check(size: int, stride: int) -> None:
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be >= 1 (size={size}, stride={stride})")
