"""Leakage-free train/validation/test splits of overlapping windows.

Neighbouring windows share 19 of 20 seconds, so a random split of windows puts the same seconds in
training and test. Instead each vehicle's rows (its seconds of data, in time order) are cut into
consecutive blocks by `fractions` (split by time), or whole vehicles are assigned to splits (split by
vehicle, shuffled under `seed`). A window is in a split only if all its rows lie in that split's block;
windows straddling a block boundary are purged (code -1), so no row belongs to windows of two splits.
For the `next` target the following window must lie in the same block too (see `assign_splits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtg.errors import DtgError

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


def assign_splits(starts: np.ndarray, size: int, seg_row0: np.ndarray, seg_len: np.ndarray,
                  seg_vehicle: np.ndarray, n_vehicles: int, spec: SplitSpec,
                  has_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(split (n,) int8 with -1 for purged windows, has_next restricted to the window's own block).

    `has_next` (bool, from `windowing.has_next`) is updated in place and returned.

    `starts` ascending (as `window_starts` gives them). Works on per-vehicle window ranges found by
    binary search, so the cost per window is one pass, whatever the number of vehicles.
    A window whose next window (rows s+1..s+size) would reach into the next block loses `has_next`:
    otherwise the target of a training window's last step would be a validation second.
    """
    starts = np.asarray(starts, dtype=np.int64)
    first, end = vehicle_rows(seg_row0, seg_len, seg_vehicle, n_vehicles)
    split = np.empty(starts.shape[0], dtype=np.int8)
    nxt = has_next  # updated in place: the caller hands it over
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
    last = (bounds - size).ravel()
    at = np.searchsorted(starts, last)
    hit = (at < starts.shape[0]) & (last >= np.repeat(first, 2))
    hit[hit] &= starts[at[hit]] == last[hit]
    nxt[at[hit]] = False
    return split, nxt
