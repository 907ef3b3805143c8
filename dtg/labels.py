"""Window labels from event intervals: the supervised view of the window set.

Each window gets one class: the event type covering the most of its seconds, or "normal" when no
event touches it (ties go to the type listed first in `CLASSES`). `LabelledWindows` wraps a window
set so that `dtg.train.train` draws (x, class index) batches from it, target "class".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa

from dtg.errors import DtgError
from dtg.events import EVENT_TYPES

NORMAL = "normal"
CLASSES: tuple[str, ...] = (NORMAL, *EVENT_TYPES)
"""Class index → name: 0 is "normal", then the 11 event types in `dtg.events.EVENT_TYPES` order."""
CLASS_TARGET = "class"


def _event_arrays(events: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    for name in ("vehicle_id", "type", "start", "end"):
        if name not in events.column_names:
            raise DtgError("events table lacks a column", field=name)
    vid = np.asarray(events.column("vehicle_id").to_pylist(), dtype=object)
    typ = np.asarray(events.column("type").to_pylist(), dtype=object)
    start = events.column("start").cast(pa.int64()).to_numpy(zero_copy_only=False)
    end = events.column("end").cast(pa.int64()).to_numpy(zero_copy_only=False)
    return vid, typ, start, end


def window_classes(ws: Any, events: pa.Table, classes: Sequence[str] = CLASSES,
                   min_overlap: int = 1) -> np.ndarray:
    """(n_windows,) int64 class index of each window of `ws` (a `dtg.windowset.WindowSet`).

    A window belongs to an event type when at least `min_overlap` of its rows fall inside an event
    of that type (same vehicle, start <= ts <= end); event types not in `classes` are ignored.
    """
    classes = tuple(classes)
    if not classes or classes[0] != NORMAL:
        raise DtgError(f"the first class must be '{NORMAL}'", field="classes")
    vid, typ, start, end = _event_arrays(events)
    ts = np.asarray(ws.ts, dtype=np.int64)
    vidx = np.asarray(ws.vehicle_idx, dtype=np.int64)
    rows = len(ts)
    n_types = len(classes) - 1
    delta = np.zeros((n_types, rows + 1), dtype=np.int32)
    type_code = {t: k for k, t in enumerate(classes[1:])}
    vehicle_code = {v: i for i, v in enumerate(ws.vehicles)}
    block = np.searchsorted(vidx, np.arange(len(ws.vehicles) + 1))  # rows of vehicle i: block[i]:block[i+1]
    for v in np.unique(vid) if len(vid) else []:
        if v not in vehicle_code:
            continue
        i = vehicle_code[v]
        lo_row, hi_row = block[i], block[i + 1]
        sel = np.flatnonzero((vid == v) & np.isin(typ, classes[1:]))
        if not len(sel):
            continue
        lo = lo_row + np.searchsorted(ts[lo_row:hi_row], start[sel], side="left")
        hi = lo_row + np.searchsorted(ts[lo_row:hi_row], end[sel], side="right")  # exclusive
        codes = np.array([type_code[t] for t in typ[sel]], dtype=np.int64)
        keep = hi > lo
        np.add.at(delta, (codes[keep], lo[keep]), 1)
        np.add.at(delta, (codes[keep], hi[keep]), -1)
    covered = (np.cumsum(delta, axis=1)[:, :rows] > 0).astype(np.int64)
    csum = np.concatenate([np.zeros((n_types, 1), np.int64), np.cumsum(covered, axis=1)], axis=1)
    starts = np.asarray(ws.starts, dtype=np.int64)
    overlap = csum[:, starts + ws.size] - csum[:, starts]  # (types, windows)
    if n_types == 0 or overlap.size == 0:
        return np.zeros(len(starts), dtype=np.int64)
    best = overlap.argmax(axis=0)
    hit = overlap[best, np.arange(len(starts))] >= min_overlap
    return np.where(hit, best + 1, 0).astype(np.int64)


class LabelledWindows:
    """A window set with one class per window; `batches(split, "class", ...)` yields (x, class index).

    Behaves as a `dtg.train.WindowSource`: `features`, `size`, `fingerprint`, `indices`, `batches`.
    """

    def __init__(self, ws: Any, labels: np.ndarray, classes: Sequence[str] = CLASSES) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (ws.n_windows,):
            raise DtgError(f"{len(labels)} labels for {ws.n_windows} windows", field="labels")
        self.ws, self.labels, self.classes = ws, labels, tuple(classes)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.ws.features)

    @property
    def size(self) -> int:
        return int(self.ws.size)

    @property
    def fingerprint(self) -> str:
        return f"{self.ws.fingerprint}+labels{_digest(self.labels)}"

    def __getattr__(self, name: str) -> Any:  # scaler, vehicles, summary(), ... of the window set
        if name in ("ws", "labels", "classes"):
            raise AttributeError(name)
        return getattr(self.ws, name)

    def indices(self, split: str, target: str = CLASS_TARGET) -> np.ndarray:
        return self.ws.indices(split, "reconstruct")

    def counts(self, split: str = "all") -> dict[str, int]:
        """Windows per class in `split`."""
        got = np.bincount(self.labels[self.indices(split)], minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, got)}

    def report(self, model: Any, device: Any = "cpu") -> dict[str, Any]:
        """Per-class precision/recall of `model`'s argmax decisions (see `class_report`)."""
        return class_report(model, self, device)

    def batches(self, split: str, target: str = CLASS_TARGET, batch_size: int = 256, shuffle: bool = True,
                seed: int = 0) -> Iterator[tuple[Any, Any]]:
        """(x (B, size, F) float32 scaled windows, y (B,) int64 class indices) torch batches."""
        import torch

        from dtg.windowing import window_view

        idx = self.indices(split)
        if shuffle:
            idx = idx[np.random.default_rng(seed).permutation(len(idx))]
        view = window_view(self.ws.scaled, self.ws.size)
        starts = np.asarray(self.ws.starts)[idx]
        for lo in range(0, len(idx), batch_size):
            yield (torch.from_numpy(np.ascontiguousarray(view[starts[lo:lo + batch_size]])),
                   torch.from_numpy(self.labels[idx[lo:lo + batch_size]]))


def _digest(labels: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()[:12]


def labelled_source(ws: Any, events: str | Path | pa.Table | None = None,
                    classes: Sequence[str] = CLASSES) -> LabelledWindows:
    """`ws` labelled from events: a table, an events.parquet (or a folder holding one), or, by default,
    the workspace's `data/events/events.parquet` written by `dtg events`."""
    import pyarrow.parquet as pq

    from dtg.workspace import DEFAULT

    if not isinstance(events, pa.Table):
        path = Path(events) if events is not None else DEFAULT.events
        if path.is_dir():
            path = path / "events.parquet"
        if not path.is_file():
            raise DtgError("no events to label windows with: run `dtg events` first (lstm-classifier learns "
                           "the dangerous-driving events of the same lake)", file=path)
        events = pq.read_table(path)
    return LabelledWindows(ws, window_classes(ws, events, classes), classes)


def classify(model: Any, source: LabelledWindows, split: str, device: Any = "cpu",
             batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(true class, argmax decision) of every window of `split`."""
    import torch

    from dtg.nn.losses import argmax

    model.eval()
    truth, pred = [], []
    with torch.inference_mode():
        for x, y in source.batches(split, CLASS_TARGET, batch_size, shuffle=False):
            pred.append(argmax(model(x.to(device))).cpu().numpy())
            truth.append(y.numpy())
    if not truth:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(truth), np.concatenate(pred)


def class_report(model: Any, source: LabelledWindows, device: Any = "cpu") -> dict[str, Any]:
    """Per-class precision/recall of a trained classifier on the val and test splits (those present),
    and the class counts of the training split."""
    from dtg.evaluate import per_class

    out: dict[str, Any] = {"class_counts_train": source.counts("train")}
    for split in ("val", "test"):
        if len(source.indices(split)):
            truth, pred = classify(model, source, split, device)
            out[f"classification_{split}"] = per_class(truth, pred, source.classes)
    return out
