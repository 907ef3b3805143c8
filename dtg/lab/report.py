"""Write the optimizer study's outputs: a PNG per function, the table as CSV and markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dtg.atomic import write_text
from dtg.lab.functions import TestFunction
from dtg.lab.plot import plot_function
from dtg.lab.study import Run, to_csv, to_markdown


def write_study(runs: Sequence[Run], functions: Sequence[TestFunction], out: str | Path) -> dict[str, Any]:
    """Write `optimizers-<function>.png` per function, `optimizers.csv` and `optimizers.md` under `out`.

    Every file is written atomically. Returns the command's summary: out, steps, functions, files, results.
    """
    out = Path(out)
    rows = [r.summary() for r in runs]
    files = []
    for fn in functions:
        mine = [r for r in runs if r.function == fn.name]
        files.append(plot_function(fn, mine, out / f"optimizers-{fn.name}.png"))
    write_text(out / "optimizers.csv", to_csv(rows))
    write_text(out / "optimizers.md", to_markdown(rows))
    files += [out / "optimizers.csv", out / "optimizers.md"]
    return {
        "out": str(out),
        "steps": max((r.steps for r in runs), default=0),
        "functions": [fn.name for fn in functions],
        "files": [str(f) for f in files],
        "results": rows,
    }
