"""Benchmark: `dtg score --engine ray` against the local engine on the same lake, in the same run.

    .venv/bin/python benchmarks/score_ray.py [--copies 4] [--workers 1,2] [--model lstm-ae] [--repeat 2]

The lake holds the bundled sample fleet (data/sample: 4 logs, ~23,000 seconds) `--copies` times, each
copy under renamed vehicles (so 4 × copies vehicle-days). Both engines run the scoring job over every
lake partition into a fresh ledger and scores folder (`run_score(engine=...)`, no ingest): the local
engine in this process (torch threads `--threads`), the Ray engine with an actor pool of each
`--workers` size (one CPU and one torch thread per actor) on a local Ray started once beforehand
(its start-up time is printed apart; the actors' start-up — a fresh Python importing torch and loading
the model — is part of every Ray run, as in production). Figures are windows/s, best of `--repeat`,
measured interleaved; ratios are against the local engine measured in the same run. The model is
untrained (throughput does not depend on the weights). Both engines' outputs are checked equal.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dtg.ingest import ingest  # noqa: E402
from dtg.lake import Lake  # noqa: E402
from dtg.scoring import run_score  # noqa: E402
from score import best_rates, print_rates, publish_model  # noqa: E402


def build_lake(work: Path, logs: list[Path], copies: int) -> Lake:
    """The sample ingested, then `copies - 1` more copies of it under vehicle ids suffixed '-k'."""
    summary = ingest(logs, work / "lake", work / "quarantine")
    if not summary.ok:
        raise SystemExit(f"ingest failed: {summary.errors}")
    lake = Lake(work / "lake")
    base = lake.read()
    for k in range(1, copies):
        ids = pa.array([f"{v}-{k}" for v in base.column("vehicle_id").to_pylist()], pa.string())
        lake.write(base.set_column(base.schema.get_field_index("vehicle_id"), "vehicle_id", ids))
    return lake


def job(work: Path, model: Path, engine: str, workers: int | None, batch_size: int, tag: str) -> tuple[float, int]:
    """Seconds and windows of one scoring job over the whole lake from a fresh ledger."""
    out, ledger = work / f"scores-{tag}", work / f"ledger-{tag}.sqlite"
    shutil.rmtree(out, ignore_errors=True)
    for p in (ledger, ledger.with_name(ledger.name + ".lock")):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = run_score([], model, lake_dir=work / "lake", out_dir=out, ledger_path=ledger,
                        quarantine_dir=work / "quarantine", batch_size=batch_size, device="cpu", engine=engine,
                        workers=workers)
    seconds = time.perf_counter() - t0
    if summary.files_failed:
        raise SystemExit(f"scoring failed: {summary.errors}")
    return seconds, summary.windows_scored


def same_outputs(a: Path, b: Path) -> bool:
    """Same Parquet files holding the same rows (scores within float tolerance)."""
    fa = sorted(p.relative_to(a) for p in a.rglob("*.parquet"))
    if fa != sorted(p.relative_to(b) for p in b.rglob("*.parquet")):
        return False
    for rel in fa:
        x, y = pq.read_table(a / rel), pq.read_table(b / rel)
        for col in x.column_names:
            if pa.types.is_floating(x.schema.field(col).type):
                if not np.allclose(x.column(col).to_numpy(), y.column(col).to_numpy(), rtol=1e-5, atol=1e-7):
                    return False
            elif not x.column(col).equals(y.column(col)):
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=4, help="copies of the sample fleet in the lake")
    ap.add_argument("--workers", default="1,2", help="Ray actor pool sizes to measure, comma-separated")
    ap.add_argument("--model", default="lstm-ae")
    ap.add_argument("--config", default="{}", help='model options as JSON, e.g. \'{"hidden": 64}\'')
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the local engine")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sample", type=Path, default=ROOT / "data" / "sample")
    args = ap.parse_args()
    pools = [int(w) for w in args.workers.split(",")]

    import ray
    import torch

    torch.set_num_threads(args.threads)
    logs = sorted(p for p in args.sample.iterdir() if p.suffix in (".dtg", ".csv"))
    with tempfile.TemporaryDirectory(prefix="dtg-bench-score-ray-") as tmp:
        work = Path(tmp)
        lake = build_lake(work, logs, args.copies)
        model = publish_model(work / "models", logs, args.model, json.loads(args.config))
        t0 = time.perf_counter()
        ray.init(num_cpus=max(pools), include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        ray_start = time.perf_counter() - t0
        measures = {"local": lambda: job(work, model, "local", None, args.batch_size, "local")}
        for w in pools:
            measures[f"ray_{w}"] = lambda w=w: job(work, model, "ray", w, args.batch_size, f"ray_{w}")
        runs: dict[str, list[tuple[float, int]]] = {name: [] for name in measures}
        try:
            for _ in range(args.repeat):  # interleaved: a busy moment on a shared machine hits all
                for name, fn in measures.items():
                    runs[name].append(fn())
        finally:
            ray.shutdown()
        equal = all(same_outputs(work / "scores-local", work / f"scores-ray_{w}") for w in pools)
        partitions = len(lake.partitions())
        rows = lake.num_rows()
    results = best_rates(runs, "local", "ratio_to_local")
    print(f"dtg score --engine ray benchmark: model {args.model} {args.config}, batch {args.batch_size}, "
          f"{args.copies} copies of the sample ({partitions} vehicle-days, {rows} seconds), local torch threads "
          f"{args.threads}; Ray {ray.__version__} local start {ray_start:.1f} s (not in the figures); "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}",
          file=sys.stderr)
    print_rates(results, "ratio_to_local", 10)
    print(f"outputs equal to the local engine's: {equal}", file=sys.stderr)
    print(json.dumps({"model": args.model, "copies": args.copies, "vehicle_days": partitions, "seconds_in_lake": rows,
                      "ray_start_s": round(ray_start, 1), "outputs_equal": equal, **results}))
    if not equal:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
