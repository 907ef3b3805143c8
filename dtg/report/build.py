"""`build_report`: scores (+ lake, model, events) in, one self-contained HTML file out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dtg.atomic import write_text
from dtg.errors import DtgError
from dtg.report import figures
from dtg.report.data import (Anomalies, ModelInfo, Seconds, count_events, distance_km, epoch_ms, load_anomalies,
                             load_model_info, load_seconds, read_lake)
from dtg.report.page import FleetRow, Page, Panel, local_text, render

CONTEXT_MIN_S = 60
CONTEXT_MAX_S = 900
"""Each panel shows the interval plus this much either side: its own duration, within these bounds."""
TIMELINE_MAX_VEHICLES = 40


@dataclass(frozen=True)
class ReportResult:
    """What was written: the file and what it holds (the CLI's summary)."""

    out: Path
    vehicles: int
    anomalies: int
    panels: int
    images: int
    bytes: int


def build_report(scores_dir: str | Path, out_path: str | Path, lake_dir: str | Path | None = None,
                 model_dir: str | Path | None = None, events_dir: str | Path | None = None,
                 top: int = 10) -> Path:
    """Write the HTML report for a scores folder to `out_path` (atomically) and return its path."""
    return write_report(scores_dir, out_path, lake_dir, model_dir, events_dir, top).out


def write_report(scores_dir: str | Path, out_path: str | Path, lake_dir: str | Path | None = None,
                 model_dir: str | Path | None = None, events_dir: str | Path | None = None,
                 top: int = 10) -> ReportResult:
    """Like `build_report`, returning counts of what the report holds."""
    scores_dir = Path(scores_dir)
    out = Path(out_path)
    if top < 0:
        raise DtgError(f"--top must be 0 or more, got {top}", field="top")
    if not scores_dir.is_dir():
        raise DtgError("no scores folder here; run `dtg score` first or pass --scores", file=scores_dir)
    if not (scores_dir / "anomalies").is_dir() and not (scores_dir / "seconds").is_dir():
        raise DtgError("not a scores folder: expected anomalies/ and seconds/ inside", file=scores_dir)
    if out.is_dir():
        raise DtgError("the report path is a folder; give a file name such as report.html", file=out)

    for given, what in ((lake_dir, "lake"), (model_dir, "model"), (events_dir, "events")):
        if given is not None and not Path(given).is_dir():
            raise DtgError(f"no {what} folder here", file=given, field=what)

    anomalies = load_anomalies(scores_dir)
    seconds = load_seconds(scores_dir)
    model = load_model_info(scores_dir, Path(model_dir) if model_dir else None)
    lake = Path(lake_dir) if lake_dir is not None else None
    threshold, threshold_text = applied_threshold(model, seconds)
    notes: list[str] = []
    if lake is None:
        notes.append("No lake given or found: panels show scores only, and distance is not computed.")

    fleet = _fleet(anomalies, seconds, lake, Path(events_dir) if events_dir else None)
    has_events = any(r.events is not None for r in fleet)
    rows = [(i + 1, str(anomalies.vehicle_id[i]), local_text(int(anomalies.start[i])),
             local_text(int(anomalies.end[i])), float(anomalies.duration_s[i]), float(anomalies.peak_score[i]),
             "" if anomalies.top_feature[i] is None else str(anomalies.top_feature[i]))
            for i in range(len(anomalies))]
    panels = [_panel(i, anomalies, seconds, threshold, lake) for i in range(min(top, len(anomalies)))]

    page = Page(
        scores_dir=str(scores_dir), model=f"{model.name} {model.version}".strip(),
        threshold=threshold_text, generated=local_text(int(dt.datetime.now().timestamp() * 1000)),
        fleet=fleet, anomaly_rows=rows, panels=panels, has_events=has_events, notes=notes,
    )
    if fleet:
        groups = anomalies.groups()
        shown = fleet[:TIMELINE_MAX_VEHICLES]
        if len(fleet) > len(shown):
            notes.append(f"The timeline shows the {len(shown)} vehicles with the most anomalies of {len(fleet)}.")
        page.timeline = figures.fleet_timeline(
            [r.vehicle for r in shown], [seconds.ts[seconds.of(r.vehicle)] for r in shown],
            [(anomalies.start[groups.get(r.vehicle, [])], anomalies.end[groups.get(r.vehicle, [])]) for r in shown])
    if model.history is not None and len(model.history["epoch"]):
        page.losses = figures.loss_curves(model.history, f"Training loss · {page.model}")
    else:
        notes.append("No training history found (history.csv in the model folder): loss curves left out.")
    if len(seconds.score):
        page.histogram = figures.score_histogram(seconds.score, threshold, seconds.is_anomaly,
                                                 "Score distribution (all scored seconds)")
    text = render(page)
    write_text(out, text)
    images = len(panels) + sum(x is not None for x in (page.timeline, page.losses, page.histogram))
    return ReportResult(out, len(fleet), len(anomalies), len(panels), images, len(text.encode("utf-8")))


def applied_threshold(model: ModelInfo, seconds: Seconds) -> tuple[float | None, str]:
    """The threshold the flags in the scores were made with, and how to describe it.

    `dtg score --threshold` may override the card's value, so the card's threshold is used only when
    the flags agree with it (flagged iff score > threshold). Otherwise a fixed override shows as a gap
    between the highest unflagged and the lowest flagged score, and anything else is a dynamic one.
    """
    flags, score = seconds.is_anomaly, seconds.score
    ok = np.isfinite(score)
    flags, score = flags[ok], score[ok]
    t = model.threshold
    if t is not None:
        tol = 1e-6 * max(abs(t), 1.0)
        if not len(score) or (np.all(score[flags] > t - tol) and np.all(score[~flags] <= t + tol)):
            return t, f"{t:.4g} ({model.threshold_kind})"
    if t is None and model.threshold_kind == "dynamic":
        return None, "dynamic (varies per point; the run recorded it in model.json)"
    card = f"; the model card's is {t:.4g}" if t is not None else ""
    if not flags.any():
        return None, "unknown" + card
    if flags.all() or score[~flags].max() < score[flags].min():
        low = float(score[flags].min())
        high = float(score[~flags].max()) if (~flags).any() else float("nan")
        return None, f"between {high:.4g} and {low:.4g} (read from the flags{card})"
    return None, f"varies per point (dynamic{card})"


def _fleet(anomalies: Anomalies, seconds: Seconds, lake: Path | None, events_dir: Path | None) -> list[FleetRow]:
    """Per vehicle: scored span, hours, anomalies, flagged seconds, distance and events."""
    groups = anomalies.groups()
    vehicles = sorted(set(seconds.vehicles) | set(groups))
    none = np.zeros(0, dtype=np.int64)
    spans: dict[str, tuple[int, int]] = {}
    for v in vehicles:
        ts = seconds.ts[seconds.of(v)]
        rows = groups.get(v, none)
        lo = [int(ts[0])] if len(ts) else []
        hi = [int(ts[-1])] if len(ts) else []
        spans[v] = (min(lo + anomalies.start[rows].tolist()), max(hi + anomalies.end[rows].tolist()))
    distances = _distances(lake, spans) if lake is not None and spans else {}
    events = count_events(events_dir, spans) if events_dir is not None else None
    fleet = []
    for v in vehicles:
        sl = seconds.of(v)
        fleet.append(FleetRow(
            vehicle=v, first=spans[v][0], last=spans[v][1], hours=(sl.stop - sl.start) / 3600.0,
            anomalies=len(groups.get(v, none)), anomalous_s=int(np.count_nonzero(seconds.is_anomaly[sl])),
            distance_km=distances.get(v), events=None if events is None else events.get(v, 0)))
    fleet.sort(key=lambda r: (-r.anomalies, -r.anomalous_s, r.vehicle))
    return fleet


def _distances(lake: Path, spans: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Distance driven by each vehicle within its scored span, from lake speeds (one scan of the lake)."""
    lo = min(a for a, _ in spans.values())
    hi = max(b for _, b in spans.values())
    table = read_lake(lake, list(spans), lo, hi, columns=("vehicle_id", "ts", "speed"))
    out = {v: 0.0 for v in spans}
    if table.num_rows == 0:
        return out
    vid = np.asarray(table.column("vehicle_id").to_pylist(), dtype=object)
    ts = epoch_ms(table.column("ts"))
    speed = np.asarray(table.column("speed").cast("float64").to_numpy(zero_copy_only=False))
    change = np.flatnonzero(vid[1:] != vid[:-1]) + 1
    for a, b in zip(np.concatenate(([0], change)), np.concatenate((change, [len(vid)]))):
        v = vid[a]
        s_lo, s_hi = spans[v]
        keep = slice(a + np.searchsorted(ts[a:b], s_lo, "left"), a + np.searchsorted(ts[a:b], s_hi, "right"))
        out[v] = distance_km(ts[keep], speed[keep])
    return out


def _panel(i: int, anomalies: Anomalies, seconds: Seconds, threshold: float | None, lake: Path | None) -> Panel:
    """The i-th strongest anomaly drawn with its context."""
    vehicle = str(anomalies.vehicle_id[i])
    start, end = int(anomalies.start[i]), int(anomalies.end[i])
    duration = float(anomalies.duration_s[i])
    context_ms = int(1000 * min(max(duration, CONTEXT_MIN_S), CONTEXT_MAX_S))
    view = (start - context_ms, end + 1000 + context_ms)
    empty = np.zeros(0)
    ts, speed, rpm, brake, lat, lon = (np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty)
    if lake is not None:
        table = read_lake(lake, [vehicle], view[0], view[1])
        if table.num_rows:
            ts = epoch_ms(table.column("ts"))
            speed, rpm, brake, lat, lon = (
                np.asarray(table.column(c).cast("float64").to_numpy(zero_copy_only=False))
                if c in table.column_names else np.full(len(ts), np.nan)
                for c in ("speed", "rpm", "brake", "lat", "lon"))
    sl = seconds.of(vehicle, view[0], view[1])
    shown = np.concatenate([ts, seconds.ts[sl], [start, end]])
    view = (max(view[0], int(shown.min()) - 5000), min(view[1], int(shown.max()) + 6000))  # no empty margins
    top = anomalies.top_feature[i]
    peak = float(anomalies.peak_score[i])
    title = (f"#{i + 1}  {vehicle}  ·  {local_text(start)} – {local_text(end)[11:]}  ({duration:,.0f} s)  ·  "
             f"peak {peak:.4g}" + (f"  ·  top feature: {top}" if top else ""))
    png = figures.anomaly_panel(figures.PanelData(
        title=title, start=start, end=end, ts=ts, speed=speed, rpm=rpm, brake=brake, lat=lat, lon=lon,
        score_ts=seconds.ts[sl], score=seconds.score[sl], threshold=threshold, view=view,
        top_feature=None if top is None else str(top)))
    caption = (f"Shaded: the anomalous interval ({duration:,.0f} s); shown with up to {context_ms // 1000} s of "
               f"context either side. GPS track: grey context, red the interval. Red axis lines: the top feature.")
    return Panel(i + 1, png, caption)
