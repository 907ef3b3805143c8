"""The report's look: the shipped Hangul font and matplotlib settings, applied per figure.

Vehicle numbers such as 서울70사1234 need a font with Hangul; matplotlib's default (DejaVu Sans) has
none and would draw empty boxes. dtg ships NanumSquare Regular (OFL, `dtg/fonts/`) and registers it
with matplotlib's font manager the first time a figure is drawn. DejaVu Sans stays second in the family
list for the few symbols NanumSquare lacks; tick labels use the ASCII minus, which it has.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator

FONT_FILE = "NanumSquareR.ttf"

COLORS = {
    "speed": "#1f6fb2",
    "rpm": "#7a4fb3",
    "brake": "#d1495b",
    "score": "#2b2d42",
    "threshold": "#d1495b",
    "interval": "#f4a259",
    "track": "#8d99ae",
    "train": "#1f6fb2",
    "val": "#f4a259",
    "hist": "#5b8e7d",
}


@lru_cache(maxsize=1)
def font_family() -> str:
    """Register the shipped Hangul font with matplotlib once; return its family name."""
    from matplotlib import font_manager

    path = resources.files("dtg") / "fonts" / FONT_FILE
    with resources.as_file(path) as real:
        font_manager.fontManager.addfont(str(real))
        return font_manager.FontProperties(fname=str(real)).get_name()


def rc() -> dict[str, Any]:
    """matplotlib settings for every report figure: the Hangul font first, quiet axes, light grid."""
    return {
        "font.family": [font_family(), "DejaVu Sans"],
        "font.size": 9.5,
        "axes.titlesize": 10.5,
        "axes.titleweight": "normal",  # one shipped weight: no bold lookups that fall back noisily
        "axes.titlecolor": "#1d2330",
        "axes.unicode_minus": False,  # NanumSquare has no U+2212, and mathtext tick labels use the main font
        "axes.titlelocation": "left",
        "axes.labelsize": 9,
        "axes.labelcolor": "#444444",
        "axes.edgecolor": "#bbbbbb",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#e6e6e6",
        "grid.linewidth": 0.7,
        "xtick.color": "#555555",
        "ytick.color": "#555555",
        "legend.frameon": False,
        "legend.fontsize": 8.5,
        "figure.dpi": 100,
        "savefig.dpi": 110,
        "savefig.facecolor": "white",
        "text.usetex": False,
    }


@contextmanager
def figure(**kwargs: Any) -> Iterator[Any]:
    """A matplotlib Figure (Agg, no pyplot state) drawn under the report's settings."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(rc()):
        fig = Figure(**kwargs)
        yield fig


def png_bytes(fig: Any) -> bytes:
    """Render a figure to PNG bytes (Agg backend; no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # constrained layout already fits; "tight" would draw twice
    return buf.getvalue()
