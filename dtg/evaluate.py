"""Detector evaluation against labelled intervals: event-wise first, point-adjusted beside it.

Intervals are closed, [start, end] on a 1-second grid: a predicted and a labelled interval overlap when
they share at least one second (touching at one timestamp counts). Definitions (docs/evaluation.md):

- event-wise recall = labels overlapped by at least one prediction / labels;
  event-wise precision = predictions overlapping at least one label / predictions; F1 and F0.5 from those.
- point-adjusted F1: seconds scored point-wise, except that every second of a label any prediction
  touches counts as detected — known to reward even random scores, so reported only beside the above.
- delay to detection, for each found label: first predicted second inside it − its start (seconds).

A ratio with an empty denominator is 0 (scikit-learn's zero_division=0); the counts are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dtg.errors import DtgError
from dtg.schema import TZ

_SECOND_MS = 1000


@dataclass(frozen=True)
class Intervals:
    """Closed intervals as epoch-millisecond arrays, with the vehicle of each and an optional type."""

    vehicle_id: np.ndarray  # object array of str
    start: np.ndarray  # int64 ms
    end: np.ndarray  # int64 ms
    type: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.start)

    def of(self, vehicle: str) -> "Intervals":
        """The intervals of one vehicle, sorted by start."""
        rows = np.flatnonzero(self.vehicle_id == vehicle)
        rows = rows[np.argsort(self.start[rows], kind="stable")]
        return Intervals(self.vehicle_id[rows], self.start[rows], self.end[rows],
                         None if self.type is None else self.type[rows])


def intervals_from_table(table: pa.Table, where: str = "table") -> Intervals:
    """Intervals from a table with vehicle_id, start, end (timestamps or ISO strings) and optional type."""
    for name in ("vehicle_id", "start", "end"):
        if name not in table.column_names:
            raise DtgError(f"missing column (have: {', '.join(table.column_names)})", file=where, field=name)
    vid = np.array(table.column("vehicle_id").cast(pa.string()).to_pylist(), dtype=object)
    if any(v is None for v in vid):
        raise DtgError("empty vehicle_id", file=where, field="vehicle_id")
    start = _to_ms(table.column("start"), where, "start")
    end = _to_ms(table.column("end"), where, "end")
    bad = np.flatnonzero(end < start)
    if len(bad):
        raise DtgError("end before start", file=where, line=int(bad[0]) + 1, field="end")
    typ = None
    if "type" in table.column_names:
        typ = np.array([("" if t is None else str(t)) for t in table.column("type").to_pylist()], dtype=object)
    return Intervals(vid, start, end, typ)


def _to_ms(col: pa.ChunkedArray, where: str, field: str) -> np.ndarray:
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0]) + 1
        raise DtgError("missing timestamp", file=where, line=row, field=field)
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            col = pc.assume_timezone(col, TZ)
        return col.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        import pandas as pd

        values = col.to_pylist()
        try:
            parsed = pd.to_datetime(pd.Series(values), format="ISO8601")
        except (ValueError, TypeError):
            for i, v in enumerate(values):
                try:
                    pd.Timestamp(v)
                except (ValueError, TypeError):
                    raise DtgError(f"not a timestamp: {v!r}", file=where, line=i + 1, field=field) from None
            raise DtgError("mixed timestamp formats", file=where, field=field) from None
        if parsed.dt.tz is None:
            parsed = parsed.dt.tz_localize(TZ)
        return (parsed.dt.tz_convert("UTC").astype("datetime64[ms, UTC]").astype("int64")).to_numpy()
    raise DtgError(f"expected timestamps, got {col.type}", file=where, field=field)


def read_intervals(path: str | Path) -> Intervals:
    """Read intervals from a Parquet or CSV file, or every Parquet file under a folder (e.g. the
    `anomalies/` of a scores folder; a folder holding `anomalies/` means that subfolder)."""
    path = Path(path)
    if path.is_dir():
        if (path / "anomalies").is_dir():
            path = path / "anomalies"
        files = sorted(p for p in path.rglob("*.parquet") if not p.name.startswith("."))
        if not files:
            raise DtgError("no Parquet files in folder", file=path)
        parts = [intervals_from_table(_read_parquet(f), str(f)) for f in files]
        return Intervals(
            np.concatenate([p.vehicle_id for p in parts]), np.concatenate([p.start for p in parts]),
            np.concatenate([p.end for p in parts]),
            None if any(p.type is None for p in parts) else np.concatenate([p.type for p in parts]))
    if not path.exists():
        raise DtgError("no such file", file=path)
    if path.suffix.lower() == ".parquet":
        return intervals_from_table(_read_parquet(path), str(path))
    if path.suffix.lower() in (".csv", ".gz"):
        import pyarrow.csv as pacsv

        try:
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                column_types={"vehicle_id": pa.string(), "start": pa.string(), "end": pa.string(),
                              "type": pa.string()}))
        except (pa.ArrowInvalid, OSError) as exc:
            raise DtgError(f"cannot read CSV: {exc}", file=path) from None
        return intervals_from_table(table, str(path))
    raise DtgError("expected a .parquet or .csv file, or a folder of Parquet files", file=path)


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path, partitioning=None)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DtgError(f"cannot read Parquet: {exc}", file=path) from None


# ---------------------------------------------------------------- interval arithmetic (ms, closed)


def _merge(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of closed intervals as disjoint sorted intervals (sharing or abutting seconds join)."""
    if len(start) == 0:
        return start.astype(np.int64), end.astype(np.int64)
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > run_end[:-1] + _SECOND_MS
    idx = np.flatnonzero(new)
    return s[idx], np.maximum.reduceat(e, idx)


def _measure(start: np.ndarray, end: np.ndarray) -> int:
    """Seconds covered by disjoint closed intervals."""
    return int(((end - start) // _SECOND_MS + 1).sum()) if len(start) else 0


def _intersection(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> int:
    """Seconds shared by two unions of disjoint sorted closed intervals."""
    total, i, j = 0, 0, 0
    (as_, ae), (bs, be) = a, b
    while i < len(as_) and j < len(bs):
        lo, hi = max(as_[i], bs[j]), min(ae[i], be[j])
        if hi >= lo:
            total += (hi - lo) // _SECOND_MS + 1
        if ae[i] < be[j]:
            i += 1
        else:
            j += 1
    return int(total)


def _overlaps(a_start: np.ndarray, a_end: np.ndarray, b_start: np.ndarray, b_end: np.ndarray) -> np.ndarray:
    """For each interval of a: does it overlap any interval of b (closed)? Vectorised via sorted b."""
    if len(b_start) == 0 or len(a_start) == 0:
        return np.zeros(len(a_start), dtype=bool)
    ms, me = _merge_strict(b_start, b_end)
    k = np.searchsorted(ms, a_end, side="right") - 1  # last merged b starting at or before a's end
    return (k >= 0) & (me[np.clip(k, 0, None)] >= a_start)


def _merge_strict(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of closed intervals; only overlapping (not merely adjacent) ones join."""
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    return s[idx], np.maximum.reduceat(e, idx)


def _first_detection(l_start: np.ndarray, l_end: np.ndarray, p_start: np.ndarray, p_end: np.ndarray) -> np.ndarray:
    """For each label, the first predicted ms inside it (−1 when none)."""
    out = np.full(len(l_start), -1, dtype=np.int64)
    if len(p_start) == 0:
        return out
    ms, me = _merge_strict(p_start, p_end)
    # first merged prediction ending at or after the label start
    k = np.searchsorted(me, l_start, side="left")
    ok = k < len(ms)
    kk = np.clip(k, 0, len(ms) - 1)
    first = np.maximum(ms[kk], l_start)
    ok &= first <= l_end
    out[ok] = first[ok]
    return out


# ---------------------------------------------------------------- metrics


def _ratios(tp_p: int, n_pred: int, tp_l: int, n_lab: int) -> dict[str, float]:
    p = tp_p / n_pred if n_pred else 0.0
    r = tp_l / n_lab if n_lab else 0.0
    return {"precision": p, "recall": r, "f1": f_beta(p, r, 1.0), "f0_5": f_beta(p, r, 0.5)}


def f_beta(precision: float, recall: float, beta: float) -> float:
    """F-beta score; 0 when precision and recall are both 0."""
    b2 = beta * beta
    den = b2 * precision + recall
    return (1 + b2) * precision * recall / den if den > 0 else 0.0


@dataclass
class _Counts:
    n_pred: int = 0
    pred_hit: int = 0
    n_lab: int = 0
    lab_hit: int = 0
    pa_tp: int = 0
    pa_fp: int = 0
    pa_fn: int = 0
    pt_tp: int = 0
    pt_pred: int = 0
    pt_lab: int = 0

    def add(self, other: "_Counts") -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"predictions": self.n_pred, "labels": self.n_lab,
                               "predictions_matched": self.pred_hit, "labels_found": self.lab_hit}
        out.update(_ratios(self.pred_hit, self.n_pred, self.lab_hit, self.n_lab))
        pa_p = self.pa_tp / (self.pa_tp + self.pa_fp) if self.pa_tp + self.pa_fp else 0.0
        pa_r = self.pa_tp / (self.pa_tp + self.pa_fn) if self.pa_tp + self.pa_fn else 0.0
        out["point_adjusted_f1"] = f_beta(pa_p, pa_r, 1.0)
        pt_p = self.pt_tp / self.pt_pred if self.pt_pred else 0.0
        pt_r = self.pt_tp / self.pt_lab if self.pt_lab else 0.0
        out["point_f1"] = f_beta(pt_p, pt_r, 1.0)
        return out


def _vehicle_counts(pred: Intervals, lab: Intervals) -> tuple[_Counts, np.ndarray, np.ndarray]:
    """Counts for one vehicle; also, per label, whether found and its detection delay (s, NaN if not)."""
    c = _Counts(n_pred=len(pred), n_lab=len(lab))
    pred_hit = _overlaps(pred.start, pred.end, lab.start, lab.end)
    lab_hit = _overlaps(lab.start, lab.end, pred.start, pred.end)
    c.pred_hit, c.lab_hit = int(pred_hit.sum()), int(lab_hit.sum())
    first = _first_detection(lab.start, lab.end, pred.start, pred.end)
    delay = np.where(first >= 0, (first - lab.start) / 1000.0, np.nan)
    pu = _merge(pred.start, pred.end)
    lu = _merge(lab.start, lab.end)
    hu = _merge(lab.start[lab_hit], lab.end[lab_hit])
    c.pt_pred, c.pt_lab = _measure(*pu), _measure(*lu)
    c.pt_tp = _intersection(pu, lu)
    c.pa_tp = _measure(*hu)
    c.pa_fn = c.pt_lab - c.pa_tp
    c.pa_fp = c.pt_pred - c.pt_tp
    return c, lab_hit, delay


def evaluate(pred: Intervals, labels: Intervals) -> dict[str, Any]:
    """Event-wise precision/recall/F1/F0.5, point-adjusted and point-wise F1 and detection delay,
    overall (counts pooled over vehicles) and per vehicle; per-type recall when labels carry a type."""
    vehicles = sorted(set(pred.vehicle_id.tolist()) | set(labels.vehicle_id.tolist()))
    total = _Counts()
    per_vehicle: dict[str, Any] = {}
    found_all: list[np.ndarray] = []
    delays_all: list[np.ndarray] = []
    types_all: list[np.ndarray] = []
    for v in vehicles:
        p, lab = pred.of(v), labels.of(v)
        c, found, delay = _vehicle_counts(p, lab)
        total.add(c)
        per_vehicle[v] = {**c.metrics(), **_delay_stats(delay[found])}
        found_all.append(found)
        delays_all.append(delay)
        if lab.type is not None:
            types_all.append(lab.type)
    found = np.concatenate(found_all) if found_all else np.zeros(0, bool)
    delay = np.concatenate(delays_all) if delays_all else np.zeros(0)
    out: dict[str, Any] = {**total.metrics(), **_delay_stats(delay[found])}
    if labels.type is not None and types_all:
        typ = np.concatenate(types_all)
        out["per_type"] = {
            t: {"labels": int((typ == t).sum()), "labels_found": int(found[typ == t].sum()),
                "recall": float(found[typ == t].mean()),
                **_delay_stats(delay[(typ == t) & found])}
            for t in sorted(set(typ.tolist()))
        }
    out["vehicles"] = per_vehicle
    return out


def _delay_stats(delays: np.ndarray) -> dict[str, float | None]:
    if len(delays) == 0:
        return {"delay_mean_s": None, "delay_median_s": None, "delay_max_s": None}
    return {"delay_mean_s": float(np.mean(delays)), "delay_median_s": float(np.median(delays)),
            "delay_max_s": float(np.max(delays))}


# ---------------------------------------------------------------- window classification


def per_class(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support of class-index decisions, plus accuracy and macro F1
    (the mean F1 over classes that occur in `y_true`)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = len(classes)
    confusion = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    out: dict[str, Any] = {"classes": {}}
    f1s = []
    for i, name in enumerate(classes):
        p = tp[i] / predicted[i] if predicted[i] else 0.0
        r = tp[i] / support[i] if support[i] else 0.0
        f = f_beta(p, r, 1.0)
        out["classes"][name] = {"precision": float(p), "recall": float(r), "f1": float(f),
                                "support": int(support[i]), "predicted": int(predicted[i])}
        if support[i]:
            f1s.append(f)
    out["accuracy"] = float(tp.sum() / len(y_true)) if len(y_true) else 0.0
    out["macro_f1"] = float(np.mean(f1s)) if f1s else 0.0
    out["windows"] = int(len(y_true))
    out["confusion"] = confusion.tolist()
    return out
