"""`dtg events`: dangerous-driving events (KOTSA criteria) from the lake."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from dtg.cli.common import JSON_OPTION, emit, log
from dtg.workspace import DEFAULT


def _human(summary: dict[str, Any]) -> str:
    lines = [f"{summary['events_total']} events in {summary['vehicles']} vehicles "
             f"(criteria {summary['criteria_version']}), written to {summary['out']}"]
    lines += [f"  {k:<20} {v}" for k, v in summary["counts"].items()]
    for v in summary["per_vehicle"]:
        rate = "-" if v["events_per_100km"] is None else f"{v['events_per_100km']:.1f}"
        lines.append(f"  {v['vehicle_id']} ({v['vehicle_type']}, {v['vehicle_type_from']}): {v['distance_km']:.1f} km, "
                     f"{v['events_total']} events, {rate} per 100 km")
    return "\n".join(lines)


def events(
    lake: Path = typer.Option(DEFAULT.lake, "--lake", help="Lake folder to read."),
    vehicle_type: str = typer.Option("auto", "--vehicle-type",
                                     help="truck, bus, taxi, or auto (from the DTG header's vehicle type code)."),
    speed_limit: Optional[float] = typer.Option(None, "--speed-limit",
                                                help="Road limit in km/h for every vehicle (default: per type)."),
    criteria: Optional[Path] = typer.Option(None, "--criteria", help="Criteria TOML file replacing the bundled one."),
    criteria_version: Optional[str] = typer.Option(None, "--criteria-version",
                                                   help="Table version in the criteria file (kotsa, kotsa-flat)."),
    out: Path = typer.Option(DEFAULT.events, "--out", help="Folder for events.parquet and summary.parquet."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Detect the 11 KOTSA dangerous-driving behaviours per vehicle; write event intervals and a summary."""
    from dtg.errors import DtgError
    from dtg.events import EVENT_TYPES, detect_events, load_criteria, write_events
    from dtg.lake import Lake

    crit = load_criteria(criteria, criteria_version)
    if not lake.is_dir():
        raise DtgError("no lake here (run `dtg ingest` first or pass --lake)", file=lake)
    table = Lake(lake).read()
    log(f"read {table.num_rows} rows from {lake}")
    result = detect_events(table, crit, vehicle_type=vehicle_type, speed_limit=speed_limit)
    paths = write_events(result, out)
    per_vehicle = result.summary.select(
        ["vehicle_id", "vehicle_type", "vehicle_type_from", "seconds", "distance_km", "odometer_km", "events_total",
         "events_per_100km", *EVENT_TYPES]).to_pylist()
    summary = {
        "vehicles": result.summary.num_rows, "rows": table.num_rows, "criteria_version": result.criteria_version,
        "events_total": result.events.num_rows, "counts": result.counts(), "per_vehicle": per_vehicle[:1000],
        "out": str(out), **{f"{k}_file": v for k, v in paths.items()},
    }
    emit(summary, as_json, _human)


def register(app: typer.Typer) -> None:
    app.command("events")(events)
