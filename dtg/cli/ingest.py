"""`dtg ingest`: raw drive logs (DTG text, CSV, Parquet; UTF-8 or CP949) into the validated lake."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from dtg.cli.common import JSON_OPTION, emit, log
from dtg.schema import TZ
from dtg.workspace import DEFAULT


def _human(s: dict[str, Any]) -> str:
    lines = [
        f"ingested {s['files'] - s['files_failed']} of {s['files']} files into {s['lake']}",
        f"  rows read {s['rows_read']}: ingested {s['rows_ingested']}, duplicate {s['rows_duplicate']}, "
        f"quarantined {s['rows_quarantined']}",
    ]
    if s["quarantine_reasons"]:
        reasons = ", ".join(f"{k} {v}" for k, v in s["quarantine_reasons"].items())
        lines.append(f"  quarantined ({s['quarantine']}): {reasons}")
    if s["rows_outside_korea"]:
        lines.append(f"  warning: {s['rows_outside_korea']} rows stored with positions outside Korea")
    for e in s["errors"]:
        lines.append(f"  error: {e['reason']}")
    return "\n".join(lines)


def ingest(
    sources: List[Path] = typer.Argument(..., help="Log files or folders (searched recursively)."),
    lake: Path = typer.Option(DEFAULT.lake, "--lake", help="Lake folder (created if missing)."),
    quarantine: Path = typer.Option(DEFAULT.quarantine, "--quarantine", help="Where rejected rows go."),
    fmt: str = typer.Option("auto", "--format", help="auto | dtg | csv | parquet."),
    encoding: str = typer.Option("auto", "--encoding", help="auto | utf-8 | cp949 (euc-kr)."),
    tz: str = typer.Option(TZ, "--tz", help="Zone of timestamps that carry none (CSV; DTG files)."),
    mapping: Optional[Path] = typer.Option(None, "--mapping",
                                           help="TOML/JSON header mapping for other vendors' CSV exports."),
    vehicle: Optional[str] = typer.Option(None, "--vehicle",
                                          help="Vehicle id for files that do not name one (default: file stem)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Read, validate and store drive logs; rejected rows go to the quarantine with their reason."""
    from dtg.ingest import ingest as run_ingest
    from dtg.readers.csv import load_mapping

    mapping_dict = load_mapping(mapping) if mapping is not None else None

    def progress(res) -> None:
        if res.error:
            log(f"dtg: error: {res.error}")
        elif not as_json:
            log(f"{res.file}: {res.format}/{res.encoding} {res.rows_read} rows "
                f"(+{res.rows_ingested}, dup {res.rows_duplicate}, quarantined {res.rows_quarantined})"
                + ("" if res.variant == "standard" else f" [{res.variant}]"))

    summary = _with_progress(lambda cb: run_ingest(
        sources, lake, quarantine, fmt=fmt, encoding=encoding, tz=tz, mapping=mapping_dict, vehicle=vehicle,
        progress=cb), progress, len(sources))
    result = summary.to_dict()
    emit(result, as_json, _human)
    if not summary.ok:
        raise SystemExit(1)


def _with_progress(run, on_file, n_sources: int):
    """Run with a rich progress bar on stderr when stderr is a terminal; plain log lines otherwise."""
    if not sys.stderr.isatty():
        return run(on_file)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def cb(res) -> None:
            bar.update(task, advance=1, description=Path(res.file).name)
            on_file(res)

        return run(cb)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
