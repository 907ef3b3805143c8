"""The window set: rows of all segments, the segment table, splits and the scaler, as one object.

`build_window_set(table, ...)` turns a canonical table (the lake) into a `WindowSet`. Memory stays
O(rows): the set keeps the (rows, F) feature array once; windows are numbered segment by segment and
located through the segment table (`WindowIndex`), splits and has_next are runs of window numbers
(`WindowRuns`), so nothing is stored per window. A window is a view `values[s : s + size]`.
Training reads mini-batches with `batches()`, which scales the rows once per set and builds each
batch with one binary search (window numbers to first rows) and one fancy index over a
sliding-window view.

A saved set is a folder of `.npy` arrays plus `meta.json` (written last, the whole folder swapped in
atomically); `WindowSet.load` memory-maps the arrays, so nothing is read until it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dtg import schema
from dtg.atomic import TMP_PREFIX, _fsync_dir, write_json
from dtg.errors import DtgError
from dtg.features import DERIVED, derive, source_columns
from dtg.scaling import SCALERS, MinMaxScaler, Scaler, column_extrema, make_scaler, scaler_from_dict
from dtg.segments import BlockExtrema, Segmented, UnsortedError, segment_runs
from dtg.splits import (ALL, CODES, PURGED, SPLIT_NAMES, TRAIN, SplitSpec, WindowRuns, assign_splits, ranges,
                        scoring_runs)
from dtg.windowing import WindowIndex, gather, window_view

DEFAULT_FEATURES: tuple[str, ...] = ("speed", "rpm", "brake", "lat")
HOLD_FEATURES: frozenset[str] = frozenset({"brake"})
"""Discrete signals: a filled second repeats the last value instead of interpolating."""
TARGETS: tuple[str, ...] = ("reconstruct", "next")
FORMAT_VERSION = 2
"""Storage format of a saved set (2: segment table and split runs instead of per-window arrays)."""
_WINDOWS_VERSION = 1
"""What the windows are (part of the fingerprint); unchanged by storage-only format changes."""
_ROW_ARRAYS = ("values", "ts")
_CHUNK_ROWS = 1 << 20


def check_features(features: Sequence[str] | str) -> tuple[str, ...]:
    """Validated feature names (numeric signal columns of the canonical schema, or derived features of
    `dtg.features`), in the order given."""
    if isinstance(features, str):
        features = [f.strip() for f in features.split(",") if f.strip()]
    features = tuple(features)
    valid = ", ".join((*schema.SIGNALS, *DERIVED))
    if not features:
        raise DtgError(f"no features given (valid: {valid})", field="features")
    for name in features:
        if name not in schema.SIGNALS and name not in DERIVED:
            raise DtgError(f"unknown feature '{name}' (valid: {valid})", field="features")
    if len(set(features)) != len(features):
        raise DtgError(f"feature listed twice in {','.join(features)}", field="features")
    return features


@dataclass(eq=False)
class WindowSet:
    """Windows of `size` rows over the segment rows; see the module docstring.

    Per row: `values` (raw float32), `ts` (epoch ms), `vehicle_idx` (into `vehicles`), `segment_id`,
    `filled`. Per window, derived on demand from the segment table and `runs`: `starts` (first row),
    `split` (0 train, 1 val, 2 test, 3 all, -1 purged), `has_next` (the window one second later
    exists, in the same segment and split block).
    """

    values: np.ndarray
    ts: np.ndarray
    vehicles: list[str]
    seg_row0: np.ndarray
    seg_len: np.ndarray
    seg_vehicle: np.ndarray
    filled_rows: np.ndarray
    runs: WindowRuns
    features: tuple[str, ...]
    size: int
    stride: int
    max_gap: int
    scaler: Scaler
    fingerprint: str
    lake_fingerprint: str | None = None
    split_spec: SplitSpec | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    # -- derived per-row arrays (computed on first use; memory-mapped when loaded) --------------
    @cached_property
    def vehicle_idx(self) -> np.ndarray:
        """(rows,) int32 vehicle index of each row."""
        return np.repeat(np.asarray(self.seg_vehicle, dtype=np.int32), self.seg_len)

    @cached_property
    def segment_id(self) -> np.ndarray:
        """(rows,) int32 segment of each row."""
        return np.repeat(np.arange(len(self.seg_len), dtype=np.int32), self.seg_len)

    @cached_property
    def filled(self) -> np.ndarray:
        """(rows,) bool: the row was interpolated into a gap of at most `max_gap` seconds."""
        mask = np.zeros(self.rows, dtype=bool)
        mask[np.asarray(self.filled_rows)] = True
        return mask

    # -- derived per-window arrays (materialised only when asked for) ---------------------------
    @cached_property
    def index(self) -> WindowIndex:
        """Window numbers <-> first rows, from the segment table."""
        return WindowIndex.build(self.seg_row0, self.seg_len, self.size, self.stride)

    @cached_property
    def starts(self) -> np.ndarray:
        """(n,) int64 first row of every window (ascending)."""
        return self.index.starts()

    @cached_property
    def split(self) -> np.ndarray:
        """(n,) int8 split code of every window."""
        return self.runs.split()

    @cached_property
    def has_next(self) -> np.ndarray:
        """(n,) bool: the window one second later exists, in the same segment and split block."""
        return self.runs.has_next()

    @cached_property
    def scaled(self) -> np.ndarray:
        """(rows, F) float32 scaled values, computed once per set (not per batch)."""
        return self.scaler.transform(self.values)

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_windows(self) -> int:
        return self.runs.n

    @property
    def n_segments(self) -> int:
        return int(self.seg_len.shape[0])

    def window_vehicle(self) -> np.ndarray:
        """(n,) int32 vehicle index of every window."""
        return np.repeat(np.asarray(self.seg_vehicle, dtype=np.int32), np.diff(self.index.offsets))

    def window_ts(self) -> np.ndarray:
        """(n,) int64 epoch ms of every window's first second."""
        return np.asarray(self.ts)[np.asarray(self.starts)]

    # -- selecting and reading windows ------------------------------------------------------------
    def indices(self, split: str = "all", target: str = "reconstruct") -> np.ndarray:
        """Window indices in `split` ("train", "val", "test", "all" = every non-purged window),
        restricted to windows with a next window when `target` is "next"."""
        if split not in CODES:
            raise DtgError(f"unknown split '{split}' (valid: {', '.join(CODES)})", field="split")
        if target not in TARGETS:
            raise DtgError(f"unknown target '{target}' (valid: {', '.join(TARGETS)})", field="target")
        code = CODES[split]
        if code == ALL:
            mask = self.runs.code != PURGED
        elif self.split_spec is None:
            raise DtgError(f"this window set was built for scoring (no split); use split 'all', not '{split}'",
                           field="split")
        else:
            mask = self.runs.code == code
        if target == "next":
            mask &= self.runs.nxt
        return self.runs.select(mask)

    def windows(self, idx: np.ndarray | Sequence[int], scaled: bool = True) -> np.ndarray:
        """(len(idx), size, F) float32 copy of the windows `idx` (scaled unless `scaled=False`)."""
        rows = self.scaled if scaled else self.values
        return gather(rows, self.index.start(np.asarray(idx, dtype=np.int64)), self.size)

    def batches(self, split: str = "train", target: str = "reconstruct", batch_size: int = 256,
                shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> "Batches":
        """Mini-batches (x, y) of torch float32 tensors (B, size, F), vectorised: one fancy index each.

        `reconstruct`: y is x (the same tensor). `next`: y is the window one second later.
        Re-iterable; each pass uses the same order for the same `seed`.
        """
        if batch_size < 1:
            raise DtgError(f"batch size must be >= 1, got {batch_size}", field="batch_size")
        return Batches(self, self.indices(split, target), target, batch_size, shuffle, seed, drop_last)

    def dataset(self, split: str = "train", target: str = "reconstruct"):
        """A torch Dataset of (x, y) float32 tensors (size, F) over the windows of `split`."""
        return _dataset_class()(self, self.indices(split, target), target)

    def loader(self, split: str = "train", target: str = "reconstruct", batch_size: int = 256,
               shuffle: bool = True, seed: int = 0, **kwargs: Any):
        """A torch DataLoader over `dataset(split, target)`; `batches()` is the faster path."""
        import torch
        from torch.utils.data import DataLoader

        generator = torch.Generator().manual_seed(seed)
        return DataLoader(self.dataset(split, target), batch_size=batch_size, shuffle=shuffle,
                          generator=generator, **kwargs)

    # -- summary, save, load ----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Windows per split ({"all": n} for a scoring set) and purged windows."""
        code, lengths = self.runs.code, self.runs.lengths
        if self.split_spec is None:
            out = {"all": int(lengths[code == ALL].sum())}
        else:
            bins = np.bincount(code[code >= 0], weights=lengths[code >= 0], minlength=len(SPLIT_NAMES))
            out = {name: int(bins[i]) for i, name in enumerate(SPLIT_NAMES)}
        out["purged"] = int(lengths[code == PURGED].sum())
        return out

    def summary(self) -> dict[str, Any]:
        """The `dtg window` summary (docs/design.md §3 keys first)."""
        counts = self.counts()
        purged = counts.pop("purged")
        return {
            "segments": self.n_segments,
            "rows": self.rows,
            "windows": self.n_windows,
            "features": list(self.features),
            "size": self.size,
            "stride": self.stride,
            "max_gap": self.max_gap,
            "splits": counts,
            "purged": purged,
            "has_next": int(self.runs.lengths[self.runs.nxt].sum()),
            "vehicles": len(self.vehicles),
            "rows_filled": int(len(self.filled_rows)),
            "scaler": self.scaler.kind,
            "fingerprint": self.fingerprint,
            **self.stats,
        }

    def meta(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "features": list(self.features),
            "size": self.size,
            "stride": self.stride,
            "max_gap": self.max_gap,
            "vehicles": list(self.vehicles),
            "scaler": self.scaler.to_dict(),
            "split_spec": None if self.split_spec is None else self.split_spec.to_dict(),
            "fingerprint": self.fingerprint,
            "lake_fingerprint": self.lake_fingerprint,
            "stats": self.stats,
            "counts": {"rows": self.rows, "windows": self.n_windows, "segments": self.n_segments,
                       "filled": int(len(self.filled_rows)), **self.counts()},
        }

    def save(self, folder: str | Path) -> Path:
        """Write the set to `folder` atomically: built in a temp folder beside it, then swapped in.

        An existing window set there is replaced; any other non-empty folder is refused.
        """
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / "meta.json").exists())):
            raise DtgError("refusing to overwrite: not a window set folder (no meta.json)", file=folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + folder.name + ".", dir=folder.parent))
        try:
            segs = np.stack([np.asarray(self.seg_row0, np.int64), np.asarray(self.seg_len, np.int64),
                             np.asarray(self.seg_vehicle, np.int64)], axis=1)
            arrays = {"values": self.values, "ts": self.ts, "segments": segs, "runs": self.runs.to_array(),
                      "filled_rows": np.asarray(self.filled_rows, np.int64)}
            for name, arr in arrays.items():
                _save_npy(tmp / f"{name}.npy", np.asarray(arr))
            write_json(tmp / "meta.json", self.meta())
            _fsync_dir(tmp)
            old = None
            if folder.exists():
                old = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + folder.name + ".old.", dir=folder.parent))
                os.replace(folder, old / "set")
            os.replace(tmp, folder)
            _fsync_dir(folder.parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> "WindowSet":
        """Open a saved set; arrays are memory-mapped (read on use) unless `mmap=False`."""
        folder = Path(folder)
        meta_path = folder / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DtgError("not a window set (meta.json missing); run `dtg window` first", file=folder) from None
        except (OSError, ValueError) as exc:
            raise DtgError(f"unreadable window set metadata: {exc}", file=meta_path) from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise DtgError(f"unsupported window set format {meta.get('format_version')!r} "
                           f"(this dtg reads {FORMAT_VERSION}); run `dtg window` again", file=meta_path)
        arrays = {}
        for name in _ROW_ARRAYS + ("segments", "runs", "filled_rows"):
            path = folder / f"{name}.npy"
            try:
                arrays[name] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DtgError(f"unreadable window set array: {exc}", file=path) from None
        rows = arrays["values"].shape[0]
        if arrays["ts"].shape[0] != rows:
            raise DtgError(f"has {arrays['ts'].shape[0]} rows, values.npy has {rows}", file=folder / "ts.npy")
        features = tuple(meta["features"])
        if arrays["values"].ndim != 2 or arrays["values"].shape[1] != len(features):
            raise DtgError(f"values.npy shape {arrays['values'].shape} does not match {len(features)} features",
                           file=folder / "values.npy")
        segs = np.asarray(arrays["segments"]).reshape(-1, 3)
        if int(segs[:, 1].sum()) != rows:
            raise DtgError(f"segments cover {int(segs[:, 1].sum())} rows, values.npy has {rows}",
                           file=folder / "segments.npy")
        size, stride = int(meta["size"]), int(meta["stride"])
        index = WindowIndex.build(segs[:, 0], segs[:, 1], size, stride)
        runs = WindowRuns.from_array(arrays["runs"], index.n)
        if runs.lo.size and (runs.lo[0] != 0 or np.any(np.diff(runs.lo) <= 0) or runs.lo[-1] >= index.n):
            raise DtgError(f"runs do not cover the {index.n} windows of the segments", file=folder / "runs.npy")
        spec = meta.get("split_spec")
        ws = cls(values=arrays["values"], ts=arrays["ts"], vehicles=list(meta["vehicles"]),
                 seg_row0=segs[:, 0].copy(), seg_len=segs[:, 1].copy(), seg_vehicle=segs[:, 2].astype(np.int32),
                 filled_rows=arrays["filled_rows"], runs=runs, features=features, size=size, stride=stride,
                 max_gap=int(meta["max_gap"]), scaler=scaler_from_dict(meta["scaler"]),
                 fingerprint=meta["fingerprint"], lake_fingerprint=meta.get("lake_fingerprint"),
                 split_spec=None if spec is None else SplitSpec(tuple(spec["fractions"]), spec["by"], spec["seed"]),
                 stats=dict(meta.get("stats", {})))
        ws.__dict__["index"] = index
        return ws


class Batches:
    """Re-iterable mini-batches over a window set; `len()` is the number of batches."""

    def __init__(self, ws: WindowSet, idx: np.ndarray, target: str, batch_size: int, shuffle: bool,
                 seed: int, drop_last: bool) -> None:
        self.ws, self.idx, self.target = ws, idx, target
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last

    def __len__(self) -> int:
        n = len(self.idx)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import torch

        idx = self.idx
        if self.shuffle:
            idx = idx[np.random.default_rng(self.seed).permutation(len(idx))]
        index = self.ws.index
        view = window_view(self.ws.scaled, self.ws.size)
        for b in range(len(self)):
            s = index.start(idx[b * self.batch_size:(b + 1) * self.batch_size])
            x = torch.from_numpy(view[s])
            y = x if self.target == "reconstruct" else torch.from_numpy(view[s + 1])
            yield x, y


_DATASET_CLASS = None


def _dataset_class():
    """Define the torch Dataset lazily so importing dtg.windowset does not import torch."""
    global _DATASET_CLASS
    if _DATASET_CLASS is None:
        import torch
        from torch.utils.data import Dataset

        class WindowDataset(Dataset):
            """(x, y) float32 tensors (size, F) for the windows `idx` of a window set."""

            def __init__(self, ws: WindowSet, idx: np.ndarray, target: str) -> None:
                self.scaled, self.size, self.target = ws.scaled, ws.size, target
                self.index, self.idx = ws.index, idx

            def __len__(self) -> int:
                return len(self.idx)

            def __getitem__(self, i: int):
                s = int(self.index.start(self.idx[i]))
                x = torch.from_numpy(np.array(self.scaled[s:s + self.size]))
                if self.target == "reconstruct":
                    return x, x
                return x, torch.from_numpy(np.array(self.scaled[s + 1:s + 1 + self.size]))

        _DATASET_CLASS = WindowDataset
    return _DATASET_CLASS


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


# -- building -------------------------------------------------------------------------------------
def _ts_ms(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(col.type):
        return col.cast(pa.timestamp("ms", tz=col.type.tz)).cast(pa.int64())
    if pa.types.is_integer(col.type):
        return col.cast(pa.int64())
    raise DtgError(f"ts must be a timestamp column, got {col.type}", field="ts")


def _numpy(col: pa.ChunkedArray) -> np.ndarray:
    """Zero-copy numpy view of a one-chunk, null-free column (a copy otherwise)."""
    if col.num_chunks == 1 and col.null_count == 0:
        return col.chunk(0).to_numpy(zero_copy_only=False)
    return col.to_numpy()


def _usable(table: pa.Table, features: tuple[str, ...], floats: bool = True) -> np.ndarray | None:
    """Row mask of rows with vehicle, ts and every feature present (and finite, unless `floats` is
    False: then NaN/inf are left to the block extrema); None when all are."""
    names = ("vehicle_id", "ts", *features)
    floats = [n for n in features if pa.types.is_floating(table.column(n).type)] if floats else []
    # NaN and inf propagate through numpy's min/max: two reductions per column find them, no mask kept
    if not any(table.column(n).null_count for n in names) and all(
            np.isfinite(_numpy(table.column(n)).min()) and np.isfinite(_numpy(table.column(n)).max())
            for n in floats if table.num_rows):
        return None
    mask = np.ones(table.num_rows, dtype=bool)
    for n in names:
        col = table.column(n)
        if col.null_count:
            mask &= pc.is_valid(col).to_numpy(zero_copy_only=False)
        if n in floats:
            mask &= np.isfinite(col.to_numpy())
    return mask


def _prepare(table: pa.Table, features: tuple[str, ...], floats: bool = True):
    """The usable rows sorted by (vehicle_id, ts), the first row of each vehicle, names, and what was
    dropped: rows missing a value (they become gaps) and vehicles left without any row. `floats`:
    NaN/inf count as missing too (else they are not looked for)."""
    for name in ("vehicle_id", "ts"):
        if name not in table.column_names:
            raise DtgError(f"table has no '{name}' column", field=name)
    n = table.num_rows
    cols = {"vehicle_id": table.column("vehicle_id"), "ts": _ts_ms(table.column("ts"))}
    for name in features:
        cols[name] = table.column(name) if name in table.column_names else pa.chunked_array(
            [pa.nulls(n, schema.BY_NAME[name].type)])
    work = pa.table(cols)
    mask = _usable(work, features, floats)
    dropped: list[str] = []
    if mask is not None:
        before = set(pc.unique(work.column("vehicle_id")).drop_null().to_pylist())
        work = work.filter(pa.array(mask))
        dropped = sorted(before - set(pc.unique(work.column("vehicle_id")).to_pylist()))
    rows_invalid = n - work.num_rows
    vstart, names = _vehicle_runs(work.column("vehicle_id"))
    if len(names) > 1 and not pc.all(pc.less(names[:-1], names[1:])).as_py():
        work = _sorted(work)
        vstart, names = _vehicle_runs(work.column("vehicle_id"))
    return work, vstart, names.to_pylist(), dropped, rows_invalid


def _sorted(work: pa.Table) -> pa.Table:
    """`work` sorted by (vehicle_id, ts); dictionary ids are decoded first (Arrow does not sort them)."""
    vid = work.column("vehicle_id")
    if pa.types.is_dictionary(vid.type):
        work = work.set_column(work.schema.get_field_index("vehicle_id"), "vehicle_id", vid.cast(vid.type.value_type))
    return work.take(pc.sort_indices(work, [("vehicle_id", "ascending"), ("ts", "ascending")]))


def _vehicle_runs(vid: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """First row of each run of equal vehicle ids, and the id of each run (string ids), chunk by chunk.

    Dictionary-encoded ids (as `Lake.read(dictionary_ids=True)` gives them) are run over their integer
    indices, never the id bytes; neighbouring runs whose ids are equal (across chunks, or a dictionary
    that repeats a value) are then merged, so the result does not depend on the encoding.
    """
    firsts, offset = [], 0
    for arr in vid.chunks:
        if len(arr):
            firsts.append(_chunk_runs(arr) + offset)
            offset += len(arr)
    if offset == 0:
        return np.zeros(0, np.int64), pa.array([], pa.string())
    vstart = np.concatenate(firsts)
    names = vid.take(pa.array(vstart)).combine_chunks()
    if pa.types.is_dictionary(names.type):
        names = names.dictionary_decode()
    if len(names) > 1:
        keep = np.concatenate(([True], pc.not_equal(names[1:], names[:-1]).to_numpy(zero_copy_only=False)))
        if not keep.all():
            vstart, names = vstart[keep], names.filter(pa.array(keep))
    return vstart, names


def _chunk_runs(arr: pa.Array) -> np.ndarray:
    """First row of each run of equal values of one chunk (row 0 included)."""
    if pa.types.is_dictionary(arr.type):
        if not arr.null_count and pa.types.is_integer(arr.type.index_type):
            return _index_runs(arr.indices.to_numpy(zero_copy_only=False))
        arr = arr.dictionary_decode()
    n = len(arr)
    runs = _long_string_runs(arr) if n > 1 else None
    if runs is None:
        change = pc.not_equal(arr.slice(1), arr.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        runs = np.concatenate(([0], np.flatnonzero(change).astype(np.int64) + 1))
    return runs


def _index_runs(idx: np.ndarray) -> np.ndarray:
    """First row of each run of equal integers: a sorted lake's few long runs by binary search, each
    verified (its min and max equal the run's value), else by comparing neighbours; exact either way."""
    n, firsts, i = idx.shape[0], [], 0
    while i < n:
        if len(firsts) > 16 + n // 4096:
            break
        code = idx[i]
        lo, step = i, 1  # idx[lo] == code; gallop, then bisect for the first row after the run
        while lo + step < n and idx[lo + step] == code:
            lo, step = lo + step, step * 2
        hi = min(n, lo + step)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if idx[mid] == code else (lo, mid)
        if not all(part.min() == code == part.max() for part in
                   (idx[a:min(hi, a + _VERIFY_INDICES)] for a in range(i, hi, _VERIFY_INDICES))):
            break
        firsts.append(i)
        i = hi
    else:
        return np.asarray(firsts, dtype=np.int64)
    return np.concatenate(([0], np.flatnonzero(idx[1:] != idx[:-1]).astype(np.int64) + 1))


_VERIFY_INDICES = 1 << 18  # indices per min/max pair (1 MiB of int32: the max reads them from cache)


_VERIFY_BYTES = 1 << 18
_VERIFY_ROWS = 1 << 16


def _long_string_runs(arr: pa.Array) -> np.ndarray | None:
    """First row of each run of equal strings, or None unless the array is a few long runs.

    A sorted lake has one run per vehicle: each run's end is found by binary search, then verified
    (every length equal, the bytes equal the id repeated: memcmp), so the result is exact whatever the
    order; a run that fails or too many runs give None (the caller compares neighbours instead).
    """
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) or arr.null_count:
        return None
    n = len(arr)
    width = 8 if pa.types.is_large_string(arr.type) else 4
    _, off_buf, data_buf = arr.buffers()
    off = np.frombuffer(off_buf, np.int64 if width == 8 else np.int32, n + 1, arr.offset * width)
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    value = lambda i: bytes(data[off[i]:off[i + 1]])  # noqa: E731
    firsts, i = [], 0
    while i < n:
        if len(firsts) > 16 + n // 4096:
            return None
        name = value(i)
        lo, step = i, 1  # value(lo) == name; gallop, then bisect for the first row after the run
        while lo + step < n and value(lo + step) == name:
            lo, step = lo + step, step * 2
        hi = min(n, lo + step)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if value(mid) == name else (lo, mid)
        if not _all_equal(off, data, i, hi, name):
            return None
        firsts.append(i)
        i = hi
    return np.asarray(firsts, dtype=np.int64)


def _all_equal(off: np.ndarray, data: memoryview, lo: int, hi: int, name: bytes) -> bool:
    """Rows lo..hi-1 of a string array all equal `name`: constant lengths and the bytes repeat it."""
    width = len(name)
    for a in range(lo, hi, _VERIFY_ROWS):
        steps = np.diff(off[a:min(hi, a + _VERIFY_ROWS) + 1])
        if steps.min() != width or steps.max() != width:
            return False
    if width == 0:
        return True
    block = max(1, _VERIFY_BYTES // width)
    pattern = name * block
    for a in range(int(off[lo]), int(off[hi]), block * width):
        if not pattern.startswith(data[a:min(int(off[hi]), a + block * width)]):  # memcmp, no copy
            return False
    return True


def _segment(work: pa.Table, vstart: np.ndarray, features: tuple[str, ...], max_gap: int):
    hold = [f in HOLD_FEATURES for f in features]
    try:
        return segment_runs(vstart, _numpy(work.column("ts")), [_numpy(work.column(f)) for f in features],
                            hold, max_gap), work
    except UnsortedError:
        work = _sorted(work)
        return segment_runs(vstart, _numpy(work.column("ts")), [_numpy(work.column(f)) for f in features],
                            hold, max_gap), work


def _segment_table(table: pa.Table, features: tuple[str, ...], max_gap: int):
    """Segment one table: (segments, vehicle names, vehicles dropped, rows invalid).

    NaN and inf are looked for in the block extrema taken while the rows were written (no pass of its
    own); only when one shows up, or rows were filled (no extrema), are the float columns checked, and
    if a row is really unusable the table is prepared again without it (it becomes a gap).
    """
    columns = source_columns(features)
    work, vstart, names, dropped, invalid = _prepare(table, columns, floats=False)
    seg, work = _segment(_with_derived(work, vstart, features), vstart, features, max_gap)
    if (seg.extrema is None or not seg.extrema.finite()) and _usable(work, columns) is not None:
        work, vstart, names, dropped, invalid = _prepare(table, columns)
        seg, work = _segment(_with_derived(work, vstart, features), vstart, features, max_gap)
    return seg, names, dropped, invalid


def _with_derived(work: pa.Table, vstart: np.ndarray, features: tuple[str, ...]) -> pa.Table:
    """`work` (sorted by vehicle first) with the derived features as columns, computed on its rows in
    (vehicle, ts) order (`dtg.features.derive`)."""
    if not any(f in DERIVED for f in features):
        return work
    ts = _numpy(work.column("ts"))
    back = np.flatnonzero(np.diff(ts) < 0) + 1
    if back.size and not np.isin(back, vstart).all():
        work = _sorted(work)
        ts = _numpy(work.column("ts"))
    derived = derive(_numpy(work.column("lat")), _numpy(work.column("lon")), ts, vstart, features)
    for name, values in derived.items():
        work = work.append_column(name, pa.array(values))
    return work


def _segment_stream(tables: Iterable[pa.Table], features: tuple[str, ...], max_gap: int,
                    rows_hint: int | None) -> tuple[Segmented, list[str], list[str], int]:
    """Segment tables of whole vehicles one at a time, appending their rows to preallocated arrays."""
    cap = max(int(rows_hint or 0), 1)
    values = np.empty((cap, len(features)), dtype=np.float32)
    ts = np.empty(cap, dtype=np.int64)
    row0, length, vehicle, filled = [], [], [], []
    extrema: list[BlockExtrema] | None = []
    vehicles: list[str] = []
    dropped: list[str] = []
    rows = rows_invalid = rows_duplicate = 0
    for table in tables:
        seg, names, gone, invalid = _segment_table(table, features, max_gap)
        if names and vehicles and names[0] <= vehicles[-1]:
            raise DtgError(f"tables must hold whole vehicles in ascending vehicle_id order: '{names[0]}' "
                           f"comes after '{vehicles[-1]}'", field="vehicle_id")
        end = rows + seg.rows
        if end > cap:
            cap = max(end, cap + cap // 2)
            values = np.resize(values, (cap, len(features)))
            ts = np.resize(ts, cap)
        values[rows:end] = seg.values
        ts[rows:end] = seg.ts
        row0.append(seg.row0 + rows)
        length.append(seg.length)
        vehicle.append(seg.vehicle + len(vehicles))
        filled.append(seg.filled_rows + rows)
        extrema = None if extrema is None or seg.extrema is None else extrema + [seg.extrema.shifted(rows)]
        vehicles += names
        dropped += gone
        rows, rows_invalid, rows_duplicate = end, rows_invalid + invalid, rows_duplicate + seg.rows_duplicate
        del seg
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)  # noqa: E731
    seg = Segmented(values[:rows], ts[:rows], cat(row0, np.int64), cat(length, np.int64), cat(vehicle, np.int32),
                    cat(filled, np.int64), rows_duplicate,
                    None if extrema is None else BlockExtrema.concat(extrema, len(features)))
    return seg, vehicles, sorted(dropped), rows_invalid


def _train_rows(index: WindowIndex, runs: WindowRuns) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint, ascending row ranges [begin, end) covered by the training windows, maximal (ranges
    that touch are merged). A run never crosses a segment, so its rows are one range unless the
    stride leaves rows between windows (stride > size: then each window is a range)."""
    train = runs.code == TRAIN
    lo, hi = runs.lo[train], runs.hi[train]
    if lo.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if index.stride > index.size:
        b = index.start(ranges(lo, hi))
        e = b + index.size
    else:
        b, e = index.start(lo), index.start(hi - 1) + index.size
    reach = np.maximum.accumulate(e)
    new = np.flatnonzero(np.concatenate(([True], b[1:] > reach[:-1])))
    return b[new], reach[np.append(new[1:] - 1, len(b) - 1)]


def _fit_scaler(name: str, seg: Segmented, begins: np.ndarray, ends: np.ndarray) -> Scaler:
    """A scaler fitted on the rows [begin, end): a min-max scaler from the block extrema (reading only
    rows of blocks partly covered), any other from the rows themselves."""
    scaler = make_scaler(name)
    if seg.extrema is None or not isinstance(scaler, MinMaxScaler):
        return scaler.fit_chunks(_row_blocks(seg.values, begins, ends))
    lo, hi, rest_b, rest_e = seg.extrema.cover(begins, ends)
    rest = [column_extrema(rows) for rows in _row_blocks(seg.values, rest_b, rest_e, view_rows=1024)]
    return scaler.fit_extrema(np.concatenate([lo] + [r[0][None] for r in rest]),
                              np.concatenate([hi] + [r[1][None] for r in rest]), int((ends - begins).sum()))


def _row_blocks(values: np.ndarray, begins: np.ndarray, ends: np.ndarray,
                view_rows: int = _CHUNK_ROWS // 16) -> Iterator[np.ndarray]:
    """The rows of the ranges as blocks: ranges of `view_rows` rows or more as views, shorter ones
    gathered up to a chunk."""
    pending: list[tuple[int, int]] = []
    size = 0
    for b, e in zip(begins.tolist(), ends.tolist()):
        if e - b >= view_rows:
            yield values[b:e]
            continue
        pending.append((b, e))
        size += e - b
        if size >= _CHUNK_ROWS:
            yield values[ranges(*np.array(pending, dtype=np.int64).T)]
            pending, size = [], 0
    if pending:
        yield values[ranges(*np.array(pending, dtype=np.int64).T)]


def _fingerprint(params: dict[str, Any], content: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(content.encode())
    return h.hexdigest()


def _content_hash(ts: np.ndarray, values: np.ndarray, vehicles: list[str]) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(vehicles, ensure_ascii=False).encode())
    h.update(np.ascontiguousarray(ts).data)
    h.update(np.ascontiguousarray(values).data)
    return h.hexdigest()


def build_window_set(
    table: pa.Table | Iterable[pa.Table],
    size: int = 20,
    stride: int = 1,
    features: Sequence[str] | str = DEFAULT_FEATURES,
    max_gap: int = 1,
    split: SplitSpec | None = None,
    scaler: str | Scaler = "minmax",
    lake_fingerprint: str | None = None,
    rows_hint: int | None = None,
) -> WindowSet:
    """Segment the table's rows, index every window and assign splits; fit the scaler on train rows.

    `table`: canonical columns (at least vehicle_id, ts and `source_columns(features)`: a derived
    feature is computed from its source columns' usable rows before segmentation, see
    `dtg.features`), ideally sorted by
    (vehicle_id, ts) as `Lake.read()` returns it (otherwise it is sorted here). Rows where a chosen
    feature is null/NaN are treated as missing seconds (gaps); a vehicle with no usable row is dropped
    and listed in `stats["vehicles_dropped"]`. `split=None` builds a scoring set: every window is in
    split "all" and `scaler` must be a fitted scaler (the model's). `lake_fingerprint` (the lake's
    content hash) saves hashing the rows for the set's fingerprint.

    `table` may also be an iterable of tables, each holding whole vehicles, in ascending vehicle_id
    order (e.g. the lake read a few vehicles at a time): then only one of them is in memory at a time,
    and their segment rows are appended to arrays of `rows_hint` rows (grown when exceeded).
    """
    features = check_features(features)
    for name, v, lo in (("size", size, 1), ("stride", stride, 1), ("max_gap", max_gap, 1)):
        if int(v) != v or v < lo:
            raise DtgError(f"{name} must be a whole number >= {lo}, got {v}", field=name)
    size, stride, max_gap = int(size), int(stride), int(max_gap)
    if isinstance(scaler, str):
        if split is None:
            raise DtgError("a scoring window set (no split) needs the model's fitted scaler, not a scaler name",
                           field="scaler")
        if scaler not in SCALERS:
            make_scaler(scaler)
    elif not scaler.fitted:
        raise DtgError("the scaler given is not fitted", field="scaler")
    elif scaler.n_features_in_ != len(features):
        raise DtgError(f"the scaler was fitted on {scaler.n_features_in_} features, "
                       f"this window set has {len(features)} ({','.join(features)})", field="scaler")

    if isinstance(table, pa.Table):
        seg, vehicles, dropped, rows_invalid = _segment_table(table, features, max_gap)
    else:
        seg, vehicles, dropped, rows_invalid = _segment_stream(table, features, max_gap, rows_hint)

    index = WindowIndex.build(seg.row0, seg.length, size, stride)
    runs = scoring_runs(index) if split is None else assign_splits(index, seg.vehicle, len(vehicles), split)

    if isinstance(scaler, str):
        begins, ends = _train_rows(index, runs)
        if begins.size == 0:
            raise DtgError(f"no training windows: {index.n} windows of size {size} from "
                           f"{len(seg.length)} segments ({seg.rows} rows); lower --size, raise --max-gap or "
                           f"ingest more data", field="split")
        fitted = _fit_scaler(scaler, seg, begins, ends)
    else:
        fitted = scaler

    params = {"features": list(features), "size": size, "stride": stride, "max_gap": max_gap,
              "split": None if split is None else split.to_dict(), "scaler": fitted.to_dict(),
              "format_version": _WINDOWS_VERSION}
    content = lake_fingerprint or _content_hash(seg.ts, seg.values, vehicles)
    stats = {"rows_invalid": rows_invalid, "rows_duplicate": seg.rows_duplicate, "vehicles_dropped": dropped}
    ws = WindowSet(values=seg.values, ts=seg.ts, vehicles=vehicles, seg_row0=seg.row0, seg_len=seg.length,
                   seg_vehicle=seg.vehicle, filled_rows=seg.filled_rows, runs=runs, features=features, size=size,
                   stride=stride, max_gap=max_gap, scaler=fitted, fingerprint=_fingerprint(params, content),
                   lake_fingerprint=lake_fingerprint, split_spec=split, stats=stats)
    ws.__dict__["index"] = index
    return ws
