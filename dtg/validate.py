"""Row checks between reading and storing: ranges, GPS fix, duplicate seconds, clock going backwards.

Each rejected row gets one reason code (the first check it fails, in this order):

- `missing:vehicle_id`, `bad_timestamp`  — a required value is absent;
- `<column>_out_of_range` — a value outside the range of `dtg.schema` (for `lat`/`lon`: outside the
  world); `bad_number:<column>` for NaN;
- `gps_no_fix` — position (0, 0), what devices write when they have no fix;
- `duplicate_timestamp` — the same (vehicle_id, ts) as an earlier valid row of the same file;
- `clock_backwards` — ts earlier than the previous row's ts (same vehicle, file order).

Policy for positions that are valid on Earth but outside Korea's bounding box: the row is KEPT
(dtg also serves fleets and test data abroad, and a far-off position is exactly what anomaly
scoring should see); ingest counts such rows as a warning (`rows_outside_korea`). A status code
other than 00 is kept too: it tells windowing and scoring which signal is unreliable that second.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dtg import schema
from dtg.readers.base import Reasons, empty_rejects, rejects_table

RANGE_CHECKED: tuple[str, ...] = tuple(c.name for c in schema.COLUMNS if c.lo is not None)
REASONS: tuple[str, ...] = (
    ("missing:vehicle_id", "bad_timestamp")
    + tuple(f"{c}_out_of_range" for c in RANGE_CHECKED)
    + tuple(f"bad_number:{c}" for c in RANGE_CHECKED)
    + ("gps_no_fix", "duplicate_timestamp", "clock_backwards")
)


def _np(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values with nulls as NaN, is-null mask) of a numeric column."""
    col = table.column(name)
    null = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    vals = pc.fill_null(col.cast(pa.float64()), np.nan).to_numpy() if table.num_rows else np.empty(0)
    return np.asarray(vals, dtype=np.float64), null


def _np_min_max(col: pa.ChunkedArray) -> tuple[float, float] | None:
    """(min, max) of a column without nulls by numpy over its buffers (NaN if any value is NaN), several
    times faster than Arrow's min_max; None for a column with nulls or of another type."""
    if col.null_count or len(col) == 0 or not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        return None
    chunks = [c.to_numpy() for c in col.chunks if len(c)]  # zero-copy: no nulls
    lows = np.array([c.min() for c in chunks], dtype=np.float64)  # np.min, unlike min(), keeps a NaN
    highs = np.array([c.max() for c in chunks], dtype=np.float64)
    return float(lows.min()), float(highs.max())


def _all_within(col: pa.ChunkedArray, lo: float, hi: float) -> bool:
    """True if every non-null value is a number in [lo, hi] (min/max in one pass, no per-row arrays)."""
    if col.null_count == len(col):
        return True
    fast = _np_min_max(col)
    if fast is not None:
        return lo <= fast[0] and fast[1] <= hi  # False for NaN
    if pa.types.is_floating(col.type) and pc.any(pc.is_nan(col)).as_py():
        return False
    mm = pc.min_max(col)
    return lo <= mm["min"].as_py() and mm["max"].as_py() <= hi


def _may_be_zero(col: pa.ChunkedArray) -> bool:
    """False if no value of the column can be 0 (0 outside its min..max): no (0, 0) fix to look for."""
    if col.null_count == len(col):
        return False
    fast = _np_min_max(col)
    if fast is not None and not np.isnan(fast).any():
        lo, hi = fast
    else:  # Arrow's min_max skips NaN
        mm = pc.min_max(col)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
    return lo is not None and lo <= 0 <= hi


def outside_korea(table: pa.Table) -> np.ndarray:
    """Rows with a valid position on Earth but outside `schema.KOREA_BBOX` (kept, reported as a warning)."""
    if table.num_rows == 0:
        return np.zeros(0, dtype=bool)
    la0, la1, lo0, lo1 = schema.KOREA_BBOX
    if _all_within(table.column("lat"), la0, la1) and _all_within(table.column("lon"), lo0, lo1):
        return np.zeros(table.num_rows, dtype=bool)  # the usual Korean log: min..max inside the box
    lat, lat_null = _np(table, "lat")
    lon, lon_null = _np(table, "lon")
    with np.errstate(invalid="ignore"):
        on_earth = (np.abs(lat) <= 90) & (np.abs(lon) <= 180) & ~((lat == 0) & (lon == 0))
        inside = (lat >= la0) & (lat <= la1) & (lon >= lo0) & (lon <= lo1)
    return ~lat_null & ~lon_null & on_earth & ~inside


def reasons(table: pa.Table) -> Reasons:
    """The reason of every row (code 0 = valid), for a canonical table in file order."""
    n = table.num_rows
    rs = Reasons(n)
    fail = rs.fail
    if n == 0:
        return rs

    fail(np.asarray(table.column("vehicle_id").is_null().to_numpy(zero_copy_only=False)), "missing:vehicle_id")
    ts_null = np.asarray(table.column("ts").is_null().to_numpy(zero_copy_only=False), dtype=bool)
    fail(ts_null, "bad_timestamp")
    for name in RANGE_CHECKED:
        col = schema.BY_NAME[name]
        if _all_within(table.column(name), col.lo, col.hi):
            continue
        vals, null = _np(table, name)
        with np.errstate(invalid="ignore"):
            fail(~null & np.isnan(vals), f"bad_number:{name}")
            fail(~null & ((vals < col.lo) | (vals > col.hi)), f"{name}_out_of_range")
    if _may_be_zero(table.column("lat")) and _may_be_zero(table.column("lon")):
        lat, lat_null = _np(table, "lat")
        lon, lon_null = _np(table, "lon")
        fail(~lat_null & ~lon_null & (lat == 0) & (lon == 0), "gps_no_fix")

    vidx = pc.dictionary_encode(pc.fill_null(table.column("vehicle_id"), "")).combine_chunks().indices
    vidx = vidx.to_numpy(zero_copy_only=False)  # int32: sorts faster than int64
    ts = pc.fill_null(table.column("ts").cast(pa.int64()), 0).to_numpy().astype(np.int64, copy=False)

    if not ts_null.any():
        # The usual log: each vehicle's time strictly increases in file order, so there is no
        # duplicate and no step backwards; one stable sort of small integers shows it.
        by_vehicle = np.argsort(vidx, kind="stable")
        v_o, t_o = vidx[by_vehicle], ts[by_vehicle]
        if ((t_o[1:] > t_o[:-1]) | (v_o[1:] != v_o[:-1])).all():
            return rs
    pos = np.arange(n)
    cand = pos[rs.ok]
    order = cand[np.lexsort((cand, ts[cand], vidx[cand]))]
    same = (vidx[order][1:] == vidx[order][:-1]) & (ts[order][1:] == ts[order][:-1])
    dup = np.zeros(n, dtype=bool)
    dup[order[1:][same]] = True
    fail(dup, "duplicate_timestamp")

    has_ts = pos[~ts_null]
    order = has_ts[np.lexsort((has_ts, vidx[has_ts]))]
    back = (vidx[order][1:] == vidx[order][:-1]) & (ts[order][1:] < ts[order][:-1])
    clock = np.zeros(n, dtype=bool)
    clock[order[1:][back]] = True
    fail(clock, "clock_backwards")
    return rs


def render(table: pa.Table, rows: np.ndarray) -> list[str]:
    """A text rendering of some rows, used as `raw` when the source has no lines (Parquet)."""
    sub = table.take(pa.array(rows, pa.int64())).drop_columns(["source_file", "source_row"])
    return [",".join("" if v is None else str(v) for v in rec.values()) for rec in sub.to_pylist()]


def validate(table: pa.Table, raw_text: Callable[[np.ndarray], list[str]] | None = None) -> tuple[pa.Table, pa.Table]:
    """Split a canonical table (one file, file order) into (valid rows, rejects).

    `rejects` has file, row (the source_row), raw (text of the source line from `raw_text`, else a
    rendering of the parsed row) and reason.
    """
    if table.num_rows == 0:
        return table, empty_rejects()
    rs = reasons(table)
    bad = ~rs.ok
    if not bad.any():
        return table, empty_rejects()
    idx = np.flatnonzero(bad)
    src_rows = table.column("source_row").take(pa.array(idx)).to_numpy()
    files = table.column("source_file").take(pa.array(idx)).to_pylist()
    raws = raw_text(src_rows) if raw_text is not None else render(table, idx)
    rej = rejects_table("", src_rows, raws, rs.labels(bad))
    rej = rej.set_column(0, "file", pa.array(files, pa.string()))
    good = table.filter(pa.array(~bad))
    return good, rej
