"""`dtg window`: the lake's rows as a window set (segments, window index, splits, scaler) on disk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from dtg.cli.common import JSON_OPTION, emit, log
from dtg.workspace import DEFAULT


def _human(s: dict[str, Any]) -> str:
    splits = ", ".join(f"{k} {v}" for k, v in s["splits"].items())
    lines = [
        f"window set: {s['out']}",
        f"  {s['rows']} rows in {s['segments']} segments of {s['vehicles']} vehicles "
        f"({s['rows_filled']} filled seconds)",
        f"  {s['windows']} windows of {s['size']} s, stride {s['stride']}, features {','.join(s['features'])}",
        f"  splits: {splits}; purged {s['purged']}; scaler {s['scaler']}",
    ]
    if s.get("vehicles_dropped"):
        lines.append(f"  dropped (a feature is missing for every row): {', '.join(s['vehicles_dropped'])}")
    return "\n".join(lines)


def window(
    lake: Path = typer.Option(DEFAULT.lake, "--lake", help="Lake folder written by `dtg ingest`."),
    out: Path = typer.Option(DEFAULT.windows, "--out", help="Folder of the window set (replaced if it is one)."),
    size: int = typer.Option(20, "--size", min=1, help="Window length in seconds (rows)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Seconds between the starts of consecutive windows."),
    features: str = typer.Option("speed,rpm,brake,lat", "--features", help="Comma-separated features: signal columns "
                                  "(speed, rpm, brake, lat, lon, ...) and derived motion features, computed "
                                  "per vehicle over consecutive seconds from lat/lon (0 at a segment's first "
                                  "row and next to a (0,0) no-fix row): gps_step = metres moved since the "
                                  "previous second, heading_rate = signed change of GPS course in degrees "
                                  "per second."),
    max_gap: int = typer.Option(1, "--max-gap", min=1,
                                help="Longest step (seconds) kept inside a segment; 2..N-second steps are "
                                     "filled by interpolation. 1: no gap allowed."),
    scaler: str = typer.Option("minmax", "--scaler", help="minmax | minmax-sym | standard (fitted on train)."),
    split: str = typer.Option("0.7,0.15,0.15", "--split", help="Train,val,test fractions."),
    split_by: str = typer.Option("time", "--split-by", help="time (blocks of each vehicle's timeline) | vehicle."),
    seed: Optional[int] = typer.Option(0, "--seed", help="Seed of every random choice (vehicle assignment)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Cut the lake into gap-aware windows with leakage-free train/val/test splits."""
    from dtg.errors import DtgError
    from dtg.features import source_columns
    from dtg.lake import Lake
    from dtg.scaling import make_scaler
    from dtg.splits import SplitSpec
    from dtg.windowset import build_window_set, check_features

    feats = check_features(features)
    spec = SplitSpec.parse(split, by=split_by, seed=seed or 0)
    make_scaler(scaler)  # a bad name fails before the lake is read
    if not lake.is_dir():
        raise DtgError("lake folder not found; run `dtg ingest SOURCE --lake DIR` first", file=lake)
    t0 = time.perf_counter()
    store = Lake(lake)
    batches = _vehicle_batches(store)
    if not batches:
        raise DtgError("the lake has no rows; run `dtg ingest` first", file=lake)
    total = sum(rows for _, rows in batches)
    columns = ["vehicle_id", "ts", *source_columns(feats)]
    # a few vehicles at a time: only one batch of Arrow rows is in memory while the set is built
    tables = (store.read(vehicles=names, columns=columns, dictionary_ids=True) for names, _ in batches)
    ws = build_window_set(tables, size=size, stride=stride, features=feats, max_gap=max_gap, split=spec,
                          scaler=scaler, lake_fingerprint=store.fingerprint(), rows_hint=total)
    log(f"read {total} rows from {lake} and built {ws.n_windows} windows in {time.perf_counter() - t0:.1f}s")
    t1 = time.perf_counter()
    ws.save(out)
    log(f"saved to {out} in {time.perf_counter() - t1:.1f}s")
    emit({**ws.summary(), "out": str(out)}, as_json, _human)


BATCH_ROWS = 1 << 20
"""Rows of lake data read at once (whole vehicles; a vehicle larger than this is read alone)."""


def _vehicle_batches(store) -> list[tuple[list[str], int]]:
    """Vehicles in id order, grouped so that each group holds about BATCH_ROWS rows (Parquet footers)."""
    import pyarrow.parquet as pq

    per_vehicle: dict[str, int] = {}
    for part in store.partitions():
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in part.files)
        per_vehicle[part.vehicle_id] = per_vehicle.get(part.vehicle_id, 0) + rows
    batches: list[tuple[list[str], int]] = []
    for name in sorted(per_vehicle):
        if batches and batches[-1][1] + per_vehicle[name] <= BATCH_ROWS:
            batches[-1][0].append(name)
            batches[-1] = (batches[-1][0], batches[-1][1] + per_vehicle[name])
        else:
            batches.append(([name], per_vehicle[name]))
    return [(names, rows) for names, rows in batches if rows]


def register(app: typer.Typer) -> None:
    app.command("window")(window)
