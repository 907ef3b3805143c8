"""Benchmark: fault detection by the LSTM autoencoder, the LSTM forecaster and a per-feature z-score
baseline, on real-derived drive logs with injected faults; event-wise precision/recall/F1 per fault type.

    .venv/bin/python benchmarks/detect.py [--sample data/sample] [--epochs 30] [--rate 12] [--repeats 3] [--seed 0]
        [--features speed,rpm,brake,lat,lon]

1. The bundled sample fleet (data/sample: speed/RPM from real carOBD, CMAP and VECTO drives, see its
   README) is ingested into a temporary lake (validation drops the rows it rejects).
2. Each vehicle's first `--train-frac` of rows is clean training data; the rest is the test part.
3. Each detector learns from the training part only: the two LSTMs via `dtg.train.train` on a window
   set (`size` 20, `--features`, default speed,rpm,brake,lat,lon; derived ones such as gps_step and
   heading_rate are computed as `dtg.features` does), the baseline the mean and standard deviation
   of each feature. A second's score is the max over the windows covering it (the z-score baseline:
   max |z| over features). The threshold is the `--quantile` of the per-second scores of the clean
   training part — the same rule for every detector.
4. For each fault type, `dtg.inject.inject` writes that fault alone into the test part, `--repeats`
   times with seeds seed, seed+1, ... (the same copies for every detector, pooled as separate
   vehicles); flagged seconds merge into intervals, which `dtg.evaluate.evaluate` compares with the
   labels. An "all" row injects every type at once.

Ratios (detector F1 / baseline F1) are computed against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEATURES = "speed,rpm,brake,lat,lon"
SIZE = 20


def load_fleet(sample: Path) -> pa.Table:
    """Ingest the sample logs into a temporary lake and read them back (validated, canonical)."""
    from dtg.ingest import ingest
    from dtg.lake import Lake

    with tempfile.TemporaryDirectory() as tmp:
        summary = ingest([sample], Path(tmp) / "lake", Path(tmp) / "quarantine")
        print(f"ingested {summary.to_dict()['rows_ingested']} rows from {sample}", file=sys.stderr)
        return Lake(Path(tmp) / "lake").read()


def split_by_time(table: pa.Table, frac: float) -> tuple[pa.Table, pa.Table]:
    """Per vehicle: the first `frac` of its rows (by time) and the rest."""
    vid = np.asarray(table.column("vehicle_id").to_pylist(), dtype=object)
    first = np.zeros(len(vid), dtype=bool)
    for v in np.unique(vid):
        rows = np.flatnonzero(vid == v)
        first[rows[: int(len(rows) * frac)]] = True
    return table.filter(pa.array(first)), table.filter(pa.array(~first))


@dataclass
class SecondScores:
    """Per-second scores of a table: vehicle index, ts (ms), score, and the vehicles' names."""

    vehicle: np.ndarray
    ts: np.ndarray
    score: np.ndarray
    vehicles: list[str]


class ZScore:
    """Per-feature z-score baseline: a second's score is max over features of |x - mean| / std."""

    name = "z-score"

    def __init__(self, features: tuple[str, ...]) -> None:
        self.features = features

    def fit(self, table: pa.Table) -> "ZScore":
        x = _features(_by_vehicle(table), self.features)
        self.mean_ = np.nanmean(x, axis=0)
        self.std_ = np.nanstd(x, axis=0)
        self.std_[~(self.std_ > 0)] = 1.0
        return self

    def seconds(self, table: pa.Table) -> SecondScores:
        table = _by_vehicle(table)
        x = _features(table, self.features)
        score = np.nanmax(np.abs((x - self.mean_) / self.std_), axis=1)
        codes, names = _vehicle_codes(table)
        return SecondScores(codes, table.column("ts").cast(pa.int64()).to_numpy(), score, names)


class WindowDetector:
    """A dtg window model (lstm-ae, lstm-forecaster) trained with dtg.train and scored with dtg.scoring."""

    def __init__(self, name: str, features: tuple[str, ...], epochs: int, seed: int, device: str) -> None:
        self.name, self.features, self.epochs, self.seed, self.device = name, features, epochs, seed, device

    def fit(self, table: pa.Table) -> "WindowDetector":
        from dtg.device import resolve_device
        from dtg.models.base import objective
        from dtg.scoring import Scorer
        from dtg.splits import SplitSpec
        from dtg.train import TrainConfig, train
        from dtg.windowset import build_window_set

        ws = build_window_set(table, size=SIZE, features=self.features, split=SplitSpec((0.85, 0.15, 0.0)))
        cfg = TrainConfig(model=self.name, epochs=self.epochs, batch_size=256, seed=self.seed, device=self.device,
                          patience=3)
        result = train(ws, cfg)
        self.epochs_run_ = result.epochs_run
        self.val_loss_ = float(result.val_loss)
        model = result.model.eval()
        self.scorer_ = Scorer(model=model, output_fn=objective(cfg.loss, model.target)[1], features=self.features,
                              size=SIZE, max_gap=1, target=model.target, scaler=ws.scaler, threshold=None,
                              model_id=f"{self.name}/bench", card={}, model_dir=Path("."),
                              device=resolve_device(self.device))
        return self

    def seconds(self, table: pa.Table) -> SecondScores:
        from dtg.scoring import score_window_set
        from dtg.windowset import build_window_set

        ws = build_window_set(table, size=SIZE, features=self.features, split=None, scaler=self.scorer_.scaler)
        own = ~np.asarray(ws.filled)
        scored = score_window_set(self.scorer_, ws, own)
        vidx = np.asarray(ws.vehicle_idx)[scored.rows]
        return SecondScores(vidx, np.asarray(ws.ts)[scored.rows], scored.second_score.astype(np.float64),
                            list(ws.vehicles))


def _by_vehicle(table: pa.Table) -> pa.Table:
    return table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])


def _features(table: pa.Table, features: tuple[str, ...]) -> np.ndarray:
    """(rows, F) float64 features of a table sorted by (vehicle_id, ts), derived ones included."""
    from dtg.features import derive

    codes, _ = _vehicle_codes(table)
    col = lambda f: table.column(f).to_numpy(zero_copy_only=False).astype(np.float64)  # noqa: E731
    derived = derive(col("lat"), col("lon"), table.column("ts").cast(pa.int64()).to_numpy(),
                     np.flatnonzero(np.diff(codes, prepend=-1)), features)
    return np.column_stack([derived[f] if f in derived else col(f) for f in features])


def _vehicle_codes(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    vid = np.asarray(table.column("vehicle_id").to_pylist(), dtype=object)
    names, codes = np.unique(vid, return_inverse=True)
    return codes, [str(n) for n in names]


def _renamed(faulty: pa.Table, labels: pa.Table, repeat: int) -> tuple[pa.Table, pa.Table]:
    """Suffix vehicle ids with the repeat number, so repeats with different seeds pool as separate vehicles."""
    def rename(t: pa.Table) -> pa.Table:
        ids = pa.array([f"{v}#{repeat}" for v in t.column("vehicle_id").to_pylist()], pa.string())
        return t.set_column(t.schema.get_field_index("vehicle_id"), "vehicle_id", ids)
    return rename(faulty), rename(labels)


def intervals_of(s: SecondScores, threshold: float):
    """Flagged seconds (score > threshold) merged into per-vehicle intervals (a gap splits them)."""
    from dtg.evaluate import Intervals
    from dtg.intervals import merge

    order = np.lexsort((s.ts, s.vehicle))
    v, ts, sc = s.vehicle[order], s.ts[order], s.score[order]
    iv = merge(sc > threshold, ts, sc, groups=v, max_gap_ms=1500)
    names = np.asarray(s.vehicles, dtype=object)
    return Intervals(names[v[iv.start]], ts[iv.start], ts[iv.end])


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from dtg.evaluate import evaluate, intervals_from_table
    from dtg.inject import FAULTS, inject

    torch.set_num_threads(args.threads)
    fleet = load_fleet(args.sample)
    train_part, test_part = split_by_time(fleet, args.train_frac)
    print(f"train {train_part.num_rows} rows, test {test_part.num_rows} rows", file=sys.stderr)
    from dtg.windowset import check_features

    features = check_features(args.features)
    detectors: list[Any] = [ZScore(features),
                            WindowDetector("lstm-ae", features, args.epochs, args.seed, args.device),
                            WindowDetector("lstm-forecaster", features, args.epochs, args.seed, args.device)]
    fitted: dict[str, dict[str, Any]] = {}
    for det in detectors:
        t0 = time.perf_counter()
        det.fit(train_part)
        clean = det.seconds(train_part)
        threshold = float(np.quantile(clean.score[np.isfinite(clean.score)], args.quantile))
        fitted[det.name] = {"detector": det, "threshold": threshold, "fit_s": time.perf_counter() - t0}
        print(f"{det.name}: fitted in {fitted[det.name]['fit_s']:.1f} s, threshold {threshold:.4g}", file=sys.stderr)

    cases: list[tuple[str, tuple[str, ...]]] = [(f, (f,)) for f in FAULTS] + [("all", FAULTS)]
    results: dict[str, dict[str, Any]] = {}
    for case, faults in cases:
        copies = [_renamed(*inject(test_part, faults, rate=args.rate, seed=args.seed + r, key="bench"), r)
                  for r in range(args.repeats)]
        faulty = pa.concat_tables([c[0] for c in copies])
        lab = intervals_from_table(pa.concat_tables([c[1] for c in copies]))
        results[case] = {"labels": len(lab)}
        for name, f in fitted.items():
            t0 = time.perf_counter()
            pred = intervals_of(f["detector"].seconds(faulty), f["threshold"])
            m = evaluate(pred, lab)
            results[case][name] = {k: m[k] for k in ("precision", "recall", "f1", "f0_5", "point_adjusted_f1",
                                                     "predictions", "labels_found", "delay_median_s")}
            results[case][name]["score_s"] = time.perf_counter() - t0
        print(f"{case}: done", file=sys.stderr)
    return {"config": {k: str(v) for k, v in vars(args).items()}, "train_rows": train_part.num_rows,
            "test_rows": test_part.num_rows,
            "detectors": {n: {"threshold": f["threshold"], "fit_s": round(f["fit_s"], 1),
                              **({"epochs_run": f["detector"].epochs_run_, "val_loss": f["detector"].val_loss_}
                                 if hasattr(f["detector"], "epochs_run_") else {})}
                          for n, f in fitted.items()},
            "results": results}


def table(report: dict[str, Any]) -> str:
    """The results as a Markdown table: P / R / F1 per detector and fault type, F1 ratio to the baseline."""
    names = list(report["detectors"])
    head = ("| fault | labels | " + " | ".join(f"{n} P / R / F1" for n in names)
            + " | F1 ratio to z-score (AE, forecaster) |")
    lines = [head, "|" + "---|" * (len(names) + 3)]
    fmt: Callable[[dict], str] = lambda m: f"{m['precision']:.2f} / {m['recall']:.2f} / {m['f1']:.2f}"
    for case, r in report["results"].items():
        base = r["z-score"]["f1"]
        ratios = ", ".join("n/a" if base == 0 else f"{r[n]['f1'] / base:.2f}" for n in names[1:])
        lines.append(f"| {case} | {r['labels']} | " + " | ".join(fmt(r[n]) for n in names) + f" | {ratios} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sample", type=Path, default=ROOT / "data" / "sample")
    p.add_argument("--train-frac", type=float, default=0.6)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--rate", type=float, default=12.0, help="faults per hour of test log per vehicle")
    p.add_argument("--quantile", type=float, default=0.995)
    p.add_argument("--repeats", type=int, default=3, help="injections with seeds seed..seed+N-1, pooled")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--features", default=FEATURES,
                   help="comma-separated window features, derived ones (gps_step, heading_rate) included")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="also write the full report as JSON here")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    report = run(args)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(table(report))
    print(json.dumps(report["detectors"]))
    print(f"total {report['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
