"""Benchmark: end-to-end `dtg score` throughput next to bare model inference on the same windows.

    .venv/bin/python benchmarks/score.py [--model lstm-ae] [--batch-size 4096] [--threads 1] [--repeat 3] [--copies 1]

On the bundled sample fleet (data/sample: 4 logs, ~23,000 seconds), in a scratch workspace; with
`--copies N`, on a night of N × 4 logs: the sample plus N - 1 byte copies of each log under a renamed
vehicle (the registration's last two digits become the copy number), written before any timing:
1. end to end: `run_score` on the sample files from an empty workspace — hashing, ingest into the
   lake (read, validate, quarantine), window sets with lake context, the model, per-second maxima,
   thresholds, intervals, Parquet outputs, ledger commits;
2. the scoring job alone: `run_score` over the lake partitions (no ingest) into a fresh ledger;
3. bare inference: the same windows, already scaled in memory, through the model in batches of the
   same size under `torch.inference_mode()` — the ceiling of the job.
Each figure is windows/s (best of `--repeat`, the three measured in turn); the ratios are against
(3), measured in the same run.
With `--ray-workers N`, also (4) `ray_on_lake`: the job of (2) with `--engine ray` and N actors on a local
Ray started once beforehand (the actors' start-up is in the figure). benchmarks/score_ray.py compares
the engines on a bigger lake.
The model is untrained (throughput does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dtg.lake import Lake  # noqa: E402
from dtg.readers import read_source  # noqa: E402
from dtg.scoring import load_scorer, run_score, window_errors_batched  # noqa: E402
from dtg.windowset import build_window_set  # noqa: E402

FEATURES = ("speed", "rpm", "brake", "lat")
SIZE = 20


def replicate_logs(logs: list[Path], copies: int, dest: Path) -> list[Path]:
    """`logs` plus `copies - 1` copies of each under a renamed vehicle: every occurrence of the vehicle
    id's bytes (DTG header, CSV rows) replaced by an id of the same length ending in the copy number."""
    out = list(logs)
    for log in logs:
        read = read_source(log)
        vehicle = read.table.column("vehicle_id")[0].as_py()
        codec = read.encoding
        data, old = log.read_bytes(), vehicle.encode(codec)
        if not vehicle[-2:].isdigit() or old not in data:
            raise SystemExit(f"cannot rename the vehicle of {log}")
        for k in range(1, copies):
            new = f"{vehicle[:-2]}{k:02d}".encode(codec)
            target = dest / f"copy{k:02d}" / log.name.replace(vehicle, vehicle[:-2] + f"{k:02d}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.replace(old, new))
            out.append(target)
    return out


def best_rates(runs: dict[str, list[tuple[float, int]]], base: str, ratio_key: str) -> dict[str, dict]:
    """Each measurement's best (seconds, windows) run as windows/s, with its ratio to `base`'s rate."""
    results = {}
    for name, timings in runs.items():
        seconds, windows = min(timings)
        results[name] = {"seconds": round(seconds, 3), "windows": windows, "windows_per_s": round(windows / seconds)}
    for r in results.values():
        r[ratio_key] = round(r["windows_per_s"] / results[base]["windows_per_s"], 3)
    return results


def print_rates(results: dict[str, dict], ratio_key: str, width: int) -> None:
    """The `best_rates` table on stderr, one line per measurement."""
    print(f"{'':<{width}}{'seconds':>9}{'windows':>10}{'windows/s':>11}{'ratio':>8}", file=sys.stderr)
    for name, r in results.items():
        print(f"{name:<{width}}{r['seconds']:>9.3f}{r['windows']:>10}{r['windows_per_s']:>11}{r[ratio_key]:>8.2f}",
              file=sys.stderr)


def publish_model(models: Path, logs: list[Path], kind: str, config: dict | None = None) -> Path:
    """An untrained `kind` model whose card carries a scaler fitted on the sample's windows."""
    import pyarrow as pa
    import torch

    from dtg.models import build
    from dtg.registry import publish
    from dtg.splits import SplitSpec

    torch.manual_seed(0)
    table = pa.concat_tables([read_source(p).table for p in logs])
    ws = build_window_set(table, size=SIZE, features=FEATURES, split=SplitSpec((0.8, 0.2), "time", 0))
    model = build(kind, len(FEATURES), SIZE, **(config or {}))
    card = {"model": {"type": kind, "config": model.config_dict()}, "target": model.target,
            "features": list(FEATURES), "size": SIZE, "stride": 1, "max_gap": 1, "scaler": ws.scaler.to_dict(),
            "threshold": {"value": 0.05}, "training": {"loss": "mse"}}
    return publish(models, "bench", model, card)


def end_to_end(work: Path, logs: list[Path], model: Path, batch_size: int, lake_only: bool = False,
               engine: str = "local", workers: int | None = None) -> tuple[float, int]:
    """Seconds and windows of one `run_score` from a fresh ledger (and a fresh lake unless lake_only)."""
    for name in ("scores", "ledger.sqlite", "ledger.sqlite.lock") + (() if lake_only else ("lake", "quarantine")):
        p = work / name
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = run_score([] if lake_only else logs, model, lake_dir=work / "lake", out_dir=work / "scores",
                        ledger_path=work / "ledger.sqlite", quarantine_dir=work / "quarantine",
                        batch_size=batch_size, device="cpu", engine=engine, workers=workers)
    seconds = time.perf_counter() - t0
    if summary.files_failed:
        raise SystemExit(f"scoring failed: {summary.errors}")
    return seconds, summary.windows_scored


def bare_inference(work: Path, model: Path, batch_size: int) -> tuple[float, int]:
    """Seconds to run the model over every window of the lake (scaled in memory beforehand)."""
    scorer = load_scorer(model, device="cpu")
    table = Lake(work / "lake").read(columns=["vehicle_id", "ts", *FEATURES])
    ws = build_window_set(table, size=SIZE, features=FEATURES, split=None, scaler=scorer.scaler)
    scaled = np.ascontiguousarray(ws.scaled)
    starts = np.asarray(ws.starts)
    t0 = time.perf_counter()
    window_errors_batched(scorer, scaled, starts, batch_size)
    return time.perf_counter() - t0, len(starts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lstm-ae")
    ap.add_argument("--config", default="{}", help='model options as JSON, e.g. \'{"hidden": 64, "layers": 2}\'')
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the CI machines have 2 cores)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=Path, default=ROOT / "data" / "sample")
    ap.add_argument("--copies", type=int, default=1, help="score the sample fleet this many times (renamed vehicles)")
    ap.add_argument("--ray-workers", type=int, default=0, help="also measure --engine ray with N actors (needs dtg[ray])")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    sample = sorted(p for p in args.sample.iterdir() if p.suffix in (".dtg", ".csv"))
    with tempfile.TemporaryDirectory(prefix="dtg-bench-score-") as tmp:
        work = Path(tmp)
        model = publish_model(work / "models", sample, args.model, json.loads(args.config))
        logs = replicate_logs(sample, args.copies, work / "incoming")
        measures = {"end_to_end": lambda: end_to_end(work, logs, model, args.batch_size),
                    "job_on_lake": lambda: end_to_end(work, logs, model, args.batch_size, lake_only=True),
                    "bare_inference": lambda: bare_inference(work, model, args.batch_size)}
        if args.ray_workers:
            import logging

            import ray

            ray.init(num_cpus=args.ray_workers, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
            measures["ray_on_lake"] = lambda: end_to_end(work, logs, model, args.batch_size, lake_only=True,
                                                         engine="ray", workers=args.ray_workers)
        runs: dict[str, list[tuple[float, int]]] = {name: [] for name in measures}
        for _ in range(args.repeat):  # interleaved, so a busy moment on a shared machine hits all three
            for name, fn in measures.items():
                runs[name].append(fn())
        if args.ray_workers:
            ray.shutdown()
        results = best_rates(runs, "bare_inference", "ratio_to_bare")
    print(f"dtg score benchmark: model {args.model} {args.config}, batch {args.batch_size}, torch threads {args.threads}, "
          f"{len(sample)} sample logs x {args.copies} copies; {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, torch {torch.__version__}", file=sys.stderr)
    print_rates(results, "ratio_to_bare", 16)
    print(json.dumps({"model": args.model, "config": json.loads(args.config), "batch_size": args.batch_size,
                      "threads": args.threads, "copies": args.copies, **results}))


if __name__ == "__main__":
    main()
