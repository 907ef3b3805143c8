"""Labelled synthetic faults in drive logs, for benchmarking detectors (`dtg inject`).

`inject(table, ...)` returns a copy of a canonical table with faults written into it and a labels table
(vehicle_id, start, end, type, signal). A label spans exactly the first to the last row the fault
changed (or, for a dropout, removed): rows outside every label are bit-for-bit the original. Faults
never overlap and keep a guard of `GUARD_S` seconds between them, so their labels stay apart.
Deterministic: each vehicle's faults come from a generator seeded by (seed, key, vehicle_id).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable
from dataclasses import dataclass
import numpy as np
import pyarrow as pa

from dtg.errors import DtgError
from dtg.schema import TS_TYPE

FAULTS: tuple[str, ...] = ("stuck", "spike", "drift", "gps_jump", "brake_stuck", "dropout", "implausible")

LABELS_SCHEMA = pa.schema([("vehicle_id", pa.string()), ("start", TS_TYPE), ("end", TS_TYPE),
                           ("type", pa.string()), ("signal", pa.string())])

GUARD_S = 30
"""Seconds kept unfaulted between two faults of a vehicle."""
_TRIES = 50


@dataclass(frozen=True)
class FaultSpec:
    """How long a fault lasts (seconds, inclusive range) and which signals it may hit."""

    min_s: int
    max_s: int
    signals: tuple[str, ...]


SPECS: dict[str, FaultSpec] = {
    "stuck": FaultSpec(30, 120, ("speed", "rpm")),
    "spike": FaultSpec(1, 3, ("speed", "rpm")),
    "drift": FaultSpec(60, 300, ("speed", "rpm")),
    "gps_jump": FaultSpec(1, 10, ("lat,lon",)),
    "brake_stuck": FaultSpec(30, 180, ("brake",)),
    "dropout": FaultSpec(10, 120, ("all",)),
    "implausible": FaultSpec(5, 30, ("speed,rpm",)),
}

_HI = {"speed": 255.0, "rpm": 9999.0}
_RESOLUTION = {"speed": 0, "rpm": 0, "lat": 6, "lon": 6}
"""Decimal places the DTG record file keeps for each signal a fault may change."""


def parse_faults(text: str) -> tuple[str, ...]:
    """'stuck,spike' → ('stuck', 'spike'); an unknown name is a DtgError listing the valid ones."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    for n in names:
        if n not in FAULTS:
            raise DtgError(f"unknown fault '{n}' (valid: {', '.join(FAULTS)})", field="faults")
    if not names:
        raise DtgError(f"no faults given (valid: {', '.join(FAULTS)})", field="faults")
    return names


def _apply(kind: str, signal: str, cols: dict[str, np.ndarray], a: int, b: int,
           rng: np.random.Generator) -> None:
    """Write fault `kind` into rows a..b (inclusive) of the column arrays, in place."""
    sl = slice(a, b + 1)
    if kind == "stuck":
        x = cols[signal]
        x[sl] = x[a - 1] if a > 0 else x[a]
    elif kind == "spike":
        x = cols[signal]
        jump = rng.uniform(60.0, 120.0) if signal == "speed" else rng.uniform(3000.0, 6000.0)
        x[sl] = np.minimum(x[sl] + jump, _HI[signal])
    elif kind == "drift":
        x = cols[signal]
        total = rng.uniform(20.0, 40.0) if signal == "speed" else rng.uniform(800.0, 1500.0)
        ramp = total * np.arange(1, b - a + 2) / (b - a + 1)
        x[sl] = np.minimum(x[sl] + ramp, _HI[signal])
    elif kind == "gps_jump":
        ang = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.01, 0.05)  # degrees: about 1-5 km
        lat, lon = cols["lat"], cols["lon"]
        lat[sl] = np.clip(lat[sl] + dist * np.sin(ang), -90.0, 90.0)
        lon[sl] = np.clip(lon[sl] + dist * np.cos(ang), -180.0, 180.0)
    elif kind == "brake_stuck":
        cols["brake"][sl] = 1
    elif kind == "implausible":
        cols["rpm"][sl] = 0.0
        cols["speed"][sl] = np.maximum(cols["speed"][sl], 60.0)
    else:  # pragma: no cover - parse_faults guards the names
        raise ValueError(kind)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    if before.dtype.kind == "f":
        return ~((before == after) | (np.isnan(before) & np.isnan(after)))
    return before != after


def _segments(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) row of each run of 1-second steps."""
    brk = np.ones(len(ts), dtype=bool)
    if len(ts) > 1:
        d = np.diff(ts)
        brk[1:] = (d < 900) | (d > 1100)
    first = np.flatnonzero(brk)
    last = np.append(first[1:] - 1, len(ts) - 1)
    return first, last


def _seed_for(seed: int, key: str, vehicle: str) -> list[int]:
    return [int(seed), zlib.crc32(key.encode("utf-8")), zlib.crc32(vehicle.encode("utf-8"))]


def inject(table: pa.Table, faults: tuple[str, ...] = FAULTS, rate: float = 4.0, seed: int = 0,
           key: str = "", quantize: bool = False) -> tuple[pa.Table, pa.Table]:
    """Inject faults into a canonical table; return (faulty copy, labels).

    `rate` is the expected number of faults per hour of log per vehicle (at least one is tried per
    vehicle while the rate is positive); fault types take turns in a random order. `key` (e.g. the
    source file name) enters the seed so different files get different faults. `quantize` rounds
    faulty values to the DTG file's resolution (whole km/h and rpm, 1e-6 degrees), so that labels
    still match what changed after the copy is written in that format.
    """
    if not rate > 0:
        raise DtgError(f"rate must be positive, got {rate}", field="rate")
    for name in ("vehicle_id", "ts", "speed", "rpm", "brake", "lat", "lon"):
        if name not in table.column_names:
            raise DtgError("missing column", field=name)
    table = table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    vids = np.array(table.column("vehicle_id").to_pylist(), dtype=object)
    ts = table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
    names = ("speed", "rpm", "brake", "lat", "lon")
    orig = {c: table.column(c).to_numpy(zero_copy_only=False).copy() for c in names}
    cols = {c: v.copy() for c, v in orig.items()}
    keep = np.ones(table.num_rows, dtype=bool)
    labels: list[tuple[str, int, int, str, str]] = []
    bounds = np.flatnonzero(np.r_[True, vids[1:] != vids[:-1]]) if len(vids) else np.zeros(0, np.int64)
    ends = np.append(bounds[1:], len(vids))
    for v0, v1 in zip(bounds, ends):
        vehicle = str(vids[v0])
        rng = np.random.default_rng(_seed_for(seed, key, vehicle))
        hours = (v1 - v0) / 3600.0
        n = max(1, int(np.floor(rate * hours + rng.random())))
        order = [faults[(int(rng.integers(len(faults))) + k) % len(faults)] for k in range(n)]
        busy = np.zeros(v1 - v0, dtype=bool)
        seg_first, seg_last = _segments(ts[v0:v1])
        for kind in order:
            placed = _place(kind, rng, seg_first, seg_last, busy, cols, orig, keep, v0, ts, vehicle, quantize)
            if placed is not None:
                labels.append(placed)
    out = table
    for c in names:
        arr = pa.array(cols[c], mask=np.isnan(cols[c]) if cols[c].dtype.kind == "f" else None)
        out = out.set_column(out.schema.get_field_index(c), c, arr.cast(table.schema.field(c).type))
    out = out.filter(pa.array(keep))
    lab = pa.table({
        "vehicle_id": pa.array([x[0] for x in labels], pa.string()),
        "start": pa.array([x[1] for x in labels], pa.int64()).cast(TS_TYPE),
        "end": pa.array([x[2] for x in labels], pa.int64()).cast(TS_TYPE),
        "type": pa.array([x[3] for x in labels], pa.string()),
        "signal": pa.array([x[4] for x in labels], pa.string()),
    }, schema=LABELS_SCHEMA).sort_by([("vehicle_id", "ascending"), ("start", "ascending")])
    return out, lab


def _place(kind: str, rng: np.random.Generator, seg_first: np.ndarray, seg_last: np.ndarray,
           busy: np.ndarray, cols: dict[str, np.ndarray], orig: dict[str, np.ndarray], keep: np.ndarray,
           off: int, ts: np.ndarray, vehicle: str, quantize: bool) -> tuple[str, int, int, str, str] | None:
    """Try random places for one fault; apply the first that changes something. Returns its label."""
    spec = SPECS[kind]
    interior = 1 if kind == "dropout" else 0  # a dropout keeps a row on each side, so it is a gap
    for _ in range(_TRIES):
        length = int(rng.integers(spec.min_s, spec.max_s + 1))
        seg = int(rng.integers(len(seg_first)))
        lo, hi = seg_first[seg] + interior, seg_last[seg] - interior - length + 1
        if hi < lo:
            continue
        a = int(rng.integers(lo, hi + 1))
        b = a + length - 1
        g0, g1 = max(0, a - GUARD_S), min(len(busy), b + GUARD_S + 1)
        if busy[g0:g1].any():
            continue
        signal = spec.signals[int(rng.integers(len(spec.signals)))]
        ra, rb = off + a, off + b
        if kind == "dropout":
            keep[ra:rb + 1] = False
            first, last = ra, rb
        else:
            trial = {c: cols[c][ra - 1 if ra > 0 else ra:rb + 1].copy() for c in cols}
            _apply(kind, signal, cols, ra, rb, rng)
            if quantize:
                for c, digits in _RESOLUTION.items():
                    cols[c][ra:rb + 1] = np.round(cols[c][ra:rb + 1], digits)
            changed = np.zeros(rb - ra + 1, dtype=bool)
            for c in cols:
                changed |= _changed(orig[c][ra:rb + 1], cols[c][ra:rb + 1])
            if not changed.any():
                for c in cols:  # restore and try elsewhere
                    cols[c][ra - 1 if ra > 0 else ra:rb + 1] = trial[c]
                continue
            hit = np.flatnonzero(changed)
            first, last = ra + int(hit[0]), ra + int(hit[-1])
        busy[a:b + 1] = True
        return vehicle, int(ts[first]), int(ts[last]), kind, signal
    return None

# ---------------------------------------------------------------- files


OUTPUT_FORMATS = ("parquet", "csv", "dtg")
_SOURCE_EXT = {".dtg", ".txt", ".csv", ".tsv", ".parquet", ".pq"}


def _safe_name(text: str) -> str:
    """A file-name-safe version of `text` (letters incl. Hangul, digits, . _ - kept)."""
    import re

    name = re.sub(r"[^\w.\-]", "_", text, flags=re.UNICODE).strip("._")
    return name[:120] or "log"


def _expand(sources: list[Path]) -> list[tuple[Path, str]]:
    """(file, key) for every file: folders are searched recursively; key = path relative to the folder."""
    out: list[tuple[Path, str]] = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in _SOURCE_EXT
                           and not p.name.startswith("."))
            out += [(p, p.relative_to(src).as_posix()) for p in files]
        elif src.exists():
            out.append((src, src.name))
        else:
            raise DtgError("no such file or folder", file=src)
    if not out:
        raise DtgError("no drive log files found in the sources")
    return out


def write_log(table: pa.Table, path: Path, fmt: str) -> list[Path]:
    """Write a faulty copy as Parquet, CSV, or DTG record files (one per vehicle); return the paths."""
    from dtg.atomic import atomic_path, write_parquet

    if fmt == "parquet":
        path = path.with_suffix(".parquet")
        write_parquet(path, table)
        return [path]
    if fmt == "csv":
        import pyarrow.csv as pacsv

        path = path.with_suffix(".csv")
        cols = [c for c in table.column_names if c not in ("source_file", "source_row")]
        with atomic_path(path) as tmp:
            pacsv.write_csv(table.select(cols), tmp)
        return [path]
    import pyarrow.compute as pc

    from dtg.lake import partition_key
    from dtg.readers import dtg_text

    written = []
    for vehicle in sorted(set(table.column("vehicle_id").to_pylist())):
        rows = table.filter(pc.equal(table.column("vehicle_id"), vehicle))
        first = {c: rows.column(c)[0].as_py() if c in rows.column_names else None
                 for c in ("vehicle_type", "driver_code")}
        header = dtg_text.DtgHeader(vehicle_type=first["vehicle_type"] or "", registration=vehicle,
                                    driver_code=first["driver_code"] or "")
        target = path.with_name(f"{path.name}-{_safe_name(partition_key(vehicle))}.dtg")
        dtg_text.write(target, rows, header)
        written.append(target)
    return written


def inject_files(sources: list[Path], out: str | Path, faults: tuple[str, ...] = FAULTS, rate: float = 4.0,
                 seed: int = 0, fmt: str = "parquet", progress: Callable[[str], None] | None = None) -> dict:
    """Read each source with dtg.readers, inject faults, write the copies and one labels file to `out`.

    Rows a reader rejects are left out of the copy (they are not drive records it can rewrite). Returns
    the summary for `dtg inject --json`.
    """
    import pyarrow.compute as pc

    from dtg.atomic import atomic_path, write_parquet
    from dtg.readers import read_source

    if fmt not in OUTPUT_FORMATS:
        raise DtgError(f"unknown output format '{fmt}' (valid: {', '.join(OUTPUT_FORMATS)})", field="format")
    out = Path(out)
    files = _expand(sources)
    sources_resolved = {p.resolve() for p, _ in files}
    used: set[str] = set()
    written: list[str] = []
    labels: list[pa.Table] = []
    rows_in = rows_out = rejected = 0
    for path, key in files:
        res = read_source(path)
        rows_in += res.table.num_rows
        rejected += res.rejects.num_rows
        faulty, lab = inject(res.table, faults, rate=rate, seed=seed, key=key, quantize=fmt == "dtg")
        stem = _safe_name(Path(key).with_suffix("").as_posix().replace("/", "__"))
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        targets = write_log(faulty, out / name, fmt)
        if any(t.resolve() in sources_resolved for t in targets):
            raise DtgError("refusing to overwrite a source file; choose another --out", file=targets[0])
        written += [str(t) for t in targets]
        rows_out += faulty.num_rows
        labels.append(lab.append_column("file", pa.array([str(targets[0])] * lab.num_rows, pa.string())))
        if progress:
            progress(f"{path}: {lab.num_rows} faults, {res.table.num_rows - faulty.num_rows} rows dropped")
    all_labels = pa.concat_tables(labels).sort_by([("vehicle_id", "ascending"), ("start", "ascending")])
    write_parquet(out / "labels.parquet", all_labels)
    import pyarrow.csv as pacsv

    with atomic_path(out / "labels.csv") as tmp:
        pacsv.write_csv(all_labels, tmp)
    types = all_labels.column("type").to_pylist()
    return {
        "files": len(files), "files_written": written, "rows_in": rows_in, "rows_out": rows_out,
        "rows_rejected_by_reader": rejected, "labels_total": all_labels.num_rows,
        "faults": {t: types.count(t) for t in FAULTS if t in types},
        "labels_file": str(out / "labels.parquet"), "out": str(out), "seed": seed, "rate": rate,
        "vehicles": len(pc.unique(all_labels.column("vehicle_id"))) if all_labels.num_rows else 0,
    }
