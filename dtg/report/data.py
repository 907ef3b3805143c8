"""What the report reads: scores (anomalies, per-second scores), the model card and history, lake slices.

Scores are read with `pyarrow.dataset`, ignoring partition-folder names: the `vehicle_id` column inside
the files is the truth (docs/architecture.md, "Scoring"). Times become int64 epoch milliseconds (UTC)
here and are shown in Korean local time only when drawn. Anything malformed a user could have handed
us (a broken Parquet file, a missing column, bad JSON) raises a `DtgError` naming the file and field.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from dtg.errors import DtgError
from dtg.schema import TZ

ANOMALY_COLUMNS = ("vehicle_id", "start", "end", "peak_score", "top_feature")
SECOND_COLUMNS = ("vehicle_id", "ts", "score", "is_anomaly")
LAKE_COLUMNS = ("vehicle_id", "ts", "speed", "rpm", "brake", "lat", "lon")
MAX_STEP_S = 2.0
"""Steps between lake rows longer than this are gaps: no distance is counted across them."""


def epoch_ms(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamps as int64 epoch milliseconds (UTC); zone-less values are taken as Korean local time."""
    typ = column.type
    if not pa.types.is_timestamp(typ):
        raise TypeError(f"not a timestamp column: {typ}")
    if typ.tz is None:
        column = pc.assume_timezone(column, TZ)
    as_ms = column.cast(pa.timestamp("ms", tz="UTC"))
    return np.asarray(as_ms.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def read_folder(folder: Path, columns: tuple[str, ...], what: str,
                optional: tuple[str, ...] = (), filter: ds.Expression | None = None) -> pa.Table | None:
    """All Parquet files under `folder` as one table with `columns` (+ `optional` ones where present).

    `folder` may also be one Parquet file. Returns None when it does not exist or holds no files.
    Partition folders are not parsed.
    """
    if not folder.exists():
        return None
    try:
        dataset = ds.dataset(folder, format="parquet", partitioning=None)
        files = dataset.files
    except (pa.ArrowInvalid, OSError) as exc:
        raise DtgError(f"cannot read {what}: {exc}", file=folder) from None
    if not files:
        return None
    present: set[str] = set()
    for i, frag in enumerate(dataset.get_fragments()):
        try:
            names = set(frag.physical_schema.names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DtgError(f"not a readable Parquet file ({exc})", file=frag.path) from None
        for col in columns:
            if col not in names:
                raise DtgError(f"{what} file lacks column '{col}'", file=frag.path, field=col)
        present = names if i == 0 else present & names
    wanted = list(dict.fromkeys(list(columns) + [c for c in optional if c in present]))
    try:
        schema = pa.unify_schemas([f.physical_schema for f in dataset.get_fragments()],
                                  promote_options="permissive")
        dataset = ds.dataset(folder, format="parquet", partitioning=None, schema=schema)
        return dataset.to_table(columns=wanted, filter=filter)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise DtgError(f"cannot read {what}: {exc}", file=folder) from None


@dataclass(frozen=True)
class Anomalies:
    """Every anomalous interval in the scores, ordered by peak score (highest first)."""

    vehicle_id: np.ndarray  # object (str)
    start: np.ndarray  # int64 epoch ms, first anomalous second
    end: np.ndarray  # int64 epoch ms, last anomalous second (inclusive)
    peak_score: np.ndarray  # float64
    top_feature: np.ndarray  # object (str or None)

    def __len__(self) -> int:
        return len(self.start)

    def groups(self) -> dict[str, np.ndarray]:
        """Row indices of each vehicle's intervals (in peak order), from one sort rather than a scan per vehicle."""
        if not len(self):
            return {}
        names, inverse = np.unique(self.vehicle_id.astype(str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        cuts = np.cumsum(np.bincount(inverse, minlength=len(names)))[:-1]
        return dict(zip(names.tolist(), np.split(order, cuts)))

    @property
    def duration_s(self) -> np.ndarray:
        """Seconds covered by each interval (its end second included)."""
        return (self.end - self.start) / 1000.0 + 1.0


def load_anomalies(scores_dir: Path) -> Anomalies:
    """The anomalies of a scores folder (empty when there are none)."""
    table = read_folder(scores_dir / "anomalies", ANOMALY_COLUMNS[:4], "anomalies", optional=("top_feature",))
    if table is None or table.num_rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Anomalies(np.zeros(0, dtype=object), empty, empty, np.zeros(0), np.zeros(0, dtype=object))
    vid = np.asarray(table.column("vehicle_id").to_pylist(), dtype=object)
    start, end = epoch_ms(table.column("start")), epoch_ms(table.column("end"))
    peak = np.asarray(table.column("peak_score").cast(pa.float64()).to_numpy(zero_copy_only=False))
    top = (np.asarray(table.column("top_feature").to_pylist(), dtype=object)
           if "top_feature" in table.column_names else np.full(len(vid), None, dtype=object))
    order = np.lexsort((start, vid.astype(str), -np.nan_to_num(peak, nan=-np.inf)))
    return Anomalies(vid[order], start[order], end[order], peak[order], top[order])


@dataclass(frozen=True)
class Seconds:
    """Per-second scores sorted by (vehicle, ts), with each vehicle's row range for fast slicing."""

    ts: np.ndarray  # int64 epoch ms
    score: np.ndarray  # float64
    is_anomaly: np.ndarray  # bool
    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)  # vehicle -> [lo, hi)

    @property
    def vehicles(self) -> list[str]:
        return list(self.bounds)

    def of(self, vehicle: str, start: int | None = None, end: int | None = None) -> slice:
        """Row slice of one vehicle's seconds with start <= ts <= end."""
        lo, hi = self.bounds.get(vehicle, (0, 0))
        ts = self.ts[lo:hi]
        a = 0 if start is None else int(np.searchsorted(ts, start, "left"))
        b = len(ts) if end is None else int(np.searchsorted(ts, end, "right"))
        return slice(lo + a, lo + b)


def load_seconds(scores_dir: Path) -> Seconds:
    """The per-second scores of a scores folder (empty when there are none)."""
    table = read_folder(scores_dir / "seconds", SECOND_COLUMNS, "per-second scores")
    if table is None or table.num_rows == 0:
        return Seconds(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=bool), {})
    table = table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    ts = epoch_ms(table.column("ts"))
    score = np.asarray(table.column("score").cast(pa.float64()).to_numpy(zero_copy_only=False))
    flags = np.asarray(table.column("is_anomaly").fill_null(False).cast(pa.bool_())
                       .to_numpy(zero_copy_only=False), dtype=bool)
    vid = table.column("vehicle_id").combine_chunks()
    runs = pc.run_end_encode(vid)
    ends = np.asarray(runs.run_ends.to_numpy(), dtype=np.int64)
    starts = np.concatenate(([0], ends[:-1]))
    names = runs.values.to_pylist()
    return Seconds(ts, score, flags, {n: (int(a), int(b)) for n, a, b in zip(names, starts, ends)})


@dataclass(frozen=True)
class ModelInfo:
    """The model the scores came from: its card, threshold and training history (when found)."""

    name: str
    version: str
    model_dir: Path | None
    threshold: float | None  # one scalar threshold, or None (dynamic or unknown)
    threshold_kind: str
    history: dict[str, np.ndarray] | None  # epoch, train_loss, val_loss


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DtgError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DtgError(f"cannot read: {exc}", file=path) from None


def _threshold(obj: Any) -> tuple[float | None, str]:
    """A scalar threshold and its kind from a card/threshold entry: a number or {"kind"|"method", "value"}."""
    if isinstance(obj, bool) or obj is None:
        return None, "unknown"
    if isinstance(obj, (int, float)):
        return float(obj), "fixed"
    if isinstance(obj, dict):
        kind = str(obj.get("kind") or obj.get("method") or "fixed")
        value = obj.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
            return float(value), kind
        return None, kind
    return None, "unknown"


def load_history(path: Path) -> dict[str, np.ndarray] | None:
    """history.csv (epoch, train_loss, val_loss) as float arrays; None when the file is missing."""
    if not path.is_file():
        return None
    cols: dict[str, list[float]] = {"epoch": [], "train_loss": [], "val_loss": []}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("epoch", "train_loss") if c not in (reader.fieldnames or [])]
        if missing:
            raise DtgError("training history lacks a column", file=path, line=1, field=missing[0])
        for line, row in enumerate(reader, start=2):
            for name in cols:
                raw = (row.get(name) or "").strip()
                try:
                    cols[name].append(float(raw) if raw else np.nan)
                except ValueError:
                    raise DtgError(f"not a number: {raw!r}", file=path, line=line, field=name) from None
    return {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}


def load_model_info(scores_dir: Path, model_dir: Path | None = None) -> ModelInfo:
    """Model card, threshold and history for a scores folder.

    `scores/model.json` holds the card the scores came from (either the card itself or
    {"card": ..., "model_dir": ...}); `model_dir` overrides where the history is looked for.
    """
    meta: dict[str, Any] = {}
    meta_path = scores_dir / "model.json"
    if meta_path.is_file():
        loaded = _read_json(meta_path)
        if not isinstance(loaded, dict):
            raise DtgError("expected a JSON object", file=meta_path, line=1)
        meta = loaded
    card = meta.get("card") if isinstance(meta.get("card"), dict) else meta
    if model_dir is None:
        ref = meta.get("model_dir") or card.get("model_dir")
        model_dir = Path(ref) if isinstance(ref, str) and ref else None
    if model_dir is not None and not model_dir.is_absolute() and not model_dir.exists():
        model_dir = scores_dir / model_dir if (scores_dir / model_dir).exists() else model_dir
    if model_dir is not None and (model_dir / "card.json").is_file() and not card:
        card = _read_json(model_dir / "card.json")
    threshold, kind = _threshold(meta.get("threshold"))  # the value a run applied, if it recorded one
    if threshold is None and kind != "dynamic":
        threshold, kind = _threshold(card.get("threshold"))
    name = str(card.get("name") or (model_dir.parent.name if model_dir else "") or "unknown model")
    version = str(card.get("version") or (model_dir.name if model_dir else ""))
    history = load_history(model_dir / "history.csv") if model_dir is not None else None
    return ModelInfo(name, version, model_dir, threshold, kind, history)


def read_lake(lake_dir: Path, vehicles: list[str], start: int, end: int,
              columns: tuple[str, ...] = LAKE_COLUMNS) -> pa.Table:
    """Lake rows of `vehicles` with start <= ts <= end (epoch ms), sorted by (vehicle_id, ts).

    Goes through `dtg.lake.Lake.read`, which opens only the vehicle-day partitions asked for.
    """
    import datetime as dt

    from dtg.lake import Lake

    lo = dt.datetime.fromtimestamp(start / 1000.0, dt.timezone.utc)
    hi = dt.datetime.fromtimestamp((end + 1) / 1000.0, dt.timezone.utc)  # Lake.read's end is exclusive
    try:
        return Lake(lake_dir).read(vehicles=vehicles, start=lo, end=hi, columns=list(columns))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DtgError(f"cannot read the lake: {exc}", file=lake_dir) from None


def distance_km(ts_ms: np.ndarray, speed_kmh: np.ndarray, max_step_s: float = MAX_STEP_S) -> float:
    """Distance driven: trapezoid rule over speed, skipping steps longer than `max_step_s` (gaps)."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    v = np.asarray(speed_kmh, dtype=np.float64)
    if len(ts) < 2:
        return 0.0
    dt = np.diff(ts) / 1000.0
    mean_v = (v[1:] + v[:-1]) / 2.0
    ok = (dt > 0) & (dt <= max_step_s) & np.isfinite(mean_v)
    return float(np.sum(mean_v[ok] * dt[ok]) / 3600.0)


def valid_positions(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Rows with a usable GPS fix: finite, in range and not (0, 0), which DTGs log when they have no fix."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    return ok & ~((np.abs(lat) < 1e-6) & (np.abs(lon) < 1e-6))


def count_events(events_dir: Path, spans: dict[str, tuple[int, int]]) -> dict[str, int] | None:
    """Dangerous-driving events per vehicle that start inside that vehicle's scored span; None if no folder.

    `dtg events` writes `events.parquet` (one row per event) beside `summary.parquet`; only the former
    is read. A folder without it is read whole (every file must then be an events table).
    """
    single = events_dir / "events.parquet"
    table = read_folder(single if single.is_file() else events_dir, ("vehicle_id", "start"), "events")
    if table is None:
        return None
    names, inverse = np.unique(np.asarray(table.column("vehicle_id").to_pylist(), dtype=str), return_inverse=True)
    lo = np.array([spans.get(n, (1, 0))[0] for n in names.tolist()], dtype=np.int64)  # per vehicle, not per row
    hi = np.array([spans.get(n, (1, 0))[1] for n in names.tolist()], dtype=np.int64)
    start = epoch_ms(table.column("start"))
    inside = (start >= lo[inverse]) & (start <= hi[inverse])
    per_name = np.bincount(inverse[inside], minlength=len(names))
    found = dict(zip(names.tolist(), per_name.tolist()))
    return {v: int(found.get(v, 0)) for v in spans}
