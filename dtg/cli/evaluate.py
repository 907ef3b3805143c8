"""`dtg evaluate`: event-wise precision/recall of predicted intervals against labelled ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dtg.cli.common import JSON_OPTION, emit


def _human(s: dict[str, Any]) -> str:
    lines = [f"labels {s['labels']} (found {s['labels_found']}), predictions {s['predictions']} "
             f"(matching a label {s['predictions_matched']})",
             f"event-wise  precision {s['precision']:.3f}  recall {s['recall']:.3f}  "
             f"F1 {s['f1']:.3f}  F0.5 {s['f0_5']:.3f}",
             f"beside it   point-adjusted F1 {s['point_adjusted_f1']:.3f} (rewards even random scores)  "
             f"point-wise F1 {s['point_f1']:.3f}"]
    if s["delay_mean_s"] is not None:
        lines.append(f"delay to detection: mean {s['delay_mean_s']:.1f} s, median {s['delay_median_s']:.1f} s, "
                     f"max {s['delay_max_s']:.1f} s")
    for t, m in s.get("per_type", {}).items():
        lines.append(f"  {t:<20} recall {m['recall']:.3f} ({m['labels_found']}/{m['labels']})")
    return "\n".join(lines)


def evaluate(
    pred: Path = typer.Option(..., "--pred", help="Predicted intervals: anomalies Parquet/CSV, or a scores folder."),
    labels: Path = typer.Option(..., "--labels", help="Labelled intervals (vehicle_id, start, end[, type])."),
    per_vehicle: bool = typer.Option(True, "--per-vehicle/--no-per-vehicle", help="Include per-vehicle metrics."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Event-wise precision, recall, F1 and F0.5, point-adjusted F1 beside them, and delay to detection."""
    from dtg.evaluate import evaluate as run, read_intervals

    result = run(read_intervals(pred), read_intervals(labels))
    if not per_vehicle:
        result.pop("vehicles")
    emit(result, as_json, _human)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
