"""`dtg lab optimizers`: the optimizer study (trajectories PNG per function + a results table)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from dtg.cli.common import JSON_OPTION, emit, log
from dtg.errors import DtgError
from dtg.workspace import DEFAULT

lab = typer.Typer(help="Experiments that compare training choices (the optimizer study).", no_args_is_help=True)


class Function(str, Enum):
    beale = "beale"
    saddle = "saddle"
    valley = "valley"
    all = "all"


def parse_lr_overrides(values: list[str]) -> dict[str, float]:
    """`NAME=RATE` strings to a dict; a malformed one is a DtgError naming it."""
    out: dict[str, float] = {}
    for item in values:
        name, sep, rate = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(rate)
        except ValueError:
            raise DtgError(f"--lr expects NAME=RATE (e.g. adam=0.01), got '{item}'", field="lr") from None
    return out


@lab.command("optimizers")
def optimizers_command(
    function: Function = typer.Option(Function.all, "--function", help="Which test function to run."),
    out: Path = typer.Option(DEFAULT.root / "data" / "lab" / "optimizers", "--out",
                             help="Folder for the PNGs and the table (optimizers.csv, optimizers.md)."),
    steps: int = typer.Option(500, "--steps", min=1, help="Optimizer steps per run."),
    lr: Optional[list[str]] = typer.Option(None, "--lr", help="Override a learning rate: NAME=RATE (repeatable)."),
    only: Optional[str] = typer.Option(None, "--optimizers", help="Comma-separated subset (default: all nine)."),
    tune: bool = typer.Option(False, "--tune", help="Re-tune every rate on the grid first (slow: ~1 min)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run every optimizer from the same start on Beale's function, a saddle and Rosenbrock's valley.

    Writes one PNG of trajectories over contours per function and the table (final loss, steps to reach
    the target, diverged or escaped) as CSV and markdown, and prints it. Deterministic: no seed needed.
    """
    import torch

    from dtg.lab import report, study

    torch.set_num_threads(1)
    overrides = parse_lr_overrides(lr or [])
    rates = study.learning_rates(overrides)  # validates names and values before any work
    names = study.optimizer_names(only.split(",") if only else None)
    if tune:
        log("tuning learning rates on the grid (beale + valley)...")
        rates = study.learning_rates({**study.tune_learning_rates(names), **overrides})  # --lr still wins
    functions = study.resolve_functions(function.value)
    log(f"running {len(names)} optimizers x {len(functions)} function(s), {steps} steps")
    runs = study.run_study(functions, steps=steps, names=names, rates=rates)
    summary = report.write_study(runs, functions, out)
    emit(summary, as_json, human=lambda s: study.to_markdown(s["results"]) + "\n" +
         "\n".join(f"wrote {f}" for f in s["files"]))


def register(app: typer.Typer) -> None:
    app.add_typer(lab, name="lab")
