"""Segments: maximal runs of one vehicle's records at 1-second spacing.

A DTG logs one record per second. Two consecutive records of a vehicle whose time difference rounds
to more than `max_gap` seconds end a segment; a shorter gap (2..max_gap seconds) is filled by linear
interpolation (hold-last for discrete signals such as the brake) and the filled rows are flagged; a
difference that rounds to 0 is a repeated second and the later row is dropped. A window never spans
two segments, so this is what makes windows honest about time.

Differences are rounded to whole seconds because DTG clocks carry hundredths that jitter around the
second; the rows keep their true millisecond timestamps. The work is proportional to the number of
rows only in a few vectorised passes (in chunks, so temporaries stay small); everything else is done
on the irregular steps, which are rare in real logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dtg.errors import DtgError

MS_PER_S = 1000
_CHUNK = 1 << 20
_STEP_CHUNK = 1 << 16  # timestamps per chunk when looking for irregular steps (temporaries stay in cache)
BLOCK = 1 << 14  # rows per block when interleaving columns (keeps the output block in cache)
_FOLD = 256  # rows folded into one line for the per-block min/max (long vectorised inner loops); a power of 2


class UnsortedError(ValueError):
    """The rows of a vehicle are not in ascending time order."""


@dataclass(frozen=True)
class Segmented:
    """Rows of all segments (in vehicle, time order) and the segment table over them.

    `values` holds the filled rows too; `filled_rows` (sorted) says which rows were interpolated.
    Segment `i` covers rows `row0[i] : row0[i] + length[i]` and belongs to vehicle `vehicle[i]`.
    `extrema` (None when rows were filled): column-wise min and max of row blocks of `values`, taken
    while each block was written (a NaN or inf shows there; a min-max scaler fits from them).
    """

    values: np.ndarray  # (rows, F) float32
    ts: np.ndarray  # (rows,) int64 epoch ms
    row0: np.ndarray  # (S,) int64
    length: np.ndarray  # (S,) int64
    vehicle: np.ndarray  # (S,) int32
    filled_rows: np.ndarray  # (k,) int64, sorted
    rows_duplicate: int
    extrema: "BlockExtrema | None" = None

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


@dataclass(frozen=True)
class BlockExtrema:
    """Column-wise min and max of consecutive row blocks: block k is rows `row0[k] : row0[k + 1]`
    (the last one ends at `rows`)."""

    row0: np.ndarray  # (B,) int64, ascending, row0[0] == 0
    lo: np.ndarray  # (B, F)
    hi: np.ndarray  # (B, F)
    rows: int

    @classmethod
    def empty(cls, n_features: int) -> "BlockExtrema":
        return cls(np.zeros(0, np.int64), np.empty((0, n_features), np.float32), np.empty((0, n_features), np.float32), 0)

    def finite(self) -> bool:
        """No NaN or infinite value in any block."""
        return bool(np.isfinite(self.lo).all() and np.isfinite(self.hi).all())

    def shifted(self, rows: int) -> "BlockExtrema":
        """The same blocks, `rows` further down (for appending sets of rows)."""
        return BlockExtrema(self.row0 + rows, self.lo, self.hi, self.rows + rows)

    @staticmethod
    def concat(parts: Sequence["BlockExtrema"], n_features: int) -> "BlockExtrema":
        """Blocks of row sets laid one after the other (each part already `shifted` to its place)."""
        if not parts:
            return BlockExtrema.empty(n_features)
        return BlockExtrema(np.concatenate([p.row0 for p in parts]), np.concatenate([p.lo for p in parts]),
                            np.concatenate([p.hi for p in parts]), parts[-1].rows)

    def cover(self, begins: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For disjoint ascending row ranges [begin, end): the (k, F) min and max of the k blocks that lie
        inside a range, and the ranges of the rows left over (parts of blocks, to be read row by row)."""
        begins, ends = np.asarray(begins, dtype=np.int64), np.asarray(ends, dtype=np.int64)
        bend = np.append(self.row0[1:], np.int64(self.rows))
        first = np.searchsorted(self.row0, begins, side="left")  # first block starting at or after begin
        last = np.searchsorted(bend, ends, side="right")  # the blocks before it end at or before end
        whole = last > first
        delta = np.zeros(len(self.row0) + 1, dtype=np.int64)
        np.add.at(delta, first[whole], 1)
        np.add.at(delta, last[whole], -1)
        inside = np.cumsum(delta)[:-1] > 0
        head_end = np.where(whole, self.row0[np.minimum(first, len(self.row0) - 1)], ends)
        tail_begin = np.where(whole, bend[np.maximum(last - 1, 0)], ends)
        rest_b = np.stack([begins, tail_begin], axis=1).ravel()
        rest_e = np.stack([head_end, ends], axis=1).ravel()
        keep = rest_e > rest_b
        return self.lo[inside], self.hi[inside], rest_b[keep], rest_e[keep]


def is_grouped_and_sorted(codes: np.ndarray, ts: np.ndarray) -> bool:
    """True when each vehicle's rows are contiguous (codes in first-appearance order) and ts ascend."""
    if codes.shape[0] < 2:
        return True
    step = np.diff(codes)
    if np.any((step != 0) & (step != 1)):
        return False
    return not np.any((step == 0) & (np.diff(ts) < 0))


def segment(codes: np.ndarray, ts: np.ndarray, columns: Sequence[np.ndarray], hold: Sequence[bool],
            max_gap: int = 1) -> Segmented:
    """`segment_runs` for rows given a vehicle code each (grouped by vehicle, codes 0, 1, 2, ...)."""
    codes = np.asarray(codes)
    if not is_grouped_and_sorted(codes, np.asarray(ts)):
        raise UnsortedError("rows must be grouped by vehicle and sorted by time")
    vstart = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1]))) if codes.size else np.zeros(0, np.int64)
    return segment_runs(vstart, ts, columns, hold, max_gap)


def segment_runs(vstart: np.ndarray, ts: np.ndarray, columns: Sequence[np.ndarray], hold: Sequence[bool],
                 max_gap: int = 1) -> Segmented:
    """Split rows into segments and fill gaps of up to `max_gap` seconds.

    `vstart` (V,) ascending: the first row of each vehicle (vehicle v owns rows vstart[v]:vstart[v+1]);
    `ts` (rows,) epoch ms, ascending within each vehicle (else `UnsortedError`); `columns` are the
    feature values (no NaN), one array per feature; `hold[j]` says feature j is discrete (filled
    with the last value, not interpolated). A repeated second keeps its first row.
    """
    if int(max_gap) != max_gap or max_gap < 1:
        raise DtgError(f"max gap must be a whole number of seconds >= 1, got {max_gap}", field="max_gap")
    if len(columns) != len(hold):
        raise ValueError("one hold flag per column")
    ts = np.asarray(ts, dtype=np.int64)
    vstart = np.asarray(vstart, dtype=np.int64)
    n, n_features = ts.shape[0], len(columns)
    if n == 0:
        return Segmented(np.empty((0, n_features), np.float32), ts, np.empty(0, np.int64), np.empty(0, np.int64),
                         np.empty(0, np.int32), np.empty(0, np.int64), 0, BlockExtrema.empty(n_features))

    # rows i >= 1 whose step from row i-1 is not ~1 s, and that do not start a vehicle
    irr = _irregular_steps(ts)
    irr = irr[~_isin_sorted(irr, vstart)]
    dd = ts[irr] - ts[irr - 1]
    if np.any(dd < 0):
        raise UnsortedError("rows of a vehicle must be in ascending time order")
    dup = irr[dd < MS_PER_S // 2]
    if dup.size:
        keep = np.ones(n, dtype=bool)
        keep[dup] = False
        vstart = vstart - np.searchsorted(dup, vstart)
        seg = segment_runs(vstart, ts[keep], [np.asarray(c)[keep] for c in columns], hold, max_gap)
        return Segmented(seg.values, seg.ts, seg.row0, seg.length, seg.vehicle, seg.filled_rows, int(dup.size),
                         seg.extrema)

    step = (dd + MS_PER_S // 2) // MS_PER_S  # >= 2 here
    fill_at = irr[step <= max_gap]  # rows with a filled gap just before them
    n_fill = step[step <= max_gap] - 1
    first = np.union1d(vstart, irr[step > max_gap])  # input rows that start a segment
    shift_after = np.cumsum(n_fill)  # rows inserted up to and including each fill position
    row0 = first + _shift_at(first, fill_at, shift_after)
    rows = n + int(shift_after[-1]) if n_fill.size else n
    length = np.diff(np.append(row0, rows))
    vehicle = (np.searchsorted(vstart, first, side="right") - 1).astype(np.int32)

    values = np.empty((rows, n_features), dtype=np.float32)
    if not n_fill.size:
        return Segmented(values, ts, row0, length, vehicle, np.empty(0, np.int64), 0, _interleave(values, columns))

    ts_out = np.empty(rows, dtype=np.int64)
    for lo in range(0, n, _CHUNK):  # scatter the real rows, a chunk at a time
        hi = min(n, lo + _CHUNK)
        pos = np.arange(lo, hi, dtype=np.int64)
        pos += _shift_at(pos, fill_at, shift_after)
        ts_out[pos] = ts[lo:hi]
        for j, col in enumerate(columns):
            values[pos, j] = col[lo:hi]
    # the inserted rows: k = 1..n_fill between rows a = b-1 and b
    b = np.repeat(fill_at, n_fill)
    k = np.arange(b.size, dtype=np.int64) - np.repeat(shift_after - n_fill, n_fill) + 1
    a = b - 1
    frac = k / (np.repeat(n_fill, n_fill) + 1.0)
    pos = a + _shift_at(a, fill_at, shift_after) + k
    ts_out[pos] = ts[a] + MS_PER_S * k
    for j, (col, discrete) in enumerate(zip(columns, hold)):
        lo_v = np.asarray(col)[a].astype(np.float64)
        values[pos, j] = lo_v if discrete else lo_v + (np.asarray(col)[b] - lo_v) * frac
    return Segmented(values, ts_out, row0, length, vehicle, pos, 0)


def _irregular_steps(ts: np.ndarray) -> np.ndarray:
    """Rows i >= 1 with ts[i] - ts[i-1] outside [500, 1500) ms, found chunk by chunk.

    One unsigned comparison per step: d - 500 as uint64 is >= 1000 exactly when d is outside the range.
    """
    out = [np.empty(0, np.int64)]
    n = ts.shape[0]
    d = np.empty(min(n, _STEP_CHUNK), dtype=np.int64)
    for lo in range(1, n, _STEP_CHUNK):
        hi = min(n, lo + _STEP_CHUNK)
        step = d[:hi - lo]
        np.subtract(ts[lo:hi], ts[lo - 1:hi - 1], out=step)
        step -= MS_PER_S // 2
        out.append(np.flatnonzero(step.view(np.uint64) >= MS_PER_S) + lo)
    return np.concatenate(out)


def _isin_sorted(x: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    if sorted_values.size == 0:
        return np.zeros(x.shape, dtype=bool)
    i = np.minimum(np.searchsorted(sorted_values, x), sorted_values.size - 1)
    return sorted_values[i] == x


def _shift_at(rows: np.ndarray, fill_at: np.ndarray, shift_after: np.ndarray) -> np.ndarray:
    """Rows inserted before each of `rows` (inserts sit just before their fill position)."""
    if fill_at.size == 0:
        return np.zeros(rows.shape, dtype=np.int64)
    i = np.searchsorted(fill_at, rows, side="right")
    return np.concatenate(([0], shift_after))[i]


def _interleave(out: np.ndarray, columns: Sequence[np.ndarray]) -> BlockExtrema:
    """out[:, j] = columns[j], block by block so each output block is written while in cache; returns
    the column-wise min and max of each block, reduced while the block is there."""
    n, f = out.shape
    blocks = -(-n // BLOCK)
    lo_parts = np.empty((blocks, _FOLD * f), dtype=out.dtype)
    hi_parts = np.empty((blocks, _FOLD * f), dtype=out.dtype)
    for k in range(blocks):
        block = out[k * BLOCK:(k + 1) * BLOCK]
        for j, col in enumerate(columns):
            block[:, j] = col[k * BLOCK:(k + 1) * BLOCK]
        if block.shape[0] == BLOCK:
            flat = block.reshape(-1, _FOLD * f)
            np.minimum.reduce(flat, axis=0, out=lo_parts[k])
            np.maximum.reduce(flat, axis=0, out=hi_parts[k])
        else:  # the last, shorter block
            lo_parts[k] = np.tile(block.min(axis=0), _FOLD)
            hi_parts[k] = np.tile(block.max(axis=0), _FOLD)
    return BlockExtrema(np.arange(blocks, dtype=np.int64) * BLOCK, _halve(lo_parts, np.minimum, f),
                        _halve(hi_parts, np.maximum, f), n)


def _halve(lines: np.ndarray, ufunc: np.ufunc, f: int) -> np.ndarray:
    """(B, _FOLD * F) folded lines to (B, F): `ufunc` of the two halves until one row's width is left
    (each step pairs rows r and r + half of the fold; long inner loops, unlike a reduce over axis 1)."""
    while lines.shape[1] > f:
        half = lines.shape[1] // 2
        lines = ufunc(lines[:, :half], lines[:, half:])
    return lines
