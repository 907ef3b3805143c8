"""`dtg report`: the HTML report built from a scores folder laid out as docs/architecture.md says.

The fixture writes a small synthetic scoring run (lake, seconds, anomalies, model.json, a model folder
with history.csv, events) in the contract's layout, with Hangul vehicle numbers and one id full of
HTML and mathtext metacharacters.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
import shutil
import warnings
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dtg.errors import DtgError
from dtg.lake import Lake
from dtg.report import build_report, write_report
from dtg.report.data import load_anomalies, load_model_info
from dtg.report.page import local_text
from dtg.schema import TS_TYPE, conform

VEHICLES = ("서울70사1234", "부산80바5678", "<b>T&$\\x$1</b>")
"""Hangul registration numbers, and one id that is invalid mathtext and HTML if not escaped."""
T0 = 1_709_600_000_000  # 2024-03-05 09:53:20 KST, epoch ms
PNG_SIG = b"\x89PNG\r\n\x1a\n"
THRESHOLD = 0.5


def _key(vehicle: str) -> str:
    return vehicle.encode("utf-8").hex()


def _write(folder: Path, vehicle: str, name: str, table: pa.Table) -> None:
    part = folder / f"vehicle={_key(vehicle)}" / "date=2024-03-05"
    part.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, part / name)


def make_run(root: Path, n: int = 1800, anomalies_per_vehicle: int = 3, seed: int = 0) -> dict:
    """A synthetic scoring run under `root`; returns the expected anomalies per vehicle."""
    rng = np.random.default_rng(seed)
    lake, scores = root / "lake", root / "scores"
    model_dir = root / "models" / "lstm-ae" / "v1"
    model_dir.mkdir(parents=True)
    expected = []
    for k, vehicle in enumerate(VEHICLES):
        t = np.arange(n, dtype=np.int64)
        t = np.where(t >= n // 2, t + 300, t)  # a five-minute gap in the log
        ts = T0 + 1000 * t + k * 7_200_000
        speed = np.clip(50 + 30 * np.sin(t / 90.0) + rng.normal(0, 2, n), 0, 200).astype(np.float32)
        rpm = (800 + 28 * speed + rng.normal(0, 40, n)).astype(np.float32)
        brake = (np.cos(t / 90.0) < -0.6).astype(np.int8)  # braking while the speed wave falls fastest
        lat = 37.55 + 0.0002 * np.cumsum(speed) / 60 + 0.01 * k
        lon = 126.97 + 0.003 * np.sin(t / 200.0)
        lat[:5] = 0.0
        lon[:5] = 0.0  # no GPS fix at start-up
        Lake(lake).write(conform(pa.table({
            "vehicle_id": pa.array([vehicle] * n), "ts": pa.array(ts, TS_TYPE),
            "speed": speed, "rpm": rpm, "brake": brake, "lat": lat, "lon": lon,
            "source_file": ["synthetic.csv"] * n, "source_row": np.arange(1, n + 1)})))
        score = np.abs(rng.normal(0.1, 0.05, n))
        flags = np.zeros(n, dtype=bool)
        for j in range(anomalies_per_vehicle):
            a = 200 + j * 450 + 13 * k
            length = 15 + 10 * j
            score[a:a + length] = 0.6 + 0.1 * j + 0.05 * k + rng.uniform(0, 0.02, length)
            flags[a:a + length] = True
            expected.append((vehicle, int(ts[a]), int(ts[a + length - 1]), float(score[a:a + length].max()),
                             ("speed", "rpm", "brake")[j % 3]))
        _write(scores / "seconds", vehicle, "part-0.parquet", pa.table({
            "vehicle_id": pa.array([vehicle] * n), "ts": pa.array(ts, TS_TYPE), "score": score,
            "is_anomaly": flags}))
    for vehicle in VEHICLES:
        mine = [e for e in expected if e[0] == vehicle]
        _write(scores / "anomalies", vehicle, "part-0.parquet", pa.table({
            "vehicle_id": pa.array([e[0] for e in mine]), "start": pa.array([e[1] for e in mine], TS_TYPE),
            "end": pa.array([e[2] for e in mine], TS_TYPE), "peak_score": [e[3] for e in mine],
            "top_feature": [e[4] for e in mine], "model": ["lstm-ae/v1"] * len(mine)}))
    (model_dir / "history.csv").write_text(
        "epoch,train_loss,val_loss\n" + "".join(f"{e},{1.0 / e:.5f},{1.2 / e + 0.01:.5f}\n" for e in range(1, 16)))
    card = {"name": "lstm-ae", "version": "v1", "threshold": {"kind": "percentile", "q": 99.0, "value": THRESHOLD}}
    (model_dir / "card.json").write_text(json.dumps(card))
    (scores / "model.json").write_text(json.dumps({"model_dir": str(model_dir), "card": card}, ensure_ascii=False))
    events = root / "events"  # as `dtg events` writes it: events.parquet beside summary.parquet
    events.mkdir()
    pq.write_table(pa.table({
        "vehicle_id": [VEHICLES[0]] * 4, "type": ["sudden_stop"] * 4,
        "start": pa.array([T0 + 10_000, T0 + 20_000, T0 + 30_000, T0 - 86_400_000], TS_TYPE),
        "end": pa.array([T0 + 11_000, T0 + 21_000, T0 + 31_000, T0 - 86_399_000], TS_TYPE)}),
        events / "events.parquet")
    pq.write_table(pa.table({"vehicle_type": ["truck"], "events_total": [4]}), events / "summary.parquet")
    return {"root": root, "lake": lake, "scores": scores, "model": model_dir, "events": events,
            "anomalies": expected}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    return make_run(tmp_path_factory.mktemp("run"))


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def report(run) -> tuple[str, list[str]]:
    """The report's HTML and every warning matplotlib gave while drawing it (warnings and log records)."""
    out = run["root"] / "out" / "report.html"
    handler = _Records()
    logger = logging.getLogger("matplotlib")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            build_report(run["scores"], out, lake_dir=run["lake"], events_dir=run["events"], top=4)
    finally:
        logger.removeHandler(handler)
    return out.read_text(encoding="utf-8"), [str(w.message) for w in caught] + handler.messages


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_report_is_one_self_contained_html_file(report):
    text, _ = report
    assert text.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in text
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<link" not in text and "<script" not in text.replace("&lt;script", "")


def test_every_embedded_image_decodes_as_png(report):
    text, _ = report
    images = _images(text)
    assert len(images) == 4 + 3  # four panels, timeline, loss curves, score histogram
    for png in images:
        assert png.startswith(PNG_SIG)
        pixels = mpimg.imread(io.BytesIO(png), format="png")
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels[..., :3].std() > 0.01  # not a blank canvas


def test_no_glyph_is_missing_when_drawing_hangul(report):
    _, messages = report
    assert [m for m in messages if re.search(r"glyph|findfont", m, re.IGNORECASE)] == []


def test_report_lists_every_anomaly_in_the_scores(run, report):
    text, _ = report
    table = text.split("All anomalies")[1]
    rows = re.findall(r"<tr><td class=\"n\">(?:<a [^>]*>)?(\d+)(?:</a>)?</td><td>(.*?)</td><td>(.*?)</td>", table)
    assert len(rows) == len(run["anomalies"])
    listed = sorted((html.unescape(v), s) for _, v, s in rows)
    expected = sorted((v, local_text(s)) for v, s, *_ in run["anomalies"])
    assert listed == expected
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))


def test_anomalies_are_ranked_by_peak_score(run):
    anomalies = load_anomalies(run["scores"])
    assert list(anomalies.peak_score) == sorted(anomalies.peak_score, reverse=True)
    assert len(anomalies) == len(run["anomalies"])


def test_text_from_data_is_html_escaped(report):
    text, _ = report
    assert VEHICLES[2] not in text
    assert "&lt;b&gt;T&amp;$\\x$1&lt;/b&gt;" in text


def test_hangul_vehicle_numbers_appear_and_the_font_is_embedded(report):
    text, _ = report
    assert "서울70사1234" in text and "부산80바5678" in text
    assert "@font-face" in text and "data:font/ttf;base64," in text


def test_fleet_table_counts_hours_anomalies_and_events_per_100km(run, report):
    text, _ = report
    fleet = text.split("<h2>Fleet</h2>")[1].split("</table>")[0]
    row = re.search(r"<tr><td>서울70사1234</td>(.*?)</tr>", fleet).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[2] == "0.50"  # 1,800 scored seconds
    assert re.match(r"3\b", cells[3])  # anomalies
    assert "events / 100 km" in fleet
    # three of the four events fall inside the scored span; the fourth is a day earlier
    assert cells[6] == "3"
    distance = float(cells[5].replace(",", ""))
    assert distance > 0
    assert float(cells[7]) == pytest.approx(300.0 / distance, rel=0.02)


def test_model_section_comes_from_model_json(run):
    info = load_model_info(run["scores"])
    assert (info.name, info.version, info.threshold, info.threshold_kind) == ("lstm-ae", "v1", THRESHOLD, "percentile")
    assert info.history is not None and len(info.history["epoch"]) == 15


def test_report_without_lake_still_draws_every_panel(run, tmp_path):
    out = tmp_path / "r.html"
    result = write_report(run["scores"], out, top=2)
    text = out.read_text(encoding="utf-8")
    assert result.panels == 2 and len(_images(text)) == 2 + 3
    assert "No lake given" in text


# ---------------------------------------------------------------- command line

def _cli(*args: str):
    from dtg.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_writes_the_report_and_prints_one_json_summary(run, tmp_path):
    out = tmp_path / "nested" / "fleet.html"
    result = _cli("report", "--scores", str(run["scores"]), "--lake", str(run["lake"]), "--events",
                  str(run["events"]), "--out", str(out), "--top", "2", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["out"] == str(out) and out.is_file()
    assert (summary["vehicles"], summary["anomalies"], summary["panels"], summary["images"]) == (3, 9, 2, 5)
    assert summary["bytes"] == len(out.read_bytes())


def test_cli_writes_into_the_scores_folder_by_default(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/lake here: panels show scores only
    result = _cli("report", "--scores", str(run["scores"]), "--top", "0")
    assert result.exit_code == 0, result.output
    assert (run["scores"] / "report.html").is_file()
    assert "report.html" in result.stdout


def test_cli_without_scores_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _cli("report")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("dtg: error:")]
    assert len(errors) == 1 and "data/scores" in errors[0] and "Traceback" not in result.stderr


def test_cli_rejects_a_negative_top_as_a_usage_error(run, tmp_path):
    out = tmp_path / "r.html"
    result = _cli("report", "--scores", str(run["scores"]), "--top", "-1", "--out", str(out))
    assert result.exit_code == 2 and "Traceback" not in result.stderr and not out.exists()
    with pytest.raises(DtgError):
        build_report(run["scores"], out, top=-1)


def test_a_corrupt_scores_file_is_named_and_the_old_report_is_kept(run, tmp_path):
    scores = tmp_path / "scores"
    shutil.copytree(run["scores"], scores)
    bad = scores / "anomalies" / "vehicle=zz" / "date=2024-03-05" / "part-9.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1 this is not parquet")
    out = tmp_path / "report.html"
    out.write_text("previous report")
    result = _cli("report", "--scores", str(scores), "--out", str(out))
    assert result.exit_code == 1
    assert "part-9.parquet" in result.stderr and "Traceback" not in result.stderr
    assert out.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_anomaly_files_without_a_required_column_name_file_and_field(run, tmp_path):
    scores = tmp_path / "scores"
    (scores / "anomalies").mkdir(parents=True)
    pq.write_table(pa.table({"vehicle_id": ["a"], "start": pa.array([T0], TS_TYPE)}),
                   scores / "anomalies" / "p.parquet")
    with pytest.raises(DtgError) as err:
        build_report(scores, tmp_path / "r.html")
    assert err.value.field == "end" and err.value.file.endswith("p.parquet")


def test_an_explicit_lake_that_does_not_exist_is_an_error(run, tmp_path):
    result = _cli("report", "--scores", str(run["scores"]), "--lake", str(tmp_path / "nope"),
                  "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 1 and "nope" in result.stderr


def test_scores_without_anomalies_give_a_report_that_says_so(tmp_path):
    scores = tmp_path / "scores"
    part = scores / "seconds" / "vehicle=x"
    part.mkdir(parents=True)
    pq.write_table(pa.table({"vehicle_id": ["서울70사1234"] * 3, "ts": pa.array([T0, T0 + 1000, T0 + 2000], TS_TYPE),
                             "score": [0.1, 0.2, 0.1], "is_anomaly": [False] * 3}), part / "p.parquet")
    result = write_report(scores, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert (result.anomalies, result.panels) == (0, 0)
    assert "No anomalies in these scores." in text and "All anomalies (0)" in text
    for png in _images(text):
        assert mpimg.imread(io.BytesIO(png), format="png").ndim == 3
