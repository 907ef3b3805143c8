"""Segments: maximal runs of one vehicle's records at 1-second spacing.

A DTG logs one record per second. Two consecutive records of a vehicle that lie more than `max_gap`
seconds apart end a segment; a shorter gap (2..max_gap seconds) is filled by linear interpolation
(hold-last for discrete signals such as the brake) and the filled rows are flagged. A window never
spans two segments, so this is what makes windows honest about time.

Timestamps are compared in whole seconds (rounded to the nearest second), because DTG clocks carry
hundredths that jitter around the second; the rows keep their true millisecond timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dtg.errors import DtgError

MS_PER_S = 1000


@dataclass(frozen=True)
class Segmented:
    """Rows of all segments (in vehicle, time order) and the segment table over them.

    `values` holds the filled rows too; `filled_rows` (sorted) says which rows were interpolated.
    Segment `i` covers rows `row0[i] : row0[i] + length[i]` and belongs to vehicle `vehicle[i]`.
    """

    values: np.ndarray  # (rows, F) float32
    ts: np.ndarray  # (rows,) int64 epoch ms
    row0: np.ndarray  # (S,) int64
    length: np.ndarray  # (S,) int64
    vehicle: np.ndarray  # (S,) int32
    filled_rows: np.ndarray  # (k,) int64, sorted
    rows_duplicate: int

    @property
    def rows(self) -> int:
        return int(self.ts.shape[0])

    def segment_id(self) -> np.ndarray:
        """(rows,) int32: the segment each row belongs to."""
        return np.repeat(np.arange(self.length.shape[0], dtype=np.int32), self.length)

    def vehicle_idx(self) -> np.ndarray:
        """(rows,) int32: the vehicle index of each row."""
        return np.repeat(self.vehicle, self.length)

    def filled(self) -> np.ndarray:
        """(rows,) bool: True where the row was interpolated into a short gap."""
        mask = np.zeros(self.rows, dtype=bool)
        mask[self.filled_rows] = True
        return mask


def is_grouped_and_sorted(codes: np.ndarray, ts: np.ndarray) -> bool:
    """True when each vehicle's rows are contiguous (codes in first-appearance order) and ts ascend.

    `codes` must come from a first-appearance encoding (e.g. Arrow's dictionary_encode): then rows are
    grouped by vehicle exactly when every code step is 0 or +1.
    """
    if codes.shape[0] < 2:
        return True
    step = np.diff(codes)
    if np.any((step != 0) & (step != 1)):
        return False
    return not np.any((step == 0) & (np.diff(ts) < 0))


def segment(
    codes: np.ndarray,
    ts: np.ndarray,
    columns: Sequence[np.ndarray],
    hold: Sequence[bool],
    max_gap: int = 1,
) -> Segmented:
    """Split rows into segments and fill gaps of up to `max_gap` seconds.

    `codes` (rows,) vehicle code per row and `ts` (rows,) epoch ms must be grouped by vehicle and
    ascending in time (see `is_grouped_and_sorted`); `columns` are the feature values (no NaN), one
    array per feature; `hold[j]` says feature j is discrete (filled with the last value, not
    interpolated). A second that occurs twice for one vehicle keeps its first row.
    """
    if int(max_gap) != max_gap or max_gap < 1:
        raise DtgError(f"max gap must be a whole number of seconds >= 1, got {max_gap}", field="max_gap")
    if len(columns) != len(hold):
        raise ValueError("one hold flag per column")
    codes = np.asarray(codes)
    ts = np.asarray(ts, dtype=np.int64)
    n_features = len(columns)
    if not is_grouped_and_sorted(codes, ts):
        raise ValueError("rows must be grouped by vehicle and sorted by time")

    sec = np.floor_divide(ts + MS_PER_S // 2, MS_PER_S)
    same = codes[1:] == codes[:-1]
    dup = same & (sec[1:] == sec[:-1])
    rows_duplicate = int(dup.sum())
    if rows_duplicate:
        keep = np.concatenate(([True], ~dup))
        codes, ts, sec = codes[keep], ts[keep], sec[keep]
        columns = [np.asarray(c)[keep] for c in columns]
        same = codes[1:] == codes[:-1]
    n = ts.shape[0]
    if n == 0:
        return Segmented(np.empty((0, n_features), np.float32), np.empty(0, np.int64), np.empty(0, np.int64),
                         np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64), rows_duplicate)

    step = np.diff(sec)
    del sec
    brk = ~same | (step > max_gap)
    del same
    ins = np.zeros(n, dtype=np.int64)  # seconds inserted before each row
    np.subtract(step, 1, out=ins[1:], where=~brk)
    del step
    first = np.flatnonzero(np.concatenate(([True], brk)))
    del brk
    total_ins = int(ins.sum())
    rows = n + total_ins

    values = np.empty((rows, n_features), dtype=np.float32)
    if total_ins == 0:
        for j, col in enumerate(columns):
            values[:, j] = col
        return Segmented(values, np.ascontiguousarray(ts), first.astype(np.int64),
                         np.diff(np.append(first, n)).astype(np.int64), codes[first].astype(np.int32),
                         np.empty(0, np.int64), rows_duplicate)

    out_pos = np.arange(n, dtype=np.int64)
    out_pos += np.cumsum(ins)
    after = np.flatnonzero(ins)  # rows with a gap just before them
    cnt = ins[after]
    del ins
    b = np.repeat(after, cnt)
    k = np.arange(total_ins, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt) + 1
    a = b - 1
    frac = k / (np.repeat(cnt, cnt) + 1.0)
    pos = out_pos[a] + k

    ts_out = np.empty(rows, dtype=np.int64)
    ts_out[out_pos] = ts
    ts_out[pos] = ts[a] + MS_PER_S * k
    for j, (col, discrete) in enumerate(zip(columns, hold)):
        col = np.asarray(col)
        values[out_pos, j] = col
        lo = col[a].astype(np.float64)
        values[pos, j] = lo if discrete else lo + (col[b] - lo) * frac
    row0 = out_pos[first]
    return Segmented(values, ts_out, row0, np.diff(np.append(row0, rows)), codes[first].astype(np.int32),
                     pos, rows_duplicate)
