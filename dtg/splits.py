"""Leakage-free train/validation/test splits of overlapping windows.

Neighbouring windows share 19 of 20 seconds, so a random split of windows puts the same seconds in
training and test. Instead each vehicle's rows (its seconds of data, in time order) are cut into
consecutive blocks by `fractions` (split by time), or whole vehicles are assigned to splits (split by
vehicle, shuffled under `seed`). A window is in a split only if all its rows lie in that split's block;
windows straddling a block boundary are purged (code -1), so no row belongs to windows of two splits.
For the `next` target the following window must lie in the same block too (see `split_has_next`).
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


def vehicle_blocks(n_vehicles: int, spec: SplitSpec) -> np.ndarray:
    """(n_vehicles,) int8: the split of each vehicle when splitting by vehicle (seeded shuffle)."""
    order = np.random.default_rng(spec.seed).permutation(n_vehicles)
    cuts = _cuts(np.array([n_vehicles]), spec.fractions)[0]
    block = np.empty(n_vehicles, dtype=np.int8)
    block[order] = np.searchsorted(cuts, np.arange(n_vehicles), side="right").astype(np.int8)
    return block


def time_bounds(seg_row0: np.ndarray, seg_len: np.ndarray, seg_vehicle: np.ndarray, n_vehicles: int,
                spec: SplitSpec) -> np.ndarray:
    """(n_vehicles, 2) int64 row indices where each vehicle's val and test blocks begin."""
    seg_row0 = np.asarray(seg_row0, dtype=np.int64)
    first = np.full(n_vehicles, np.iinfo(np.int64).max, dtype=np.int64)
    end = np.zeros(n_vehicles, dtype=np.int64)
    np.minimum.at(first, seg_vehicle, seg_row0)
    np.maximum.at(end, seg_vehicle, seg_row0 + np.asarray(seg_len, dtype=np.int64))
    rows = np.where(end > 0, end - np.minimum(first, end), 0)
    return np.minimum(first, end)[:, None] + _cuts(rows, spec.fractions)


def _block_of(rows: np.ndarray, window_vehicle: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    block = np.zeros(rows.shape[0], dtype=np.int8)
    for k in range(bounds.shape[1]):
        block += rows >= bounds[window_vehicle, k]
    return block


def assign_splits(starts: np.ndarray, window_vehicle: np.ndarray, size: int, seg_row0: np.ndarray,
                  seg_len: np.ndarray, seg_vehicle: np.ndarray, n_vehicles: int,
                  spec: SplitSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """(split (n,) int8 with -1 for purged windows, time bounds or None when splitting by vehicle)."""
    if spec.by == "vehicle":
        return vehicle_blocks(n_vehicles, spec)[window_vehicle], None
    bounds = time_bounds(seg_row0, seg_len, seg_vehicle, n_vehicles, spec)
    split = _block_of(starts, window_vehicle, bounds)
    split[split != _block_of(starts + (size - 1), window_vehicle, bounds)] = PURGED
    return split, bounds


def split_has_next(has_next: np.ndarray, starts: np.ndarray, window_vehicle: np.ndarray, size: int,
                   split: np.ndarray, bounds: np.ndarray | None) -> np.ndarray:
    """`has_next` restricted to windows whose next window (rows s+1..s+size) stays in their block.

    Without this the target of a training window's last step would be a validation second.
    """
    out = has_next & (split != PURGED)
    if bounds is not None:
        out &= _block_of(starts + size, window_vehicle, bounds) == split
    return out
