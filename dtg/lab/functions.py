"""The test functions of the optimizer study: Beale's function, a saddle and Rosenbrock's long valley.

Each is written once in torch (autograd gives the gradient the optimizers see) and vectorised, so the
same code draws the contour plot from a numpy grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


def beale(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Beale's function: flat plateaus and steep walls; minimum 0 at (3, 0.5)."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def saddle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x² − y²: a saddle point at the origin, unbounded below along y."""
    return x**2 - y**2


def rosenbrock(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Rosenbrock's banana (1 − x)² + 100 (y − x²)²: a long, narrow, curved valley; minimum 0 at (1, 1)."""
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


@dataclass(frozen=True)
class TestFunction:
    """A study function with its start point, optimum, success target and plot window.

    `target` is the loss a run must reach to count as arrived (for the saddle: escaped, loss <= -1).
    A run stops early once |θ| exceeds `radius`: divergence for a bounded function, escape for the saddle.
    """

    name: str
    title: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    start: tuple[float, float]
    minimum: tuple[float, float] | None
    target: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    radius: float
    bounded: bool = True

    __test__ = False  # not a pytest class, despite the name


FUNCTIONS: dict[str, TestFunction] = {
    "beale": TestFunction("beale", "Beale's function", beale, start=(1.0, 1.4), minimum=(3.0, 0.5),
                          target=1e-3, xlim=(-1.0, 4.5), ylim=(-1.5, 2.0), radius=1e3),
    "saddle": TestFunction("saddle", "Saddle x² − y²", saddle, start=(1.0, 1e-3), minimum=None,
                           target=-1.0, xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), radius=10.0, bounded=False),
    "valley": TestFunction("valley", "Long narrow valley (Rosenbrock)", rosenbrock, start=(-1.2, 1.0),
                           minimum=(1.0, 1.0), target=1e-3, xlim=(-2.0, 2.0), ylim=(-1.0, 3.0), radius=1e3),
}
