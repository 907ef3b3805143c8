"""Benchmark: how long `dtg report` takes on a fleet-sized scoring run, against reading its scores.

    .venv/bin/python benchmarks/report.py [--vehicles 40] [--hours 4] [--anomalies 12] [--top 10] [--seed 0]

A synthetic scoring run in the layout `dtg score` writes (lake, seconds/, anomalies/, model.json,
model history) is generated: `--vehicles` vehicles × `--hours` of 1 Hz log each, `--anomalies`
intervals per vehicle. Timed in the same process:

- baseline: reading the per-second scores and the anomalies with pyarrow.dataset (what any report
  must at least do);
- the report with `--top 0` (fleet table, distances from the lake, timeline, loss curves, histogram,
  the full anomaly table) and with `--top N` (plus N panels, each a lake slice and a figure).

Prints each time, its ratio to the baseline, the cost per panel and the HTML size. Best of
`--repeats` runs each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dtg.lake import Lake, partition_key  # noqa: E402
from dtg.schema import TS_TYPE, conform  # noqa: E402

T0 = 1_715_554_800_000  # 2024-05-13 08:00 KST


def make_run(root: Path, vehicles: int, hours: float, per_vehicle: int, seed: int) -> Path:
    """Write lake, scores and a model folder under `root`; return the scores folder."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600)
    scores = root / "scores"
    model_dir = root / "models" / "lstm-ae" / "v1"
    model_dir.mkdir(parents=True)
    lake = Lake(root / "lake")
    t = np.arange(n)
    for k in range(vehicles):
        vehicle = f"서울{70 + k % 30}사{1000 + k}"
        ts = T0 + 1000 * t
        speed = np.clip(45 + 35 * np.sin(t / (60.0 + k)) + rng.normal(0, 2, n), 0, 140).astype(np.float32)
        lake.write(conform(pa.table({
            "vehicle_id": pa.array([vehicle] * n), "ts": pa.array(ts, TS_TYPE), "speed": speed,
            "rpm": (800 + 28 * speed).astype(np.float32), "brake": (np.cos(t / 60.0) < -0.6).astype(np.int8),
            "lat": 37.5 + np.cumsum(speed) / 3600 / 111.0 * 0.7, "lon": 127.0 + 0.01 * np.sin(t / 500.0),
            "source_file": ["bench"] * n, "source_row": t + 1})))
        score = np.abs(rng.normal(0.05, 0.02, n))
        starts = np.sort(rng.choice(np.arange(60, n - 120, 90), per_vehicle, replace=False))
        lengths = rng.integers(5, 60, per_vehicle)
        for a, m in zip(starts, lengths):
            score[a:a + m] = 0.2 + rng.uniform(0, 0.3)
        flags = score > 0.15
        part = scores / "seconds" / f"vehicle={partition_key(vehicle)}" / "date=2024-05-13"
        part.mkdir(parents=True)
        pq.write_table(pa.table({"vehicle_id": pa.array([vehicle] * n), "ts": pa.array(ts, TS_TYPE),
                                 "score": score, "is_anomaly": flags}), part / "part-0.parquet")
        part = scores / "anomalies" / f"vehicle={partition_key(vehicle)}" / "date=2024-05-13"
        part.mkdir(parents=True)
        pq.write_table(pa.table({
            "vehicle_id": pa.array([vehicle] * per_vehicle), "start": pa.array(ts[starts], TS_TYPE),
            "end": pa.array(ts[starts + lengths - 1], TS_TYPE),
            "peak_score": [float(score[a:a + m].max()) for a, m in zip(starts, lengths)],
            "top_feature": ["speed"] * per_vehicle}), part / "part-0.parquet")
    (model_dir / "history.csv").write_text(
        "epoch,train_loss,val_loss\n" + "".join(f"{e},{1 / e:.5f},{1.1 / e:.5f}\n" for e in range(1, 31)))
    card = {"name": "lstm-ae", "version": "v1", "threshold": {"value": 0.15, "method": "fixed"}}
    (scores / "model.json").write_text(json.dumps({"model_dir": str(model_dir), "card": card}))
    return scores


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=40)
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--anomalies", type=int, default=12, help="intervals per vehicle")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from dtg.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scores = make_run(root, args.vehicles, args.hours, args.anomalies, args.seed)
        lake = root / "lake"

        def read_scores() -> None:
            for sub in ("seconds", "anomalies"):
                ds.dataset(scores / sub, format="parquet", partitioning=None).to_table()

        base = best(read_scores, args.repeats)
        t_none = best(lambda: write_report(scores, root / "r0.html", lake_dir=lake, top=0), args.repeats)
        result = {}
        t_top = best(lambda: result.update(r=write_report(scores, root / "r.html", lake_dir=lake, top=args.top)),
                     args.repeats)
        r = result["r"]
        rows = args.vehicles * int(args.hours * 3600)
        print(f"fleet: {args.vehicles} vehicles x {args.hours} h = {rows:,} scored seconds, "
              f"{r.anomalies:,} anomalies; report {r.bytes / 1e6:.2f} MB, {r.images} images")
        print(f"baseline (read seconds + anomalies): {base:.3f} s")
        print(f"report, no panels:   {t_none:.3f} s  ({t_none / base:.1f}x baseline)")
        print(f"report, {args.top} panels:   {t_top:.3f} s  ({t_top / base:.1f}x baseline)")
        if args.top:
            print(f"per panel:           {(t_top - t_none) / args.top:.3f} s  "
                  f"({(t_top - t_none) / args.top / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
