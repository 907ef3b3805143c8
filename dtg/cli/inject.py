"""`dtg inject`: a copy of drive logs with labelled synthetic faults, for benchmarking detectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import typer

from dtg.cli.common import JSON_OPTION, emit, log


def _human(s: dict[str, Any]) -> str:
    lines = [f"{s['labels_total']} faults injected into {s['files']} files "
             f"({s['rows_in']} rows in, {s['rows_out']} out); labels: {s['labels_file']}"]
    lines += [f"  {k:<12} {v}" for k, v in s["faults"].items()]
    return "\n".join(lines)


def inject(
    sources: List[Path] = typer.Argument(..., help="Drive log files or folders (searched recursively)."),
    out: Path = typer.Option(..., "--out", help="Folder for the faulty copies, labels.parquet and labels.csv."),
    faults: str = typer.Option(",".join(("stuck", "spike", "drift", "gps_jump", "brake_stuck", "dropout",
                                         "implausible")), "--faults", help="Comma-separated fault types."),
    rate: float = typer.Option(4.0, "--rate", help="Expected faults per hour of log, per vehicle (at least one)."),
    seed: int = typer.Option(0, "--seed", help="Fixes every random choice."),
    fmt: str = typer.Option("parquet", "--format", help="Format of the copies: parquet, csv or dtg."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write drive logs with synthetic faults (stuck, spike, drift, GPS jump, brake stuck, dropout,
    implausible speed/RPM) and a labels file of exactly what changed."""
    from dtg.inject import FAULTS, inject_files, parse_faults

    names = parse_faults(faults)
    summary = inject_files(sources, out, names, rate=rate, seed=seed, fmt=fmt, progress=log)
    summary["faults"] = {k: summary["faults"].get(k, 0) for k in FAULTS if k in names}
    emit(summary, as_json, _human)


def register(app: typer.Typer) -> None:
    app.command("inject")(inject)
