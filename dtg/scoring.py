"""Scoring: a model's window errors → per-window, per-second and interval outputs (docs/design.md §4).

This module is the computation, over plain data: `score_window_set` runs the model over the windows
covering an input's seconds (context windows from neighbouring lake rows included), and
`build_outputs` turns the result into the three output tables. The scheduled job around it (ledger,
lock, crash safety) is `run_score` at the end of this module.

Choices (docs/scheduling.md repeats them for users):
- A second's score is the MAX of the errors of the windows covering it (any window that saw an
  anomalous second scores high, so no anomaly is averaged away); its top feature is the feature
  contributing most to that window's error.
- Windows are scored with stride 1 whatever the training stride, so every second is covered.
- A window belongs to the input holding its last second; it covers seconds of earlier inputs too.
- Seconds the segmenter interpolated into short gaps are scored as context but not written.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from dtg.errors import DtgError
from dtg.features import source_columns
from dtg.intervals import merge
from dtg.registry import sha256
from dtg.schema import TS_TYPE
from dtg.windowing import window_view

MS_PER_DAY = 86_400_000
KST_OFFSET_MS = 9 * 3_600_000  # Korea Standard Time has no daylight saving


@dataclass
class Scorer:
    """A loaded model and what scoring needs from its card."""

    model: Any  # torch.nn.Module (a dtg WindowModel)
    output_fn: Any  # maps the model's raw output to the prediction (identity, or sigmoid for BCE)
    features: tuple[str, ...]
    size: int
    max_gap: int
    target: str  # "reconstruct" | "next"
    scaler: Any
    threshold: float | None
    model_id: str  # "name/version", written in the outputs and the ledger
    card: dict[str, Any]
    model_dir: Path
    device: Any = None

    @property
    def shift(self) -> int:
        """Rows between a window's first row and the first row its error is about."""
        return 1 if self.target == "next" else 0

    @property
    def tag(self) -> str:
        """The model id made safe for file names (deterministic)."""
        return safe_name(self.model_id)


def safe_name(text: str) -> str:
    """Only [A-Za-z0-9._-]: anything else (slashes, dots at the start, Hangul) becomes '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".")
    return cleaned or "_"


@dataclass
class Scored:
    """Errors of the windows that cover an input's seconds, and the seconds' scores."""

    window: np.ndarray  # (n,) window indices into the window set (owned by the input)
    window_score: np.ndarray  # (n,) float32
    window_features: np.ndarray  # (n, F) float32
    rows: np.ndarray  # (k,) row indices of the input's scored seconds
    second_score: np.ndarray  # (k,) float32
    second_top: np.ndarray  # (k,) int: feature index contributing most
    windows_computed: int = 0


def load_scorer(model: str | Path, device: str = "auto", models_dir: str | Path = "models") -> Scorer:
    """Load a model (a version folder, or NAME[/VERSION] under `models_dir`) written by `dtg train`.

    Weights come from safetensors (no pickle) after their sha256 is checked against the card.
    """
    from dtg.device import resolve_device
    from dtg.models.base import objective
    from dtg.registry import load_model, resolve

    folder = resolve(model, models_dir)
    dev = resolve_device(device)
    loaded = load_model(folder, device=str(dev))
    card = loaded.card
    target = loaded.model.target
    if target not in ("reconstruct", "next"):
        raise DtgError(f"model {folder} predicts '{target}', not windows: dtg score needs an autoencoder "
                       "or a forecaster (lstm-ae, lstm-forecaster, mlp-ae)", field="model")
    _, output_fn = objective(card.get("training", {}).get("loss", "mse"), target)
    threshold = card.get("threshold", {}).get("value")
    return Scorer(model=loaded.model, output_fn=output_fn, features=tuple(card["features"]),
                  size=int(card["size"]), max_gap=int(card.get("max_gap") or 1), target=target,
                  scaler=loaded.scaler, threshold=None if threshold is None else float(threshold),
                  model_id=f"{card.get('name', folder.parent.name)}/{card.get('version', folder.name)}",
                  card=card, model_dir=folder, device=dev)


def window_errors_batched(scorer: Scorer, scaled: np.ndarray, starts: np.ndarray,
                          batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(score (n,), per_feature (n, F)) float32 for the windows starting at `starts`, in batches."""
    import torch

    from dtg.models import window_errors

    n, size = len(starts), scorer.size
    scores = np.empty(n, dtype=np.float32)
    feats = np.empty((n, len(scorer.features)), dtype=np.float32)
    view = window_view(scaled, size)
    with torch.inference_mode():
        for lo in range(0, n, batch_size):
            s = starts[lo:lo + batch_size]
            x = torch.from_numpy(view[s]).to(scorer.device)
            y = x if scorer.shift == 0 else torch.from_numpy(view[s + scorer.shift]).to(scorer.device)
            y_hat = scorer.output_fn(scorer.model(x))
            sc, pf = window_errors(y_hat, y)
            scores[lo:lo + len(s)] = sc.float().cpu().numpy()
            feats[lo:lo + len(s)] = pf.float().cpu().numpy()
    return scores, feats


def own_rows(ws: Any, keys: dict[str, np.ndarray]) -> np.ndarray:
    """(rows,) bool: rows of the window set that are the input's own seconds (not interpolated).

    `keys` maps vehicle id → the input's timestamps (int64 epoch ms).
    """
    own = np.zeros(ws.rows, dtype=bool)
    vidx = np.asarray(ws.vehicle_idx)
    ts = np.asarray(ws.ts)
    for i, vehicle in enumerate(ws.vehicles):
        if vehicle not in keys:
            continue
        rows = np.flatnonzero(vidx == i)
        own[rows] = np.isin(ts[rows], keys[vehicle])
    own &= ~np.asarray(ws.filled)
    return own


def score_window_set(scorer: Scorer, ws: Any, own: np.ndarray, batch_size: int = 4096) -> Scored:
    """Score every window covering an own row; per-second max over covering windows for own rows."""
    size, shift = scorer.size, scorer.shift
    starts = np.asarray(ws.starts, dtype=np.int64)
    usable = np.asarray(ws.has_next, dtype=bool) if shift else np.ones(len(starts), dtype=bool)
    first = starts + shift  # first row each window's error is about
    csum = np.concatenate(([0], np.cumsum(own, dtype=np.int64)))
    covers_own = (csum[np.minimum(first + size, ws.rows)] - csum[first]) > 0
    sel = np.flatnonzero(usable & covers_own)
    w_score, w_feat = window_errors_batched(scorer, ws.scaled, starts[sel], batch_size)

    rows = ws.rows
    own_idx = np.flatnonzero(own)
    sec_score, sec_win = cover_max(first[sel], w_score, rows, size, own_idx)
    covered = sec_win >= 0
    own_idx, sec_score, sec_win = own_idx[covered], sec_score[covered], sec_win[covered]
    top = w_feat[sec_win].argmax(axis=1) if len(sec_win) else np.zeros(0, dtype=np.int64)

    # Ownership: a window belongs to the input holding its last (real, not interpolated) second.
    last = first[sel] + size - 1
    owner_row = _next_real_row(np.asarray(ws.filled))[np.minimum(last, rows - 1)]
    owned = (owner_row >= 0) & own[np.maximum(owner_row, 0)]
    return Scored(window=sel[owned], window_score=w_score[owned], window_features=w_feat[owned],
                  rows=own_idx, second_score=sec_score, second_top=top, windows_computed=len(sel))


def cover_max(first: np.ndarray, scores: np.ndarray, n_rows: int, size: int,
              rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `rows`: the max score of the windows covering it and which window (-1: none).

    Window i covers rows first[i] .. first[i] + size - 1 (`first` unique, stride 1); ties go to the
    earliest window. One sliding-window view over a row-indexed array: O(len(rows) × size).
    """
    at = np.full(n_rows + size - 1, -np.inf, dtype=np.float32)  # at[size-1+r]: window starting at r
    which = np.full(n_rows + size - 1, -1, dtype=np.int64)
    at[size - 1 + first] = scores
    which[size - 1 + first] = np.arange(len(first))
    cover = sliding_window_view(at, size)[rows]  # windows starting in [r-size+1, r]
    best = cover.argmax(axis=1)
    return cover[np.arange(len(rows)), best], which[rows + best]


def _next_real_row(filled: np.ndarray) -> np.ndarray:
    """(rows,) index of the first non-interpolated row at or after each row (-1 if none)."""
    n = len(filled)
    idx = np.where(~filled, np.arange(n), n)
    nxt = np.minimum.accumulate(idx[::-1])[::-1]
    return np.where(nxt < n, nxt, -1)


@dataclass
class Outputs:
    """The three output tables of one input, sorted by (vehicle_id, time)."""

    windows: pa.Table
    seconds: pa.Table
    anomalies: pa.Table


def _ts_array(ms: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(ms, dtype=np.int64), pa.int64()).cast(TS_TYPE)


def flag_seconds(threshold: Any, scores: np.ndarray, vehicles: np.ndarray) -> np.ndarray:
    """Flags per second: a fixed threshold compares; a dynamic one is fitted per vehicle series."""
    from dtg.thresholds import DynamicThreshold

    if not isinstance(threshold, DynamicThreshold):
        return threshold.predict(scores)
    flags = np.zeros(len(scores), dtype=bool)
    for v in np.unique(vehicles):
        rows = np.flatnonzero(vehicles == v)
        flags[rows] = threshold.fit(scores[rows].astype(np.float64)).labels_
    return flags


def build_outputs(scorer: Scorer, ws: Any, scored: Scored, threshold: Any) -> Outputs:
    """The per-window, per-second and anomaly tables for one input (docs/design.md §4)."""
    features = pa.array(list(scorer.features), pa.string())
    vehicles = pa.array(list(ws.vehicles), pa.string())
    vidx = np.asarray(ws.vehicle_idx)
    ts = np.asarray(ws.ts)
    model = pa.scalar(scorer.model_id, pa.string())

    def pick(names: pa.Array, idx: np.ndarray) -> pa.Array:  # names[idx] without Python strings
        return names.take(pa.array(np.asarray(idx, dtype=np.int64)))

    w_rows = np.asarray(ws.starts)[scored.window]
    w_cols: dict[str, pa.Array] = {
        "vehicle_id": pick(vehicles, vidx[w_rows]),
        "window_start": _ts_array(ts[w_rows]),
        "score": pa.array(scored.window_score, pa.float32()),
    }
    for j, f in enumerate(scorer.features):
        w_cols[f"err_{f}"] = pa.array(scored.window_features[:, j], pa.float32())
    w_cols["model"] = pa.repeat(model, len(w_rows))
    windows = pa.table(w_cols)

    s_rows = scored.rows
    s_veh = vidx[s_rows]
    flags = flag_seconds(threshold, scored.second_score, s_veh)
    s_ts = ts[s_rows]
    top = np.asarray(scored.second_top, dtype=np.int64)
    seconds = pa.table({
        "vehicle_id": pick(vehicles, s_veh),
        "ts": _ts_array(s_ts),
        "score": pa.array(scored.second_score, pa.float32()),
        "is_anomaly": pa.array(flags, pa.bool_()),
        "top_feature": pick(features, top),
        "model": pa.repeat(model, len(s_rows)),
    })

    gap_ms = scorer.max_gap * 1000 + 500  # DTG clocks jitter by hundredths around the second
    iv = merge(flags, s_ts, scored.second_score, groups=s_veh, max_gap_ms=gap_ms)
    anomalies = pa.table({
        "vehicle_id": pick(vehicles, s_veh[iv.start]),
        "start": _ts_array(s_ts[iv.start]),
        "end": _ts_array(s_ts[iv.end]),
        "peak": _ts_array(s_ts[iv.peak]),
        "peak_score": pa.array(scored.second_score[iv.peak], pa.float32()),
        "top_feature": pick(features, top[iv.peak]),
        "seconds": pa.array((iv.end - iv.start + 1).astype(np.int32), pa.int32()),
        "model": pa.repeat(model, len(iv)),
    })
    return Outputs(windows=windows, seconds=seconds, anomalies=anomalies)


def kst_dates(ms: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD' (Korean local date) of each epoch-ms timestamp."""
    days = (np.asarray(ms, dtype=np.int64) + KST_OFFSET_MS) // MS_PER_DAY
    return days.astype("datetime64[D]").astype(str)


OUTPUT_KINDS: tuple[str, ...] = ("windows", "seconds", "anomalies")
"""Output folders. Every row of a vehicle-day chunk goes to that vehicle-day's partition: seconds by
their time, windows by their last second (the one that owns them), intervals by their start."""


def interval_records(anomalies: pa.Table, limit: int) -> list[dict[str, Any]]:
    """The first `limit` intervals as JSON-ready dicts with ISO timestamps (Korean local time)."""
    out = []
    t = anomalies.slice(0, limit)
    for row in t.to_pylist():
        out.append({"vehicle_id": row["vehicle_id"], "start": row["start"].isoformat(),
                    "end": row["end"].isoformat(), "peak_score": float(row["peak_score"]),
                    "top_feature": row["top_feature"]})
    return out


def check_lake_features(table: pa.Table, features: Sequence[str], where: str) -> None:
    """A clear error when the data lacks a column the model's features are read from (for a derived
    feature, its source columns: `dtg.features.source_columns`)."""
    for f in features:
        if f not in table.column_names:
            raise DtgError(f"the model needs feature '{f}', which {where} does not have", field=f)
        col = table.column(f)
        if col.null_count == len(col) and len(col):
            raise DtgError(f"the model needs feature '{f}', but every value of it in {where} is missing",
                           field=f)


# -- the scheduled job ----------------------------------------------------------------------------

SUMMARY_ANOMALY_LIMIT = 1000


@dataclass(frozen=True)
class Input:
    """One unit of exactly-once scoring: a drive-log file, or a lake partition (vehicle-day)."""

    name: str  # as shown to users (path as given, or lake:vehicle=<key>/date=<d>)
    identity: str  # what 'the same input' means across runs (resolved path / partition folder)
    digest: str  # content hash: a changed file is a new input
    partition: Any = None  # dtg.lake.Partition for lake inputs


@dataclass
class ScoreSummary:
    """What one `dtg score` run did (docs/design.md §3 keys first)."""

    files_new: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    windows_scored: int = 0
    seconds_scored: int = 0
    anomalies_total: int = 0
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    out: str = ""
    ledger: str = ""
    model: str = ""
    threshold: str = "default"
    errors: list[dict[str, Any]] = field(default_factory=list)
    recovered: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        return dataclasses.asdict(self)


def lake_inputs(lake: Any) -> list[Input]:
    """Every lake partition as an input; its digest hashes its part files' names and bytes."""
    import hashlib

    inputs = []
    for part in lake.partitions():
        h = hashlib.sha256()
        for f in part.files:
            h.update(f.name.encode() + b"\x00" + sha256(f).encode() + b"\n")
        rel = f"{part.path.parent.name}/{part.path.name}"
        inputs.append(Input(name=f"lake:{rel}", identity=f"lake:{part.path.resolve()}", digest=h.hexdigest(),
                            partition=part))
    return inputs


class _RecordingLake:
    """A lake that remembers the rows it was asked to store (the log's valid rows)."""

    def __init__(self, lake: Any) -> None:
        self.lake = lake
        self.tables: list[pa.Table] = []

    def write(self, table: pa.Table) -> tuple[int, int]:
        self.tables.append(table.select(["vehicle_id", "ts"]))
        return self.lake.write(table)


def _ingest_file(path: Path, lake: Any, quarantine_dir: Path) -> dict[str, np.ndarray]:
    """Ingest one log into the lake with `dtg ingest`'s own code (read, validate, quarantine, store);
    return its valid seconds per vehicle (duplicates of stored seconds included)."""
    from dtg.ingest import ingest_file

    recorder = _RecordingLake(lake)
    result, _ = ingest_file(path, recorder, quarantine_dir)
    if result.error:
        raise DtgError(result.error)
    if not recorder.tables:
        return {}
    return _keys_of(pa.concat_tables(recorder.tables))


def _keys_of(table: pa.Table) -> dict[str, np.ndarray]:
    if table.num_rows == 0:
        return {}
    vid = np.asarray(table.column("vehicle_id").to_pylist(), dtype=object)
    ts = table.column("ts").cast(TS_TYPE).cast(pa.int64()).to_numpy()
    return {str(v): np.unique(ts[vid == v]) for v in sorted(set(vid.tolist()))}


def _partition_keys(lake: Any, part: Any) -> dict[str, np.ndarray]:
    return {part.vehicle_id: lake.stored_ts(part.vehicle_id, part.date)}


@dataclass
class Chunk:
    """The outputs of one vehicle-day of an input (the unit scored, written and held in memory)."""

    vehicle: str
    date: str  # Korean local date, 'YYYY-MM-DD'
    outputs: Outputs
    windows_computed: int


def vehicle_days(keys: dict[str, np.ndarray]) -> list[tuple[str, str, np.ndarray]]:
    """An input's seconds split by vehicle and Korean local date, in (vehicle, date) order."""
    out = []
    for vehicle in sorted(keys):
        ts = np.sort(np.asarray(keys[vehicle], dtype=np.int64))
        if len(ts) == 0:
            continue
        days = (ts + KST_OFFSET_MS) // MS_PER_DAY
        for part in np.split(ts, np.flatnonzero(np.diff(days)) + 1):
            out.append((vehicle, str(kst_dates(part[:1])[0]), part))
    return out


def context_ms(scorer: Scorer) -> int:
    """Milliseconds of neighbouring lake rows read on each side of a vehicle-day's seconds: enough
    that every window covering one of its seconds is complete."""
    return (scorer.size + 2) * max(1, scorer.max_gap) * 1000 + 1000


def context_query(scorer: Scorer, vehicle: str, ts: np.ndarray) -> dict[str, Any]:
    """`Lake.read` arguments for one vehicle-day's seconds (sorted epoch ms) and their context."""
    import datetime as dt

    margin = context_ms(scorer)
    return {"vehicles": [vehicle], "columns": ["vehicle_id", "ts", *source_columns(scorer.features)],
            "start": dt.datetime.fromtimestamp((int(ts[0]) - margin) / 1000, dt.timezone.utc),
            "end": dt.datetime.fromtimestamp((int(ts[-1]) + margin + 1) / 1000, dt.timezone.utc)}


def touches(keys: dict[str, np.ndarray], other: dict[str, np.ndarray], margin_ms: int) -> bool:
    """True when `other` (vehicle → epoch ms) has a second of a vehicle of `keys` within `margin_ms`
    of one of its vehicle-days: the lake rows `score_chunks(keys)` reads are then not the same
    before and after `other`'s rows are stored."""
    for vehicle, _date, ts in vehicle_days(keys):
        theirs = np.asarray(other.get(vehicle, ()), dtype=np.int64)
        if ((theirs >= ts[0] - margin_ms) & (theirs <= ts[-1] + margin_ms)).any():
            return True
    return False


def score_chunks(scorer: Scorer, lake: Any, keys: dict[str, np.ndarray], threshold: Any,
                 batch_size: int = 4096) -> Iterator[Chunk]:
    """Score an input's seconds (`keys`: vehicle → epoch ms) one vehicle-day at a time, with the
    neighbouring seconds in the lake as context; memory is bounded by one vehicle-day."""
    for vehicle, date, ts in vehicle_days(keys):
        ws, own = vehicle_day_set(scorer, lake, vehicle, ts)
        scored = score_window_set(scorer, ws, own, batch_size)
        yield Chunk(vehicle, date, build_outputs(scorer, ws, scored, threshold), scored.windows_computed)


def vehicle_day_set(scorer: Scorer, lake: Any, vehicle: str, ts: np.ndarray) -> tuple[Any, np.ndarray]:
    """The window set of one vehicle-day's seconds (sorted epoch ms) with their lake context, and
    which of its rows are those seconds. A `_LookAhead` gives the one it prepared, once."""
    from dtg.windowset import build_window_set

    if isinstance(lake, _LookAhead):
        prepared = lake.take(vehicle, ts)
        if prepared is not None:
            return prepared
        lake = lake.lake
    table = lake.read(**context_query(scorer, vehicle, ts))
    check_lake_features(table, source_columns(scorer.features), f"the data of vehicle {vehicle}")
    ws = build_window_set(table, size=scorer.size, stride=1, features=scorer.features,
                          max_gap=scorer.max_gap, split=None, scaler=scorer.scaler)
    return ws, own_rows(ws, {vehicle: ts})


def score_input(scorer: Scorer, lake: Any, keys: dict[str, np.ndarray], threshold: Any,
                batch_size: int = 4096) -> tuple[Outputs, int]:
    """All of an input's outputs at once (for library use; the job streams `score_chunks`)."""
    chunks = list(score_chunks(scorer, lake, keys, threshold, batch_size))
    if not chunks:
        nothing = Scored(window=np.zeros(0, np.int64), window_score=np.zeros(0, np.float32),
                         window_features=np.zeros((0, len(scorer.features)), np.float32),
                         rows=np.zeros(0, np.int64), second_score=np.zeros(0, np.float32),
                         second_top=np.zeros(0, np.int64))
        return build_outputs(scorer, _EmptySet(), nothing, threshold), 0
    tables = [pa.concat_tables([getattr(c.outputs, k) for c in chunks]) for k in ("windows", "seconds", "anomalies")]
    return Outputs(*tables), sum(c.windows_computed for c in chunks)


class _EmptySet:
    """A window set with no rows (an input with no usable seconds)."""

    def __init__(self) -> None:
        self.vehicles: list[str] = []
        self.vehicle_idx = np.zeros(0, np.int32)
        self.ts = np.zeros(0, np.int64)
        self.starts = np.zeros(0, np.int64)


def _output_path(out_dir: Path, kind: str, vehicle: str, date: str, digest: str, tag: str) -> Path:
    from dtg.lake import partition_key

    return out_dir / kind / f"vehicle={partition_key(vehicle)}" / f"date={date}" / f"part-{digest[:20]}-{tag}.parquet"


def write_chunk(chunk: Chunk, out_dir: Path, digest: str, tag: str, run_id: str) -> list[tuple[str, str]]:
    """Write a chunk's outputs as hidden temp files beside their final names (fsynced); return the
    (temp, final) moves. Names depend only on the input's digest, the model and the partition."""
    import os

    import pyarrow.parquet as pq

    from dtg.atomic import TMP_PREFIX

    moves = []
    for kind in OUTPUT_KINDS:
        table = getattr(chunk.outputs, kind)
        if table.num_rows == 0:
            continue
        final = _output_path(out_dir, kind, chunk.vehicle, chunk.date, digest, tag)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f"{TMP_PREFIX}{final.name}.{run_id}"
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        moves.append((str(tmp), str(final)))
    return moves


def remove_stale_temps(out_dir: Path) -> int:
    """Delete temp files a killed run left under the output folders (call while holding the lock)."""
    from dtg.atomic import TMP_PREFIX

    removed = 0
    for kind in OUTPUT_KINDS:
        root = out_dir / kind
        if root.is_dir():
            for f in root.rglob(TMP_PREFIX + "*"):
                if f.is_file():
                    f.unlink(missing_ok=True)
                    removed += 1
    return removed


def run_score(
    sources: Sequence[str | Path],
    model: str | Path,
    *,
    lake_dir: str | Path,
    out_dir: str | Path,
    ledger_path: str | Path,
    quarantine_dir: str | Path,
    models_dir: str | Path = "models",
    threshold: str = "default",
    rescore: bool = False,
    batch_size: int = 4096,
    device: str = "auto",
    wait: bool = False,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    log: Any = None,
) -> ScoreSummary:
    """The scheduled job: score every input the ledger has not seen for this model version.

    With no `sources`, every lake partition is an input. Holds the run lock throughout; finishes the
    commits of killed runs first; ingests the new logs in a background thread while the model scores
    the stored ones, with the outputs of ingesting all of them first (a log's neighbours in the same
    run are context for it: `_score_local`); then per input: score, write temp files, commit (ledger).
    A bad input is recorded as failed and reported; the others are still scored.
    `engine="ray"` scores the vehicle-days on Ray (`address`: a cluster to join; `workers`: actors,
    and CPUs of a local Ray), everything else unchanged (dtg/engines/ray_engine.py).
    """
    import uuid

    from dtg.atomic import write_json
    from dtg.lake import Lake
    from dtg.ledger import Ledger, recover
    from dtg.lock import RunLock
    from dtg.thresholds import from_spec

    say = log or (lambda msg: None)
    if engine not in ("local", "ray"):
        raise DtgError(f"unknown engine '{engine}' (valid: local, ray)", field="engine")
    if engine == "ray":
        from dtg.engines.ray_engine import require_ray

        require_ray()
    elif address is not None or workers is not None:
        raise DtgError("--address and --workers apply only to --engine ray", field="engine")
    if batch_size < 1:
        raise DtgError(f"batch size must be >= 1, got {batch_size}", field="batch_size")
    out_dir, lake_dir, ledger_path = Path(out_dir), Path(lake_dir), Path(ledger_path)
    summary = ScoreSummary(out=str(out_dir), ledger=str(ledger_path), threshold=str(threshold))
    run_id = uuid.uuid4().hex[:12]
    files: list[Path] = []
    if sources:
        from dtg.ingest import expand_sources

        files = expand_sources(sources)
    with RunLock(ledger_path.with_name(ledger_path.name + ".lock"), wait=wait), Ledger(ledger_path) as ledger:
        summary.recovered = recover(ledger, run_id)
        summary.recovered["temp_files_removed"] = remove_stale_temps(out_dir)
        if summary.recovered["rolled_forward"] or summary.recovered["interrupted"]:
            say(f"recovered a killed run: {summary.recovered}")
        scorer = load_scorer(model, device, models_dir)
        summary.model = scorer.model_id
        thr = from_spec(threshold, scorer.threshold)
        lake = Lake(lake_dir)
        write_json(out_dir / "model.json", {"model": scorer.model_id, "model_dir": str(scorer.model_dir),
                                            "card": scorer.card, "threshold": thr.to_dict()})

        # 1. Which inputs are new; all of them marked running in one ledger transaction.
        candidates = lake_inputs(lake) if not sources else []
        for f in files:
            try:
                candidates.append(Input(str(f), str(f.resolve()), sha256(f)))
            except OSError as exc:
                summary.files_failed += 1
                summary.errors.append({"file": str(f), "error": f"cannot read: {exc.strerror}"})
                say(f"failed {f}: cannot read: {exc.strerror}")
        inputs: list[Input] = []
        seen: set[str] = set()
        for inp in candidates:
            if inp.digest in seen or (not rescore and ledger.is_done(inp.digest, scorer.model_id)):
                summary.files_skipped += 1  # scored before, or a copy of a log earlier in this run
                continue
            seen.add(inp.digest)
            inputs.append(inp)
        ledger.begin_all([(inp.digest, inp.identity) for inp in inputs], scorer.model_id, run_id)

        # 2. Ingest the new logs in file order in a background thread (so a log's neighbours in the
        #    run are context for it) while the model scores the ones already stored, vehicle-day by
        #    vehicle-day; a writer thread writes each chunk's temp files while the model works on
        #    the next, and commits each input once its outputs are final.
        with _Ingester(inputs, lake, Path(quarantine_dir)) as ingester:
            if engine == "ray":
                from dtg.engines.ray_engine import score_on_ray

                todo = []
                for i, inp in enumerate(inputs):  # every log stored before any is scored
                    try:
                        todo.append((inp, ingester.keys(i)))
                    except DtgError as exc:
                        _failed(ledger, summary, inp, scorer, exc, run_id, say)
                with _Committer(ledger, out_dir, scorer, run_id, summary, say) as committer:
                    score_on_ray(todo, scorer, lake, thr, batch_size, committer, device=device, address=address,
                                 workers=workers, say=say)
            else:
                with _Committer(ledger, out_dir, scorer, run_id, summary, say) as committer:
                    _score_local(inputs, ingester, scorer, lake, thr, batch_size, committer)
    return summary


def _score_local(inputs: list[Input], ingester: "_Ingester", scorer: Scorer, lake: Any, threshold: Any,
                 batch_size: int, committer: "_Committer") -> None:
    """Score the inputs in order on this thread while `ingester` may still be storing later logs.

    An input scored before every later log was stored is decided once they all are: if none of the
    logs stored since adds rows within its context (`touches`), its outputs stand; otherwise its temp
    files are dropped and it is scored again on the complete lake. Inputs are committed or failed in
    input order. So outputs, ledger and summary are those of storing every log first, then scoring.
    While the model scores an input, a reader thread waits for the next one's keys, reads its first
    vehicle-day from the lake and builds its window set (`_LookAhead`).
    """
    from concurrent.futures import ThreadPoolExecutor

    margin = context_ms(scorer)
    pending: list[tuple[Input, dict[str, np.ndarray] | None, list[int], DtgError | None]] = []

    def score(inp: Input, keys: dict[str, np.ndarray], source: Any = lake) -> DtgError | None:
        try:
            for chunk in score_chunks(scorer, source, keys, threshold, batch_size):
                committer.add(inp, chunk)
        except DtgError as exc:
            committer.discard(inp)
            return exc
        return None

    def settle() -> None:
        """Commit or fail the pending inputs, in order; every log is stored by now."""
        for inp, keys, unstored, error in pending:
            if keys is not None and unstored and (
                    error is not None or any(touches(keys, ingester.keys(j), margin)
                                             for j in unstored if ingester.stored(j))):
                if error is None:
                    committer.discard(inp)
                error = score(inp, keys)
            if error is None:
                committer.finish(inp)
            else:
                committer.fail(inp, error)
        pending.clear()

    def look_ahead(i: int) -> "_LookAhead":
        try:
            keys = ingester.keys(i)
        except DtgError as exc:
            return _LookAhead(lake, None, [], exc)
        ahead = _LookAhead(lake, keys, ingester.unstored_after(i))  # before any read of input i
        ahead.prepare_first(scorer)
        return ahead

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dtg-read") as reader:
        upcoming = reader.submit(look_ahead, 0) if inputs else None
        for i, inp in enumerate(inputs):
            ahead = upcoming.result()
            upcoming = reader.submit(look_ahead, i + 1) if i + 1 < len(inputs) else None
            if ahead.keys is None:
                pending.append((inp, None, [], ahead.error))
            else:
                pending.append((inp, ahead.keys, ahead.unstored, score(inp, ahead.keys, ahead)))
            if ingester.complete():
                settle()
    ingester.complete(wait=True)
    settle()


class _LookAhead:
    """An input's keys (or its ingest's error), the logs not yet stored when they were taken, and the
    window set of its first vehicle-day, prepared ahead of time (`vehicle_day_set` takes it once)."""

    def __init__(self, lake: Any, keys: dict[str, np.ndarray] | None, unstored: list[int],
                 error: DtgError | None = None) -> None:
        self.lake, self.keys, self.unstored, self.error = lake, keys, unstored, error
        self._first: tuple[str, np.ndarray, tuple[Any, np.ndarray]] | None = None

    def prepare_first(self, scorer: Scorer) -> None:
        days = vehicle_days(self.keys or {})
        if days:
            vehicle, _date, ts = days[0]
            try:
                self._first = (vehicle, ts, vehicle_day_set(scorer, self.lake, vehicle, ts))
            except Exception:  # noqa: BLE001 - the scoring thread prepares it again and reports it there
                self._first = None

    def take(self, vehicle: str, ts: np.ndarray) -> tuple[Any, np.ndarray] | None:
        """The prepared window set if it is this vehicle-day's, else None; forgotten either way (it is
        for the input's first vehicle-day, the first one asked for)."""
        first, self._first = self._first, None
        if first is not None and first[0] == vehicle and np.array_equal(first[1], ts):
            return first[2]
        return None


class _Ingester:
    """Stores the run's new logs in the lake (`dtg ingest`'s code) one after another in a background
    thread, so that the model scores the first logs while the next ones are read and stored. Lake
    inputs store nothing: the thread reads their keys (the partition's stored seconds) ahead."""

    def __init__(self, inputs: list[Input], lake: Any, quarantine_dir: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dtg-ingest")
        self._jobs = [self._pool.submit(_ingest_file, Path(inp.name), lake, quarantine_dir) if inp.partition is None
                      else self._pool.submit(_partition_keys, lake, inp.partition) for inp in inputs]
        self._logs = {i for i, inp in enumerate(inputs) if inp.partition is None}  # the inputs that write

    def keys(self, i: int) -> dict[str, np.ndarray]:
        """Input i's seconds per vehicle, once stored (raises its ingest's DtgError)."""
        return self._jobs[i].result()

    def stored(self, i: int) -> bool:
        """Input i is a log whose ingest ended without error (so it may have added rows to the lake)."""
        job = self._jobs[i]
        return i in self._logs and job.done() and job.exception() is None

    def unstored_after(self, i: int) -> list[int]:
        """The logs after input i whose ingest has not ended yet."""
        return [j for j in range(i + 1, len(self._jobs)) if j in self._logs and not self._jobs[j].done()]

    def complete(self, wait: bool = False) -> bool:
        """Whether every ingest has ended (`wait`: wait for them). An error other than a log's
        DtgError stops the run here, before any input scored on an incomplete lake is committed."""
        if not wait and not all(self._jobs[j].done() for j in self._logs):
            return False
        for job in self._jobs:
            exc = job.exception()
            if exc is not None and not isinstance(exc, DtgError):
                raise exc
        return True

    def __enter__(self) -> "_Ingester":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)


@dataclass
class _Written:
    """What the committer holds for an input between its first chunk and its commit."""

    moves: list[tuple[str, str]] = field(default_factory=list)  # (temp, final)
    counts: dict[str, int] = field(default_factory=lambda: {"rows": 0, "windows": 0, "anomalies": 0, "computed": 0})
    intervals: list[dict[str, Any]] = field(default_factory=list)  # its first intervals, for the summary


class _Committer:
    """Writes inputs' chunks and commits inputs in one background thread, in order, so file I/O
    overlaps the model's work on the next chunk. At most MAX_PENDING tasks are outstanding (one
    chunk being written and one queued, or a chunk and its input's commit): memory stays bounded and
    an input's commit does not stall the model. Only this thread touches the ledger while it runs.
    Several inputs may be written and not yet committed (`_score_local` defers some commits)."""

    MAX_PENDING = 2

    def __init__(self, ledger: Any, out_dir: Path, scorer: Scorer, run_id: str, summary: ScoreSummary,
                 say: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.ledger, self.out_dir, self.scorer, self.run_id = ledger, out_dir, scorer, run_id
        self.summary, self.say = summary, say
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dtg-commit")
        self._pending: deque[Any] = deque()  # submitted tasks not known to be finished, oldest first
        self._written: dict[str, _Written] = {}  # by input digest

    def _enqueue(self, fn: Any, *args: Any) -> None:
        while len(self._pending) >= self.MAX_PENDING:
            self._pending.popleft().result()  # re-raises the writer's error here
        self._pending.append(self._pool.submit(fn, *args))

    def add(self, inp: Input, chunk: Chunk) -> None:
        self._enqueue(self._write, inp, chunk)

    def finish(self, inp: Input) -> None:
        self._enqueue(self._commit, inp)

    def fail(self, inp: Input, exc: DtgError) -> None:
        self._enqueue(self._abort, inp, exc)

    def discard(self, inp: Input) -> None:
        """Forget what was written of `inp` (its temp files are deleted); the ledger is untouched."""
        self._enqueue(self._drop, inp)

    def add_written(self, inp: Input, moves: list[tuple[str, str]], counts: dict[str, int],
                    intervals: list[dict[str, Any]]) -> None:
        """A chunk whose temp files another process wrote (the Ray engine's actors): its (temp, final)
        moves, counts (rows, windows, anomalies, computed) and its first interval records."""
        self._enqueue(self._add_written, inp, moves, counts, intervals)

    def _add_written(self, inp: Input, moves: list[tuple[str, str]], counts: dict[str, int],
                     intervals: list[dict[str, Any]]) -> None:
        w = self._written.setdefault(inp.digest, _Written())
        w.moves += moves
        for key in w.counts:
            w.counts[key] += counts[key]
        w.intervals += intervals[:self._room(w)]

    def _room(self, w: _Written) -> int:
        """How many more of an input's intervals the summary might list."""
        return max(0, SUMMARY_ANOMALY_LIMIT - len(self.summary.anomalies) - len(w.intervals))

    def _write(self, inp: Input, chunk: Chunk) -> None:
        w = self._written.setdefault(inp.digest, _Written())
        w.moves += write_chunk(chunk, self.out_dir, inp.digest, self.scorer.tag, self.run_id)
        out = chunk.outputs
        for key, n in (("rows", out.seconds.num_rows), ("windows", out.windows.num_rows),
                       ("anomalies", out.anomalies.num_rows), ("computed", chunk.windows_computed)):
            w.counts[key] += n
        if self._room(w):
            w.intervals += interval_records(out.anomalies, self._room(w))

    def _drop(self, inp: Input) -> None:
        for tmp, _final in self._written.pop(inp.digest, _Written()).moves:
            Path(tmp).unlink(missing_ok=True)

    def _commit(self, inp: Input) -> None:
        from dtg.ledger import commit

        w = self._written.pop(inp.digest, None) or _Written()
        moves, counts = w.moves, w.counts
        ledger, model, summary = self.ledger, self.scorer.model_id, self.summary
        previous = ledger.get(inp.digest, model)
        # The file's old content (this model), and this input scored into this folder by another
        # version of the model: their outputs go, so a scores folder holds each log once.
        replaced = [e for e in ledger.replaced(inp.digest, inp.identity, model)
                    if e.model == model or _inside(e.outputs, self.out_dir)]
        remove = [p for e in replaced for p in e.outputs] + (previous.outputs if previous else [])
        commit(ledger, inp.digest, model, moves, remove, [(e.input_hash, e.model) for e in replaced],
               {k: counts[k] for k in ("rows", "windows", "anomalies")})
        summary.files_new += 1
        summary.windows_scored += counts["computed"]
        summary.seconds_scored += counts["rows"]
        summary.anomalies_total += counts["anomalies"]
        summary.anomalies += w.intervals[:SUMMARY_ANOMALY_LIMIT - len(summary.anomalies)]
        self.say(f"scored {inp.name}: {counts['rows']} seconds, {counts['windows']} windows, "
                 f"{counts['anomalies']} anomalies")

    def _abort(self, inp: Input, exc: DtgError) -> None:
        self._drop(inp)
        _failed(self.ledger, self.summary, inp, self.scorer, exc, self.run_id, self.say)

    def __enter__(self) -> "_Committer":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            while self._pending and exc_type is None:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)


def _inside(paths: list[str], folder: Path) -> bool:
    """True when any of `paths` lies under `folder`."""
    root = folder.resolve()
    return any(root in Path(p).resolve().parents for p in paths)


def _failed(ledger: Any, summary: ScoreSummary, inp: Input, scorer: Scorer, exc: DtgError, run_id: str,
            say: Any) -> None:
    ledger.fail(inp.digest, scorer.model_id, inp.identity, str(exc), run_id)
    summary.files_failed += 1
    summary.errors.append({"file": inp.name, "error": str(exc)})
    say(f"failed {inp.name}: {exc}")
