"""Benchmark: `dtg train` throughput next to a bare forward+backward loop of the same model, same run.

    .venv/bin/python benchmarks/train.py [--model lstm-ae] [--hidden 32] [--batch-size 128] [--epochs 3]
                                         [--threads 1] [--repeat 3] [--cli]

On the bundled sample fleet (data/sample: 4 logs, ~23,000 seconds → ~15,700 training windows of 20 s
with the default 70/15/15 time split), in a scratch workspace:
1. `dtg train` as a library call (`dtg.train.fit`, what the command runs after its imports): load
   the window set from disk, build batches from it, train, validate every epoch, checkpoint every
   epoch, score the validation and test windows, publish weights + card + history + loss curve;
2. bare: the same model, optimizer and batch size over the training windows already built as one
   tensor in memory, shuffled by index each epoch: forward, loss, backward, step — nothing else.
Throughput is training windows × epochs / seconds, both wall-clock seconds and this process's CPU
seconds (on a shared machine the CPU figure is the steadier one: other users' load inflates wall time
at random; with --threads 1 the two agree on an idle machine). The ratio (1)/(2) is the share of time
spent learning rather than on data and bookkeeping; the goal is >= 0.85. Each figure is the best of
`--repeat`, the two measured in turn. `dtg_train_epochs_only` counts only the seconds inside the
epochs (batches, steps, validation; not loading, checkpoints, final scoring and publishing). `--cli` also times the `dtg train` process end to end
(interpreter start and imports included).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import torch  # noqa: E402

from dtg.models import build  # noqa: E402
from dtg.models.base import objective  # noqa: E402
from dtg.nn import optimizers  # noqa: E402
from dtg.readers import read_source  # noqa: E402
from dtg.splits import SplitSpec  # noqa: E402
from dtg.train import TrainConfig, fit  # noqa: E402
from dtg.windowset import WindowSet, build_window_set  # noqa: E402


def sample_windows(folder: Path) -> Path:
    """The sample fleet's window set (default features, size 20, 70/15/15 by time), saved to `folder`."""
    logs = sorted(p for p in (ROOT / "data" / "sample").iterdir() if p.suffix in (".dtg", ".csv", ".parquet"))
    table = pa.concat_tables([read_source(p).table for p in logs])
    build_window_set(table, size=20, split=SplitSpec()).save(folder)
    return folder


class Clock:
    """Wall and process-CPU seconds since start."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def bare_loop(ws: WindowSet, cfg: TrainConfig) -> tuple[tuple[float, float], int]:
    """(wall, cpu) seconds and windows for `cfg.epochs` epochs of forward+backward+step on in-memory tensors."""
    torch.manual_seed(cfg.seed)
    x_all = torch.from_numpy(ws.windows(ws.indices("train", "reconstruct")))
    model = build(cfg.model, len(ws.features), ws.size, **cfg.model_options())
    if model.target != "reconstruct":
        raise SystemExit("the bare loop is written for reconstruction models")
    opt = optimizers.build(cfg.optimizer, model.parameters(), lr=cfg.lr)
    loss_fn, _ = objective(cfg.loss, model.target)
    n, bs = len(x_all), cfg.batch_size
    model.train()
    clock = Clock()
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
        for lo in range(0, n, bs):
            x = x_all[order[lo:lo + bs]]
            loss = loss_fn(model(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
    return clock.stop(), n * cfg.epochs


def dtg_train(windows: Path, cfg: TrainConfig, models: Path) -> tuple[tuple[float, float], int]:
    clock = Clock()
    summary = fit(windows, cfg, models, "bench")
    seconds = clock.stop()
    with open(Path(summary["model_dir"]) / "history.csv", newline="") as fh:
        LAST_EPOCH_SECONDS[:] = [sum(float(row["seconds"]) for row in csv.DictReader(fh))]
    return seconds, summary["train_windows"] * summary["epochs_run"]


LAST_EPOCH_SECONDS: list[float] = []  # wall seconds inside the epochs (train + validation) of the last fit


def dtg_train_cli(windows: Path, cfg: TrainConfig, models: Path) -> tuple[float, int]:
    """Wall seconds of the `dtg train` process (its CPU time is not this process's)."""
    args = [str(ROOT / ".venv" / "bin" / "dtg"), "train", "--windows", str(windows), "--models", str(models),
            "--name", "cli", "--model", cfg.model, "--hidden", str(cfg.hidden), "--epochs", str(cfg.epochs),
            "--batch-size", str(cfg.batch_size), "--patience", "0", "--threads", str(cfg.threads),
            "--clip", str(cfg.clip), "--json"]
    t0 = time.perf_counter()
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    seconds = time.perf_counter() - t0
    summary = json.loads(out)
    return seconds, summary["train_windows"] * summary["epochs_run"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lstm-ae", choices=["lstm-ae", "mlp-ae"])
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cli", action="store_true", help="also time the dtg train process end to end")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(model=args.model, hidden=args.hidden, batch_size=args.batch_size, epochs=args.epochs,
                      patience=0, clip=1.0, threads=args.threads, seed=0, device="cpu")
    with tempfile.TemporaryDirectory(prefix="dtg-bench-train-") as tmp:
        windows = sample_windows(Path(tmp) / "windows")
        ws = WindowSet.load(windows)
        runs: dict[str, list[float]] = {"dtg_train": [], "bare": [], "dtg_train_cpu": [], "bare_cpu": [], "cli": [],
                                   "dtg_train_epochs_only": []}
        for _ in range(args.repeat):
            for key, measure in (("dtg_train", dtg_train), ("bare", lambda w, c, m: bare_loop(ws, c))):
                (wall, cpu), n = measure(windows, cfg, Path(tmp) / "models")
                runs[key].append(n / wall)
                runs[key + "_cpu"].append(n / cpu)
                if key == "dtg_train":
                    runs["dtg_train_epochs_only"].append(n / LAST_EPOCH_SECONDS[0])
            if args.cli:
                wall, n = dtg_train_cli(windows, cfg, Path(tmp) / "models")
                runs["cli"].append(n / wall)
        best = {k: max(v) for k, v in runs.items() if v}
        result = {
            "model": args.model, "hidden": args.hidden, "batch_size": args.batch_size, "epochs": args.epochs,
            "threads": args.threads, "train_windows": int(len(ws.indices("train", "reconstruct"))),
            "windows_per_s": {k: round(v, 1) for k, v in best.items()},
            "ratio_dtg_train_vs_bare": round(best["dtg_train"] / best["bare"], 3),
            "ratio_dtg_train_vs_bare_cpu": round(best["dtg_train_cpu"] / best["bare_cpu"], 3),
            "all_runs": {k: [round(x, 1) for x in v] for k, v in runs.items() if v},
            "torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
        }
        if "cli" in best:
            result["ratio_cli_vs_bare"] = round(best["cli"] / best["bare"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
