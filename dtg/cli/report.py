"""`dtg report`: one self-contained HTML page of a scoring run — fleet, top anomalies, model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from dtg.cli.common import JSON_OPTION, emit, log
from dtg.workspace import DEFAULT


def _human(summary: dict[str, Any]) -> str:
    return (f"report: {summary['out']} ({summary['bytes'] / 1e6:.1f} MB; {summary['vehicles']} vehicles, "
            f"{summary['anomalies']} anomalies, {summary['panels']} panels, {summary['images']} images)")


def report(
    scores: Path = typer.Option(DEFAULT.scores, "--scores", help="Scores folder written by `dtg score`."),
    lake: Optional[Path] = typer.Option(
        None, "--lake", help="Lake with the signals to draw (default: data/lake when it exists)."),
    model: Optional[Path] = typer.Option(
        None, "--model", help="Model folder for the loss curves (default: the one in SCORES/model.json)."),
    events: Optional[Path] = typer.Option(
        None, "--events", help="Events folder from `dtg events` (default: data/events when it exists)."),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write (default: SCORES/report.html)."),
    top: int = typer.Option(10, "--top", min=0, help="How many of the strongest anomalies get a panel."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write an HTML report of a scoring run: fleet table, panels of the top anomalies, loss curves,
    score distribution and every anomaly — one file with its images embedded."""
    from dtg.report import write_report

    lake = lake if lake is not None else (DEFAULT.lake if DEFAULT.lake.is_dir() else None)
    events = events if events is not None else (DEFAULT.events if DEFAULT.events.is_dir() else None)
    out = out if out is not None else scores / "report.html"
    log(f"building the report of {scores} ...")
    result = write_report(scores, out, lake_dir=lake, model_dir=model, events_dir=events, top=top)
    emit({"out": str(result.out), "vehicles": result.vehicles, "anomalies": result.anomalies,
          "panels": result.panels, "images": result.images, "bytes": result.bytes}, as_json, _human)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
