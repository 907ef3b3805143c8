"""`dtg run PIPELINE.toml`: every stage from one file (ingest → window → train → score)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from dtg.cli.common import JSON_OPTION, emit, log


def _num(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def _human(summary: dict[str, Any]) -> str:
    stages = summary["stages"]
    lines = [f"dtg run {summary['pipeline']}: {', '.join(stages)}"
             + ("" if summary["exit_code"] == 0 else f" — stage '{summary['failed_stage']}' FAILED")]
    ing = stages.get("ingest", {})
    if "rows_ingested" in ing:
        lines.append(f"  ingest: {ing.get('rows_ingested')} rows into {ing.get('lake')} "
                     f"({ing.get('rows_quarantined')} quarantined in {ing.get('quarantine')})")
    win = stages.get("window", {})
    if "windows" in win:
        lines.append(f"  window: {win['windows']} windows of {win.get('size')} s -> {win.get('out')}")
    tr = stages.get("train", {})
    if "model_dir" in tr:
        lines.append(f"  train:  {tr['model_dir']} (val loss {_num(tr.get('val_loss'))}, "
                     f"threshold {_num(tr.get('threshold'))})")
    sc = stages.get("score", {})
    if "out" in sc:
        out = sc["out"]
        lines += [f"  score:  {sc.get('files_new')} new, {sc.get('files_skipped')} skipped, "
                  f"{sc.get('windows_scored')} windows, {sc.get('anomalies_total')} anomalies",
                  f"scores:    {out}/seconds (per second), {out}/windows (per window)",
                  f"anomalies: {out}/anomalies"]
        if sc.get("report"):
            lines.append(f"report:    {sc['report']}")
    return "\n".join(lines)


def run(
    pipeline: Path = typer.Argument(..., help="Pipeline file (TOML) with ingest, window, train and score sections."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for every stage that takes one (overrides the file's)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the stages of a pipeline file in order; stop at the first that fails (its exit code)."""
    from dtg.pipeline import load, run as run_pipeline

    spec = load(pipeline)
    if seed is not None:
        spec.seed = seed
    result = run_pipeline(spec, log=log)
    summary = {"pipeline": str(pipeline), "stages": result.stages, "exit_code": result.exit_code,
               "failed_stage": result.failed_stage}
    emit(summary, as_json, _human)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
