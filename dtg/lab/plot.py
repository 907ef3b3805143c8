"""Trajectories over contours, one PNG per function (matplotlib, Agg backend: no display needed).

Left: log-spaced contours of the function (linear, symmetric ones for the saddle, which goes negative),
every optimizer's path, the shared start (black circle) and the optimum (red star) or saddle point (×).
Right: loss against step for each optimizer, so a stall or a crawl is visible even where paths overlap.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dtg.atomic import write_bytes
from dtg.lab.functions import TestFunction
from dtg.lab.study import Run

_GRID = 300
# Line style by family: plain/momentum methods solid, per-coordinate rates dashed, Adam family dash-dot.
_STYLES = {"sgd": "-", "momentum": "-", "nag": "-", "adagrad": "--", "adadelta": "--", "rmsprop": "--",
           "adam": "-.", "adamax": "-.", "nadam": "-."}


def _surface(fn: TestFunction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = np.linspace(*fn.xlim, _GRID)
    ys = np.linspace(*fn.ylim, _GRID)
    X, Y = np.meshgrid(xs, ys)
    with torch.no_grad():
        Z = fn.fn(torch.from_numpy(X), torch.from_numpy(Y)).numpy()
    return X, Y, Z


def plot_function(fn: TestFunction, runs: Sequence[Run], path: str | Path) -> Path:
    """Write the trajectories of `runs` (all on `fn`) over its contours to `path` (PNG, atomically)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    path = Path(path)
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(13, 5.6), gridspec_kw={"width_ratios": [1.15, 1]})
    X, Y, Z = _surface(fn)
    if fn.bounded:
        floor = max(float(Z.min()), 1e-4)
        levels = np.logspace(np.log10(floor), np.log10(float(Z.max())), 30)
        ax.contourf(X, Y, np.maximum(Z, floor), levels=levels, norm=LogNorm(), cmap="Greys_r", alpha=0.35)
        ax.contour(X, Y, np.maximum(Z, floor), levels=levels, norm=LogNorm(), cmap="Greys", linewidths=0.5,
                   alpha=0.6)
    else:
        bound = float(np.abs(Z).max())
        levels = np.linspace(-bound, bound, 25)
        ax.contourf(X, Y, Z, levels=levels, cmap="RdBu_r", alpha=0.3)
        ax.contour(X, Y, Z, levels=levels, colors="grey", linewidths=0.5, alpha=0.6)
    colors = matplotlib.colormaps["tab10"].colors
    for i, run in enumerate(runs):
        color = colors[i % len(colors)]
        style = _STYLES.get(run.optimizer, "-")
        z = 4 - i / max(len(runs), 1)  # earlier (plainer) methods on top, so SGD is never hidden
        ax.plot(run.path[:, 0], run.path[:, 1], style, color=color, lw=1.7, label=run.optimizer, zorder=z)
        ax.plot(*run.path[-1], "o", color=color, ms=5, mec="black", mew=0.5, zorder=z)
        ax_loss.plot(np.arange(len(run.losses)), run.losses, style, color=color, lw=1.4, zorder=z,
                     label=f"{run.optimizer} (lr {run.lr:g})")
    ax.plot(*fn.start, "o", color="black", ms=9, mfc="white", mew=2, zorder=5, label="start")
    if fn.minimum is not None:
        ax.plot(*fn.minimum, "*", color="red", ms=16, mec="black", zorder=5, label="minimum")
    else:
        ax.plot(0, 0, "x", color="red", ms=12, mew=3, zorder=5, label="saddle point")
    ax.set_xlim(*fn.xlim)
    ax.set_ylim(*fn.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{fn.title}: trajectories (dots: final points)")
    ax.legend(loc="best", fontsize=8, framealpha=0.85, ncol=2)
    if fn.bounded:
        ax_loss.set_yscale("log")
    else:
        ax_loss.set_yscale("symlog", linthresh=1e-2)
        ax_loss.axhline(fn.target, color="black", ls=":", lw=1)
        ax_loss.text(0, fn.target, " escape target", va="bottom", fontsize=8)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss per step")
    ax_loss.grid(True, which="major", alpha=0.3)
    ax_loss.legend(loc="best", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes(path, _palette_png(buf.getvalue()))
    return path


def _palette_png(data: bytes) -> bytes:
    """Re-encode an RGBA PNG with a 256-colour palette: a line plot looks the same at about a quarter the size."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
