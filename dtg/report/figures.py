"""The report's pictures, each a function from plain arrays to PNG bytes (matplotlib, Agg, no pyplot).

Times arrive as int64 epoch milliseconds and are drawn in Korean local time. Lines break at gaps in
the log instead of bridging them. Text taken from data (vehicle numbers, feature names) is drawn with
mathtext off, so a `$` in a vehicle id cannot break a figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtg.report.data import valid_positions
from dtg.report.style import COLORS, figure, png_bytes
from dtg.schema import TZ

GAP_MS = 1500
"""Consecutive samples further apart than this are drawn as separate line pieces."""


def local_time(ms: np.ndarray) -> np.ndarray:
    """Epoch milliseconds as naive Korean local datetime64 values (what the axes show)."""
    import pandas as pd

    idx = pd.to_datetime(np.asarray(ms, dtype=np.int64), unit="ms", utc=True).tz_convert(TZ)
    return idx.tz_localize(None).to_numpy()


def _with_gaps(ms: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """Insert a NaN sample after every gap so a line plot breaks there."""
    ms = np.asarray(ms, dtype=np.int64)
    cut = np.flatnonzero(np.diff(ms) > GAP_MS) + 1
    out_t = np.insert(ms, cut, ms[cut - 1] + 1 if len(cut) else cut)
    outs = [np.insert(np.asarray(y, dtype=np.float64), cut, np.nan) for y in ys]
    return (local_time(out_t), *outs)


def _time_axis(ax, label: str) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=9))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.set_xlabel(label)


def _log_y(ax) -> None:
    """Log-scaled y axis labelled in plain numbers (mathtext exponents would need U+2212, not in the font)."""
    from matplotlib import ticker

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#888888",
            fontsize=9, parse_math=False)


@dataclass(frozen=True)
class PanelData:
    """Everything one anomaly panel shows; signal arrays may be empty when the lake has no rows."""

    title: str
    start: int  # epoch ms, first anomalous second
    end: int  # epoch ms, last anomalous second
    ts: np.ndarray  # lake rows (epoch ms)
    speed: np.ndarray
    rpm: np.ndarray
    brake: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    score_ts: np.ndarray  # per-second scores (epoch ms)
    score: np.ndarray
    threshold: float | None
    view: tuple[int, int]  # shown time range (epoch ms)
    top_feature: str | None = None  # its axes get red spines


def anomaly_panel(p: PanelData) -> bytes:
    """Speed, RPM, brake and score over time with the interval shaded; the GPS track beside them."""
    with figure(figsize=(12.5, 5.6), layout="constrained") as fig:
        grid = fig.add_gridspec(4, 2, width_ratios=(2.4, 1), height_ratios=(1.15, 1, 0.45, 1.05))
        ax_speed = fig.add_subplot(grid[0, 0])
        axes = [ax_speed] + [fig.add_subplot(grid[i, 0], sharex=ax_speed) for i in (1, 2, 3)]
        ax_map = fig.add_subplot(grid[:, 1])
        fig.suptitle(p.title, x=0.01, ha="left", fontsize=12, parse_math=False)

        t0, t1 = local_time(np.array([p.start, p.end + 1000]))
        v0, v1 = local_time(np.array(p.view))
        for ax in axes:
            ax.axvspan(t0, t1, color=COLORS["interval"], alpha=0.28, lw=0, zorder=0)
            ax.set_xlim(v0, v1)
        for ax in axes[:-1]:
            ax.tick_params(labelbottom=False)

        has_lake = len(p.ts) > 0
        if has_lake:
            t, speed, rpm, brake = _with_gaps(p.ts, p.speed, p.rpm, p.brake)
            axes[0].plot(t, speed, color=COLORS["speed"], lw=1.4)
            axes[1].plot(t, rpm, color=COLORS["rpm"], lw=1.2)
            axes[2].fill_between(t, 0, np.nan_to_num(brake), step="post", color=COLORS["brake"],
                                 alpha=0.75, lw=0)
            axes[0].set_ylim(bottom=0)
            axes[1].set_ylim(bottom=0)
        else:
            for ax in axes[:3]:
                _note(ax, "no lake rows for this interval")
        axes[0].set_ylabel("speed\nkm/h")
        axes[1].set_ylabel("RPM")
        axes[2].set_ylabel("brake")
        axes[2].set_ylim(-0.05, 1.15)
        axes[2].set_yticks([0, 1], ["off", "on"])
        axes[2].grid(False, axis="y")
        signal_axes = {"speed": axes[0], "rpm": axes[1], "brake": axes[2], "lat": ax_map, "lon": ax_map}
        if p.top_feature in signal_axes:  # point the eye at the signal the model found most wrong
            marked = signal_axes[p.top_feature]
            for side in ("left", "bottom"):
                marked.spines[side].set_color(COLORS["threshold"])
                marked.spines[side].set_linewidth(1.6)
            marked.yaxis.label.set_color(COLORS["threshold"])

        ax_score = axes[3]
        if len(p.score_ts):
            t, score = _with_gaps(p.score_ts, p.score)
            ax_score.plot(t, score, color=COLORS["score"], lw=1.3, label="anomaly score")
        else:
            _note(ax_score, "no per-second scores here")
        if p.threshold is not None:
            ax_score.axhline(p.threshold, color=COLORS["threshold"], ls="--", lw=1.1,
                             label=f"threshold {p.threshold:.4g}")
        ax_score.set_ylabel("score")
        ax_score.set_ylim(bottom=0)
        ax_score.legend(loc="best", ncols=2, frameon=True, framealpha=0.9, edgecolor="none")
        _time_axis(ax_score, f"time ({TZ}, {str(t0)[:10]})")

        _track(ax_map, p)
        return png_bytes(fig)


def _track(ax, p: PanelData) -> None:
    ax.set_title("GPS track", loc="left")
    ok = valid_positions(p.lat, p.lon) if len(p.ts) else np.zeros(0, dtype=bool)
    if not ok.any():
        ax.set_xticks([])
        ax.set_yticks([])
        _note(ax, "no GPS fix in this window")
        return
    ts, lat, lon = p.ts[ok], p.lat[ok], p.lon[ok]
    _, la, lo = _with_gaps(ts, lat, lon)
    ax.plot(lo, la, color=COLORS["track"], lw=1.6, zorder=1, label="context")
    inside = (ts >= p.start) & (ts <= p.end)
    if inside.any():
        _, la_i, lo_i = _with_gaps(ts[inside], lat[inside], lon[inside])
        ax.plot(lo_i, la_i, color=COLORS["threshold"], lw=3.2, zorder=2, label="anomaly")
        ax.scatter(lon[inside][:1], lat[inside][:1], s=36, color=COLORS["threshold"], zorder=3,
                   edgecolor="white", linewidth=0.8)
    ax.scatter(lon[:1], lat[:1], s=26, color="#2a9d8f", zorder=3, label="view start", edgecolor="white",
               linewidth=0.8)
    mid = float(np.nanmean(lat))
    ax.set_aspect(1.0 / max(np.cos(np.radians(mid)), 0.1), adjustable="datalim")
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:.4f}"))  # 4 decimals: about 10 m
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:.4f}"))
    ax.tick_params(labelsize=7.5)
    ax.set_xlabel("longitude °E")
    ax.set_ylabel("latitude °N")
    ax.legend(loc="best", fontsize=7.5)


def loss_curves(history: dict[str, np.ndarray], title: str) -> bytes:
    """Train and validation loss per epoch (log scale when they span more than a decade)."""
    with figure(figsize=(6.2, 3.6), layout="constrained") as fig:
        ax = fig.add_subplot()
        epoch, train, val = history["epoch"], history["train_loss"], history["val_loss"]
        ax.plot(epoch, train, color=COLORS["train"], lw=1.6, marker="o", ms=3, label="train")
        if np.isfinite(val).any():
            ax.plot(epoch, val, color=COLORS["val"], lw=1.6, marker="o", ms=3, label="validation")
            best = int(np.nanargmin(val))
            ax.scatter([epoch[best]], [val[best]], s=70, facecolor="none", edgecolor=COLORS["threshold"],
                       zorder=3, label=f"best val {val[best]:.4g} (epoch {epoch[best]:g})")
        both = np.concatenate([train, val])
        both = both[np.isfinite(both) & (both > 0)]
        if len(both) and both.max() / both.min() > 10:
            _log_y(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(title, parse_math=False)
        ax.legend()
        return png_bytes(fig)


def score_histogram(scores: np.ndarray, threshold: float | None, flagged: np.ndarray, title: str) -> bytes:
    """Distribution of per-second scores (log count axis) with the threshold marked."""
    with figure(figsize=(6.2, 3.6), layout="constrained") as fig:
        ax = fig.add_subplot()
        s = np.asarray(scores, dtype=np.float64)
        finite = np.isfinite(s)
        s, fl = s[finite], np.asarray(flagged, dtype=bool)[finite]
        if len(s) == 0:
            _note(ax, "no scores")
            return png_bytes(fig)
        hi = max(float(s.max()), threshold or 0.0)
        bins = np.linspace(float(min(s.min(), 0.0)), hi if hi > 0 else 1.0, 81)
        ax.hist(s[~fl], bins=bins, color=COLORS["hist"], alpha=0.9, label="normal seconds")
        if fl.any():
            ax.hist(s[fl], bins=bins, color=COLORS["threshold"], alpha=0.9, label="anomalous seconds")
        _log_y(ax)
        if threshold is not None:
            ax.axvline(threshold, color=COLORS["threshold"], ls="--", lw=1.2, label=f"threshold {threshold:.4g}")
        elif fl.any():
            low = float(s[fl].min())
            ax.axvline(low, color=COLORS["threshold"], ls=":", lw=1.2, label=f"lowest flagged {low:.4g}")
        ax.set_xlabel("anomaly score (per second)")
        ax.set_ylabel("seconds (log)")
        ax.set_title(title, parse_math=False)
        ax.legend()
        return png_bytes(fig)


def fleet_timeline(vehicles: list[str], spans: list[np.ndarray], anomalies: list[tuple[np.ndarray, np.ndarray]]
                   ) -> bytes:
    """One row per vehicle: the scored seconds (grey) and the anomalous intervals (red) over time."""
    n = len(vehicles)
    ends = [x for ts in spans if len(ts) for x in (ts[0], ts[-1])]
    ends += [x for a, b in anomalies if len(a) for x in (a.min(), b.max())]
    min_width = 0.002 * (max(ends) - min(ends)) if ends else 0.0
    with figure(figsize=(12.5, 0.9 + 0.36 * n), layout="constrained") as fig:
        ax = fig.add_subplot()
        for i, (ts, (a_start, a_end)) in enumerate(zip(spans, anomalies)):
            y = n - 1 - i
            if len(ts):
                cut = np.flatnonzero(np.diff(ts) > 60_000)
                lo = np.concatenate(([ts[0]], ts[cut + 1]))
                hi = np.concatenate((ts[cut], [ts[-1]]))
                _bars(ax, lo, hi + 1000, y, 0.5, "#d9dee5")
            if len(a_start):
                _bars(ax, a_start, np.maximum(a_end + 1000, a_start + min_width), y, 0.5, COLORS["threshold"])
        ax.set_yticks(range(n), list(reversed(vehicles)), parse_math=False)
        ax.set_ylim(-0.7, n - 0.3)
        ax.grid(False, axis="y")
        ax.set_xlabel(f"time ({TZ})")
        ax.set_title("Scored time (grey) and anomalies (red) per vehicle")
        return png_bytes(fig)


def _bars(ax, lo: np.ndarray, hi: np.ndarray, y: float, height: float, color: str) -> None:
    """Horizontal bars from lo to hi (epoch ms) at row y."""
    import matplotlib.dates as mdates

    a = mdates.date2num(local_time(np.asarray(lo, dtype=np.int64)))
    b = mdates.date2num(local_time(np.asarray(hi, dtype=np.int64)))
    ax.broken_barh(list(zip(a, b - a)), (y - height / 2, height), facecolors=color)
    ax.xaxis_date()
