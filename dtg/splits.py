"""Leakage-free train/validation/test splits of overlapping windows.

Neighbouring windows share 19 of 20 seconds, so a random split of windows puts the same seconds in
training and test. Instead each vehicle's rows (its seconds of data, in time order) are cut into
consecutive blocks by `fractions` (split by time), or whole vehicles are assigned to splits (split by
vehicle, shuffled under `seed`). A window is in a split only if all its rows lie in that split's block;
windows straddling a block boundary are purged (code -1), so no row belongs to windows of two splits.
For the `next` target the following window must lie in the same block too (see `assign_splits`).
Splits are kept as runs of consecutive window numbers (`WindowRuns`), never one code per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtg.errors import DtgError
from dtg.windowing import WindowIndex

TRAIN, VAL, TEST, ALL, PURGED = 0, 1, 2, 3, -1
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
CODES: dict[str, int] = {"train": TRAIN, "val": VAL, "test": TEST, "all": ALL}
SPLIT_BY: tuple[str, ...] = ("time", "vehicle")


@dataclass(frozen=True)
class SplitSpec:
    """How to split: `fractions` of (train, val, test), `by` time blocks or whole vehicles, `seed`."""

    fractions: tuple[float, ...] = (0.7, 0.15, 0.15)
    by: str = "time"
    seed: int = 0

    def __post_init__(self) -> None:
        f = tuple(float(x) for x in self.fractions)
        if 1 <= len(f) < 3:
            f = f + (0.0,) * (3 - len(f))
        if len(f) != 3 or any(not np.isfinite(x) or x < 0 for x in f) or f[0] <= 0 or abs(sum(f) - 1.0) > 1e-6:
            raise DtgError(f"split fractions must be 1 to 3 non-negative numbers summing to 1 with train > 0, "
                           f"got {','.join(str(x) for x in self.fractions)}", field="split")
        if self.by not in SPLIT_BY:
            raise DtgError(f"unknown split-by '{self.by}' (valid: {', '.join(SPLIT_BY)})", field="split_by")
        object.__setattr__(self, "fractions", f)

    @classmethod
    def parse(cls, text: str, by: str = "time", seed: int = 0) -> "SplitSpec":
        """From the command line form `0.7,0.15,0.15`."""
        try:
            fractions = tuple(float(x) for x in text.split(","))
        except ValueError:
            raise DtgError(f"split fractions must be numbers like 0.7,0.15,0.15, got '{text}'", field="split") from None
        return cls(fractions, by, seed)

    def to_dict(self) -> dict:
        return {"fractions": list(self.fractions), "by": self.by, "seed": self.seed}


def _cuts(n: np.ndarray, fractions: tuple[float, ...]) -> np.ndarray:
    """(len(n), 2) int64: block boundaries (end of train, end of val) as offsets into each of n items."""
    cum = np.cumsum(fractions)[:2]
    return np.rint(np.asarray(n, dtype=np.float64)[:, None] * cum[None, :]).astype(np.int64)


def vehicle_counts(n_vehicles: int, fractions: tuple[float, ...]) -> np.ndarray:
    """(3,) vehicles per split: largest-remainder rounding, then one vehicle for val/test (when their
    fraction is positive) taken from train while train keeps at least one."""
    f = np.asarray(fractions, dtype=np.float64)
    counts = np.floor(f * n_vehicles).astype(np.int64)
    order = np.argsort(-(f * n_vehicles - counts), kind="stable")
    counts[order[: n_vehicles - int(counts.sum())]] += 1
    for k in (1, 2):
        if f[k] > 0 and counts[k] == 0 and counts[0] > 1:
            counts[0] -= 1
            counts[k] = 1
    return counts


def vehicle_blocks(n_vehicles: int, spec: SplitSpec) -> np.ndarray:
    """(n_vehicles,) int8: the split of each vehicle when splitting by vehicle (seeded shuffle)."""
    order = np.random.default_rng(spec.seed).permutation(n_vehicles)
    block = np.empty(n_vehicles, dtype=np.int8)
    block[order] = np.repeat(np.arange(3, dtype=np.int8), vehicle_counts(n_vehicles, spec.fractions))
    return block


def vehicle_rows(seg_row0: np.ndarray, seg_len: np.ndarray, seg_vehicle: np.ndarray,
                 n_vehicles: int) -> tuple[np.ndarray, np.ndarray]:
    """(first row, end row) of each vehicle (0, 0 for a vehicle without segments)."""
    seg_row0 = np.asarray(seg_row0, dtype=np.int64)
    first = np.full(n_vehicles, np.iinfo(np.int64).max, dtype=np.int64)
    end = np.zeros(n_vehicles, dtype=np.int64)
    np.minimum.at(first, seg_vehicle, seg_row0)
    np.maximum.at(end, seg_vehicle, seg_row0 + np.asarray(seg_len, dtype=np.int64))
    return np.minimum(first, end), end


def time_bounds(first: np.ndarray, end: np.ndarray, spec: SplitSpec) -> np.ndarray:
    """(V, 2) int64 row indices where each vehicle's val and test blocks begin."""
    return first[:, None] + _cuts(end - first, spec.fractions)


@dataclass(frozen=True)
class WindowRuns:
    """Split code and has_next of every window as runs of consecutive window numbers.

    Run `r` covers windows `lo[r] : lo[r + 1]` (the last one ends at `n`); runs never cross a segment,
    so there are O(segments + vehicles) of them, whatever the number of windows.
    """

    lo: np.ndarray  # (R,) int64, ascending, lo[0] == 0
    code: np.ndarray  # (R,) int8 split code (TRAIN, VAL, TEST, ALL or PURGED)
    nxt: np.ndarray  # (R,) bool has_next
    n: int

    @property
    def hi(self) -> np.ndarray:
        return np.append(self.lo[1:], np.int64(self.n)) if self.lo.size else self.lo

    @property
    def lengths(self) -> np.ndarray:
        return self.hi - self.lo

    def split(self) -> np.ndarray:
        """(n,) int8 split code of every window."""
        return np.repeat(self.code, self.lengths)

    def has_next(self) -> np.ndarray:
        """(n,) bool has_next of every window."""
        return np.repeat(self.nxt, self.lengths)

    def select(self, mask: np.ndarray) -> np.ndarray:
        """Ascending window numbers of the runs where `mask` (R,) is True."""
        lo, hi = self.lo[mask], self.hi[mask]
        return ranges(lo, hi)

    def to_array(self) -> np.ndarray:
        """(R, 3) int64 [lo, code, nxt], the stored form (see `from_array`)."""
        return np.stack([self.lo, self.code.astype(np.int64), self.nxt.astype(np.int64)], axis=1)

    @classmethod
    def from_array(cls, arr: np.ndarray, n: int) -> "WindowRuns":
        arr = np.asarray(arr, dtype=np.int64).reshape(-1, 3)
        return cls(arr[:, 0].copy(), arr[:, 1].astype(np.int8), arr[:, 2].astype(bool), int(n))


def ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The concatenation of arange(lo[i], hi[i]) (int64, one pass over the output)."""
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    keep = hi > lo
    lo, hi = lo[keep], hi[keep]
    out = np.ones(int((hi - lo).sum()), dtype=np.int64)
    if out.size == 0:
        return out
    first = np.cumsum(hi - lo) - (hi - lo)
    out[0] = lo[0]
    out[first[1:]] = lo[1:] - hi[:-1] + 1
    return np.cumsum(out, out=out)


def _runs(index: WindowIndex, blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
          no_next: list[tuple[np.ndarray, np.ndarray]], purged: list[tuple[np.ndarray, np.ndarray]]) -> WindowRuns:
    """Runs from window ranges: `blocks` (lo, hi, code) give every window its split code; `purged`
    ranges become PURGED without a next window, `no_next` ranges only lose has_next."""
    n = index.n
    if n == 0:
        return WindowRuns(np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, bool), 0)
    cat = lambda parts, i: np.concatenate([np.zeros(0, np.int64)] + [np.asarray(p[i], np.int64).ravel() for p in parts])  # noqa: E731
    b_lo, b_hi, b_code = cat(blocks, 0), cat(blocks, 1), cat(blocks, 2)
    p_lo, p_hi = cat(purged, 0), cat(purged, 1)
    x_lo, x_hi = np.concatenate([cat(no_next, 0), p_lo]), np.concatenate([cat(no_next, 1), p_hi])
    edges = np.unique(np.concatenate([index.offsets, b_lo, b_hi, p_lo, p_hi, x_lo, x_hi]))
    edges = edges[(edges >= 0) & (edges <= n)]
    lo = edges[:-1]
    used = b_hi > b_lo
    order = np.argsort(b_lo[used], kind="stable")
    code = b_code[used][order][np.searchsorted(b_lo[used][order], lo, side="right") - 1]

    def covered(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = a[a < b], b[a < b]
        delta = np.zeros(edges.size, dtype=np.int64)
        np.add.at(delta, np.searchsorted(edges, a), 1)
        np.add.at(delta, np.searchsorted(edges, b), -1)
        return np.cumsum(delta)[:-1] > 0

    code = np.where(covered(p_lo, p_hi), PURGED, code).astype(np.int8)
    return WindowRuns(lo, code, ~covered(x_lo, x_hi), n)


def scoring_runs(index: WindowIndex) -> WindowRuns:
    """Every window in split ALL; has_next from the segments alone."""
    last = index.last_without_next()
    return _runs(index, [(np.zeros(1), np.full(1, index.n), np.full(1, ALL))], [(last, last + 1)], [])


def assign_splits(index: WindowIndex, seg_vehicle: np.ndarray, n_vehicles: int, spec: SplitSpec) -> WindowRuns:
    """Split code (-1 for purged windows) and has_next, restricted to the window's own block, as runs.

    Time split: the windows starting in each vehicle's train, val and test row blocks get that block's
    code; those that straddle a block boundary are purged (and lose has_next). A window whose next
    window (rows s+1..s+size) would reach into the next block loses `has_next` too: otherwise the
    target of a training window's last step would be a validation second. Vehicle split: all windows
    of a vehicle get its block. The work is O(segments + vehicles): window ranges come from binary
    searches over the segment table (`WindowIndex.before`).
    """
    size = index.size
    first, end = vehicle_rows(index.row0, index.lengths, seg_vehicle, n_vehicles)
    last = index.last_without_next()
    no_next = [(last, last + 1)]
    if spec.by == "vehicle":
        blocks = vehicle_blocks(n_vehicles, spec)
        return _runs(index, [(index.before(first), index.before(end), blocks)], no_next, [])
    bounds = time_bounds(first, end, spec)
    edges = index.before(np.concatenate([first[:, None], bounds, end[:, None]], axis=1))  # (V, 4)
    blocks = [(edges[:, k], edges[:, k + 1], np.full(n_vehicles, k)) for k in range(3)]
    purged = [(index.before(np.maximum(bounds - size + 1, first[:, None])), edges[:, 1:3])]
    # the window ending on a block's last row (start bound - size) has its target in the next block
    r = (bounds - size).ravel()
    w = index.before(r)
    hit = (w < index.n) & (r >= np.repeat(first, 2))
    hit[hit] &= index.start(w[hit]) == r[hit]
    no_next.append((w[hit], w[hit] + 1))
    return _runs(index, blocks, no_next, purged)
