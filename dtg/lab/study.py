"""The optimizer study: every optimizer from the same start on each test function, and what happened.

Reproduces the classic comparison figures (Radford's animations, Ruder 2016 fig. 4): plain SGD crawls
along Rosenbrock's valley and stalls at a saddle, where momentum and the adaptive methods escape.
The runs are deterministic (no random source), so no seed is needed to reproduce a table.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from dtg.errors import DtgError
from dtg.lab.functions import FUNCTIONS, TestFunction
from dtg.nn import optimizers
from dtg.nn.registry import lookup

# One learning rate per optimizer, used on every function: for each optimizer the rate on LR_GRID with the
# best mean log10 final loss on Beale's function and Rosenbrock's valley together after 500 steps (the
# classic figures likewise tune each method); `tune_learning_rates()` / `dtg lab optimizers --tune` rederive
# it. The saddle then shows what those same settings do near a saddle point. Override with `--lr NAME=X`.
LEARNING_RATES: dict[str, float] = {
    "sgd": 0.002,  # the largest stable in the valley: lr·λmax < 2 with λmax ≈ 1000 near its floor
    "momentum": 0.002,
    "nag": 0.002,
    "adagrad": 1.0,
    "adadelta": 1.0,  # the published rule has no rate: 1 is Zeiler's
    "rmsprop": 0.01,
    "adam": 1.0,
    "adamax": 1.0,
    "nadam": 0.1,
}

DEFAULT_STEPS = 500


@dataclass
class Run:
    """One optimizer on one function: the path (steps_run + 1 points, start first) and its losses."""

    function: str
    optimizer: str
    lr: float
    steps: int
    path: np.ndarray
    losses: np.ndarray
    steps_to_target: int | None
    diverged: bool
    escaped: bool = False

    @property
    def final(self) -> np.ndarray:
        return self.path[-1]

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    def summary(self) -> dict[str, Any]:
        """The table row: final loss and point, distance to the minimum, steps to the target, diverged."""
        fn = FUNCTIONS[self.function]
        dist = None if fn.minimum is None else float(np.hypot(*(self.final - np.asarray(fn.minimum))))
        return {
            "function": self.function,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "steps_run": len(self.path) - 1,
            "final_loss": self.final_loss,
            "final_x": float(self.final[0]),
            "final_y": float(self.final[1]),
            "distance_to_minimum": dist,
            "target": fn.target,
            "steps_to_target": self.steps_to_target,
            "diverged": self.diverged,
            "escaped": self.escaped,
        }


def run_optimizer(fn: TestFunction, name: str, lr: float, steps: int) -> Run:
    """Minimise `fn` from its start with optimizer `name` at rate `lr` for `steps` steps (float64).

    A run stops early when the loss is not finite or the point leaves the radius `fn.radius`: that is
    divergence on a bounded function and an escape on the (unbounded) saddle.
    """
    theta = torch.tensor(fn.start, dtype=torch.float64, requires_grad=True)
    opt = optimizers.build(name, [theta], lr=lr)
    path: list[np.ndarray] = []
    losses: list[float] = []
    hit: int | None = None
    diverged = escaped = False
    for step in range(steps + 1):
        point = theta.detach().numpy().copy()
        if step < steps:
            loss_t = fn.fn(theta[0], theta[1])
        else:
            with torch.no_grad():
                loss_t = fn.fn(theta[0], theta[1])
        loss = loss_t.item()
        path.append(point)
        losses.append(loss)
        if hit is None and loss <= fn.target:
            hit = step
        if not math.isfinite(loss) or not np.isfinite(point).all() or float(np.hypot(*point)) > fn.radius:
            diverged = fn.bounded or not math.isfinite(loss)
            escaped = not diverged
            break
        if step < steps:
            theta.grad = None
            loss_t.backward()
            opt.step()
    return Run(fn.name, name, lr, steps, np.array(path), np.array(losses), hit, diverged, escaped)


def resolve_functions(name: str) -> list[TestFunction]:
    """`beale`, `saddle`, `valley` or `all` (in that order)."""
    if name.strip().lower() == "all":
        return list(FUNCTIONS.values())
    return [lookup("function", FUNCTIONS, name)[1]]


def optimizer_names(names: Iterable[str] | None = None) -> list[str]:
    """Canonical names for `names` (blank entries dropped); None or empty means all nine, in registry order."""
    given = [n for n in (names or []) if n.strip()]
    if not given:
        return list(optimizers.OPTIMIZERS)
    return [lookup("optimizer", optimizers.OPTIMIZERS, n)[0] for n in given]


def learning_rates(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The study's rates with `overrides` applied (names checked, rates must be positive and finite)."""
    rates = dict(LEARNING_RATES)
    for name, lr in (overrides or {}).items():
        canonical = lookup("optimizer", optimizers.OPTIMIZERS, name)[0]
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise DtgError(f"learning rate for '{canonical}' must be a positive number, got {lr!r}", field="lr")
        rates[canonical] = float(lr)
    return rates


def run_study(
    functions: Iterable[TestFunction],
    steps: int = DEFAULT_STEPS,
    names: Iterable[str] | None = None,
    rates: Mapping[str, float] | None = None,
) -> list[Run]:
    """Every optimizer in `names` (default: all) on every function, from the function's start point."""
    if steps < 1:
        raise DtgError(f"steps must be at least 1, got {steps}", field="steps")
    rates = learning_rates(rates)
    chosen = optimizer_names(names)
    return [run_optimizer(fn, name, rates[name], steps) for fn in functions for name in chosen]


COLUMNS = ["function", "optimizer", "lr", "steps_run", "final_loss", "final_x", "final_y",
           "distance_to_minimum", "target", "steps_to_target", "diverged", "escaped"]


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The table as CSV (empty cells for None)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
    return buf.getvalue()


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _outcome(row: dict[str, Any]) -> str:
    if row["diverged"]:
        return f"diverged (step {row['steps_run']})"
    if row["escaped"]:
        return f"escaped (step {row['steps_run']})"
    return "reached" if row["steps_to_target"] is not None else "not reached"


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The table as GitHub markdown, one line per run.

    `reached target at` is the first step whose loss met the function's target; `outcome` says whether a
    run diverged (left the radius of a bounded function), escaped (left the saddle's radius) or neither.
    """
    head = ["function", "optimizer", "lr", "final loss", "final (x, y)", "dist. to min", "reached target at",
            "outcome"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["function"], r["optimizer"], _fmt(r["lr"]), _fmt(r["final_loss"]),
                 f"({r['final_x']:.3g}, {r['final_y']:.3g})", _fmt(r["distance_to_minimum"]),
                 "never" if r["steps_to_target"] is None else f"step {r['steps_to_target']}",
                 _outcome(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


LR_GRID: tuple[float, ...] = (3e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0, 3.0)
TUNING_FUNCTIONS: tuple[str, ...] = ("beale", "valley")
_LOSS_FLOOR = 1e-12


def tuning_score(runs: Iterable[Run]) -> float:
    """How well one (optimizer, rate) did on the tuning functions: mean log10 final loss; +inf if any diverged.

    Losses below 1e-12 count as 1e-12, so reaching the minimum sooner or to more digits is not rewarded.
    """
    runs = list(runs)
    if any(r.diverged for r in runs):
        return math.inf
    return float(np.mean([math.log10(max(r.final_loss, _LOSS_FLOOR)) for r in runs]))


def tune_learning_rates(
    names: Iterable[str] | None = None,
    grid: Iterable[float] = LR_GRID,
    steps: int = DEFAULT_STEPS,
    functions: Iterable[str] = TUNING_FUNCTIONS,
) -> dict[str, float]:
    """For each optimizer, the rate on `grid` with the best `tuning_score` on `functions` (ties: smaller rate).

    This is how LEARNING_RATES was chosen (`dtg lab optimizers --tune` reruns it).
    """
    fns = [FUNCTIONS[f] for f in functions]
    chosen = optimizer_names(names)
    best: dict[str, float] = {}
    for name in chosen:
        scores = [(tuning_score(run_optimizer(fn, name, lr, steps) for fn in fns), lr) for lr in sorted(grid)]
        best[name] = min(scores)[1]
    return best
