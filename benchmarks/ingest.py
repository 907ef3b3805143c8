"""Ingest throughput against pyarrow's raw CSV read of the same file, measured in the same run.

    .venv/bin/python benchmarks/ingest.py [--rows 2000000] [--repeat 3] [--cli]

Builds a canonical CSV of --rows rows in a temp folder from the bundled sample (each vehicle's log
repeated back to back, see `fleet`), then times, best of --repeat, baseline and dtg interleaved:
  baseline   pyarrow.csv.read_csv(file)                   (raw parse, type inference, no checks)
  dtg csv    dtg.ingest.ingest([file], fresh lake)        (read + validate + quarantine + lake write)
  dtg read   dtg.readers.read_source(file)                (the reader alone)
and the same for a DTG record file of the same rows (dtg.readers.dtg_text, CP949). Prints rows/s
and the ratio dtg/baseline (goal >= 0.5 for CSV). --cli also times the `dtg ingest` command.
--codecs compares Parquet codecs/encodings for the lake on the same rows: Lake.write time, size on
disk, Lake.read time (all columns, and the six a window reads).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dtg import schema  # noqa: E402
from dtg.ingest import ingest  # noqa: E402
from dtg.readers import dtg_text, read_source  # noqa: E402

CSV_COLUMNS = ["vehicle_id", "ts", "speed", "rpm", "brake", "lat", "lon", "azimuth", "accel_x", "accel_y", "status"]


def fleet(rows: int, work: Path) -> pa.Table:
    """`rows` canonical rows from the sample: each vehicle's log repeated back to back, copy k shifted
    by k times that log's own time span, so vehicle-days fill up the way a two-shift commercial
    vehicle's do (tens of thousands of seconds per vehicle-day) and no second repeats."""
    ingest([ROOT / "data" / "sample"], work / "sample_lake", work / "sample_q")
    from dtg.lake import Lake

    base = Lake(work / "sample_lake").read()
    vehicles = base.column("vehicle_id").unique().to_pylist()
    logs = []
    for v in vehicles:
        t = base.filter(pc.equal(base.column("vehicle_id"), v))
        ts = t.column("ts").cast(pa.int64()).to_numpy()
        logs.append((t, ts, int(ts.max() - ts.min()) + 1000))
    parts, total, k = [], 0, 0
    while total < rows:
        for t, ts, span in logs:
            parts.append(t.set_column(1, "ts", pa.array(ts + k * span, pa.timestamp("ms")).cast(schema.TS_TYPE)))
            total += t.num_rows
        k += 1
    return pa.concat_tables(parts).slice(0, rows).combine_chunks()


def write_csv(table: pa.Table, path: Path) -> None:
    t = table.select(CSV_COLUMNS)
    local = pc.strftime(table.column("ts"), format="%Y-%m-%d %H:%M:%S")
    t = t.set_column(1, "ts", local)
    pcsv.write_csv(t, path)


def codecs(rows: pa.Table, work: Path, repeat: int) -> list[str]:
    """Lake.write / size / Lake.read for candidate Parquet settings (dtg.lake.PARQUET_OPTIONS is the choice)."""
    from dtg import lake as lake_mod

    chosen = dict(lake_mod.PARQUET_OPTIONS)
    enc = chosen["column_encoding"]
    dict_cols = chosen["use_dictionary"]
    candidates = {
        "zstd, dictionary pages for all": {"compression": "zstd"},
        "zstd + encodings": {"compression": "zstd", "use_dictionary": dict_cols, "column_encoding": enc},
        "snappy + encodings": {"compression": "snappy", "use_dictionary": dict_cols, "column_encoding": enc},
        "lz4 + encodings (chosen)": chosen,
        "none + encodings": {"compression": "none", "use_dictionary": dict_cols, "column_encoding": enc},
    }
    lines = [f"{'lake Parquet settings':<32}{'write s':>9}{'MB':>7}{'read s':>8}{'6 cols s':>10}"]
    try:
        for label, opts in candidates.items():
            lake_mod.PARQUET_OPTIONS = dict(opts, write_statistics=chosen["write_statistics"])
            tw, tr, t6 = [], [], []
            for _ in range(repeat):
                shutil.rmtree(work / "codec_lake", ignore_errors=True)
                lake = lake_mod.Lake(work / "codec_lake")
                tw.append(best(lambda: lake.write(rows), 1)[0])
                tr.append(best(lambda: lake.read(), 1)[0])
                t6.append(best(lambda: lake.read(columns=["ts", "speed", "rpm", "brake", "lat", "lon"]), 1)[0])
            size = sum(f.stat().st_size for f in (work / "codec_lake").rglob("part-*.parquet")) / 1e6
            lines.append(f"{label:<32}{min(tw):>9.2f}{size:>7.1f}{min(tr):>8.2f}{min(t6):>10.2f}")
    finally:
        lake_mod.PARQUET_OPTIONS = chosen
    return lines


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="dtg ingest throughput vs pyarrow.csv.read_csv")
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cli", action="store_true", help="also time the dtg ingest command (one run)")
    ap.add_argument("--codecs", action="store_true", help="also compare Parquet settings for the lake")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dtg-bench-"))
    try:
        table = fleet(args.rows, work)
        n = table.num_rows
        csv_path = work / "fleet.csv"
        write_csv(table, csv_path)
        dtg_path = work / "fleet.dtg"
        by_vehicle = table.filter(pc.equal(table.column("vehicle_id"), table.column("vehicle_id")[0]))
        dtg_path.write_bytes(dtg_text.to_bytes(by_vehicle, dtg_text.DtgHeader(vehicle_type="11",
                                                                              registration="서울70사1234")))
        n_dtg = by_vehicle.num_rows
        print(f"rows: CSV {n:,} ({csv_path.stat().st_size / 1e6:.0f} MB), DTG {n_dtg:,} "
              f"({dtg_path.stat().st_size / 1e6:.0f} MB); best of {args.repeat}", file=sys.stderr)

        def fresh() -> None:
            shutil.rmtree(work / "lake", ignore_errors=True)
            shutil.rmtree(work / "q", ignore_errors=True)

        def run_ingest(src: Path) -> dict:
            return ingest([src], work / "lake", work / "q").to_dict()

        # Interleave baseline and dtg in every round (the machine may be shared): best of each.
        # Each ingest starts from an empty lake; emptying it is not timed.
        stages = {
            "base": (None, lambda: pcsv.read_csv(csv_path)),
            "read": (None, lambda: read_source(csv_path)),
            "ingest": (fresh, lambda: run_ingest(csv_path)),
            "dtg_base": (None, lambda: dtg_path.read_bytes().split(b"\r\n")),
            "dtg_read": (None, lambda: dtg_text.read(dtg_path)),
            "dtg_ingest": (fresh, lambda: run_ingest(dtg_path)),
        }
        times: dict[str, list[float]] = {k: [] for k in stages}
        for _ in range(args.repeat):
            for k, (prepare, fn) in stages.items():
                if prepare is not None:
                    prepare()
                t, out = best(fn, 1)
                times[k].append(t)
                if k == "read":
                    assert out.table.num_rows == n, (out.table.num_rows, n)
                if k == "ingest":
                    assert out["rows_ingested"] + out["rows_quarantined"] + out["rows_duplicate"] == n
                if k == "dtg_read":
                    assert out.table.num_rows == n_dtg
        base_t, read_t, ingest_t, dtg_base_t, dtg_read_t, dtg_ingest_t = (min(times[k]) for k in stages)

        def row(label: str, seconds: float, rows: int, baseline: float) -> str:
            return f"{label:<44}{seconds:>9.2f}{rows / seconds:>14,.0f}{baseline / seconds:>8.2f}"

        lines = [
            f"{'stage':<44}{'seconds':>9}{'rows/s':>14}{'ratio':>8}",
            row("pyarrow.csv.read_csv (baseline)", base_t, n, base_t),
            row("dtg read_source (CSV reader only)", read_t, n, base_t),
            row("dtg ingest CSV (read+validate+lake)", ingest_t, n, base_t),
            row("DTG: bytes.split lines (baseline)", dtg_base_t, n_dtg, dtg_base_t),
            row("dtg DTG reader", dtg_read_t, n_dtg, dtg_base_t),
            row("dtg ingest DTG (read+validate+lake)", dtg_ingest_t, n_dtg, dtg_base_t),
        ]
        if args.cli:
            exe = Path(sys.executable).with_name("dtg")
            shutil.rmtree(work / "lake", ignore_errors=True)
            t0 = time.perf_counter()
            subprocess.run([str(exe), "ingest", str(csv_path), "--lake", str(work / "lake"), "--quarantine",
                            str(work / "q"), "--json"], check=True, capture_output=True)
            cli_t = time.perf_counter() - t0
            lines.append(row("dtg ingest CSV, CLI (one run, incl. startup)", cli_t, n, base_t))
        if args.codecs:
            from dtg.validate import validate

            lines += [""] + codecs(validate(read_source(csv_path).table)[0], work, args.repeat)
        print("\n".join(lines))
        print(f"CSV goal ratio >= 0.5: {'met' if base_t / ingest_t >= 0.5 else 'NOT met'} "
              f"({base_t / ingest_t:.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
