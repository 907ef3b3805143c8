"""The report as one self-contained HTML page: inline CSS, images as base64 PNG, no external assets.

Every string taken from data goes through `html.escape`. When the page contains Hangul, the shipped
font is embedded too (`@font-face` with a data URL), so vehicle numbers read correctly on a machine
without Korean fonts.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from dtg.report.style import FONT_FILE
from dtg.schema import TZ

HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


@dataclass(frozen=True)
class FleetRow:
    """One vehicle's line in the fleet summary."""

    vehicle: str
    first: int  # epoch ms
    last: int
    hours: float
    anomalies: int
    anomalous_s: int
    distance_km: float | None
    events: int | None

    @property
    def events_per_100km(self) -> float | None:
        if self.events is None or not self.distance_km:
            return None
        return 100.0 * self.events / self.distance_km


@dataclass(frozen=True)
class Panel:
    """One top-anomaly panel: its rank, PNG and caption."""

    rank: int
    png: bytes
    caption: str


@dataclass
class Page:
    """Everything the page shows, already computed."""

    scores_dir: str
    model: str
    threshold: str
    generated: str
    fleet: list[FleetRow]
    anomaly_rows: list[tuple[int, str, str, str, float, float, str]]  # rank, vehicle, start, end, dur, peak, top
    panels: list[Panel]
    timeline: bytes | None = None
    losses: bytes | None = None
    histogram: bytes | None = None
    has_events: bool = False
    notes: list[str] = field(default_factory=list)


CSS = """
:root { --ink:#1d2330; --muted:#5d6675; --line:#e3e6eb; --accent:#d1495b; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font-family: "DtgHangul", "Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans KR", "NanumSquare",
  system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size:14px; line-height:1.45; }
main { max-width:1320px; margin:0 auto; padding:28px 28px 60px; }
header h1 { margin:0 0 4px; font-size:26px; letter-spacing:-0.01em; }
header p { margin:0; color:var(--muted); }
h2 { font-size:18px; margin:34px 0 12px; padding-bottom:6px; border-bottom:2px solid var(--line); }
.kpis { display:grid; grid-template-columns:repeat(auto-fit,minmax(170px,1fr)); gap:12px; margin:20px 0 4px; }
.kpi { background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 16px; }
.kpi .v { font-size:26px; font-weight:700; font-variant-numeric:tabular-nums; }
.kpi .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.kpi.alert .v { color:var(--accent); }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); border-radius:8px;
  overflow:hidden; font-variant-numeric:tabular-nums; }
th, td { padding:6px 10px; text-align:left; border-bottom:1px solid var(--line); white-space:nowrap; }
th { background:#eef1f5; font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.03em; }
td.n, th.n { text-align:right; }
tr:last-child td { border-bottom:none; }
tbody tr:hover { background:#fafbfc; }
table.anomalies th { position:sticky; top:0; }
figure { margin:0 0 18px; background:#fff; border:1px solid var(--line); border-radius:10px; padding:10px 12px; }
table + figure { margin-top:14px; }
figure img { width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:13px; margin-top:4px; }
.pair { display:grid; grid-template-columns:1fr 1fr; gap:14px; }
.note { color:var(--muted); font-style:italic; }
.bar { display:inline-block; height:8px; background:var(--accent); border-radius:4px; vertical-align:middle; }
a { color:#1f6fb2; text-decoration:none; } a:hover { text-decoration:underline; }
footer { margin-top:40px; color:var(--muted); font-size:12px; }
@media print { figure, tr { break-inside: avoid; } body { background:#fff; } }
@media (max-width: 900px) { .pair { grid-template-columns:1fr; } }
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:,.{digits}f}"


def _font_face() -> str:
    font = (resources.files("dtg") / "fonts" / FONT_FILE).read_bytes()
    data = base64.b64encode(font).decode("ascii")
    return f'@font-face {{ font-family:"DtgHangul"; src:url(data:font/ttf;base64,{data}) format("truetype"); }}'


def local_text(ms: int) -> str:
    """Epoch milliseconds as 'YYYY-MM-DD HH:MM:SS' in Korean local time."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    return dt.datetime.fromtimestamp(ms / 1000.0, ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M:%S")


def _kpis(page: Page) -> str:
    fleet = page.fleet
    hours = sum(r.hours for r in fleet)
    n_anom = len(page.anomaly_rows)
    dist = [r.distance_km for r in fleet if r.distance_km is not None]
    cards = [("vehicles", f"{len(fleet):,}", False), ("hours scored", _fmt(hours), False),
             ("anomalies", f"{n_anom:,}", n_anom > 0)]
    if dist:
        total = sum(dist)
        cards.append(("distance km", _fmt(total), False))
        if page.has_events:
            events = sum(r.events or 0 for r in fleet)
            cards.append(("events / 100 km", _fmt(100.0 * events / total if total else None), False))
    if hours:
        cards.append(("anomalies / 100 h", _fmt(100.0 * n_anom / hours), False))
    return '<section class="kpis">' + "".join(
        f'<div class="kpi{" alert" if alert else ""}"><div class="v">{html.escape(v)}</div>'
        f'<div class="k">{html.escape(k)}</div></div>' for k, v, alert in cards) + "</section>"


def _fleet_table(page: Page) -> str:
    cols = ["vehicle", "first second", "last second", "hours scored", "anomalies", "anomalous s", "distance km"]
    if page.has_events:
        cols += ["events", "events / 100 km"]
    head = "".join(f'<th class="{"" if i < 3 else "n"}">{c}</th>' for i, c in enumerate(cols))
    most = max((r.anomalies for r in page.fleet), default=0) or 1
    rows = []
    for r in page.fleet:
        bar = f' <span class="bar" style="width:{int(60 * r.anomalies / most)}px"></span>' if r.anomalies else ""
        cells = [f"<td>{html.escape(r.vehicle)}</td>", f"<td>{local_text(r.first)}</td>",
                 f"<td>{local_text(r.last)}</td>", f'<td class="n">{_fmt(r.hours, 2)}</td>',
                 f'<td class="n">{r.anomalies:,}{bar}</td>', f'<td class="n">{r.anomalous_s:,}</td>',
                 f'<td class="n">{_fmt(r.distance_km)}</td>']
        if page.has_events:
            cells += [f'<td class="n">{"—" if r.events is None else f"{r.events:,}"}</td>',
                      f'<td class="n">{_fmt(r.events_per_100km)}</td>']
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _anomaly_table(page: Page) -> str:
    if not page.anomaly_rows:
        return '<p class="note">No anomalies in these scores.</p>'
    shown = {p.rank for p in page.panels}
    head = ('<th class="n">#</th><th>vehicle</th><th>start</th><th>end</th><th class="n">duration s</th>'
            '<th class="n">peak score</th><th>top feature</th>')
    rows = []
    for rank, vehicle, start, end, dur, peak, top in page.anomaly_rows:
        num = f'<a href="#a{rank}">{rank}</a>' if rank in shown else str(rank)
        rows.append(f'<tr><td class="n">{num}</td><td>{html.escape(vehicle)}</td><td>{start}</td><td>{end}</td>'
                    f'<td class="n">{dur:,.0f}</td><td class="n">{peak:.4g}</td><td>{html.escape(top)}</td></tr>')
    return (f'<table class="anomalies"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def render(page: Page) -> str:
    """The whole report as an HTML string."""
    parts = [
        "<header><h1>DTG anomaly report</h1>",
        f"<p>Scores <code>{html.escape(page.scores_dir)}</code> · model {html.escape(page.model)} · "
        f"threshold {html.escape(page.threshold)} · times in {TZ} · generated {html.escape(page.generated)}</p>",
        "</header>",
        _kpis(page),
        *(f'<p class="note">{html.escape(n)}</p>' for n in page.notes),
        "<h2>Fleet</h2>",
        _fleet_table(page),
    ]
    if page.timeline:
        parts.append(f"<figure>{_img(page.timeline, 'scored time and anomalies per vehicle')}</figure>")
    parts.append(f"<h2>Top {len(page.panels)} anomalies</h2>" if page.panels else "<h2>Top anomalies</h2>")
    if not page.panels:
        parts.append('<p class="note">No anomalies in these scores.</p>')
    for p in page.panels:
        parts.append(f'<figure id="a{p.rank}">{_img(p.png, f"anomaly {p.rank}")}'
                     f"<figcaption>{html.escape(p.caption)}</figcaption></figure>")
    parts.append("<h2>Model</h2>")
    imgs = [_img(png, alt) for png, alt in ((page.losses, "training loss"), (page.histogram, "score distribution"))
            if png]
    if imgs:
        parts.append('<div class="pair">' + "".join(f"<figure>{i}</figure>" for i in imgs) + "</div>")
    parts.append(f"<h2>All anomalies ({len(page.anomaly_rows):,})</h2>")
    parts.append(_anomaly_table(page))
    parts.append('<footer>Made by <code>dtg report</code>. Hangul set in NanumSquare (NAVER, SIL Open Font '
                 "License 1.1).</footer>")
    body = "\n".join(parts)
    font = _font_face() if HANGUL.search(body) else ""
    return ('<!DOCTYPE html>\n<html lang="ko"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>DTG anomaly report</title><style>{font}{CSS}</style></head>"
            f"<body><main>\n{body}\n</main></body></html>\n")
