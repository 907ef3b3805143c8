"""`dtg score`: the scheduled batch job — score new drive logs exactly once per model version."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from dtg.cli.common import JSON_OPTION, emit, log
from dtg.workspace import DEFAULT


def _human(summary: dict[str, Any]) -> str:
    lines = [f"scored {summary['files_new']} new input(s), skipped {summary['files_skipped']} already scored, "
             f"{summary['files_failed']} failed; {summary['windows_scored']} windows, "
             f"{summary['anomalies_total']} anomalies (model {summary['model']})",
             f"scores:    {summary['out']}/seconds, {summary['out']}/windows",
             f"anomalies: {summary['out']}/anomalies"]
    if summary.get("report"):
        lines.append(f"report:    {summary['report']}")
    for a in summary["anomalies"][:10]:
        lines.append(f"  {a['vehicle_id']} {a['start']} .. {a['end']} peak {a['peak_score']:.4g} ({a['top_feature']})")
    for e in summary["errors"]:
        lines.append(f"  FAILED {e['file']}: {e['error']}")
    return "\n".join(lines)


def score(
    sources: Optional[List[Path]] = typer.Argument(
        None, help="Drive-log files or folders (any format `dtg ingest` reads). None: every lake partition."),
    model: str = typer.Option(..., "--model", help="Model folder (models/NAME/VERSION), NAME or NAME/VERSION."),
    lake: Path = typer.Option(DEFAULT.lake, "--lake", help="Lake folder: new logs are ingested here first."),
    out: Path = typer.Option(DEFAULT.scores, "--out", help="Scores folder (windows/, seconds/, anomalies/)."),
    ledger: Path = typer.Option(DEFAULT.ledger, "--ledger", help="SQLite ledger of what was scored."),
    quarantine: Path = typer.Option(DEFAULT.quarantine, "--quarantine", help="Where rejected rows go."),
    models_dir: Path = typer.Option(DEFAULT.models, "--models", help="Where a model NAME is looked up."),
    threshold: str = typer.Option("default", "--threshold",
                                  help="default (the model card's), a number, or dynamic (telemanom)."),
    rescore: bool = typer.Option(False, "--rescore", help="Score inputs again even if the ledger has them."),
    batch_size: int = typer.Option(4096, "--batch-size", help="Windows per model call."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    engine: str = typer.Option("local", "--engine", help="local, or ray (dtg's optional 'ray' extra; docs/scaling.md)."),
    address: Optional[str] = typer.Option(None, "--address",
                                          help="With --engine ray: the Ray cluster to join (default $RAY_ADDRESS, "
                                               "else a local Ray)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="With --engine ray: scoring actors (default: the cluster's CPUs)."),
    wait: bool = typer.Option(False, "--wait/--no-wait",
                              help="If another run holds the lock: wait for it, or exit 3 at once (default)."),
    report: bool = typer.Option(False, "--report/--no-report", help="Also write the HTML report of the scores."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Score the drive logs the ledger has not seen for this model version (safe to rerun and to kill).

    Exit codes: 0 all scored, 1 some input failed (the others are scored), 2 usage error,
    3 another `dtg score` holds the lock (with --no-wait).
    """
    from dtg.lock import BUSY_EXIT_CODE, LockBusy
    from dtg.scoring import run_score

    try:
        result = run_score(sources or [], model, lake_dir=lake, out_dir=out, ledger_path=ledger,
                           quarantine_dir=quarantine, models_dir=models_dir, threshold=threshold,
                           rescore=rescore, batch_size=batch_size, device=device, wait=wait, engine=engine,
                           address=address, workers=workers, log=log)
    except LockBusy as exc:
        log(f"dtg: busy: {exc}")
        raise typer.Exit(BUSY_EXIT_CODE) from None
    summary = result.to_dict()
    if report:
        summary["report"] = _write_report(out, lake)
    emit(summary, as_json, _human)
    if result.files_failed:
        raise typer.Exit(1)


def _write_report(out: Path, lake: Path) -> str:
    from dtg.report.build import build_report

    return str(build_report(out, out / "report.html", lake_dir=lake if lake.is_dir() else None))


def register(app: typer.Typer) -> None:
    app.command("score")(score)
