"""Windows as views: start indices into a (rows, F) array, never an (n, size, F) copy of everything.

A segment of `length` rows yields `max(0, floor((length - size) / stride) + 1)` windows; window `w`
covers rows `starts[w] : starts[w] + size`. Windows are numbered segment by segment, so a
`WindowIndex` (per segment: first row and first window number) maps any window number to its first
row with one binary search; no per-window array is needed. `window_view` exposes every possible
window of the row array as a zero-copy view, so a batch is one fancy index:
`window_view(values, size)[index.start(batch)]`.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class WindowIndex:
    """Window numbers <-> first rows, from the segment table alone (O(segments) memory).

    Segment `k` (rows `row0[k] : row0[k] + lengths[k]`, ascending) holds windows
    `offsets[k] : offsets[k + 1]`, which start at rows `row0[k] + i * stride`.
    """

    row0: np.ndarray  # (S,) int64
    lengths: np.ndarray  # (S,) int64
    offsets: np.ndarray  # (S + 1,) int64, cumulative window counts
    size: int
    stride: int

    @classmethod
    def build(cls, row0: np.ndarray, lengths: np.ndarray, size: int, stride: int = 1) -> "WindowIndex":
        lengths = np.asarray(lengths, dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(window_counts(lengths, size, stride)))).astype(np.int64)
        return cls(np.asarray(row0, dtype=np.int64), lengths, offsets, int(size), int(stride))

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    def segment_of(self, w: np.ndarray) -> np.ndarray:
        """The segment holding each window number."""
        return np.searchsorted(self.offsets[:-1], np.asarray(w, dtype=np.int64), side="right") - 1

    def start(self, w: np.ndarray) -> np.ndarray:
        """int64 first row of each window number in `w` (0 <= w < n): one binary search per window."""
        w = np.asarray(w, dtype=np.int64)
        k = self.segment_of(w)
        return self.row0[k] + (w - self.offsets[k]) * self.stride

    def before(self, rows: np.ndarray) -> np.ndarray:
        """int64: how many windows start before each row (what `searchsorted(starts, rows)` gives)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.row0.size == 0:
            return np.zeros(rows.shape, dtype=np.int64)
        k = np.searchsorted(self.row0, rows, side="right") - 1
        kk = np.maximum(k, 0)
        inside = np.clip(-((self.row0[kk] - rows) // self.stride), 0, self.offsets[kk + 1] - self.offsets[kk])
        return np.where(k < 0, 0, self.offsets[kk] + inside)

    def starts(self) -> np.ndarray:
        """(n,) int64 first row of every window, materialised for code that wants them all."""
        return window_starts(self.row0, self.lengths, self.size, self.stride)

    def last_without_next(self) -> np.ndarray:
        """Window numbers whose next window (rows s+1 .. s+size) leaves the segment: only a segment's
        last window can, when it ends on the segment's last row."""
        flush = (self.offsets[1:] > self.offsets[:-1]) & ((self.lengths - self.size) % self.stride == 0)
        return self.offsets[1:][flush] - 1


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
